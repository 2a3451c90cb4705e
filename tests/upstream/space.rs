//! The cache's space: `--max-bytes` evicts the least recently pulled cached
//! image and never a private one (even one sharing a layer), `--evict-after`
//! evicts by age, `gc --dry-run` explains, `du` splits private and cached
//! bytes and its figures match the files on disk; a deleted upstream's cache
//! stays read-only until `del --purge`; `verify` does not call references to
//! blobs no client pulled yet broken. `soute gc`, `du`, `verify` and
//! `upstream` run as the real binary beside the in-process server.

use super::common::*;
use crate::support::*;
use std::path::Path;
use std::time::Duration;

/// Bytes of every file under `data/blobs` (what the store holds on disk).
pub fn blob_bytes_on_disk(data: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![data.join("blobs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// `soute ARGS... --data DIR`, which must succeed: its stdout.
pub fn soute_ok(data: &Path, args: &[&str]) -> String {
    let data = data.to_str().expect("utf-8 path");
    let mut argv = args.to_vec();
    argv.extend(["--data", data]);
    let (ok, out, err) = run_soute(&argv);
    assert!(ok, "soute {argv:?} failed: {out}{err}");
    out
}

/// `soute du --json` as JSON.
pub fn du_json(data: &Path) -> serde_json::Value {
    serde_json::from_str(&soute_ok(data, &["du", "--json"])).expect("du --json is JSON")
}

/// Pull an image through soute: its manifest by tag, then its blobs.
fn pull_image(soute: &Soute, repo: &str, tag: &str, image: &Image) {
    pull_manifest(soute, repo, tag, &image.manifest);
    pull_blobs(soute, repo, image);
}

/// What caching `image` costs: its manifest and the blobs in `skip` left out.
fn cost(image: &Image, skip: &[&Vec<u8>]) -> u64 {
    image.manifest.len() as u64
        + image
            .blobs
            .iter()
            .filter(|b| !skip.contains(b))
            .map(|b| b.len() as u64)
            .sum::<u64>()
}

/// `upstream add up URL --max-bytes MAX`, then pull a, b and a again (its
/// manifest), a second apart: b is the least recently pulled.
fn add_up_and_pull_a_b_a(soute: &Soute, upstream: &Distribution, max: u64, a: &Image, b: &Image) {
    let max = max.to_string();
    let args = [
        "up",
        &upstream.url(),
        "--max-bytes",
        &max,
        "--tag-ttl",
        "600",
    ];
    add_upstream(soute.data(), &args, None);
    pull_image(soute, "up/lab/a", "1", a);
    std::thread::sleep(Duration::from_millis(1100));
    pull_image(soute, "up/lab/b", "1", b);
    std::thread::sleep(Duration::from_millis(1100));
    pull_manifest(soute, "up/lab/a", "1", &a.manifest);
}

#[test]
fn max_bytes_evicts_the_least_recently_pulled_never_a_private_image() {
    if !distribution_available("max_bytes_evicts_the_least_recently_pulled_never_a_private_image") {
        return;
    }
    let mut upstream = Distribution::start(None);
    let agent = http_agent();
    let a = push_image(
        &agent,
        &upstream.url(),
        "lab/a",
        "1",
        11,
        &[1 << 20, 3000],
        None,
    );
    let b = push_image(&agent, &upstream.url(), "lab/b", "1", 12, &[400_000], None);
    let soute = Soute::plain();
    // A private image sharing a's 1 MiB layer.
    let shared = &a.blobs[1];
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"private\":true}".to_vec();
    let own = pseudo_random_bytes(13, 5000);
    for blob in [&config, shared, &own] {
        push_blob(&agent, &soute.http_base(), "mine/app", blob, None);
    }
    let private = image_manifest(
        OCI_MANIFEST,
        &Descriptor::new(OCI_CONFIG, &config),
        &[
            Descriptor::new(OCI_LAYER, shared),
            Descriptor::new(OCI_LAYER, &own),
        ],
        None,
        None,
    );
    put_manifest(
        &agent,
        &soute.http_base(),
        "mine/app",
        "1",
        OCI_MANIFEST,
        &private,
        None,
    )
    .expect_status(201);

    let a_cost = cost(&a, &[shared]);
    let b_cost = cost(&b, &[]);
    let max = a_cost + b_cost / 2;
    add_up_and_pull_a_b_a(&soute, &upstream, max, &a, &b);
    // Batched: the three pulls of two references wait in memory until a
    // flush (once a minute; here, now).
    assert_eq!(soute.registry().flush_pulls().expect("flush"), 2);

    let du = du_json(soute.data());
    let total = &du["total"];
    assert_eq!(total["cached_bytes"], a_cost + b_cost, "{du:#}");
    assert_eq!(
        total["private_bytes"],
        (private.len() + config.len() + shared.len() + own.len()) as u64,
        "the shared layer counts as private: {du:#}"
    );
    assert_eq!(
        total["blob_bytes"],
        blob_bytes_on_disk(soute.data()),
        "{du:#}"
    );
    let up = du["upstreams"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == "up"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(up["cached_bytes"], a_cost + b_cost, "{du:#}");
    assert_eq!(up["max_bytes"], max);

    // The dry run explains and changes nothing.
    let dry = soute_ok(soute.data(), &["gc", "--dry-run"]);
    assert!(
        dry.contains("would evict cached up/lab/b@") && dry.contains("over --max-bytes"),
        "{dry}"
    );
    assert!(!dry.contains("evict cached up/lab/a@"), "{dry}");
    assert_eq!(du_json(soute.data())["total"], *total);

    let report: serde_json::Value =
        serde_json::from_str(&soute_ok(soute.data(), &["gc", "--json"])).expect("gc --json");
    let evicted = report["evicted"].as_array().cloned().unwrap_or_default();
    assert_eq!(evicted.len(), 1, "{report:#}");
    assert_eq!(
        evicted[0]["what"],
        format!("up/lab/b@{} (tags 1)", b.digest)
    );
    assert_eq!(evicted[0]["bytes"], b_cost);
    let after = du_json(soute.data());
    assert_eq!(after["total"]["cached_bytes"], a_cost, "{after:#}");
    assert_eq!(
        after["total"]["blob_bytes"],
        blob_bytes_on_disk(soute.data()),
        "{after:#}"
    );
    assert_eq!(
        blob_bytes_on_disk(soute.data()),
        total["blob_bytes"].as_u64().unwrap_or(0) - (b_cost - b.manifest.len() as u64),
        "b's blobs are gone from the disk, nothing else"
    );

    // The private image is whole; a is still served with the upstream stopped, b is not.
    upstream.stop();
    let r = manifest_at(&soute.url("/v2/mine/app/manifests/1"), None);
    r.expect_status(200);
    assert_eq!(r.body, private);
    for blob in [&config, shared, &own] {
        let r = get(
            &agent,
            &soute.url(&format!("/v2/mine/app/blobs/{}", sha256(blob))),
            None,
        );
        r.expect_status(200);
        assert!(r.body == *blob);
    }
    pull_image(&soute, "up/lab/a", "1", &a);
    let gone = manifest_at(&soute.url("/v2/up/lab/b/manifests/1"), None);
    assert_eq!(gone.status, 502, "{}", gone.text());
}

#[test]
fn evict_after_removes_images_not_pulled_for_that_long() {
    if !distribution_available("evict_after_removes_images_not_pulled_for_that_long") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let a = push_image(&agent, &upstream.url(), "lab/a", "1", 21, &[50_000], None);
    let soute = Soute::plain();
    add_upstream(
        soute.data(),
        &["up", &upstream.url(), "--evict-after", "2s"],
        None,
    );
    let listed = list_json(soute.data());
    assert_eq!(listed[0]["evict_after_secs"], 2);
    assert_eq!(listed[0]["max_bytes"], serde_json::Value::Null);
    pull_image(&soute, "up/lab/a", "1", &a);
    soute.registry().flush_pulls().expect("flush");
    let kept = soute_ok(soute.data(), &["gc", "--dry-run"]);
    assert!(!kept.contains("would evict"), "pulled just now: {kept}");
    std::thread::sleep(Duration::from_millis(3100));
    let dry = soute_ok(soute.data(), &["gc", "--dry-run"]);
    assert!(
        dry.contains("would evict cached up/lab/a@") && dry.contains("--evict-after 2 s"),
        "{dry}"
    );
    soute_ok(soute.data(), &["gc"]);
    let du = du_json(soute.data());
    assert_eq!(du["total"]["cached_bytes"], 0, "{du:#}");
    assert_eq!(du["total"]["blob_bytes"], 0, "{du:#}");
    assert_eq!(blob_bytes_on_disk(soute.data()), 0);
}

#[test]
fn a_deleted_upstreams_cache_stays_read_only_until_purged() {
    if !distribution_available("a_deleted_upstreams_cache_stays_read_only_until_purged") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let a = push_image(
        &agent,
        &upstream.url(),
        "lab/a",
        "1",
        31,
        &[20_000, 30_000],
        None,
    );
    let soute = Soute::plain();
    add_upstream(soute.data(), &["up", &upstream.url()], None);
    // Only the manifest and one layer: the other references point at blobs
    // no client pulled, which verify must not call broken.
    pull_manifest(&soute, "up/lab/a", "1", &a.manifest);
    let layer = sha256(&a.blobs[1]);
    get(
        &agent,
        &soute.url(&format!("/v2/up/lab/a/blobs/{layer}")),
        None,
    )
    .expect_status(200);
    let verify = soute_ok(soute.data(), &["verify"]);
    assert!(verify.contains("0 problem(s)"), "{verify}");
    assert!(
        verify.contains("2 reference(s) of cached images"),
        "{verify}"
    );

    let (ok, out, err) = upstream_cmd(soute.data(), &["del", "up"], None);
    assert!(ok && out.contains("read-only"), "{out}{err}");
    let before = soute_requests(&upstream).len();
    // Still served, as it was cached; nothing is fetched any more.
    pull_manifest(&soute, "up/lab/a", "1", &a.manifest);
    get(
        &agent,
        &soute.url(&format!("/v2/up/lab/a/blobs/{layer}")),
        None,
    )
    .expect_status(200);
    let missing = sha256(&a.blobs[2]);
    get(
        &agent,
        &soute.url(&format!("/v2/up/lab/a/blobs/{missing}")),
        None,
    )
    .expect_status(404);
    assert_eq!(
        soute_requests(&upstream).len(),
        before,
        "a deleted upstream was asked"
    );
    // Never a writable private repository under its name.
    put_manifest(
        &agent,
        &soute.http_base(),
        "up/lab/a",
        "2",
        OCI_MANIFEST,
        &a.manifest,
        None,
    )
    .expect_status(405);
    let post = call(
        &agent,
        "POST",
        &soute.url("/v2/up/other/blobs/uploads/"),
        None,
        &[],
        Some(b""),
    );
    post.expect_status(405);
    let listed = list_json(soute.data());
    let orphan = listed
        .as_array()
        .and_then(|l| l.iter().find(|u| u["name"] == "up"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(orphan["deleted"], true, "{listed:#}");
    assert_eq!(
        orphan["cached_bytes"],
        (a.manifest.len() + a.blobs[1].len()) as u64,
        "{listed:#}"
    );
    let text = upstream_cmd(soute.data(), &["list"], None).1;
    assert!(text.contains("up: deleted upstream"), "{text}");

    let (ok, out, err) = upstream_cmd(soute.data(), &["del", "up", "--purge"], None);
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 image(s) evicted"), "{out}");
    let du = du_json(soute.data());
    assert_eq!(du["total"]["cached_bytes"], 0, "{du:#}");
    assert_eq!(blob_bytes_on_disk(soute.data()), 0, "{du:#}");
    manifest_at(&soute.url("/v2/up/lab/a/manifests/1"), None).expect_status(404);
    // The namespace is free again: a push there is a private push.
    push_blob(&agent, &soute.http_base(), "up/mine", &a.blobs[0], None);
    let (ok, _, _) = upstream_cmd(soute.data(), &["del", "up", "--purge"], None);
    assert!(!ok, "nothing left to purge");
}

#[test]
fn the_online_gc_evicts_with_the_servers_own_pull_times() {
    if !distribution_available("the_online_gc_evicts_with_the_servers_own_pull_times") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let a = push_image(&agent, &upstream.url(), "lab/a", "1", 51, &[60_000], None);
    let b = push_image(&agent, &upstream.url(), "lab/b", "1", 52, &[70_000], None);
    // GC every second, from 6 s after the start (the pulls below take about 3 s).
    let soute = Soute::start(|cfg| {
        cfg.gc_interval = Some(Duration::from_secs(1));
        cfg.gc_first_run = Duration::from_secs(6);
    });
    let max = cost(&a, &[]) + cost(&b, &[]) - 1;
    // a, b, then a again: by the stored times a is the older one (created
    // first, no pull written: no flush is due within a minute); only the
    // server's memory knows a was pulled last, and its GC thread flushes first.
    add_up_and_pull_a_b_a(&soute, &upstream, max, &a, &b);
    wait_until(
        "the online gc to evict up/lab/b",
        Duration::from_secs(30),
        || du_json(soute.data())["total"]["cached_bytes"] != cost(&a, &[]) + cost(&b, &[]),
    );
    let du = du_json(soute.data());
    assert_eq!(
        du["total"]["cached_bytes"],
        cost(&a, &[]),
        "b went, a stayed: {du:#}"
    );
    assert_eq!(
        du["total"]["blob_bytes"],
        blob_bytes_on_disk(soute.data()),
        "{du:#}"
    );
}
