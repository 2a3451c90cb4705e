//! GC's deletions: a blob row deleted and its file queued in `blob_trash`, the
//! queue read and emptied.
//!
//! It must never unlink a file itself: the registry does, under the write lock,
//! only while no row exists for the digest.

use super::collect;
use super::now;
use crate::error::Result;
use rusqlite::{params, Connection};

/// Delete a blob's row and queue its file for unlinking (see `blob_trash`).
pub fn trash_blob(conn: &Connection, digest: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blob WHERE digest = ?1")?
        .execute([digest])?;
    conn.prepare_cached(
        "INSERT INTO blob_trash (digest, queued_at) VALUES (?1, ?2)
         ON CONFLICT (digest) DO NOTHING",
    )?
    .execute(params![digest, now()])?;
    Ok(())
}

/// Digests queued for unlinking.
pub fn trash(conn: &Connection) -> Result<Vec<String>> {
    collect(conn, "SELECT digest FROM blob_trash ORDER BY digest", |r| {
        r.get(0)
    })
}

pub fn untrash(conn: &Connection, digest: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blob_trash WHERE digest = ?1")?
        .execute([digest])?;
    Ok(())
}
