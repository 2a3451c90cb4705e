//! Tag history and rollback through the real binary: pushes and deletes over
//! HTTP are recorded with their actor, `soute tag history` lists them,
//! `soute tag rollback` (while serve runs) points the tag back, refuses a
//! digest the tag never had, and is in the audit log.

use crate::fixtures::{push_image, To};
use crate::support::*;
use serde_json::Value;

fn soute_json(args: &[&str]) -> Value {
    let (ok, out, err) = run_soute(args);
    assert!(ok, "soute {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("soute {args:?}: {e}: {out}"))
}

#[test]
fn history_records_moves_and_deletes_and_rollback_restores_while_serving() {
    let served = Served::fresh(&[]);
    let base = format!("http://{}", served.addr);
    let data = served.folder().to_str().expect("utf-8").to_string();
    let agent = http_agent();
    let layer = pseudo_random_bytes(1, 2000);
    let to = To {
        agent: &agent,
        base: &base,
        auth: None,
    };
    let first = push_image(
        to,
        "lab/app",
        "v1",
        "amd64",
        std::slice::from_ref(&layer),
        None,
    );
    let second = push_image(to, "lab/app", "v1", "arm64", &[layer], None);
    assert_ne!(first.digest, second.digest);

    let h = soute_json(&["tag", "history", "lab/app:v1", "--json", "--data", &data]);
    let rows = h.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{h}");
    assert_eq!(rows[0]["digest"], second.digest.as_str(), "newest first");
    assert_eq!(rows[0]["previous"], first.digest.as_str());
    assert_eq!(rows[1]["digest"], first.digest.as_str());
    assert!(rows[1]["previous"].is_null());
    assert_eq!(rows[0]["actor"], "anonymous");
    assert!(rows[0]["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // A digest the tag never had is refused, and changes nothing.
    let (ok, _, err) = run_soute(&[
        "tag",
        "rollback",
        "lab/app:v1",
        &unknown_digest(),
        "--data",
        &data,
    ]);
    assert!(!ok && err.contains("never pointed"), "{err}");
    let (ok, _, err) = run_soute(&[
        "tag",
        "rollback",
        "lab/app:v1",
        "not-a-digest",
        "--data",
        &data,
    ]);
    assert!(!ok && !err.is_empty());

    let (ok, out, err) = run_soute(&[
        "tag",
        "rollback",
        "lab/app:v1",
        &first.digest,
        "--data",
        &data,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains(&first.digest), "{out}");
    let r = get(&agent, &format!("{base}/v2/lab/app/manifests/v1"), None);
    r.expect_status(200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(first.digest.as_str())
    );

    // A delete is recorded; rolling back after it re-creates the tag.
    call(
        &agent,
        "DELETE",
        &format!("{base}/v2/lab/app/manifests/v1"),
        None,
        &[],
        None,
    )
    .expect_status(202);
    let h = soute_json(&["tag", "history", "lab/app:v1", "--json", "--data", &data]);
    assert!(h[0]["digest"].is_null(), "deleted: {h}");
    assert_eq!(h[0]["previous"], first.digest.as_str());
    let (ok, _, err) = run_soute(&[
        "tag",
        "rollback",
        "lab/app:v1",
        &second.digest,
        "--data",
        &data,
    ]);
    assert!(ok, "{err}");
    get(&agent, &format!("{base}/v2/lab/app/manifests/v1"), None).expect_status(200);
    let h = soute_json(&["tag", "history", "lab/app:v1", "--json", "--data", &data]);
    assert_eq!(h.as_array().map(Vec::len), Some(5), "{h}");
    assert!(h[0]["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with("local:")));

    // Deleting the manifest by digest records its tags' deletion; a digest
    // whose manifest is gone cannot be restored.
    call(
        &agent,
        "DELETE",
        &format!("{base}/v2/lab/app/manifests/{}", second.digest),
        None,
        &[],
        None,
    )
    .expect_status(202);
    let h = soute_json(&["tag", "history", "lab/app:v1", "--json", "--data", &data]);
    assert!(h[0]["digest"].is_null(), "{h}");
    let (ok, _, err) = run_soute(&[
        "tag",
        "rollback",
        "lab/app:v1",
        &second.digest,
        "--data",
        &data,
    ]);
    assert!(!ok && err.contains("no longer stored"), "{err}");

    let audit = soute_json(&["audit", "--json", "--data", &data]);
    let rollbacks = audit
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("rollback v1"))
        })
        .count();
    assert_eq!(rollbacks, 2, "{audit}");
    served.proc.stop(std::time::Duration::from_secs(10));
}
