//! Queries over `ui_session`: the web UI's signed-in browsers, stored by the
//! sha256 of their cookie's secret, with their CSRF token and expiry.
//!
//! They must never store a cookie's secret itself, nor return an expired row.

use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: String,
    /// The sha256 of the API token it signed in with (`None`: a password).
    pub token_hash: Option<String>,
    pub csrf: String,
    pub expires_at: i64,
}

pub fn insert(conn: &Connection, hash: &str, row: &SessionRow, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ui_session (hash, user, token_hash, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        hash,
        row.user,
        row.token_hash,
        row.csrf,
        now,
        row.expires_at
    ])?;
    Ok(())
}

/// The session stored under `hash`, unless it expired by `now`.
pub fn by_hash(conn: &Connection, hash: &str, now: i64) -> Result<Option<SessionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT user, token_hash, csrf, expires_at FROM ui_session
             WHERE hash = ?1 AND expires_at > ?2",
        )?
        .query_row(params![hash, now], |r| {
            Ok(SessionRow {
                user: r.get(0)?,
                token_hash: r.get(1)?,
                csrf: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn delete(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM ui_session WHERE hash = ?1")?
        .execute([hash])?
        > 0)
}

/// Remove every session expired by `now`; how many went.
pub fn prune(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM ui_session WHERE expires_at <= ?1")?
        .execute([now])?)
}

/// Keep only the `keep` newest sessions of `user` (by start time); how many
/// went.
pub fn keep_newest(conn: &Connection, user: &str, keep: u64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM ui_session WHERE user = ?1 AND hash NOT IN
                 (SELECT hash FROM ui_session WHERE user = ?1
                  ORDER BY created_at DESC LIMIT ?2)",
        )?
        .execute(params![user, keep.min(i64::MAX as u64) as i64])?)
}
