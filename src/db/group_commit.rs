//! group_commit: makes committed write transactions durable with one
//! `fdatasync` of the WAL shared by every writer that committed meanwhile.
//!
//! `serve`'s connections run at `synchronous=NORMAL` (other processes
//! commit at FULL, see `Db::open`): a commit appends its frames to
//! `soute.db-wal` and returns without waiting for the disk, under the
//! writer lock. [`GroupCommit::committed`] numbers it (still under the
//! lock); [`GroupCommit::wait_durable`], called after the lock is released,
//! returns once an `fdatasync` that started after that commit has finished.
//! The first writer to arrive syncs; those that commit while it syncs wait
//! and are covered by the next sync, one for all of them. So writers no
//! longer hold the lock through a disk flush each: 8 clients pushing pay
//! for one flush per group instead of one per transaction, and a write is
//! still acknowledged only once it is on disk, as with `synchronous=FULL`.
//!
//! Why this is as durable as FULL: in WAL mode a commit is a frame with the
//! commit mark appended to the WAL; once the WAL's data are synced it is
//! recovered after a crash or power loss. A checkpoint (NORMAL syncs the
//! WAL before and the database after it) may move frames into the database
//! and restart the WAL, but only once they are synced there. A WAL file
//! this process has not synced before also gets its folder synced once (its
//! name must survive too). The WAL is named from the database's resolved
//! path (SQLite follows a symlinked `soute.db` and keeps its WAL beside the
//! target). A missing WAL was checkpointed and removed by SQLite; then the
//! database file and its folder are synced instead, never nothing.
//!
//! A failed sync is final: Linux may mark the unwritten pages clean after
//! reporting the error once, so a second sync could succeed without them.
//! Every writer waiting then gets the error, and no later writer begins
//! ([`GroupCommit::check`] under the writer lock) until the process
//! restarts (SQLite's recovery then reads what is really on disk); an error
//! from `Db::write`'s wait means "committed here, durability unknown".
//!
//! One thing differs from FULL: another connection may read a commit in the
//! moment between its commit and its sync. A write that depends on it
//! commits later, so its own acknowledgement waits for the same or a later
//! sync; only a pure read can observe a write a power cut then takes back,
//! and that write was never acknowledged. A reader that acts outside the
//! database on what it read (webhook delivery) reads first, then takes the
//! writer lock for an instant (a commit the read saw has its number by
//! then) and waits for [`GroupCommit::last_waited`]: every change it can
//! announce was committed by a writer that waits for its commit, so it
//! usually shares that writer's sync, and commits nobody waits for (the
//! delivery's acknowledgements, saved pull events) never cost it one. Other
//! processes (`soute gc`, `soute tag rollback`) do not use group commit:
//! they run at `synchronous=FULL`, where SQLite syncs the WAL before it
//! makes the commit visible, so nothing they commit is seen before it is on
//! disk (`Db::open` vs `Db::open_serving`).
//!
//! It must never sync under the writer lock, report a commit durable before
//! a sync that started after it finished, or hide a failed sync (every
//! waiting writer gets the error, and it is final).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct State {
    /// Commits numbered so far.
    committed: u64,
    /// The last of them whose writer waits for it (`Db::write`): every
    /// change a webhook announces is such a commit.
    waited: u64,
    /// Every commit up to this one is on disk.
    durable: u64,
    /// A sync is running.
    syncing: bool,
    /// The WAL file (device, inode) whose folder was synced.
    folder_synced_for: Option<(u64, u64)>,
    /// Why a sync failed: every later wait returns it.
    failed: Option<String>,
}

/// Shared by every writer of one database in this process.
pub struct GroupCommit {
    db: PathBuf,
    wal: PathBuf,
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// For the database at `db` (its WAL is the resolved path + `-wal`).
    pub fn new(db: &std::path::Path) -> GroupCommit {
        let db = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_path_buf());
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        GroupCommit {
            db,
            wal: PathBuf::from(wal),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers a commit that just returned (call under the writer lock,
    /// right after `COMMIT`); `waited`: its writer will wait for it.
    pub fn committed(&self, waited: bool) -> u64 {
        let mut s = self.lock();
        s.committed += 1;
        if waited {
            s.waited = s.committed;
        }
        s.committed
    }

    /// The last commit numbered whose writer waits for it (call under the
    /// writer lock, after a read: every commit the read saw has its number).
    pub fn last_waited(&self) -> u64 {
        self.lock().waited
    }

    /// Syncs now (or waits for a sync that started after this call): for a
    /// process without group commit that acts on what it read, which
    /// `serve` may have committed without its flush yet. Numbers a mark, as
    /// a commit, and waits for it.
    pub fn sync_now(&self) -> std::io::Result<()> {
        let mark = self.committed(false);
        self.wait_durable(mark)
    }

    /// The error of a failed flush, if one failed: the writer lock's holder
    /// checks it before it begins, so no write begins once a failed flush
    /// is recorded (one that began before may still commit).
    pub fn check(&self) -> std::io::Result<()> {
        match &self.lock().failed {
            Some(why) => Err(failed_error(why)),
            None => Ok(()),
        }
    }

    /// Returns once commit `seq` is on disk (or the sync that should have
    /// put it there failed).
    pub fn wait_durable(&self, seq: u64) -> std::io::Result<()> {
        let mut s = self.lock();
        loop {
            if let Some(why) = &s.failed {
                return Err(failed_error(why));
            }
            if s.durable >= seq {
                return Ok(());
            }
            if s.syncing {
                s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Every commit numbered by now has written its frames.
            let upto = s.committed;
            let folder_synced_for = s.folder_synced_for;
            s.syncing = true;
            drop(s);
            let result = self.sync(folder_synced_for);
            s = self.lock();
            s.syncing = false;
            self.done.notify_all();
            match result {
                Ok(file) => {
                    s.durable = s.durable.max(upto);
                    if file.is_some() {
                        s.folder_synced_for = file;
                    }
                }
                Err(e) => {
                    log::error!(
                        "flushing the database's WAL failed: {e}; every write now fails \
                         until soute restarts"
                    );
                    s.failed = Some(e.to_string());
                    return Err(e);
                }
            }
        }
    }

    /// Syncs the WAL's data (and its folder, the first time this WAL file
    /// is seen); returns the WAL's (device, inode), `None` when it is gone.
    fn sync(&self, folder_synced_for: Option<(u64, u64)>) -> std::io::Result<Option<(u64, u64)>> {
        let file = match File::open(&self.wal) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Checkpointed into the database and removed: make sure of
                // the database file and its folder.
                File::open(&self.db)?.sync_all()?;
                self.sync_folder()?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let id = (meta.dev(), meta.ino());
        file.sync_data()?;
        if folder_synced_for != Some(id) {
            self.sync_folder()?;
        }
        Ok(Some(id))
    }

    fn sync_folder(&self) -> std::io::Result<()> {
        match self.wal.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => File::open(folder)?.sync_all(),
            _ => File::open(".")?.sync_all(),
        }
    }
}

fn failed_error(why: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "an earlier flush of the database failed ({why}); nothing is written until soute restarts"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_commit_is_durable_only_after_a_sync_that_started_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("soute.db");
        std::fs::write(dir.path().join("soute.db-wal"), b"frames").expect("wal");
        let gc = Arc::new(GroupCommit::new(&db));
        let first = gc.committed(true);
        gc.wait_durable(first).expect("sync");
        assert_eq!(gc.lock().durable, 1);
        // Commits numbered while nobody synced are covered by the next sync.
        let (a, b) = (gc.committed(true), gc.committed(true));
        assert_eq!(gc.lock().durable, 1, "nothing synced them yet");
        gc.wait_durable(a).expect("sync");
        assert!(gc.lock().durable >= b, "one sync covered both");
        gc.wait_durable(b).expect("already durable");
    }

    #[test]
    fn an_announcing_reader_waits_for_waited_commits_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("soute.db");
        std::fs::write(dir.path().join("soute.db-wal"), b"frames").expect("wal");
        let gc = GroupCommit::new(&db);
        let push = gc.committed(true);
        let ack = gc.committed(false);
        assert_eq!((push, ack), (1, 2));
        assert_eq!(gc.last_waited(), push, "the unwaited commit is no barrier");
        gc.wait_durable(gc.last_waited()).expect("sync");
        assert!(gc.lock().durable >= push);
        assert!(gc.check().is_ok(), "no flush failed");
    }

    #[test]
    fn many_writers_share_syncs_and_all_return() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("soute.db");
        std::fs::write(dir.path().join("soute.db-wal"), b"frames").expect("wal");
        let gc = Arc::new(GroupCommit::new(&db));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let gc = gc.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let seq = gc.committed(true);
                        gc.wait_durable(seq).expect("sync");
                        assert!(gc.lock().durable >= seq);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("writer");
        }
        let s = gc.lock();
        assert_eq!((s.committed, s.durable), (400, 400));
        assert!(!s.syncing);
    }

    #[test]
    fn a_missing_wal_syncs_the_database_and_a_missing_database_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("soute.db");
        std::fs::write(&db, b"pages").expect("db");
        let gc = GroupCommit::new(&db);
        let seq = gc.committed(true);
        gc.wait_durable(seq).expect("the database synced instead");
        // Neither file: nothing was made durable, so the wait fails, and
        // stays failed (a failed flush is never retried into a success).
        let gone = GroupCommit::new(&dir.path().join("nothing.db"));
        let seq = gone.committed(true);
        assert!(gone.wait_durable(seq).is_err());
        std::fs::write(dir.path().join("nothing.db-wal"), b"frames").expect("wal");
        let later = gone.committed(true);
        let err = gone.wait_durable(later).expect_err("still failed");
        assert!(err.to_string().contains("soute restarts"), "{err}");
        assert!(gone.check().is_err(), "and no writer may begin");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_database_syncs_the_wal_beside_its_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("elsewhere");
        std::fs::create_dir(&real).expect("dir");
        std::fs::write(real.join("soute.db"), b"pages").expect("db");
        std::fs::write(real.join("soute.db-wal"), b"frames").expect("wal");
        let link = dir.path().join("soute.db");
        std::os::unix::fs::symlink(real.join("soute.db"), &link).expect("symlink");
        let gc = GroupCommit::new(&link);
        assert_eq!(
            gc.wal,
            real.canonicalize().expect("real").join("soute.db-wal")
        );
        let seq = gc.committed(true);
        gc.wait_durable(seq).expect("sync");
        assert!(
            gc.lock().folder_synced_for.is_some(),
            "the real WAL was synced"
        );
    }
}
