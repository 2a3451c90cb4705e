//! Upload size limits through the full stack: a body announced past
//! `--max-blob-size` gets 413 BLOB_UPLOAD_INVALID at once, before it is read,
//! on every upload path (single POST, PATCH with and without Content-Range,
//! closing PUT), and changes nothing; a chunked body that streams past the
//! limit is cut there and the session rolls back to its acknowledged length.
//! `check-config` shows both limits. (The disk reserve needs a small
//! filesystem: `tests/ops/limits.rs`.)

use crate::harness::*;
use std::path::Path;
use std::time::{Duration, Instant};

const TERA: u64 = 1_000_000_000_000;
const LIMIT: u64 = 1 << 20;

/// The session id: the last segment of its URL's path.
fn session_id(session: &str) -> String {
    let path = path_of(session);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .expect("id")
        .to_string()
}

fn upload_file_len(data: &Path, session: &str) -> u64 {
    std::fs::metadata(data.join("uploads").join(session_id(session)))
        .map(|m| m.len())
        .unwrap_or_else(|e| panic!("upload file of {session}: {e}"))
}

fn upload_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("uploads"))
        .expect("uploads/")
        .count()
}

/// The session's acknowledged `Range` header.
fn range_of(reg: &TestRegistry, session: &str) -> String {
    let r = reg.get(session);
    r.expect_status(204);
    r.header("range").expect("Range").to_string()
}

/// Sends only the head of `method path` announcing `len` bytes (plus
/// `extra` headers and a first 64 KiB of body) and reads the answer; asserts
/// 413 BLOB_UPLOAD_INVALID with the limit in its detail, within 5 s.
fn expect_413_at_once(reg: &TestRegistry, what: &str, head: String, limit: u64) -> RawResp {
    let mut req = head.into_bytes();
    req.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let t0 = Instant::now();
    let r = send_and_read(reg.addr(), req);
    let took = t0.elapsed();
    assert_eq!(r.status, 413, "{what}: {}", r.text());
    assert_eq!(
        r.error_code().as_deref(),
        Some("BLOB_UPLOAD_INVALID"),
        "{what}"
    );
    let body = r.json().expect("JSON envelope");
    assert_eq!(body["errors"][0]["detail"]["limit"], limit, "{what}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit")),
        "{what}: {body}"
    );
    // The server did not wait for (or read) the announced body.
    assert!(took < Duration::from_secs(5), "{what}: took {took:?}");
    r
}

#[test]
fn bodies_announced_past_the_largest_blob_get_413_before_they_are_read() {
    let Some(reg) = TestRegistry::local("announced_past_max_blob_size") else {
        return;
    };
    let data = reg.data_dir().expect("data").to_path_buf();
    let repo = reg.repo("limits/announced");
    let default_limit = 64u64 << 30;
    let digest = sha256(b"never sent");

    // Single POST ?digest=: no session is even made.
    let post = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {TERA}\r\n\r\n"
    );
    let r = expect_413_at_once(&reg, "POST ?digest=", post, default_limit);
    assert!(
        r.closed,
        "a 10^12-byte body is not drained: the connection closes"
    );
    assert_eq!(upload_files(&data), 0, "no session made by a refused POST");
    // With Expect: 100-continue the client is told before it sends anything.
    let post_expect = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {TERA}\r\nExpect: 100-continue\r\n\r\n"
    );
    let r = raw_exchange(reg.addr(), post_expect.as_bytes());
    assert_eq!(r.status, 413, "no 100 Continue first: {}", r.status_line);

    // A session with 10 acknowledged bytes.
    let blob = pseudo_random_bytes(11, 30);
    let session = reg.start_upload(&repo);
    let r = reg.call(
        "PATCH",
        &session,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "0-9"),
        ],
        Some(&blob[..10]),
    );
    r.expect_status(202);
    let path = path_of(&session);
    let cases = [
        (
            "PATCH without Content-Range",
            format!("PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {TERA}\r\n\r\n"),
        ),
        (
            "PATCH with Content-Range",
            format!(
                "PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Range: 10-{}\r\nContent-Length: {TERA}\r\n\r\n",
                TERA + 9
            ),
        ),
        (
            "PATCH chunked with a Content-Range past the limit",
            format!(
                "PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Range: 10-{}\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n",
                TERA + 9
            ),
        ),
        (
            "closing PUT with a body",
            format!(
                "PUT {path}?digest={} HTTP/1.1\r\nHost: x\r\nContent-Length: {TERA}\r\n\r\n",
                sha256(&blob)
            ),
        ),
    ];
    for (what, head) in cases {
        expect_413_at_once(&reg, what, head, default_limit);
        assert_eq!(range_of(&reg, &session), "0-9", "{what}: session unchanged");
        assert_eq!(
            upload_file_len(&data, &session),
            10,
            "{what}: no file growth"
        );
    }
    // The session still finishes with the right bytes.
    let url = TestRegistry::with_query(&session, &format!("digest={}", sha256(&blob)));
    let r = reg.call(
        "PUT",
        &url,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "10-29"),
        ],
        Some(&blob[10..]),
    );
    r.expect_status(201);
    assert_eq!(reg.get_blob(&repo, &sha256(&blob)).body, blob);
}

#[test]
fn the_limit_is_inclusive_on_a_single_post() {
    let Some(reg) =
        TestRegistry::local_with("max_blob_size_inclusive", |cfg| cfg.max_blob_size = LIMIT)
    else {
        return;
    };
    let data = reg.data_dir().expect("data").to_path_buf();
    let repo = reg.repo("limits/inclusive");
    let exact = pseudo_random_bytes(21, LIMIT as usize);
    let over = pseudo_random_bytes(22, LIMIT as usize + 1);
    let post = |bytes: &[u8]| {
        reg.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(bytes)),
            &[("Content-Type", "application/octet-stream")],
            Some(bytes),
        )
    };
    post(&over).expect_error(413, &["BLOB_UPLOAD_INVALID"]);
    assert_eq!(upload_files(&data), 0, "nothing left of the refused POST");
    reg.get_blob(&repo, &sha256(&over)).expect_status(404);
    post(&exact).expect_status(201);
    assert_eq!(reg.get_blob(&repo, &sha256(&exact)).body, exact);
}

#[test]
fn a_chunked_body_streaming_past_the_limit_gets_413_and_the_session_stays() {
    let Some(reg) = TestRegistry::local_with("chunked_past_max_blob_size", |cfg| {
        cfg.max_blob_size = LIMIT
    }) else {
        return;
    };
    let data = reg.data_dir().expect("data").to_path_buf();
    let repo = reg.repo("limits/chunked");
    let blob = pseudo_random_bytes(31, 1_000_000);
    let session = reg.start_upload(&repo);
    reg.patch_chunked(&session, &blob[..300_000], 64 * 1024)
        .expect_status(202);
    assert_eq!(range_of(&reg, &session), "0-299999");

    // 300,000 + 900,000 bytes pass 1 MiB: cut there, the chunk rolled back.
    let too_much = pseudo_random_bytes(32, 900_000);
    let r = reg.patch_chunked(&session, &too_much, 64 * 1024);
    r.expect_error(413, &["BLOB_UPLOAD_INVALID"]);
    assert_eq!(r.json()["errors"][0]["detail"]["limit"], LIMIT);
    assert_eq!(range_of(&reg, &session), "0-299999", "session unchanged");
    assert_eq!(upload_file_len(&data, &session), 300_000, "file cut back");

    // The correct next chunk still works, and the blob is the right one.
    reg.patch_chunked(&session, &blob[300_000..], 64 * 1024)
        .expect_status(202);
    assert_eq!(range_of(&reg, &session), "0-999999");
    let url = TestRegistry::with_query(&session, &format!("digest={}", sha256(&blob)));
    reg.call("PUT", &url, &[], None).expect_status(201);
    assert_eq!(reg.get_blob(&repo, &sha256(&blob)).body, blob);

    // A chunked single POST past the limit: 413 and no session left.
    let big = pseudo_random_bytes(33, LIMIT as usize + 300_000);
    let url = reg.url(&format!(
        "/v2/{repo}/blobs/uploads/?digest={}",
        sha256(&big)
    ));
    let ct = [("Content-Type", "application/octet-stream")];
    let r = call_chunked(&http_agent(), "POST", &url, &ct, &big, 64 * 1024);
    r.expect_error(413, &["BLOB_UPLOAD_INVALID"]);
    assert_eq!(upload_files(&data), 0, "no session left by the POST");
}

#[test]
fn a_chunked_upload_that_never_ends_is_cut_at_the_limit() {
    let Some(reg) =
        TestRegistry::local_with("endless_chunked_upload", |cfg| cfg.max_blob_size = LIMIT)
    else {
        return;
    };
    let data = reg.data_dir().expect("data").to_path_buf();
    let repo = reg.repo("limits/endless");
    let session = reg.start_upload(&repo);
    // 64 MiB of chunks with no last chunk: as far as the server can tell the
    // body never ends. The writer stops when the server closes.
    let mut req = format!(
        "PATCH {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        path_of(&session)
    )
    .into_bytes();
    let piece = vec![b'z'; 64 * 1024];
    for _ in 0..1024 {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(&piece);
        req.extend_from_slice(b"\r\n");
    }
    let t0 = Instant::now();
    let r = send_and_read(reg.addr(), req);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("BLOB_UPLOAD_INVALID"));
    assert!(r.closed, "the rest of an endless body is not drained");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_eq!(range_of(&reg, &session), "0-0", "nothing acknowledged");
    assert_eq!(upload_file_len(&data, &session), 0, "nothing kept");
}

#[test]
fn check_config_shows_both_limits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let data = data.to_str().expect("utf-8 path");
    let (ok, out, err) = run_soute(&["check-config", "--data", data]);
    assert!(ok, "{err}");
    assert!(
        out.contains("max blob size:    64 GiB (68719476736 bytes)"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("disk reserve:"))
        .unwrap_or_else(|| panic!("no disk reserve line: {out}"));
    assert!(
        line.contains("(the smaller of 1 GiB and 5 % of "),
        "resolved on the data folder's filesystem: {line}"
    );
    assert!(!Path::new(data).exists(), "check-config creates nothing");

    let args = [
        "check-config",
        "--data",
        data,
        "--max-blob-size",
        "500MB",
        "--disk-reserve",
        "2GiB",
    ];
    let (ok, out, err) = run_soute(&args);
    assert!(ok, "{err}");
    assert!(
        out.contains("max blob size:    476.8 MiB (500000000 bytes)"),
        "{out}"
    );
    assert!(out.contains("disk reserve:     2 GiB\n"), "{out}");

    let out = soute_bin()
        .args(["check-config", "--data", data])
        .env("SOUTE_MAX_BLOB_SIZE", "1.5GiB")
        .env("SOUTE_DISK_RESERVE", "0")
        .output()
        .expect("run soute");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("max blob size:    1.5 GiB (1610612736 bytes)"),
        "{text}"
    );
    assert!(text.contains("disk reserve:     off"), "{text}");

    for (flag, value) in [
        ("--max-blob-size", "lots"),
        ("--max-blob-size", "0"),
        ("--disk-reserve", "120%"),
    ] {
        let (ok, _, err) = run_soute(&["check-config", "--data", data, flag, value]);
        assert!(!ok, "{flag} {value} accepted");
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}
