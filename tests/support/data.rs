//! What a data folder holds, read from outside as an operator would: the
//! blob files, the blob rows (through SQLite), the whole tree; and a small
//! tmpfs to fill up (disk-full tests).
//! Must NEVER write into a data folder a soute is serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every path under `root`, relative, sorted (directories end with `/`).
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p: PathBuf = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Digests of the files under `blobs/`.
pub fn blob_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let root = dir.join("blobs");
    for alg in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for shard in std::fs::read_dir(alg.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.insert(format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ));
            }
        }
    }
    out
}

pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("digest");
    dir.join("blobs").join(alg).join(&hex[..2]).join(hex)
}

/// Digests of the blob rows (read through SQLite, like any other reader).
pub fn blob_rows(dir: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(dir.join("soute.db")).expect("open db");
    let mut stmt = conn.prepare("SELECT digest FROM blob").expect("prepare");
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<BTreeSet<_>, _>>()
        .expect("rows");
    rows
}

/// A tmpfs mounted for a test, unmounted (lazily) on drop, even on panic.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. "8m"). Without root or mount: under
    /// CI=true the test fails, otherwise it is skipped loudly (`None`).
    pub fn mount(size: &str, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            if super::in_ci() {
                panic!("{test}: mounting a tmpfs failed (needs root); CI must run it");
            }
            eprintln!("\n*** SKIPPED {test}: cannot mount a tmpfs (not root?) ***\n");
            return None;
        }
        Some(Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
