//! Queries over the key/value `setting` table (e.g. imported htpasswd lines).
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never hold secrets in clear text.

use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub fn setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM setting WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn delete_setting(conn: &Connection, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM setting WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}

pub fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO setting (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute(params![key, value])?;
    Ok(())
}
