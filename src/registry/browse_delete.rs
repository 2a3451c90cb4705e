//! What the web UI's multi-tag delete would free, from du's plan (the GC
//! plan with grace periods over and untagged manifests collected): for all
//! the tags together, and for each tag deleted alone, counted over the
//! repositories the asker may see.
//!
//! It must never write, nor name anything outside the repository it is asked
//! about, nor let the figures depend on a repository the asker may not see
//! (bytes a hidden repository shares would tell that it holds a layer).

use super::gc::PIN_STALE_SECS;
use super::Registry;
use crate::db::{graph, now};
use crate::error::{Code, Error, Result};
use crate::oci::RepoName;

/// The most tags whose own figure is computed (one GC plan each).
pub const MAX_TAGS_EACH: usize = 20;

/// What deleting some tags frees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFrees {
    /// All of them together.
    pub total: u64,
    /// Each tag deleted alone, in the order asked (empty beyond
    /// [`MAX_TAGS_EACH`] tags).
    pub each: Vec<(String, u64)>,
    /// The tags asked for that the repository does not have.
    pub missing: Vec<String>,
}

impl Registry {
    /// What deleting every tag of `tags` from `repo` would eventually free,
    /// over `repo` and the repositories `sees` accepts.
    pub fn tags_delete_frees(
        &self,
        repo: &RepoName,
        tags: &[String],
        sees: &dyn Fn(&str) -> bool,
    ) -> Result<DeleteFrees> {
        let t = now();
        let mut g = self
            .db
            .read_consistent(|tx| graph::load_graph(tx, t - PIN_STALE_SECS))?;
        let shown: std::collections::HashSet<i64> = g
            .repos
            .iter()
            .filter(|(_, n)| n == repo.as_str() || sees(n))
            .map(|(i, _)| *i)
            .collect();
        if shown.len() < g.repos.len() {
            g.repos.retain(|(i, _)| shown.contains(i));
            g.manifests.retain(|m| shown.contains(&m.repo_id));
            g.tags.retain(|x| shown.contains(&x.repo_id));
            g.refs.retain(|x| shown.contains(&x.repo_id));
            g.links.retain(|x| shown.contains(&x.repo_id));
            g.uploads.retain(|x| shown.contains(&x.repo_id));
        }
        let id = g
            .repos
            .iter()
            .find(|(_, n)| n == repo.as_str())
            .map(|(i, _)| *i)
            .ok_or_else(|| {
                Error::client(Code::NameUnknown, format!("repository {repo} is not known"))
            })?;
        let missing = tags
            .iter()
            .filter(|tag| !g.tags.iter().any(|x| x.repo_id == id && &x.name == *tag))
            .cloned()
            .collect();
        let eventual = super::gc_usage::eventual();
        let freed = |without: &[String]| {
            let mut g = g.clone();
            g.tags
                .retain(|x| !(x.repo_id == id && without.contains(&x.name)));
            super::gc_plan::plan(&g, &eventual, t, false)
                .report
                .freed_bytes
        };
        let before = freed(&[]);
        let total = freed(tags).saturating_sub(before);
        let each = if tags.len() <= MAX_TAGS_EACH {
            tags.iter()
                .map(|tag| {
                    let alone = freed(std::slice::from_ref(tag)).saturating_sub(before);
                    (tag.clone(), alone)
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(DeleteFrees {
            total,
            each,
            missing,
        })
    }
}
