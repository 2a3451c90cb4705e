//! `soute upstream sync` (the real binary, beside the in-process server on
//! the same data folder): one platform of a multi-arch index fetches the
//! index, that platform's manifest and its blobs and nothing else; the
//! default is this machine's platform; a second sync fetches nothing; then,
//! with the upstream stopped, every synced image still pulls through soute.
//! And `upstream list` shows the counters and the last error.

use super::common::*;
use crate::support::*;

#[test]
fn sync_warms_the_cache_and_pulls_work_with_the_upstream_stopped() {
    if !distribution_available("sync_warms_the_cache_and_pulls_work_with_the_upstream_stopped") {
        return;
    }
    let mut upstream = Distribution::start(None);
    let agent = http_agent();
    let amd64 = push_image(
        &agent,
        &upstream.url(),
        "lab/multi",
        "amd64",
        41,
        &[30_000],
        None,
    );
    let arm64 = push_image(
        &agent,
        &upstream.url(),
        "lab/multi",
        "arm64",
        42,
        &[40_000],
        None,
    );
    let child = |image: &Image, arch: &str| {
        let mut d = Descriptor::new(OCI_MANIFEST, &image.manifest).json();
        d["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
        d
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [child(&amd64, "amd64"), child(&arm64, "arm64")],
    }))
    .expect("json");
    put_manifest(
        &agent,
        &upstream.url(),
        "lab/multi",
        "1",
        OCI_INDEX,
        &index,
        None,
    )
    .expect_status(201);
    let soute = Soute::plain();
    add_upstream(
        soute.data(),
        &["up", &upstream.url(), "--tag-ttl", "600"],
        None,
    );

    let sync = |extra: &[&str]| {
        let mut args = vec!["sync", "up/lab/multi:1"];
        args.extend_from_slice(extra);
        let (ok, out, err) = upstream_cmd(soute.data(), &args, None);
        assert!(ok, "sync {extra:?} failed: {out}{err}");
        out
    };
    let fetched_paths = || -> Vec<String> {
        soute_requests(&upstream)
            .into_iter()
            .filter(|(m, _, s)| m == "GET" && *s == 200)
            .map(|(_, p, _)| p)
            .collect()
    };
    let out = sync(&["--platform", "linux/arm64"]);
    assert!(out.contains("(linux/arm64)"), "{out}");
    assert!(out.contains("not fetched (other platforms"), "{out}");
    for b in &arm64.blobs {
        assert!(
            out.contains(&format!("fetched blob {}", sha256(b))),
            "{out}"
        );
    }
    let got = fetched_paths();
    let asked = |what: &str| got.iter().any(|p| p.contains(what));
    assert!(asked("/manifests/1") && asked(&arm64.digest), "{got:?}");
    assert!(
        !asked(&amd64.digest),
        "the other platform was fetched: {got:?}"
    );
    for b in &amd64.blobs {
        assert!(
            !asked(&sha256(b)),
            "the other platform's blob was fetched: {got:?}"
        );
    }
    for b in &arm64.blobs {
        let n = got.iter().filter(|p| p.ends_with(&sha256(b))).count();
        assert_eq!(n, 1, "{got:?}");
    }

    // The default: this machine's platform (the tests run on linux/amd64).
    if std::env::consts::ARCH == "x86_64" {
        let out = sync(&[]);
        assert!(out.contains("(linux/amd64)"), "{out}");
        assert!(fetched_paths().iter().any(|p| p.contains(&amd64.digest)));
    } else {
        sync(&["--platform", "linux/amd64"]);
    }
    let before = fetched_paths();
    let again = sync(&["--platform", "all"]);
    assert!(again.contains("0 fetched now"), "{again}");
    assert!(again.contains("cached already"), "{again}");
    let after = fetched_paths();
    assert_eq!(
        after.len(),
        before.len(),
        "a warm sync fetched again: {:?}",
        &after[before.len().min(after.len())..]
    );

    upstream.stop();
    pull_manifest(&soute, "up/lab/multi", "1", &index);
    for image in [&amd64, &arm64] {
        pull_manifest(&soute, "up/lab/multi", &image.digest, &image.manifest);
        pull_blobs(&soute, "up/lab/multi", image);
    }
    let uncached = manifest_at(&soute.url("/v2/up/lab/multi/manifests/2"), None);
    assert_eq!(uncached.status, 502, "{}", uncached.text());
    let (ok, _, err) = upstream_cmd(soute.data(), &["sync", "up/lab/multi:2"], None);
    assert!(
        !ok && err.contains("up"),
        "a sync with the upstream down fails: {err}"
    );

    let listed = list_json(soute.data());
    let up = &listed[0];
    let n = |k: &str| up[k].as_u64().unwrap_or(0);
    assert!(n("hits") >= 5, "{listed:#}");
    assert!(n("misses") >= 5, "{listed:#}");
    let image_bytes: usize = [&amd64, &arm64]
        .iter()
        .flat_map(|i| i.blobs.iter())
        .map(Vec::len)
        .sum();
    assert!(n("bytes_fetched") >= image_bytes as u64, "{listed:#}");
    assert!(n("bytes_served") >= image_bytes as u64, "{listed:#}");
    // The pulls after the syncs came from the cache.
    assert_eq!(
        n("bytes_served_from_cache"),
        n("bytes_served") - n("bytes_fetched"),
        "{listed:#}"
    );
    assert!(
        n("bytes_served_from_cache") >= image_bytes as u64,
        "{listed:#}"
    );
    assert!(n("cached_bytes") >= image_bytes as u64, "{listed:#}");
    assert!(up["last_error"].as_str().is_some(), "{listed:#}");
    let text = upstream_cmd(soute.data(), &["list"], None).1;
    for column in [
        "HITS",
        "MISSES",
        "SERVED",
        "FETCHED",
        "CACHED/MAX",
        "LAST ERROR",
    ] {
        assert!(text.contains(column), "{text}");
    }
}

#[test]
fn sync_and_space_flags_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    for (args, says) in [
        (vec!["upstream", "sync"], "what to sync"),
        (
            vec!["upstream", "sync", "up/x:1", "--platform", "arm64"],
            "OS/ARCH",
        ),
        (
            vec!["upstream", "list", "--platform", "linux/amd64"],
            "goes with `soute upstream sync`",
        ),
        (
            vec![
                "upstream",
                "add",
                "up",
                "http://127.0.0.1:1",
                "--max-bytes",
                "lots",
            ],
            "--max-bytes",
        ),
        (
            vec![
                "upstream",
                "add",
                "up",
                "http://127.0.0.1:1",
                "--evict-after",
                "7w",
            ],
            "--evict-after",
        ),
        (
            vec!["upstream", "list", "--purge"],
            "goes with `soute upstream del`",
        ),
    ] {
        let mut argv = args.clone();
        argv.extend(["--data", data]);
        let (ok, out, err) = run_soute(&argv);
        assert!(!ok, "{argv:?} succeeded: {out}");
        assert!(err.contains(says), "{argv:?}: {err}");
    }
}

/// An upstream may not take over a namespace where private repositories
/// live (every push there would be refused and pulls answered upstream):
/// `upstream add` names the repository and changes nothing.
#[test]
fn an_upstream_cannot_take_over_a_private_namespace() {
    let soute = Soute::plain();
    let agent = http_agent();
    push_image(&agent, &soute.http_base(), "team/app", "1", 7, &[100], None);
    let (ok, out, err) = upstream_cmd(soute.data(), &["add", "team", "http://127.0.0.1:9"], None);
    assert!(!ok, "accepted: {out}");
    assert!(
        err.contains("private repository team/app is under team/"),
        "{err}"
    );
    assert_eq!(list_json(soute.data()), serde_json::json!([]));
    // A name that only shares a prefix is fine.
    add_upstream(soute.data(), &["tea", "http://127.0.0.1:9"], None);
}
