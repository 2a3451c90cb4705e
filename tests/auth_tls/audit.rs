//! The audit log (issue H) through real HTTP and the real `soute audit`
//! binary on the same data folder while the server runs: pushes, deletes,
//! logins (verified, not cached), failures, refusals and operator actions are
//! recorded with actor, address and repository; pulls are not; a flood of
//! failed logins adds a bounded number of rows; `--audit-keep` bounds the
//! table, and failures cannot push the record of pushes out of it; a
//! backup carries the log.

use super::auth::push_image;
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// `soute audit ARGS --data DIR`, which must succeed: its stdout.
fn audit_cmd(data: &Path, args: &[&str]) -> String {
    let data = data.to_str().expect("utf-8 path");
    let mut all = vec!["audit", "--data", data];
    all.extend_from_slice(args);
    let (ok, out, err) = run_soute(&all);
    assert!(ok, "soute audit {args:?} failed: {out}{err}");
    out
}

/// `soute audit --json ARGS`: the events.
fn audit_json(data: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = audit_cmd(data, &all);
    match serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")) {
        Value::Array(events) => events,
        other => panic!("not an array: {other}"),
    }
}

fn text<'a>(e: &'a Value, key: &str) -> &'a str {
    e[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {e}"))
}

/// (action, actor, repository, status) of each event.
fn summary(events: &[Value]) -> Vec<(String, String, String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                text(e, "action").to_string(),
                text(e, "actor").to_string(),
                text(e, "repository").to_string(),
                e["status"].as_u64().expect("status"),
            )
        })
        .collect()
}

fn count(events: &[Value], action: &str) -> usize {
    events
        .iter()
        .filter(|e| text(e, "action") == action)
        .count()
}

/// A token-shaped secret no token has: checked with one sha256, no argon2.
fn bogus_token(i: usize) -> String {
    format!("soute_{:064x}", i + 1)
}

#[test]
fn writes_logins_failures_and_refusals_are_recorded_and_pulls_are_not() {
    let soute = Soute::plain();
    let registry = soute.registry();
    registry.add_user("alice", "alice-pw", true).expect("alice");
    registry.add_user("bob", "bob-pw", false).expect("bob");
    let agent = http_agent();
    let base = soute.http_base();
    let alice = basic("alice", "alice-pw");

    // A verified login, then the same login from the cache: one row.
    get(&agent, &format!("{base}/v2/"), Some(&alice)).expect_status(200);
    get(&agent, &format!("{base}/v2/"), Some(&alice)).expect_status(200);
    push_image(&agent, &base, Some(&alice), "lab/app", "audited");
    // Pulls are not recorded.
    let manifest = get(
        &agent,
        &format!("{base}/v2/lab/app/manifests/v1"),
        Some(&alice),
    );
    manifest.expect_status(200);
    let digest = manifest
        .header("docker-content-digest")
        .expect("digest")
        .to_string();
    get(
        &agent,
        &format!("{base}/v2/lab/app/tags/list"),
        Some(&alice),
    )
    .expect_status(200);
    let tag_url = format!("{base}/v2/lab/app/manifests/v1");
    call(&agent, "DELETE", &tag_url, Some(&alice), &[], None).expect_status(202);
    let gc = format!("{base}/v2/_soute/gc?dry_run=true");
    call(&agent, "POST", &gc, Some(&alice), &[], Some(b"")).expect_status(200);

    // bob: a wrong password, then his right one on a push he may not make.
    get(&agent, &format!("{base}/v2/"), Some(&basic("bob", "guess"))).expect_status(401);
    let bob = basic("bob", "bob-pw");
    let put = format!("{base}/v2/lab/app/manifests/v2");
    let headers = [("Content-Type", OCI_MANIFEST)];
    call(&agent, "PUT", &put, Some(&bob), &headers, Some(b"{}")).expect_status(403);
    // A revoked token, and a token's push (named token:NAME).
    let secret = registry
        .create_token("old", "bob", &[], None)
        .expect("token");
    registry.revoke_token("old").expect("revoke");
    get(&agent, &format!("{base}/v2/"), Some(&basic("bob", &secret))).expect_status(401);
    let ci = registry
        .create_token("ci", "alice", &[], None)
        .expect("token");
    push_image(
        &agent,
        &base,
        Some(&basic("alice", &ci)),
        "lab/tok",
        "by token",
    );
    // Anonymous: `/v2/` is how every client starts (not recorded), a
    // manifest it may not read is a refusal.
    get(&agent, &format!("{base}/v2/"), None).expect_status(401);
    get(&agent, &format!("{base}/v2/lab/app/manifests/v1"), None).expect_status(401);

    // A push by digest with `?tag=`: the tags are in the detail.
    let by_digest = format!("{base}/v2/lab/app/manifests/{digest}?tag=x&tag=y");
    let body = manifest.body.clone();
    call(
        &agent,
        "PUT",
        &by_digest,
        Some(&alice),
        &headers,
        Some(&body),
    )
    .expect_status(201);

    // Read by the real binary while the server runs.
    let events = audit_json(soute.data(), &[]);
    let s = |a: &str, who: &str, repo: &str, status: u64| {
        (a.to_string(), who.to_string(), repo.to_string(), status)
    };
    assert_eq!(
        summary(&events),
        vec![
            s("login", "alice", "", 0),
            s("push", "alice", "lab/app", 201),
            s("delete", "alice", "lab/app", 202),
            s("admin", "alice", "", 200),
            s("login_failed", "bob", "", 401),
            s("login", "bob", "", 0),
            s("denied", "bob", "lab/app", 403),
            s("login_failed", "bob", "", 401),
            s("push", "token:ci", "lab/tok", 201),
            s("denied", "anonymous", "lab/app", 401),
            s("push", "alice", "lab/app", 201),
        ],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(text(e, "address"), "127.0.0.1", "{e}");
        assert!(text(e, "time").ends_with('Z'), "{e}");
    }
    assert_eq!(text(&events[1], "detail"), format!("v1 {digest}"));
    assert_eq!(text(&events[2], "detail"), "tag v1");
    assert_eq!(text(&events[3], "detail"), "gc ?dry_run=true");
    assert_eq!(text(&events[6], "detail"), "push PUT");
    assert_eq!(text(&events[7], "detail"), "unknown or revoked token");
    assert_eq!(text(&events[10], "detail"), format!("{digest} tags x,y"));
    // No secret ever reaches the log.
    let plain = audit_cmd(soute.data(), &[]);
    assert!(!plain.contains(&secret) && !plain.contains(&ci) && !plain.contains("bob-pw"));

    // The plain listing: one line per event, the same order.
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), events.len(), "{plain}");
    let first: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(first[0], text(&events[1], "time"));
    assert_eq!(
        &first[1..6],
        ["alice", "127.0.0.1", "push", "201", "lab/app"]
    );
    assert_eq!(first[6..].join(" "), format!("v1 {digest}"));
    // --since and --limit.
    assert_eq!(
        audit_json(soute.data(), &["--since", "1h"]).len(),
        events.len()
    );
    assert!(audit_json(soute.data(), &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    let last_two = audit_json(soute.data(), &["--limit", "2"]);
    assert_eq!(summary(&last_two), summary(&events[events.len() - 2..]));
    let (ok, _, err) = run_soute(&["audit", "--since", "yesterday"]);
    assert!(!ok && err.contains("--since"), "{err}");
    // A backup carries the log (it is in soute.db).
    let dest = tempfile::tempdir().expect("tempdir");
    let copy = dest.path().join("copy");
    let data = soute.data().to_str().expect("utf-8").to_string();
    let copy_str = copy.to_str().expect("utf-8");
    let (ok, out, err) = run_soute(&["backup", copy_str, "--data", &data]);
    assert!(ok, "backup: {out}{err}");
    assert_eq!(summary(&audit_json(&copy, &[])), summary(&events));
    soute.stop();
}

#[test]
fn a_flood_of_failed_logins_adds_a_bounded_number_of_rows() {
    // The rate limit's first minute starts with the server.
    let started = Instant::now();
    let soute = Soute::plain();
    soute
        .registry()
        .add_user("carol", "carol-pw", true)
        .expect("carol");
    let agent = http_agent();
    let v2 = soute.url("/v2/");
    // One name, one address: argon2 failures, then the login throttle's 429s.
    let mut refused = [0usize; 2];
    for _ in 0..200 {
        match get(&agent, &v2, Some(&basic("carol", "guess"))).status {
            401 => refused[0] += 1,
            429 => refused[1] += 1,
            other => panic!("status {other}"),
        }
    }
    assert!(refused[1] >= 150, "the throttle answered {refused:?}");
    let one_name = count(&audit_json(soute.data(), &[]), "login_failed");
    // Many names (bad tokens: no argon2, no login throttle), 600 of them.
    for i in 0..600 {
        let auth = basic(&format!("user{i}"), &bogus_token(i));
        get(&agent, &v2, Some(&auth)).expect_status(401);
    }
    let elapsed = started.elapsed();
    let events = audit_json(soute.data(), &["--limit", "100000"]);
    let failed = count(&events, "login_failed");
    let suppressed = count(&events, "suppressed");
    if elapsed.as_secs() < 60 {
        // All in the first minute: 10 rows per name and address (and one
        // for the throttle's 429s), 300 in
        // all, then one `suppressed` row for the rest of the minute.
        assert_eq!(one_name, 11, "rows for 200 failures of one name");
        assert_eq!(failed, 300, "rows for 800 failures");
        assert_eq!(suppressed, 1);
    } else {
        // A slow machine: the same bounds per started minute.
        let windows = elapsed.as_secs() as usize / 60 + 1;
        eprintln!("the flood took {elapsed:?}: checking bounds over {windows} minutes");
        assert!((11..=11 * windows).contains(&one_name), "{one_name} rows");
        assert!(failed <= 300 * windows, "{failed} rows for 800 failures");
        assert!(suppressed <= windows, "{suppressed} suppressed rows");
    }
    assert!(events.len() <= 301 * (elapsed.as_secs() as usize / 60 + 1));
    soute.stop();
}

#[test]
fn audit_keep_bounds_the_table_and_failures_cannot_push_writes_out() {
    let served = Served::fresh(&["--audit-keep", "50"]);
    served.user_ok(&["add", "dave", "--admin"], Some("dave-pw"));
    let agent = http_agent();
    let base = format!("http://{}", served.addr);
    let dave = basic("dave", "dave-pw");
    push_image(&agent, &base, Some(&dave), "keep/app", "kept");
    let manifest = get(
        &agent,
        &format!("{base}/v2/keep/app/manifests/v1"),
        Some(&dave),
    );
    manifest.expect_status(200);
    let headers = [("Content-Type", OCI_MANIFEST)];
    for i in 0..120 {
        let url = format!("{base}/v2/keep/app/manifests/t{i}");
        call(
            &agent,
            "PUT",
            &url,
            Some(&dave),
            &headers,
            Some(&manifest.body),
        )
        .expect_status(201);
    }
    let events = audit_json(served.folder(), &["--limit", "1000"]);
    assert_eq!(
        events.len(),
        50,
        "{} rows kept with --audit-keep 50",
        events.len()
    );
    assert_eq!(count(&events, "push"), 50);
    let last = events.last().expect("an event");
    assert!(text(last, "detail").starts_with("t119 "), "{last}");
    // 40 failures from 40 names: they keep at most half of the log.
    for i in 0..40 {
        let auth = basic(&format!("x{i}"), &bogus_token(i));
        get(&agent, &format!("{base}/v2/"), Some(&auth)).expect_status(401);
    }
    let events = audit_json(served.folder(), &["--limit", "1000"]);
    assert!(events.len() <= 50, "{} rows", events.len());
    assert_eq!(
        count(&events, "login_failed"),
        25,
        "{:#?}",
        summary(&events)
    );
    assert_eq!(count(&events, "push"), 25);
    served.proc.stop(std::time::Duration::from_secs(10));
}

#[test]
fn a_failed_audit_write_never_fails_the_request() {
    let soute = Soute::plain();
    soute
        .registry()
        .add_user("erin", "erin-pw", true)
        .expect("erin");
    let agent = http_agent();
    let base = soute.http_base();
    let erin = basic("erin", "erin-pw");
    push_image(&agent, &base, Some(&erin), "lost/app", "first");
    assert_eq!(count(&audit_json(soute.data(), &[]), "push"), 1);
    // The table is gone (a damaged or foreign database): every write fails.
    let db = rusqlite::Connection::open(soute.data().join("soute.db")).expect("open db");
    db.execute_batch("DROP TABLE audit").expect("drop");
    drop(db);
    push_image(&agent, &base, Some(&erin), "lost/other", "second");
    let url = format!("{base}/v2/lost/app/manifests/v1");
    call(&agent, "DELETE", &url, Some(&erin), &[], None).expect_status(202);
    get(&agent, &url, None).expect_status(401);
    get(
        &agent,
        &format!("{base}/v2/"),
        Some(&basic("erin", "guess")),
    )
    .expect_status(401);
    get(
        &agent,
        &format!("{base}/v2/lost/other/manifests/v1"),
        Some(&erin),
    )
    .expect_status(200);
    let data = soute.data().to_str().expect("utf-8").to_string();
    let (ok, _, err) = run_soute(&["audit", "--data", &data]);
    assert!(!ok && err.contains("no such table"), "{err}");
    soute.stop();
}

#[test]
fn operator_commands_are_recorded_without_secrets() {
    let soute = Soute::plain();
    let data = soute.data().to_str().expect("utf-8").to_string();
    user_cmd(soute.data(), &["add", "frank"], Some("frank-pw"));
    user_cmd(soute.data(), &["list"], None);
    let soute_ok = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--data", &data]);
        let (ok, out, err) = run_soute(&all);
        assert!(ok, "soute {args:?}: {out}{err}");
        out
    };
    soute_ok(&["access", "grant", "frank", "team/**", "pull,push"]);
    soute_ok(&["access", "list"]);
    let secret = soute_ok(&[
        "token",
        "create",
        "ci",
        "--user",
        "frank",
        "--scope",
        "team/**:pull",
        "--expires",
        "1d",
    ]);
    soute_ok(&["gc", "--dry-run"]);
    soute_ok(&["gc"]);
    let (ok, _, _) = run_soute(&["user", "del", "nobody", "--data", &data]);
    assert!(!ok, "deleting an unknown user fails (and is not recorded)");

    let events = audit_json(soute.data(), &[]);
    let words: Vec<&str> = events.iter().map(|e| text(e, "detail")).collect();
    assert_eq!(
        words,
        [
            "user add frank",
            "access grant frank team/** pull,push",
            "token create ci --user frank --scope team/**:pull --expires 86400s",
            "gc",
        ],
        "{events:#?}"
    );
    for e in &events {
        assert_eq!(text(e, "action"), "admin", "{e}");
        // `$USER`, or the uid when the environment has none.
        let actor = text(e, "actor");
        match std::env::var("USER") {
            Ok(user) if !user.is_empty() => assert_eq!(actor, format!("local:{user}")),
            _ => assert!(actor.starts_with("local:uid="), "{e}"),
        }
        assert_eq!(text(e, "address"), "local", "{e}");
    }
    let plain = audit_cmd(soute.data(), &[]);
    assert!(!plain.contains(secret.trim()) && !plain.contains("frank-pw"));
    soute.stop();
}
