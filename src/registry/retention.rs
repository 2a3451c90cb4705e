//! Retention rules: which tags GC keeps in the repositories a pattern
//! matches (`--keep-last N`: the N most recently pushed; `--keep-days D`:
//! pushed or moved in the last D days; `--keep-tags REGEX`: names the regex
//! finds). A tag is kept when ANY option of its rule keeps it, or when a
//! protection covers it; the other tags of the repository are removed.
//! When several rules match a repository, the most specific pattern wins
//! (the access rules' order: more literal characters, then fewer `**`, then
//! fewer `*`; equal ones: the smaller pattern text), so `team/app` can keep
//! more than `team/**`. Repositories no rule matches keep every tag.
//!
//! GC applies it first, in its own transaction: the verdicts are a pure
//! function of the tags, their push times (`tag.updated_at`) and the clock;
//! a removed tag goes through `db::tags::delete_tag`, the same call as a tag
//! DELETE, and a manifest only the removed tags kept (with its index
//! children and referrers that nothing else keeps) is deleted as a manifest
//! DELETE would, so the rest of the GC run collects its blobs; each removal
//! records the webhook event that DELETE would (`delete` of the tag, then
//! of the manifest by digest), in the same transaction.
//!
//! It must never remove a protected tag, apply a rule whose regex no longer
//! compiles, nor delete a manifest anything else keeps.

use super::gc::Removed;
use super::gc_plan::plan;
use super::gc_usage::eventual;
use super::protect::Protection;
use super::Registry;
use crate::auth::pattern::Pattern;
use crate::db::graph::Graph;
use crate::db::{manifests, policies, tags};
use crate::error::Result;
use crate::webhook::{with_origin, Origin, Outbox};
use regex_lite::{Regex, RegexBuilder};
use rusqlite::Connection;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};

/// The longest `--keep-tags` regex accepted.
pub const MAX_KEEP_TAGS_LEN: usize = 256;
/// The compiled size a `--keep-tags` regex may take (regex-lite's limit).
const KEEP_TAGS_SIZE_LIMIT: usize = 64 * 1024;

const DAY_SECS: i64 = 86_400;

/// A retention rule as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionRule {
    pub pattern: String,
    pub keep_last: Option<u32>,
    pub keep_days: Option<u32>,
    pub keep_tags: Option<String>,
}

fn compile(re: &str) -> std::result::Result<Regex, String> {
    if re.len() > MAX_KEEP_TAGS_LEN {
        return Err(format!(
            "--keep-tags: the regex is longer than {MAX_KEEP_TAGS_LEN} characters"
        ));
    }
    RegexBuilder::new(re)
        .size_limit(KEEP_TAGS_SIZE_LIMIT)
        .nest_limit(32)
        .build()
        .map_err(|e| format!("--keep-tags {re:?}: {e}"))
}

impl RetentionRule {
    /// Checks a rule: a valid pattern, at least one option, a regex that
    /// compiles within the limits.
    pub fn new(
        pattern: &str,
        keep_last: Option<u32>,
        keep_days: Option<u32>,
        keep_tags: Option<String>,
    ) -> std::result::Result<RetentionRule, String> {
        let pattern = Pattern::parse(pattern).map_err(|e| e.to_string())?;
        if keep_last.is_none() && keep_days.is_none() && keep_tags.is_none() {
            return Err(
                "a retention rule needs --keep-last N, --keep-days D or --keep-tags REGEX".into(),
            );
        }
        if let Some(re) = &keep_tags {
            compile(re)?;
        }
        Ok(RetentionRule {
            pattern: pattern.as_str().to_string(),
            keep_last,
            keep_days,
            keep_tags,
        })
    }

    /// `--keep-last 5 --keep-days 30 --keep-tags ^v`, as the rule was set.
    pub fn options(&self) -> String {
        let mut words = Vec::new();
        if let Some(n) = self.keep_last {
            words.push(format!("--keep-last {n}"));
        }
        if let Some(d) = self.keep_days {
            words.push(format!("--keep-days {d}"));
        }
        if let Some(re) = &self.keep_tags {
            words.push(format!("--keep-tags {re}"));
        }
        words.join(" ")
    }
}

/// What retention decided for one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagVerdict {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// The pattern of the rule that decided.
    pub rule: String,
    pub kept: bool,
    /// `kept: among the 5 most recent`, `removed: older than 30 days`, ...
    pub reason: String,
}

/// One tag to decide on: name, push time.
pub(super) struct Candidate<'a> {
    pub name: &'a str,
    pub updated_at: i64,
}

/// The verdicts of `rule` over the tags of one repository: (kept, reason)
/// in the order given. Pure. Ranks are by push time, newest first, ties by
/// name (greater first). `protected` names the protection covering a tag.
pub(super) fn decide(
    rule: &RetentionRule,
    regex: Option<&Regex>,
    tags: &[Candidate<'_>],
    protected: impl Fn(&str) -> Option<String>,
    now: i64,
) -> Vec<(bool, String)> {
    let mut order: Vec<usize> = (0..tags.len()).collect();
    order.sort_by(|&a, &b| {
        (tags[b].updated_at, tags[b].name).cmp(&(tags[a].updated_at, tags[a].name))
    });
    let mut rank = vec![0usize; tags.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    tags.iter()
        .enumerate()
        .map(|(i, t)| {
            if let Some(p) = protected(t.name) {
                return (true, format!("kept: protected by rule {p}"));
            }
            let re = rule.keep_tags.as_deref().unwrap_or_default();
            if regex.is_some_and(|r| r.is_match(t.name)) {
                return (true, format!("kept: matches --keep-tags {re}"));
            }
            if let Some(n) = rule.keep_last.filter(|&n| rank[i] < n as usize) {
                return (true, format!("kept: among the {n} most recent"));
            }
            let young = |d: u32| now.saturating_sub(t.updated_at) < i64::from(d) * DAY_SECS;
            if let Some(d) = rule.keep_days.filter(|&d| young(d)) {
                return (true, format!("kept: pushed within the last {d} days"));
            }
            let mut why = Vec::new();
            if let Some(n) = rule.keep_last {
                why.push(format!("not among the {n} most recent"));
            }
            if let Some(d) = rule.keep_days {
                why.push(format!("older than {d} days"));
            }
            if regex.is_some() {
                why.push(format!("does not match {re}"));
            }
            (false, format!("removed: {}", why.join(", ")))
        })
        .collect()
}

/// The rule that applies to `repo`: the most specific matching pattern.
fn rule_for(rules: &[(RetentionRule, Pattern, Option<Regex>)], repo: &str) -> Option<usize> {
    rules
        .iter()
        .enumerate()
        .filter(|(_, (_, p, _))| p.matches(repo))
        .max_by(|(_, (a, pa, _)), (_, (b, pb, _))| {
            pa.specificity()
                .cmp(&pb.specificity())
                .then_with(|| b.pattern.cmp(&a.pattern))
        })
        .map(|(i, _)| i)
}

fn stored_rules(conn: &Connection) -> Result<Vec<RetentionRule>> {
    Ok(policies::retention_rules(conn)?
        .into_iter()
        .map(|r| RetentionRule {
            pattern: r.pattern,
            keep_last: r.keep_last,
            keep_days: r.keep_days,
            keep_tags: r.keep_tags,
        })
        .collect())
}

/// What retention did (or would do) in one GC run.
#[derive(Default)]
pub(super) struct Outcome {
    pub verdicts: Vec<TagVerdict>,
    pub manifests: Vec<Removed>,
}

/// Decides retention over `g` (the graph GC loaded in `tx`), removes the
/// tags and the manifests only they kept from `g`, and, with `write` (the
/// outbox; `None` on a dry run), from the database in `tx`, recording the
/// webhook events a client's DELETE of each would. Without rules: one
/// small read.
pub(super) fn apply(
    tx: &Connection,
    g: &mut Graph,
    now: i64,
    write: Option<&Outbox>,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    let mut rules = Vec::new();
    for r in stored_rules(tx)? {
        let Ok(pattern) = Pattern::parse(&r.pattern) else {
            continue;
        };
        let regex = match r.keep_tags.as_deref().map(compile) {
            Some(Err(e)) => {
                log::warn!("retention rule {} skipped: {e}", r.pattern);
                continue;
            }
            Some(Ok(re)) => Some(re),
            None => None,
        };
        rules.push((r, pattern, regex));
    }
    if rules.is_empty() {
        return Ok(out);
    }
    let protections: Vec<Protection> = policies::protections(tx)?
        .into_iter()
        .map(|(pattern, tag_glob)| Protection { pattern, tag_glob })
        .collect();
    let mut times: HashMap<i64, Vec<policies::TagTime>> = HashMap::new();
    for t in policies::tag_times(tx)? {
        times.entry(t.repo_id).or_default().push(t);
    }
    let mut removed: Vec<(i64, String, String)> = Vec::new();
    for (repo_id, repo) in &g.repos {
        let (Some(i), Some(repo_tags)) = (rule_for(&rules, repo), times.get(repo_id)) else {
            continue;
        };
        let (rule, _, regex) = &rules[i];
        let candidates: Vec<Candidate> = repo_tags
            .iter()
            .map(|t| Candidate {
                name: &t.name,
                updated_at: t.updated_at,
            })
            .collect();
        let protected = |tag: &str| {
            protections
                .iter()
                .find(|p| p.covers(repo, tag))
                .map(|p| p.to_string())
        };
        let verdicts = decide(rule, regex.as_ref(), &candidates, protected, now);
        for (t, (kept, reason)) in repo_tags.iter().zip(verdicts) {
            if !kept {
                removed.push((*repo_id, t.name.clone(), t.digest.clone()));
            }
            out.verdicts.push(TagVerdict {
                repository: repo.clone(),
                tag: t.name.clone(),
                digest: t.digest.clone(),
                rule: rule.pattern.clone(),
                kept,
                reason,
            });
        }
    }
    if removed.is_empty() {
        return Ok(out);
    }
    let gone: HashSet<(i64, &str)> = removed
        .iter()
        .map(|(id, name, _)| (*id, name.as_str()))
        .collect();
    g.tags
        .retain(|t| !gone.contains(&(t.repo_id, t.name.as_str())));
    let released = released_manifests(g, &removed, now);
    let repo_name: HashMap<i64, &str> = g.repos.iter().map(|(i, n)| (*i, n.as_str())).collect();
    if let Some(events) = write {
        let name = |id: &i64| repo_name.get(id).copied().unwrap_or("");
        // The events' actor, as in the audit log and the tag history.
        let origin = Origin {
            actor: "retention".into(),
            ..Origin::default()
        };
        with_origin(origin, || -> Result<()> {
            for (repo_id, tag, _) in &removed {
                tags::delete_tag(tx, *repo_id, tag, "retention")?;
                events.tag_deleted(tx, name(repo_id), tag)?;
            }
            for (repo_id, digest) in &released {
                manifests::delete_manifest(tx, *repo_id, digest)?;
                events.manifest_deleted(tx, name(repo_id), digest)?;
            }
            Ok(())
        })?;
    }
    for m in &g.manifests {
        if released.contains(&(m.repo_id, m.digest.clone())) {
            out.manifests.push(Removed {
                what: format!(
                    "manifest {}@{} (its tags were removed by retention)",
                    repo_name.get(&m.repo_id).copied().unwrap_or("?"),
                    m.digest
                ),
                bytes: m.size,
            });
        }
    }
    g.manifests
        .retain(|m| !released.contains(&(m.repo_id, m.digest.clone())));
    g.refs
        .retain(|r| !released.contains(&(r.repo_id, r.digest.clone())));
    Ok(out)
}

/// The manifests that only the removed tags kept: the removed tags'
/// manifests, their index children and referrers (any depth), of which
/// those a GC that collects everything unreached would delete from `g`
/// (tags already removed from it).
fn released_manifests(
    g: &Graph,
    removed: &[(i64, String, String)],
    now: i64,
) -> HashSet<(i64, String)> {
    let mut children: HashMap<(i64, &str), Vec<&str>> = HashMap::new();
    for r in g.refs.iter().filter(|r| !r.is_blob) {
        children
            .entry((r.repo_id, r.digest.as_str()))
            .or_default()
            .push(r.child.as_str());
    }
    for m in &g.manifests {
        if let Some(s) = &m.subject {
            children
                .entry((m.repo_id, s.as_str()))
                .or_default()
                .push(m.digest.as_str());
        }
    }
    let mut reach: HashSet<(i64, String)> = HashSet::new();
    let mut queue: VecDeque<(i64, &str)> =
        removed.iter().map(|(id, _, d)| (*id, d.as_str())).collect();
    while let Some((repo, digest)) = queue.pop_front() {
        if !reach.insert((repo, digest.to_string())) {
            continue;
        }
        for child in children.get(&(repo, digest)).into_iter().flatten() {
            queue.push_back((repo, child));
        }
    }
    plan(g, &eventual(), now, false)
        .manifests
        .into_iter()
        .map(|(id, d, _)| (id, d))
        .filter(|k| reach.contains(k))
        .collect()
}

impl Registry {
    /// Sets (or replaces) the rule of its pattern; true when it is new.
    pub fn set_retention(&self, rule: &RetentionRule) -> Result<bool> {
        self.db.write(|tx| {
            policies::set_retention(
                tx,
                &policies::RetentionRow {
                    pattern: rule.pattern.clone(),
                    keep_last: rule.keep_last,
                    keep_days: rule.keep_days,
                    keep_tags: rule.keep_tags.clone(),
                },
            )
        })
    }

    pub fn delete_retention(&self, pattern: &str) -> Result<bool> {
        self.db.write(|tx| policies::delete_retention(tx, pattern))
    }

    pub fn retention_rules(&self) -> Result<Vec<RetentionRule>> {
        self.db.read(stored_rules)
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
