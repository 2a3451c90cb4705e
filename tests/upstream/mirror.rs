//! Mirror mode over plain HTTP, as the daemons ask: dockerd's
//! `registry-mirrors` sends `/v2/library/nginx/...` (the `--mirror`
//! upstream serves names this registry lacks), containerd's hosts.toml adds
//! `?ns=NAME` (that upstream serves them); local repositories always win.

use super::common::*;
use crate::support::*;

#[test]
fn the_mirror_serves_names_this_registry_lacks_and_local_ones_win() {
    if !distribution_available("the_mirror_serves_names_this_registry_lacks_and_local_ones_win") {
        return;
    }
    let hub = Distribution::start(None);
    let ghcr = Distribution::start(None);
    let agent = http_agent();
    let nginx = push_image(
        &agent,
        &hub.url(),
        "library/nginx",
        "1.27",
        100,
        &[3000],
        None,
    );
    let mine = push_image(&agent, &hub.url(), "library/mine", "1", 101, &[100], None);
    let tool = push_image(&agent, &ghcr.url(), "org/tool", "2", 102, &[200], None);
    let soute = Soute::plain();
    add_upstream(soute.data(), &["docker.io", &hub.url(), "--mirror"], None);
    add_upstream(soute.data(), &["ghcr.io", &ghcr.url()], None);
    let (ok, _, err) = upstream_cmd(
        soute.data(),
        &["add", "quay.io", &ghcr.url(), "--mirror"],
        None,
    );
    assert!(!ok && err.contains("is the mirror already"), "{err}");

    // dockerd: `docker pull busybox` through registry-mirrors asks for library/...
    pull_manifest(&soute, "library/nginx", "1.27", &nginx.manifest);
    pull_blobs(&soute, "library/nginx", &nginx);
    // ... and it is cached as docker.io/library/nginx.
    let asked = soute_requests(&hub).len();
    pull_manifest(
        &soute,
        "docker.io/library/nginx",
        &nginx.digest,
        &nginx.manifest,
    );
    pull_blobs(&soute, "docker.io/nginx", &nginx);
    assert_eq!(
        soute_requests(&hub).len(),
        asked,
        "the cached copy was fetched again"
    );

    // containerd: ?ns=ghcr.io picks that upstream for a bare name.
    let url = soute.url("/v2/org/tool/manifests/2?ns=ghcr.io");
    let r = manifest_at(&url, None);
    r.expect_status(200);
    assert_eq!(r.body, tool.manifest);
    let layer = sha256(&tool.blobs[1]);
    let r = get(
        &agent,
        &soute.url(&format!("/v2/org/tool/blobs/{layer}?ns=ghcr.io")),
        None,
    );
    r.expect_status(200);
    assert!(r.body == tool.blobs[1]);
    assert!(soute_requests(&hub)
        .iter()
        .all(|(_, p, _)| !p.contains("org/tool")));

    // A local repository wins over the mirror: push library/mine here first.
    let local = push_image(
        &agent,
        &soute.http_base(),
        "library/mine",
        "1",
        103,
        &[150],
        None,
    );
    assert_ne!(local.digest, mine.digest);
    pull_manifest(&soute, "library/mine", "1", &local.manifest);
    assert!(
        soute_requests(&hub)
            .iter()
            .all(|(_, p, _)| !p.contains("library/mine")),
        "a local repository was looked up on the mirror"
    );
    // `docker push` HEADs its blobs in a repository that does not exist yet:
    // never answered by the mirror (the blob exists upstream, under library/nginx).
    let layer = sha256(&nginx.blobs[1]);
    let head = call(
        &agent,
        "HEAD",
        &soute.url(&format!("/v2/team/new/blobs/{layer}")),
        None,
        &[],
        None,
    );
    head.expect_status(404);
    assert!(soute_requests(&hub)
        .iter()
        .all(|(_, p, _)| !p.contains("team/new")));
    push_image(
        &agent,
        &soute.http_base(),
        "team/new",
        "1",
        104,
        &[120],
        None,
    );

    // And a name nobody has is the mirror's 404.
    let r = manifest_at(&soute.url("/v2/library/nothing/manifests/1"), None);
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    assert!(r.text().contains("upstream docker.io"), "{}", r.text());
}

#[test]
fn registry_proxy_variables_configure_the_mirror_of_the_real_binary() {
    if !distribution_available("registry_proxy_variables_configure_the_mirror_of_the_real_binary") {
        return;
    }
    let hub = Distribution::start(None);
    let agent = http_agent();
    let nginx = push_image(
        &agent,
        &hub.url(),
        "library/nginx",
        "1.27",
        110,
        &[700],
        None,
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let env = [
        ("REGISTRY_PROXY_REMOTEURL", hub.url()),
        ("REGISTRY_PROXY_USERNAME", "someone".to_string()),
        ("REGISTRY_PROXY_PASSWORD", "env-secret-pw".to_string()),
        ("REGISTRY_PROXY_TTL", "2m".to_string()),
    ];
    let mut check = soute_bin();
    check
        .args(["check-config", "--tls", "off"])
        .envs(env.clone());
    let out = check.output().expect("check-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("proxy mirror:     127.0.0.1 = http://"),
        "{text}"
    );
    assert!(!text.contains("env-secret-pw"), "{text}");

    let mut cmd = soute_bin();
    cmd.args(["serve", "--data"])
        .arg(&data)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "off",
            "--gc-interval",
            "0",
            "--workers",
            "8",
        ])
        .envs(env);
    let proc = Proc::spawn(cmd);
    let addr = proc.wait_line("soute listening on http://", STARTUP);
    let url = format!("http://{addr}/v2/library/nginx/manifests/1.27");
    let r = manifest_at(&url, None);
    r.expect_status(200);
    assert_eq!(r.body, nginx.manifest);
    let listed = list_json(&data);
    assert_eq!(listed[0]["name"], "127.0.0.1", "{listed}");
    assert_eq!(listed[0]["mirror"], true);
    assert_eq!(listed[0]["tag_ttl_secs"], 120);
    assert_eq!(listed[0]["username"], "someone");
    let (_, log) = proc.stop(std::time::Duration::from_secs(10));
    assert!(
        !log.contains("env-secret-pw"),
        "the password reached the log"
    );
    assert!(log.contains("REGISTRY_PROXY_REMOTEURL"), "{log}");
}

#[test]
fn through_the_mirror_an_upstream_refusal_is_unknown_so_new_pushes_work() {
    if !distribution_available(
        "through_the_mirror_an_upstream_refusal_is_unknown_so_new_pushes_work",
    ) {
        return;
    }
    // Docker Hub answers 401 for repositories that do not exist.
    let hub = Distribution::start(Some(("nobody", "unused-pw")));
    let agent = http_agent();
    let soute = Soute::plain();
    add_upstream(soute.data(), &["docker.io", &hub.url(), "--mirror"], None);
    let r = manifest_at(&soute.url("/v2/team/fresh/manifests/1"), None);
    r.expect_error(404, &["MANIFEST_UNKNOWN"]);
    assert!(r.text().contains("401"), "{}", r.text());
    let head = call(
        &agent,
        "HEAD",
        &soute.url("/v2/team/fresh/manifests/1"),
        None,
        &[],
        None,
    );
    head.expect_status(404);
    let image = push_image(
        &agent,
        &soute.http_base(),
        "team/fresh",
        "1",
        120,
        &[300],
        None,
    );
    pull_manifest(&soute, "team/fresh", "1", &image.manifest);
    // Its own namespace keeps saying what went wrong.
    manifest_at(&soute.url("/v2/docker.io/team/fresh/manifests/1"), None)
        .expect_error(502, &["UNKNOWN"]);
}
