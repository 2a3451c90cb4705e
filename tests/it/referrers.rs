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

/// Large referrers (attack F7: 30 x 3.5 MiB annotations once cost 2.4 GiB for 8
/// GETs): the index is paged by bytes, each page stays near 1 MiB plus one
/// descriptor, every referrer appears exactly once across the `Link` chain, and
/// the artifactType filter is kept in the links.
#[test]
fn large_referrers_are_paged_by_size_and_each_listed_once() {
    let reg = TestRegistry::start();
    let repo = "refs/big";
    let subject = reg.sample_image(repo, "v1");
    let subj = Descriptor::new(OCI_MANIFEST, &subject.manifest);
    reg.push_blob(repo, b"{}");
    let empty = Descriptor::new(OCI_EMPTY, b"{}");
    let pad = "p".repeat(300 * 1024);
    let mut pushed = Vec::new();
    for i in 0..10 {
        let mut m: Value = serde_json::from_slice(&image_manifest(
            OCI_MANIFEST,
            &empty,
            std::slice::from_ref(&empty),
            Some(SBOM),
            Some(&subj),
        ))
        .expect("json");
        m["annotations"] = json!({ "org.example.i": i.to_string(), "org.example.pad": pad });
        let body = serde_json::to_vec(&m).expect("json");
        let d = sha256(&body);
        reg.put_manifest(repo, &d, OCI_MANIFEST, &body)
            .expect_status(201);
        pushed.push(d);
    }
    for filter in ["", &format!("?artifactType={SBOM}")] {
        let mut seen = Vec::new();
        let mut next = Some(format!("/v2/{repo}/referrers/{}{filter}", subject.digest));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            assert!(pages <= 20, "the Link chain must end");
            let r = reg.get(&path);
            r.expect_status(200);
            assert!(
                r.body.len() < 1024 * 1024 + 400 * 1024,
                "{}: a page of {} bytes",
                r.what,
                r.body.len()
            );
            let v = r.json();
            for d in v["manifests"].as_array().expect("manifests") {
                assert_eq!(
                    d["annotations"]["org.example.pad"].as_str(),
                    Some(pad.as_str())
                );
                seen.push(d["digest"].as_str().expect("digest").to_string());
            }
            if let Some(link) = r.header("link") {
                let target = link
                    .strip_prefix('<')
                    .and_then(|l| l.split_once('>'))
                    .map(|(t, _)| t.to_string())
                    .expect("Link: <target>; rel=\"next\"");
                if !filter.is_empty() {
                    assert!(target.contains("artifactType="), "{target}");
                }
                next = Some(target);
            }
        }
        assert!(
            pages >= 3,
            "10 x 300 KiB must take several pages, got {pages}"
        );
        let mut want = pushed.clone();
        want.sort();
        seen.sort();
        assert_eq!(
            seen, want,
            "every referrer exactly once (filter {filter:?})"
        );
    }
    reg.get(&format!("/v2/{repo}/referrers/{}?after=x", subject.digest))
        .expect_status(400);
}
