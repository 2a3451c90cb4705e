//! HTTP/1.1 framing through the full stack, on raw sockets: oversized heads
//! (431), ambiguous or malformed body framing (400, connection closed), a huge
//! declared manifest body (413 at once, connection closed), half-sent heads
//! that stall (others are served; the stalled one is cut at the head
//! timeout), keep-alive.

use crate::harness::*;
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn an_oversized_head_gets_431_and_the_server_goes_on() {
    let reg = TestRegistry::start();
    // One huge header line (over 1 MiB, beyond any sane head limit).
    let mut req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', (1 << 20) + 4096));
    req.extend_from_slice(b"\r\n\r\n");
    let r = send_and_read(reg.addr(), req);
    assert_eq!(r.status, 431, "one huge header line");
    assert!(r.closed, "connection must be closed after 431");

    // Many small headers adding up to the same.
    let mut req = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..20_000 {
        req.extend_from_slice(format!("X-H{i}: {}\r\n", "b".repeat(50)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let r = send_and_read(reg.addr(), req);
    assert_eq!(r.status, 431, "20000 headers");
    reg.get("/v2/").expect_status(200);
}

#[test]
fn ambiguous_or_malformed_body_framing_gets_400_and_a_closed_connection() {
    let reg = TestRegistry::start();
    let repo = reg.repo("frame/ambig");
    let path = format!("/v2/{repo}/blobs/uploads/");
    let session = path_of(&reg.start_upload(&repo));
    let cases: Vec<(&str, String, Option<&[u16]>)> = vec![
        (
            "Content-Length and Transfer-Encoding",
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            None,
        ),
        (
            "two different Content-Lengths",
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello"),
            None,
        ),
        ("Content-Length: abc", format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"), None),
        ("Content-Length: -1", format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), None),
        (
            "Transfer-Encoding: gzip",
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxxxx"),
            Some(&[400, 501]),
        ),
        (
            "bad chunk size",
            format!(
                "PATCH {session} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
            ),
            None,
        ),
        (
            "chunk longer than its size",
            format!(
                "PATCH {session} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"
            ),
            None,
        ),
    ];
    let mut f = Failures::default();
    for (what, req, statuses) in cases {
        let r = send_and_read(reg.addr(), req.into_bytes());
        let statuses = statuses.unwrap_or(&[400]);
        f.check(statuses.contains(&r.status), || {
            format!("{what}: status {}, want {statuses:?}", r.status)
        });
        f.check(r.closed, || format!("{what}: connection left open"));
    }
    f.finish();
    reg.get("/v2/").expect_status(200);
}

#[test]
fn a_huge_declared_manifest_body_gets_413_promptly_and_a_closed_connection() {
    let reg = TestRegistry::start();
    let repo = reg.repo("frame/huge");
    reg.sample_image(&repo, "v1");
    // Promptly: the 413 must come while the body is still unsent. Waiting
    // for it would take the body timeout (30 s or more), past this 20 s
    // socket timeout, so an answer at all proves it.
    let mut s = connect(reg.addr(), Duration::from_secs(20));
    let head = format!(
        "PUT /v2/{repo}/manifests/huge HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: 1000000000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write head");
    let _ = s.write_all(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#,
    );
    let r = read_response(&mut s, false).expect("a response without sending the body");
    assert_eq!(r.status, 413, "Content-Length: 1e12 on a manifest PUT");
    assert!(
        r.closed || peer_closed(&mut s, Some(Duration::from_secs(5))),
        "connection must be closed after 413"
    );
    reg.get_manifest(&repo, "huge").expect_status(404);
    reg.get("/v2/").expect_status(200);
}

/// Long enough that a loaded machine serves three requests well within it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn stalled_half_heads_do_not_block_other_clients() {
    let Some(reg) =
        TestRegistry::local_with("stalled_half_heads_do_not_block_other_clients", |c| {
            c.http.head_timeout = HEAD_TIMEOUT
        })
    else {
        return;
    };
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut s = connect(reg.addr(), Duration::from_secs(10));
        s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .expect("write");
        stalled.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..3 {
        reg.get("/v2/").expect_status(200);
    }
    // Ordering, not a stopwatch: the other clients were answered while every
    // stalled connection was still open (not served after they were cut).
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(
            !peer_closed(s, Some(Duration::from_millis(10))),
            "stalled connection {i} was cut before the other clients were answered"
        );
    }
    // The stalled connections are cut once the head timeout has passed.
    let deadline = Instant::now() + HEAD_TIMEOUT + Duration::from_secs(10);
    for s in &mut stalled {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        assert!(
            peer_closed(s, Some(left)),
            "a stalled connection outlived the head timeout by far"
        );
    }
    reg.get("/v2/").expect_status(200);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let reg = TestRegistry::start();
    let repo = reg.repo("frame/keepalive");
    let img = reg.sample_image(&repo, "v1");
    let mut s = connect(reg.addr(), Duration::from_secs(10));
    let layer = sha256(&img.layers[1]);
    let reqs = [
        "GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        format!("HEAD /v2/{repo}/blobs/{layer} HTTP/1.1\r\nHost: x\r\n\r\n"),
        format!("GET /v2/{repo}/blobs/{layer} HTTP/1.1\r\nHost: x\r\n\r\n"),
        format!("GET /v2/{repo}/manifests/nosuch HTTP/1.1\r\nHost: x\r\nAccept: {MANIFEST_ACCEPT}\r\n\r\n"),
        format!("GET /v2/{repo}/manifests/v1 HTTP/1.1\r\nHost: x\r\nAccept: {MANIFEST_ACCEPT}\r\n\r\n"),
    ];
    let want = [200, 200, 200, 404, 200];
    for (i, req) in reqs.iter().enumerate() {
        s.write_all(req.as_bytes()).expect("write");
        let r = read_response(&mut s, req.starts_with("HEAD")).expect("response");
        assert_eq!(r.status, want[i], "request {i} on a kept-alive connection");
        assert!(!r.closed, "request {i}: connection closed early");
        match i {
            1 => assert_eq!(
                r.header("content-length"),
                Some(img.layers[1].len().to_string().as_str())
            ),
            2 => assert!(r.body == img.layers[1]),
            4 => assert_eq!(r.body, img.manifest),
            _ => {}
        }
    }
}
