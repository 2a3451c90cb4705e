//! Protected (immutable) tags: rules `PATTERN:TAG_GLOB` (`**:v*`) under which
//! a tag, once it exists, may not be moved to another digest nor deleted:
//! not by a manifest PUT, a tag DELETE, a manifest DELETE by digest, nor
//! retention. Re-putting the digest a tag already names is allowed.
//! Administrators do not bypass it: `soute tag unprotect` lifts a rule
//! explicitly. The checks run inside the caller's write transaction, so a
//! rule added by another process applies to the next write.
//!
//! It must never write tags itself nor decide access (who may push is
//! `auth::access`'s; this only refuses what no one may do while a rule holds).

use super::Registry;
use crate::auth::pattern::Pattern;
use crate::db::policies;
use crate::error::{Code, Error, Result};
use rusqlite::Connection;
use serde::Serialize;
use std::fmt;

/// The longest tag glob accepted (tags are at most 128 characters).
pub const MAX_TAG_GLOB_LEN: usize = 128;

/// A protection rule: repositories `pattern` matches, tags `tag_glob` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protection {
    pub pattern: String,
    pub tag_glob: String,
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pattern, self.tag_glob)
    }
}

impl Protection {
    /// Parses `PATTERN:TAG_GLOB`: a repository glob (`auth::pattern`) and a
    /// tag glob of tag characters and `*` (any run of them).
    pub fn parse(s: &str) -> std::result::Result<Protection, String> {
        let (pattern, glob) = s.rsplit_once(':').ok_or_else(|| {
            format!("{s:?}: write PATTERN:TAG_GLOB, e.g. '**:v*' or 'team/app:release-*'")
        })?;
        let pattern = Pattern::parse(pattern).map_err(|e| e.to_string())?;
        parse_tag_glob(glob)?;
        Ok(Protection {
            pattern: pattern.as_str().to_string(),
            tag_glob: glob.to_string(),
        })
    }

    /// Whether it covers `tag` of `repo`.
    pub fn covers(&self, repo: &str, tag: &str) -> bool {
        Pattern::parse(&self.pattern).is_ok_and(|p| p.matches(repo))
            && tag_glob_matches(self.tag_glob.as_bytes(), tag.as_bytes())
    }
}

fn parse_tag_glob(g: &str) -> std::result::Result<(), String> {
    if g.is_empty() || g.len() > MAX_TAG_GLOB_LEN {
        return Err(format!(
            "tag glob {g:?}: 1 to {MAX_TAG_GLOB_LEN} characters"
        ));
    }
    if !g
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'*'))
    {
        return Err(format!(
            "tag glob {g:?}: only A-Z a-z 0-9 _ . - and the wildcard * are allowed"
        ));
    }
    Ok(())
}

/// `*` matches any run of characters; everything else is literal. One
/// backtracking point: O(glob * tag), no allocation.
fn tag_glob_matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            pi += 1;
            star = Some((pi, si));
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The rules, read in the caller's transaction.
fn rules(conn: &Connection) -> Result<Vec<Protection>> {
    Ok(policies::protections(conn)?
        .into_iter()
        .map(|(pattern, tag_glob)| Protection { pattern, tag_glob })
        .collect())
}

/// The first rule (in stored order) that covers `repo:tag`.
pub(crate) fn protecting(conn: &Connection, repo: &str, tag: &str) -> Result<Option<Protection>> {
    Ok(rules(conn)?.into_iter().find(|r| r.covers(repo, tag)))
}

fn refused(repo: &str, tag: &str, rule: &Protection, what: &str) -> Error {
    Error::client(
        Code::Denied,
        format!(
            "tag {tag} of {repo} is protected by rule {rule}: {what} is refused \
             (an administrator lifts it with `soute tag unprotect '{rule}'`)"
        ),
    )
}

/// Refuses moving `tag` of `repo` to `new_digest` when a rule protects it
/// and it names another digest now. A tag that does not exist yet, or that
/// already names `new_digest`, may be put. For every path that moves a tag
/// (manifest PUT, a rollback); run it in the transaction that moves it.
pub fn check_tag_move(
    conn: &Connection,
    repo: &str,
    repo_id: i64,
    tag: &str,
    new_digest: &str,
) -> Result<()> {
    let Some(current) = crate::db::tags::resolve_tag(conn, repo_id, tag)? else {
        return Ok(());
    };
    if current == new_digest {
        return Ok(());
    }
    match protecting(conn, repo, tag)? {
        Some(rule) => Err(refused(
            repo,
            tag,
            &rule,
            &format!("moving it from {current} to {new_digest}"),
        )),
        None => Ok(()),
    }
}

/// Refuses deleting `tag` of `repo` when a rule protects it.
pub fn check_tag_delete(conn: &Connection, repo: &str, tag: &str) -> Result<()> {
    match protecting(conn, repo, tag)? {
        Some(rule) => Err(refused(repo, tag, &rule, "deleting it")),
        None => Ok(()),
    }
}

/// Refuses deleting manifest `digest` of `repo` while a protected tag
/// reaches it: names it, or names an index that lists it (at any depth).
/// Deleting a child would leave the protected tag pointing at an image that
/// no longer pulls, which is a change as real as moving it.
pub fn check_manifest_delete(
    conn: &Connection,
    repo: &str,
    repo_id: i64,
    digest: &str,
) -> Result<()> {
    check_reachable(conn, repo, repo_id, digest, "manifest")
}

/// Refuses unlinking blob `digest` from `repo` (`DELETE /v2/<name>/blobs/<digest>`)
/// while a protected tag reaches it as a config or layer: the tag would
/// stay, but its image would no longer pull from this repository.
pub fn check_blob_delete(conn: &Connection, repo: &str, repo_id: i64, digest: &str) -> Result<()> {
    check_reachable(conn, repo, repo_id, digest, "blob")
}

fn check_reachable(
    conn: &Connection,
    repo: &str,
    repo_id: i64,
    digest: &str,
    what: &str,
) -> Result<()> {
    let rules = rules(conn)?;
    if rules.is_empty() {
        return Ok(());
    }
    for (tag, tagged) in policies::tags_reaching(conn, repo_id, digest)? {
        if let Some(rule) = rules.iter().find(|r| r.covers(repo, &tag)) {
            let how = if tagged == digest {
                "which it names".to_string()
            } else {
                format!("which its image {tagged} contains")
            };
            return Err(refused(
                repo,
                &tag,
                rule,
                &format!("deleting {what} {digest}, {how},"),
            ));
        }
    }
    Ok(())
}

impl Registry {
    /// Adds a protection; false when it existed.
    pub fn protect_tags(&self, rule: &Protection) -> Result<bool> {
        self.db
            .write(|tx| policies::protect(tx, &rule.pattern, &rule.tag_glob))
    }

    /// Removes a protection; false when there was none.
    pub fn unprotect_tags(&self, rule: &Protection) -> Result<bool> {
        self.db
            .write(|tx| policies::unprotect(tx, &rule.pattern, &rule.tag_glob))
    }

    pub fn tag_protections(&self) -> Result<Vec<Protection>> {
        self.db.read(rules)
    }

    /// Refuses, as the delete itself would ([`check_tag_delete`]), when a
    /// rule protects one of `tags` of `repo` (the UI's confirmation asks
    /// before it shows anything).
    pub fn check_tags_deletable(&self, repo: &str, tags: &[&str]) -> Result<()> {
        self.db
            .read(|c| tags.iter().try_for_each(|t| check_tag_delete(c, repo, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_globs() {
        let cases: &[(&str, &str, bool)] = &[
            ("v*", "v1.0", true),
            ("v*", "v", true),
            ("v*", "latest", false),
            ("*", "anything", true),
            ("release-*-final", "release-2.1-final", true),
            ("release-*-final", "release-2.1-rc", false),
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("*rc*", "1.0-rc3", true),
            ("V*", "v1", false),
        ];
        for (glob, tag, want) in cases {
            assert_eq!(
                tag_glob_matches(glob.as_bytes(), tag.as_bytes()),
                *want,
                "{glob} vs {tag}"
            );
        }
    }

    #[test]
    fn parsing_rules() {
        let p = Protection::parse("**:v*").expect("parse");
        assert_eq!((p.pattern.as_str(), p.tag_glob.as_str()), ("**", "v*"));
        assert!(p.covers("team/app", "v2"));
        assert!(!p.covers("team/app", "latest"));
        let p = Protection::parse("team/*:latest").expect("parse");
        assert!(p.covers("team/app", "latest"));
        assert!(!p.covers("team/x/app", "latest"));
        for bad in [
            "nocolon",
            "**:",
            ":v*",
            "**:v/x",
            "Team:v*",
            &format!("**:{}", "a".repeat(129)),
        ] {
            assert!(Protection::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
