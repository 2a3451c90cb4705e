//! Quotas: at most N bytes for the repositories a pattern matches, counted as
//! the distinct blobs their manifests reference plus their manifests' bytes
//! (du's accounting of a set of repositories, a layer shared by two of them
//! counted once). Every quota whose pattern matches a repository applies.
//! Blobs linked into a covered repository that no manifest references yet
//! (a push in progress, or bytes uploaded and never used) are not in the
//! stored usage, but they hold disk until GC drops the link: every new link
//! (an upload's commit, a mount) is admitted only if usage + those pending
//! links + the new blob fit, checked under the write lock that links it, so
//! uploading blobs without manifests cannot pass a quota either. Open upload
//! sessions are not counted: their bytes are bounded by the upload limits
//! (`--max-upload-sessions`, the disk reserve) and expire with `--upload-ttl`.
//!
//! Cost on the push path: `quota.used_bytes` is kept in the transactions
//! that change it. A manifest PUT reads the quota rows (one small query),
//! and for each quota matching the repository and each distinct layer of
//! the manifest one indexed lookup (`manifest_ref_child`) of the repositories
//! already referencing it; it adds the new bytes in the same transaction that
//! stores the manifest, or refuses (403 DENIED) and stores nothing. Deleting
//! a manifest and GC recompute the usage from the reference rows (one pass
//! over them). A blob upload of known size (single POST, or a chunk with
//! Content-Length) is refused before its body is read when it alone would
//! pass a quota.
//!
//! It must never count bytes a push has not committed, nor refuse a pull.

use super::Registry;
use crate::auth::pattern::Pattern;
use crate::db::{blobs, manifests, policies};
use crate::error::{Code, Error, Result};
use crate::oci::{Digest, RepoName};
use rusqlite::Connection;
use serde::Serialize;
use std::collections::HashSet;

/// A quota and what the repositories it covers use now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quota {
    pub pattern: String,
    pub limit_bytes: u64,
    pub used_bytes: u64,
}

impl From<policies::QuotaRow> for Quota {
    fn from(q: policies::QuotaRow) -> Quota {
        Quota {
            pattern: q.pattern,
            limit_bytes: q.limit_bytes,
            used_bytes: q.used_bytes,
        }
    }
}

fn exceeded(would_be: u64, q: &policies::QuotaRow, adds: u64) -> Error {
    Error::client(
        Code::Denied,
        format!(
            "quota exceeded: {would_be} of {} bytes (quota {}: {} used, this push adds {adds})",
            q.limit_bytes, q.pattern, q.used_bytes
        ),
    )
}

/// The quotas whose pattern matches `repo`.
fn matching(conn: &Connection, repo: &str) -> Result<Vec<(policies::QuotaRow, Pattern)>> {
    let mut out = Vec::new();
    for q in policies::quotas(conn)? {
        if let Ok(p) = Pattern::parse(&q.pattern) {
            if p.matches(repo) {
                out.push((q, p));
            }
        }
    }
    Ok(out)
}

/// Whether a manifest of a repository `pattern` matches references `digest`.
fn counted(conn: &Connection, pattern: &Pattern, digest: &str) -> Result<bool> {
    Ok(policies::repos_referencing_blob(conn, digest)?
        .iter()
        .any(|r| pattern.matches(r)))
}

/// Charges a manifest about to be stored in `repo` to every quota covering
/// it, or refuses it. In the transaction that stores it, before it is
/// stored: `blob_refs` are its blob references (config, layers).
pub(super) fn charge_manifest(
    tx: &Connection,
    repo: &str,
    repo_id: i64,
    digest: &str,
    size: u64,
    blob_refs: &[&str],
) -> Result<()> {
    let quotas = matching(tx, repo)?;
    if quotas.is_empty() || manifests::manifest_head(tx, repo_id, digest)?.is_some() {
        return Ok(());
    }
    let distinct: HashSet<&str> = blob_refs.iter().copied().collect();
    let mut updates = Vec::with_capacity(quotas.len());
    for (q, pattern) in &quotas {
        let mut adds = size;
        for d in &distinct {
            if !counted(tx, pattern, d)? {
                adds += blobs::blob_size(tx, d)?.unwrap_or(0);
            }
        }
        let would_be = q.used_bytes.saturating_add(adds);
        if would_be > q.limit_bytes {
            return Err(exceeded(would_be, q, adds));
        }
        updates.push((q.pattern.as_str(), would_be));
    }
    for (pattern, used) in updates {
        policies::set_quota_usage(tx, pattern, used)?;
    }
    Ok(())
}

/// Blobs linked into repositories `pattern` covers that no manifest of those
/// repositories references: their distinct digests and bytes. One indexed
/// range of `repo_blob` per covered repository.
fn pending_links(conn: &Connection, pattern: &Pattern) -> Result<(HashSet<String>, u64)> {
    let mut digests = HashSet::new();
    let mut bytes = 0u64;
    for (repo_id, name) in policies::repo_names(conn)? {
        if !pattern.matches(&name) {
            continue;
        }
        for (digest, size) in policies::unreferenced_links(conn, repo_id)? {
            if !digests.contains(&digest) && !counted(conn, pattern, &digest)? {
                bytes = bytes.saturating_add(size);
                digests.insert(digest);
            }
        }
    }
    Ok((digests, bytes))
}

/// The longest an upload session may become under the quotas covering its
/// repository: the room the tightest one leaves after its usage, its pending
/// links and the other open sessions' acknowledged bytes. Enforced while a
/// body streams (`upload_body::Bounds::quota`), so a chunked PATCH without
/// Content-Length cannot store more than the quota either.
pub struct QuotaCap {
    pub max_length: u64,
    pattern: String,
    limit: u64,
    taken: u64,
}

impl QuotaCap {
    /// 403 DENIED when a session of `length` bytes would not fit.
    pub fn check(&self, length: u64) -> Result<()> {
        if length <= self.max_length {
            return Ok(());
        }
        Err(Error::client(
            Code::Denied,
            format!(
                "quota exceeded: {} of {} bytes (quota {}: {} taken by images, blobs no \
                 manifest references yet and other open uploads, which expire after \
                 --upload-ttl or go with a DELETE of the upload; this upload would be {length})",
                self.taken.saturating_add(length),
                self.limit,
                self.pattern,
                self.taken
            ),
        ))
    }
}

/// Acknowledged bytes of open upload sessions of repositories `pattern`
/// covers, except `except`.
fn open_upload_bytes(conn: &Connection, pattern: &Pattern, except: &str) -> Result<u64> {
    let mut bytes = 0u64;
    for (repo_id, name) in policies::repo_names(conn)? {
        if pattern.matches(&name) {
            bytes = bytes.saturating_add(policies::open_upload_bytes(conn, repo_id, except)?);
        }
    }
    Ok(bytes)
}

/// Refuses linking blob `digest` (`size` bytes) into `repo` when a quota
/// covering it would be passed by its usage, its pending links and this
/// blob. A blob the quota counts already, or already pending in it, adds
/// nothing. In the write transaction that links it.
pub(super) fn check_link(tx: &Connection, repo: &str, digest: &str, size: u64) -> Result<()> {
    for (q, pattern) in matching(tx, repo)? {
        if counted(tx, &pattern, digest)? {
            continue;
        }
        let (pending, pending_bytes) = pending_links(tx, &pattern)?;
        if pending.contains(digest) {
            continue;
        }
        let would_be = q
            .used_bytes
            .saturating_add(pending_bytes)
            .saturating_add(size);
        if would_be > q.limit_bytes {
            return Err(exceeded_with_pending(would_be, &q, pending_bytes, size));
        }
    }
    Ok(())
}

fn exceeded_with_pending(would_be: u64, q: &policies::QuotaRow, pending: u64, adds: u64) -> Error {
    Error::client(
        Code::Denied,
        format!(
            "quota exceeded: {would_be} of {} bytes (quota {}: {} used by images, {pending} in \
             blobs no manifest references yet, this blob adds {adds}; push the manifest of \
             the blobs already sent, or delete them)",
            q.limit_bytes, q.pattern, q.used_bytes
        ),
    )
}

/// Usage of each of `patterns`, recomputed from the reference rows.
fn usage_of(conn: &Connection, patterns: &[Pattern]) -> Result<Vec<u64>> {
    let refs = policies::referenced_blobs(conn)?;
    let manifests = policies::manifest_bytes(conn)?;
    let mut out = Vec::with_capacity(patterns.len());
    for p in patterns {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut used = 0u64;
        for (repo, digest, size) in &refs {
            if p.matches(repo) && seen.insert(digest.as_str()) {
                used += size;
            }
        }
        used += manifests
            .iter()
            .filter(|(repo, _)| p.matches(repo))
            .map(|(_, n)| n)
            .sum::<u64>();
        out.push(used);
    }
    Ok(out)
}

/// Recomputes the stored usage of the quotas covering `repo` (every quota
/// with `None`). After deletes and GC, in their transaction.
pub(super) fn recompute(tx: &Connection, repo: Option<&str>) -> Result<()> {
    let rows: Vec<(policies::QuotaRow, Pattern)> = match repo {
        Some(r) => matching(tx, r)?,
        None => policies::quotas(tx)?
            .into_iter()
            .filter_map(|q| Pattern::parse(&q.pattern).ok().map(|p| (q, p)))
            .collect(),
    };
    if rows.is_empty() {
        return Ok(());
    }
    let patterns: Vec<Pattern> = rows.iter().map(|(_, p)| p.clone()).collect();
    for ((q, _), used) in rows.iter().zip(usage_of(tx, &patterns)?) {
        if used != q.used_bytes {
            policies::set_quota_usage(tx, &q.pattern, used)?;
        }
    }
    Ok(())
}

impl Registry {
    /// Refuses a blob upload of `size` bytes into `repo` that alone would
    /// take a quota past its limit (a blob the quota counts already is free).
    /// Cheap without quotas: one small read.
    pub fn admit_quota(&self, repo: &RepoName, size: u64, digest: Option<&Digest>) -> Result<()> {
        self.db.read(|c| {
            for (q, pattern) in matching(c, repo.as_str())? {
                let key = digest.map(|d| d.to_string());
                if let Some(d) = &key {
                    if counted(c, &pattern, d)? {
                        continue;
                    }
                }
                let (pending, pending_bytes) = pending_links(c, &pattern)?;
                if key.as_ref().is_some_and(|d| pending.contains(d)) {
                    continue;
                }
                let would_be = q
                    .used_bytes
                    .saturating_add(pending_bytes)
                    .saturating_add(size);
                if would_be > q.limit_bytes {
                    return Err(exceeded_with_pending(would_be, &q, pending_bytes, size));
                }
            }
            Ok(())
        })
    }

    /// The quota cap of a session of `repo` (`None` without a quota).
    pub(super) fn quota_cap(
        &self,
        repo: &RepoName,
        id: &crate::oci::UploadId,
    ) -> Result<Option<QuotaCap>> {
        self.db.read(|c| {
            let mut cap: Option<QuotaCap> = None;
            for (q, pattern) in matching(c, repo.as_str())? {
                let (_, pending) = pending_links(c, &pattern)?;
                let open = open_upload_bytes(c, &pattern, id.as_str())?;
                let taken = q.used_bytes.saturating_add(pending).saturating_add(open);
                let room = q.limit_bytes.saturating_sub(taken);
                if cap.as_ref().is_none_or(|c| room < c.max_length) {
                    cap = Some(QuotaCap {
                        max_length: room,
                        pattern: q.pattern.clone(),
                        limit: q.limit_bytes,
                        taken,
                    });
                }
            }
            Ok(cap)
        })
    }

    /// `admit_quota` for a chunk of `expected` bytes appended to a session.
    pub fn admit_quota_chunk(
        &self,
        repo: &RepoName,
        id: &crate::oci::UploadId,
        expected: u64,
    ) -> Result<()> {
        let has_quota = self
            .db
            .read(|c| Ok(!matching(c, repo.as_str())?.is_empty()))?;
        if !has_quota {
            return Ok(());
        }
        let length = self.upload_status(repo, id)?.length;
        self.admit_quota(repo, length.saturating_add(expected), None)
    }

    /// Sets (or replaces) the quota of `pattern`; returns it with its usage.
    pub fn set_quota(&self, pattern: &Pattern, limit_bytes: u64) -> Result<Quota> {
        self.db.write(|tx| {
            let used = usage_of(tx, std::slice::from_ref(pattern))?[0];
            let row = policies::QuotaRow {
                pattern: pattern.as_str().to_string(),
                limit_bytes,
                used_bytes: used,
            };
            policies::set_quota(tx, &row)?;
            Ok(row.into())
        })
    }

    pub fn delete_quota(&self, pattern: &str) -> Result<bool> {
        self.db.write(|tx| policies::delete_quota(tx, pattern))
    }

    /// Every quota with its usage, recomputed now (so drift, if any, is
    /// corrected and the figures are du's).
    pub fn quotas(&self) -> Result<Vec<Quota>> {
        self.db.write(|tx| {
            recompute(tx, None)?;
            Ok(policies::quotas(tx)?.into_iter().map(Quota::from).collect())
        })
    }
}
