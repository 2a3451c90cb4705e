//! Upstreams that want credentials: distribution behind htpasswd (Basic
//! challenge), a second soute with `--auth token` (Bearer challenge, token
//! fetched from its realm with Basic credentials); and soute's own access
//! rules deciding who may pull through (`docker.io/**` pull).

use super::common::*;
use crate::support::*;
use soute::auth::{Actions, Pattern, Who};

#[test]
fn a_basic_auth_upstream_needs_and_gets_the_credentials() {
    if !distribution_available("a_basic_auth_upstream_needs_and_gets_the_credentials") {
        return;
    }
    let upstream = Distribution::start(Some(("puller", "pull-pw")));
    let agent = http_agent();
    let auth = basic("puller", "pull-pw");
    let image = push_image(
        &agent,
        &upstream.url(),
        "corp/api",
        "v1",
        40,
        &[1500],
        Some(&auth),
    );
    let soute = Soute::plain();
    add_upstream(
        soute.data(),
        &[
            "corp.example",
            &upstream.url(),
            "--username",
            "puller",
            "--password-stdin",
        ],
        Some("pull-pw"),
    );
    add_upstream(soute.data(), &["nocreds.example", &upstream.url()], None);

    pull_manifest(&soute, "corp.example/corp/api", "v1", &image.manifest);
    pull_blobs(&soute, "corp.example/corp/api", &image);
    let r = manifest_at(
        &soute.url("/v2/nocreds.example/corp/api/manifests/v1"),
        None,
    );
    r.expect_error(502, &["UNKNOWN"]);
    assert!(r.text().contains("401"), "{}", r.text());
    // Behind htpasswd, every blob GET soute made succeeded: it sent the credentials.
    let ok_with_auth = soute_requests(&upstream)
        .iter()
        .filter(|(_, p, s)| p.starts_with("/v2/corp/api/blobs/") && *s == 200)
        .count();
    assert_eq!(ok_with_auth, image.blobs.len());
}

#[test]
fn a_token_auth_soute_is_a_bearer_upstream() {
    // The upstream: soute with the Docker token service, alice may pull app/**.
    let upstream = Soute::start(|cfg| cfg.auth_mode = soute::api::AuthMode::Token);
    let r = upstream.registry();
    assert!(r.add_user("admin", "admin-pw", false).expect("admin"));
    assert!(!r.add_user("alice", "alice-pw", false).expect("alice"));
    r.grant(
        &Who::parse("alice").expect("who"),
        &Pattern::parse("app/**").expect("pattern"),
        Actions::parse("pull").expect("actions"),
    )
    .expect("grant");
    let agent = http_agent();
    let token = get(
        &agent,
        &upstream.url("/v2/token?service=soute&scope=repository:app/web:push,pull"),
        Some(&basic("admin", "admin-pw")),
    );
    token.expect_status(200);
    let bearer = format!("Bearer {}", token.json()["token"].as_str().expect("token"));
    let image = push_image(
        &agent,
        &upstream.http_base(),
        "app/web",
        "2",
        50,
        &[2500],
        Some(&bearer),
    );

    let soute = Soute::plain();
    add_upstream(
        soute.data(),
        &[
            "lab.example",
            &upstream.http_base(),
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("alice-pw"),
    );
    pull_manifest(&soute, "lab.example/app/web", "2", &image.manifest);
    pull_manifest(
        &soute,
        "lab.example/app/web",
        &image.digest,
        &image.manifest,
    );
    pull_blobs(&soute, "lab.example/app/web", &image);
    assert_eq!(
        list_json(soute.data())[0]["last_error"],
        serde_json::Value::Null
    );

    // Wrong password: the realm refuses, soute says so.
    let wrong = Soute::plain();
    add_upstream(
        wrong.data(),
        &[
            "lab.example",
            &upstream.http_base(),
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("not-her-pw"),
    );
    let r = manifest_at(&wrong.url("/v2/lab.example/app/web/manifests/2"), None);
    r.expect_error(502, &["UNKNOWN"]);
    assert!(r.text().contains("token service"), "{}", r.text());
}

#[test]
fn access_rules_decide_who_may_pull_through() {
    if !distribution_available("access_rules_decide_who_may_pull_through") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "library/nginx",
        "1.27",
        60,
        &[800],
        None,
    );
    let soute = Soute::plain();
    let r = soute.registry();
    assert!(r.add_user("root", "root-pw", false).expect("root"));
    assert!(!r.add_user("bob", "bob-pw", false).expect("bob"));
    add_upstream(soute.data(), &["docker.io", &upstream.url()], None);
    let url = soute.url("/v2/docker.io/library/nginx/manifests/1.27");
    let pull = |auth: Option<&str>| manifest_at(&url, auth);

    pull(None).expect_status(401);
    pull(Some(&basic("bob", "bob-pw"))).expect_error(403, &["DENIED"]);
    assert!(
        soute_requests(&upstream).is_empty(),
        "a refused pull reached the upstream"
    );

    r.grant(
        &Who::parse("authenticated").expect("who"),
        &Pattern::parse("docker.io/**").expect("pattern"),
        Actions::parse("pull").expect("actions"),
    )
    .expect("grant");
    let ok = pull(Some(&basic("bob", "bob-pw")));
    ok.expect_status(200);
    assert_eq!(ok.body, image.manifest);
    pull(None).expect_status(401);
}
