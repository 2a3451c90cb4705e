//! Integrity checks for `verify`: SQLite's own checks, manifest bodies to re-hash,
//! references and tags whose target is missing, and where a blob is used.
//!
//! It must never repair anything: it returns rows, and the registry decides.

use super::collect;
use crate::error::Result;
use rusqlite::Connection;

/// `PRAGMA integrity_check` lines other than `ok`.
pub fn integrity_problems(conn: &Connection) -> Result<Vec<String>> {
    let lines: Vec<String> = collect(conn, "PRAGMA integrity_check", |r| r.get(0))?;
    Ok(lines.into_iter().filter(|l| l != "ok").collect())
}

/// `PRAGMA foreign_key_check`, one line per violation.
pub fn foreign_key_problems(conn: &Connection) -> Result<Vec<String>> {
    collect(conn, "PRAGMA foreign_key_check", |r| {
        let table: String = r.get(0)?;
        let rowid: Option<i64> = r.get(1)?;
        let parent: String = r.get(2)?;
        Ok(format!(
            "row {} of {table} references a missing {parent} row",
            rowid.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
        ))
    })
}

/// A manifest body with its identity, for re-hashing.
pub struct ManifestBody {
    pub repo: String,
    pub digest: String,
    pub body: Vec<u8>,
}

pub fn manifest_bodies(conn: &Connection) -> Result<Vec<ManifestBody>> {
    collect(
        conn,
        "SELECT r.name, m.digest, m.body FROM manifest m JOIN repo r ON r.id = m.repo_id
         ORDER BY r.name, m.digest",
        |r| {
            Ok(ManifestBody {
                repo: r.get(0)?,
                digest: r.get(1)?,
                body: r.get(2)?,
            })
        },
    )
}

/// The condition of a `manifest_ref mr` whose target is missing.
const MISSING_TARGET: &str = "((mr.kind = 'blob' AND NOT EXISTS (
                    SELECT 1 FROM repo_blob rb JOIN blob b ON b.digest = rb.digest
                    WHERE rb.repo_id = mr.repo_id AND rb.digest = mr.child))
            OR (mr.kind = 'manifest' AND NOT EXISTS (
                    SELECT 1 FROM manifest m WHERE m.repo_id = mr.repo_id AND m.digest = mr.child)))";

/// References of cached manifests whose target no client pulled yet (a
/// cache fetches only what is asked for: not a problem).
pub fn unpulled_cached_refs(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM manifest_ref mr
             WHERE EXISTS (SELECT 1 FROM cached_repo c WHERE c.repo_id = mr.repo_id)
               AND {MISSING_TARGET}"
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// References whose target is missing, outside cached repositories (whose
/// references may point at content no client pulled yet): (repo, manifest,
/// child, kind).
pub fn dangling_refs(conn: &Connection) -> Result<Vec<(String, String, String, String)>> {
    collect(
        conn,
        &format!(
            "SELECT r.name, mr.digest, mr.child, mr.kind FROM manifest_ref mr JOIN repo r ON r.id = mr.repo_id
             WHERE NOT EXISTS (SELECT 1 FROM cached_repo c WHERE c.repo_id = mr.repo_id)
               AND {MISSING_TARGET}
             ORDER BY r.name, mr.digest, mr.child"
        ),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Tags whose manifest row is missing: (repo, tag, digest).
pub fn dangling_tags(conn: &Connection) -> Result<Vec<(String, String, String)>> {
    collect(
        conn,
        "SELECT r.name, t.name, t.digest FROM tag t JOIN repo r ON r.id = t.repo_id
         WHERE NOT EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = t.repo_id AND m.digest = t.digest)",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Where a blob is used: `repo@manifest` (and its tags), for advice on repairs.
pub fn blob_users(conn: &Connection, digest: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name, mr.digest,
                (SELECT group_concat(t.name, ',') FROM tag t WHERE t.repo_id = mr.repo_id AND t.digest = mr.digest)
         FROM manifest_ref mr JOIN repo r ON r.id = mr.repo_id
         WHERE mr.child = ?1 AND mr.kind = 'blob' ORDER BY r.name, mr.digest",
    )?;
    let rows = stmt.query_map([digest], |r| {
        let (repo, manifest, tags): (String, String, Option<String>) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(match tags {
            Some(t) => format!("{repo}@{manifest} (tags {t})"),
            None => format!("{repo}@{manifest}"),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
