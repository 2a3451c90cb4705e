//! Queries over access rules (`access_rule`) and the generation counter that
//! changes with every user, group, member or rule change (triggers of
//! migration 0004), so a server notices changes made by another process.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never decide access (`auth::access` does) nor parse patterns.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection};

/// A stored rule: who (kind, name), pattern, actions (`pull,push`, `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub who_kind: String,
    pub who_name: String,
    pub pattern: String,
    pub actions: String,
}

/// Inserts or replaces the rule of (who, pattern). Returns true when it is new.
pub fn grant(conn: &Connection, rule: &RuleRow) -> Result<bool> {
    let existed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM access_rule WHERE who_kind = ?1 AND who_name = ?2 AND pattern = ?3)",
        )?
        .query_row(params![rule.who_kind, rule.who_name, rule.pattern], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO access_rule (who_kind, who_name, pattern, actions, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (who_kind, who_name, pattern) DO UPDATE SET actions = excluded.actions",
    )?
    .execute(params![
        rule.who_kind,
        rule.who_name,
        rule.pattern,
        rule.actions,
        now()
    ])?;
    Ok(!existed)
}

/// Removes the rule of (who, pattern). False when there was none.
pub fn revoke(conn: &Connection, who_kind: &str, who_name: &str, pattern: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM access_rule WHERE who_kind = ?1 AND who_name = ?2 AND pattern = ?3",
        )?
        .execute(params![who_kind, who_name, pattern])?
        > 0)
}

/// Every rule, in a stable order.
pub fn rules(conn: &Connection) -> Result<Vec<RuleRow>> {
    super::collect(
        conn,
        "SELECT who_kind, who_name, pattern, actions FROM access_rule
         ORDER BY pattern, who_kind, who_name",
        |r| {
            Ok(RuleRow {
                who_kind: r.get(0)?,
                who_name: r.get(1)?,
                pattern: r.get(2)?,
                actions: r.get(3)?,
            })
        },
    )
}

/// Whether the registry is closed and the access generation, in one read
/// (what every request asks).
pub fn closed_and_generation(conn: &Connection) -> Result<(bool, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT (EXISTS (SELECT 1 FROM user) OR EXISTS (SELECT 1 FROM setting WHERE key = ?1)),
                    (SELECT n FROM access_generation WHERE id = 1)",
        )?
        .query_row([super::users::CLOSED_KEY], |r| Ok((r.get(0)?, r.get(1)?)))?)
}
