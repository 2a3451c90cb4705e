//! Error reporting: every error is `{"errors":[{"code","message","detail"?}]}`
//! with the right code and status and a JSON Content-Type, and every answer
//! (errors, HEAD errors, /v2/) carries `Docker-Distribution-API-Version:
//! registry/2.0` (asserted for every response in `Resp::from_ureq`).

use crate::harness::*;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// (method, target, headers, body, status, code)
type Case<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Option<Vec<u8>>,
    u16,
    &'a str,
);

#[test]
fn each_error_has_its_code_status_and_envelope() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/codes");
    let img = reg.sample_image(&repo, "v1");
    let d = unknown_digest();
    let session = reg.start_upload(&repo);
    let bad_digest_put = TestRegistry::with_query(&session, "digest=sha256:totallywrong");
    let wrong_digest_put = TestRegistry::with_query(&session, &format!("digest={d}"));
    let ghost = Descriptor::new(OCI_LAYER, b"ghost layer");
    let config = Descriptor::new(OCI_CONFIG, &img.config);
    let missing_blob = image_manifest(OCI_MANIFEST, &config, &[ghost], None, None);
    let ct = ("Content-Type", OCI_MANIFEST);
    // (method, target, headers, body, status, code)
    let cases: Vec<Case> = vec![
        (
            "GET",
            format!("/v2/{repo}/manifests/nosuchtag"),
            vec![],
            None,
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/{repo}/manifests/{d}"),
            vec![],
            None,
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/{repo}/blobs/{d}"),
            vec![],
            None,
            404,
            "BLOB_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/{}/tags/list", reg.repo("err/absent")),
            vec![],
            None,
            404,
            "NAME_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/{repo}/blobs/uploads/6a1f5e0c-2b8d-4c1e-9f3a-000000000000"),
            vec![],
            None,
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "PUT",
            format!("/v2/{repo}/manifests/bad"),
            vec![ct],
            Some(missing_blob),
            400,
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            "PUT",
            format!("/v2/{repo}/manifests/bad"),
            vec![ct],
            Some(b"{nope".to_vec()),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            bad_digest_put,
            vec![OCTET],
            Some(b"abc".to_vec()),
            400,
            "DIGEST_INVALID",
        ),
        (
            "PUT",
            wrong_digest_put,
            vec![OCTET],
            Some(b"abc".to_vec()),
            400,
            "DIGEST_INVALID",
        ),
    ];
    let mut f = Failures::default();
    for (method, target, headers, body, status, code) in cases {
        let r = reg.call(method, &target, &headers, body.as_deref());
        f.add(r.error_mismatch(status, &[code]));
    }
    f.finish();
}

#[test]
fn head_errors_have_status_and_headers_but_no_body() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/head");
    reg.sample_image(&repo, "v1");
    for path in [
        format!("/v2/{repo}/manifests/nosuchtag"),
        format!("/v2/{repo}/blobs/{}", unknown_digest()),
    ] {
        let req = format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let raw = raw_exchange(reg.addr(), req.as_bytes());
        assert_eq!(raw.status, 404, "HEAD {path}");
        assert!(
            raw.body.is_empty(),
            "HEAD {path}: body bytes after the head"
        );
        assert_eq!(
            raw.header("docker-distribution-api-version"),
            Some("registry/2.0"),
            "HEAD {path}"
        );
        // Same through the client (checks the version header again).
        reg.head(&path).expect_status(404);
    }
}

#[test]
fn unknown_routes_under_v2_still_answer_with_the_api_version() {
    let reg = TestRegistry::start();
    for path in ["/v2/_nosuch", "/v2/repo/unknownthing/x", "/v2/repo/blobs"] {
        let r = reg.get(path);
        assert!(
            (400..500).contains(&r.status),
            "{}: status {} (body {})",
            r.what,
            r.status,
            r.text()
        );
    }
}

/// The path and query of a URL the harness returned (for raw requests).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

/// A chunked-coded PATCH (no Content-Length, as dockerd streams) with a Content-Range.
fn raw_chunked_patch(reg: &TestRegistry, session: &str, range: &str, body: &[u8]) -> RawResp {
    let mut req = format!(
        "PATCH {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Range: {range}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        path_of(session),
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    raw_exchange(reg.addr(), &req)
}

/// Client numbers at the edges of u64 in Content-Range: 416 RANGE_INVALID,
/// never a wrap (a count of 0 would have let the body through as SIZE_INVALID)
/// nor a panic, and the session is unchanged.
#[test]
fn extreme_content_ranges_get_416_and_leave_the_session_alone() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/extremes");
    let session = reg.start_upload(&repo);
    let max = u64::MAX;
    let mut f = Failures::default();
    for range in [
        format!("0-{max}"),
        format!("bytes 0-{max}/*"),
        format!("{max}-0"),
        "18446744073709551616-18446744073709551617".to_string(),
        "0-18446744073709551616".to_string(),
        "5-2".to_string(),
    ] {
        let raw = raw_chunked_patch(&reg, &session, &range, b"abc");
        f.check(
            (raw.status, raw.error_code().as_deref()) == (416, Some("RANGE_INVALID")),
            || {
                format!(
                    "chunked PATCH Content-Range {range}: {} {:?}",
                    raw.status,
                    raw.error_code()
                )
            },
        );
        let r = reg.call(
            "PATCH",
            &session,
            &[OCTET, ("Content-Range", &range)],
            Some(b"abc"),
        );
        f.add(r.error_mismatch(416, &["RANGE_INVALID"]));
    }
    // A closing PUT with the same kind of range.
    let put = TestRegistry::with_query(&session, &format!("digest={}", sha256(b"abc")));
    let r = reg.call(
        "PUT",
        &put,
        &[OCTET, ("Content-Range", &format!("0-{max}"))],
        Some(b"abc"),
    );
    f.add(r.error_mismatch(416, &["RANGE_INVALID"]));
    f.finish();
    let st = reg.get(&session);
    st.expect_status(204);
    assert_eq!(st.header("range"), Some("0-0"), "nothing was appended");
}

/// A chunk that starts at u64::MAX is out of order: 416 with the session's
/// Location, UUID and Range (from the acknowledged length), and the detail.
#[test]
fn a_chunk_out_of_order_gets_416_with_the_sessions_range() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/order");
    let session = reg.start_upload(&repo);
    let r = reg.call(
        "PATCH",
        &session,
        &[OCTET, ("Content-Range", "0-9")],
        Some(b"0123456789"),
    );
    r.expect_status(202);
    let session = reg.loc(r.location());
    let max = u64::MAX;
    let r = reg.call(
        "PATCH",
        &session,
        &[OCTET, ("Content-Range", &format!("{max}-{max}"))],
        Some(b"x"),
    );
    r.expect_error(416, &["RANGE_INVALID"]);
    assert_eq!(r.header("range"), Some("0-9"), "{}", r.what);
    assert!(r.header("docker-upload-uuid").is_some(), "{}", r.what);
    assert!(r.location().contains("/blobs/uploads/"), "{}", r.what);
    let detail = &r.json()["errors"][0]["detail"];
    assert_eq!(detail["acknowledged"], 10, "{}", r.what);
    assert_eq!(detail["start"].as_u64(), Some(max), "{}", r.what);
    let st = reg.get(&session);
    assert_eq!(st.header("range"), Some("0-9"), "nothing was appended");
}

/// Range on a blob GET at the edges of u64: clamped, 416 or ignored, never a panic.
#[test]
fn extreme_blob_ranges_are_clamped_or_416() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/ranges");
    let bytes = pseudo_random_bytes(7, 100);
    let digest = reg.push_blob(&repo, &bytes);
    let max = u64::MAX;
    let path = format!("/v2/{repo}/blobs/{digest}");
    let cases: [(String, u16, &[u8]); 6] = [
        (format!("bytes=0-{max}"), 206, &bytes[..]),
        (format!("bytes=-{max}"), 206, &bytes[..]),
        (format!("bytes=90-{max}"), 206, &bytes[90..]),
        (format!("bytes={max}-"), 416, b""),
        (format!("bytes={max}-{max}"), 416, b""),
        ("bytes=18446744073709551616-".to_string(), 200, &bytes[..]),
    ];
    let mut f = Failures::default();
    for (range, status, want) in cases {
        let r = reg.call("GET", &path, &[("Range", &range)], None);
        if status == 416 {
            f.add(r.error_mismatch(416, &["RANGE_INVALID"]));
            f.check(r.header("content-range") == Some("bytes */100"), || {
                format!("{range}: Content-Range {:?}", r.header("content-range"))
            });
        } else {
            f.check(r.status == status && r.body == want, || {
                format!("{range}: {} with {} bytes", r.status, r.body.len())
            });
        }
    }
    f.finish();
}

/// Kinds whose status is not their code's default: each through real HTTP.
#[test]
fn domain_errors_have_their_own_status() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/kinds");
    reg.sample_image(&repo, "v1");
    let tags: String = (0..101).map(|i| format!("tag=t{i}&")).collect();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/v2/_soute/du?grace=soon".into(), 400, "UNSUPPORTED"),
        (
            "GET",
            "/v2/_soute/du?delete_untagged=maybe".into(),
            400,
            "UNSUPPORTED",
        ),
        ("GET", "/v2/_soute/du?tag=v1".into(), 400, "UNSUPPORTED"),
        ("GET", "/v2/_soute/gc".into(), 405, "UNSUPPORTED"),
        ("GET", "/v2/_nosuch/thing/x".into(), 404, "UNSUPPORTED"),
        ("GET", "/ca.crt".into(), 404, "UNSUPPORTED"),
        (
            "PUT",
            format!("/v2/{repo}/manifests/v2?{tags}"),
            414,
            "TAG_INVALID",
        ),
    ];
    let mut f = Failures::default();
    for (method, target, status, code) in cases {
        let body = (method == "PUT").then_some(&b"{}"[..]);
        let r = reg.call(method, &target, &[], body);
        f.add(r.error_mismatch(status, &[code]));
        if status == 405 {
            f.check(r.header("allow").is_some(), || {
                format!("{}: no Allow", r.what)
            });
        }
    }
    f.finish();
}

/// `n=` and seconds at and past the edges of their types: clamped or refused
/// with a code, never a wrap or a 500.
#[test]
fn extreme_numbers_in_queries_are_clamped_or_refused() {
    let reg = TestRegistry::start();
    let repo = reg.repo("err/numbers");
    reg.sample_image(&repo, "v1");
    let max = u64::MAX;
    let over = "18446744073709551616";
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("/v2/_catalog?n={max}"), 200, ""),
        (format!("/v2/{repo}/tags/list?n={max}"), 200, ""),
        (format!("/v1/search?q=numbers&n={max}"), 200, ""),
        (
            format!("/v2/_catalog?n={over}"),
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        (
            format!("/v2/{repo}/tags/list?n={over}"),
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        (
            format!("/v2/{repo}/tags/list?n=-1"),
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        (
            format!("/v1/search?q=numbers&n={over}"),
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        ("/v2/_soute/du?grace=4294967295".into(), 200, ""),
        ("/v2/_soute/du?grace=4294967296".into(), 400, "UNSUPPORTED"),
        (
            format!("/v2/_soute/du?link_grace={max}"),
            400,
            "UNSUPPORTED",
        ),
        ("/v2/_soute/du?upload_ttl=-1".into(), 400, "UNSUPPORTED"),
    ];
    let mut f = Failures::default();
    for (target, status, code) in cases {
        let r = reg.get(&target);
        if status == 200 {
            f.check(r.status == 200, || {
                format!("{}: {} ({})", r.what, r.status, r.text())
            });
        } else {
            f.add(r.error_mismatch(status, &[code]));
        }
    }
    f.finish();
}
