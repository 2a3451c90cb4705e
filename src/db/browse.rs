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
        "SELECT r.name, (SELECT count(*) FROM tag t WHERE t.repo_id = r.id), m.n, m.last,
                (SELECT upstream FROM cached_repo c WHERE c.repo_id = r.id)
         FROM repo r
         JOIN (SELECT repo_id, count(*) AS n, max(created_at) AS last FROM manifest GROUP BY repo_id) m
           ON m.repo_id = r.id
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

/// Space of one repository, as `soute du` counts it (`registry::gc_plan::usage`):
/// its blobs are those it links or its manifests reference; a blob is unique
/// when no other repository has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoSpace {
    pub logical_bytes: u64,
    pub unique_bytes: u64,
    pub shared_bytes: u64,
}

/// A value that changes when the figures of [`repo_space`] may have: counts
/// and newest rows of the tables it reads (cheap index reads).
pub fn space_key(conn: &Connection) -> Result<[i64; 5]> {
    Ok(conn.query_row(
        "SELECT (SELECT count(*) FROM manifest), (SELECT coalesce(max(rowid), 0) FROM manifest),
                (SELECT count(*) FROM repo_blob), (SELECT coalesce(max(created_at), 0) FROM repo_blob),
                (SELECT count(*) FROM blob)",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
    )?)
}

/// [`RepoSpace`] of every repository, by name, in two aggregate queries
/// (the repositories page cannot afford du's whole GC plan).
pub fn repo_space(conn: &Connection) -> Result<std::collections::HashMap<String, RepoSpace>> {
    let mut out: std::collections::HashMap<String, RepoSpace> = std::collections::HashMap::new();
    let blobs = super::collect(
        conn,
        "WITH rb AS (
             SELECT repo_id, digest FROM repo_blob
             UNION
             SELECT repo_id, child FROM manifest_ref WHERE kind = 'blob'
         ),
         sized AS (SELECT rb.repo_id, rb.digest, b.size FROM rb JOIN blob b ON b.digest = rb.digest),
         users AS (SELECT digest, count(*) AS n FROM sized GROUP BY digest)
         SELECT r.name, sum(s.size), sum(CASE WHEN u.n = 1 THEN s.size ELSE 0 END)
         FROM sized s JOIN users u ON u.digest = s.digest JOIN repo r ON r.id = s.repo_id
         GROUP BY s.repo_id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
    )?;
    for (name, all, unique) in blobs {
        out.insert(
            name,
            RepoSpace {
                logical_bytes: all,
                unique_bytes: unique,
                shared_bytes: all - unique,
            },
        );
    }
    let manifests = super::collect(
        conn,
        "SELECT r.name, sum(m.size) FROM manifest m JOIN repo r ON r.id = m.repo_id GROUP BY m.repo_id",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)),
    )?;
    for (name, bytes) in manifests {
        let s = out.entry(name).or_default();
        s.logical_bytes += bytes;
        s.unique_bytes += bytes;
    }
    Ok(out)
}
