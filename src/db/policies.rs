//! Queries over the policy tables of migration 0011: retention rules
//! (`retention_rule`), protected tags (`tag_protection`) and quotas (`quota`),
//! plus the reads they need: tag push times and the committed bytes of
//! repositories. Free functions taking a connection or transaction.
//!
//! They must never decide anything (which rule wins, whether a push fits:
//! `registry::{retention, protect, quota}` do) nor touch blob files.

use super::{collect, now};
use crate::error::Result;
use rusqlite::{params, Connection};

/// A stored retention rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRow {
    pub pattern: String,
    pub keep_last: Option<u32>,
    pub keep_days: Option<u32>,
    pub keep_tags: Option<String>,
}

/// Inserts or replaces the rule of `pattern`. True when it is new.
pub fn set_retention(conn: &Connection, r: &RetentionRow) -> Result<bool> {
    let existed = delete_retention(conn, &r.pattern)?;
    conn.prepare_cached(
        "INSERT INTO retention_rule (pattern, keep_last, keep_days, keep_tags, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        r.pattern,
        r.keep_last,
        r.keep_days,
        r.keep_tags,
        now()
    ])?;
    Ok(!existed)
}

pub fn delete_retention(conn: &Connection, pattern: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM retention_rule WHERE pattern = ?1")?
        .execute([pattern])?
        > 0)
}

pub fn retention_rules(conn: &Connection) -> Result<Vec<RetentionRow>> {
    collect(
        conn,
        "SELECT pattern, keep_last, keep_days, keep_tags FROM retention_rule ORDER BY pattern",
        |r| {
            Ok(RetentionRow {
                pattern: r.get(0)?,
                keep_last: r.get(1)?,
                keep_days: r.get(2)?,
                keep_tags: r.get(3)?,
            })
        },
    )
}

/// A tag with the time it was last pushed or moved (`tag.updated_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTime {
    pub repo_id: i64,
    pub name: String,
    pub digest: String,
    pub updated_at: i64,
}

/// Every tag with its push time, by repository.
pub fn tag_times(conn: &Connection) -> Result<Vec<TagTime>> {
    collect(
        conn,
        "SELECT repo_id, name, digest, updated_at FROM tag ORDER BY repo_id, name",
        |r| {
            Ok(TagTime {
                repo_id: r.get(0)?,
                name: r.get(1)?,
                digest: r.get(2)?,
                updated_at: r.get(3)?,
            })
        },
    )
}

/// Adds a protection (repository pattern, tag glob). True when it is new.
pub fn protect(conn: &Connection, pattern: &str, tag_glob: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO tag_protection (pattern, tag_glob, created_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![pattern, tag_glob, now()])?
        > 0)
}

pub fn unprotect(conn: &Connection, pattern: &str, tag_glob: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM tag_protection WHERE pattern = ?1 AND tag_glob = ?2")?
        .execute(params![pattern, tag_glob])?
        > 0)
}

/// Every protection as (pattern, tag glob), sorted.
pub fn protections(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pattern, tag_glob FROM tag_protection ORDER BY pattern, tag_glob",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The tags of `repo_id` that point at `digest`.
pub fn tags_of(conn: &Connection, repo_id: i64, digest: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM tag WHERE repo_id = ?1 AND digest = ?2 ORDER BY name")?;
    let rows = stmt.query_map(params![repo_id, digest], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// Tags of `repo_id` from which `digest` (a manifest or a blob) is reachable:
/// tags naming it, naming an index that lists it, or a manifest that
/// references it as config or layer, at any depth, as `(tag, tagged digest)`.
/// `UNION` (not `UNION ALL`) stops at digests already seen, so a cycle in a
/// crafted graph ends; the walk visits each manifest of the repository once
/// at most.
pub fn tags_reaching(
    conn: &Connection,
    repo_id: i64,
    digest: &str,
) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE up(d) AS (
             SELECT ?2
             UNION
             SELECT r.digest FROM manifest_ref r JOIN up ON r.child = up.d WHERE r.repo_id = ?1
         )
         SELECT t.name, t.digest FROM tag t JOIN up ON t.digest = up.d
         WHERE t.repo_id = ?1 ORDER BY t.name",
    )?;
    let rows = stmt.query_map(params![repo_id, digest], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<(String, String)>>>()?)
}

/// Every repository as `(id, name)`.
pub fn repo_names(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM repo")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<(i64, String)>>>()?)
}

/// Blobs linked into `repo_id` that none of its manifests references, with
/// their sizes.
pub fn unreferenced_links(conn: &Connection, repo_id: i64) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rb.digest, b.size FROM repo_blob rb JOIN blob b ON b.digest = rb.digest
         WHERE rb.repo_id = ?1 AND NOT EXISTS (
             SELECT 1 FROM manifest_ref mr
             WHERE mr.child = rb.digest AND mr.kind = 'blob' AND mr.repo_id = rb.repo_id)",
    )?;
    let rows = stmt.query_map(params![repo_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<(String, u64)>>>()?)
}

/// Acknowledged bytes of the open upload sessions of `repo_id`, except the
/// session `except`.
pub fn open_upload_bytes(conn: &Connection, repo_id: i64, except: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(length), 0) FROM upload WHERE repo_id = ?1 AND id != ?2",
        )?
        .query_row(params![repo_id, except], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// A stored quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub pattern: String,
    pub limit_bytes: u64,
    pub used_bytes: u64,
}

/// Inserts or replaces the quota of `pattern` (its usage given). True when new.
pub fn set_quota(conn: &Connection, q: &QuotaRow) -> Result<bool> {
    let existed = delete_quota(conn, &q.pattern)?;
    conn.prepare_cached(
        "INSERT INTO quota (pattern, limit_bytes, used_bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        q.pattern,
        q.limit_bytes as i64,
        q.used_bytes as i64,
        now()
    ])?;
    Ok(!existed)
}

pub fn delete_quota(conn: &Connection, pattern: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM quota WHERE pattern = ?1")?
        .execute([pattern])?
        > 0)
}

pub fn quotas(conn: &Connection) -> Result<Vec<QuotaRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT pattern, limit_bytes, used_bytes FROM quota ORDER BY pattern")?;
    let rows = stmt.query_map([], |r| {
        Ok(QuotaRow {
            pattern: r.get(0)?,
            limit_bytes: r.get::<_, i64>(1)? as u64,
            used_bytes: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn set_quota_usage(conn: &Connection, pattern: &str, used: u64) -> Result<()> {
    conn.prepare_cached("UPDATE quota SET used_bytes = ?2 WHERE pattern = ?1")?
        .execute(params![pattern, used as i64])?;
    Ok(())
}

/// Names of the repositories whose manifests reference blob `digest`.
pub fn repos_referencing_blob(conn: &Connection, digest: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT r.name FROM manifest_ref mr JOIN repo r ON r.id = mr.repo_id
         WHERE mr.child = ?1 AND mr.kind = 'blob'",
    )?;
    let rows = stmt.query_map([digest], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// Every (repository name, blob digest, blob size) a manifest references
/// (blobs stored only: a cached manifest may reference blobs not fetched yet).
pub fn referenced_blobs(conn: &Connection) -> Result<Vec<(String, String, u64)>> {
    collect(
        conn,
        "SELECT DISTINCT r.name, mr.child, b.size FROM manifest_ref mr
         JOIN repo r ON r.id = mr.repo_id JOIN blob b ON b.digest = mr.child
         WHERE mr.kind = 'blob'",
        |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
    )
}

/// Every (repository name, bytes of its manifests).
pub fn manifest_bytes(conn: &Connection) -> Result<Vec<(String, u64)>> {
    collect(
        conn,
        "SELECT r.name, SUM(m.size) FROM manifest m JOIN repo r ON r.id = m.repo_id GROUP BY r.name",
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
    )
}
