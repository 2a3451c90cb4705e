//! The Docker token service (`soute serve --auth token`) through real HTTP
//! and HTTPS: the Bearer challenge and its scope, tokens from GET (Basic
//! credentials, API tokens, anonymous) and POST (OAuth2 password form),
//! `insufficient_scope` versus 403, and everything that must stop a bearer
//! token at once: a tampered or expired token, a revoked rule, a revoked
//! API token, a deleted user. The permission matrix in token mode is in
//! `tests/it/access.rs`.

use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use soute::api::AuthMode;
use soute::auth::bearer::{self, Claims, Grant};
use soute::auth::{Actions, Pattern, Scope, Who};
use soute::config::TlsMode;
use ureq::config::IpFamily;

fn token_server() -> Soute {
    let soute = Soute::start(|cfg| cfg.auth_mode = AuthMode::Token);
    let r = soute.registry();
    assert!(r.add_user("root", "root-pw", false).expect("root"));
    assert!(!r.add_user("alice", "alice-pw", false).expect("alice"));
    grant(&soute, "alice", "alice/**", "pull,push");
    grant(&soute, "anonymous", "public/**", "pull");
    soute
}

fn grant(soute: &Soute, who: &str, pattern: &str, actions: &str) {
    soute
        .registry()
        .grant(
            &Who::parse(who).expect(who),
            &Pattern::parse(pattern).expect(pattern),
            Actions::parse(actions).expect(actions),
        )
        .expect("grant");
}

/// A token from the realm for `scope` (GET), asserting the answer's shape.
fn fetch(agent: &ureq::Agent, base: &str, scope: &str, auth: Option<&str>) -> String {
    let r = get(
        agent,
        &format!("{base}/v2/token?service=soute&scope={scope}"),
        auth,
    );
    r.expect_status(200);
    let body = r.json();
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(body["access_token"].as_str(), Some(token.as_str()));
    assert_eq!(body["expires_in"].as_i64(), Some(bearer::LIFETIME_SECS));
    let issued = body["issued_at"].as_str().expect("issued_at");
    assert!(
        issued.len() == 20 && issued.ends_with('Z') && issued.as_bytes()[10] == b'T',
        "{issued}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    token
}

fn bearer_auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// The access a token grants (its payload is readable, only its MAC is secret).
fn granted(token: &str) -> Vec<Grant> {
    let payload = token.split('.').next().expect("payload");
    let claims: Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("claims");
    claims.access
}

fn blob_url(base: &str, repo: &str) -> String {
    format!("{base}/v2/{repo}/blobs/uploads/")
}

#[test]
fn the_challenge_names_the_token_service_and_the_scope() {
    let soute = token_server();
    let agent = http_agent();
    let base = soute.http_base();
    let port = soute.port();
    let r = get(&agent, &format!("{base}/v2/"), None);
    r.expect_error(401, &["UNAUTHORIZED"]);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!("Bearer realm=\"http://127.0.0.1:{port}/v2/token\",service=\"soute\"").as_str()
        )
    );
    let r = call(
        &agent,
        "POST",
        &blob_url(&base, "alice/app"),
        None,
        &[],
        Some(b""),
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"http://127.0.0.1:{port}/v2/token\",service=\"soute\",scope=\"repository:alice/app:pull,push\""
            )
            .as_str()
        )
    );
    // A Host header with quotes cannot change the challenge's parameters.
    let mut conn = Conn::open(soute.addr(), std::time::Duration::from_secs(10));
    conn.send(b"GET /v2/_catalog HTTP/1.1\r\nHost: evil\",realm=\"http://x\r\n\r\n");
    let r = conn.resp();
    let challenge = r.header("www-authenticate").unwrap_or("").to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"http://localhost/v2/token\"")
            && challenge.ends_with("scope=\"registry:catalog:*\""),
        "{challenge}"
    );
    // Anonymous pulls of what anonymous may pull need no token at all.
    let r = get(
        &agent,
        &format!("{base}/v2/public/site/manifests/none"),
        None,
    );
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    soute.stop();
}

#[test]
fn over_tls_the_realm_is_https_and_token_realm_overrides_it() {
    let soute = Soute::start(|cfg| {
        cfg.auth_mode = AuthMode::Token;
        cfg.tls = TlsMode::Auto;
    });
    soute
        .registry()
        .add_user("root", "pw", false)
        .expect("root");
    let ca = std::fs::read(soute.data().join("tls/ca.crt")).expect("ca.crt");
    let agent = tls_agent(&ca, IpFamily::Ipv4Only);
    let base = soute.https_base();
    let r = get(&agent, &format!("{base}/v2/"), None);
    let challenge = r.header("www-authenticate").unwrap_or("").to_string();
    assert!(
        challenge.starts_with("Bearer realm=\"https://"),
        "{challenge}"
    );
    let token = fetch(
        &agent,
        &base,
        "repository:a/b:pull",
        Some(&basic("root", "pw")),
    );
    get(&agent, &format!("{base}/v2/"), Some(&bearer_auth(&token))).expect_status(200);
    soute.stop();

    let soute = Soute::start(|cfg| {
        cfg.auth_mode = AuthMode::Token;
        cfg.token_realm = Some("https://registry.example/v2/token".into());
    });
    soute
        .registry()
        .add_user("root", "pw", false)
        .expect("root");
    let r = get(&http_agent(), &format!("{}/v2/", soute.http_base()), None);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"https://registry.example/v2/token\",service=\"soute\"")
    );
    soute.stop();
}

#[test]
fn tokens_grant_what_was_asked_and_allowed_only() {
    let soute = token_server();
    let agent = http_agent();
    let base = soute.http_base();
    let alice = basic("alice", "alice-pw");
    // Asked pull,push on her own and on someone else's repository, in two scopes.
    let r = get(
        &agent,
        &format!(
            "{base}/v2/token?service=soute&scope=repository:alice/app:pull,push&scope=repository:root/x:pull,push,delete"
        ),
        Some(&alice),
    );
    r.expect_status(200);
    let token = r.json()["token"].as_str().expect("token").to_string();
    let access = granted(&token);
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0].name, "alice/app");
    assert_eq!(access[0].actions, ["pull", "push"]);
    let auth = bearer_auth(&token);
    call(
        &agent,
        "POST",
        &blob_url(&base, "alice/app"),
        Some(&auth),
        &[],
        Some(b""),
    )
    .expect_status(202);
    // Not granted, and asking again cannot help: 403.
    call(
        &agent,
        "POST",
        &blob_url(&base, "root/x"),
        Some(&auth),
        &[],
        Some(b""),
    )
    .expect_error(403, &["DENIED"]);

    // A pull-only token, then a push: 401 insufficient_scope (she may push).
    let pull_only = fetch(&agent, &base, "repository:alice/app:pull", Some(&alice));
    let r = call(
        &agent,
        "POST",
        &blob_url(&base, "alice/app"),
        Some(&bearer_auth(&pull_only)),
        &[],
        Some(b""),
    );
    r.expect_error(401, &["UNAUTHORIZED"]);
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.contains("scope=\"repository:alice/app:pull,push\"")
            && challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );

    // Anonymous: only what anonymous rules allow.
    let anon = fetch(
        &agent,
        &base,
        "repository:public/site:pull,push&scope=repository:alice/app:pull",
        None,
    );
    let access = granted(&anon);
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(
        (access[0].name.as_str(), &access[0].actions[..]),
        ("public/site", &["pull".to_string()][..])
    );
    // Wrong credentials: 401, no token.
    let r = get(
        &agent,
        &format!("{base}/v2/token?service=soute&scope=repository:alice/app:pull"),
        Some(&basic("alice", "wrong")),
    );
    r.expect_error(401, &["UNAUTHORIZED"]);
    assert!(r.json().get("token").is_none());
    soute.stop();
}

#[test]
fn the_oauth2_password_form_is_accepted() {
    let soute = token_server();
    let agent = http_agent();
    let base = soute.http_base();
    let form = |body: &str| {
        call(
            &agent,
            "POST",
            &format!("{base}/v2/token"),
            None,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
    };
    let r = form("grant_type=password&username=alice&password=alice-pw&service=soute&client_id=ctr&scope=repository%3Aalice%2Fapp%3Apull%2Cpush");
    r.expect_status(200);
    let token = r.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(granted(&token)[0].actions, ["pull", "push"]);
    call(
        &agent,
        "POST",
        &blob_url(&base, "alice/app"),
        Some(&bearer_auth(&token)),
        &[],
        Some(b""),
    )
    .expect_status(202);
    form("grant_type=password&username=alice&password=nope&scope=repository%3Aalice%2Fapp%3Apull")
        .expect_error(401, &["UNAUTHORIZED"]);
    form("grant_type=refresh_token&refresh_token=x&service=soute")
        .expect_error(400, &["UNSUPPORTED"]);
    form("grant_type=password&username=alice").expect_error(400, &["UNSUPPORTED"]);
    form(&"x".repeat(20_000)).expect_error(400, &["UNSUPPORTED"]);
    soute.stop();
}

#[test]
fn a_bearer_token_stops_working_when_what_backs_it_goes() {
    let soute = token_server();
    let agent = http_agent();
    let base = soute.http_base();
    let alice = basic("alice", "alice-pw");
    let push = |token: &str| {
        call(
            &agent,
            "POST",
            &blob_url(&base, "alice/app"),
            Some(&bearer_auth(token)),
            &[],
            Some(b""),
        )
    };
    // Tampered: one character of the MAC changed (the last character of a
    // 32-byte base64url MAC carries only 4 bits: change the first one).
    let token = fetch(
        &agent,
        &base,
        "repository:alice/app:pull,push",
        Some(&alice),
    );
    push(&token).expect_status(202);
    let dot = token.find('.').expect("dot");
    let mut tampered = token.clone();
    let first = tampered.as_bytes()[dot + 1];
    tampered.replace_range(dot + 1..dot + 2, if first == b'A' { "B" } else { "A" });
    let r = push(&tampered);
    r.expect_error(401, &["UNAUTHORIZED"]);
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    // A bearer token is no credential for the token service: it cannot be
    // traded for a wider or longer-lived one.
    let traded = get(
        &agent,
        &format!("{base}/v2/token?service=soute&scope=registry:catalog:*"),
        Some(&bearer_auth(&token)),
    );
    traded.expect_error(401, &["UNAUTHORIZED"]);
    assert!(traded.json().get("token").is_none());
    let form = call(
        &agent,
        "POST",
        &format!("{base}/v2/token"),
        Some(&bearer_auth(&token)),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"scope=repository%3Aalice%2Fapp%3Apull"),
    );
    form.expect_error(401, &["UNAUTHORIZED"]);
    // Claims signed with any other key (here: a guess) are refused.
    let forged = Claims {
        sub: Some("alice".into()),
        via: None,
        access: vec![Grant {
            kind: "repository".into(),
            name: "alice/app".into(),
            actions: vec!["pull".into(), "push".into()],
        }],
        iat: soute::db::now(),
        exp: soute::db::now() + 60,
    };
    push(&bearer::issue(&[0u8; 32], &forged)).expect_error(401, &["UNAUTHORIZED"]);

    // The rule goes: the very next request with the same token is refused.
    soute
        .registry()
        .revoke(
            &Who::parse("alice").expect("who"),
            &Pattern::parse("alice/**").expect("p"),
        )
        .expect("revoke");
    push(&token).expect_error(403, &["DENIED"]);
    grant(&soute, "alice", "alice/**", "pull,push");
    push(&token).expect_status(202);

    // A token issued on an API token dies with it, and is no wider than it.
    let api = soute
        .registry()
        .create_token(
            "ci",
            "alice",
            &[Scope::parse("alice/app:pull").expect("scope")],
            None,
        )
        .expect("api token");
    let via_api = fetch(
        &agent,
        &base,
        "repository:alice/app:pull,push",
        Some(&basic("alice", &api)),
    );
    assert_eq!(granted(&via_api)[0].actions, ["pull"]);
    let tags = format!("{base}/v2/alice/app/manifests/none");
    get(&agent, &tags, Some(&bearer_auth(&via_api))).expect_error(404, &["MANIFEST_UNKNOWN"]);
    assert!(soute.registry().revoke_token("ci").expect("revoke"));
    get(&agent, &tags, Some(&bearer_auth(&via_api))).expect_error(401, &["UNAUTHORIZED"]);

    // The user goes: refused, although the token has not expired.
    user_cmd(soute.data(), &["del", "alice"], None);
    push(&token).expect_error(401, &["UNAUTHORIZED"]);
    soute.stop();
}

#[test]
fn tokens_do_not_outlive_a_restart() {
    let mut soute = token_server();
    let agent = http_agent();
    let alice = basic("alice", "alice-pw");
    let token = fetch(
        &agent,
        &soute.http_base(),
        "repository:alice/app:pull,push",
        Some(&alice),
    );
    let push = |soute: &Soute, token: &str| {
        call(
            &agent,
            "POST",
            &blob_url(&soute.http_base(), "alice/app"),
            Some(&bearer_auth(token)),
            &[],
            Some(b""),
        )
    };
    push(&soute, &token).expect_status(202);
    // Each process signs with its own key (none is stored in the data
    // folder, so no backup or copy of it can mint tokens).
    soute.restart();
    let r = push(&soute, &token);
    r.expect_error(401, &["UNAUTHORIZED"]);
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    let fresh = fetch(
        &agent,
        &soute.http_base(),
        "repository:alice/app:pull,push",
        Some(&alice),
    );
    push(&soute, &fresh).expect_status(202);
    let db = rusqlite::Connection::open(soute.data().join("soute.db")).expect("db");
    let keys: i64 = db
        .query_row(
            "SELECT count(*) FROM setting WHERE key LIKE '%bearer%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(keys, 0);
    soute.stop();
}

#[test]
fn basic_mode_has_no_token_endpoint() {
    let soute = Soute::start(|cfg| cfg.auth_mode = AuthMode::Basic);
    soute
        .registry()
        .add_user("root", "pw", false)
        .expect("root");
    let r = get(
        &http_agent(),
        &format!("{}/v2/token?scope=repository:a/b:pull", soute.http_base()),
        Some(&basic("root", "pw")),
    );
    r.expect_error(404, &["UNSUPPORTED"]);
    soute.stop();
}
