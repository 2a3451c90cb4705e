//! Queries over API tokens (`token`): only the sha256 of a secret is stored.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never see or store a token's secret.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub name: String,
    pub user: String,
    /// One `PATTERN:ACTIONS` per line.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "name, user_name, scopes, created_at, expires_at, last_used_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        name: r.get(0)?,
        user: r.get(1)?,
        scopes: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        last_used_at: r.get(5)?,
    })
}

/// Stores a new token. False when the name is taken.
pub fn create(
    conn: &Connection,
    name: &str,
    user: &str,
    hash: &str,
    scopes: &str,
    expires_at: Option<i64>,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO token (name, user_name, hash, scopes, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, user, hash, scopes, now(), expires_at])?
        > 0)
}

/// The token stored under `hash` (one indexed read).
pub fn by_hash(conn: &Connection, hash: &str) -> Result<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM token WHERE hash = ?1"))?
        .query_row([hash], row)
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<TokenRow>> {
    super::collect(
        conn,
        &format!("SELECT {COLUMNS} FROM token ORDER BY user_name, name"),
        row,
    )
}

/// Deletes a token: from now on its secret is unknown. False when there was none.
pub fn revoke(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM token WHERE name = ?1")?
        .execute([name])?
        > 0)
}

pub fn touch(conn: &Connection, name: &str, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE token SET last_used_at = ?2 WHERE name = ?1")?
        .execute(params![name, at])?;
    Ok(())
}
