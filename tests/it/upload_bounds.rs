//! Bounds on upload sessions and on `docker search`, through real HTTP on
//! loopback: unknown session ids leave no in-memory state, a busy session is
//! answered at once, open sessions are capped per client and in total, and
//! search terms and stored search text are capped.
//!
//! Must NEVER talk to a non-loopback address or loop without a deadline.

use crate::support::*;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn patch(agent: &ureq::Agent, url: &str, body: &[u8]) -> Resp {
    call(
        agent,
        "PATCH",
        url,
        None,
        &[("Content-Type", "application/octet-stream")],
        Some(body),
    )
}

fn start(agent: &ureq::Agent, soute: &Soute, repo: &str) -> Resp {
    call(
        agent,
        "POST",
        &soute.url(&format!("/v2/{repo}/blobs/uploads/")),
        None,
        &[],
        None,
    )
}

fn files_in_uploads(soute: &Soute) -> usize {
    std::fs::read_dir(soute.data().join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn unknown_session_ids_leave_no_state_and_ended_sessions_free_theirs() {
    let soute = Soute::plain();
    let agent = http_agent();
    let mut rng = Rng::seeded("unknown_session_ids_leave_no_state");
    let deadline = Deadline::after(Duration::from_secs(60));
    for i in 0..2_000 {
        assert!(deadline.left(), "only {i} requests in time");
        let id: String = (0..32)
            .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
            .collect();
        let url = soute.url(&format!("/v2/l/x/blobs/uploads/{id}"));
        let r = if i % 2 == 0 {
            patch(&agent, &url, b"x")
        } else {
            call(
                &agent,
                "PUT",
                &with_query(&url, &format!("digest={}", sha256(b"x"))),
                None,
                &[],
                Some(b"x"),
            )
        };
        r.expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    }
    assert_eq!(
        soute.registry().session_states(),
        0,
        "unknown ids made map entries"
    );

    // A real session has state while open; finishing or cancelling frees it.
    let a = start(&agent, &soute, "l/x")
        .expect_status(202)
        .location()
        .to_string();
    patch(&agent, &soute.url(&a), b"abc").expect_status(202);
    let b = start(&agent, &soute, "l/x")
        .expect_status(202)
        .location()
        .to_string();
    patch(&agent, &soute.url(&b), b"def").expect_status(202);
    assert_eq!(soute.registry().session_states(), 2);
    let put = with_query(&soute.url(&a), &format!("digest={}", sha256(b"abc")));
    call(&agent, "PUT", &put, None, &[], None).expect_status(201);
    call(&agent, "DELETE", &soute.url(&b), None, &[], None).expect_status(204);
    assert_eq!(
        soute.registry().session_states(),
        0,
        "ended sessions kept state"
    );
}

#[test]
fn a_request_on_a_busy_session_is_answered_at_once_with_416() {
    let soute = Soute::plain();
    let agent = http_agent();
    let loc = start(&agent, &soute, "busy/x")
        .expect_status(202)
        .location()
        .to_string();
    // A PATCH that announces 10 bytes and sends 4: its worker holds the session.
    let mut slow = Conn::open(soute.addr(), Duration::from_secs(10));
    slow.send(
        format!("PATCH {loc} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n0123")
            .as_bytes(),
    );
    // Wait (bounded) until the slow request holds the session (its state
    // appears just before it takes the lock), then a little longer.
    wait_until(
        "the slow PATCH holds the session",
        Duration::from_secs(10),
        || soute.registry().session_states() == 1,
    );
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let busy = patch(&agent, &soute.url(&loc), b"zz");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        t.elapsed()
    );
    busy.expect_error(416, &["BLOB_UPLOAD_INVALID", "RANGE_INVALID"]);
    assert!(busy.header("Range").is_some(), "no Range on the 416");
    // The slow request completes and its bytes are the session's.
    slow.w.write_all(b"456789").expect("rest of the body");
    let done = slow.resp();
    assert_eq!(done.status, 202, "{}", done.text());
    let put = with_query(
        &soute.url(&loc),
        &format!("digest={}", sha256(b"0123456789")),
    );
    call(&agent, "PUT", &put, None, &[], None).expect_status(201);
}

#[test]
fn open_sessions_are_capped_per_client_and_in_total() {
    let soute = Soute::start(|cfg| {
        cfg.max_upload_sessions_per_client = 3;
        cfg.max_upload_sessions = 100;
    });
    let agent = http_agent();
    let mut open = Vec::new();
    for i in 0..3 {
        open.push(
            start(&agent, &soute, &format!("r{i}/x"))
                .expect_status(202)
                .location()
                .to_string(),
        );
    }
    let files = files_in_uploads(&soute);
    let refused = start(&agent, &soute, "r9/x");
    refused.expect_error(429, &["TOOMANYREQUESTS"]);
    assert!(refused.header("Retry-After").is_some(), "no Retry-After");
    assert_eq!(
        files_in_uploads(&soute),
        files,
        "a refused start made a file"
    );
    // A cancelled session gives its place back.
    call(&agent, "DELETE", &soute.url(&open[0]), None, &[], None).expect_status(204);
    start(&agent, &soute, "r9/x").expect_status(202);
    drop(soute);

    let soute = Soute::start(|cfg| {
        cfg.max_upload_sessions_per_client = 100;
        cfg.max_upload_sessions = 4;
    });
    for i in 0..4 {
        start(&agent, &soute, &format!("t{i}/x")).expect_status(202);
    }
    start(&agent, &soute, "t9/x").expect_error(429, &["TOOMANYREQUESTS"]);
    assert_eq!(files_in_uploads(&soute), 4);
}

fn push_described(soute: &Soute, repo: &str, description: &str) {
    let agent = http_agent();
    let config = b"{}".to_vec();
    let digest = sha256(&config);
    let url = soute.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"));
    call(&agent, "POST", &url, None, &[], Some(&config)).expect_status(201);
    let mut m: serde_json::Value = serde_json::from_slice(&image_manifest(
        MANIFEST,
        &Descriptor::new("application/vnd.oci.image.config.v1+json", &config),
        &[],
        None,
        None,
    ))
    .expect("manifest");
    m["annotations"] = json!({ "org.opencontainers.image.description": description });
    let body = serde_json::to_vec(&m).expect("json");
    call(
        &agent,
        "PUT",
        &soute.url(&format!("/v2/{repo}/manifests/v1")),
        None,
        &[("Content-Type", MANIFEST)],
        Some(&body),
    )
    .expect_status(201);
}

#[test]
fn search_terms_and_stored_search_text_are_capped() {
    let soute = Soute::plain();
    let agent = http_agent();
    // 2,000 characters: a marker at 500 (kept) and one at 1,500 (cut off).
    let text = format!(
        "{}early1{}late1{}",
        "é".repeat(500),
        "é".repeat(994),
        "é".repeat(500)
    );
    push_described(&soute, "described/app", &text);
    let search = |q: &str| get(&agent, &soute.url(&format!("/v1/search?q={q}")), None);
    let hit = search("early1");
    hit.expect_status(200);
    let results = hit.json()["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 1, "{}", hit.text());
    let description = results[0]["description"].as_str().expect("description");
    assert_eq!(description.chars().count(), 1024);
    let miss = search("late1");
    assert_eq!(
        miss.json()["num_results"],
        0,
        "text past the cap was searched"
    );

    search(&"a".repeat(128)).expect_status(200);
    search(&"a".repeat(129)).expect_error(400, &["UNSUPPORTED"]);
    search(&"a".repeat(49_000)).expect_error(400, &["UNSUPPORTED"]);
}
