//! Manifest push (end-7a, end-7b): every manifest kind clients push (Docker
//! schema2 and manifest lists, OCI manifests and indexes, artifacts with
//! `artifactType` and `subject`), exact bytes and Content-Type back, reference
//! checks (MANIFEST_BLOB_UNKNOWN; a missing subject is accepted), OCI-Subject,
//! the 4 MiB limit (413), `?tag=` with OCI-Tag, DIGEST_INVALID and
//! MANIFEST_INVALID cases, and that a rejected manifest stores nothing.

use crate::harness::*;
use serde_json::json;

/// Pushes a config and a layer blob and returns their descriptors.
fn blobs(
    reg: &TestRegistry,
    repo: &str,
    config_type: &str,
    layer_type: &str,
    seed: usize,
) -> (Descriptor, Descriptor) {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = pseudo_random_bytes(seed, 2_000);
    reg.push_blob(repo, &config);
    reg.push_blob(repo, &layer);
    (
        Descriptor::new(config_type, &config),
        Descriptor::new(layer_type, &layer),
    )
}

/// `Some(problem)` when a rejected manifest is reachable by tag or digest.
fn stored(reg: &TestRegistry, repo: &str, tag: &str, body: &[u8]) -> Option<String> {
    for reference in [tag.to_string(), sha256(body)] {
        let r = reg.get_manifest(repo, &reference);
        if r.status != 404 {
            return Some(format!("{}: {} for a rejected manifest", r.what, r.status));
        }
    }
    None
}

fn assert_not_stored(reg: &TestRegistry, repo: &str, tag: &str, body: &[u8]) {
    if let Some(p) = stored(reg, repo, tag, body) {
        panic!("{p}");
    }
}

#[test]
fn every_manifest_kind_round_trips_with_its_content_type() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/kinds");
    let (dc, dl) = blobs(&reg, &repo, DOCKER_CONFIG, DOCKER_LAYER, 100);
    let (oc, ol) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 101);
    reg.push_blob(&repo, b"{}");
    let empty = Descriptor::new(OCI_EMPTY, b"{}");
    let payload = b"an artifact payload".to_vec();
    reg.push_blob(&repo, &payload);
    let payload_desc = Descriptor::new("text/plain", &payload);

    let docker = image_manifest(DOCKER_MANIFEST, &dc, &[dl], None, None);
    let oci = image_manifest(OCI_MANIFEST, &oc, &[ol], None, None);
    let docker_list = index_manifest(DOCKER_LIST, &[Descriptor::new(DOCKER_MANIFEST, &docker)]);
    let oci_index = index_manifest(OCI_INDEX, &[Descriptor::new(OCI_MANIFEST, &oci)]);
    let artifact = image_manifest(
        OCI_MANIFEST,
        &empty,
        &[payload_desc],
        Some("application/vnd.example.thing.v1"),
        None,
    );
    // (tag, media type, body). Children come before their lists.
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("docker", DOCKER_MANIFEST, docker),
        ("oci", OCI_MANIFEST, oci),
        ("docker-list", DOCKER_LIST, docker_list),
        ("oci-index", OCI_INDEX, oci_index),
        ("artifact", OCI_MANIFEST, artifact),
    ];
    for (tag, media_type, body) in &cases {
        let r = reg.put_manifest(&repo, tag, media_type, body);
        r.expect_status(201);
        let digest = sha256(body);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.as_str()),
            "{}",
            r.what
        );
        let loc = r.location();
        assert!(
            loc.contains(&format!("/v2/{repo}/manifests/")),
            "{}: Location {loc}",
            r.what
        );
        let via_loc = reg.call("GET", &reg.loc(loc), &[("Accept", MANIFEST_ACCEPT)], None);
        via_loc.expect_status(200);
        assert_eq!(
            &via_loc.body, body,
            "{}: Location does not serve the manifest",
            r.what
        );
        for reference in [*tag, digest.as_str()] {
            let g = reg.get_manifest(&repo, reference);
            g.expect_status(200);
            assert_eq!(&g.body, body, "{}", g.what);
            assert_eq!(g.header("content-type"), Some(*media_type), "{}", g.what);
            assert_eq!(
                g.header("docker-content-digest"),
                Some(digest.as_str()),
                "{}",
                g.what
            );
            let h = reg.head_manifest(&repo, reference);
            h.expect_status(200);
            assert_eq!(h.header("content-type"), Some(*media_type), "{}", h.what);
            assert_eq!(h.content_length(), Some(body.len() as u64), "{}", h.what);
        }
    }
}

#[test]
fn content_type_parameters_are_ignored() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/ctparams");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 105);
    let body = image_manifest(OCI_MANIFEST, &c, &[l], None, None);
    let ct = format!("{OCI_MANIFEST}; charset=utf-8");
    let r = reg.put_manifest(&repo, "v1", &ct, &body);
    r.expect_status(201);
    let g = reg.get_manifest(&repo, "v1");
    g.expect_status(200);
    assert_eq!(
        g.header("content-type"),
        Some(OCI_MANIFEST),
        "stored type keeps no parameters"
    );
}

#[test]
fn a_manifest_without_a_media_type_field_takes_its_content_type() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/nomediatype");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 106);
    // mediaType is a SHOULD in the image spec; older OCI manifests lack it.
    let body =
        serde_json::to_vec(&json!({"schemaVersion": 2, "config": c.json(), "layers": [l.json()]}))
            .expect("json");
    let digest = reg.push_manifest(&repo, "v1", OCI_MANIFEST, &body);
    for reference in ["v1", digest.as_str()] {
        let g = reg.get_manifest(&repo, reference);
        g.expect_status(200);
        assert_eq!(g.body, body);
        assert_eq!(g.header("content-type"), Some(OCI_MANIFEST), "{}", g.what);
    }
}

#[test]
fn put_by_digest_is_accepted_and_pullable_by_digest() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/bydigest");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 110);
    let body = image_manifest(OCI_MANIFEST, &c, &[l], None, None);
    let digest = sha256(&body);
    let r = reg.put_manifest(&repo, &digest, OCI_MANIFEST, &body);
    r.expect_status(201);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let g = reg.get_manifest(&repo, &digest);
    g.expect_status(200);
    assert_eq!(g.body, body);
}

#[test]
fn manifest_bytes_are_stored_exactly() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/bytes");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 120);
    // Odd whitespace, unusual key order, an annotation with escapes.
    let body = format!(
        "{{\n\t\"layers\" : [ {{\"size\":{}, \"digest\":\"{}\",\"mediaType\":\"{}\"}} ],\n  \"schemaVersion\":2,\
         \"config\":{{ \"mediaType\":\"{}\",\"size\":{},\"digest\":\"{}\" }},\r\n\"mediaType\":\"{}\",\
         \"annotations\":{{\"note\":\"tab\\tquote\\\" \\u00e9\"}}   }}\n\n",
        l.size, l.digest, l.media_type, c.media_type, c.size, c.digest, OCI_MANIFEST
    )
    .into_bytes();
    let digest = reg.push_manifest(&repo, "v1", OCI_MANIFEST, &body);
    assert_eq!(digest, sha256(&body));
    let g = reg.get_manifest(&repo, "v1");
    g.expect_status(200);
    assert_eq!(g.body, body, "the manifest must come back byte for byte");
}

#[test]
fn a_tag_moves_to_the_newly_pushed_manifest() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/move");
    let first = reg.sample_image(&repo, "stable");
    let second = reg.sample_image(&repo, "stable");
    assert_ne!(first.digest, second.digest);
    let g = reg.get_manifest(&repo, "stable");
    g.expect_status(200);
    assert_eq!(g.body, second.manifest);
    let g = reg.get_manifest(&repo, &first.digest);
    g.expect_status(200);
    assert_eq!(g.body, first.manifest);
}

#[test]
fn references_that_do_not_exist_are_refused_with_manifest_blob_unknown() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/missing");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 130);
    let (dc, dl) = blobs(&reg, &repo, DOCKER_CONFIG, DOCKER_LAYER, 131);
    let ghost_layer = Descriptor::new(OCI_LAYER, b"never uploaded layer");
    let ghost_config = Descriptor::new(OCI_CONFIG, b"{\"never\":\"uploaded\"}");
    let ghost_oci = Descriptor::new(
        OCI_MANIFEST,
        &image_manifest(OCI_MANIFEST, &c, std::slice::from_ref(&l), None, None),
    );
    let ghost_docker = Descriptor::new(
        DOCKER_MANIFEST,
        &image_manifest(DOCKER_MANIFEST, &dc, std::slice::from_ref(&dl), None, None),
    );
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "missing layer",
            OCI_MANIFEST,
            image_manifest(
                OCI_MANIFEST,
                &c,
                &[l.clone(), ghost_layer.clone()],
                None,
                None,
            ),
        ),
        (
            "missing config",
            OCI_MANIFEST,
            image_manifest(
                OCI_MANIFEST,
                &ghost_config,
                std::slice::from_ref(&l),
                None,
                None,
            ),
        ),
        (
            "docker missing layer",
            DOCKER_MANIFEST,
            image_manifest(
                DOCKER_MANIFEST,
                &dc,
                &[Descriptor::new(DOCKER_LAYER, b"ghost")],
                None,
                None,
            ),
        ),
        (
            "index child",
            OCI_INDEX,
            index_manifest(OCI_INDEX, &[ghost_oci]),
        ),
        (
            "list child",
            DOCKER_LIST,
            index_manifest(DOCKER_LIST, &[ghost_docker]),
        ),
    ];
    let mut f = Failures::default();
    for (i, (what, media_type, body)) in cases.iter().enumerate() {
        let tag = format!("bad{i}");
        let r = reg.put_manifest(&repo, &tag, media_type, body);
        f.add(
            r.error_mismatch(400, &["MANIFEST_BLOB_UNKNOWN"])
                .map(|p| format!("{what}: {p}")),
        );
        f.add(stored(&reg, &repo, &tag, body).map(|p| format!("{what}: {p}")));
    }
    f.finish();
}

#[test]
fn a_subject_that_does_not_exist_is_accepted_and_echoed_in_oci_subject() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/subject");
    reg.push_blob(&repo, b"{}");
    let empty = Descriptor::new(OCI_EMPTY, b"{}");
    let absent = Descriptor::new(OCI_MANIFEST, b"a manifest nobody pushed");
    let body = image_manifest(
        OCI_MANIFEST,
        &empty,
        std::slice::from_ref(&empty),
        Some("application/vnd.example.sig.v1"),
        Some(&absent),
    );
    let digest = sha256(&body);
    let r = reg.put_manifest(&repo, &digest, OCI_MANIFEST, &body);
    r.expect_status(201);
    assert_eq!(
        r.header("oci-subject"),
        Some(absent.digest.as_str()),
        "OCI-Subject"
    );
    let g = reg.get_manifest(&repo, &digest);
    g.expect_status(200);
    assert_eq!(g.body, body);
}

#[test]
fn a_present_subject_is_echoed_in_oci_subject() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/subject2");
    let img = reg.sample_image(&repo, "v1");
    reg.push_blob(&repo, b"{}");
    let empty = Descriptor::new(OCI_EMPTY, b"{}");
    let subject = Descriptor::new(OCI_MANIFEST, &img.manifest);
    let body = image_manifest(
        OCI_MANIFEST,
        &empty,
        std::slice::from_ref(&empty),
        Some("application/vnd.example.sbom.v1"),
        Some(&subject),
    );
    let r = reg.put_manifest(&repo, &sha256(&body), OCI_MANIFEST, &body);
    r.expect_status(201);
    assert_eq!(r.header("oci-subject"), Some(img.digest.as_str()));
    // Without a subject there is no OCI-Subject header.
    let plain = image_manifest(
        OCI_MANIFEST,
        &empty,
        std::slice::from_ref(&empty),
        Some("application/vnd.example.sbom.v1"),
        None,
    );
    let r = reg.put_manifest(&repo, "plain", OCI_MANIFEST, &plain);
    r.expect_status(201);
    assert!(
        r.header("oci-subject").is_none(),
        "OCI-Subject without a subject"
    );
}

/// An OCI manifest of exactly `size` bytes (padding in an annotation).
fn manifest_of_size(c: &Descriptor, l: &Descriptor, size: usize) -> Vec<u8> {
    let mut v = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": c.json(),
        "layers": [l.json()],
        "annotations": {"pad": ""},
    });
    let base = serde_json::to_vec(&v).expect("json").len();
    assert!(size > base);
    v["annotations"]["pad"] = json!("p".repeat(size - base));
    let out = serde_json::to_vec(&v).expect("json");
    assert_eq!(out.len(), size);
    out
}

#[test]
fn a_4_mib_manifest_is_accepted_and_one_byte_more_gets_413() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/size");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 140);
    let ok = manifest_of_size(&c, &l, 4 << 20);
    let r = reg.put_manifest(&repo, "big", OCI_MANIFEST, &ok);
    r.expect_status(201);
    let g = reg.get_manifest(&repo, "big");
    g.expect_status(200);
    assert!(g.body == ok);
    let too_big = manifest_of_size(&c, &l, (4 << 20) + 1);
    // Raw socket: a server may answer 413 from the declared length and close
    // before the body is through, which HTTP clients report as a broken pipe.
    let mut req = format!(
        "PUT /v2/{repo}/manifests/toobig HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\n\
         Content-Length: {}\r\n\r\n",
        too_big.len()
    )
    .into_bytes();
    req.extend_from_slice(&too_big);
    let r = send_and_read(reg.addr(), req);
    assert_eq!(
        r.status,
        413,
        "4 MiB + 1 manifest (body {})",
        String::from_utf8_lossy(&r.body)
    );
    assert_not_stored(&reg, &repo, "toobig", &too_big);
}

#[test]
fn tag_query_on_put_by_digest_creates_every_tag_and_echoes_oci_tag() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/tagparam");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 150);
    let body = image_manifest(OCI_MANIFEST, &c, &[l], None, None);
    let digest = sha256(&body);
    // The spec asks registries to accept at least 10 tags in one request.
    let mut want: Vec<String> = vec!["1.2.3".into(), "latest".into()];
    want.extend((0..8).map(|i| format!("v{i}")));
    let query: Vec<String> = want.iter().map(|t| format!("tag={t}")).collect();
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/{digest}?{}", query.join("&")),
        &[("Content-Type", OCI_MANIFEST)],
        Some(&body),
    );
    r.expect_status(201);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let mut tags = r.header_values("oci-tag");
    tags.sort();
    want.sort();
    assert_eq!(tags, want, "OCI-Tag headers");
    for tag in &want {
        let g = reg.get_manifest(&repo, tag);
        g.expect_status(200);
        assert_eq!(g.body, body, "{}", g.what);
    }
}

#[test]
fn an_invalid_tag_query_refuses_the_whole_push() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/tagparam-bad");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 151);
    let body = image_manifest(OCI_MANIFEST, &c, &[l], None, None);
    let digest = sha256(&body);
    let r = reg.call(
        "PUT",
        &format!("/v2/{repo}/manifests/{digest}?tag=good&tag=.bad"),
        &[("Content-Type", OCI_MANIFEST)],
        Some(&body),
    );
    r.expect_error(400, &["TAG_INVALID", "MANIFEST_INVALID"]);
    reg.get_manifest(&repo, "good").expect_status(404);
    reg.get_manifest(&repo, &digest).expect_status(404);
}

#[test]
fn put_by_digest_with_a_different_body_gets_digest_invalid() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/mismatch");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 160);
    let body = image_manifest(OCI_MANIFEST, &c, &[l], None, None);
    let claimed = sha256(b"some other manifest");
    let r = reg.put_manifest(&repo, &claimed, OCI_MANIFEST, &body);
    r.expect_error(400, &["DIGEST_INVALID"]);
    reg.get_manifest(&repo, &claimed).expect_status(404);
    reg.get_manifest(&repo, &sha256(&body)).expect_status(404);
}

#[test]
fn invalid_manifests_get_manifest_invalid_and_store_nothing() {
    let reg = TestRegistry::start();
    let repo = reg.repo("man/invalid");
    let (c, l) = blobs(&reg, &repo, OCI_CONFIG, OCI_LAYER, 170);
    let (dc, dl) = blobs(&reg, &repo, DOCKER_CONFIG, DOCKER_LAYER, 171);
    let oci = image_manifest(OCI_MANIFEST, &c, std::slice::from_ref(&l), None, None);
    let docker = image_manifest(DOCKER_MANIFEST, &dc, &[dl], None, None);
    let mut v1: serde_json::Value = serde_json::from_slice(&oci).expect("json");
    v1["schemaVersion"] = json!(1);
    let v1 = serde_json::to_vec(&v1).expect("json");
    let no_config = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [l.json()]
    }))
    .expect("json");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    // (what, Content-Type, body)
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "malformed JSON",
            OCI_MANIFEST,
            b"{\"schemaVersion\": 2, \"mediaType\": ".to_vec(),
        ),
        ("empty body", OCI_MANIFEST, Vec::new()),
        ("JSON array", OCI_MANIFEST, b"[]".to_vec()),
        (
            "not UTF-8",
            OCI_MANIFEST,
            b"{\"schemaVersion\":2,\"x\":\"\xff\xfe\"}".to_vec(),
        ),
        ("schemaVersion 1", OCI_MANIFEST, v1),
        ("no config", OCI_MANIFEST, no_config),
        ("docker body sent as OCI", OCI_MANIFEST, docker.clone()),
        ("OCI body sent as docker", DOCKER_MANIFEST, oci.clone()),
        ("image manifest sent as index", OCI_INDEX, oci.clone()),
        ("nested 10000 deep", OCI_MANIFEST, deep),
    ];
    let mut f = Failures::default();
    for (i, (what, ct, body)) in cases.iter().enumerate() {
        let tag = format!("invalid{i}");
        let r = reg.put_manifest(&repo, &tag, ct, body);
        f.add(
            r.error_mismatch(400, &["MANIFEST_INVALID"])
                .map(|p| format!("{what}: {p}")),
        );
        f.add(stored(&reg, &repo, &tag, body).map(|p| format!("{what}: {p}")));
    }
    f.finish();
    // The server is still fine after all that.
    reg.get("/v2/").expect_status(200);
}
