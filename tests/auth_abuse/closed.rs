//! Closed stays closed: deleting the last user does not open the registry,
//! only `soute user open` does; a first user added while serving applies to
//! the very next request; the server logs each change.

use crate::support::*;
use crate::SERVE;
use std::time::Duration;

const PUSH: &str = "/v2/lab/app/blobs/uploads/";
const GC: &str = "/v2/_soute/gc?dry_run=true";

#[test]
fn deleting_the_last_user_keeps_the_registry_closed_until_it_is_opened() {
    let server = Served::fresh(SERVE);
    let port = server.port();
    // Never had users: open.
    assert_eq!(raw_call(port, "GET", "/v2/", None).status, 200);
    server.user_ok(&["add", "alice"], Some("alice-pw"));
    assert_eq!(raw_call(port, "GET", "/v2/", None).status, 401);
    server.user_ok(&["del", "alice"], None);

    // No users left: still closed, for reads, pushes and gc alike.
    let closed = |server: &Served| {
        for (method, path) in [("GET", "/v2/"), ("POST", PUSH), ("POST", GC)] {
            let r = raw_call(server.port(), method, path, None);
            assert_eq!(r.status, 401, "{method} {path}: {r:?}");
        }
        // Credentials that once were right do not help either.
        let r = raw_call(
            server.port(),
            "GET",
            "/v2/",
            Some(&basic("alice", "alice-pw")),
        );
        assert_eq!(r.status, 401);
    };
    closed(&server);
    let log = server.log_text();
    assert!(
        log.contains("now CLOSED") && !log.contains("now OPEN"),
        "{log}"
    );
    // A restart does not open it.
    let server = server.restart(SERVE);
    closed(&server);
    assert!(
        server.log_text().contains("stays CLOSED"),
        "the start-up note"
    );

    // `soute user open` refuses while users exist ...
    server.user_ok(&["add", "bob"], Some("bob-pw"));
    let refused = server.user(&["open"], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("users exist"));
    assert_eq!(raw_call(server.port(), "POST", PUSH, None).status, 401);
    server.user_ok(&["del", "bob"], None);
    closed(&server);

    // ... and opens a registry without users, for the next request.
    let opened = server.user_ok(&["open"], None);
    assert!(String::from_utf8_lossy(&opened.stdout).contains("OPEN"));
    assert_eq!(raw_call(server.port(), "GET", "/v2/", None).status, 200);
    assert_eq!(raw_call(server.port(), "POST", PUSH, None).status, 202);
    assert_eq!(raw_call(server.port(), "POST", GC, None).status, 200);

    wait_for("the change in the log", Duration::from_secs(5), || {
        server.log_text().contains("now OPEN").then_some(())
    });
}

#[test]
fn a_first_user_added_while_serving_applies_to_the_very_next_request() {
    let server = Served::fresh(SERVE);
    let port = server.port();
    for _ in 0..20 {
        assert_eq!(raw_call(port, "GET", "/v2/", None).status, 200);
    }
    server.user_ok(&["add", "alice"], Some("alice-pw"));
    // No wait: the very next requests need credentials.
    for (method, path) in [("GET", "/v2/"), ("POST", PUSH), ("POST", GC)] {
        let r = raw_call(port, method, path, None);
        assert_eq!(r.status, 401, "{method} {path}: {r:?}");
        assert!(r.header("www-authenticate").is_some());
    }
    assert_eq!(
        raw_call(port, "GET", "/v2/", Some(&basic("alice", "wrong"))).status,
        401
    );
    assert_eq!(
        raw_call(port, "GET", "/v2/", Some(&basic("alice", "alice-pw"))).status,
        200
    );
    let log = wait_for("the change in the log", Duration::from_secs(5), || {
        let log = server.log_text();
        log.contains("now CLOSED").then_some(log)
    });
    assert!(!log.contains("now OPEN"), "{log}");
}
