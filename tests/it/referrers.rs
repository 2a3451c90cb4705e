//! Referrers API (end-12a, end-12b): an image index of the manifests whose
//! `subject` is the digest, each descriptor with artifactType (the manifest's,
//! else the config mediaType; omitted for an index without one) and the
//! manifest's annotations; the artifactType filter with OCI-Filters-Applied;
//! an empty index, never 404, when there are none.

use crate::harness::*;
use serde_json::{json, Value};

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIG_CONFIG: &str = "application/vnd.example.sig.config.v1+json";

struct Referrers {
    subject: Image,
    sbom: (String, Vec<u8>),
    sig: (String, Vec<u8>),
    index: (String, Vec<u8>),
}

/// A subject image and three referrers: an artifact manifest with
/// artifactType, an image manifest without one, an index without one.
fn setup(reg: &TestRegistry, repo: &str) -> Referrers {
    let subject = reg.sample_image(repo, "v1");
    let subj = Descriptor::new(OCI_MANIFEST, &subject.manifest);
    reg.push_blob(repo, b"{}");
    let empty = Descriptor::new(OCI_EMPTY, b"{}");
    let sbom_payload = br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec();
    reg.push_blob(repo, &sbom_payload);

    let mut sbom: Value = serde_json::from_slice(&image_manifest(
        OCI_MANIFEST,
        &empty,
        &[Descriptor::new("application/spdx+json", &sbom_payload)],
        Some(SBOM),
        Some(&subj),
    ))
    .expect("json");
    sbom["annotations"] = json!({"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "org.example.format": "spdx"});
    let sbom = serde_json::to_vec(&sbom).expect("json");

    let sig_config = br#"{"sig":"config"}"#.to_vec();
    reg.push_blob(repo, &sig_config);
    let mut sig: Value = serde_json::from_slice(&image_manifest(
        OCI_MANIFEST,
        &Descriptor::new(SIG_CONFIG, &sig_config),
        std::slice::from_ref(&empty),
        None,
        Some(&subj),
    ))
    .expect("json");
    sig["annotations"] = json!({"org.example.signer": "ci"});
    let sig = serde_json::to_vec(&sig).expect("json");

    let mut index: Value =
        serde_json::from_slice(&index_manifest(OCI_INDEX, std::slice::from_ref(&subj)))
            .expect("json");
    index["subject"] = subj.json();
    index["annotations"] = json!({"org.example.kind": "bundle"});
    let index = serde_json::to_vec(&index).expect("json");

    let mut out = Vec::new();
    for (mt, body) in [
        (OCI_MANIFEST, sbom),
        (OCI_MANIFEST, sig),
        (OCI_INDEX, index),
    ] {
        let d = sha256(&body);
        let r = reg.put_manifest(repo, &d, mt, &body);
        r.expect_status(201);
        assert_eq!(
            r.header("oci-subject"),
            Some(subject.digest.as_str()),
            "{}: OCI-Subject",
            r.what
        );
        out.push((d, body));
    }
    let index = out.pop().expect("3");
    let sig = out.pop().expect("2");
    let sbom = out.pop().expect("1");
    Referrers {
        subject,
        sbom,
        sig,
        index,
    }
}

/// GET the referrers and check the envelope; returns (response, descriptors by digest).
fn referrers(reg: &TestRegistry, repo: &str, digest: &str, query: &str) -> (Resp, Vec<Value>) {
    let r = reg.get(&format!("/v2/{repo}/referrers/{digest}{query}"));
    r.expect_status(200);
    let ct = r.header("content-type").unwrap_or("");
    assert_eq!(ct, OCI_INDEX, "{}: Content-Type", r.what);
    let v = r.json();
    assert_eq!(v["schemaVersion"], json!(2), "{}", r.what);
    assert_eq!(v["mediaType"], json!(OCI_INDEX), "{}", r.what);
    let mut list = v["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: manifests must be an array: {v}", r.what))
        .clone();
    list.sort_by_key(|d| d["digest"].as_str().unwrap_or_default().to_string());
    (r, list)
}

fn expected(
    media_type: &str,
    (digest, body): &(String, Vec<u8>),
    artifact_type: Option<&str>,
    annotations: Value,
) -> Value {
    let mut d = json!({"mediaType": media_type, "digest": digest, "size": body.len(), "annotations": annotations});
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    d
}

/// Compares the descriptor fields the spec defines (other fields may exist).
fn assert_descriptor(got: &Value, want: &Value) {
    for key in ["mediaType", "digest", "size", "annotations", "artifactType"] {
        assert_eq!(
            got.get(key),
            want.get(key),
            "descriptor field {key}: got {got}, want {want}"
        );
    }
}

#[test]
fn referrers_list_every_manifest_with_that_subject() {
    let reg = TestRegistry::start();
    let repo = reg.repo("ref/all");
    let s = setup(&reg, &repo);
    let (r, list) = referrers(&reg, &repo, &s.subject.digest, "");
    assert!(
        r.header("oci-filters-applied").is_none(),
        "no filter was asked for"
    );
    let mut want = vec![
        expected(
            OCI_MANIFEST,
            &s.sbom,
            Some(SBOM),
            json!({"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "org.example.format": "spdx"}),
        ),
        expected(
            OCI_MANIFEST,
            &s.sig,
            Some(SIG_CONFIG),
            json!({"org.example.signer": "ci"}),
        ),
        expected(
            OCI_INDEX,
            &s.index,
            None,
            json!({"org.example.kind": "bundle"}),
        ),
    ];
    want.sort_by_key(|d| d["digest"].as_str().unwrap_or_default().to_string());
    assert_eq!(list.len(), 3, "referrers: {list:?}");
    for (g, w) in list.iter().zip(&want) {
        assert_descriptor(g, w);
    }
}

#[test]
fn referrers_filter_by_artifact_type() {
    let reg = TestRegistry::start();
    let repo = reg.repo("ref/filter");
    let s = setup(&reg, &repo);
    let (r, list) = referrers(
        &reg,
        &repo,
        &s.subject.digest,
        &format!("?artifactType={SBOM}"),
    );
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["digest"], json!(s.sbom.0));
    assert_eq!(list[0]["artifactType"], json!(SBOM));

    // The config mediaType counts as the artifactType of a manifest without one.
    let (_, list) = referrers(
        &reg,
        &repo,
        &s.subject.digest,
        &format!("?artifactType={}", SIG_CONFIG.replace('+', "%2B")),
    );
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["digest"], json!(s.sig.0));

    let (r, list) = referrers(
        &reg,
        &repo,
        &s.subject.digest,
        "?artifactType=application/vnd.example.none",
    );
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    assert!(list.is_empty(), "{list:?}");
}

#[test]
fn no_referrers_is_an_empty_index_not_404() {
    let reg = TestRegistry::start();
    let repo = reg.repo("ref/none");
    let img = reg.sample_image(&repo, "v1");
    let (_, list) = referrers(&reg, &repo, &img.digest, "");
    assert!(list.is_empty());
    // Also for a digest the repository has never seen.
    let (_, list) = referrers(&reg, &repo, &unknown_digest(), "");
    assert!(list.is_empty());
}

#[test]
fn referrers_are_scoped_to_the_repository() {
    let reg = TestRegistry::start();
    let repo = reg.repo("ref/scoped");
    let other = reg.repo("ref/other");
    let s = setup(&reg, &repo);
    reg.sample_image(&other, "v1");
    let (_, list) = referrers(&reg, &other, &s.subject.digest, "");
    assert!(
        list.is_empty(),
        "referrers leaked across repositories: {list:?}"
    );
}

#[test]
fn a_deleted_referrer_disappears_from_the_list() {
    let reg = TestRegistry::start();
    let repo = reg.repo("ref/delete");
    let s = setup(&reg, &repo);
    reg.delete(&format!("/v2/{repo}/manifests/{}", s.sbom.0))
        .expect_status(202);
    let (_, list) = referrers(&reg, &repo, &s.subject.digest, "");
    let digests: Vec<&str> = list.iter().filter_map(|d| d["digest"].as_str()).collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert!(!digests.contains(&s.sbom.0.as_str()));
}

#[test]
fn referrers_with_an_invalid_digest_is_400() {
    let reg = TestRegistry::start();
    let repo = reg.repo("ref/bad");
    reg.sample_image(&repo, "v1");
    let r = reg.get(&format!("/v2/{repo}/referrers/sha256:totallywrong"));
    r.expect_error(400, &["DIGEST_INVALID"]);
}
