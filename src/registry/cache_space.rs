//! The pull-through cache's space on the registry side: each upstream's
//! limits (`--max-bytes`, `--evict-after`, migration 0007), what each
//! upstream's cache holds now (the figure GC's eviction compares), deleting
//! an upstream with or without its cache, and whether a namespace still
//! holds cached (read-only) repositories after its upstream was deleted.
//!
//! It must never talk to the network, decide evictions (`gc_evict` does) nor
//! return a password.

use super::gc::{GcPolicy, GcReport, PIN_STALE_SECS};
use super::gc_usage::{cached_bytes_by_upstream, UpstreamUsage};
use super::Registry;
use crate::db::upstreams::{self, CachePolicy};
use crate::db::{graph, now};
use crate::error::Result;
use std::collections::HashMap;

impl Registry {
    /// Set an upstream's space limits.
    pub fn set_cache_policy(&self, name: &str, policy: &CachePolicy) -> Result<()> {
        self.db
            .write(|tx| upstreams::set_cache_policy(tx, name, policy))
    }

    /// Every upstream's limits, by name.
    pub fn cache_policies(&self) -> Result<HashMap<String, CachePolicy>> {
        self.db.read(upstreams::cache_policies)
    }

    /// What each upstream's cache holds now (deleted upstreams' too).
    pub fn cache_usage(&self) -> Result<Vec<UpstreamUsage>> {
        let live_since = now() - PIN_STALE_SECS;
        self.db.read_consistent(|tx| {
            let g = graph::load_graph(tx, live_since)?;
            let cache = upstreams::cache_state(tx)?;
            Ok(cached_bytes_by_upstream(&g, &cache))
        })
    }

    /// Whether repositories cached from an upstream called `name` exist
    /// (its upstream may be deleted: that content stays read-only).
    pub fn is_cached_namespace(&self, name: &str) -> Result<bool> {
        self.db.read(|c| upstreams::is_cached_namespace(c, name))
    }

    /// Delete an upstream and evict everything it cached now: its images'
    /// rows go in one transaction, then the blobs no private image uses (the
    /// GC that runs here; `policy` is its grace periods and dry run).
    pub fn purge_upstream(&self, name: &str, policy: &GcPolicy) -> Result<Option<GcReport>> {
        let configured = self.upstream(name)?.is_some();
        if !configured && !self.is_cached_namespace(name)? {
            return Ok(None);
        }
        if configured && !policy.dry_run {
            self.delete_upstream(name)?;
        }
        self.gc_purging(policy, &[name.to_string()]).map(Some)
    }
}
