//! Basic authentication: who needs credentials for what.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

const REPO: &str = "lab/app";

/// One request of every endpoint family, as (method, path, body).
fn endpoint_families() -> Vec<(&'static str, String, Option<&'static [u8]>)> {
    let digest = sha256(b"nothing");
    let upload = "/v2/lab/app/blobs/uploads/0123456789abcdef0123456789abcdef";
    vec![
        ("GET", "/v2/".into(), None),
        ("HEAD", "/v2/".into(), None),
        ("GET", "/v2/_catalog".into(), None),
        ("GET", format!("/v2/{REPO}/tags/list"), None),
        ("GET", format!("/v2/{REPO}/manifests/latest"), None),
        ("HEAD", format!("/v2/{REPO}/manifests/latest"), None),
        ("PUT", format!("/v2/{REPO}/manifests/latest"), Some(b"{}")),
        ("DELETE", format!("/v2/{REPO}/manifests/{digest}"), None),
        ("GET", format!("/v2/{REPO}/blobs/{digest}"), None),
        ("HEAD", format!("/v2/{REPO}/blobs/{digest}"), None),
        ("DELETE", format!("/v2/{REPO}/blobs/{digest}"), None),
        ("POST", format!("/v2/{REPO}/blobs/uploads/"), Some(b"")),
        ("GET", upload.into(), None),
        ("PATCH", upload.into(), Some(b"abc")),
        ("PUT", format!("{upload}?digest={digest}"), Some(b"")),
        ("DELETE", upload.into(), None),
        ("GET", format!("/v2/{REPO}/referrers/{digest}"), None),
        ("GET", "/v1/search?q=app".into(), None),
        ("GET", "/v2/_soute/du".into(), None),
        ("POST", "/v2/_soute/gc?dry_run=true".into(), Some(b"")),
    ]
}

/// Wrong credentials number `i`: every fourth a wrong password for alice,
/// the others an unknown user with alice's password.
fn wrong_for(i: usize, alice_password: &str) -> String {
    if i.is_multiple_of(4) {
        basic("alice", &format!("{alice_password}-wrong"))
    } else {
        basic(&format!("nobody{i}"), alice_password)
    }
}

/// A read: GET/HEAD of anything but the operator endpoints and upload
/// sessions (an upload's status is part of a push: it needs push).
fn is_read(method: &str, path: &str) -> bool {
    matches!(method, "GET" | "HEAD")
        && !path.starts_with("/v2/_soute/")
        && !path.contains("/blobs/uploads/")
}

#[test]
fn credentials_are_required_once_a_user_exists() {
    let soute = Soute::start(|_| {});
    let agent = http_agent();
    let base = soute.http_base();
    let v2 = format!("{base}/v2/");

    // No users: open.
    get(&agent, &v2, None).expect_status(200);
    get(&agent, &format!("{base}/v2/_catalog"), None).expect_status(200);

    // A user added by the real binary while soute runs closes it without a
    // restart (the has-users answer is cached for about a second; 10 s is a
    // bound a loaded machine cannot miss, yet shows it is no restart-only
    // change).
    user_cmd(soute.data(), &["add", "alice"], Some("pw-alice"));
    let r = wait_for("/v2/ to answer 401", Duration::from_secs(10), || {
        let r = get(&agent, &v2, None);
        (r.status == 401).then_some(r)
    });
    r.expect_challenge("soute");

    let right = basic("alice", "pw-alice");
    let wrong = basic("alice", "pw-alicf");
    let unknown = basic("mallory", "pw-alice");
    get(&agent, &v2, Some(&wrong)).expect_challenge("soute");
    get(&agent, &v2, Some(&unknown)).expect_challenge("soute");
    get(&agent, &v2, Some(&right)).expect_status(200);
    // Other schemes and broken values are no credentials.
    for bad in ["Bearer abc", "Basic !!!", "Basic Og==", "Basic YWxpY2U="] {
        get(&agent, &v2, Some(bad)).expect_challenge("soute");
    }
    // What docker sends when logged out, on `docker search`.
    get(&agent, &format!("{base}/v1/search?q=x"), Some("Basic Og==")).expect_challenge("soute");

    // Every endpoint family: 401 without or with wrong credentials; with the
    // right ones the request reaches the registry (whatever it answers then).
    // (Wrong credentials rotate over user names so that the failures stay
    // below the throttling limits: 10 per user, 30 per address.)
    for (i, (method, path, body)) in endpoint_families().into_iter().enumerate() {
        let url = format!("{base}{path}");
        call(&agent, method, &url, None, &[], body).expect_challenge("soute");
        let bad = wrong_for(i, "pw-alice");
        call(&agent, method, &url, Some(&bad), &[], body).expect_challenge("soute");
        let r = call(&agent, method, &url, Some(&right), &[], body);
        assert_ne!(r.status, 401, "{}: right credentials refused", r.what);
        assert_ne!(r.status, 429, "{}: throttled", r.what);
    }

    // Never behind credentials: /v1/_ping, and /ca.crt (404 without own CA).
    let r = get(&agent, &format!("{base}/v1/_ping"), None);
    r.expect_status(200);
    let r = get(&agent, &format!("{base}/ca.crt"), None);
    r.expect_status(404);

    // A full push with credentials works.
    push_image(&agent, &base, Some(&right), REPO, "a tiny test image");
    let r = call(
        &agent,
        "GET",
        &format!("{base}/v2/{REPO}/manifests/v1"),
        Some(&right),
        &[("Accept", OCI_MANIFEST)],
        None,
    );
    r.expect_status(200);
    call(
        &agent,
        "GET",
        &format!("{base}/v2/{REPO}/manifests/v1"),
        None,
        &[("Accept", OCI_MANIFEST)],
        None,
    )
    .expect_challenge("soute");
    soute.stop();
}

#[test]
fn the_realm_is_configurable() {
    let soute = Soute::start(|cfg| cfg.realm = "home".into());
    soute.registry().set_user("alice", "pw").expect("set_user");
    let agent = http_agent();
    let v2 = format!("{}/v2/", soute.http_base());
    get(&agent, &v2, None).expect_challenge("home");
    get(&agent, &v2, Some(&basic("alice", "nope"))).expect_challenge("home");
    get(&agent, &v2, Some(&basic("alice", "pw"))).expect_status(200);
    soute.stop();
}

#[test]
fn anonymous_pull_opens_reads_only() {
    // `--auth basic`: the default (auto) would answer with Bearer challenges
    // while an anonymous rule exists (tests/it/access.rs covers it).
    let soute = Soute::start(|cfg| {
        cfg.anonymous_pull = true;
        cfg.auth_mode = soute::api::AuthMode::Basic;
    });
    soute.registry().set_user("alice", "pw").expect("set_user");
    let agent = http_agent();
    let base = soute.http_base();
    let right = basic("alice", "pw");

    for (i, (method, path, body)) in endpoint_families().into_iter().enumerate() {
        let url = format!("{base}{path}");
        let r = call(&agent, method, &url, None, &[], body);
        // `/v2/` and the lists challenge anonymous callers (so that clients
        // sign in); pulls of repositories are open.
        let listing =
            path == "/v2/" || path.starts_with("/v2/_catalog") || path.starts_with("/v1/search");
        if is_read(method, &path) && !listing {
            assert_ne!(r.status, 401, "{}: anonymous read refused", r.what);
        } else {
            r.expect_challenge("soute");
        }
        // Wrong credentials are refused even on a read.
        let bad = wrong_for(i, "pw");
        call(&agent, method, &url, Some(&bad), &[], body).expect_challenge("soute");
    }
    // `/v2/` always challenges an anonymous caller, so that clients learn
    // to sign in (docker sends credentials only after this 401).
    get(&agent, &format!("{base}/v2/"), None).expect_challenge("soute");
    // "Logged out" docker: the empty Basic value counts as anonymous.
    get(&agent, &format!("{base}/v2/"), Some("Basic Og==")).expect_challenge("soute");
    get(&agent, &format!("{base}/v2/"), Some(&right)).expect_status(200);

    // Push needs credentials; the pushed image is then readable anonymously.
    let manifest = push_image(&agent, &base, Some(&right), REPO, "anon");
    let url = format!("{base}/v2/{REPO}/manifests/v1");
    let r = call(&agent, "GET", &url, None, &[("Accept", OCI_MANIFEST)], None);
    r.expect_status(200);
    assert_eq!(r.body, manifest);
    let r = call(
        &agent,
        "HEAD",
        &url,
        None,
        &[("Accept", OCI_MANIFEST)],
        None,
    );
    r.expect_status(200);
    call(&agent, "DELETE", &url, None, &[], None).expect_challenge("soute");
    let r = get(&agent, &format!("{base}/v2/{REPO}/tags/list"), None);
    r.expect_status(200);
    assert_eq!(r.json()["tags"], json!(["v1"]));
    soute.stop();
}

/// Pushes a one-layer OCI image to `repo:v1` (monolithic POST + PUT blob
/// uploads) with the given description annotation; returns the manifest.
pub fn push_image(
    agent: &ureq::Agent,
    base: &str,
    auth: Option<&str>,
    repo: &str,
    description: &str,
) -> Vec<u8> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","repo":"{repo}"}}"#).into_bytes();
    let layer = format!("layer of {repo}").into_bytes();
    for blob in [&config, &layer] {
        let digest = sha256(blob);
        let r = call(
            agent,
            "POST",
            &format!("{base}/v2/{repo}/blobs/uploads/"),
            auth,
            &[],
            Some(b""),
        );
        r.expect_status(202);
        let location = r.header("location").expect("Location").to_string();
        let url = if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            location
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let r = call(
            agent,
            "PUT",
            &format!("{url}{sep}digest={digest}"),
            auth,
            &[("Content-Type", "application/octet-stream")],
            Some(blob),
        );
        r.expect_status(201);
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": sha256(&layer),
            "size": layer.len(),
        }],
        "annotations": { "org.opencontainers.image.description": description },
    }))
    .expect("manifest json");
    let r = call(
        agent,
        "PUT",
        &format!("{base}/v2/{repo}/manifests/v1"),
        auth,
        &[("Content-Type", OCI_MANIFEST)],
        Some(&manifest),
    );
    r.expect_status(201);
    manifest
}

/// Attack F2: a client without credentials that announces a body and never
/// sends it gets its 401 at once and the connection closed, instead of a worker
/// draining the announced body for 2 s first. Several connections in a row, so
/// a worker held for each would show as a sum far over the bound.
#[test]
fn a_refused_request_with_an_announced_body_is_answered_without_waiting_for_it() {
    let soute = Soute::start(|_| {});
    soute.registry().set_user("alice", "pw").expect("set_user");
    let addr = soute.addr();
    let started = std::time::Instant::now();
    for (method, path, framing) in [
        (
            "PUT",
            format!("/v2/{REPO}/manifests/x"),
            "Content-Length: 4194304",
        ),
        (
            "PATCH",
            format!("/v2/{REPO}/blobs/uploads/0123456789abcdef0123456789abcdef"),
            "Content-Length: 1000",
        ),
        (
            "POST",
            format!("/v2/{REPO}/blobs/uploads/"),
            "Transfer-Encoding: chunked",
        ),
    ] {
        for _ in 0..5 {
            let mut s = connect(addr, Duration::from_secs(10));
            let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n");
            std::io::Write::write_all(&mut s, head.as_bytes()).expect("write head");
            let r = read_response(&mut s, false).expect("an answer before any body byte");
            assert_eq!(r.status, 401, "{method} {path}: {}", r.status_line);
            assert!(
                r.headers
                    .iter()
                    .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close")),
                "{method} {path}: the refusal closes the connection: {:?}",
                r.headers
            );
        }
    }
    // 15 refusals that each drained for 2 s would take 30 s; lingering is 0.2 s at most.
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "15 refusals took {:?}",
        started.elapsed()
    );
}
