//! db: all SQL. Opens `soute.db` (WAL, foreign keys, busy timeout),
//! applies `migrations/*.sql` by `PRAGMA user_version`, and offers `read`
//! and `write` closures; writes are serialized and run in `BEGIN IMMEDIATE`,
//! and `write` returns once its commit is on disk: in `serve`
//! ([`Db::open_serving`]) through [`group_commit`] (one WAL flush shared by
//! the writers that committed meanwhile, outside the writer lock); in every
//! other process at `synchronous=FULL`, where SQLite syncs the WAL before
//! the commit is visible to any reader. One submodule per group of tables,
//! named by what it holds.
//!
//! It must never touch blob files or format HTTP.

pub mod audit;
pub mod backups;
pub mod blobs;
pub mod browse;
pub mod content;
pub mod graph;
mod group_commit;
pub mod groups;
pub mod integrity;
pub mod manifests;
pub mod policies;
pub mod publishing;
pub mod repos;
pub mod rules;
pub mod search;
pub mod settings;
pub mod stats;
pub mod tag_history;
pub mod tags;
pub mod tokens;
pub mod trash;
pub mod ui_sessions;
pub mod uploads;
pub mod upstreams;
pub mod users;
pub mod webhooks;

use crate::error::{Error, Result};
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The migrations, in order. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_create_registry.sql"),
    include_str!("../../migrations/0002_add_repo_search.sql"),
    include_str!("../../migrations/0003_add_gc_backup.sql"),
    include_str!("../../migrations/0004_add_access.sql"),
    include_str!("../../migrations/0005_audit.sql"),
    include_str!("../../migrations/0006_upstreams.sql"),
    include_str!("../../migrations/0007_add_cache_space.sql"),
    include_str!("../../migrations/0008_upstream_max_rate.sql"),
    include_str!("../../migrations/0009_webhooks.sql"),
    include_str!("../../migrations/0010_add_tag_history_ui_sessions.sql"),
    include_str!("../../migrations/0011_add_policies.sql"),
    include_str!("../../migrations/0012_blob_publishing.sql"),
    include_str!("../../migrations/0013_webhook_event_count.sql"),
    include_str!("../../migrations/0014_add_content_generation.sql"),
    include_str!("../../migrations/0015_rename_manifest_pull.sql"),
    include_str!("../../migrations/0016_add_space_generation.sql"),
];

pub struct Db {
    pool: Pool<SqliteConnectionManager>,
    writer: Mutex<()>,
    /// The WAL's flushes: shared by `serve`'s writers (`grouped`); in other
    /// processes only [`Db::wait_read_durable`]'s, as every commit syncs itself.
    flush: group_commit::GroupCommit,
    grouped: bool,
}

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;")?;
    Ok(())
}

/// Pooled connections of `serve` commit without waiting for the disk
/// (`synchronous=NORMAL`); [`Db::write`] waits for [`group_commit`] instead.
fn configure_grouped(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;")?;
    Ok(())
}

impl Db {
    /// Open (creating if needed) and migrate the database file, each commit
    /// synced before it is visible (`synchronous=FULL`): for every process
    /// but `serve` (`soute gc`, `tag rollback`, `upstream sync`, ...), so
    /// what they commit is on disk before `serve` can read (and announce) it.
    pub fn open(path: &Path, max_connections: u32) -> Result<Db> {
        Self::open_as(path, max_connections, false)
    }

    /// [`Db::open`] with group commit ([`group_commit`]): for `serve`, the
    /// one process per data folder with many concurrent writers; `_lock` is
    /// the folder's serve lock it holds (`app::lock_data_dir`), as proof.
    pub fn open_serving(path: &Path, max_connections: u32, _lock: &std::fs::File) -> Result<Db> {
        Self::open_as(path, max_connections, true)
    }

    fn open_as(path: &Path, max_connections: u32, grouped: bool) -> Result<Db> {
        let mut conn = Connection::open(path)?;
        // The migrations commit durably on their own (FULL).
        configure(&mut conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal(format!(
                "database refused WAL mode (got {mode})"
            )));
        }
        migrate(&mut conn)?;
        drop(conn);
        let manager = SqliteConnectionManager::file(path).with_init(if grouped {
            configure_grouped
        } else {
            configure
        });
        let pool = Pool::builder()
            .max_size(max_connections.max(2))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        Ok(Db {
            pool,
            writer: Mutex::new(()),
            flush: group_commit::GroupCommit::new(path),
            grouped,
        })
    }

    /// Run `f` on a pooled connection (autocommit; use for single reads).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.pool.get()?;
        f(&conn)
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction; commit on Ok, roll back
    /// on Err, and return once the commit is on disk (as durable as
    /// `synchronous=FULL`; the flush is shared, see [`group_commit`]).
    /// Writers are serialized in-process so none waits on SQLite's busy handler.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let (out, seq) = self.commit(f, true)?;
        if let Some(seq) = seq {
            self.flush.wait_durable(seq)?;
        }
        Ok(out)
    }

    /// Like [`Db::write`], but in `serve` returns without waiting for the
    /// disk (elsewhere every commit syncs itself at `synchronous=FULL`). For
    /// rows whose loss on power failure costs nothing but a retry (a new
    /// upload session): the database stays consistent, and the next
    /// [`Db::write`]'s flush makes them durable too.
    pub fn write_unsynced<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        Ok(self.commit(f, false)?.0)
    }

    /// Runs `f` in a write transaction under the writer lock and commits;
    /// returns its result and the commit's number for [`group_commit`]
    /// (`waited`: the caller waits for it; `None` without group commit).
    /// Begins nothing once a failed flush is recorded.
    fn commit<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
        waited: bool,
    ) -> Result<(T, Option<u64>)> {
        let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.flush.check()?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        let seq = self.grouped.then(|| self.flush.committed(waited));
        Ok((out, seq))
    }

    /// Call after reading rows to act on outside the database (the webhook
    /// delivery announces them; GC unlinks the files of trashed blobs):
    /// returns once every commit the read could see is on disk, so a power
    /// cut cannot take back what was acted on.
    ///
    /// In `serve`: the writer lock is taken for an instant (a commit the
    /// read saw has its number by then) and the last commit a writer waits
    /// for is waited for, usually sharing that writer's flush. Every change
    /// acted on (pushes, tags, deletes, GC's trash) commits in a
    /// [`Db::write`]; rows of [`Db::write_unsynced`] (acknowledgements, pull
    /// events) never force a flush. Other processes commit at
    /// `synchronous=FULL`, synced before any reader sees them. In another
    /// process (`soute gc` beside `serve`): `serve`'s last commits may still
    /// wait for their flush, so the WAL is synced now.
    pub fn wait_read_durable(&self) -> Result<()> {
        if !self.grouped {
            return Ok(self.flush.sync_now()?);
        }
        let upto = {
            let _guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            self.flush.last_waited()
        };
        Ok(self.flush.wait_durable(upto)?)
    }

    /// Run `f` in one read transaction: every query sees the same snapshot.
    pub fn read_consistent<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&tx)
        // dropped: rolled back, nothing was written
    }

    /// Write a consistent copy of the database to `dest` (`VACUUM INTO`),
    /// running `pin` in a write transaction that stays open around the copy:
    /// no other writer, in this process or another, commits in between, so
    /// what `pin` records covers exactly what the copy holds.
    pub fn snapshot_into(
        &self,
        dest: &Path,
        pin: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<()> {
        let dest = dest
            .to_str()
            .ok_or_else(|| Error::internal("the backup path is not valid UTF-8"))?;
        let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.flush.check()?;
        let mut conn = self.pool.get()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        pin(&tx)?;
        let reader = self.pool.get()?;
        reader.execute("VACUUM INTO ?1", [dest])?;
        drop(reader);
        tx.commit()?;
        let seq = self.grouped.then(|| self.flush.committed(true));
        drop(conn);
        drop(guard);
        if let Some(seq) = seq {
            self.flush.wait_durable(seq)?;
        }
        Ok(())
    }

    /// The schema version this binary writes.
    pub fn schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }
}

/// Apply the migrations the database has not seen, in one transaction.
/// A database newer than this binary is refused.
fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(Error::internal(format!(
            "the database has schema version {current}, newer than this soute ({known}); use a newer soute"
        )));
    }
    if current == known {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// Every row of a parameterless query, mapped by `f`.
pub(crate) fn collect<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], f)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("soute.db");
        let db = Db::open(&path, 2).expect("open");
        let v: i64 = db
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .expect("v");
        assert_eq!(v, Db::schema_version());
        drop(db);
        assert!(Db::open(&path, 2).is_ok(), "reopening is a no-op");
        let conn = Connection::open(&path).expect("raw");
        conn.pragma_update(None, "user_version", 999).expect("bump");
        drop(conn);
        let err = Db::open(&path, 2).err().expect("newer schema refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn unsynced_writes_commit_and_connections_leave_flushing_to_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = tempfile::tempfile().expect("lock");
        let db = Db::open_serving(&dir.path().join("soute.db"), 2, &lock).expect("open");
        for i in 0..4 {
            db.write_unsynced(|tx| {
                tx.execute(
                    "INSERT INTO setting (key, value) VALUES (?1, 'x')",
                    [format!("k{i}")],
                )?;
                Ok(())
            })
            .expect("unsynced write");
        }
        let n: i64 = db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM setting", [], |r| r.get(0))?))
            .expect("count");
        assert_eq!(n, 4);
        assert_eq!(
            pooled_synchronous(&db),
            [1; 4],
            "serve's pooled connections commit at NORMAL"
        );
        write_then_wait_read_durable(&db);
    }

    /// `PRAGMA synchronous` as 4 pooled reads see it.
    fn pooled_synchronous(db: &Db) -> Vec<i64> {
        (0..4)
            .map(|_| {
                db.read(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
                    .expect("pragma")
            })
            .collect()
    }

    fn write_then_wait_read_durable(db: &Db) {
        db.write(|tx| {
            tx.execute("INSERT INTO setting (key, value) VALUES ('w', 'x')", [])?;
            Ok(())
        })
        .expect("write");
        db.wait_read_durable()
            .expect("what the read saw is durable");
    }

    #[test]
    fn every_other_process_commits_at_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("soute.db"), 2).expect("open");
        assert_eq!(
            pooled_synchronous(&db),
            [2; 4],
            "FULL: SQLite syncs the WAL before a commit is visible"
        );
        write_then_wait_read_durable(&db);
    }
}
