//! The registry side of a streamed pull-through download: where its partial
//! file lives (`upstream-partial/` in the data folder, one file per digest,
//! kept across restarts so a broken download resumes), and its commit once
//! the caller verified its digest: fsynced file → the blob backend → row,
//! as an upload's commit (`blob_commit`).
//!
//! It must never commit a file whose digest the caller did not check, nor
//! talk to the network.

use super::Registry;
use crate::db::{blobs, repos, upstreams};
use crate::error::{Error, Result};
use crate::oci::{Digest, RepoName};
use crate::storage::backend::BlobBackend as _;
use std::path::{Path, PathBuf};

/// The folder of partial downloads, under the data folder.
pub const PARTIAL_DIR: &str = "upstream-partial";

impl Registry {
    /// Where the partial download of `digest` is kept (the folder is made,
    /// 0700, when missing).
    pub fn partial_download_path(&self, digest: &Digest) -> Result<PathBuf> {
        let dir = self.data_dir().join(PARTIAL_DIR);
        if !dir.is_dir() {
            crate::storage::create_private_dir(&dir)
                .and_then(|()| crate::storage::sync_dir(self.data_dir()))
                .map_err(|e| Error::io("creating upstream-partial/", e))?;
        }
        Ok(dir.join(format!("{}-{}", digest.algorithm().as_str(), digest.hex())))
    }

    /// Partial downloads no download has written to for `ttl_secs` (a
    /// running one writes all the time; one its clients and upstream left is
    /// resumed by the next pull of its blob, else removed by GC after this
    /// long): each file with its name and size.
    pub fn stale_partial_downloads(&self, ttl_secs: i64) -> Vec<(PathBuf, String, u64)> {
        let dir = self.data_dir().join(PARTIAL_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let ttl = std::time::Duration::from_secs(ttl_secs.max(0) as u64);
        let now = std::time::SystemTime::now();
        entries
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                let age = now
                    .duration_since(meta.modified().ok()?)
                    .unwrap_or_default();
                (age >= ttl).then(|| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (e.path(), name, meta.len())
                })
            })
            .collect()
    }

    /// The partial downloads kept now (running, or left for a resume): how
    /// many files and their bytes, as `du` shows them.
    pub fn partial_downloads(&self) -> (u64, u64) {
        let files = self.stale_partial_downloads(0);
        (files.len() as u64, files.iter().map(|f| f.2).sum())
    }

    /// Where the store keeps `digest` once committed.
    pub fn blob_file_path(&self, digest: &Digest) -> PathBuf {
        self.store.folder().blob_path(digest)
    }

    /// Commit the downloaded file `path` (fsynced, `size` bytes, its digest
    /// checked against `digest` by the caller) as a blob of the cached
    /// repository `repo` of `upstream`. When the store has the blob already
    /// the file is dropped and the blob linked.
    pub fn commit_cached_file(
        &self,
        upstream: &str,
        repo: &RepoName,
        digest: &Digest,
        path: &Path,
        size: u64,
    ) -> Result<()> {
        let key = digest.to_string();
        // `commit_blob` orders the publish against GC (see blob_commit.rs).
        self.commit_blob(path, digest, size, &|tx| {
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            blobs::link_blob(tx, repo_id, &key)?;
            upstreams::mark_cached_repo(tx, repo_id, upstream)
        })
    }

    /// Add `bytes` to what was fetched from `upstream` (unsynced).
    pub fn count_fetched(&self, upstream: &str, bytes: u64) -> Result<()> {
        self.db
            .write_unsynced(|tx| upstreams::count(tx, upstream, 0, 0, 0, bytes))
    }
}
