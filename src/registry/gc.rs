//! Garbage collection and space accounting.
//!
//! GC is a mark and sweep over the reference graph, decided and applied in ONE
//! write transaction (so it serializes with manifest PUTs and upload commits):
//! expired upload sessions go; with `delete_untagged`, manifests no tag
//! reaches go; repository links nothing in their repository references and
//! older than the link grace go; then blob rows with no reference, no link, no
//! backup pin and older than the grace period are deleted and queued in
//! `blob_trash`. After the commit, `empty_trash` unlinks the queued files under
//! the write lock, each only while its digest still has no row: an upload that
//! re-committed the same digest in between keeps its file. A crash between the
//! two steps leaves queued work that the next GC or start-up finishes.
//!
//! This file applies the plan; the plan itself and `du`'s accounting are pure
//! functions in `gc_plan`, so what `du` calls reclaimable is what GC frees.
//! It must never see HTTP types nor decide anything the plan did not.

use super::cached_blob::PARTIAL_DIR;
use super::gc_plan::{plan_evicting, Plan};
use super::gc_usage::{delete_frees, usage, Usage};
use super::{quota, retention, Registry};
use crate::db::graph;
use crate::db::{backups, blobs, manifests, now, repos, trash, uploads, upstreams};
use crate::error::{Error, Result};
use crate::oci::{Digest, RepoName, Tag, UploadId};
use crate::storage::backend::BlobBackend as _;
use serde::Serialize;

/// A backup whose heartbeat is older than this is dead; its pins are ignored.
pub const PIN_STALE_SECS: i64 = 600;

/// What a GC run may remove.
#[derive(Clone, Debug, Serialize)]
pub struct GcPolicy {
    /// Minimum age (seconds) of a blob without references or links, and of an
    /// untagged manifest, before it is removed.
    pub grace_secs: i64,
    /// Minimum age of a repository link that nothing in its repository
    /// references (a blob uploaded or mounted whose manifest has not come yet).
    pub link_grace_secs: i64,
    /// Upload sessions idle this long expire.
    pub upload_ttl_secs: i64,
    /// Remove manifests that no tag reaches (directly, as an index child or as
    /// a referrer of a kept manifest).
    pub delete_untagged: bool,
    pub dry_run: bool,
}

impl Default for GcPolicy {
    fn default() -> GcPolicy {
        GcPolicy {
            grace_secs: 3600,
            link_grace_secs: 3600,
            upload_ttl_secs: 24 * 3600,
            delete_untagged: false,
            dry_run: false,
        }
    }
}

/// One thing GC removed (or would remove).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Removed {
    pub what: String,
    pub bytes: u64,
}

/// A cached image GC evicted (or would evict), and why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Evicted {
    /// `REPO@DIGEST (tags ...)`.
    pub what: String,
    pub upstream: String,
    /// What evicting it took off the upstream's cached bytes.
    pub bytes: u64,
    /// When it was last pulled (seconds since the epoch).
    pub last_pulled: i64,
    pub reason: String,
}

/// One thing GC kept, and why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Kept {
    pub what: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub manifests_deleted: Vec<Removed>,
    pub links_removed: Vec<Removed>,
    pub blobs_deleted: Vec<Removed>,
    pub uploads_expired: Vec<Removed>,
    /// Cached images evicted (`--max-bytes`, `--evict-after`, a deleted upstream).
    pub evicted: Vec<Evicted>,
    /// Blobs and manifests kept, with the reason (filled on dry runs).
    pub kept: Vec<Kept>,
    /// What the retention rules decided for each tag they cover (`retention`).
    pub retention: Vec<super::retention::TagVerdict>,
    /// Bytes of blob files, manifests and upload files removed.
    pub freed_bytes: u64,
}

impl Registry {
    /// Run GC once with `policy` (or only report, on a dry run).
    pub fn gc(&self, policy: &GcPolicy) -> Result<GcReport> {
        self.gc_purging(policy, &[])
    }

    /// GC that also evicts the whole cache of the upstreams in `purge`
    /// (`soute upstream del NAME --purge`).
    pub fn gc_purging(&self, policy: &GcPolicy, purge: &[String]) -> Result<GcReport> {
        // Finish what an interrupted run left, so the counts below are this run's.
        self.empty_trash()?;
        // Eviction reads the pull times: this process's pending ones first.
        self.flush_pulls()?;
        let live_since = now() - PIN_STALE_SECS;
        if policy.dry_run {
            return self
                .db
                .read_consistent(|tx| {
                    let mut g = graph::load_graph(tx, live_since)?;
                    let rules = retention::apply(tx, &mut g, now(), None)?;
                    let cache = upstreams::cache_state(tx)?;
                    let plan = plan_evicting(&g, &cache, policy, now(), true, purge);
                    Ok(with_retention(plan, rules).report)
                })
                .map(|mut report| {
                    for (_, name, bytes) in self.stale_partial_downloads(policy.upload_ttl_secs) {
                        let what = format!("partial download {PARTIAL_DIR}/{name}");
                        report.uploads_expired.push(Removed { what, bytes });
                        report.freed_bytes += bytes;
                    }
                    report
                });
        }
        let plan = self.db.write(|tx| {
            backups::delete_stale_backups(tx, live_since)?;
            let mut g = graph::load_graph(tx, live_since)?;
            // Retention first: its tag and manifest deletes, then the plan of what they left.
            let rules = retention::apply(tx, &mut g, now(), Some(&self.webhooks))?;
            let cache = upstreams::cache_state(tx)?;
            let plan = with_retention(
                plan_evicting(&g, &cache, policy, now(), false, purge),
                rules,
            );
            for (repo_id, digest, _) in &plan.manifests {
                manifests::delete_manifest(tx, *repo_id, digest)?;
            }
            for (repo_id, digest) in &plan.links {
                blobs::unlink_blob(tx, *repo_id, digest)?;
            }
            for (digest, _) in &plan.blobs {
                trash::trash_blob(tx, digest)?;
            }
            for (id, _) in &plan.uploads {
                uploads::delete_upload(tx, id)?;
            }
            upstreams::delete_stale_cache_rows(tx)?;
            // Names used only by sessions that expired (or never had content).
            repos::delete_empty_repos(tx)?;
            quota::recompute(tx, None)?;
            Ok(plan)
        })?;
        self.audit_retention(&plan.report.retention);
        self.empty_trash()?;
        for (id, _) in &plan.uploads {
            if let Ok(id) = UploadId::parse(id) {
                self.forget_session(&id);
                if let Err(e) = self.store.folder().remove_upload(&id) {
                    log::warn!("could not remove the file of expired upload {id}: {e}");
                }
            }
        }
        let mut report = plan.report;
        // Partial pull-through downloads nobody resumed within the upload TTL.
        for (path, name, bytes) in self.stale_partial_downloads(policy.upload_ttl_secs) {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    let what = format!("partial download {PARTIAL_DIR}/{name}");
                    report.uploads_expired.push(Removed { what, bytes });
                    report.freed_bytes += bytes;
                }
                Err(e) => log::warn!("could not remove the partial download {name}: {e}"),
            }
        }
        // Multipart uploads of an object store a dead publish left behind.
        for what in self.abort_stale_multipart(policy.upload_ttl_secs)? {
            report.uploads_expired.push(Removed { what, bytes: 0 });
        }
        let r = &report;
        for e in &r.evicted {
            log::info!("gc: evicted {} ({} bytes): {}", e.what, e.bytes, e.reason);
        }
        if r.freed_bytes > 0 || !r.links_removed.is_empty() {
            log::info!(
                "gc: freed {} bytes: {} blob(s), {} manifest(s), {} link(s), {} expired upload(s), {} cached image(s) evicted",
                r.freed_bytes,
                r.blobs_deleted.len(),
                r.manifests_deleted.len(),
                r.links_removed.len(),
                r.uploads_expired.len(),
                r.evicted.len()
            );
        }
        Ok(report)
    }

    /// Records each tag retention removed in the audit log, with its rule.
    fn audit_retention(&self, verdicts: &[retention::TagVerdict]) {
        for v in verdicts.iter().filter(|v| !v.kept) {
            self.audit(&super::AuditEvent {
                action: super::AuditAction::Delete,
                actor: "retention".into(),
                address: "local".into(),
                repository: v.repository.clone(),
                detail: format!(
                    "tag {} ({}) by rule {}: {}",
                    v.tag, v.digest, v.rule, v.reason
                ),
                status: 0,
            });
        }
    }

    /// Unlink the files GC queued, each under the write lock and only while no
    /// row exists for its digest. Cheap when the queue is empty (start-up runs it).
    /// Only what was queued by commits already on disk (`wait_read_durable`
    /// after reading the queue; a concurrent GC's commit may still wait for
    /// its flush): a power cut never brings back a blob row whose file is gone.
    /// What was queued after the read waits for the next run.
    pub fn empty_trash(&self) -> Result<usize> {
        if self.store.is_remote() {
            return self.empty_trash_remote();
        }
        let durable: std::collections::HashSet<String> =
            self.db.read(trash::trash)?.into_iter().collect();
        if durable.is_empty() {
            return Ok(0);
        }
        self.db.wait_read_durable()?;
        self.db.write(|tx| {
            let queued = trash::trash(tx)?;
            let mut removed = 0;
            for key in queued.iter().filter(|k| durable.contains(*k)) {
                if blobs::blob_size(tx, key)?.is_none() {
                    if let Ok(digest) = Digest::parse(key) {
                        self.store
                            .remove(&digest)
                            .map_err(|e| Error::io(format!("removing blob {key}"), e))?;
                        removed += 1;
                    }
                }
                trash::untrash(tx, key)?;
            }
            Ok(removed)
        })
    }

    /// Space accounting, per repository and in total. With `repo`, only that
    /// repository is listed, with what deleting it (or `tag`) would free.
    pub fn du(
        &self,
        repo: Option<&RepoName>,
        tag: Option<&Tag>,
        policy: &GcPolicy,
    ) -> Result<Usage> {
        let live_since = now() - PIN_STALE_SECS;
        self.flush_pulls()?;
        let (g, after_rules, mut removes, cache) = self.db.read_consistent(|tx| {
            let g = graph::load_graph(tx, live_since)?;
            // What the next GC's retention removes counts as reclaimable.
            let mut after_rules = g.clone();
            let rules = retention::apply(tx, &mut after_rules, now(), None)?;
            let removes: Vec<_> = rules.verdicts.into_iter().filter(|v| !v.kept).collect();
            Ok((g, after_rules, removes, upstreams::cache_state(tx)?))
        })?;
        let t = now();
        let (mut repos, mut total, upstreams) = usage(&g, &after_rules, &cache, policy, t);
        (total.partial_downloads, total.partial_download_bytes) = self.partial_downloads();
        let (mut repo_frees, mut tag_frees) = (None, None);
        if let Some(name) = repo {
            let id = g
                .repos
                .iter()
                .find(|(_, n)| n == name.as_str())
                .map(|(i, _)| *i)
                .ok_or_else(|| {
                    Error::client(
                        crate::error::Code::NameUnknown,
                        format!("repository {name} is not known"),
                    )
                })?;
            repos.retain(|r| r.name == name.as_str());
            removes.retain(|v| v.repository == name.as_str());
            if let Some(tag) = tag {
                if !g
                    .tags
                    .iter()
                    .any(|t| t.repo_id == id && t.name == tag.as_str())
                {
                    return Err(Error::client(
                        crate::error::Code::ManifestUnknown,
                        format!("tag {tag} is not in {name}"),
                    ));
                }
                tag_frees = Some(delete_frees(g.clone(), id, Some(tag.as_str()), t));
            }
            repo_frees = Some(delete_frees(g, id, None, t));
        }
        Ok(Usage {
            repositories: repos,
            total,
            upstreams,
            repository_delete_frees_bytes: repo_frees,
            tag_delete_frees_bytes: tag_frees,
            retention_removes: removes,
        })
    }
}

/// The plan with what retention removed before it (manifests, bytes, verdicts).
fn with_retention(mut plan: Plan, rules: retention::Outcome) -> Plan {
    let r = &mut plan.report;
    r.freed_bytes += rules.manifests.iter().map(|m| m.bytes).sum::<u64>();
    let mut manifests = rules.manifests;
    manifests.append(&mut r.manifests_deleted);
    r.manifests_deleted = manifests;
    r.retention = rules.verdicts;
    plan
}
