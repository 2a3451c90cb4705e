//! Process-wide webhook counters, for the metrics exporter and the log:
//! plain atomics, read with [`counters`]. Events delivered (acknowledged
//! with 2xx), failed attempts (each one retried later), events dropped
//! (a webhook's backlog was full, or the small in-memory queue of pull and
//! login-failure events was), and the backlog the delivery thread last saw.
//!
//! It must never block, allocate or call anything: it is touched on the
//! request path.

use std::sync::atomic::{AtomicU64, Ordering};

static DELIVERED: AtomicU64 = AtomicU64::new(0);
static FAILED_ATTEMPTS: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static BACKLOG: AtomicU64 = AtomicU64::new(0);

/// A copy of the counters (totals since the process started; `backlog` is
/// a gauge: undelivered events in all webhooks' outboxes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookCounters {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dropped: u64,
    pub backlog: u64,
}

pub fn counters() -> WebhookCounters {
    WebhookCounters {
        delivered: DELIVERED.load(Ordering::Relaxed),
        failed_attempts: FAILED_ATTEMPTS.load(Ordering::Relaxed),
        dropped: DROPPED.load(Ordering::Relaxed),
        backlog: BACKLOG.load(Ordering::Relaxed),
    }
}

pub(super) fn delivered(n: u64) {
    DELIVERED.fetch_add(n, Ordering::Relaxed);
}

pub(super) fn failed_attempt() {
    FAILED_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn dropped(n: u64) {
    DROPPED.fetch_add(n, Ordering::Relaxed);
}

pub(super) fn set_backlog(n: u64) {
    BACKLOG.store(n, Ordering::Relaxed);
}
