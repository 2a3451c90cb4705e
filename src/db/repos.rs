//! Queries over repositories: the id of a name, creating one, the catalog page.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never delete a repository row that holds anything (only GC
//! calls `delete_empty_repos`, under the write lock) or touch blob files.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub fn repo_id(conn: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM repo WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub fn ensure_repo(conn: &Connection, name: &str) -> Result<i64> {
    if let Some(id) = repo_id(conn, name)? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO repo (name, created_at) VALUES (?1, ?2)")?
        .execute(params![name, now()])?;
    Ok(conn.last_insert_rowid())
}

/// Repository names that hold at least one manifest, sorted, after `last`.
pub fn catalog(conn: &Connection, last: &str, limit: usize) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM repo r WHERE name > ?1 AND EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = r.id)
         ORDER BY name LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![last, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// Delete repository rows with no manifest, no blob link and no upload
/// session (names a client made up and never used). Returns how many.
pub fn delete_empty_repos(conn: &Connection) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM repo WHERE NOT EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = repo.id)
               AND NOT EXISTS (SELECT 1 FROM repo_blob l WHERE l.repo_id = repo.id)
               AND NOT EXISTS (SELECT 1 FROM upload u WHERE u.repo_id = repo.id)",
        )?
        .execute([])?)
}
