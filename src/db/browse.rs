//! Read-only queries the web UI's pages are made of: one row per repository
//! (tag count, last push, cached from which upstream), one page of a
//! repository's tags with their digests, and how many manifests reference a
//! blob (the "shared with" of a layer).
//!
//! They must never write, nor read more rows than the page asks for (the tag
//! page is bounded by `limit`).

use crate::error::Result;
use rusqlite::{params, Connection};

/// One repository of the repositories page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub name: String,
    pub tags: u64,
    pub manifests: u64,
    /// When a manifest was last stored (seconds since the epoch).
    pub last_push: Option<i64>,
    /// The upstream it is cached from.
    pub upstream: Option<String>,
}

/// Every repository with at least one manifest, by name.
pub fn repo_rows(conn: &Connection) -> Result<Vec<RepoRow>> {
    super::collect(
        conn,
        "SELECT r.name,
                (SELECT count(*) FROM tag t WHERE t.repo_id = r.id),
                (SELECT count(*) FROM manifest m WHERE m.repo_id = r.id),
                (SELECT max(created_at) FROM manifest m WHERE m.repo_id = r.id),
                (SELECT upstream FROM cached_repo c WHERE c.repo_id = r.id)
         FROM repo r
         WHERE EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = r.id)
         ORDER BY r.name",
        |r| {
            Ok(RepoRow {
                name: r.get(0)?,
                tags: r.get::<_, i64>(1)? as u64,
                manifests: r.get::<_, i64>(2)? as u64,
                last_push: r.get(3)?,
                upstream: r.get(4)?,
            })
        },
    )
}

/// One tag of a repository page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub name: String,
    pub digest: String,
    pub updated_at: i64,
}

/// Tags of a repository by name, `offset` rows in, at most `limit`.
pub fn tag_rows(conn: &Connection, repo_id: i64, offset: u64, limit: u64) -> Result<Vec<TagRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, digest, updated_at FROM tag WHERE repo_id = ?1
         ORDER BY name LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![repo_id, limit as i64, offset as i64], |r| {
        Ok(TagRow {
            name: r.get(0)?,
            digest: r.get(1)?,
            updated_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many tags a repository has.
pub fn tag_count(conn: &Connection, repo_id: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM tag WHERE repo_id = ?1")?
        .query_row([repo_id], |r| r.get(0))?;
    Ok(n as u64)
}

/// The tags pointing at `digest` in a repository.
pub fn tags_of(conn: &Connection, repo_id: i64, digest: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM tag WHERE repo_id = ?1 AND digest = ?2 ORDER BY name")?;
    let rows = stmt.query_map(params![repo_id, digest], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many manifests, in every repository, reference blob `digest`.
pub fn blob_users(conn: &Connection, digest: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM manifest_ref WHERE child = ?1 AND kind = 'blob'")?
        .query_row([digest], |r| r.get(0))?;
    Ok(n as u64)
}

/// When a manifest was stored.
pub fn manifest_created(conn: &Connection, repo_id: i64, digest: &str) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT created_at FROM manifest WHERE repo_id = ?1 AND digest = ?2")?
        .query_row(params![repo_id, digest], |r| r.get(0))
        .optional()?)
}
