//! Queries over the audit log (`audit`, migration 0005): insert one event,
//! prune to the retention limits with indexed deletes, list events since a
//! time. Free functions taking a connection and typed arguments.
//!
//! They must never decide what is recorded nor cut or clean text (the
//! registry does, `registry::audit`): they store what they are given.

use crate::error::Result;
use rusqlite::{params, Connection};

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    /// Seconds since the epoch.
    pub at: i64,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub repository: String,
    pub detail: String,
    pub status: u16,
}

/// Stores one event; returns its id.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    conn: &Connection,
    at: i64,
    actor: &str,
    address: &str,
    action: &str,
    repository: &str,
    detail: &str,
    status: u16,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, address, action, repository, detail, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        at, actor, address, action, repository, detail, status
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The actions [`prune`] treats as noise (anyone can cause them): they may
/// hold only part of the log, so a flood of them cannot push the record of
/// pushes and deletes out.
pub const NOISY_ACTIONS: &str = "('login_failed', 'denied', 'suppressed')";

/// Deletes, oldest first: noisy rows beyond the newest `keep_noisy` of
/// them (on the partial index `audit_noisy`), every row beyond the newest
/// `keep` (ids only grow, so that is an id range on the primary key), and
/// rows older than `before` (on the index of `at`). Returns how many went.
pub fn prune(conn: &Connection, keep: u64, keep_noisy: u64, before: Option<i64>) -> Result<usize> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut gone = conn
        .prepare_cached(&format!(
            "DELETE FROM audit WHERE action IN {NOISY_ACTIONS} AND id <= (
                 SELECT id FROM audit WHERE action IN {NOISY_ACTIONS}
                 ORDER BY id DESC LIMIT 1 OFFSET ?1)"
        ))?
        .execute([as_i64(keep_noisy)])?;
    gone += conn
        .prepare_cached(
            "DELETE FROM audit WHERE id <= (SELECT coalesce(max(id), 0) FROM audit) - ?1",
        )?
        .execute([as_i64(keep)])?;
    if let Some(before) = before {
        gone += conn
            .prepare_cached("DELETE FROM audit WHERE at < ?1")?
            .execute([before])?;
    }
    Ok(gone)
}

/// Events at or after `since` (seconds), oldest first; the newest `limit`
/// of them when there are more.
pub fn since(conn: &Connection, since: i64, limit: u64) -> Result<Vec<AuditRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, address, action, repository, detail, status FROM (
             SELECT * FROM audit WHERE at >= ?1 ORDER BY id DESC LIMIT ?2
         ) ORDER BY id",
    )?;
    let rows = stmt.query_map(params![since, limit], |r| {
        Ok(AuditRow {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            address: r.get(3)?,
            action: r.get(4)?,
            repository: r.get(5)?,
            detail: r.get(6)?,
            status: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// How many events are stored.
pub fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}
