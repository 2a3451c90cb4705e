//! One page of a repository's tags for the web UI: per tag its digest,
//! distinct bytes, each platform's own digest and size, who pushed it, when
//! its image was created and last pulled. Reads through `browse`'s helpers.
//!
//! It must never write, nor parse JSON while it holds a database connection,
//! nor read more than `browse_limits` allows one page.

use super::browse::{descriptors, fetch, parse, unknown_repo, PlatformSize, TagView};
use super::browse_limits::{distinct_children, PageBudget, MAX_PLATFORMS_SHOWN};
use super::Registry;
use crate::db::{browse, repos, tag_history};
use crate::error::Result;
use crate::oci::RepoName;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What a tag row needs of one child manifest.
struct ChildSize {
    body_len: u64,
    blobs: Vec<(String, u64)>,
    config: Option<String>,
}

impl Registry {
    /// One page of `repo`'s tags (by name, `offset` in, at most `limit`)
    /// and how many tags it has. Bounded whatever the content
    /// (`browse_limits`): each distinct child manifest is read once per page,
    /// at most [`MAX_PLATFORMS_SHOWN`] per tag and
    /// `MAX_CHILD_BYTES_PER_PAGE` in all; every read is a short `db.read`
    /// that copies bytes out, parsed after the connection is released.
    pub fn tag_views(
        &self,
        repo: &RepoName,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<TagView>, u64)> {
        let (id, rows, total) = self.db.read(|c| {
            let id = repos::repo_id(c, repo.as_str())?.ok_or_else(|| unknown_repo(repo))?;
            let total = browse::tag_count(c, id)?;
            let mut rows = Vec::new();
            for t in browse::tag_rows(c, id, offset, limit)? {
                let by = tag_history::last_change(c, id, &t.name)?.map(|(actor, _)| actor);
                let pulled = browse::last_pulled(c, id, &t.digest)?;
                rows.push((t, by, pulled));
            }
            Ok((id, rows, total))
        })?;
        let mut budget = PageBudget::default();
        // Per distinct child: `None` not stored; absent: not read (budget).
        let mut children: HashMap<String, Option<ChildSize>> = HashMap::new();
        let mut out = Vec::new();
        for (t, pushed_by, last_pulled) in rows {
            let Some(top) = self.db.read(|c| fetch(c, id, &t.digest))? else {
                continue;
            };
            let top = parse(top);
            let is_index = top.is_index();
            let mut seen: HashSet<String> = HashSet::new();
            let mut size = top.body_len;
            let mut platforms = Vec::new();
            let mut more_platforms = 0;
            let mut config_digest = None;
            if is_index {
                let (list, _) = distinct_children(&top.json);
                let want: Vec<&str> = list
                    .iter()
                    .take(MAX_PLATFORMS_SHOWN)
                    .map(|(d, _)| d.as_str())
                    .filter(|d| !children.contains_key(*d))
                    .collect();
                self.read_children(id, &want, &mut budget, &mut children)?;
                for (i, (d, platform)) in list.into_iter().enumerate() {
                    let m = match children.get(&d) {
                        Some(Some(m)) if i < MAX_PLATFORMS_SHOWN => m,
                        Some(None) if i < MAX_PLATFORMS_SHOWN => continue,
                        _ => {
                            more_platforms += 1;
                            continue;
                        }
                    };
                    if config_digest.is_none() {
                        config_digest.clone_from(&m.config);
                    }
                    size += m.body_len;
                    let mut own = m.body_len;
                    for (b, s) in &m.blobs {
                        own += s;
                        if seen.insert(b.clone()) {
                            size += s;
                        }
                    }
                    platforms.push(PlatformSize {
                        platform,
                        digest: d,
                        size: own,
                    });
                }
            } else {
                config_digest = descriptors(&top.json, "config").pop().map(|c| c.0);
                for (b, _, s) in top.blobs() {
                    if seen.insert(b) {
                        size += s;
                    }
                }
            }
            // `created` of the config, within the page's config budget.
            let created = config_digest
                .as_deref()
                .and_then(|d| self.config_json(repo, d, &mut budget))
                .and_then(|cfg| {
                    cfg.get("created")
                        .and_then(Value::as_str)
                        .and_then(crate::cli::parse_rfc3339)
                });
            out.push(TagView {
                pushed_by,
                name: t.name,
                digest: t.digest,
                media_type: top.media_type,
                size,
                is_index,
                platforms,
                more_platforms,
                updated_at: t.updated_at,
                created,
                last_pulled,
            });
        }
        Ok((out, total))
    }

    /// Read the child manifests `want` (in one short `db.read`, while the
    /// page's child budget lasts) and parse them after it is released.
    fn read_children(
        &self,
        id: i64,
        want: &[&str],
        budget: &mut PageBudget,
        into: &mut HashMap<String, Option<ChildSize>>,
    ) -> Result<()> {
        let bodies = self.db.read(|c| {
            let mut got = Vec::new();
            for d in want {
                let m = fetch(c, id, d)?;
                if let Some((_, body)) = &m {
                    if !budget.take_child(body.len() as u64) {
                        break;
                    }
                }
                got.push((d.to_string(), m));
            }
            Ok(got)
        })?;
        for (d, m) in bodies {
            let child = m.map(|m| {
                let p = parse(m);
                ChildSize {
                    body_len: p.body_len,
                    config: descriptors(&p.json, "config").pop().map(|c| c.0),
                    blobs: p.blobs().into_iter().map(|(b, _, s)| (b, s)).collect(),
                }
            });
            into.insert(d, child);
        }
        Ok(())
    }
}
