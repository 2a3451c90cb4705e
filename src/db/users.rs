//! Queries over users: name, password hash and admin flag, and whether the
//! registry is closed (a `setting` row kept once it has had users).
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

/// The stored hash with the highest `cost` (the decoy an unknown user's
/// check is timed against: `registry::users`, by
/// `auth::password::check_cost`); the rows are streamed, one kept.
pub fn costliest_hash(conn: &Connection, cost: impl Fn(&str) -> u64) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT hash FROM user")?;
    let mut rows = stmt.query([])?;
    let mut best: Option<(u64, String)> = None;
    while let Some(row) = rows.next()? {
        let hash: String = row.get(0)?;
        let c = cost(&hash);
        if best.as_ref().is_none_or(|(b, _)| c > *b) {
            best = Some((c, hash));
        }
    }
    Ok(best.map(|(_, h)| h))
}

/// Insert or replace a user's hash; a new user gets `admin_if_new`, an
/// existing one keeps its flag. Returns true when the user is new.
pub fn set_user(conn: &Connection, name: &str, hash: &str, admin_if_new: bool) -> Result<bool> {
    let existed = user_hash(conn, name)?.is_some();
    conn.prepare_cached(
        "INSERT INTO user (name, hash, created_at, admin) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET hash = excluded.hash",
    )?
    .execute(params![name, hash, now(), admin_if_new])?;
    // A new password (or a new user of a deleted one's name) ends every web
    // UI session signed in under that name: a stolen cookie dies with the old password.
    end_ui_sessions(conn, name)?;
    mark_closed(conn)?;
    Ok(!existed)
}

/// Sets a user's admin flag. False when there is no such user.
pub fn set_admin(conn: &Connection, name: &str, admin: bool) -> Result<bool> {
    Ok(conn
        .prepare_cached("UPDATE user SET admin = ?2 WHERE name = ?1")?
        .execute(params![name, admin])?
        > 0)
}

pub fn has_admin(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM user WHERE admin = 1)")?
        .query_row([], |r| r.get(0))?)
}

/// Every user with its admin flag, sorted by name.
pub fn users_with_admin(conn: &Connection) -> Result<Vec<(String, bool)>> {
    super::collect(conn, "SELECT name, admin FROM user ORDER BY name", |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

/// Deletes a user, its rules, memberships and tokens; the registry stays
/// closed (see [`is_closed`]).
pub fn delete_user(conn: &Connection, name: &str) -> Result<bool> {
    conn.prepare_cached("DELETE FROM access_rule WHERE who_kind = 'user' AND who_name = ?1")?
        .execute([name])?;
    let deleted = conn
        .prepare_cached("DELETE FROM user WHERE name = ?1")?
        .execute([name])?
        > 0;
    if deleted {
        end_ui_sessions(conn, name)?;
        mark_closed(conn)?;
    }
    Ok(deleted)
}

/// Ends the web UI sessions of `name` (password and token sign-ins alike).
fn end_ui_sessions(conn: &Connection, name: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM ui_session WHERE user = ?1")?
        .execute([name])?;
    Ok(())
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
pub(crate) const CLOSED_KEY: &str = "auth.closed";

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
