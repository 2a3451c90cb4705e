//! `du`'s accounting: space per repository and in total (private, cached and
//! unreferenced bytes), each upstream's cache, and what deleting a repository
//! or a tag would free. Pure functions over the reference graph that run the
//! GC plan (`gc_plan`) over the graph retention rules leave, so what `du`
//! calls reclaimable is exactly what GC frees (the rules' removals included).
//!
//! It must never do I/O, run SQL or read the clock itself.

use super::gc::GcPolicy;
use super::gc_evict::{cached_bytes, private_blobs};
use super::gc_plan::{plan, plan_evicting};
use crate::db::graph::Graph;
use crate::db::upstreams::CacheState;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Space used by one repository.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RepoUsage {
    pub name: String,
    pub manifests: u64,
    pub blobs: u64,
    /// Sizes of the blobs it links or references plus its manifests.
    pub logical_bytes: u64,
    /// The part of `logical_bytes` no other repository uses.
    pub unique_bytes: u64,
    pub shared_bytes: u64,
    /// What GC with the given policy would free that this repository uses
    /// (a blob freed from two repositories counts in both).
    pub reclaimable_bytes: u64,
    pub upload_bytes: u64,
    /// The upstream it caches (`None`: a private repository).
    pub cached_from: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TotalUsage {
    pub blobs: u64,
    pub blob_bytes: u64,
    pub manifests: u64,
    pub manifest_bytes: u64,
    pub upload_bytes: u64,
    /// Exactly what `gc` with the same policy frees now.
    pub reclaimable_bytes: u64,
    /// Blobs a private repository links or references, and private manifests.
    pub private_bytes: u64,
    /// Blobs only cached repositories use, and cached manifests.
    pub cached_bytes: u64,
    /// Blobs no repository uses any more (GC frees them after the grace period).
    pub unreferenced_bytes: u64,
    /// Pull-through downloads in `upstream-partial/` (running, or kept for a
    /// resume; GC removes them after the upload TTL): files and bytes.
    pub partial_downloads: u64,
    pub partial_download_bytes: u64,
}

/// One upstream's cache (deleted upstreams' too, until GC evicts them).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UpstreamUsage {
    pub name: String,
    /// Its images' manifests and the blobs only cached repositories use:
    /// what `--max-bytes` limits.
    pub cached_bytes: u64,
    pub max_bytes: Option<u64>,
    pub evict_after_secs: Option<u64>,
    /// false: the upstream was deleted; what it cached stays read-only.
    pub configured: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Usage {
    pub repositories: Vec<RepoUsage>,
    pub total: TotalUsage,
    pub upstreams: Vec<UpstreamUsage>,
    /// With a repository: what deleting it would eventually free (after the
    /// grace periods, with untagged manifests collected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_delete_frees_bytes: Option<u64>,
    /// With a repository and a tag: what deleting the tag would eventually free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_delete_frees_bytes: Option<u64>,
    /// The tags retention rules remove at the next GC, each with its rule
    /// and reason (what they free is in the reclaimable figures).
    pub retention_removes: Vec<super::retention::TagVerdict>,
}

/// The policy of "eventually": every grace period over, untagged collected.
pub(super) fn eventual() -> GcPolicy {
    GcPolicy {
        grace_secs: 0,
        link_grace_secs: 0,
        upload_ttl_secs: i64::MAX,
        delete_untagged: true,
        dry_run: true,
    }
}

/// `g` as stored; `after_rules` the same graph with what retention rules
/// remove at the next GC taken out (`g` itself when there are none), so
/// reclaimable counts what GC frees: the rules' manifests, then its plan.
pub(super) fn usage(
    g: &Graph,
    after_rules: &Graph,
    cache: &CacheState,
    policy: &GcPolicy,
    now: i64,
) -> (Vec<RepoUsage>, TotalUsage, Vec<UpstreamUsage>) {
    let blob_size: HashMap<&str, u64> = g
        .blobs
        .iter()
        .map(|b| (b.digest.as_str(), b.size))
        .collect();
    let mut sets: HashMap<i64, HashSet<&str>> = HashMap::new();
    for l in &g.links {
        sets.entry(l.repo_id).or_default().insert(l.digest.as_str());
    }
    for r in g.refs.iter().filter(|r| r.is_blob) {
        if blob_size.contains_key(r.child.as_str()) {
            sets.entry(r.repo_id).or_default().insert(r.child.as_str());
        }
    }
    let mut users: HashMap<&str, u32> = HashMap::new();
    for set in sets.values() {
        for d in set {
            *users.entry(d).or_default() += 1;
        }
    }
    let plan = plan_evicting(after_rules, cache, policy, now, false, &[]);
    let still: HashSet<(i64, &str)> = after_rules
        .manifests
        .iter()
        .map(|m| (m.repo_id, m.digest.as_str()))
        .collect();
    let by_rules: Vec<(i64, u64)> = g
        .manifests
        .iter()
        .filter(|m| !still.contains(&(m.repo_id, m.digest.as_str())))
        .map(|m| (m.repo_id, m.size))
        .collect();
    let freed_blobs: HashSet<&str> = plan.blobs.iter().map(|b| b.0.as_str()).collect();
    let mut repos = Vec::new();
    for (id, name) in &g.repos {
        let empty = HashSet::new();
        let set = sets.get(id).unwrap_or(&empty);
        let (mut manifests, mut manifest_bytes) = (0u64, 0u64);
        for m in g.manifests.iter().filter(|m| m.repo_id == *id) {
            manifests += 1;
            manifest_bytes += m.size;
        }
        let size = |d: &&str| blob_size.get(d).copied().unwrap_or(0);
        let blob_bytes: u64 = set.iter().map(size).sum();
        let unique_blobs: u64 = set
            .iter()
            .filter(|d| users.get(**d).copied() == Some(1))
            .map(size)
            .sum();
        let upload_bytes: u64 = g
            .uploads
            .iter()
            .filter(|u| u.repo_id == *id)
            .map(|u| u.length)
            .sum();
        let reclaimable = set
            .iter()
            .filter(|d| freed_blobs.contains(**d))
            .map(size)
            .sum::<u64>()
            + plan
                .manifests
                .iter()
                .filter(|m| m.0 == *id)
                .map(|m| m.2)
                .sum::<u64>()
            + by_rules
                .iter()
                .filter(|m| m.0 == *id)
                .map(|m| m.1)
                .sum::<u64>()
            + g.uploads
                .iter()
                .filter(|u| u.repo_id == *id && plan.uploads.iter().any(|p| p.0 == u.id))
                .map(|u| u.length)
                .sum::<u64>();
        if set.is_empty() && manifests == 0 && upload_bytes == 0 {
            continue;
        }
        repos.push(RepoUsage {
            name: name.clone(),
            manifests,
            blobs: set.len() as u64,
            logical_bytes: blob_bytes + manifest_bytes,
            unique_bytes: unique_blobs + manifest_bytes,
            shared_bytes: blob_bytes - unique_blobs,
            reclaimable_bytes: reclaimable,
            upload_bytes,
            cached_from: cache.repos.get(id).cloned(),
        });
    }
    let private = private_blobs(g, cache);
    let cached_repo_blobs: HashSet<&str> = sets
        .iter()
        .filter(|(id, _)| cache.repos.contains_key(id))
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    let (mut private_bytes, mut cached_bytes, mut unreferenced_bytes) = (0, 0, 0);
    for b in &g.blobs {
        if private.contains(b.digest.as_str()) {
            private_bytes += b.size;
        } else if cached_repo_blobs.contains(b.digest.as_str()) {
            cached_bytes += b.size;
        } else {
            unreferenced_bytes += b.size;
        }
    }
    for m in &g.manifests {
        if cache.repos.contains_key(&m.repo_id) {
            cached_bytes += m.size;
        } else {
            private_bytes += m.size;
        }
    }
    let upstreams = cached_bytes_by_upstream(g, cache);
    let total = TotalUsage {
        blobs: g.blobs.len() as u64,
        blob_bytes: g.blobs.iter().map(|b| b.size).sum(),
        manifests: g.manifests.len() as u64,
        manifest_bytes: g.manifests.iter().map(|m| m.size).sum(),
        upload_bytes: g.uploads.iter().map(|u| u.length).sum(),
        reclaimable_bytes: plan.report.freed_bytes + by_rules.iter().map(|m| m.1).sum::<u64>(),
        private_bytes,
        cached_bytes,
        unreferenced_bytes,
        partial_downloads: 0,
        partial_download_bytes: 0,
    };
    (repos, total, upstreams)
}

/// Every upstream with a cache or a configuration, with its bytes and limits.
pub(super) fn cached_bytes_by_upstream(g: &Graph, cache: &CacheState) -> Vec<UpstreamUsage> {
    let mut bytes = cached_bytes(g, cache);
    for name in cache.policies.keys() {
        bytes.entry(name.clone()).or_insert(0);
    }
    bytes
        .into_iter()
        .map(|(name, cached_bytes)| {
            let p = cache.policies.get(&name);
            UpstreamUsage {
                configured: p.is_some(),
                max_bytes: p.and_then(|p| p.max_bytes),
                evict_after_secs: p.and_then(|p| p.evict_after_secs),
                name,
                cached_bytes,
            }
        })
        .collect()
}

/// What removing `drop_tag` (or, without it, the whole repository) would
/// free eventually: the rows removed at once plus what GC then collects.
pub(super) fn delete_frees(mut g: Graph, repo_id: i64, drop_tag: Option<&str>, now: i64) -> u64 {
    let before = plan(&g, &eventual(), now, false).report.freed_bytes;
    let mut direct = 0u64;
    match drop_tag {
        Some(tag) => g.tags.retain(|t| !(t.repo_id == repo_id && t.name == tag)),
        None => {
            direct += g
                .manifests
                .iter()
                .filter(|m| m.repo_id == repo_id)
                .map(|m| m.size)
                .sum::<u64>();
            direct += g
                .uploads
                .iter()
                .filter(|u| u.repo_id == repo_id)
                .map(|u| u.length)
                .sum::<u64>();
            g.tags.retain(|t| t.repo_id != repo_id);
            g.manifests.retain(|m| m.repo_id != repo_id);
            g.refs.retain(|r| r.repo_id != repo_id);
            g.links.retain(|l| l.repo_id != repo_id);
            g.uploads.retain(|u| u.repo_id != repo_id);
        }
    }
    let after = plan(&g, &eventual(), now, false).report.freed_bytes;
    (after + direct).saturating_sub(before)
}

#[cfg(test)]
mod tests {
    use super::super::gc_plan::tests::{graph, policy};
    use super::*;

    #[test]
    fn du_agrees_with_plan_and_predicts_deletes() {
        let g = graph();
        let p = policy(true);
        let (repos, total, upstreams) = usage(&g, &g, &CacheState::default(), &p, 1000);
        assert!(upstreams.is_empty());
        assert_eq!(repos[0].cached_from, None);
        assert_eq!(
            total.private_bytes + total.cached_bytes + total.unreferenced_bytes,
            total.blob_bytes + total.manifest_bytes
        );
        assert_eq!(total.cached_bytes, 0);
        assert_eq!(
            total.reclaimable_bytes,
            plan(&g, &p, 1000, false).report.freed_bytes
        );
        assert_eq!(repos.len(), 1);
        assert_eq!(repos[0].shared_bytes, 0);
        // Dropping tag v1 frees M1 with A and B (M2, its other user, goes anyway) and S with E.
        let frees = delete_frees(g.clone(), 1, Some("v1"), 1000);
        assert_eq!(frees, 10 + 10 + 100 * 3, "M1, S, A, B, E");
        let all = delete_frees(g, 1, None, 1000);
        assert!(all > frees);
    }
}
