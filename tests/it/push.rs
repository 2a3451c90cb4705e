//! Push (end-4a, end-4b, end-6, end-7, end-11): monolithic POST+PUT, the
//! single-POST upload with `?digest=`, cross-repository mounts (201 when the
//! blob is in `from`, 202 and a working session otherwise), sha512 blobs, and a
//! whole image pushed then pulled back.

use crate::harness::*;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

#[test]
fn monolithic_post_then_put_creates_a_pullable_blob() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/mono");
    let bytes = pseudo_random_bytes(20, 5_000);
    let digest = sha256(&bytes);
    let session = reg.start_upload(&repo);
    let url = TestRegistry::with_query(&session, &format!("digest={digest}"));
    let r = reg.call("PUT", &url, &[OCTET], Some(&bytes));
    r.expect_status(201);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let loc = r.location().to_string();
    assert!(
        loc.contains(&format!("/v2/{repo}/blobs/{digest}")),
        "blob Location {loc}"
    );
    let g = reg.get(&reg.loc(&loc));
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn single_post_with_digest_uploads_in_one_request() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/single");
    let bytes = pseudo_random_bytes(21, 3_000);
    let digest = sha256(&bytes);
    let r = reg.call(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[OCTET],
        Some(&bytes),
    );
    r.expect_status(201);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let g = reg.get(&reg.loc(r.location()));
    g.expect_status(200);
    assert!(g.body == bytes);
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn single_post_with_a_wrong_digest_stores_nothing() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/single-bad");
    reg.push_blob(&repo, b"repo exists");
    let bytes = pseudo_random_bytes(22, 3_000);
    let wrong = sha256(b"something else");
    let r = reg.call(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={wrong}"),
        &[OCTET],
        Some(&bytes),
    );
    r.expect_error(400, &["DIGEST_INVALID"]);
    reg.get_blob(&repo, &wrong).expect_status(404);
    reg.get_blob(&repo, &sha256(&bytes)).expect_status(404);
}

#[test]
fn mount_from_a_repository_holding_the_blob_gives_201() {
    let reg = TestRegistry::start();
    let from = reg.repo("mount/src");
    let to = reg.repo("mount/dst");
    let bytes = pseudo_random_bytes(23, 4_000);
    let digest = reg.push_blob(&from, &bytes);
    let r = reg.call(
        "POST",
        &format!("/v2/{to}/blobs/uploads/?mount={digest}&from={from}"),
        &[],
        Some(b""),
    );
    r.expect_status(201);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let loc = r.location().to_string();
    assert!(
        loc.contains(&format!("/v2/{to}/blobs/{digest}")),
        "mount Location {loc}"
    );
    let g = reg.get_blob(&to, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
    let h = reg.head(&format!("/v2/{to}/blobs/{digest}"));
    h.expect_status(200);
    assert_eq!(h.content_length(), Some(bytes.len() as u64));
}

#[test]
fn mount_of_a_blob_missing_from_the_source_starts_a_normal_session() {
    let reg = TestRegistry::start();
    let from = reg.repo("mount2/src");
    let other = reg.repo("mount2/other");
    let to = reg.repo("mount2/dst");
    reg.push_blob(&from, b"the source exists");
    // The blob exists in the registry, but not in `from`.
    let bytes = pseudo_random_bytes(24, 2_000);
    let digest = reg.push_blob(&other, &bytes);
    // And a digest nobody has.
    let nowhere = unknown_digest();
    for (what, d) in [
        ("in another repo", digest.as_str()),
        ("nowhere", nowhere.as_str()),
    ] {
        let r = reg.call(
            "POST",
            &format!("/v2/{to}/blobs/uploads/?mount={d}&from={from}"),
            &[],
            Some(b""),
        );
        assert_eq!(
            r.status,
            202,
            "mount of a blob {what}: {} {}",
            r.status,
            r.text()
        );
        let session = reg.loc(r.location());
        assert!(r
            .header("docker-upload-uuid")
            .is_some_and(|u| !u.is_empty()));
        // The session works like any other.
        let payload = format!("fallback upload for {what}").into_bytes();
        let pd = sha256(&payload);
        let url = TestRegistry::with_query(&session, &format!("digest={pd}"));
        reg.call("PUT", &url, &[OCTET], Some(&payload))
            .expect_status(201);
        let g = reg.get_blob(&to, &pd);
        g.expect_status(200);
        assert_eq!(g.body, payload);
    }
    // The failed mount did not link the other repository's blob.
    reg.get_blob(&to, &digest).expect_status(404);
}

#[test]
fn sha512_blob_push_and_pull() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/sha512");
    let bytes = pseudo_random_bytes(25, 9_000);
    let digest = sha512(&bytes);
    assert_eq!(digest.len(), "sha512:".len() + 128);
    let session = reg.start_upload(&repo);
    let url = TestRegistry::with_query(&session, &format!("digest={digest}"));
    let r = reg.call("PUT", &url, &[OCTET], Some(&bytes));
    r.expect_status(201);
    // The digest header is the canonical digest, which MAY use another algorithm.
    assert!(
        digest_matches(r.header("docker-content-digest"), &bytes),
        "{}: digest header",
        r.what
    );
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body == bytes);
    assert!(
        digest_matches(g.header("docker-content-digest"), &g.body),
        "{}: digest header",
        g.what
    );
    let h = reg.head(&format!("/v2/{repo}/blobs/{digest}"));
    h.expect_status(200);
    assert_eq!(h.content_length(), Some(bytes.len() as u64));
    assert!(
        digest_matches(h.header("docker-content-digest"), &bytes),
        "{}: digest header",
        h.what
    );
    // It is pullable through the Location too.
    let g = reg.get(&reg.loc(r.location()));
    g.expect_status(200);
    assert!(g.body == bytes);
    // A wrong sha512 is refused like a wrong sha256.
    let session = reg.start_upload(&repo);
    let wrong = sha512(b"not these bytes");
    let url = TestRegistry::with_query(&session, &format!("digest={wrong}"));
    reg.call("PUT", &url, &[OCTET], Some(&bytes))
        .expect_error(400, &["DIGEST_INVALID"]);
    reg.get_blob(&repo, &wrong).expect_status(404);
}

#[test]
fn sha512_manifest_with_sha512_layer_pushed_and_pulled_by_sha512_digest() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/sha512-manifest");
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    reg.push_blob(&repo, &config);
    let layer = pseudo_random_bytes(27, 4_000);
    let layer_digest = sha512(&layer);
    reg.push_blob_as(&repo, &layer, &layer_digest);
    let layer_desc = Descriptor {
        media_type: OCI_LAYER.into(),
        digest: layer_digest.clone(),
        size: layer.len(),
    };
    let body = image_manifest(
        OCI_MANIFEST,
        &Descriptor::new(OCI_CONFIG, &config),
        &[layer_desc],
        None,
        None,
    );
    let digest = sha512(&body);
    let r = reg.put_manifest(&repo, &digest, OCI_MANIFEST, &body);
    r.expect_status(201);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest.as_str()),
        "must equal the digest the client gave"
    );
    let g = reg.get_manifest(&repo, &digest);
    g.expect_status(200);
    assert_eq!(g.body, body);
    let g = reg.get_blob(&repo, &layer_digest);
    g.expect_status(200);
    assert!(g.body == layer);
}

#[test]
fn mount_from_a_repository_that_does_not_exist_starts_a_session() {
    let reg = TestRegistry::start();
    let to = reg.repo("mount3/dst");
    let holder = reg.repo("mount3/holder");
    let digest = reg.push_blob(&holder, b"held elsewhere");
    let ghost = reg.repo("mount3/ghost");
    let r = reg.call(
        "POST",
        &format!("/v2/{to}/blobs/uploads/?mount={digest}&from={ghost}"),
        &[],
        Some(b""),
    );
    assert_eq!(r.status, 202, "{}: {} {}", r.what, r.status, r.text());
    assert!(r.header("location").is_some());
    reg.get_blob(&to, &digest).expect_status(404);
}

#[test]
fn pushing_the_same_blob_twice_is_fine() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/twice");
    let bytes = pseudo_random_bytes(26, 1_000);
    let d1 = reg.push_blob(&repo, &bytes);
    let d2 = reg.push_blob(&repo, &bytes);
    assert_eq!(d1, d2);
    let g = reg.get_blob(&repo, &d1);
    g.expect_status(200);
    assert!(g.body == bytes);
}

#[test]
fn whole_image_push_then_pull_round_trips() {
    let reg = TestRegistry::start();
    let repo = reg.repo("library/busybox");
    let img = reg.sample_image(&repo, "latest");
    let m = reg.get_manifest(&repo, "latest");
    m.expect_status(200);
    let v = m.json();
    let mut wanted = vec![(
        v["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_string(),
        img.config.clone(),
    )];
    for (i, l) in img.layers.iter().enumerate() {
        wanted.push((
            v["layers"][i]["digest"]
                .as_str()
                .expect("layer digest")
                .to_string(),
            l.clone(),
        ));
    }
    for (digest, bytes) in wanted {
        let b = reg.get_blob(&repo, &digest);
        b.expect_status(200);
        assert_eq!(sha256(&b.body), digest);
        assert!(b.body == bytes);
    }
}

/// Bodies of 8 MiB and more are hashed on a helper thread while they stream:
/// the digest must still be exact, for a monolithic PUT and a chunked PATCH.
#[test]
fn large_blobs_hash_correctly_while_streaming() {
    let reg = TestRegistry::start();
    let repo = reg.repo("push/large");
    let blob = pseudo_random_bytes(42, 20 * 1024 * 1024 + 17);
    let digest = reg.push_blob(&repo, &blob);
    assert_eq!(digest, sha256(&blob));
    let got = reg.get_blob(&repo, &digest);
    got.expect_status(200);
    assert!(got.body == blob, "pulled bytes differ from the pushed ones");

    // The same size streamed with chunked transfer encoding, then a wrong digest.
    let other = pseudo_random_bytes(43, 9 * 1024 * 1024);
    let loc = reg.start_upload(&repo);
    let r = reg.patch_chunked(&loc, &other, 1024 * 1024);
    r.expect_status(202);
    let wrong = sha256(b"not the content");
    let put = reg.call(
        "PUT",
        &TestRegistry::with_query(&reg.loc(r.location()), &format!("digest={wrong}")),
        &[],
        None,
    );
    put.expect_error(400, &["DIGEST_INVALID"]);
    let right = sha256(&other);
    let put = reg.call(
        "PUT",
        &TestRegistry::with_query(&reg.loc(r.location()), &format!("digest={right}")),
        &[],
        None,
    );
    put.expect_status(201);
    assert_eq!(put.header("docker-content-digest"), Some(right.as_str()));
}
