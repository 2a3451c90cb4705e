//! Queries over users: name and password hash.
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
    Ok(!existed)
}

pub fn delete_user(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM user WHERE name = ?1")?
        .execute([name])?
        > 0)
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
