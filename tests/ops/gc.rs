//! Online GC: scenarios with exact survivors, du agreeing with GC, and the
//! upload/GC/manifest race.

use crate::common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const NOW: &str = "grace=0&link_grace=0";

/// Set up a registry; return the blobs that must survive GC with `query`.
struct Scenario {
    name: &'static str,
    query: &'static str,
    setup: fn(&Client) -> BTreeSet<String>,
}

fn img(tag: &str, layers: &[&str]) -> Image {
    let config = format!("config of {tag}");
    let layers: Vec<Vec<u8>> = layers
        .iter()
        .map(|l| format!("layer {l}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = layers.iter().map(|l| l.as_slice()).collect();
    Image::new(config.as_bytes(), &refs)
}

fn survivors(images: &[&Image]) -> BTreeSet<String> {
    images
        .iter()
        .flat_map(|i| i.blobs().into_iter().map(sha256))
        .collect()
}

fn overwritten_tag(c: &Client, delete_untagged: bool) -> BTreeSet<String> {
    let v1 = img("v1", &["A", "B"]);
    let v1b = img("v1b", &["A", "D"]);
    v1.push(c, "lab/app", "v1").expect("push");
    v1b.push(c, "lab/app", "v1").expect("overwrite");
    if delete_untagged {
        survivors(&[&v1b])
    } else {
        survivors(&[&v1, &v1b])
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "overwritten tag, untagged kept",
            query: NOW,
            setup: |c| overwritten_tag(c, false),
        },
        Scenario {
            name: "overwritten tag, --delete-untagged",
            query: "grace=0&link_grace=0&delete_untagged=true",
            setup: |c| overwritten_tag(c, true),
        },
        Scenario {
            name: "deleted tag",
            query: "grace=0&link_grace=0&delete_untagged=true",
            setup: |c| {
                let v1 = img("v1", &["A"]);
                let v2 = img("v2", &["B"]);
                v1.push(c, "lab/app", "v1").expect("v1");
                v2.push(c, "lab/app", "v2").expect("v2");
                assert_eq!(
                    c.delete("/v2/lab/app/manifests/v1").expect("del").status,
                    202
                );
                survivors(&[&v2])
            },
        },
        Scenario {
            name: "deleted manifest (by digest) frees without --delete-untagged",
            query: NOW,
            setup: |c| {
                let v1 = img("v1", &["A", "shared"]);
                let v2 = img("v2", &["shared"]);
                let d1 = v1.push(c, "lab/app", "v1").expect("v1");
                v2.push(c, "lab/app", "v2").expect("v2");
                let r = c
                    .delete(&format!("/v2/lab/app/manifests/{d1}"))
                    .expect("del");
                assert_eq!(r.status, 202);
                survivors(&[&v2])
            },
        },
        Scenario {
            name: "index with shared children",
            query: "grace=0&link_grace=0&delete_untagged=true",
            setup: |c| {
                let amd = img("amd64", &["A", "common"]);
                let arm = img("arm64", &["B", "common"]);
                let stray = img("stray", &["C"]);
                let ma = amd.push(c, "lab/multi", &amd.digest()).expect("amd");
                let mb = arm.push(c, "lab/multi", &arm.digest()).expect("arm");
                stray.push(c, "lab/multi", &stray.digest()).expect("stray");
                let idx = index(&[&amd.manifest(), &arm.manifest()]);
                assert_eq!(
                    c.manifest("lab/multi", "latest", &idx).expect("idx").status,
                    201
                );
                // The children are untagged but reachable through the tagged index.
                let dry = c.gc("grace=0&link_grace=0&delete_untagged=true&dry_run=true");
                let kept = dry["kept"].as_array().expect("kept");
                let why = |d: &str| {
                    kept.iter()
                        .find(|k| k["what"].as_str().is_some_and(|w| w.ends_with(d)))
                        .and_then(|k| k["reason"].as_str())
                        .unwrap_or("")
                        .to_string()
                };
                assert!(
                    why(&ma).starts_with("child of index lab/multi@sha256:"),
                    "{}",
                    why(&ma)
                );
                assert!(why(&mb).starts_with("child of index lab/multi@sha256:"));
                assert!(why(&sha256(b"layer common")).starts_with("referenced by lab/multi@"));
                survivors(&[&amd, &arm])
            },
        },
        Scenario {
            name: "referrers of a kept subject stay, of a dropped one go",
            query: "grace=0&link_grace=0&delete_untagged=true",
            setup: |c| {
                let app = img("app", &["A"]);
                let d = app.push(c, "lab/app", "v1").expect("app");
                let mut sig = img("sig", &["signature"]);
                sig.subject = Some((d.clone(), app.manifest().len() as u64));
                sig.push(c, "lab/app", &sig.digest()).expect("sig");
                let mut sig2 = img("sig of sig", &["signature 2"]);
                sig2.subject = Some((sig.digest(), sig.manifest().len() as u64));
                sig2.push(c, "lab/app", &sig2.digest()).expect("sig2");
                let old = img("old", &["O"]);
                let od = old.push(c, "lab/app", &old.digest()).expect("old");
                let mut osig = img("old sig", &["old signature"]);
                osig.subject = Some((od, old.manifest().len() as u64));
                osig.push(c, "lab/app", &osig.digest()).expect("osig");
                survivors(&[&app, &sig, &sig2])
            },
        },
        Scenario {
            name: "blob mounted into another repository stays while that one uses it",
            query: "grace=0&link_grace=0&delete_untagged=true",
            setup: |c| {
                let a = img("a", &["shared"]);
                let da = a.push(c, "team-a/app", "v1").expect("a");
                let shared = sha256(b"layer shared");
                let r = c
                    .post(
                        &format!("/v2/team-b/app/blobs/uploads/?mount={shared}&from=team-a/app"),
                        b"",
                    )
                    .expect("mount");
                assert_eq!(r.status, 201);
                let b = img("b", &["shared"]);
                b.push(c, "team-b/app", "v1").expect("b");
                assert_eq!(
                    c.delete(&format!("/v2/team-a/app/manifests/{da}"))
                        .expect("del")
                        .status,
                    202
                );
                survivors(&[&b])
            },
        },
        Scenario {
            name: "untagged manifest kept without --delete-untagged",
            query: NOW,
            setup: |c| {
                let u = img("untagged", &["U"]);
                u.push(c, "lab/app", &u.digest()).expect("u");
                survivors(&[&u])
            },
        },
        Scenario {
            name: "untagged manifest removed with --delete-untagged",
            query: "grace=0&link_grace=0&delete_untagged=true",
            setup: |c| {
                let u = img("untagged", &["U"]);
                u.push(c, "lab/app", &u.digest()).expect("u");
                BTreeSet::new()
            },
        },
        Scenario {
            name: "untagged manifest younger than the grace period stays",
            query: "grace=3600&link_grace=0&delete_untagged=true",
            setup: |c| {
                let u = img("untagged", &["U"]);
                u.push(c, "lab/app", &u.digest()).expect("u");
                survivors(&[&u])
            },
        },
        Scenario {
            name: "uploaded blob waiting for its manifest (link grace)",
            query: "grace=0",
            setup: |c| {
                let d = c.blob("lab/app", b"pending layer").expect("blob");
                [d].into_iter().collect()
            },
        },
        Scenario {
            name: "unlinked blob younger than the grace period",
            query: "grace=3600&link_grace=0",
            setup: |c| {
                let d = c.blob("lab/app", b"young layer").expect("blob");
                assert_eq!(
                    c.delete(&format!("/v2/lab/app/blobs/{d}"))
                        .expect("del")
                        .status,
                    202
                );
                [d].into_iter().collect()
            },
        },
        Scenario {
            name: "unlinked old blob goes",
            query: NOW,
            setup: |c| {
                c.blob("lab/app", b"orphaned layer").expect("blob");
                BTreeSet::new()
            },
        },
    ]
}

#[test]
fn gc_scenarios_keep_exactly_what_is_needed() {
    for s in scenarios() {
        let dir = tempfile::tempdir().expect("tempdir");
        let srv = start(dir.path());
        let c = srv.client.clone();
        let want = (s.setup)(&c);
        let before = blob_files(dir.path());
        let du = c.du(s.query);
        let dry = c.gc(&format!("{}&dry_run=true", s.query));
        assert_eq!(
            blob_files(dir.path()),
            before,
            "{}: dry run removed files",
            s.name
        );
        let report = c.gc(s.query);
        assert_eq!(
            report["freed_bytes"], dry["freed_bytes"],
            "{}: dry run and run disagree",
            s.name
        );
        assert_eq!(
            report["freed_bytes"], du["total"]["reclaimable_bytes"],
            "{}: du's reclaimable differs from what gc freed",
            s.name
        );
        assert_eq!(blob_files(dir.path()), want, "{}: blob files", s.name);
        assert_eq!(blob_rows(dir.path()), want, "{}: blob rows", s.name);
        // A second run finds nothing more.
        let again = c.gc(s.query);
        assert_eq!(again["freed_bytes"], 0, "{}: second run", s.name);
        srv.stop();
    }
}

#[test]
fn dry_run_explains_and_du_predicts_tag_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let c = srv.client.clone();
    let v1 = img("v1", &["big one", "shared"]);
    let v2 = img("v2", &["shared"]);
    v1.push(&c, "lab/app", "v1").expect("v1");
    v2.push(&c, "lab/app", "v2").expect("v2");
    v2.push(&c, "lab/other", "v2").expect("other");
    let pending = c.blob("lab/app", b"pending").expect("pending");

    let dry = c.gc("dry_run=true");
    let kept = dry["kept"].as_array().expect("kept");
    let reason = |what: &str| {
        kept.iter()
            .find(|k| k["what"] == what)
            .and_then(|k| k["reason"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        reason(&format!("blob {pending}")).contains("recent upload"),
        "{kept:?}"
    );
    assert!(
        reason(&format!("blob {}", sha256(b"layer big one"))).starts_with("referenced by lab/app@")
    );
    assert_eq!(dry["freed_bytes"], 0);

    let du = c.du("repo=lab/app&tag=v1");
    let predicted = du["tag_delete_frees_bytes"].as_u64().expect("prediction");
    let expect = (v1.config.len() + b"layer big one".len() + v1.manifest().len()) as u64;
    assert_eq!(predicted, expect);
    let repo = &du["repositories"][0];
    assert_eq!(repo["name"], "lab/app");
    let shared = (b"layer shared".len() + v2.config.len()) as u64;
    assert_eq!(repo["shared_bytes"].as_u64(), Some(shared));
    assert_eq!(
        repo["logical_bytes"].as_u64().expect("logical"),
        repo["unique_bytes"].as_u64().expect("unique") + shared
    );
    assert_eq!(
        c.delete("/v2/lab/app/manifests/v1").expect("del").status,
        202
    );
    let report = c.gc("grace=0&link_grace=0&delete_untagged=true");
    // The pending upload goes too now (link grace 0): count it apart.
    assert_eq!(
        report["freed_bytes"].as_u64(),
        Some(predicted + b"pending".len() as u64)
    );

    // The CLI agrees, beside the running server.
    let data = dir.path().to_str().expect("utf8");
    let (ok, out, err) = run_soute(&["du", "lab/app", "--data", data, "--grace", "0"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("lab/app") && out.contains("reclaimable by `soute gc` now: 0 B"),
        "{out}"
    );
    let (ok, out, err) = run_soute(&["gc", "--dry-run", "--data", data]);
    assert!(ok, "{err}");
    assert!(
        out.contains("kept manifest lab/app@") && out.contains("tagged lab/app:v2"),
        "{out}"
    );
    srv.stop();
}

/// quay #6318: blob upload, GC at once (grace 0), then the manifest. The link
/// of the fresh upload keeps the blob; GC in a loop beside it changes nothing.
#[test]
fn upload_gc_manifest_race() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let c = srv.client.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bg = {
        let c = c.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut runs = 0;
            // Until told to stop; bounded in case the main thread failed.
            let deadline = Deadline::after(Duration::from_secs(60));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && deadline.left() {
                c.gc("grace=0&delete_untagged=true");
                runs += 1;
            }
            runs
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let mut failures = Vec::new();
    while n < 200 && Instant::now() < deadline {
        let image = img(
            &format!("race {n}"),
            &[&format!("race layer {n}"), "common"],
        );
        for b in image.blobs() {
            c.blob("lab/race", b).expect("upload");
        }
        c.gc("grace=0&delete_untagged=true");
        let r = c
            .manifest("lab/race", "latest", &image.manifest())
            .expect("put");
        if r.status != 201 {
            failures.push(format!(
                "{n}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        n += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = bg.join().expect("gc thread");
    eprintln!("race: {n} iterations, {runs} background gc runs");
    assert!(failures.is_empty(), "{failures:?}");
    assert!(n >= 20, "only {n} iterations");
    assert_eq!(blob_files(dir.path()), blob_rows(dir.path()));
    srv.stop();
}
