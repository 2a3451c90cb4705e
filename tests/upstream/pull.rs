//! Pulls through an anonymous upstream: by tag (Docker Hub's short form
//! too) and by digest, manifests and blobs byte for byte; each blob fetched
//! once; one platform of a multi-arch index fetches only that platform;
//! pushes into the upstream's namespace refused; the CLI's checks.

use super::common::*;
use crate::support::*;

#[test]
fn pulls_by_tag_and_digest_fetching_each_blob_once() {
    if !distribution_available("pulls_by_tag_and_digest_fetching_each_blob_once") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "library/busybox",
        "1.36",
        1,
        &[3 << 20, 1000],
        None,
    );
    let soute = Soute::plain();
    add_upstream(soute.data(), &["docker.io", &upstream.url()], None);

    // Docker Hub's short form, then the long one: the same cached repository.
    pull_manifest(&soute, "docker.io/busybox", "1.36", &image.manifest);
    pull_blobs(&soute, "docker.io/busybox", &image);
    pull_manifest(
        &soute,
        "docker.io/library/busybox",
        &image.digest,
        &image.manifest,
    );
    pull_blobs(&soute, "docker.io/library/busybox", &image);
    let head = call(
        &agent,
        "HEAD",
        &soute.url(&format!(
            "/v2/docker.io/library/busybox/blobs/{}",
            sha256(&image.blobs[1])
        )),
        None,
        &[],
        None,
    );
    head.expect_status(200);
    assert_eq!(head.content_length(), Some(image.blobs[1].len() as u64));
    // The tags list (skopeo inspect asks for it) is the tags cached so far.
    let tags = get(&agent, &soute.url("/v2/docker.io/busybox/tags/list"), None);
    tags.expect_status(200);
    assert_eq!(
        tags.json()["tags"],
        serde_json::json!(["1.36"]),
        "{}",
        tags.text()
    );

    let fetched = soute_requests(&upstream);
    for b in &image.blobs {
        let path = format!("/v2/library/busybox/blobs/{}", sha256(b));
        let gets = fetched
            .iter()
            .filter(|(m, p, s)| m == "GET" && *p == path && *s == 200)
            .count();
        assert_eq!(gets, 1, "blob fetched {gets} times, not once: {fetched:?}");
    }
    let manifest_gets = fetched
        .iter()
        .filter(|(m, p, s)| m == "GET" && p.contains("/manifests/") && *s == 200)
        .count();
    assert_eq!(
        manifest_gets, 1,
        "the manifest by digest was served from the cache: {fetched:?}"
    );
    assert!(
        fetched
            .iter()
            .all(|(_, p, _)| p.starts_with("/v2/library/busybox/") || p == "/v2/"),
        "soute asked the upstream for something else: {fetched:?}"
    );

    // Cached content is normal content: the registry's own checks agree.
    let listed = list_json(soute.data());
    let row = &listed[0];
    assert_eq!(row["name"], "docker.io");
    assert_eq!(row["misses"].as_u64(), Some(4), "{row}");
    assert!(row["hits"].as_u64().unwrap_or(0) >= 4, "{row}");
    let fetched_bytes: u64 =
        image.blobs.iter().map(|b| b.len() as u64).sum::<u64>() + image.manifest.len() as u64;
    assert_eq!(row["bytes_fetched"].as_u64(), Some(fetched_bytes), "{row}");
    let report = soute
        .registry()
        .verify(false, true, &mut |_| {})
        .expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.blobs_checked, image.blobs.len() as u64);
}

#[test]
fn one_platform_of_an_index_fetches_only_that_platform() {
    if !distribution_available("one_platform_of_an_index_fetches_only_that_platform") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let amd64 = push_image(
        &agent,
        &upstream.url(),
        "org/multi",
        "amd64",
        2,
        &[2000],
        None,
    );
    let arm64 = push_image(
        &agent,
        &upstream.url(),
        "org/multi",
        "arm64",
        3,
        &[3000],
        None,
    );
    let index = index_manifest(
        OCI_INDEX,
        &[
            Descriptor::new(OCI_MANIFEST, &amd64.manifest),
            Descriptor::new(OCI_MANIFEST, &arm64.manifest),
        ],
    );
    put_manifest(
        &agent,
        &upstream.url(),
        "org/multi",
        "latest",
        OCI_INDEX,
        &index,
        None,
    )
    .expect_status(201);
    let soute = Soute::plain();
    add_upstream(
        soute.data(),
        &["ghcr.io", &upstream.url(), "--tag-ttl", "600"],
        None,
    );

    pull_manifest(&soute, "ghcr.io/org/multi", "latest", &index);
    pull_manifest(&soute, "ghcr.io/org/multi", &amd64.digest, &amd64.manifest);
    pull_blobs(&soute, "ghcr.io/org/multi", &amd64);

    let fetched = soute_requests(&upstream);
    let asked = |what: &str| fetched.iter().any(|(_, p, _)| p.contains(what));
    assert!(asked(&amd64.digest), "{fetched:?}");
    assert!(
        !asked(&arm64.digest),
        "the other platform's manifest was fetched: {fetched:?}"
    );
    for b in &arm64.blobs[1..] {
        assert!(
            !asked(&sha256(b)),
            "the other platform's layer was fetched: {fetched:?}"
        );
    }
}

#[test]
fn writes_into_an_upstream_namespace_are_refused() {
    if !distribution_available("writes_into_an_upstream_namespace_are_refused") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "library/alpine",
        "3",
        4,
        &[100],
        None,
    );
    let soute = Soute::plain();
    add_upstream(soute.data(), &["docker.io", &upstream.url()], None);
    pull_manifest(&soute, "docker.io/library/alpine", "3", &image.manifest);

    let base = soute.http_base();
    let refused = [
        call(
            &agent,
            "POST",
            &format!("{base}/v2/docker.io/library/alpine/blobs/uploads/"),
            None,
            &[],
            Some(b""),
        ),
        call(
            &agent,
            "PUT",
            &format!("{base}/v2/docker.io/library/alpine/manifests/mine"),
            None,
            &[("Content-Type", OCI_MANIFEST)],
            Some(&image.manifest),
        ),
        call(
            &agent,
            "DELETE",
            &format!(
                "{base}/v2/docker.io/library/alpine/manifests/{}",
                image.digest
            ),
            None,
            &[],
            None,
        ),
        call(
            &agent,
            "DELETE",
            &format!(
                "{base}/v2/docker.io/library/alpine/blobs/{}",
                sha256(&image.blobs[0])
            ),
            None,
            &[],
            None,
        ),
    ];
    for r in &refused {
        r.expect_error(405, &["UNSUPPORTED"]);
        assert!(r.text().contains("upstream docker.io"), "{}", r.text());
    }
    // Nothing changed: the cached manifest is still there, no upload began.
    pull_manifest(&soute, "docker.io/library/alpine", "3", &image.manifest);
    // Outside the namespace, pushes work as always.
    push_blob(&agent, &base, "mine/alpine", &image.blobs[0], None);
}

#[test]
fn the_cli_checks_names_and_urls_and_never_shows_the_password() {
    let soute = Soute::plain();
    for (args, says) in [
        (
            &["add", "127.0.0.1:5001", "http://127.0.0.1:5001"][..],
            "cannot be an upstream name",
        ),
        (
            &["add", "Docker.io", "https://registry-1.docker.io"][..],
            "cannot be an upstream name",
        ),
        (
            &["add", "docker.io", "registry-1.docker.io"][..],
            "is not an upstream URL",
        ),
        (
            &["add", "docker.io", "https://x/v2/"][..],
            "is not an upstream URL",
        ),
        (
            &["add", "docker.io", "https://x", "--username", "u"][..],
            "go together",
        ),
        (&["del", "nothing.here"][..], "no upstream nothing.here"),
    ] {
        let (ok, out, err) = upstream_cmd(soute.data(), args, None);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    add_upstream(
        soute.data(),
        &[
            "quay.io",
            "https://quay.example",
            "--username",
            "bot",
            "--password-stdin",
            "--tag-ttl",
            "60",
        ],
        Some("very-secret-pw"),
    );
    let (ok, _, err) = upstream_cmd(
        soute.data(),
        &["add", "quay.io", "https://other.example"],
        None,
    );
    assert!(!ok && err.contains("exists"), "{err}");
    let (ok, text, _) = upstream_cmd(soute.data(), &["list"], None);
    assert!(
        ok && text.contains("quay.io") && text.contains("https://quay.example"),
        "{text}"
    );
    let json = list_json(soute.data());
    assert_eq!(json[0]["username"], "bot");
    assert_eq!(json[0]["password_set"], true);
    assert_eq!(json[0]["tag_ttl_secs"], 60);
    assert!(!text.contains("very-secret-pw") && !json.to_string().contains("very-secret-pw"));
    let (ok, out, _) = upstream_cmd(soute.data(), &["del", "quay.io"], None);
    assert!(ok, "{out}");
    assert_eq!(list_json(soute.data()), serde_json::json!([]));
}

#[test]
fn eight_concurrent_cold_pulls_make_one_upstream_get_per_blob() {
    if !distribution_available("eight_concurrent_cold_pulls_make_one_upstream_get_per_blob") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "library/python",
        "3",
        70,
        &[8 << 20],
        None,
    );
    // 16 workers: 8 may read cold blobs as they grow (half of them).
    let soute = Soute::start(|c| c.workers = 16);
    add_upstream(soute.data(), &["docker.io", &upstream.url()], None);
    pull_manifest(&soute, "docker.io/python", "3", &image.manifest);
    let layer = &image.blobs[1];
    let url = soute.url(&format!("/v2/docker.io/python/blobs/{}", sha256(layer)));
    std::thread::scope(|s| {
        let pulls: Vec<_> = (0..8)
            .map(|_| s.spawn(|| get(&http_agent(), &url, None)))
            .collect();
        for p in pulls {
            let r = p.join().expect("pull thread");
            r.expect_status(200);
            assert!(r.body == *layer, "a concurrent pull got other bytes");
        }
    });
    let path = format!("/v2/library/python/blobs/{}", sha256(layer));
    let gets = soute_requests(&upstream)
        .iter()
        .filter(|(m, p, _)| m == "GET" && *p == path)
        .count();
    assert_eq!(gets, 1, "{:?}", soute_requests(&upstream));
}

#[test]
fn a_layer_another_cached_repository_has_is_linked_after_a_head() {
    if !distribution_available("a_layer_another_cached_repository_has_is_linked_after_a_head") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let base = push_image(
        &agent,
        &upstream.url(),
        "library/debian",
        "12",
        80,
        &[50_000],
        None,
    );
    // Another repository upstream with the same base layer.
    let shared = &base.blobs[1];
    push_blob(&agent, &upstream.url(), "org/app", shared, None);
    let soute = Soute::plain();
    add_upstream(soute.data(), &["docker.io", &upstream.url()], None);
    pull_manifest(&soute, "docker.io/debian", "12", &base.manifest);
    pull_blobs(&soute, "docker.io/debian", &base);

    let r = get(
        &agent,
        &soute.url(&format!("/v2/docker.io/org/app/blobs/{}", sha256(shared))),
        None,
    );
    r.expect_status(200);
    assert!(r.body == *shared);
    let asked: Vec<_> = soute_requests(&upstream)
        .into_iter()
        .filter(|(_, p, _)| p.starts_with("/v2/org/app/"))
        .collect();
    assert_eq!(
        asked,
        vec![(
            "HEAD".to_string(),
            format!("/v2/org/app/blobs/{}", sha256(shared)),
            200
        )]
    );
    // A digest the other upstream repository lacks is not linked: 404.
    let missing = get(
        &agent,
        &soute.url(&format!(
            "/v2/docker.io/org/app/blobs/{}",
            sha256(&base.blobs[0])
        )),
        None,
    );
    missing.expect_error(404, &["BLOB_UNKNOWN"]);
}
