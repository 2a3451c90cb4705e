//! Queries over the webhook tables (migration 0009): `webhook` (receivers,
//! their filters, secret and counters) and `webhook_event` (the outbox: the
//! events each webhook has not acknowledged yet, in order).
//!
//! They must never return a secret to anything but the signer (only
//! [`WebhookRow::secret`] holds it; `list` prints whether one is set), nor
//! decide which events a webhook gets (`webhook` does) or touch blob files.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// One configured webhook, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    /// The canonical comma list of the actions it subscribes to.
    pub events: String,
    pub repo_pattern: String,
    /// Never printed nor logged.
    pub secret: Option<String>,
    pub pending: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_delivered_at: Option<i64>,
}

/// What a webhook selects events by (the subscription, without the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub name: String,
    pub events: String,
    pub repo_pattern: String,
}

/// The undelivered events of one change for a webhook (migration 0013:
/// one row per change, not per event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: i64,
    /// The events' ids, separated by spaces.
    pub event_ids: String,
    /// The events' JSON objects joined by commas.
    pub events_json: String,
    /// How many events the row holds.
    pub count: u64,
}

const COLUMNS: &str = "id, name, url, events, repo_pattern, secret, pending, delivered, dropped, \
                       last_error, last_error_at, last_delivered_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookRow> {
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    Ok(WebhookRow {
        id: r.get(0)?,
        name: r.get(1)?,
        url: r.get(2)?,
        events: r.get(3)?,
        repo_pattern: r.get(4)?,
        secret: r.get(5)?,
        pending: count(6)?,
        delivered: count(7)?,
        dropped: count(8)?,
        last_error: r.get(9)?,
        last_error_at: r.get(10)?,
        last_delivered_at: r.get(11)?,
    })
}

/// Adds a webhook; false when the name is taken.
pub fn add(
    conn: &Connection,
    name: &str,
    url: &str,
    events: &str,
    repo_pattern: &str,
    secret: Option<&str>,
) -> Result<bool> {
    let n = conn.execute(
        "INSERT INTO webhook (name, url, events, repo_pattern, secret, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
        params![name, url, events, repo_pattern, secret, now()],
    )?;
    Ok(n == 1)
}

/// Deletes a webhook and its undelivered events; false when there is none.
pub fn delete(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM webhook WHERE name = ?1", [name])? == 1)
}

/// Every webhook, by name.
pub fn all(conn: &Connection) -> Result<Vec<WebhookRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM webhook ORDER BY name"))?;
    let rows = stmt.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One webhook by name.
pub fn by_name(conn: &Connection, name: &str) -> Result<Option<WebhookRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM webhook WHERE name = ?1"))?
        .query_row([name], row)
        .optional()?)
}

/// What every webhook subscribes to (read in the transaction that records
/// an event, so a webhook added a moment ago gets it).
pub fn subscriptions(conn: &Connection) -> Result<Vec<Subscription>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, events, repo_pattern FROM webhook")?;
    let rows = stmt.query_map([], |r| {
        Ok(Subscription {
            id: r.get(0)?,
            name: r.get(1)?,
            events: r.get(2)?,
            repo_pattern: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Queues the events one change produced for a webhook, as one row
/// (`event_ids` space separated, `events` their JSON joined by commas,
/// `count` how many), unless its backlog would then hold more than
/// `backlog_limit` events, in which case they are counted as dropped.
/// Returns whether they were queued.
pub fn enqueue(
    conn: &Connection,
    webhook_id: i64,
    event_ids: &str,
    events: &str,
    count: u64,
    backlog_limit: u64,
) -> Result<bool> {
    let limit = i64::try_from(backlog_limit).unwrap_or(i64::MAX);
    let count = i64::try_from(count).unwrap_or(i64::MAX).max(1);
    let room = conn
        .prepare_cached(
            "UPDATE webhook SET pending = pending + ?3 WHERE id = ?1 AND pending + ?3 <= ?2",
        )?
        .execute(params![webhook_id, limit, count])?;
    if room == 0 {
        conn.prepare_cached("UPDATE webhook SET dropped = dropped + ?2 WHERE id = ?1")?
            .execute(params![webhook_id, count])?;
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO webhook_event (webhook_id, event_id, event, events, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![webhook_id, event_ids, events, count, now()])?;
    Ok(true)
}

/// The oldest `limit` undelivered rows of a webhook, in order.
pub fn oldest(conn: &Connection, webhook_id: i64, limit: usize) -> Result<Vec<OutboxRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, event_id, event, events FROM webhook_event
         WHERE webhook_id = ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![webhook_id, limit], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            event_ids: r.get(1)?,
            events_json: r.get(2)?,
            count: r.get::<_, i64>(3)?.max(1) as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Removes a webhook's rows up to `last_seq` (the receiver acknowledged
/// them) and counts their events as delivered; returns how many events went.
pub fn acknowledge(conn: &Connection, webhook_id: i64, last_seq: i64) -> Result<u64> {
    let gone: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(events), 0) FROM webhook_event
             WHERE webhook_id = ?1 AND seq <= ?2",
        )?
        .query_row(params![webhook_id, last_seq], |r| r.get(0))?;
    conn.prepare_cached("DELETE FROM webhook_event WHERE webhook_id = ?1 AND seq <= ?2")?
        .execute(params![webhook_id, last_seq])?;
    conn.prepare_cached(
        "UPDATE webhook SET pending = max(pending - ?2, 0), delivered = delivered + ?2,
                            last_delivered_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![webhook_id, gone, now()])?;
    Ok(gone.max(0) as u64)
}

/// Records why the last delivery attempt of a webhook failed.
pub fn set_error(conn: &Connection, webhook_id: i64, error: &str) -> Result<()> {
    conn.prepare_cached("UPDATE webhook SET last_error = ?2, last_error_at = ?3 WHERE id = ?1")?
        .execute(params![webhook_id, error, now()])?;
    Ok(())
}

/// Events waiting in all webhooks' backlogs.
pub fn backlog(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT coalesce(sum(pending), 0) FROM webhook")?
        .query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn the_backlog_is_bounded_and_acknowledged_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("soute.db"), 2).expect("open");
        db.write(|tx| {
            assert!(add(
                tx,
                "ci",
                "http://127.0.0.1:1/",
                "push",
                "**",
                Some("s")
            )?);
            assert!(!add(tx, "ci", "http://127.0.0.1:2/", "push", "**", None)?);
            let id = by_name(tx, "ci")?.expect("row").id;
            let queued = (0..5)
                .filter(|i| enqueue(tx, id, &format!("e{i}"), "{}", 1, 3).expect("enqueue"))
                .count();
            assert_eq!(queued, 3);
            let w = by_name(tx, "ci")?.expect("row");
            assert_eq!((w.pending, w.dropped), (3, 2));
            let first = oldest(tx, id, 2)?;
            let ids: Vec<&str> = first.iter().map(|r| r.event_ids.as_str()).collect();
            assert_eq!(ids, ["e0", "e1"]);
            assert_eq!(acknowledge(tx, id, first[1].seq)?, 2);
            let w = by_name(tx, "ci")?.expect("row");
            assert_eq!((w.pending, w.delivered), (1, 2));
            assert_eq!(oldest(tx, id, 10)?[0].event_ids, "e2");
            assert_eq!(backlog(tx)?, 1);
            // Two events of one change would pass the bound: both dropped.
            assert!(!enqueue(tx, id, "e5 e6", "{},{}", 2, 2)?);
            assert_eq!(by_name(tx, "ci")?.expect("row").dropped, 4);
            // Room for them again: one row, counted as two events.
            assert!(enqueue(tx, id, "e5 e6", "{},{}", 2, 3)?);
            assert_eq!(backlog(tx)?, 3);
            let rows = oldest(tx, id, 10)?;
            assert_eq!((rows.len(), rows[1].count), (2, 2));
            assert_eq!(acknowledge(tx, id, rows[1].seq)?, 3);
            assert_eq!(by_name(tx, "ci")?.expect("row").delivered, 5);
            assert!(enqueue(tx, id, "e7", "{}", 1, 3)?);
            assert!(delete(tx, "ci")?);
            assert_eq!(backlog(tx)?, 0);
            let left: i64 = tx.query_row("SELECT count(*) FROM webhook_event", [], |r| r.get(0))?;
            assert_eq!(left, 0);
            Ok(())
        })
        .expect("write");
    }
}
