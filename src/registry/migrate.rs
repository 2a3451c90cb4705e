//! `soute blobs migrate`: copy every blob that has a row from the store the
//! registry uses to another one (the data folder's `blobs/` to an S3 bucket,
//! or back), verified and resumable, while `serve` keeps serving (it
//! switches live afterwards: `store_switch`).
//!
//! One pass lists what the target already holds (one LIST), then copies each
//! missing or short blob with a few threads: the source's bytes are streamed
//! into a staging file of the data folder's `uploads/` while hashed, the
//! digest and size are checked against the row, and only then is the file
//! published to the target (a rename for the local folder, a PUT or a
//! multipart upload for S3). A blob that fails to verify is never published.
//! A rerun copies only what is still missing, so an interrupted migration
//! resumes. Passes repeat while they find something new (pushes made during
//! the copy), up to [`MAX_PASSES`].
//!
//! It must NEVER write or delete a row, delete anything from the source,
//! or publish bytes it has not verified.

use super::Registry;
use crate::db::graph;
use crate::oci::Digest;
use crate::storage::backend::BlobBackend;
use crate::storage::hash_reader;
use crate::storage::layout::Layout;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Passes over the rows before giving up on catching up with pushes.
pub const MAX_PASSES: usize = 5;
/// Blobs copied at once (an object store is latency-bound; each copy holds
/// one staging file and one 64 KiB buffer, an S3 part is streamed from it).
pub const COPY_THREADS: usize = 4;

/// What a migration did, for the operator and `--json`.
#[derive(Debug, Default, Serialize)]
pub struct MigrateReport {
    pub from: String,
    pub to: String,
    pub passes: usize,
    /// Blob rows the last pass saw.
    pub blobs: u64,
    pub copied: u64,
    pub copied_bytes: u64,
    /// Already in the target with the right size (an earlier run's work).
    pub already_there: u64,
    /// Rows whose blob the source no longer had (GC removed it meanwhile).
    pub vanished: u64,
    /// Blobs that could not be copied, each with why; nothing was published for them.
    pub failed: Vec<String>,
    /// Whether the last pass found nothing left to copy.
    pub complete: bool,
}

/// Progress of a migration, for a bar.
pub enum MigrateProgress {
    /// A pass starts: how many blobs and bytes it has to copy.
    Pass {
        pass: usize,
        blobs: u64,
        bytes: u64,
    },
    Bytes(u64),
}

enum Copied {
    Done(u64),
    /// The target got it meanwhile (a push after a live switch).
    There,
    Vanished,
}

impl MigrateReport {
    /// Add a later pass's work (catching up after a switch).
    pub fn merge(&mut self, later: MigrateReport) {
        self.passes += later.passes;
        self.blobs = later.blobs;
        self.copied += later.copied;
        self.copied_bytes += later.copied_bytes;
        self.vanished += later.vanished;
        self.failed.extend(later.failed);
        self.complete = later.complete && self.failed.is_empty();
    }
}

impl Registry {
    /// Describes the store this registry reads blobs from.
    pub fn store_description(&self) -> String {
        self.store.describe()
    }

    /// Copy every blob with a row into `target` (see the module). Rows, the
    /// source and the data folder's settings are left as they are.
    pub fn migrate_blobs(
        &self,
        target: &dyn BlobBackend,
        progress: &(dyn Fn(MigrateProgress) + Sync),
    ) -> crate::error::Result<MigrateReport> {
        let mut report = MigrateReport {
            from: self.store.describe(),
            to: target.describe(),
            ..MigrateReport::default()
        };
        let staging = Layout::new(&self.data_dir).uploads_dir();
        for pass in 1..=MAX_PASSES {
            report.passes = pass;
            // Rows first, then the listing: a blob is published before its
            // row is written, so a row read here whose blob went into the
            // target (a push after a live switch) is in the listing.
            let rows = self.db.read(graph::blobs)?;
            let present: HashMap<Digest, u64> = target
                .list()
                .map_err(|e| self.store_error("listing the target store", e))?
                .into_iter()
                .filter_map(|f| f.digest.map(|d| (d, f.len)))
                .collect();
            report.blobs = rows.len() as u64;
            let mut todo = Vec::new();
            let mut there = 0u64;
            for row in rows {
                let Ok(digest) = Digest::parse(&row.digest) else {
                    report
                        .failed
                        .push(format!("blob row {:?} is not a digest", row.digest));
                    continue;
                };
                if present.get(&digest) == Some(&row.size) {
                    there += 1;
                } else {
                    todo.push((digest, row.size));
                }
            }
            if pass == 1 {
                report.already_there = there;
            }
            if todo.is_empty() {
                report.complete = report.failed.is_empty();
                break;
            }
            progress(MigrateProgress::Pass {
                pass,
                blobs: todo.len() as u64,
                bytes: todo.iter().map(|(_, s)| s).sum(),
            });
            let failed_before = report.failed.len();
            let next = AtomicUsize::new(0);
            let shared = Mutex::new(&mut report);
            std::thread::scope(|scope| {
                for _ in 0..COPY_THREADS.min(todo.len()) {
                    scope.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((digest, size)) = todo.get(i) else {
                            break;
                        };
                        let outcome = self.copy_one(target, &staging, digest, *size, progress);
                        let mut r = shared.lock().unwrap_or_else(|p| p.into_inner());
                        match outcome {
                            Ok(Copied::Done(n)) => {
                                r.copied += 1;
                                r.copied_bytes += n;
                            }
                            Ok(Copied::Vanished) => r.vanished += 1,
                            Ok(Copied::There) => r.already_there += 1,
                            Err(e) => r.failed.push(format!("blob {digest}: {e}")),
                        }
                    });
                }
            });
            if report.failed.len() > failed_before {
                // A failure (e.g. a damaged source blob) would fail again at
                // once: stop and let the operator see it.
                break;
            }
        }
        Ok(report)
    }

    /// Stream `digest` from the source into a staging file while hashing,
    /// check it, then publish the file to `target`.
    fn copy_one(
        &self,
        target: &dyn BlobBackend,
        staging: &std::path::Path,
        digest: &Digest,
        size: u64,
        progress: &(dyn Fn(MigrateProgress) + Sync),
    ) -> io::Result<Copied> {
        let Some(mut body) = self.store.open(digest)? else {
            if target.size(digest)? == Some(size) {
                return Ok(Copied::There);
            }
            let key = digest.to_string();
            if self
                .db
                .read(|c| crate::db::blobs::blob_size(c, &key))
                .map_err(|e| io::Error::other(e.to_string()))?
                .is_some()
            {
                return Err(io::Error::other(
                    "it has a row but no bytes in the source: not copied (see `soute verify`)",
                ));
            }
            return Ok(Copied::Vanished); // GC removed it meanwhile
        };
        let tmp = staging_path(staging, digest);
        let mut created = false;
        let result = (|| {
            // A name of this process, made here (O_EXCL: never an existing
            // file, nor a symlink planted in its place).
            let mut out =
                crate::storage::private_file(OpenOptions::new().write(true).create_new(true))
                    .open(&tmp)?;
            created = true;
            let (len, actual) = hash_reader(&mut body, digest.algorithm(), &mut out, &mut |n| {
                progress(MigrateProgress::Bytes(n))
            })?;
            if actual != *digest {
                return Err(io::Error::other(format!(
                    "the source's bytes hash to {actual}: damaged, not copied (see `soute verify`)"
                )));
            }
            if len != size {
                return Err(io::Error::other(format!(
                    "the source has {len} bytes, the row says {size}: not copied"
                )));
            }
            out.sync_all()?;
            drop(out);
            target.publish(&tmp, digest, size)?;
            Ok(Copied::Done(len))
        })();
        if result.is_err() && created {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// The staging file of one blob being migrated (in `uploads/`, which only
/// staging files use; `serve` clears it of strays at start).
fn staging_path(staging: &std::path::Path, digest: &Digest) -> PathBuf {
    staging.join(format!(
        "migrate-{}-{}-{}",
        std::process::id(),
        digest.algorithm().as_str(),
        digest.hex()
    ))
}

impl Registry {
    /// Whether blobs are read from an object store.
    pub fn store_is_remote(&self) -> bool {
        self.store.is_remote()
    }

    /// Whether `target` is the store this registry already uses (same folder,
    /// or same endpoint, bucket and prefix).
    pub fn store_is(&self, target: &crate::config::BlobStoreConfig) -> bool {
        use crate::config::BlobStoreConfig;
        match (target, self.store.s3_config()) {
            (BlobStoreConfig::Local, None) => true,
            (BlobStoreConfig::S3(t), Some(s)) => {
                t.endpoint == s.endpoint && t.bucket == s.bucket && t.prefix == s.prefix
            }
            _ => false,
        }
    }
}
