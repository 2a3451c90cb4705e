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
