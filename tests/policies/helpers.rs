//! Helpers of the `policies` binary: the real binary on a data folder,
//! push times set in SQLite (how these tests control time), tag lists.
//! Must NEVER hide a failed command: `cli` panics with its output.

pub use crate::common::*;
use std::path::Path;

pub const DAY: i64 = 86_400;

/// `soute ARGS --data DIR`; its stdout. Panics unless it succeeds.
pub fn cli(dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = try_cli(dir, args);
    assert!(ok, "soute {args:?} failed: {out}{err}");
    out
}

/// `soute ARGS --data DIR`: (success, stdout, stderr).
pub fn try_cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let dir = dir.to_str().expect("utf-8 path");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--data", dir]);
    run_soute(&all)
}

/// Sets when `repo:tag` was pushed to `days_ago` days before now (what
/// `--keep-last` ranks and `--keep-days` measures).
pub fn set_pushed(dir: &Path, repo: &str, tag: &str, days_ago: i64) {
    let db = rusqlite::Connection::open(dir.join("soute.db")).expect("open soute.db");
    db.busy_timeout(std::time::Duration::from_secs(10))
        .expect("busy timeout");
    let at = soute::db::now() - days_ago * DAY;
    let n = db
        .execute(
            "UPDATE tag SET updated_at = ?1 WHERE name = ?2 AND repo_id = (SELECT id FROM repo WHERE name = ?3)",
            rusqlite::params![at, tag, repo],
        )
        .expect("update tag");
    assert_eq!(n, 1, "{repo}:{tag} is not a tag");
}

/// The tags of `repo`, sorted (empty when it has none).
pub fn tags(c: &Client, repo: &str) -> Vec<String> {
    let r = c.get(&format!("/v2/{repo}/tags/list")).expect("tags list");
    if r.status == 404 {
        return Vec::new();
    }
    r.expect_status(200);
    let mut v: Vec<String> = r.json()["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A small image whose bytes are unique to `name` (config and one layer).
pub fn image(name: &str) -> Image {
    let config = format!("config of {name}");
    let layer = format!("layer of {name}");
    Image::new(config.as_bytes(), &[layer.as_bytes()])
}

/// The message of an error envelope.
pub fn message(r: &Resp) -> String {
    r.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
