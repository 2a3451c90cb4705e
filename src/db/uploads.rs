//! Queries over upload sessions: their repository, acknowledged length and algorithm.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never record a length before its bytes are fsynced (the registry
//! orders that) nor touch upload files.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub struct UploadRow {
    pub repo_id: i64,
    pub repo: String,
    pub length: u64,
    pub algorithm: String,
}

pub fn create_upload(conn: &Connection, id: &str, repo_id: i64, algorithm: &str) -> Result<()> {
    let t = now();
    conn.prepare_cached(
        "INSERT INTO upload (id, repo_id, length, algorithm, created_at, updated_at) VALUES (?1, ?2, 0, ?3, ?4, ?4)",
    )?
    .execute(params![id, repo_id, algorithm, t])?;
    Ok(())
}

pub fn upload(conn: &Connection, id: &str) -> Result<Option<UploadRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.repo_id, r.name, u.length, u.algorithm FROM upload u JOIN repo r ON r.id = u.repo_id WHERE u.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(UploadRow { repo_id: r.get(0)?, repo: r.get(1)?, length: r.get::<_, i64>(2)? as u64, algorithm: r.get(3)? })
        })
        .optional()?)
}

pub fn set_upload_length(conn: &Connection, id: &str, length: u64) -> Result<()> {
    conn.prepare_cached("UPDATE upload SET length = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, length as i64, now()])?;
    Ok(())
}

pub fn delete_upload(conn: &Connection, id: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM upload WHERE id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}

/// Ids of every upload session (for start-up cleanup of orphan files).
pub fn upload_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM upload")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// How many upload sessions are open (the `--max-upload-sessions` cap).
pub fn count_uploads(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM upload")?
        .query_row([], |r| r.get(0))?;
    Ok(n as u64)
}
