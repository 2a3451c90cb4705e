//! When each manifest was last pulled (a cached repository's, for eviction;
//! every repository's, for the web UI), kept cheaply: a pull is noted in
//! memory (repository and reference) and the notes are written in ONE
//! unsynced transaction at most once a minute (`FLUSH_SECS`), or at once when
//! `MAX_PENDING` distinct references wait; GC and shutdown flush first. So a
//! busy cache costs one small write a minute, not one per request, and a
//! crash loses at most a minute of pull times (an image then looks as old as
//! its previous pull: it may be evicted a little early, never wrongly kept).
//!
//! It must never write on every request, hold its lock while SQLite runs,
//! nor decide what is evicted (the GC plan does).

use super::Registry;
use crate::db::upstreams;
use crate::error::Result;
use crate::oci::{Reference, RepoName};
use std::collections::HashMap;
use std::sync::Mutex;

/// Pull times are written at most this often.
pub const FLUSH_SECS: i64 = 60;
/// Distinct (repository, reference) notes kept before a write is forced.
pub const MAX_PENDING: usize = 10_000;

#[derive(Default)]
pub(super) struct PullLog {
    state: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    /// (repository, tag or digest) -> last pulled.
    notes: HashMap<(String, String), i64>,
    last_flush: i64,
}

impl Registry {
    /// Note that `reference` of `repo` was pulled now.
    /// Cheap: written with the others at the next flush.
    pub fn note_pull(&self, repo: &RepoName, reference: &Reference) {
        let now = crate::db::now();
        let due = {
            let mut p = self
                .pull_log
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if p.last_flush == 0 {
                p.last_flush = now;
            }
            p.notes
                .insert((repo.as_str().to_string(), reference.to_string()), now);
            now - p.last_flush >= FLUSH_SECS || p.notes.len() >= MAX_PENDING
        };
        if due {
            if let Err(e) = self.flush_pulls() {
                log::warn!("recording pull times: {e}");
            }
        }
    }

    /// Write the pending pull times (one unsynced transaction); how many.
    pub fn flush_pulls(&self) -> Result<usize> {
        let notes = {
            let mut p = self
                .pull_log
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.last_flush = crate::db::now();
            std::mem::take(&mut p.notes)
        };
        if notes.is_empty() {
            return Ok(0);
        }
        let n = notes.len();
        self.db.write_unsynced(|tx| {
            for ((repo, reference), at) in &notes {
                upstreams::record_pull(tx, repo, reference, *at)?;
            }
            Ok(())
        })?;
        Ok(n)
    }
}

impl Drop for Registry {
    /// The last pull times are written when the registry closes (serve's
    /// shutdown, the end of a CLI command).
    fn drop(&mut self) {
        if let Err(e) = self.flush_pulls() {
            log::warn!("recording pull times at close: {e}");
        }
    }
}
