//! Queries over users (name and password hash, and whether the registry is
//! closed) and the search index columns.

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

/// Record the title/description annotations of a repository's latest manifest.
pub fn set_repo_search_text(
    conn: &Connection,
    repo_id: i64,
    title: Option<&str>,
    description: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE repo SET title = coalesce(?2, title), description = coalesce(?3, description) WHERE id = ?1",
    )?
    .execute(params![repo_id, title, description])?;
    Ok(())
}

pub struct SearchHit {
    pub name: String,
    pub description: String,
}

/// Repositories with content whose name, title or description contains `term`.
pub fn search(conn: &Connection, term: &str, limit: usize) -> Result<Vec<SearchHit>> {
    let pattern = format!(
        "%{}%",
        term.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(
        "SELECT name, coalesce(description, title, '') FROM repo r
         WHERE (name LIKE ?1 ESCAPE '\\' OR title LIKE ?1 ESCAPE '\\' OR description LIKE ?1 ESCAPE '\\')
           AND EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = r.id)
         ORDER BY name LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![pattern, limit as i64], |r| {
        Ok(SearchHit {
            name: r.get(0)?,
            description: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM setting WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO setting (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute(params![key, value])?;
    Ok(())
}
