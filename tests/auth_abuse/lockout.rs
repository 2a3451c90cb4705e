//! Failed logins back off per (user, address) and per address: nobody can
//! lock a user out of other addresses, and each repeat waits longer.

use crate::support::*;
use crate::SERVE;
use std::net::Ipv4Addr;
use std::time::Duration;

fn from(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

fn expect_throttled(r: &RawResp) -> u64 {
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.text().contains("TOOMANYREQUESTS"), "{r:?}");
    r.retry_after()
}

#[test]
fn a_user_locked_out_from_one_address_still_signs_in_from_another_and_back_off_doubles() {
    let server = Served::fresh(SERVE);
    server.user_ok(&["add", "alice"], Some("alice-pw"));
    let port = server.port();
    let right = basic("alice", "alice-pw");
    let wrong = basic("alice", "guess");

    // 10 wrong passwords for alice from 127.0.0.2: the 10th starts a 1 s back-off.
    for i in 0..10 {
        let r = call_from(from(2), port, "GET", "/v2/", Some(&wrong));
        assert_eq!(r.status, 401, "failure {i}: {r:?}");
    }
    assert_eq!(
        expect_throttled(&call_from(from(2), port, "GET", "/v2/", Some(&wrong))),
        1
    );
    // Even the right password waits there (it is not cached yet) ...
    expect_throttled(&call_from(from(2), port, "GET", "/v2/", Some(&right)));
    // ... but alice signs in from 127.0.0.3, at once.
    assert_eq!(
        call_from(from(3), port, "GET", "/v2/", Some(&right)).status,
        200
    );

    // Each further failure from 127.0.0.2 doubles the wait: 2 s, then 4 s.
    let mut wait = 1;
    for want in [2, 4] {
        std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(100));
        let r = call_from(from(2), port, "GET", "/v2/", Some(&wrong));
        assert_eq!(r.status, 401, "after waiting {wait}s: {r:?}");
        wait = expect_throttled(&call_from(from(2), port, "GET", "/v2/", Some(&wrong)));
        assert_eq!(wait, want);
    }
    // Retrying while blocked does not extend the block.
    for _ in 0..5 {
        let r = call_from(from(2), port, "GET", "/v2/", Some(&wrong));
        assert!(expect_throttled(&r) <= 4);
    }
    // alice's verified login is cached: it passes even from 127.0.0.2.
    assert_eq!(
        call_from(from(2), port, "GET", "/v2/", Some(&right)).status,
        200
    );
    assert!(server
        .log_text()
        .contains("failed login for user \"alice\" from 127.0.0.2"));
}

#[test]
fn an_address_failing_over_many_user_names_backs_off_alone() {
    let server = Served::fresh(SERVE);
    server.user_ok(&["add", "bob"], Some("bob-pw"));
    let port = server.port();
    let bob = basic("bob", "bob-pw");
    // 30 failures over 30 names from 127.0.0.4 (none reaches a pair's limit).
    for i in 0..30 {
        let r = call_from(
            from(4),
            port,
            "GET",
            "/v2/",
            Some(&basic(&format!("u{i}"), "x")),
        );
        assert_eq!(r.status, 401, "failure {i}: {r:?}");
    }
    // Now every uncached check from 127.0.0.4 waits, bob's right one too ...
    assert_eq!(
        expect_throttled(&call_from(from(4), port, "GET", "/v2/", Some(&bob))),
        1
    );
    // ... not from 127.0.0.5 ...
    assert_eq!(
        call_from(from(5), port, "GET", "/v2/", Some(&bob)).status,
        200
    );
    // ... and, once verified, bob's login is served from 127.0.0.4 as well.
    assert_eq!(
        call_from(from(4), port, "GET", "/v2/", Some(&bob)).status,
        200
    );
    // Requests without credentials are challenged, not throttled.
    let r = call_from(from(4), port, "GET", "/v2/", None);
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Basic ")));
}
