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
/// them (counted and found on the partial index `audit_noisy`), every row
/// beyond the newest `keep` (counted on the index of `at`, the oldest found
/// on the primary key: ids only grow), and rows older than `before` (on the
/// index of `at`). No step reads the table itself beyond the rows it
/// deletes. Returns how many went.
pub fn prune(conn: &Connection, keep: u64, keep_noisy: u64, before: Option<i64>) -> Result<usize> {
    let mut gone = 0;
    let noisy: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM audit WHERE action IN {NOISY_ACTIONS}"
        ))?
        .query_row([], |r| r.get(0))?;
    let over = excess(noisy, keep_noisy);
    if over > 0 {
        gone += conn
            .prepare_cached(&format!(
                "DELETE FROM audit WHERE id IN (
                     SELECT id FROM audit WHERE action IN {NOISY_ACTIONS} ORDER BY id LIMIT ?1)"
            ))?
            .execute([over])?;
    }
    let over = excess(count(conn)? as i64, keep);
    if over > 0 {
        gone += conn
            .prepare_cached(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id LIMIT ?1)",
            )?
            .execute([over])?;
    }
    if let Some(before) = before {
        gone += conn
            .prepare_cached("DELETE FROM audit WHERE at < ?1")?
            .execute([before])?;
    }
    Ok(gone)
}

/// Rows beyond `keep` among `rows`.
fn excess(rows: i64, keep: u64) -> i64 {
    rows.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX))
        .max(0)
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
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM audit")?
        .query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn ids(conn: &Connection, action: &str) -> Vec<i64> {
        since(conn, i64::MIN, u64::MAX)
            .expect("since")
            .into_iter()
            .filter(|r| r.action == action)
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn prune_keeps_the_newest_and_caps_the_noise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("soute.db"), 2).expect("open");
        db.write(|tx| {
            // 300 pushes at t = 0..300, then 300 denials at t = 300..600.
            for i in 0..600 {
                let action = if i < 300 { "push" } else { "denied" };
                insert(tx, i, "alice", "127.0.0.1", action, "lab/app", "", 201)?;
            }
            assert_eq!(prune(tx, 500, 100, None)?, 200);
            assert_eq!(count(tx)?, 400);
            // The newest 100 denials stay; so do the newest pushes.
            assert_eq!(ids(tx, "denied"), (501..=600).collect::<Vec<_>>());
            assert_eq!(ids(tx, "push"), (1..=300).collect::<Vec<_>>());
            // The total cut takes the oldest, whatever they are.
            assert_eq!(prune(tx, 250, 100, None)?, 150);
            assert_eq!(ids(tx, "push").first(), Some(&151));
            // The age cut.
            assert_eq!(prune(tx, 250, 100, Some(290))?, 140);
            assert_eq!(count(tx)?, 110);
            // The listing: oldest first, the newest `limit`.
            let last = since(tx, 0, 3)?;
            let got: Vec<i64> = last.iter().map(|r| r.id).collect();
            assert_eq!(got, [598, 599, 600]);
            assert!(since(tx, 1000, 10)?.is_empty());
            Ok(())
        })
        .expect("write");
    }
}
