//! The registry side of the pull-through cache: the `upstream` rows (add,
//! list, delete, counters, last error) and the writes of cached content. A
//! fetched manifest is stored as a normal manifest (`store_manifest` with the
//! upstream's name); a fetched blob goes through a normal upload session and
//! its verified commit (`finish_upload`), so "a blob row means its file
//! exists and was verified" holds for cached blobs too.
//!
//! It must never talk to the network (`crate::upstream` does), nor return a
//! password to anything but the upstream client.

use super::Registry;
use crate::db::upstreams::{self, UpstreamRow};
use crate::db::{repos, tags};
use crate::error::{Code, Error, Result};
use crate::oci::{Digest, Reference, RepoName, Tag};
use std::io::Read;

/// A tag of a cached repository: where it points and when it was last
/// checked against the upstream (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTag {
    pub digest: Digest,
    pub checked_at: i64,
}

impl Registry {
    /// Add an upstream; false when one has that name.
    /// Refused when private repositories already live under the name: the
    /// upstream would take over their namespace (every push there refused,
    /// pulls answered by the upstream).
    pub fn add_upstream(&self, row: &UpstreamRow) -> Result<bool> {
        self.db.write(|tx| {
            if let Some(local) = upstreams::local_repo_under(tx, &row.name)? {
                return Err(Error::client(
                    Code::NameInvalid,
                    format!(
                        "private repository {local} is under {name}/: an upstream named {name} \
                         would take over its namespace; choose another name",
                        name = row.name
                    ),
                ));
            }
            upstreams::add_upstream(tx, row)
        })
    }

    /// Make `row` the `--mirror` upstream (`REGISTRY_PROXY_*` at start).
    pub fn set_env_mirror(&self, row: &UpstreamRow) -> Result<()> {
        self.db.write(|tx| upstreams::set_env_mirror(tx, row))
    }

    /// Delete an upstream (its cached repositories stay, read-only, until GC
    /// evicts them: `cache_space`).
    pub fn delete_upstream(&self, name: &str) -> Result<bool> {
        self.db.write(|tx| upstreams::delete_upstream(tx, name))
    }

    pub fn upstreams(&self) -> Result<Vec<UpstreamRow>> {
        self.db.read(upstreams::upstreams)
    }

    pub fn upstream(&self, name: &str) -> Result<Option<UpstreamRow>> {
        self.db.read(|c| upstreams::upstream(c, name))
    }

    /// The `--mirror` upstream, if any.
    pub fn mirror_upstream(&self) -> Result<Option<UpstreamRow>> {
        self.db.read(upstreams::mirror_upstream)
    }

    /// Whether the registry has a repository of that name (mirror mode
    /// serves only names it does not have: local repositories win).
    pub fn repo_exists(&self, repo: &RepoName) -> Result<bool> {
        Ok(self
            .db
            .read(|c| repos::repo_id(c, repo.as_str()))?
            .is_some())
    }

    /// Add to an upstream's counters. Unsynced: a power cut may lose a few
    /// counts, never content.
    pub fn count_upstream(&self, name: &str, hit: bool, served: u64, fetched: u64) -> Result<()> {
        let (hits, misses) = if hit { (1, 0) } else { (0, 1) };
        self.db
            .write_unsynced(|tx| upstreams::count(tx, name, hits, misses, served, fetched))
    }

    /// Record an upstream's failure (shown by `soute upstream list`).
    pub fn upstream_failed(&self, name: &str, error: &str) -> Result<()> {
        crate::metrics::get().upstream_errors.inc();
        self.db
            .write_unsynced(|tx| upstreams::set_last_error(tx, name, error))
    }

    /// Where a tag of a local repository points and when it was last checked
    /// upstream (`checked_at` 0 for a tag that was never checked).
    pub fn cached_tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<CachedTag>> {
        self.db.read(|c| {
            let Some(repo_id) = repos::repo_id(c, repo.as_str())? else {
                return Ok(None);
            };
            let Some(digest) = tags::resolve_tag(c, repo_id, tag.as_str())? else {
                return Ok(None);
            };
            let checked_at = upstreams::tag_checked_at(c, repo_id, tag.as_str())?.unwrap_or(0);
            Ok(Some(CachedTag {
                digest: Digest::parse(&digest)?,
                checked_at,
            }))
        })
    }

    /// The upstream still has the tag where it was: restart its TTL.
    pub fn tag_revalidated(&self, repo: &RepoName, tag: &Tag) -> Result<()> {
        self.db.write_unsynced(|tx| {
            if let Some(repo_id) = repos::repo_id(tx, repo.as_str())? {
                upstreams::set_tag_checked(tx, repo_id, tag.as_str(), crate::db::now())?;
            }
            Ok(())
        })
    }

    /// Store a manifest fetched from `upstream` (its digest already checked
    /// against what was asked for), tagged with `tag` if given.
    pub fn store_cached_manifest(
        &self,
        upstream: &str,
        repo: &RepoName,
        digest: &Digest,
        content_type: Option<&str>,
        body: &[u8],
        tag: Option<&Tag>,
    ) -> Result<()> {
        let tags: Vec<Tag> = tag.into_iter().cloned().collect();
        self.store_manifest(
            repo,
            &Reference::Digest(digest.clone()),
            content_type,
            body,
            &tags,
            super::manifests::Source::Upstream { name: upstream },
        )?;
        Ok(())
    }

    /// Whether the store holds `digest` (row and file), for any repository.
    pub fn blob_known(&self, digest: &Digest) -> Result<bool> {
        self.blob_stored(digest)
    }

    /// Link a blob the store holds into the cached repository `repo` (the
    /// upstream confirmed that repository has it); its size, or `None` when
    /// the blob is not stored (GC took it meanwhile).
    pub fn link_cached_blob(
        &self,
        upstream: &str,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        if !self.mount_blob(repo, digest, None)? {
            return Ok(None);
        }
        self.db.write_unsynced(|tx| {
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            upstreams::mark_cached_repo(tx, repo_id, upstream)
        })?;
        self.blob_size(repo, digest).map(Some)
    }

    /// Store a blob streamed from `upstream` through an upload session and
    /// the verified commit: a digest mismatch, a short body or a full disk
    /// store nothing (the session is cancelled). Returns the blob's size.
    pub fn cache_blob(
        &self,
        upstream: &str,
        repo: &RepoName,
        digest: &Digest,
        length: Option<u64>,
        body: &mut dyn Read,
    ) -> Result<u64> {
        self.admit_upload(length, Some(digest))?;
        let session =
            self.start_upload(repo, digest.algorithm(), &format!("upstream {upstream}"))?;
        let finished = self.finish_upload(repo, &session.id, digest, Some((None, length, body)));
        if let Err(e) = finished {
            if let Err(cancel) = self.cancel_upload(repo, &session.id) {
                log::warn!("cancelling the cache session of {digest}: {cancel}");
            }
            return Err(e);
        }
        self.db.write_unsynced(|tx| {
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            upstreams::mark_cached_repo(tx, repo_id, upstream)
        })?;
        self.blob_size(repo, digest)
    }
}
