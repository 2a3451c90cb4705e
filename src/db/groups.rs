//! Queries over groups of users (`user_group`, `group_member`).
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never decide what a group may do (rules do, in `auth::access`).

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection};

/// Creates a group. False when it exists.
pub fn add_group(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO user_group (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, now()])?
        > 0)
}

/// Deletes a group, its memberships and its rules. False when it did not exist.
pub fn delete_group(conn: &Connection, name: &str) -> Result<bool> {
    conn.prepare_cached("DELETE FROM access_rule WHERE who_kind = 'group' AND who_name = ?1")?
        .execute([name])?;
    Ok(conn
        .prepare_cached("DELETE FROM user_group WHERE name = ?1")?
        .execute([name])?
        > 0)
}

pub fn group_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM user_group WHERE name = ?1)")?
        .query_row([name], |r| r.get(0))?)
}

/// Adds a member. False when it already was one.
pub fn add_member(conn: &Connection, group: &str, user: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO group_member (group_name, user_name) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![group, user])?
        > 0)
}

pub fn delete_member(conn: &Connection, group: &str, user: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM group_member WHERE group_name = ?1 AND user_name = ?2")?
        .execute(params![group, user])?
        > 0)
}

/// Every group with its members, sorted: (group, members).
pub fn groups(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
    let names = super::collect(conn, "SELECT name FROM user_group ORDER BY name", |r| {
        r.get(0)
    })?;
    let pairs = memberships(conn)?;
    Ok(names
        .into_iter()
        .map(|g: String| {
            let members = pairs
                .iter()
                .filter(|(pg, _)| *pg == g)
                .map(|(_, u)| u.clone())
                .collect();
            (g, members)
        })
        .collect())
}

/// Every (group, user) pair, sorted.
pub fn memberships(conn: &Connection) -> Result<Vec<(String, String)>> {
    super::collect(
        conn,
        "SELECT group_name, user_name FROM group_member ORDER BY group_name, user_name",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}
