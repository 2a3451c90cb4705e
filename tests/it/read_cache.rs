//! The manifest read cache never serves a tag after it moved or was deleted
//! (issue M), through the real binary: tag moves and deletes raced against
//! concurrent GETs over HTTP, and `soute tag rollback` / `soute gc` run in
//! another process while `soute serve` has the manifest cached.

use crate::support::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Pushes a blob with one POST + PUT; its digest.
fn push_blob(agent: &ureq::Agent, base: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let r = call(
        agent,
        "POST",
        &format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"),
        None,
        &[("Content-Type", "application/octet-stream")],
        Some(bytes),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    digest
}

/// `n` distinct manifests over one config and layer pushed to `repo`.
fn manifests(agent: &ureq::Agent, base: &str, repo: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = pseudo_random_bytes(unique(), 512);
    push_blob(agent, base, repo, config);
    push_blob(agent, base, repo, &layer);
    let layer_d = Descriptor::new("application/vnd.docker.image.rootfs.diff.tar.gzip", &layer);
    (0..n)
        .map(|i| {
            let cfg = Descriptor::new("application/vnd.docker.container.image.v1+json", config);
            // Distinct bytes, same references: an annotation varies.
            let mut m: serde_json::Value = serde_json::from_slice(&image_manifest(
                SCHEMA2,
                &cfg,
                std::slice::from_ref(&layer_d),
                None,
                None,
            ))
            .expect("json");
            m["annotations"] = serde_json::json!({ "n": i.to_string() });
            let body = serde_json::to_vec(&m).expect("json");
            (sha256(&body), body)
        })
        .collect()
}

fn put(agent: &ureq::Agent, base: &str, repo: &str, tag: &str, body: &[u8]) {
    let r = call(
        agent,
        "PUT",
        &format!("{base}/v2/{repo}/manifests/{tag}"),
        None,
        &[("Content-Type", SCHEMA2)],
        Some(body),
    );
    assert_eq!(r.status, 201, "PUT {tag}: {}", r.text());
}

/// The digest a GET by reference answers, or None for 404.
fn got(agent: &ureq::Agent, base: &str, repo: &str, reference: &str) -> Option<String> {
    let r = call(
        agent,
        "GET",
        &format!("{base}/v2/{repo}/manifests/{reference}"),
        None,
        &[("Accept", SCHEMA2)],
        None,
    );
    match r.status {
        200 => {
            let d = r
                .header("docker-content-digest")
                .expect("digest")
                .to_string();
            assert_eq!(d, sha256(&r.body), "the body is the digest's");
            Some(d)
        }
        404 => None,
        s => panic!("GET {reference}: {s} {}", r.text()),
    }
}

/// What the writer did: op i put manifest `digests[i]`, or deleted the tag.
struct Ops {
    done: Vec<Option<String>>,
}

#[test]
fn a_get_never_answers_older_than_the_last_acknowledged_tag_move() {
    let served = Served::fresh(&[]);
    let base = format!("http://{}", served.addr);
    let agent = http_agent();
    let repo = "race/app";
    // Every op puts a manifest no other op puts, so a stale answer cannot
    // pass for a newer op's.
    let versions = manifests(&agent, &base, repo, 80);
    put(&agent, &base, repo, "live", &versions[0].1);
    // ops[i]: Some(digest) put, None deleted; acked: ops acknowledged so far.
    let ops = Mutex::new(Ops {
        done: vec![Some(versions[0].0.clone())],
    });
    let acked = AtomicUsize::new(1);
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    let checked = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let agent = http_agent();
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let before = acked.load(Ordering::SeqCst);
                    let answer = got(&agent, &base, repo, "live");
                    let ops = ops.lock().expect("ops");
                    // Some op at or after the last acknowledged one left this state.
                    let ok = ops.done[before - 1..].contains(&answer);
                    assert!(
                        ok,
                        "GET answered {answer:?}, older than op {} ({:?})",
                        before - 1,
                        ops.done[before - 1]
                    );
                    checked.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let agent = http_agent();
        for (i, (digest, body)) in versions.iter().enumerate().skip(1) {
            if Instant::now() >= deadline {
                break;
            }
            let delete = i % 7 == 0;
            let op = (!delete).then(|| digest.clone());
            // Recorded before it is sent: a GET may see it before the answer.
            ops.lock().expect("ops").done.push(op);
            if delete {
                let r = call(
                    &agent,
                    "DELETE",
                    &format!("{base}/v2/{repo}/manifests/live"),
                    None,
                    &[],
                    None,
                );
                assert_eq!(r.status, 202, "{}", r.text());
            } else {
                put(&agent, &base, repo, "live", body);
            }
            acked.store(i + 1, Ordering::SeqCst);
            // Let the readers fill the cache between moves.
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let n = checked.load(Ordering::SeqCst);
    assert!(n >= 50, "only {n} GETs checked");
    served.proc.terminate();
}

#[test]
fn a_rollback_or_gc_in_another_process_is_seen_at_once() {
    let served = Served::fresh(&[]);
    let base = format!("http://{}", served.addr);
    let data = served.folder().to_str().expect("utf-8").to_string();
    let agent = http_agent();
    let repo = "lab/cached";
    let v = manifests(&agent, &base, repo, 3);
    put(&agent, &base, repo, "v1", &v[0].1);
    put(&agent, &base, repo, "v1", &v[1].1);
    for _ in 0..3 {
        assert_eq!(
            got(&agent, &base, repo, "v1").as_deref(),
            Some(v[1].0.as_str())
        );
    }
    let (ok, _, err) = run_soute(&[
        "tag",
        "rollback",
        &format!("{repo}:v1"),
        &v[0].0,
        "--data",
        &data,
    ]);
    assert!(ok, "rollback: {err}");
    assert_eq!(
        got(&agent, &base, repo, "v1").as_deref(),
        Some(v[0].0.as_str()),
        "the first GET after the rollback"
    );
    // An untagged manifest, cached by digest, then collected by `soute gc`.
    put(&agent, &base, repo, "tmp", &v[2].1);
    let r = call(
        &agent,
        "DELETE",
        &format!("{base}/v2/{repo}/manifests/tmp"),
        None,
        &[],
        None,
    );
    assert_eq!(r.status, 202);
    assert_eq!(
        got(&agent, &base, repo, &v[2].0).as_deref(),
        Some(v[2].0.as_str())
    );
    assert_eq!(
        got(&agent, &base, repo, &v[2].0).as_deref(),
        Some(v[2].0.as_str())
    );
    let (ok, out, err) = run_soute(&["gc", "--delete-untagged", "--grace", "0", "--data", &data]);
    assert!(ok, "gc: {out} {err}");
    assert_eq!(got(&agent, &base, repo, &v[2].0), None, "collected: {out}");
    assert_eq!(
        got(&agent, &base, repo, "v1").as_deref(),
        Some(v[0].0.as_str())
    );
    served.proc.terminate();
}
