//! What is sent: push, tag and delete events with distribution's fields and
//! a valid signature; the `--events` and `--repo` filters (pulls and failed
//! logins included); `soute webhook test`, `list` without the secret; and
//! usage errors for bad URLs, event lists and patterns.

use super::common::*;
use super::images::push_image;
use crate::support::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn push_tag_and_delete_events_carry_distributions_fields_and_a_valid_signature() {
    let soute = Soute::plain();
    let receiver = Receiver::start(Mode::Status(200));
    let secret = "s3cret-for-the-ci";
    add_webhook(
        soute.data(),
        "ci",
        &receiver.url("/hook"),
        &[],
        Some(secret),
    );
    let agent = http_agent();
    let base = soute.http_base();
    let image = push_image(&agent, &base, "lab/app", "v1", 1, &[300], None);
    let layer = sha256(&image.blobs[1]);
    for path in [
        "/v2/lab/app/manifests/v1".to_string(),
        format!("/v2/lab/app/blobs/{layer}"),
        format!("/v2/lab/app/manifests/{}", image.digest),
    ] {
        call(&agent, "DELETE", &soute.url(&path), None, &[], None).expect_status(202);
    }
    let events = wait_events(&receiver, 5);
    let got: Vec<_> = events.iter().map(summary).collect();
    let s = |a: &str, t: &str, d: &str| {
        (
            a.to_string(),
            "lab/app".to_string(),
            t.to_string(),
            d.to_string(),
        )
    };
    assert_eq!(
        got,
        [
            s("push", "v1", &image.digest),
            s("tag", "v1", &image.digest),
            s("delete", "v1", ""),
            s("delete", "", &layer),
            s("delete", "", &image.digest),
        ]
    );
    for d in receiver.deliveries() {
        check_envelope(&d, Some(secret));
        assert_eq!(d.path, "/hook");
    }
    let push = &events[0];
    let port = soute.port();
    assert_eq!(push["target"]["mediaType"], OCI_MANIFEST);
    assert_eq!(push["target"]["size"], image.manifest.len());
    assert_eq!(push["target"]["length"], image.manifest.len());
    assert_eq!(
        push["target"]["url"],
        format!("{base}/v2/lab/app/manifests/{}", image.digest)
    );
    assert_eq!(push["request"]["method"], "PUT");
    assert_eq!(push["request"]["useragent"], "soute-tests/1");
    assert_eq!(push["request"]["host"], format!("127.0.0.1:{port}"));
    let addr = push["request"]["addr"].as_str().expect("addr");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(!push["request"]["id"].as_str().expect("id").is_empty());
    assert_eq!(push["actor"]["name"], "anonymous");
    let source = push["source"]["addr"].as_str().expect("source");
    assert!(source.ends_with(&format!(":{port}")), "{source}");
    assert!(!push["source"]["instanceID"]
        .as_str()
        .expect("instance")
        .is_empty());
    let stamp = push["timestamp"].as_str().expect("timestamp");
    assert!(stamp.starts_with("20") && stamp.ends_with('Z') && stamp.contains('T'));
    let blob = &events[3];
    assert_eq!(blob["target"]["mediaType"], "application/octet-stream");
    assert_eq!(blob["request"]["method"], "DELETE");
    let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 5, "event ids are not distinct: {ids:?}");

    // `list` counts them and never shows the secret.
    let (code, out, _) = webhook_cmd(soute.data(), &["list", "--json"], None);
    assert_eq!(code, 0);
    assert!(!out.contains(secret), "list printed the secret: {out}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list[0]["name"], "ci");
    assert_eq!(list[0]["secret_set"], true);
    assert_eq!(list[0]["events"], "push,delete,tag");
    wait_until("the outbox to empty", ARRIVAL, || {
        list_json(soute.data())[0]["pending"] == 0
    });
    assert_eq!(list_json(soute.data())[0]["delivered"], 5);

    // `test` sends one signed test event now and says what the receiver answered.
    let (code, out, err) = webhook_cmd(soute.data(), &["test", "ci"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("answered HTTP 200"), "{out}");
    let last = receiver.deliveries().pop().expect("the test delivery");
    check_envelope(&last, Some(secret));
    assert_eq!(last.events()[0]["action"], "test");
    let (code, _, err) = webhook_cmd(soute.data(), &["test", "nope"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no webhook nope"), "{err}");
}

#[test]
fn filters_pick_events_by_kind_and_repository() {
    let soute = Soute::plain();
    user_cmd(soute.data(), &["add", "alice"], Some("pw-of-alice"));
    let auth = basic("alice", "pw-of-alice");
    let pushes = Receiver::start(Mode::Status(200));
    let others = Receiver::start(Mode::Status(200));
    let data = soute.data();
    add_webhook(
        data,
        "lab-pushes",
        &pushes.url("/"),
        &["--events", "push", "--repo", "lab/*"],
        None,
    );
    add_webhook(
        data,
        "others",
        &others.url("/"),
        &["--events", "delete,pull,login-failure"],
        None,
    );
    // The delivery thread learns of pull subscribers within a second.
    std::thread::sleep(Duration::from_millis(1500));
    let agent = http_agent();
    let base = soute.http_base();
    let lab = push_image(&agent, &base, "lab/app", "v1", 2, &[100], Some(&auth));
    push_image(&agent, &base, "other/app", "v1", 3, &[100], Some(&auth));
    push_image(&agent, &base, "lab/deep/app", "v1", 4, &[100], Some(&auth));
    let manifest = soute.url("/v2/lab/app/manifests/v1");
    let accept = [("Accept", OCI_MANIFEST)];
    call(&agent, "GET", &manifest, Some(&auth), &accept, None).expect_status(200);
    call(&agent, "HEAD", &manifest, Some(&auth), &accept, None).expect_status(200);
    let wrong = basic("mallory", "guess");
    call(&agent, "GET", &soute.url("/v2/"), Some(&wrong), &[], None).expect_status(401);
    let tag = soute.url("/v2/other/app/manifests/v1");
    call(&agent, "DELETE", &tag, Some(&auth), &[], None).expect_status(202);

    let got = wait_events(&others, 3);
    let mut kinds: Vec<_> = got.iter().map(summary).collect();
    kinds.sort();
    let s = |a: &str, r: &str, t: &str, d: &str| (a.into(), r.into(), t.into(), d.into());
    assert_eq!(
        kinds,
        [
            s("delete", "other/app", "v1", ""),
            s("login-failure", "", "", ""),
            s("pull", "lab/app", "v1", &lab.digest),
        ]
    );
    let failure = got
        .iter()
        .find(|e| e["action"] == "login-failure")
        .expect("failure");
    assert_eq!(failure["actor"]["name"], "mallory");
    let pull = got.iter().find(|e| e["action"] == "pull").expect("pull");
    assert_eq!(pull["actor"]["name"], "alice");
    assert_eq!(pull["request"]["method"], "GET");
    assert_eq!(pull["target"]["size"], lab.manifest.len());
    let pushed = wait_events(&pushes, 1);
    assert_eq!(summary(&pushed[0]), s("push", "lab/app", "v1", &lab.digest));
    assert_eq!(pushed[0]["actor"]["name"], "alice");
    // Nothing else comes: no tag events, no other repositories, no HEAD pull.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        pushes.accepted_events().len(),
        1,
        "{:?}",
        pushes.accepted_events()
    );
    assert_eq!(
        others.accepted_events().len(),
        3,
        "{:?}",
        others.accepted_events()
    );
    for d in pushes.deliveries().iter().chain(others.deliveries().iter()) {
        check_envelope(d, None);
    }
}

#[test]
fn bad_urls_event_lists_and_patterns_are_usage_errors() {
    let soute = Soute::plain();
    let data = soute.data();
    let cases: &[(&[&str], &str)] = &[
        (
            &["add", "ci", "ftp://127.0.0.1/"],
            "must start with http:// or https://",
        ),
        (
            &["add", "ci", "127.0.0.1:9000/hook"],
            "must start with http:// or https://",
        ),
        (
            &["add", "ci", "http://u:p@127.0.0.1/"],
            "no user or password",
        ),
        (&["add", "ci", "http://127.0.0.1:70000/"], "port"),
        (&["add", "ci", "http:///hook"], "no host"),
        (
            &["add", "ci", "http://127.0.0.1/", "--events", "push,build"],
            "unknown event \"build\"",
        ),
        (
            &["add", "ci", "http://127.0.0.1/", "--events", ""],
            "empty name",
        ),
        (
            &["add", "ci", "http://127.0.0.1/", "--repo", "Lab/*"],
            "--repo",
        ),
        (&["add", "ci"], "URL is required"),
        (&["add", "-x", "http://127.0.0.1/"], ""),
        (
            &["list", "--repo", "lab/*"],
            "goes with `soute webhook add`",
        ),
        (&["frob"], "unknown webhook action"),
    ];
    for (argv, says) in cases {
        let (code, out, err) = webhook_cmd(data, argv, None);
        assert_eq!(code, 2, "soute webhook {argv:?}: exit {code}: {out}{err}");
        assert!(err.contains(says), "soute webhook {argv:?}: {err}");
    }
    assert_eq!(list_json(data), serde_json::json!([]));
    add_webhook(data, "ci", "http://127.0.0.1:9/", &[], None);
    let (code, _, err) = webhook_cmd(data, &["add", "ci", "http://127.0.0.1:10/"], None);
    assert_eq!(code, 1);
    assert!(err.contains("webhook ci exists"), "{err}");
    let (code, _, err) = webhook_cmd(
        data,
        &["add", "s", "http://127.0.0.1:10/", "--secret-stdin"],
        Some(""),
    );
    assert_eq!(code, 1);
    assert!(err.contains("empty secret"), "{err}");
    let (code, _, err) = webhook_cmd(data, &["del", "nope"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no webhook nope"), "{err}");
    let (code, out, _) = webhook_cmd(data, &["del", "ci"], None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(list_json(data), serde_json::json!([]));
}
