//! cli::tag_history: argv of `soute tag history REPO:TAG [--json]` and
//! `soute tag rollback REPO:TAG DIGEST` to a [`TagHistoryAction`], with the
//! repository, tag and digest parsed strictly here. The `tag` command's row
//! in the table is `cli/tag.rs`'s (`protect|unprotect|protected` are parsed
//! there; `cli::parse` picks this parser for `history` and `rollback`).
//!
//! It must never do I/O nor open a registry.

use super::spec::{usage, Args, UsageError};
use crate::oci::{Digest, RepoName, Tag};

const USAGE: &str = "soute tag history REPO:TAG [--json] | rollback REPO:TAG DIGEST";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagHistoryAction {
    History {
        repo: RepoName,
        tag: Tag,
    },
    Rollback {
        repo: RepoName,
        tag: Tag,
        digest: Digest,
    },
}

/// `REPO:TAG`: split at the last `:` (a repository name holds no `:`).
pub fn parse_repo_tag(s: &str) -> Result<(RepoName, Tag), UsageError> {
    let (repo, tag) = s
        .rsplit_once(':')
        .ok_or_else(|| usage(format!("expected REPO:TAG, got {s:?}")))?;
    let repo = RepoName::parse(repo).map_err(|e| usage(format!("{s:?}: {e}")))?;
    let tag = Tag::parse(tag).map_err(|e| usage(format!("{s:?}: {e}")))?;
    Ok((repo, tag))
}

pub fn tag_history_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<TagHistoryAction, UsageError> {
    let action = ops.next();
    let mut repo_tag = || {
        let s = ops
            .next()
            .ok_or_else(|| usage(format!("REPO:TAG is required: {USAGE}")))?;
        parse_repo_tag(&s)
    };
    let parsed = match action.as_deref() {
        Some("history") => {
            let (repo, tag) = repo_tag()?;
            TagHistoryAction::History { repo, tag }
        }
        Some("rollback") => {
            let (repo, tag) = repo_tag()?;
            let digest = ops
                .next()
                .ok_or_else(|| usage(format!("the DIGEST to roll back to is required: {USAGE}")))?;
            let digest = Digest::parse(&digest).map_err(|e| usage(e.to_string()))?;
            if args.has("--json") {
                return Err(usage("--json goes with `soute tag history`"));
            }
            TagHistoryAction::Rollback { repo, tag, digest }
        }
        Some(other) => return Err(usage(format!("unknown tag action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    };
    if let Some(extra) = ops.next() {
        return Err(usage(format!("unexpected argument {extra:?}: {USAGE}")));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tag_splits_at_the_last_colon() {
        let (r, t) = parse_repo_tag("lab/app:v1").expect("ok");
        assert_eq!((r.as_str(), t.as_str()), ("lab/app", "v1"));
        assert!(parse_repo_tag("lab/app").is_err());
        assert!(parse_repo_tag("Lab/app:v1").is_err(), "bad repository name");
        assert!(parse_repo_tag("lab/app:").is_err(), "empty tag");
    }
}
