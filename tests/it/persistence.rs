//! Persistence across a stop and start on the same data folder: pushed
//! content comes back byte for byte, deletes stay deleted, and an interrupted
//! chunked upload session keeps its Range and can be resumed and completed.

use crate::harness::*;
use serde_json::Value;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

#[test]
fn push_stop_start_pull_gives_the_same_bytes_and_digests() {
    let Some(mut reg) =
        TestRegistry::local("push_stop_start_pull_gives_the_same_bytes_and_digests")
    else {
        return;
    };
    let repo = reg.repo("persist/app");
    let img = reg.sample_image(&repo, "v1");
    reg.push_manifest(&repo, "stable", OCI_MANIFEST, &img.manifest);
    let big = pseudo_random_bytes(60, 300_000);
    let big_digest = reg.push_blob(&repo, &big);
    let s512 = sha512(b"sha512 content");
    reg.push_blob_as(&repo, b"sha512 content", &s512);

    reg.restart();

    for reference in ["v1", "stable", img.digest.as_str()] {
        let g = reg.get_manifest(&repo, reference);
        g.expect_status(200);
        assert_eq!(g.body, img.manifest, "{}", g.what);
        assert_eq!(g.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(g.header("docker-content-digest"), Some(img.digest.as_str()));
    }
    let mut blobs = vec![(sha256(&img.config), img.config.clone()), (big_digest, big)];
    blobs.extend(img.layers.iter().map(|l| (sha256(l), l.clone())));
    blobs.push((s512, b"sha512 content".to_vec()));
    for (digest, bytes) in blobs {
        let g = reg.get_blob(&repo, &digest);
        g.expect_status(200);
        assert!(g.body == bytes, "{}: bytes differ after restart", g.what);
        assert!(
            digest_matches(g.header("docker-content-digest"), &bytes),
            "{}: digest header",
            g.what
        );
    }
    let t = reg.get(&format!("/v2/{repo}/tags/list"));
    t.expect_status(200);
    assert_eq!(t.json()["tags"], serde_json::json!(["stable", "v1"]));
    let c = reg.get("/v2/_catalog");
    c.expect_status(200);
    assert_eq!(c.json()["repositories"], serde_json::json!([repo]));
}

#[test]
fn an_interrupted_chunked_upload_resumes_after_restart() {
    let Some(mut reg) = TestRegistry::local("an_interrupted_chunked_upload_resumes_after_restart")
    else {
        return;
    };
    let repo = reg.repo("persist/upload");
    let bytes = pseudo_random_bytes(61, 100_000);
    let session = reg.start_upload(&repo);
    let r = reg.call(
        "PATCH",
        &session,
        &[OCTET, ("Content-Range", "0-59999")],
        Some(&bytes[..60_000]),
    );
    r.expect_status(202);
    let location = r.location().to_string();

    reg.restart();

    let session = reg.loc(&location);
    let st = reg.get(&session);
    st.expect_status(204);
    assert_eq!(st.header("range"), Some("0-59999"), "Range after restart");
    let session = reg.loc(st.location());
    let r = reg.call(
        "PATCH",
        &session,
        &[OCTET, ("Content-Range", "60000-99999")],
        Some(&bytes[60_000..]),
    );
    r.expect_status(202);
    assert_eq!(r.header("range"), Some("0-99999"));
    let digest = sha256(&bytes);
    let url = TestRegistry::with_query(&reg.loc(r.location()), &format!("digest={digest}"));
    let done = reg.call("PUT", &url, &[OCTET], Some(b""));
    done.expect_status(201);
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body == bytes, "resumed upload: bytes differ");

    // And it survives one more restart.
    reg.restart();
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn a_streamed_upload_session_survives_restart() {
    let Some(mut reg) = TestRegistry::local("a_streamed_upload_session_survives_restart") else {
        return;
    };
    let repo = reg.repo("persist/stream");
    let bytes = pseudo_random_bytes(62, 50_000);
    let session = reg.start_upload(&repo);
    let r = reg.patch_chunked(&session, &bytes[..20_000], 4_096);
    r.expect_status(202);
    let location = r.location().to_string();
    reg.restart();
    let session = reg.loc(&location);
    let r = reg.patch_chunked(&session, &bytes[20_000..], 4_096);
    r.expect_status(202);
    assert_eq!(r.header("range"), Some("0-49999"));
    let digest = sha256(&bytes);
    let url = TestRegistry::with_query(&reg.loc(r.location()), &format!("digest={digest}"));
    reg.call("PUT", &url, &[OCTET], Some(b""))
        .expect_status(201);
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn deletes_stay_deleted_after_restart() {
    let Some(mut reg) = TestRegistry::local("deletes_stay_deleted_after_restart") else {
        return;
    };
    let repo = reg.repo("persist/deletes");
    let img = reg.sample_image(&repo, "gone");
    reg.push_manifest(&repo, "kept", OCI_MANIFEST, &img.manifest);
    let other = reg.sample_image(&repo, "other");
    let blob = reg.push_blob(&repo, b"deleted blob");
    reg.delete(&format!("/v2/{repo}/manifests/gone"))
        .expect_status(202);
    reg.delete(&format!("/v2/{repo}/manifests/{}", other.digest))
        .expect_status(202);
    reg.delete(&format!("/v2/{repo}/blobs/{blob}"))
        .expect_status(202);

    reg.restart();

    reg.get_manifest(&repo, "gone").expect_status(404);
    reg.get_manifest(&repo, "other").expect_status(404);
    reg.get_manifest(&repo, &other.digest).expect_status(404);
    reg.get_blob(&repo, &blob).expect_status(404);
    let g = reg.get_manifest(&repo, "kept");
    g.expect_status(200);
    assert_eq!(g.body, img.manifest);
    let t = reg.get(&format!("/v2/{repo}/tags/list"));
    t.expect_status(200);
    assert_eq!(t.json()["tags"], Value::from(vec!["kept"]));
}
