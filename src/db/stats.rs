//! Queries for the metrics page: what is stored, split into private content
//! and content cached from upstreams (`cached_repo`), in a few aggregate
//! scans; and the last run of each operator job (`setting` rows
//! `last_run.<job>`).
//!
//! They must never write anything but the `last_run.*` and `health.*`
//! settings, nor return a repository name.

use crate::error::Result;
use rusqlite::Connection;

/// Counts and bytes of one kind of content.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub count: u64,
    pub bytes: u64,
}

/// What the registry holds: index 0 private, 1 cached.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    pub repositories: [u64; 2],
    pub manifests: [Amount; 2],
    pub tags: [u64; 2],
    /// Unique blobs: cached when every repository linking one is a cache.
    pub blobs: [Amount; 2],
    pub upload_sessions: Amount,
}

fn amount(conn: &Connection, sql: &str) -> Result<Amount> {
    let (count, bytes): (i64, i64) = conn
        .prepare_cached(sql)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Amount {
        count: count.max(0) as u64,
        bytes: bytes.max(0) as u64,
    })
}

/// Rows grouped by whether their repository is a cache: [private, cached].
fn split(conn: &Connection, sql: &str) -> Result<[Amount; 2]> {
    let mut out = [Amount::default(); 2];
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (cached, count, bytes) = row?;
        let slot = &mut out[usize::from(cached != 0)];
        slot.count = count.max(0) as u64;
        slot.bytes = bytes.max(0) as u64;
    }
    Ok(out)
}

pub fn stored(conn: &Connection) -> Result<Stored> {
    const CACHED: &str = "repo_id IN (SELECT repo_id FROM cached_repo)";
    let repos = split(
        conn,
        "SELECT id IN (SELECT repo_id FROM cached_repo), COUNT(*), 0 FROM repo GROUP BY 1",
    )?;
    let manifests = split(
        conn,
        &format!("SELECT {CACHED}, COUNT(*), COALESCE(SUM(size), 0) FROM manifest GROUP BY 1"),
    )?;
    let tags = split(
        conn,
        &format!("SELECT {CACHED}, COUNT(*), 0 FROM tag GROUP BY 1"),
    )?;
    let all = amount(conn, "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blob")?;
    let cached = amount(
        conn,
        "SELECT COUNT(*), COALESCE(SUM(b.size), 0) FROM blob b
         WHERE EXISTS (SELECT 1 FROM repo_blob rb JOIN cached_repo c ON c.repo_id = rb.repo_id
                       WHERE rb.digest = b.digest)
           AND NOT EXISTS (SELECT 1 FROM repo_blob rb WHERE rb.digest = b.digest
                           AND rb.repo_id NOT IN (SELECT repo_id FROM cached_repo))",
    )?;
    let private = Amount {
        count: all.count.saturating_sub(cached.count),
        bytes: all.bytes.saturating_sub(cached.bytes),
    };
    Ok(Stored {
        repositories: [repos[0].count, repos[1].count],
        manifests,
        tags: [tags[0].count, tags[1].count],
        blobs: [private, cached],
        upload_sessions: amount(
            conn,
            "SELECT COUNT(*), COALESCE(SUM(length), 0) FROM upload",
        )?,
    })
}

/// How an operator job last ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    /// Seconds since the epoch.
    pub at: i64,
    pub ok: bool,
}

fn run_key(job: &str) -> String {
    format!("last_run.{job}")
}

pub fn record_run(conn: &Connection, job: &str, run: LastRun) -> Result<()> {
    let value = format!("{} {}", run.at, if run.ok { "ok" } else { "failed" });
    super::settings::set_setting(conn, &run_key(job), &value)
}

pub fn last_run(conn: &Connection, job: &str) -> Result<Option<LastRun>> {
    let Some(v) = super::settings::setting(conn, &run_key(job))? else {
        return Ok(None);
    };
    let mut words = v.split(' ');
    let at = words.next().and_then(|w| w.parse::<i64>().ok());
    Ok(at.map(|at| LastRun {
        at,
        ok: words.next() == Some("ok"),
    }))
}

/// The readiness probe's write: one small row, rewritten.
pub fn touch_probe(conn: &Connection, now: i64) -> Result<()> {
    super::settings::set_setting(conn, "health.probe", &now.to_string())
}
