//! Backup while serving: a consistent database snapshot first, then exactly
//! the blob files that snapshot references, then checksum lists, and last the
//! database gets its real name (a half-made backup never looks like a registry).
//!
//! The snapshot is taken inside a write transaction that also pins every blob
//! row in `backup_pin`, so GC (in this process or another) cannot remove a
//! file the backup still has to copy. The pins end with the backup, or are
//! ignored once its heartbeat is stale (the backup died). It must never see
//! HTTP types.

use super::Registry;
use crate::db::backups;
use crate::error::{Error, Result};
use crate::oci::{Algorithm, Digest, UploadId};
use crate::storage::backend::BlobBackend as _;
use crate::storage::{self, layout, BlobStore, Imported};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// The backup refreshes its heartbeat this often while it copies.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// Steps a caller may show.
pub enum BackupProgress {
    /// The snapshot is taken; this many blob files (bytes) follow.
    Blobs { count: u64, bytes: u64 },
    /// One blob file done, of this many bytes.
    Blob { bytes: u64 },
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub dest: PathBuf,
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Blob files hard-linked (same filesystem) and copied.
    pub linked: u64,
    pub copied: u64,
    /// Objects of an S3 store written to `OBJECTS` instead of copied.
    pub listed: u64,
    pub tls_files: usize,
    /// Problems found in the source (missing or damaged blobs). The backup is
    /// complete except for them.
    pub problems: Vec<String>,
}

impl BackupReport {
    /// The report of a backup to `dest` of the snapshot's `blobs` (digest, size).
    fn of(dest: &Path, blobs: &[(String, u64)]) -> BackupReport {
        BackupReport {
            dest: dest.to_path_buf(),
            blobs: blobs.len() as u64,
            blob_bytes: blobs.iter().map(|b| b.1).sum(),
            linked: 0,
            copied: 0,
            listed: 0,
            tls_files: 0,
            problems: Vec::new(),
        }
    }
}

/// `dest` made absolute without following what does not exist yet, with `..`
/// resolved against its existing ancestors.
fn resolve(dest: &Path) -> Result<PathBuf> {
    if !dest.is_absolute() {
        return Err(Error::internal(format!(
            "the backup destination {} must be an absolute path",
            dest.display()
        )));
    }
    let mut existing = dest.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing
        .canonicalize()
        .map_err(|e| Error::io(format!("resolving {}", existing.display()), e))?;
    for part in rest.iter().rev() {
        match Path::new(part).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::Normal(_)) => out.push(part),
            _ => {}
        }
    }
    Ok(out)
}

impl Registry {
    /// Write a backup of the registry to `dest` (absolute, outside the data
    /// folder, absent or empty), while it serves.
    pub fn backup(
        &self,
        dest: &Path,
        with_blobs: bool,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupReport> {
        let dest = resolve(dest)?;
        let data = self
            .data_dir()
            .canonicalize()
            .map_err(|e| Error::io("resolving the data folder", e))?;
        if dest.starts_with(&data) || data.starts_with(&dest) {
            return Err(Error::internal(format!(
                "the backup destination {} must be outside the data folder {}",
                dest.display(),
                data.display()
            )));
        }
        if dest.exists() {
            let mut entries = std::fs::read_dir(&dest)
                .map_err(|e| Error::io(format!("reading {}", dest.display()), e))?;
            if entries.next().is_some() {
                return Err(Error::internal(format!(
                    "the backup destination {} exists and is not empty",
                    dest.display()
                )));
            }
        }
        // The backup holds password hashes and the CA key: private like the source.
        storage::create_private_dir(&dest)
            .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
        let target =
            BlobStore::open(&dest).map_err(|e| Error::io("creating the backup's folders", e))?;
        // VACUUM INTO accepts an empty file, and keeps its mode.
        storage::create_private_file(&target.partial_db_path())
            .map_err(|e| Error::io("creating the backup's database", e))?;
        let id = format!("backup-{}", UploadId::random()?.as_str());
        self.db.snapshot_into(&target.partial_db_path(), |tx| {
            backups::start_backup(tx, &id)
        })?;
        let result = if self.store.is_remote() && !with_blobs {
            self.list_snapshot(&dest, &target, progress)
        } else {
            self.copy_snapshot(&id, &dest, &target, progress)
        };
        if let Err(e) = self.db.write(|tx| backups::end_backup(tx, &id)) {
            log::warn!("could not release the pins of {id}: {e}");
        }
        result
    }

    fn copy_snapshot(
        &self,
        id: &str,
        dest: &Path,
        target: &BlobStore,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupReport> {
        let (blobs, mut report) = prepare(dest, target, progress)?;
        let mut sums: [(Algorithm, String); 2] = [
            (Algorithm::Sha256, String::new()),
            (Algorithm::Sha512, String::new()),
        ];
        let mut beat = Instant::now();
        for (key, size) in &blobs {
            let digest = Digest::parse(key)?;
            match self.store.export_to(target, &digest) {
                Ok(Imported::Linked) => report.linked += 1,
                Ok(Imported::Copied(actual)) => {
                    report.copied += 1;
                    if actual != digest {
                        report.problems.push(format!(
                            "blob {digest} is damaged in the source (its bytes hash to {actual}); run `soute verify`"
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report.problems.push(format!(
                        "blob {digest} has a row but no file in the source; run `soute verify`"
                    ));
                }
                Err(e) => return Err(Error::io(format!("copying blob {digest}"), e)),
            }
            let rel = layout::blob_rel(&digest);
            if let Some((_, list)) = sums.iter_mut().find(|(a, _)| *a == digest.algorithm()) {
                list.push_str(&format!("{}  {rel}\n", digest.hex()));
            }
            progress(BackupProgress::Blob { bytes: *size });
            if beat.elapsed() >= HEARTBEAT {
                self.db.write(|tx| backups::heartbeat_backup(tx, id))?;
                beat = Instant::now();
            }
        }
        target
            .sync_blob_dirs()
            .map_err(|e| Error::io("syncing the backup's folders", e))?;
        report.tls_files = self
            .store
            .folder()
            .copy_tls(target)
            .map_err(|e| Error::io("copying tls/", e))?;
        for (alg, list) in &sums {
            if *alg == Algorithm::Sha256 || !list.is_empty() {
                let name = layout::checksum_list_name(*alg);
                target
                    .write_checksum_list(*alg, list.as_bytes())
                    .map_err(|e| Error::io(format!("writing {name}"), e))?;
            }
        }
        if self.store.is_remote() {
            // The objects are in DEST/blobs/ now: DEST is a local registry.
            backups::set_snapshot_setting(
                &target.partial_db_path(),
                super::blob_commit::BLOB_STORE_SETTING,
                "local",
            )?;
        }
        target
            .publish_db()
            .map_err(|e| Error::io("publishing the backup's database", e))?;
        Ok(report)
    }

    /// An S3 store's backup without `--with-blobs`: the snapshot (which keeps
    /// the store's setting), tls/ and `OBJECTS`, a line per blob the snapshot
    /// needs (`<digest> <size> <object key>`), checked against one listing.
    fn list_snapshot(
        &self,
        dest: &Path,
        target: &BlobStore,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupReport> {
        let (blobs, mut report) = prepare(dest, target, progress)?;
        let stored: std::collections::HashMap<Digest, u64> = self
            .store
            .list()
            .map_err(|e| self.store_error("listing the stored objects", e))?
            .into_iter()
            .filter_map(|f| f.digest.map(|d| (d, f.len)))
            .collect();
        let key_of = |d: &Digest| {
            let name = crate::storage::s3::blobs::object_name(d);
            match self.store.s3_config() {
                Some(c) => format!("s3://{}/{}", c.bucket, c.key(&name)),
                None => name,
            }
        };
        let mut listing = String::new();
        for (key, size) in &blobs {
            let digest = Digest::parse(key)?;
            match stored.get(&digest) {
                Some(len) if len == size => {}
                Some(len) => report.problems.push(format!(
                    "blob {digest}: the object has {len} bytes, the row says {size}; run `soute verify`"
                )),
                None => report.problems.push(format!(
                    "blob {digest} has a row but no object in the store; run `soute verify`"
                )),
            }
            listing.push_str(&format!("{digest} {size} {}\n", key_of(&digest)));
            report.listed += 1;
            progress(BackupProgress::Blob { bytes: *size });
        }
        backups::set_snapshot_setting(
            &target.partial_db_path(),
            super::blob_commit::OBJECT_LIST_BACKUP_SETTING,
            &self.store.describe(),
        )?;
        target
            .write_root_file(OBJECTS_LIST, listing.as_bytes())
            .map_err(|e| Error::io(format!("writing {OBJECTS_LIST}"), e))?;
        report.tls_files = self
            .store
            .folder()
            .copy_tls(target)
            .map_err(|e| Error::io("copying tls/", e))?;
        target
            .publish_db()
            .map_err(|e| Error::io("publishing the backup's database", e))?;
        Ok(report)
    }
}

/// Ready the snapshot in `target` (`backups::prepare_snapshot`): its blobs
/// (digest, size) and the report that starts with them, announced to `progress`.
fn prepare(
    dest: &Path,
    target: &BlobStore,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<(Vec<(String, u64)>, BackupReport)> {
    let blobs = backups::prepare_snapshot(&target.partial_db_path())?;
    let report = BackupReport::of(dest, &blobs);
    progress(BackupProgress::Blobs {
        count: report.blobs,
        bytes: report.blob_bytes,
    });
    Ok((blobs, report))
}

/// The list of objects an S3 store's backup needs (see `list_snapshot`).
pub const OBJECTS_LIST: &str = "OBJECTS";
