//! The GC plan: pure functions over the reference graph (`db::graph`) and the
//! clock. `plan` decides what GC removes and why the rest is kept,
//! `plan_evicting` with the cache's evictions first (`gc_evict`); `gc_usage`
//! runs the same plan for `du`, so what `du` calls reclaimable is exactly what
//! GC frees.
//!
//! It must never do I/O, run SQL or read the clock itself: the graph and the
//! time come in, decisions go out, and `gc` applies them.

use super::gc::{GcPolicy, GcReport, Kept, Removed};
use super::gc_evict::{apply, evictions};
use crate::db::graph::Graph;
use crate::db::upstreams::CacheState;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};

/// Idle time after which an upload session with no bytes expires.
pub const EMPTY_UPLOAD_TTL_SECS: i64 = 3600;

/// The decisions of one run, with the row keys needed to apply them.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) manifests: Vec<(i64, String, u64)>,
    pub(super) links: Vec<(i64, String)>,
    pub(super) blobs: Vec<(String, u64)>,
    pub(super) uploads: Vec<(String, u64)>,
    pub(super) report: GcReport,
}

/// Record why a manifest survives, the first time, and queue it for the walk.
fn mark<'a>(
    reason: &mut HashMap<(i64, &'a str), String>,
    queue: &mut VecDeque<(i64, &'a str)>,
    key: (i64, &'a str),
    why: impl FnOnce() -> String,
) {
    if let Entry::Vacant(e) = reason.entry(key) {
        e.insert(why());
        queue.push_back(key);
    }
}

type Edges<'a> = HashMap<(i64, &'a str), Vec<&'a str>>;

/// Mark, with their reason, every manifest the queued ones reach (index
/// children, referrers), breadth first.
fn reach<'a>(
    reason: &mut HashMap<(i64, &'a str), String>,
    queue: &mut VecDeque<(i64, &'a str)>,
    children: &Edges<'a>,
    referrers: &Edges<'a>,
    rn: &dyn Fn(i64) -> &'a str,
) {
    while let Some((repo, digest)) = queue.pop_front() {
        for child in children.get(&(repo, digest)).into_iter().flatten() {
            mark(reason, queue, (repo, *child), || {
                format!("child of index {}@{digest}", rn(repo))
            });
        }
        for r in referrers.get(&(repo, digest)).into_iter().flatten() {
            mark(reason, queue, (repo, *r), || {
                format!("referrer of {}@{digest}", rn(repo))
            });
        }
    }
}

/// Decide what goes. Pure: the graph and the clock in, the plan out.
pub(super) fn plan(g: &Graph, p: &GcPolicy, now: i64, explain: bool) -> Plan {
    plan_with(g, p, now, explain, &HashSet::new())
}

/// The plan with the cache's evictions first (`gc_evict`): evicted
/// manifests and links go, then the plan runs on what remains, freeing the
/// blobs they held without waiting for the grace period (unless something
/// else keeps them: a private image's reference, a recent link, a backup).
/// `purge`: upstreams whose whole cache goes.
pub(super) fn plan_evicting(
    g: &Graph,
    cache: &CacheState,
    p: &GcPolicy,
    now: i64,
    explain: bool,
    purge: &[String],
) -> Plan {
    let e = evictions(g, cache, now, purge);
    let mut out = plan_with(&apply(g, &e), p, now, explain, &e.blobs);
    out.report.freed_bytes += e.manifests.iter().map(|m| m.2).sum::<u64>();
    out.manifests.extend(e.manifests);
    out.links.extend(e.links);
    out.report.evicted = e.report;
    out
}

/// `plan`, where the blobs in `no_grace` (evicted ones) are not kept for
/// being younger than the grace period.
fn plan_with(g: &Graph, p: &GcPolicy, now: i64, explain: bool, no_grace: &HashSet<String>) -> Plan {
    let repo_name: HashMap<i64, &str> = g.repos.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let rn = |id: i64| repo_name.get(&id).copied().unwrap_or("?");
    let mut out = Plan::default();
    out.report.dry_run = p.dry_run;
    let mut kept: Vec<Kept> = Vec::new();

    for u in &g.uploads {
        // A session that never received a byte costs an inode and a row for
        // nothing: it goes after an hour (or the TTL, if shorter).
        let ttl = if u.length == 0 {
            p.upload_ttl_secs.min(EMPTY_UPLOAD_TTL_SECS)
        } else {
            p.upload_ttl_secs
        };
        if now - u.updated_at >= ttl {
            out.uploads.push((u.id.clone(), u.length));
            out.report.uploads_expired.push(Removed {
                what: format!("upload {} in {}", u.id, rn(u.repo_id)),
                bytes: u.length,
            });
        }
    }

    // Manifests: which survive, and why. What tags reach first (so an index
    // child or a referrer of a tagged image says so), then the untagged ones
    // the policy keeps, with what they reach in turn.
    let mut children: Edges = HashMap::new();
    for r in g.refs.iter().filter(|r| !r.is_blob) {
        children
            .entry((r.repo_id, r.digest.as_str()))
            .or_default()
            .push(r.child.as_str());
    }
    let mut referrers: Edges = HashMap::new();
    for m in &g.manifests {
        if let Some(s) = &m.subject {
            referrers
                .entry((m.repo_id, s.as_str()))
                .or_default()
                .push(m.digest.as_str());
        }
    }
    let mut reason: HashMap<(i64, &str), String> = HashMap::new();
    let mut queue: VecDeque<(i64, &str)> = VecDeque::new();
    for t in &g.tags {
        let key = (t.repo_id, t.digest.as_str());
        mark(&mut reason, &mut queue, key, || {
            format!("tagged {}:{}", rn(t.repo_id), t.name)
        });
    }
    reach(&mut reason, &mut queue, &children, &referrers, &rn);
    for m in &g.manifests {
        let key = (m.repo_id, m.digest.as_str());
        if reason.contains_key(&key) {
            continue;
        }
        let why = if !p.delete_untagged {
            Some("untagged, kept without --delete-untagged".to_string())
        } else if now - m.created_at < p.grace_secs {
            Some("untagged but younger than the grace period".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            reason.insert(key, why);
            queue.push_back(key);
        }
    }
    reach(&mut reason, &mut queue, &children, &referrers, &rn);
    let mut surviving: HashSet<(i64, &str)> = HashSet::new();
    for m in &g.manifests {
        let key = (m.repo_id, m.digest.as_str());
        match reason.get(&key) {
            Some(why) => {
                surviving.insert(key);
                if explain {
                    kept.push(Kept {
                        what: format!("manifest {}@{}", rn(m.repo_id), m.digest),
                        reason: why.clone(),
                    });
                }
            }
            None => {
                out.manifests.push((m.repo_id, m.digest.clone(), m.size));
                out.report.manifests_deleted.push(Removed {
                    what: format!("manifest {}@{}", rn(m.repo_id), m.digest),
                    bytes: m.size,
                });
            }
        }
    }

    // Blob references of the surviving manifests.
    let mut used_in_repo: HashSet<(i64, &str)> = HashSet::new();
    let mut used_by: HashMap<&str, String> = HashMap::new();
    for r in g.refs.iter().filter(|r| r.is_blob) {
        if surviving.contains(&(r.repo_id, r.digest.as_str())) {
            used_in_repo.insert((r.repo_id, r.child.as_str()));
            used_by
                .entry(r.child.as_str())
                .or_insert_with(|| format!("referenced by {}@{}", rn(r.repo_id), r.digest));
        }
    }
    let mut linked: HashMap<&str, String> = HashMap::new();
    for l in &g.links {
        let key = (l.repo_id, l.digest.as_str());
        if used_in_repo.contains(&key) {
            continue;
        }
        if now - l.created_at < p.link_grace_secs {
            linked.entry(l.digest.as_str()).or_insert_with(|| {
                format!(
                    "linked in {} by a recent upload or mount (younger than the link grace period)",
                    rn(l.repo_id)
                )
            });
        } else {
            out.links.push((l.repo_id, l.digest.clone()));
            out.report.links_removed.push(Removed {
                what: format!("link {} -> {}", rn(l.repo_id), l.digest),
                bytes: 0,
            });
        }
    }
    // Links that survive because a manifest references the blob keep it via `used_by`.
    for b in &g.blobs {
        let why = if let Some(u) = used_by.get(b.digest.as_str()) {
            Some(u.clone())
        } else if let Some(l) = linked.get(b.digest.as_str()) {
            Some(l.clone())
        } else if g.pinned.contains(&b.digest) {
            Some("pinned by a running backup".to_string())
        } else if now - b.created_at < p.grace_secs && !no_grace.contains(&b.digest) {
            Some("younger than the grace period".to_string())
        } else {
            None
        };
        match why {
            Some(reason) => {
                if explain {
                    kept.push(Kept {
                        what: format!("blob {}", b.digest),
                        reason,
                    });
                }
            }
            None => {
                out.blobs.push((b.digest.clone(), b.size));
                out.report.blobs_deleted.push(Removed {
                    what: format!("blob {}", b.digest),
                    bytes: b.size,
                });
            }
        }
    }
    out.report.kept = kept;
    out.report.freed_bytes = out.blobs.iter().map(|b| b.1).sum::<u64>()
        + out.manifests.iter().map(|m| m.2).sum::<u64>()
        + out.uploads.iter().map(|u| u.1).sum::<u64>();
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::db::graph::*;

    pub(in crate::registry) fn graph() -> Graph {
        let m = |d: &str, created_at: i64, subject: Option<&str>| ManifestNode {
            repo_id: 1,
            digest: d.into(),
            size: 10,
            created_at,
            subject: subject.map(str::to_string),
        };
        let r = |d: &str, child: &str, is_blob: bool| RefRow {
            repo_id: 1,
            digest: d.into(),
            child: child.into(),
            is_blob,
        };
        let blob = |d: &str, created_at: i64| BlobRow {
            digest: d.into(),
            size: 100,
            created_at,
        };
        let link = |d: &str, created_at: i64| LinkRow {
            repo_id: 1,
            digest: d.into(),
            created_at,
        };
        let tag = |name: &str, d: &str| TagRow {
            repo_id: 1,
            name: name.into(),
            digest: d.into(),
        };
        Graph {
            repos: vec![(1, "r".into())],
            manifests: vec![
                m("M1", 0, None),
                m("M2", 0, None),
                m("I", 0, None),
                m("M3", 0, None),
                m("S", 0, Some("M1")),
                m("Y", 950, None),
            ],
            tags: vec![tag("v1", "M1"), tag("multi", "I")],
            refs: vec![
                r("M1", "A", true),
                r("M1", "B", true),
                r("M2", "B", true),
                r("M2", "C", true),
                r("I", "M3", false),
                r("M3", "D", true),
                r("S", "E", true),
            ],
            links: ["A", "B", "C", "D", "E", "Z", "H"]
                .iter()
                .map(|d| link(d, 0))
                .chain([link("F", 950)])
                .collect(),
            blobs: ["A", "B", "C", "D", "E", "F", "H", "Z"]
                .iter()
                .map(|d| blob(d, 0))
                .chain([blob("G", 950)])
                .collect(),
            uploads: vec![UploadInfo {
                id: "u".into(),
                repo_id: 1,
                length: 7,
                updated_at: 0,
            }],
            pinned: ["H".to_string()].into_iter().collect(),
        }
    }

    pub(in crate::registry) fn policy(delete_untagged: bool) -> GcPolicy {
        GcPolicy {
            grace_secs: 100,
            link_grace_secs: 100,
            upload_ttl_secs: 500,
            delete_untagged,
            dry_run: true,
        }
    }

    #[test]
    fn an_empty_session_expires_after_an_hour_one_with_bytes_after_the_ttl() {
        let mut g = graph();
        let session = |id: &str, length: u64, updated_at: i64| UploadInfo {
            id: id.into(),
            repo_id: 1,
            length,
            updated_at,
        };
        g.uploads = vec![
            session("empty-old", 0, 0),
            session("empty-new", 0, 2 * EMPTY_UPLOAD_TTL_SECS - 10),
            session("full-old", 5, 0),
        ];
        let mut p = policy(false);
        p.upload_ttl_secs = 24 * 3600;
        let now = 2 * EMPTY_UPLOAD_TTL_SECS;
        let expired: Vec<String> = plan(&g, &p, now, true)
            .uploads
            .into_iter()
            .map(|u| u.0)
            .collect();
        assert_eq!(expired, ["empty-old"]);
    }

    /// Why the plan keeps `what` ("" when it does not).
    fn kept_reason(p: &Plan, what: &str) -> String {
        p.report
            .kept
            .iter()
            .find(|k| k.what == what)
            .map(|k| k.reason.clone())
            .unwrap_or_default()
    }

    #[test]
    fn plan_table() {
        let g = graph();
        // (delete_untagged, manifests deleted, blobs deleted)
        let table: [(bool, &[&str], &[&str]); 2] =
            [(false, &[], &["Z"]), (true, &["M2"], &["C", "Z"])];
        for (untagged, manifests, blobs) in table {
            let p = plan(&g, &policy(untagged), 1000, true);
            let got_m: Vec<&str> = p.manifests.iter().map(|m| m.1.as_str()).collect();
            let got_b: Vec<&str> = p.blobs.iter().map(|b| b.0.as_str()).collect();
            assert_eq!(got_m, manifests, "untagged={untagged}");
            assert_eq!(got_b, blobs, "untagged={untagged}");
            assert_eq!(p.uploads.len(), 1);
            let freed = 100 * blobs.len() as u64 + 10 * manifests.len() as u64 + 7;
            assert_eq!(p.report.freed_bytes, freed);
        }
        let p = plan(&g, &policy(true), 1000, true);
        let why = |what: &str| kept_reason(&p, what);
        assert_eq!(why("manifest r@M3"), "child of index r@I");
        assert_eq!(why("manifest r@S"), "referrer of r@M1");
        assert_eq!(
            why("manifest r@Y"),
            "untagged but younger than the grace period"
        );
        assert_eq!(why("blob D"), "referenced by r@M3");
        assert!(why("blob F").starts_with("linked in r by a recent upload"));
        assert_eq!(why("blob G"), "younger than the grace period");
        assert_eq!(why("blob H"), "pinned by a running backup");
        // Without --delete-untagged, what a tag reaches still says so (the
        // untagged reason is only for manifests no tag reaches).
        let p = plan(&g, &policy(false), 1000, true);
        let why = |what: &str| kept_reason(&p, what);
        assert_eq!(why("manifest r@M3"), "child of index r@I");
        assert_eq!(why("manifest r@S"), "referrer of r@M1");
        assert_eq!(
            why("manifest r@Y"),
            "untagged, kept without --delete-untagged"
        );
    }
}
