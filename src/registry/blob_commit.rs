//! How a verified blob file becomes a blob row, and how GC's deletes reach
//! the blob backend, for both backends (`storage::backend`).
//!
//! Local folder: the rename and the row happen under the write lock, as
//! always. Remote (S3): network I/O never runs under the write lock, so a
//! publish is ordered against GC through rows (migration 0012): a publish
//! intent is written first (refused while GC is deleting that digest), the
//! object is uploaded outside the lock, then the row is written and the
//! intent dropped; GC deletes only digests without a row and without a fresh
//! intent, marking them `blob_deleting` (no publish starts) until the object
//! is gone. So "a row means the object exists" holds across processes.
//!
//! It must never write a blob row before the backend acknowledged the bytes,
//! nor call the remote store inside `db.write`.

use super::Registry;
use crate::db::{blobs, publishing, trash};
use crate::error::{Error, Result};
use crate::oci::{Digest, UploadId};
use crate::storage::backend::BlobBackend as _;
use crate::storage::backend::StagedUpload;
use crate::storage::s3::blobs::is_unavailable;
use rusqlite::Transaction;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// A publish intent older than this belongs to a process that died.
pub(super) const PUBLISH_STALE_SECS: i64 = 6 * 3600;
/// A `blob_deleting` row older than this was left by a GC that died.
const DELETE_STALE_SECS: i64 = 600;
/// How long a publish waits for GC to finish deleting the same digest.
const BUSY_WAIT: Duration = Duration::from_secs(20);

enum Step {
    Linked,
    Busy,
    Publish,
}

impl Registry {
    /// An I/O error of the blob backend as the registry's error: a store
    /// that cannot be reached or is failing is a 503 naming it.
    pub(super) fn store_error(&self, what: &str, e: std::io::Error) -> Error {
        if is_unavailable(&e) {
            log::warn!("{what}: {e}");
            return Error::StoreUnavailable(format!(
                "the blob store ({}) is unavailable: {what} failed; nothing was stored, retry later",
                self.store.kind()
            ));
        }
        Error::io(what, e)
    }

    /// Whether the bytes of a blob that has a row are there. Remote: the
    /// row is the proof (a HEAD would be network I/O under the lock).
    pub(super) fn blob_bytes_present(&self, digest: &Digest) -> bool {
        self.store.is_remote() || self.store.folder().blob_exists(digest)
    }

    /// Make the verified, fsynced file `from` (`size` bytes) the blob
    /// `digest` and run `link` in the transaction that records it. When the
    /// blob is already recorded, `from` is dropped and only `link` runs.
    pub(super) fn commit_blob(
        &self,
        from: &Path,
        digest: &Digest,
        size: u64,
        link: &dyn Fn(&Transaction<'_>) -> Result<()>,
    ) -> Result<()> {
        let key = digest.to_string();
        let drop_file = |p: &Path| match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("removing a staged blob file", e))
            }
            _ => Ok(()),
        };
        // Held until the row is written: a live store switch waits for it.
        let store = self.store.pin();
        if !store.is_remote() {
            return self.db.write(|tx| {
                if blobs::blob_size(tx, &key)?.is_some() && self.blob_bytes_present(digest) {
                    drop_file(from)?;
                } else {
                    store
                        .publish(from, digest, size)
                        .map_err(|e| Error::io("committing blob", e))?;
                    blobs::insert_blob(tx, &key, size)?;
                }
                link(tx)
            });
        }
        let token = UploadId::random()?.as_str().to_string();
        let deadline = Instant::now() + BUSY_WAIT;
        loop {
            let step = self.db.write(|tx| {
                if blobs::blob_size(tx, &key)?.is_some() {
                    drop_file(from)?;
                    link(tx)?;
                    return Ok(Step::Linked);
                }
                if publishing::is_deleting(tx, &key)? {
                    return Ok(Step::Busy);
                }
                publishing::start_publish(tx, &token, &key)?;
                Ok(Step::Publish)
            })?;
            match step {
                Step::Linked => return Ok(()),
                Step::Publish => break,
                Step::Busy if Instant::now() >= deadline => {
                    return Err(Error::StoreUnavailable(format!(
                        "garbage collection is deleting blob {digest} from the object store; retry"
                    )))
                }
                Step::Busy => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        if let Err(e) = store.publish(from, digest, size) {
            if let Err(e) = self
                .db
                .write_unsynced(|tx| publishing::end_publish(tx, &token))
            {
                log::warn!("could not drop the publish intent of {digest}: {e}");
            }
            return Err(self.store_error(&format!("storing blob {digest}"), e));
        }
        self.db.write(|tx| {
            publishing::end_publish(tx, &token)?;
            if blobs::blob_size(tx, &key)?.is_none() {
                blobs::insert_blob(tx, &key, size)?;
            }
            link(tx)
        })
    }

    /// GC's queue emptied on a remote store: pick the queued digests that
    /// have no row and no publish running (and deletions a dead GC left),
    /// mark them deleting, delete their objects outside the lock, unmark.
    pub(super) fn empty_trash_remote(&self) -> Result<usize> {
        if self.is_object_list_backup()? {
            // The bucket is the live registry's too: what this folder's rows
            // no longer need may be what that registry's rows do. The queue
            // waits until `serve` takes the bucket over (clearing the mark).
            log::warn!(
                "this folder is an object-list backup sharing its bucket: gc deletes no object until `soute serve` takes it over"
            );
            return Ok(0);
        }
        let picked = self.db.write(|tx| {
            publishing::drop_stale_publishes(tx, PUBLISH_STALE_SECS)?;
            let mut picked = publishing::deleting_since(tx, DELETE_STALE_SECS)?;
            for key in trash::trash(tx)? {
                if blobs::blob_size(tx, &key)?.is_some() {
                    trash::untrash(tx, &key)?;
                    continue;
                }
                if publishing::is_publishing(tx, &key, PUBLISH_STALE_SECS)? {
                    continue; // its row comes soon: the next run untrashes it
                }
                publishing::start_delete(tx, &key)?;
                trash::untrash(tx, &key)?;
                picked.push(key);
            }
            Ok(picked)
        })?;
        self.delete_marked(&picked)
    }

    /// Delete the objects of `keys` (each marked `blob_deleting`), then
    /// unmark them; stops at the first failure (the marks stay: retried later).
    pub(super) fn delete_marked(&self, keys: &[String]) -> Result<usize> {
        let mut done = Vec::new();
        let mut failed = None;
        for key in keys {
            if let Ok(d) = Digest::parse(key) {
                if let Err(e) = self.store.remove(&d) {
                    failed = Some(self.store_error(&format!("deleting blob {key}"), e));
                    break;
                }
            }
            done.push(key.as_str());
        }
        self.db.write(|tx| {
            for key in &done {
                publishing::end_delete(tx, key)?;
            }
            Ok(())
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(done.len()),
        }
    }

    /// Remove the orphan object `key` (verify --repair) with GC's protocol:
    /// only while it has no row and no publish runs. Returns whether it went.
    pub(super) fn remove_orphan_object(&self, key: &str) -> Result<bool> {
        let marked = self.db.write(|tx| {
            if blobs::blob_size(tx, key)?.is_some()
                || publishing::is_publishing(tx, key, PUBLISH_STALE_SECS)?
            {
                return Ok(false);
            }
            publishing::start_delete(tx, key)?;
            Ok(true)
        })?;
        if !marked {
            return Ok(false);
        }
        self.delete_marked(&[key.to_string()]).map(|n| n > 0)
    }

    /// Abort the store's multipart uploads older than `ttl_secs` (a publish
    /// that died; a running one is younger): (object name, upload id) of each.
    pub(super) fn abort_stale_multipart(&self, ttl_secs: i64) -> Result<Vec<String>> {
        if !self.store.is_remote() {
            return Ok(Vec::new());
        }
        let staged = self
            .store
            .list_staged()
            .map_err(|e| self.store_error("listing multipart uploads", e))?;
        let ttl = Duration::from_secs(ttl_secs.max(0) as u64);
        let now = SystemTime::now();
        let stale = |s: &StagedUpload| {
            s.started
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() >= ttl)
        };
        let mut aborted = Vec::new();
        for s in staged.iter().filter(|s| stale(s)) {
            match self.store.abort_staged(s) {
                Ok(()) => aborted.push(format!("multipart upload {} of {}", s.upload_id, s.name)),
                Err(e) => log::warn!("could not abort multipart upload {}: {e}", s.upload_id),
            }
        }
        Ok(aborted)
    }
}

impl Registry {
    /// `--s3-redirect`: a URL `repo` may fetch `digest` from directly, once
    /// the repository is checked to link it (`None`: serve the bytes).
    pub fn blob_redirect(
        &self,
        repo: &crate::oci::RepoName,
        digest: &Digest,
    ) -> Result<Option<String>> {
        let Some(url) = self.store.redirect_url(digest) else {
            return Ok(None);
        };
        self.blob_size(repo, digest)?;
        Ok(Some(url))
    }
}

/// The settings key naming the blob store `serve` last used.
pub(super) const BLOB_STORE_SETTING: &str = "blob_store";
/// Set in an S3 store's backup that lists the objects instead of copying
/// them: the bucket is shared with the registry it came from, so neither gc
/// nor `verify --repair` removes an object there until `serve` takes it over.
pub(super) const OBJECT_LIST_BACKUP_SETTING: &str = "object_list_backup";

impl Registry {
    /// Record where this registry's blobs are (no secret: endpoint, bucket,
    /// prefix, region), so the operator commands that
    /// open the folder beside `serve` (gc, verify, du, backup) use the same store.
    pub fn record_blob_store(&self) -> Result<()> {
        let value = match self.store.s3_config() {
            None => "local".to_string(),
            Some(f) => serde_json::json!({
                "kind": "s3",
                "endpoint": f.endpoint,
                "bucket": f.bucket,
                "prefix": f.prefix,
                "region": f.region,
            })
            .to_string(),
        };
        self.db.write(|tx| {
            crate::db::settings::delete_setting(tx, OBJECT_LIST_BACKUP_SETTING)?;
            crate::db::settings::set_setting(tx, BLOB_STORE_SETTING, &value)
        })
    }

    /// Refuse to serve blobs rows from a store that does not hold them: when
    /// the folder has blobs and `serve` last used another store (the local
    /// folder vs a bucket, or another bucket or prefix; a changed endpoint is
    /// fine), the message names the store they are in and `blobs migrate`.
    pub fn check_store_matches_record(&self) -> Result<()> {
        // No record (a folder from before the S3 store) reads as local.
        let recorded_s3 = self.recorded_s3_store()?.map(|f| {
            let text = |v: Option<String>| v.unwrap_or_default();
            (text(f.bucket), text(f.prefix), text(f.endpoint))
        });
        let now = self
            .store
            .s3_config()
            .map(|c| (c.bucket.clone(), c.prefix.clone()));
        let same = match (&recorded_s3, &now) {
            (None, None) => true,
            (Some((b, p, _)), Some((nb, np))) => b == nb && p == np,
            _ => false,
        };
        if same || !self.db.read(blobs::any_blob)? {
            return Ok(());
        }
        let there = match &recorded_s3 {
            None => "the data folder's blobs/ (start without --blob-store s3)".to_string(),
            Some((b, p, e)) => format!(
                "the S3 bucket {b} at {e}{} (start with --blob-store s3 --s3-endpoint {e} --s3-bucket {b}{})",
                if p.is_empty() { String::new() } else { format!(", prefix {p}") },
                if p.is_empty() { String::new() } else { format!(" --s3-prefix {p}") },
            ),
        };
        let to = if now.is_some() {
            "s3 --s3-* ..."
        } else {
            "local"
        };
        Err(Error::internal(format!(
            "this registry's blobs are in {there}, not in {}; to move them, run `soute blobs migrate --to {to}` with serve stopped",
            self.store.describe()
        )))
    }

    /// Whether this folder is an S3 store's object-list backup not yet served.
    pub(super) fn is_object_list_backup(&self) -> Result<bool> {
        Ok(self
            .db
            .read(|c| crate::db::settings::setting(c, OBJECT_LIST_BACKUP_SETTING))?
            .is_some())
    }

    /// The S3 store `serve` recorded, if it was not the local folder.
    pub fn recorded_s3_store(&self) -> Result<Option<crate::storage::s3::S3Flags>> {
        let Some(v) = self
            .db
            .read(|c| crate::db::settings::setting(c, BLOB_STORE_SETTING))?
        else {
            return Ok(None);
        };
        if v == "local" {
            return Ok(None);
        }
        let j: serde_json::Value = serde_json::from_str(&v)
            .map_err(|e| Error::internal(format!("the recorded blob store {v:?}: {e}")))?;
        let text = |k: &str| j.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Ok(Some(crate::storage::s3::S3Flags {
            endpoint: text("endpoint"),
            bucket: text("bucket"),
            prefix: text("prefix"),
            region: text("region"),
            credentials_file: std::env::var_os("SOUTE_S3_CREDENTIALS_FILE")
                .map(std::path::PathBuf::from),
        }))
    }
}
