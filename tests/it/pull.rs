//! Pull (end-1, end-2, end-3): GET/HEAD of manifests and blobs by tag and by
//! digest, exact bytes, true Content-Length and Docker-Content-Digest on HEAD,
//! the pushed Content-Type, single-range requests on blobs, repository scoping.

use crate::harness::*;

#[test]
fn v2_root_answers_200_with_api_version() {
    let reg = TestRegistry::start();
    let r = reg.get("/v2/");
    r.expect_status(200);
    // Resp::from_ureq asserts Docker-Distribution-API-Version: registry/2.0 on it.
    assert!(r.body.is_empty() || serde_json::from_slice::<serde_json::Value>(&r.body).is_ok());
}

#[test]
fn manifest_by_tag_and_by_digest_returns_the_pushed_bytes() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/app");
    let img = reg.sample_image(&repo, "v1");
    for reference in ["v1", img.digest.as_str()] {
        let r = reg.get_manifest(&repo, reference);
        r.expect_status(200);
        assert_eq!(r.body, img.manifest, "{}: body", r.what);
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST), "{}", r.what);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(img.digest.as_str()),
            "{}",
            r.what
        );
        assert_eq!(
            r.content_length(),
            Some(img.manifest.len() as u64),
            "{}",
            r.what
        );
    }
}

#[test]
fn head_manifest_carries_true_length_digest_and_type_and_no_body() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/head");
    let img = reg.sample_image(&repo, "v1");
    for reference in ["v1", img.digest.as_str()] {
        let r = reg.head_manifest(&repo, reference);
        r.expect_status(200);
        assert_eq!(
            r.content_length(),
            Some(img.manifest.len() as u64),
            "{}",
            r.what
        );
        assert_eq!(
            r.header("docker-content-digest"),
            Some(img.digest.as_str()),
            "{}",
            r.what
        );
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST), "{}", r.what);
    }
    // A raw HEAD proves no body bytes follow the head.
    let req = format!(
        "HEAD /v2/{repo}/manifests/v1 HTTP/1.1\r\nHost: x\r\nAccept: {MANIFEST_ACCEPT}\r\nConnection: close\r\n\r\n"
    );
    let raw = raw_exchange(reg.addr(), req.as_bytes());
    assert_eq!(raw.status, 200);
    assert!(
        raw.body.is_empty(),
        "HEAD answered with {} body bytes",
        raw.body.len()
    );
}

#[test]
fn blob_get_and_head_return_bytes_length_and_digest() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/blob");
    // Larger than 32 KiB: a server that switches to chunked responses above a
    // threshold would lose Content-Length on HEAD.
    let bytes = pseudo_random_bytes(1, 100 * 1024 + 7);
    let digest = reg.push_blob(&repo, &bytes);
    let path = format!("/v2/{repo}/blobs/{digest}");

    let r = reg.get(&path);
    r.expect_status(200);
    assert_eq!(r.body.len(), bytes.len());
    assert!(r.body == bytes, "GET blob: body differs");
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(r.content_length(), Some(bytes.len() as u64));
    assert_eq!(sha256(&r.body), digest);

    let h = reg.head(&path);
    h.expect_status(200);
    assert_eq!(
        h.content_length(),
        Some(bytes.len() as u64),
        "HEAD blob Content-Length"
    );
    assert_eq!(h.header("docker-content-digest"), Some(digest.as_str()));
    assert!(
        h.header("transfer-encoding").is_none(),
        "HEAD blob must not be chunked"
    );
}

#[test]
fn blob_single_range_requests_get_206_with_content_range() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/range");
    let bytes = pseudo_random_bytes(2, 1000);
    let digest = reg.push_blob(&repo, &bytes);
    let path = format!("/v2/{repo}/blobs/{digest}");
    // (Range header, first byte, last byte)
    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-9", 0, 9),
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-10", 990, 999),
        ("bytes=500-100000", 500, 999),
        ("bytes=0-999", 0, 999),
        ("bytes=999-999", 999, 999),
    ];
    let mut f = Failures::default();
    for (range, first, last) in cases {
        let r = reg.call("GET", &path, &[("Range", range)], None);
        let want = format!("bytes {first}-{last}/1000");
        f.check(r.status == 206, || format!("{range}: status {}", r.status));
        f.check(r.header("content-range") == Some(want.as_str()), || {
            format!(
                "{range}: Content-Range {:?}, want {want}",
                r.header("content-range")
            )
        });
        f.check(
            r.content_length() == Some((last - first + 1) as u64),
            || format!("{range}: Content-Length {:?}", r.content_length()),
        );
        f.check(r.body == bytes[*first..=*last], || {
            format!("{range}: body bytes ({} bytes)", r.body.len())
        });
    }
    f.finish();
}

#[test]
fn blob_unsatisfiable_range_gets_416() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/range416");
    let bytes = pseudo_random_bytes(3, 1000);
    let digest = reg.push_blob(&repo, &bytes);
    let path = format!("/v2/{repo}/blobs/{digest}");
    for range in ["bytes=1000-", "bytes=5000-6000", "bytes=1000-1000"] {
        let r = reg.call("GET", &path, &[("Range", range)], None);
        assert_eq!(r.status, 416, "{range}: status (body {})", r.text());
        if let Some(cr) = r.header("content-range") {
            assert_eq!(cr, "bytes */1000", "{range}: Content-Range on 416");
        }
    }
    // The blob is still served whole without Range.
    let r = reg.get(&path);
    r.expect_status(200);
    assert!(r.body == bytes);
}

#[test]
fn odd_range_headers_are_ignored_or_refused_never_misserved() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/oddrange");
    let bytes = pseudo_random_bytes(4, 1000);
    let digest = reg.push_blob(&repo, &bytes);
    let path = format!("/v2/{repo}/blobs/{digest}");
    let mut f = Failures::default();
    for range in [
        "bytes=0-1,5-6",
        "bytes=abc",
        "items=0-5",
        "bytes=9-2",
        "bytes=-0",
        "bytes=",
    ] {
        let r = reg.call("GET", &path, &[("Range", range)], None);
        match r.status {
            // Ignored: the whole blob.
            200 => f.check(r.body == bytes, || {
                format!("{range}: 200 with a partial body ({} bytes)", r.body.len())
            }),
            // Served as one range: the body must be what Content-Range says.
            206 => {
                let cr = r.header("content-range").unwrap_or_default().to_string();
                let span = cr
                    .strip_prefix("bytes ")
                    .and_then(|s| s.split_once('/'))
                    .and_then(|(a, _)| a.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
                f.check(
                    span.is_some_and(|(a, b)| a <= b && b < bytes.len() && r.body == bytes[a..=b]),
                    || {
                        format!(
                            "{range}: 206 with Content-Range {cr:?} and {} body bytes",
                            r.body.len()
                        )
                    },
                );
            }
            416 => {}
            s => f.check(false, || format!("{range}: status {s}")),
        }
    }
    f.finish();
}

#[test]
fn the_empty_blob_can_be_pushed_and_pulled() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/empty");
    let digest = reg.push_blob(&repo, b"");
    assert_eq!(
        digest,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let g = reg.get_blob(&repo, &digest);
    g.expect_status(200);
    assert!(g.body.is_empty());
    assert_eq!(g.content_length(), Some(0));
    let h = reg.head(&format!("/v2/{repo}/blobs/{digest}"));
    h.expect_status(200);
    assert_eq!(h.content_length(), Some(0));
    assert_eq!(h.header("docker-content-digest"), Some(digest.as_str()));
}

#[test]
fn blob_is_only_visible_in_the_repository_it_was_pushed_to() {
    let reg = TestRegistry::start();
    let a = reg.repo("scope/a");
    let b = reg.repo("scope/b");
    let secret = b"only in a".to_vec();
    let digest = reg.push_blob(&a, &secret);
    reg.push_blob(&b, b"something else in b");
    let r = reg.get_blob(&b, &digest);
    r.expect_error(404, &["BLOB_UNKNOWN"]);
    let h = reg.head(&format!("/v2/{b}/blobs/{digest}"));
    h.expect_status(404);
    let r = reg.get_blob(&a, &digest);
    r.expect_status(200);
    assert_eq!(r.body, secret);
}

#[test]
fn unknown_content_is_404_with_the_right_code() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/unknown");
    reg.sample_image(&repo, "v1");
    let d = unknown_digest();
    reg.get_manifest(&repo, "nope")
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    reg.get_manifest(&repo, &d)
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    reg.get_blob(&repo, &d).expect_error(404, &["BLOB_UNKNOWN"]);
    for path in [
        format!("/v2/{repo}/manifests/nope"),
        format!("/v2/{repo}/blobs/{d}"),
    ] {
        let h = reg.head(&path);
        h.expect_status(404);
    }
    // A blob digest is not a manifest (CVE-2017-11468 pattern).
    let m = reg.get_manifest(&repo, "v1").json();
    let layer = m["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    reg.get_manifest(&repo, &layer)
        .expect_error(404, &["MANIFEST_UNKNOWN"]);
    reg.head_manifest(&repo, &layer).expect_status(404);
    let other = reg.repo("pull/never-pushed");
    let r = reg.get_manifest(&other, "v1");
    r.expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
}

/// The v1.1 conformance suite reads `.INVALID_MANIFEST_NAME` and expects 404:
/// an invalid tag names nothing.
#[test]
fn reading_an_invalid_tag_is_manifest_unknown() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/badtag");
    reg.sample_image(&repo, "v1");
    let r = reg.get_manifest(&repo, ".INVALID_MANIFEST_NAME");
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    let h = reg.head_manifest(&repo, ".INVALID_MANIFEST_NAME");
    h.expect_status(404);
    assert!(h.body.is_empty(), "{}: HEAD has no body", h.what);
}

/// A range whose last byte is before its first is unsatisfiable (416 with
/// `Content-Range: bytes */size`), as the newer conformance suite expects.
#[test]
fn reversed_range_is_416() {
    let reg = TestRegistry::start();
    let repo = reg.repo("pull/reversed");
    let blob = pseudo_random_bytes(7, 2048);
    let digest = reg.push_blob(&repo, &blob);
    let r = reg.call(
        "GET",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[("Range", "bytes=500-0")],
        None,
    );
    r.expect_error(416, &["RANGE_INVALID"]);
    assert_eq!(
        r.header("content-range"),
        Some("bytes */2048"),
        "{}",
        r.what
    );
}
