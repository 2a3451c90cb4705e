//! Eviction of cached content: which cached images GC removes, a pure
//! function over the reference graph (`db::graph`), the cache's state
//! (`db::upstreams::CacheState`: which repositories are cached, from which
//! upstream, when each manifest was last pulled, each upstream's limits) and
//! the clock.
//!
//! The unit is a cached image: a manifest of a cached repository that no
//! other manifest of that repository holds (as an index child or as the
//! subject of a referrer), with everything it holds. An upstream's bytes are
//! its images' manifests plus the blobs they reference that no private
//! (non-cached) repository links or references: what evicting could free.
//! Images not pulled for `--evict-after` go; then, while the upstream holds
//! more than `--max-bytes`, the least recently pulled go. An image's last
//! pull is the latest of its manifests' (`manifest_pull`, or when the manifest
//! was stored). A deleted upstream's images go once not pulled for
//! `ORPHAN_EVICT_AFTER_SECS`, or at once with `upstream del --purge`.
//!
//! It must never touch a repository that is not cached (private images are
//! never evicted, whatever blobs they share: the GC plan then keeps every blob
//! a surviving manifest references), do I/O, run SQL or read the clock.

use super::gc::Evicted;
use crate::db::graph::Graph;
use crate::db::upstreams::CacheState;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A deleted upstream's cached images stay (read-only) until not pulled for
/// this long: 7 days.
pub const ORPHAN_EVICT_AFTER_SECS: u64 = 7 * 24 * 3600;

/// What eviction removes, as row keys, and the report of it.
#[derive(Default)]
pub(super) struct Evictions {
    /// (repo id, manifest digest, size).
    pub(super) manifests: Vec<(i64, String, u64)>,
    /// Links of cached repositories to blobs none of their remaining manifests reference.
    pub(super) links: Vec<(i64, String)>,
    /// Blobs the evicted manifests referenced: GC frees them without waiting
    /// for the grace period, if nothing else keeps them.
    pub(super) blobs: HashSet<String>,
    pub(super) report: Vec<Evicted>,
}

/// One cached image.
struct Unit<'a> {
    repo_id: i64,
    root: &'a str,
    manifests: Vec<(&'a str, u64)>,
    blobs: HashSet<&'a str>,
    last_pulled: i64,
}

/// One upstream's cached images and what they hold now.
#[derive(Default)]
struct Holding<'a> {
    units: Vec<Unit<'a>>,
    /// How many of its images hold each blob / manifest.
    blob_users: HashMap<&'a str, u32>,
    manifest_users: HashMap<(i64, &'a str), u32>,
    bytes: u64,
}

/// The bytes each upstream's cache holds (the figure `--max-bytes` limits),
/// by upstream name (deleted upstreams included).
pub(super) fn cached_bytes(g: &Graph, cache: &CacheState) -> BTreeMap<String, u64> {
    holdings(g, cache)
        .into_iter()
        .map(|(name, h)| (name.to_string(), h.bytes))
        .collect()
}

/// Blobs a private (non-cached) repository links or references.
pub(super) fn private_blobs<'a>(g: &'a Graph, cache: &CacheState) -> HashSet<&'a str> {
    let links = g
        .links
        .iter()
        .filter(|l| !cache.repos.contains_key(&l.repo_id))
        .map(|l| l.digest.as_str());
    let refs = g
        .refs
        .iter()
        .filter(|r| r.is_blob && !cache.repos.contains_key(&r.repo_id))
        .map(|r| r.child.as_str());
    links.chain(refs).collect()
}

fn holdings<'a>(g: &'a Graph, cache: &'a CacheState) -> BTreeMap<&'a str, Holding<'a>> {
    let private = private_blobs(g, cache);
    let blob_size: HashMap<&str, u64> = g
        .blobs
        .iter()
        .map(|b| (b.digest.as_str(), b.size))
        .collect();
    // Per cached repository: its manifests, what holds what.
    let mut size: HashMap<(i64, &str), (u64, i64)> = HashMap::new();
    for m in g
        .manifests
        .iter()
        .filter(|m| cache.repos.contains_key(&m.repo_id))
    {
        size.insert((m.repo_id, m.digest.as_str()), (m.size, m.created_at));
    }
    let mut holds: HashMap<(i64, &str), Vec<&str>> = HashMap::new();
    let mut held: HashSet<(i64, &str)> = HashSet::new();
    let mut blobs_of: HashMap<(i64, &str), Vec<&str>> = HashMap::new();
    for r in g
        .refs
        .iter()
        .filter(|r| cache.repos.contains_key(&r.repo_id))
    {
        let key = (r.repo_id, r.digest.as_str());
        if r.is_blob {
            blobs_of.entry(key).or_default().push(r.child.as_str());
        } else if size.contains_key(&(r.repo_id, r.child.as_str())) {
            holds.entry(key).or_default().push(r.child.as_str());
            held.insert((r.repo_id, r.child.as_str()));
        }
    }
    for m in g
        .manifests
        .iter()
        .filter(|m| cache.repos.contains_key(&m.repo_id))
    {
        if let Some(s) = &m.subject {
            if size.contains_key(&(m.repo_id, s.as_str())) {
                holds
                    .entry((m.repo_id, s.as_str()))
                    .or_default()
                    .push(m.digest.as_str());
                held.insert((m.repo_id, m.digest.as_str()));
            }
        }
    }
    let mut out: BTreeMap<&str, Holding> = BTreeMap::new();
    for m in g.manifests.iter() {
        let key = (m.repo_id, m.digest.as_str());
        let Some(upstream) = cache.repos.get(&m.repo_id) else {
            continue;
        };
        if held.contains(&key) {
            continue;
        }
        let mut unit = Unit {
            repo_id: m.repo_id,
            root: m.digest.as_str(),
            manifests: Vec::new(),
            blobs: HashSet::new(),
            last_pulled: i64::MIN,
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![m.digest.as_str()];
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            let (bytes, created_at) = size.get(&(m.repo_id, d)).copied().unwrap_or((0, 0));
            unit.manifests.push((d, bytes));
            let pulled = cache
                .pulled
                .get(&(m.repo_id, d.to_string()))
                .copied()
                .unwrap_or(created_at);
            unit.last_pulled = unit.last_pulled.max(pulled);
            for b in blobs_of.get(&(m.repo_id, d)).into_iter().flatten() {
                if blob_size.contains_key(b) && !private.contains(b) {
                    unit.blobs.insert(b);
                }
            }
            stack.extend(holds.get(&(m.repo_id, d)).into_iter().flatten());
        }
        let h = out.entry(upstream.as_str()).or_default();
        for b in &unit.blobs {
            let n = h.blob_users.entry(b).or_default();
            if *n == 0 {
                h.bytes += blob_size.get(b).copied().unwrap_or(0);
            }
            *n += 1;
        }
        for (d, bytes) in &unit.manifests {
            let n = h.manifest_users.entry((m.repo_id, d)).or_default();
            if *n == 0 {
                h.bytes += bytes;
            }
            *n += 1;
        }
        h.units.push(unit);
    }
    out
}

/// Decide what is evicted now. `purge`: upstreams whose whole cache goes.
pub(super) fn evictions(g: &Graph, cache: &CacheState, now: i64, purge: &[String]) -> Evictions {
    let repo_name: HashMap<i64, &str> = g.repos.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let blob_size: HashMap<&str, u64> = g
        .blobs
        .iter()
        .map(|b| (b.digest.as_str(), b.size))
        .collect();
    let mut out = Evictions::default();
    let mut touched: HashSet<i64> = HashSet::new();
    let mut gone: HashSet<(i64, &str)> = HashSet::new();
    for (upstream, mut h) in holdings(g, cache) {
        let policy = cache.policies.get(upstream).copied();
        let purged = purge.iter().any(|p| p == upstream);
        let evict_after = match policy {
            Some(p) => p.evict_after_secs,
            None => Some(ORPHAN_EVICT_AFTER_SECS),
        };
        let max_bytes = policy.and_then(|p| p.max_bytes);
        let mut units = std::mem::take(&mut h.units);
        units.sort_by(|a, b| {
            (a.last_pulled, repo_name.get(&a.repo_id), a.root).cmp(&(
                b.last_pulled,
                repo_name.get(&b.repo_id),
                b.root,
            ))
        });
        let held_before = h.bytes;
        for unit in &units {
            let age = now.saturating_sub(unit.last_pulled);
            let reason = if purged {
                format!("its upstream {upstream} was deleted with --purge")
            } else if let Some(after) = evict_after.filter(|a| age >= 0 && age as u64 >= *a) {
                let why = if policy.is_some() {
                    "--evict-after"
                } else {
                    "its upstream was deleted; such caches go after"
                };
                format!("not pulled for {age} s ({why} {after} s)")
            } else if let Some(max) = max_bytes.filter(|m| h.bytes > *m) {
                format!(
                    "{upstream} held {} bytes, over --max-bytes {max}; least recently pulled",
                    h.bytes
                )
            } else {
                continue;
            };
            let before = h.bytes;
            let mut unit_gone: HashSet<&str> = HashSet::new();
            for b in &unit.blobs {
                if let Some(n) = h.blob_users.get_mut(b) {
                    *n -= 1;
                    if *n == 0 {
                        h.bytes -= blob_size.get(b).copied().unwrap_or(0);
                        out.blobs.insert(b.to_string());
                    }
                }
            }
            for (d, bytes) in &unit.manifests {
                if let Some(n) = h.manifest_users.get_mut(&(unit.repo_id, d)) {
                    *n -= 1;
                    if *n == 0 {
                        h.bytes -= bytes;
                        gone.insert((unit.repo_id, d));
                        unit_gone.insert(d);
                        out.manifests.push((unit.repo_id, d.to_string(), *bytes));
                    }
                }
            }
            touched.insert(unit.repo_id);
            let repo = repo_name.get(&unit.repo_id).copied().unwrap_or("?");
            let tags: Vec<&str> = g
                .tags
                .iter()
                .filter(|t| t.repo_id == unit.repo_id && unit_gone.contains(t.digest.as_str()))
                .map(|t| t.name.as_str())
                .collect();
            out.report.push(Evicted {
                what: if tags.is_empty() {
                    format!("{repo}@{}", unit.root)
                } else {
                    format!("{repo}@{} (tags {})", unit.root, tags.join(", "))
                },
                upstream: upstream.to_string(),
                bytes: before - h.bytes,
                last_pulled: unit.last_pulled,
                reason,
            });
        }
        if held_before != h.bytes {
            log::debug!("eviction: {upstream} {held_before} -> {} bytes", h.bytes);
        }
    }
    // Links of the touched repositories that no remaining manifest of theirs references.
    let mut still: HashSet<(i64, &str)> = HashSet::new();
    for r in g
        .refs
        .iter()
        .filter(|r| r.is_blob && touched.contains(&r.repo_id))
    {
        if !gone.contains(&(r.repo_id, r.digest.as_str())) {
            still.insert((r.repo_id, r.child.as_str()));
        }
    }
    for l in g.links.iter().filter(|l| touched.contains(&l.repo_id)) {
        if !still.contains(&(l.repo_id, l.digest.as_str())) {
            out.links.push((l.repo_id, l.digest.clone()));
        }
    }
    out
}

/// `g` as it is once `e` is applied: the GC plan then runs on it.
pub(super) fn apply(g: &Graph, e: &Evictions) -> Graph {
    let mut g = g.clone();
    let manifests: HashSet<(i64, &str)> = e
        .manifests
        .iter()
        .map(|(r, d, _)| (*r, d.as_str()))
        .collect();
    let links: HashSet<(i64, &str)> = e.links.iter().map(|(r, d)| (*r, d.as_str())).collect();
    g.tags
        .retain(|t| !manifests.contains(&(t.repo_id, t.digest.as_str())));
    g.refs
        .retain(|r| !manifests.contains(&(r.repo_id, r.digest.as_str())));
    g.manifests
        .retain(|m| !manifests.contains(&(m.repo_id, m.digest.as_str())));
    g.links
        .retain(|l| !links.contains(&(l.repo_id, l.digest.as_str())));
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::graph::*;
    use crate::db::upstreams::CachePolicy;

    /// Repo 1 private, 2 and 3 cached from `up`. Blob sizes: P 1000 (shared
    /// by the private image and cached image a), A 100, B 200, C 400 (child
    /// of index i in repo 3, tagged there). Manifests 10 bytes each.
    fn graph() -> Graph {
        let m = |repo_id: i64, d: &str| ManifestNode {
            repo_id,
            digest: d.into(),
            size: 10,
            created_at: 0,
            subject: None,
        };
        let r = |repo_id: i64, d: &str, child: &str, is_blob: bool| RefRow {
            repo_id,
            digest: d.into(),
            child: child.into(),
            is_blob,
        };
        let blob = |d: &str, size: u64| BlobRow {
            digest: d.into(),
            size,
            created_at: 0,
        };
        let link = |repo_id: i64, d: &str| LinkRow {
            repo_id,
            digest: d.into(),
            created_at: 0,
        };
        let tag = |repo_id: i64, name: &str, d: &str| TagRow {
            repo_id,
            name: name.into(),
            digest: d.into(),
        };
        Graph {
            repos: vec![(1, "mine".into()), (2, "up/a".into()), (3, "up/i".into())],
            manifests: vec![m(1, "MP"), m(2, "MA"), m(2, "MB"), m(3, "I"), m(3, "MC")],
            tags: vec![
                tag(1, "v1", "MP"),
                tag(2, "a", "MA"),
                tag(2, "b", "MB"),
                tag(3, "i", "I"),
            ],
            refs: vec![
                r(1, "MP", "P", true),
                r(2, "MA", "P", true),
                r(2, "MA", "A", true),
                r(2, "MB", "B", true),
                r(3, "I", "MC", false),
                r(3, "MC", "C", true),
            ],
            links: vec![
                link(1, "P"),
                link(2, "P"),
                link(2, "A"),
                link(2, "B"),
                link(3, "C"),
            ],
            blobs: vec![
                blob("P", 1000),
                blob("A", 100),
                blob("B", 200),
                blob("C", 400),
            ],
            uploads: vec![],
            pinned: HashSet::new(),
        }
    }

    fn cache(max_bytes: Option<u64>, evict_after_secs: Option<u64>) -> CacheState {
        let mut c = CacheState::default();
        c.repos.insert(2, "up".into());
        c.repos.insert(3, "up".into());
        c.policies.insert(
            "up".into(),
            CachePolicy {
                max_bytes,
                evict_after_secs,
            },
        );
        // Pulled: MA at 300, MB at 100, MC (the index's child) at 200.
        c.pulled.insert((2, "MA".into()), 300);
        c.pulled.insert((2, "MB".into()), 100);
        c.pulled.insert((3, "MC".into()), 200);
        c
    }

    fn evicted(e: &Evictions) -> Vec<&str> {
        let mut v: Vec<&str> = e.manifests.iter().map(|m| m.1.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn bytes_exclude_what_private_images_use() {
        // A 100 + B 200 + C 400 + 4 manifests; P (1000) is the private image's.
        let bytes = cached_bytes(&graph(), &cache(None, None));
        assert_eq!(bytes.get("up"), Some(&740));
    }

    /// (max_bytes, evict_after, now, purge, evicted manifests)
    type Case = (Option<u64>, Option<u64>, i64, bool, &'static [&'static str]);

    #[test]
    fn eviction_table() {
        // (max_bytes, evict_after, now, purge, evicted manifests)
        let table: [Case; 7] = [
            (None, None, 1000, false, &[]),
            (Some(740), None, 1000, false, &[]),
            // Over by one: the least recently pulled (MB at 100) goes.
            (Some(739), None, 1000, false, &["MB"]),
            // MB (210) is not enough; the index (its child pulled at 200) goes next.
            (Some(500), None, 1000, false, &["I", "MB", "MC"]),
            (Some(0), None, 1000, false, &["I", "MA", "MB", "MC"]),
            // Not pulled for 750 s: MB (900 s) and the index (800 s).
            (None, Some(750), 1000, false, &["I", "MB", "MC"]),
            (None, None, 1000, true, &["I", "MA", "MB", "MC"]),
        ];
        for (max, after, now, purge, want) in table {
            let purge: Vec<String> = if purge { vec!["up".into()] } else { vec![] };
            let e = evictions(&graph(), &cache(max, after), now, &purge);
            assert_eq!(evicted(&e), want, "max {max:?} after {after:?}");
            assert!(
                e.manifests.iter().all(|m| m.0 != 1),
                "a private manifest was evicted"
            );
            assert!(e.links.iter().all(|l| l.0 != 1), "a private link went");
            let g = apply(&graph(), &e);
            assert!(g.tags.iter().any(|t| t.name == "v1"));
            assert!(g.links.iter().any(|l| l.repo_id == 1 && l.digest == "P"));
        }
        // The report says why, least recently pulled first.
        let e = evictions(&graph(), &cache(Some(500), None), 1000, &[]);
        assert_eq!(e.report[0].what, "up/a@MB (tags b)");
        assert_eq!(e.report[0].bytes, 210);
        assert!(e.report[0].reason.contains("over --max-bytes 500"));
        assert_eq!(e.report[1].what, "up/i@I (tags i)");
        assert!(e.blobs.contains("B") && e.blobs.contains("C"));
    }

    #[test]
    fn a_deleted_upstreams_cache_goes_after_a_week_unpulled() {
        let mut c = cache(None, None);
        c.policies.clear();
        let week = ORPHAN_EVICT_AFTER_SECS as i64;
        assert!(evictions(&graph(), &c, 1000, &[]).manifests.is_empty());
        let e = evictions(&graph(), &c, 250 + week, &[]);
        assert_eq!(evicted(&e), ["I", "MB", "MC"]);
        assert!(e.report[0].reason.contains("deleted"));
    }
}
