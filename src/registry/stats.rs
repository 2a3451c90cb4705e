//! What the metrics page and the readiness check ask the registry: what is
//! stored, upstream counters, the disk and its reserve, a probe write, and
//! the operator jobs' last runs (GC is run through [`Registry::gc_recorded`]
//! so its runs are counted).
//!
//! It must never hold a lock or a transaction across calls, nor return a
//! repository name.

use super::{GcPolicy, GcReport, Registry};
use crate::db::stats::{self, LastRun, Stored};
use crate::db::{now, upstreams};
use crate::error::{Error, Result};
use std::time::Instant;

/// The operator jobs whose last run is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Gc,
    Backup,
    Verify,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Gc, Job::Backup, Job::Verify];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::Gc => "gc",
            Job::Backup => "backup",
            Job::Verify => "verify",
        }
    }
}

/// The data folder's filesystem and the reserve uploads leave on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    pub free: u64,
    pub total: u64,
    pub reserve: u64,
}

/// One upstream's counters (kept in SQLite by the pull-through cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCounters {
    /// The operator's name for it (`soute upstream add NAME`).
    pub name: String,
    pub hits: u64,
    pub misses: u64,
    pub bytes_served: u64,
    pub bytes_fetched: u64,
}

impl Registry {
    pub fn stored(&self) -> Result<Stored> {
        self.db.read(stats::stored)
    }

    pub fn upstream_counters(&self) -> Result<Vec<UpstreamCounters>> {
        let rows = self.db.read(upstreams::upstreams)?;
        Ok(rows
            .into_iter()
            .map(|u| UpstreamCounters {
                name: u.name,
                hits: u.hits,
                misses: u.misses,
                bytes_served: u.bytes_served,
                bytes_fetched: u.bytes_fetched,
            })
            .collect())
    }

    pub fn disk(&self) -> Result<Disk> {
        let space = crate::storage::space::filesystem_space(self.data_dir())
            .map_err(|e| Error::io("measuring the data folder's free space", e))?;
        Ok(Disk {
            free: space.available,
            total: space.total,
            reserve: self.limits.disk_reserve.resolve(space.total),
        })
    }

    /// One small write, synced like every other (the readiness check).
    pub fn probe_write(&self) -> Result<()> {
        self.db.write(|tx| stats::touch_probe(tx, now()))
    }

    /// Remembers how `job` just ended (shown by the metrics page of the
    /// server, also for jobs other processes ran).
    pub fn record_run(&self, job: Job, ok: bool) {
        let run = LastRun { at: now(), ok };
        if let Err(e) = self
            .db
            .write_unsynced(|tx| stats::record_run(tx, job.as_str(), run))
        {
            log::warn!("recording the last {} run failed: {e}", job.as_str());
        }
    }

    pub fn last_run(&self, job: Job) -> Result<Option<LastRun>> {
        self.db.read(|c| stats::last_run(c, job.as_str()))
    }

    /// [`Registry::gc`], counted in the metrics and recorded as the last
    /// GC run (dry runs are neither).
    pub fn gc_recorded(&self, policy: &GcPolicy) -> Result<GcReport> {
        let started = Instant::now();
        let result = self.gc(policy);
        if policy.dry_run {
            return result;
        }
        let gc = &crate::metrics::get().gc;
        gc.runs.inc();
        gc.micros.add(started.elapsed().as_micros() as u64);
        match &result {
            Ok(report) => {
                gc.freed_bytes.add(report.freed_bytes);
                gc.blobs_deleted.add(report.blobs_deleted.len() as u64);
                gc.manifests_deleted
                    .add(report.manifests_deleted.len() as u64);
            }
            Err(_) => gc.failures.inc(),
        }
        self.record_run(Job::Gc, result.is_ok());
        result
    }
}
