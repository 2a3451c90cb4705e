//! Backups: registration, heartbeats and blob pins of a running backup, and
//! the clean-up of a `VACUUM INTO` snapshot into a registry of its own.
//!
//! It must never copy blob files nor pin anything outside the snapshot's transaction.

use super::collect;
use super::now;
use crate::error::{Error, Result};
use rusqlite::{params, Connection};
use std::path::Path;

/// Forget backups whose heartbeat is older than `before` (their pins go too).
pub fn delete_stale_backups(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM backup WHERE heartbeat_at < ?1")?
        .execute([before])?)
}

/// Register a backup and pin every blob that exists now.
pub fn start_backup(conn: &Connection, id: &str) -> Result<()> {
    let t = now();
    conn.execute(
        "INSERT INTO backup (id, started_at, heartbeat_at) VALUES (?1, ?2, ?2)",
        params![id, t],
    )?;
    conn.execute(
        "INSERT INTO backup_pin (backup_id, digest) SELECT ?1, digest FROM blob",
        [id],
    )?;
    Ok(())
}

pub fn heartbeat_backup(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(
        "UPDATE backup SET heartbeat_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(())
}

pub fn end_backup(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM backup WHERE id = ?1", [id])?;
    Ok(())
}

/// Set `key` in the settings of the snapshot at `path` (a backup that copied
/// an S3 store's objects keeps them in its own `blobs/`).
pub fn set_snapshot_setting(path: &Path, key: &str, value: &str) -> Result<()> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    super::settings::set_setting(&conn, key, value)?;
    conn.close().map_err(|(_, e)| Error::from(e))?;
    Ok(())
}

/// Turn a fresh `VACUUM INTO` copy at `path` into a registry of its own: no
/// upload sessions (their bytes are not copied), no backups, no trash. Returns
/// its blobs (digest, size), the files the copy needs.
pub fn prepare_snapshot(path: &Path) -> Result<Vec<(String, u64)>> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;")?;
    let tx = conn.transaction()?;
    tx.execute_batch(
        "DELETE FROM upload; DELETE FROM backup_pin; DELETE FROM backup; DELETE FROM blob_trash; \
         DELETE FROM blob_publishing; DELETE FROM blob_deleting;",
    )?;
    tx.commit()?;
    let blobs = collect(
        &conn,
        "SELECT digest, size FROM blob ORDER BY digest",
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
    )?;
    let mode: String = conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::internal(format!(
            "the snapshot kept journal mode {mode}"
        )));
    }
    conn.close().map_err(|(_, e)| Error::from(e))?;
    Ok(blobs)
}
