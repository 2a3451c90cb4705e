//! Content management (end-9, end-10): deleting a tag keeps the manifest,
//! deleting a manifest by digest removes its tags, deleting a blob makes it
//! 404; unknown targets are 404; with deletes disabled every delete is 405
//! UNSUPPORTED and nothing changes.

use crate::harness::*;
use serde_json::Value;

fn tag_list(reg: &TestRegistry, repo: &str) -> Vec<String> {
    let r = reg.get(&format!("/v2/{repo}/tags/list"));
    if r.status == 404 {
        return Vec::new();
    }
    r.expect_status(200);
    match &r.json()["tags"] {
        Value::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn deleting_a_tag_keeps_the_manifest() {
    let reg = TestRegistry::start();
    let repo = reg.repo("del/tag");
    let img = reg.sample_image(&repo, "v1");
    reg.push_manifest(&repo, "v2", OCI_MANIFEST, &img.manifest);
    let r = reg.delete(&format!("/v2/{repo}/manifests/v1"));
    r.expect_status(202);
    reg.get_manifest(&repo, "v1")
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    let g = reg.get_manifest(&repo, &img.digest);
    g.expect_status(200);
    assert_eq!(g.body, img.manifest);
    reg.get_manifest(&repo, "v2").expect_status(200);
    assert_eq!(tag_list(&reg, &repo), ["v2"]);
    // Deleting it again: it is gone.
    reg.delete(&format!("/v2/{repo}/manifests/v1"))
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
}

#[test]
fn deleting_a_manifest_by_digest_removes_its_tags() {
    let reg = TestRegistry::start();
    let repo = reg.repo("del/manifest");
    let img = reg.sample_image(&repo, "a");
    reg.push_manifest(&repo, "b", OCI_MANIFEST, &img.manifest);
    let keep = reg.sample_image(&repo, "keep");
    let r = reg.delete(&format!("/v2/{repo}/manifests/{}", img.digest));
    r.expect_status(202);
    for reference in ["a", "b", img.digest.as_str()] {
        reg.get_manifest(&repo, reference)
            .expect_error(404, &["MANIFEST_UNKNOWN"]);
        reg.head_manifest(&repo, reference).expect_status(404);
    }
    assert_eq!(tag_list(&reg, &repo), ["keep"]);
    let g = reg.get_manifest(&repo, "keep");
    g.expect_status(200);
    assert_eq!(g.body, keep.manifest);
    reg.delete(&format!("/v2/{repo}/manifests/{}", img.digest))
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
}

#[test]
fn deleting_a_blob_makes_it_404() {
    let reg = TestRegistry::start();
    let repo = reg.repo("del/blob");
    let bytes = pseudo_random_bytes(40, 2_000);
    let digest = reg.push_blob(&repo, &bytes);
    let other = reg.push_blob(&repo, b"stays");
    let r = reg.delete(&format!("/v2/{repo}/blobs/{digest}"));
    r.expect_status(202);
    reg.get_blob(&repo, &digest)
        .expect_error(404, &["BLOB_UNKNOWN"]);
    reg.head(&format!("/v2/{repo}/blobs/{digest}"))
        .expect_status(404);
    reg.get_blob(&repo, &other).expect_status(200);
    reg.delete(&format!("/v2/{repo}/blobs/{digest}"))
        .expect_error(404, &["BLOB_UNKNOWN"]);
    // It can be pushed again.
    reg.push_blob(&repo, &bytes);
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn deleting_a_blob_in_one_repository_leaves_it_in_another() {
    let reg = TestRegistry::start();
    let a = reg.repo("del/shared-a");
    let b = reg.repo("del/shared-b");
    let bytes = pseudo_random_bytes(41, 1_000);
    let digest = reg.push_blob(&a, &bytes);
    reg.push_blob(&b, &bytes);
    reg.delete(&format!("/v2/{a}/blobs/{digest}"))
        .expect_status(202);
    reg.get_blob(&a, &digest).expect_status(404);
    let g = reg.get_blob(&b, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn deleting_unknown_things_is_404() {
    let reg = TestRegistry::start();
    let repo = reg.repo("del/unknown");
    reg.sample_image(&repo, "v1");
    let d = unknown_digest();
    reg.delete(&format!("/v2/{repo}/manifests/{d}"))
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    reg.delete(&format!("/v2/{repo}/manifests/nosuchtag"))
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    reg.delete(&format!("/v2/{repo}/blobs/{d}"))
        .expect_error(404, &["BLOB_UNKNOWN"]);
    let nobody = reg.repo("del/nobody");
    let r = reg.delete(&format!("/v2/{nobody}/manifests/{d}"));
    r.expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
}

#[test]
fn with_deletes_disabled_every_delete_is_405_unsupported() {
    let Some(reg) = TestRegistry::local_with(
        "with_deletes_disabled_every_delete_is_405_unsupported",
        |c| c.delete_enabled = false,
    ) else {
        return;
    };
    let repo = reg.repo("del/disabled");
    let img = reg.sample_image(&repo, "v1");
    let layer = sha256(&img.layers[0]);
    for path in [
        format!("/v2/{repo}/manifests/v1"),
        format!("/v2/{repo}/manifests/{}", img.digest),
        format!("/v2/{repo}/blobs/{layer}"),
    ] {
        reg.delete(&path).expect_error(405, &["UNSUPPORTED"]);
    }
    reg.get_manifest(&repo, "v1").expect_status(200);
    reg.get_manifest(&repo, &img.digest).expect_status(200);
    reg.get_blob(&repo, &layer).expect_status(200);
    // Upload cancellation is not a content delete and still works.
    let session = reg.start_upload(&repo);
    reg.delete(&session).expect_status(204);
}
