//! The S3 store's publish intents and GC's deletions in flight
//! (`blob_publishing`, `blob_deleting`, migration 0012): how a publish and a
//! delete of the same digest, both outside the write lock, stay ordered.
//!
//! It must never talk to the object store: the registry does, between the
//! transactions these functions run in.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// Whether GC is deleting `digest`'s object now.
pub fn is_deleting(conn: &Connection, digest: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM blob_deleting WHERE digest = ?1")?
        .query_row([digest], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Record that upload `token` is publishing `digest`.
pub fn start_publish(conn: &Connection, token: &str, digest: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO blob_publishing (token, digest, since) VALUES (?1, ?2, ?3)")?
        .execute(params![token, digest, now()])?;
    Ok(())
}

pub fn end_publish(conn: &Connection, token: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blob_publishing WHERE token = ?1")?
        .execute([token])?;
    Ok(())
}

/// Whether a publish of `digest` younger than `max_age` seconds is running.
pub fn is_publishing(conn: &Connection, digest: &str, max_age: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM blob_publishing WHERE digest = ?1 AND since >= ?2 LIMIT 1")?
        .query_row(params![digest, now() - max_age], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Drop intents older than `max_age` seconds (a process died mid-publish).
pub fn drop_stale_publishes(conn: &Connection, max_age: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM blob_publishing WHERE since < ?1")?
        .execute([now() - max_age])?)
}

/// Mark `digest` as being deleted by GC.
pub fn start_delete(conn: &Connection, digest: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO blob_deleting (digest, since) VALUES (?1, ?2) ON CONFLICT (digest) DO NOTHING",
    )?
    .execute(params![digest, now()])?;
    Ok(())
}

pub fn end_delete(conn: &Connection, digest: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blob_deleting WHERE digest = ?1")?
        .execute([digest])?;
    Ok(())
}

/// Deletions a GC started more than `age` seconds ago and did not finish (it died).
pub fn deleting_since(conn: &Connection, age: i64) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT digest FROM blob_deleting WHERE since < ?1 ORDER BY digest")?;
    let rows = stmt.query_map([now() - age], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}
