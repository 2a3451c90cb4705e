//! Queries over the blob index and repository links (`blob`, `repo_blob`).
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never insert a blob row before its file is committed (the
//! registry orders that) nor touch blob files themselves.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// The size of a blob that exists in the store (in any repository).
pub fn blob_size(conn: &Connection, digest: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached("SELECT size FROM blob WHERE digest = ?1")?
        .query_row([digest], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|s| s as u64))
}

/// The size of a blob that `repo_id` may serve.
pub fn repo_blob_size(conn: &Connection, repo_id: i64, digest: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached(
            "SELECT b.size FROM repo_blob rb JOIN blob b ON b.digest = rb.digest
             WHERE rb.repo_id = ?1 AND rb.digest = ?2",
        )?
        .query_row(params![repo_id, digest], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|s| s as u64))
}

pub fn insert_blob(conn: &Connection, digest: &str, size: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO blob (digest, size, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![digest, size as i64, now()])?;
    Ok(())
}

/// Link a blob into a repository; linking again refreshes the link's time, so
/// a blob uploaded or mounted again waits the full link grace period for its
/// manifest before GC may drop the link.
pub fn link_blob(conn: &Connection, repo_id: i64, digest: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO repo_blob (repo_id, digest, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = excluded.created_at",
    )?
    .execute(params![repo_id, digest, now()])?;
    Ok(())
}

pub fn unlink_blob(conn: &Connection, repo_id: i64, digest: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM repo_blob WHERE repo_id = ?1 AND digest = ?2")?
        .execute(params![repo_id, digest])?;
    Ok(n > 0)
}

/// Whether any blob row exists.
pub fn any_blob(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM blob)")?
        .query_row([], |r| r.get(0))?)
}
