//! Queries over users: name and password hash, and whether the registry is
//! closed (a `setting` row kept once it has had users).
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never see a password (only hashes) nor log a hash.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub fn user_hash(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT hash FROM user WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

/// Insert or replace a user's hash. Returns true when the user is new.
pub fn set_user(conn: &Connection, name: &str, hash: &str) -> Result<bool> {
    let existed = user_hash(conn, name)?.is_some();
    conn.prepare_cached(
        "INSERT INTO user (name, hash, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
    )?
    .execute(params![name, hash, now()])?;
    mark_closed(conn)?;
    Ok(!existed)
}

/// Deletes a user; the registry stays closed (see [`is_closed`]).
pub fn delete_user(conn: &Connection, name: &str) -> Result<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM user WHERE name = ?1")?
        .execute([name])?
        > 0;
    if deleted {
        mark_closed(conn)?;
    }
    Ok(deleted)
}

pub fn user_names(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM user ORDER BY name")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

pub fn has_users(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM user)")?
        .query_row([], |r| r.get(0))?)
}

/// The `setting` row that keeps a registry closed once it has had users.
const CLOSED_KEY: &str = "auth.closed";

/// True when requests need credentials: a user exists, or one existed and
/// the registry was not opened since ([`open`]). One indexed read of each table.
pub fn is_closed(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM user)
                 OR EXISTS (SELECT 1 FROM setting WHERE key = ?1)",
        )?
        .query_row([CLOSED_KEY], |r| r.get(0))?)
}

/// Keeps the registry closed even after its last user is deleted.
pub fn mark_closed(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO setting (key, value) VALUES (?1, '1') ON CONFLICT (key) DO NOTHING",
    )?
    .execute([CLOSED_KEY])?;
    Ok(())
}

/// Opens a registry without users to anyone. False when users exist (it
/// stays closed).
pub fn open(conn: &Connection) -> Result<bool> {
    if has_users(conn)? {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM setting WHERE key = ?1")?
        .execute([CLOSED_KEY])?;
    Ok(true)
}
