//! metrics: soute's counters and gauges, and their exposition in the
//! Prometheus text format (`text`).
//!
//! Every counter lives in one process-wide [`Metrics`] of plain atomics
//! ([`get`]): code anywhere records with a relaxed `fetch_add` (no lock, no
//! allocation, no syscall per request), and `/metrics` reads them at scrape
//! time. Labels are only ever from fixed sets defined here ([`Endpoint`],
//! [`METHODS`], [`STATUSES`], [`Refused`], [`LoginFailure`]): never a
//! repository name, a user name or any other word a client chooses, so the
//! number of series is bounded whatever clients send. Values read from
//! SQLite at scrape time (what is stored, upstreams) are written by their
//! owners through [`Collect`].
//!
//! A new group of counters (webhooks, ...) is a struct of atomics added to
//! [`Metrics`] and a function appended to [`GROUPS`], which writes its
//! families.
//!
//! It must never call into the rest of soute, block, allocate on a
//! recording path, or take a label value from a request.

mod families;
pub mod text;

pub use text::{Exposition, Kind, CONTENT_TYPE};

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

const R: Ordering = Ordering::Relaxed;

/// A counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        if enabled() {
            self.0.fetch_add(n, R);
        }
    }
    pub fn get(&self) -> u64 {
        self.0.load(R)
    }
}

/// A gauge that goes up and down.
#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, R);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, R);
    }
    pub fn set(&self, v: i64) {
        self.0.store(v, R);
    }
    pub fn get(&self) -> i64 {
        self.0.load(R).max(0)
    }
}

/// One in-progress unit of a gauge: counted up when made, down on drop.
pub struct InProgress(&'static Gauge);

impl InProgress {
    pub fn of(gauge: &'static Gauge) -> InProgress {
        gauge.inc();
        InProgress(gauge)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What kind of endpoint a request was for: the `endpoint` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Endpoint {
    /// No such endpoint (404 before any route matched).
    Unknown = 0,
    Base,
    Catalog,
    Manifest,
    Blob,
    Upload,
    Tags,
    Referrers,
    Search,
    Token,
    Admin,
    CaCert,
    Health,
    Metrics,
    /// Refused by the transport before the handler (400, 417, 431, 503).
    Rejected,
}

impl Endpoint {
    pub const COUNT: usize = 15;
    const NAMES: [&'static str; Endpoint::COUNT] = [
        "unknown",
        "base",
        "catalog",
        "manifest",
        "blob",
        "upload",
        "tags",
        "referrers",
        "search",
        "token",
        "admin",
        "ca",
        "health",
        "metrics",
        "rejected",
    ];

    pub fn label(self) -> u8 {
        self as u8
    }

    fn name_of(label: u8) -> &'static str {
        Endpoint::NAMES
            .get(label as usize)
            .copied()
            .unwrap_or("unknown")
    }
}

/// The `method` label: these, or `other`.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "other"];

/// The `status` label: the statuses soute answers, or `other`.
pub const STATUSES: [u16; 33] = [
    100, 200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409,
    411, 412, 413, 414, 415, 416, 417, 422, 429, 431, 500, 501, 503, 507,
];
const STATUS_SLOTS: usize = STATUSES.len() + 1;

fn method_index(method: &str) -> usize {
    METHODS[..6]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

fn status_index(status: u16) -> usize {
    STATUSES.binary_search(&status).unwrap_or(STATUSES.len())
}

/// Upper bounds of the request duration buckets, in seconds.
pub const DURATION_BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];
const BUCKETS: usize = DURATION_BOUNDS.len() + 1;
const BOUNDS_MICROS: [u64; 14] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
    30_000_000,
    120_000_000,
];

const REQUEST_SLOTS: usize = Endpoint::COUNT * METHODS.len() * STATUS_SLOTS;

/// Requests by endpoint, method and status, and their durations by endpoint.
pub struct Requests {
    counts: [AtomicU64; REQUEST_SLOTS],
    buckets: [[AtomicU64; BUCKETS]; Endpoint::COUNT],
    micros: [AtomicU64; Endpoint::COUNT],
}

impl Requests {
    const fn new() -> Requests {
        Requests {
            counts: [const { AtomicU64::new(0) }; REQUEST_SLOTS],
            buckets: [const { [const { AtomicU64::new(0) }; BUCKETS] }; Endpoint::COUNT],
            micros: [const { AtomicU64::new(0) }; Endpoint::COUNT],
        }
    }

    /// One answered request (`endpoint` is an [`Endpoint::label`]).
    pub fn observe(&self, endpoint: u8, method: &str, status: u16, took: Duration) {
        if !enabled() {
            return;
        }
        let e = (endpoint as usize).min(Endpoint::COUNT - 1);
        let slot = (e * METHODS.len() + method_index(method)) * STATUS_SLOTS + status_index(status);
        self.counts[slot].fetch_add(1, R);
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let b = BOUNDS_MICROS
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BOUNDS_MICROS.len());
        self.buckets[e][b].fetch_add(1, R);
        self.micros[e].fetch_add(us, R);
    }

    /// Requests counted for (endpoint, method, status) so far.
    pub fn count(&self, endpoint: Endpoint, method: &str, status: u16) -> u64 {
        let slot = (endpoint as usize * METHODS.len() + method_index(method)) * STATUS_SLOTS
            + status_index(status);
        self.counts[slot].load(R)
    }
}

/// Why the transport refused a connection or request: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Over `--max-connections` with nothing to evict.
    TotalCap = 0,
    /// Over `--max-connections-per-ip`.
    AddressCap,
    /// Over the head budget.
    HeadBudget,
    /// Waited too long for a worker.
    QueueTimeout,
}
const REFUSED: [&str; 4] = ["total_cap", "address_cap", "head_budget", "queue_timeout"];

/// The transport: connections, workers, bytes.
pub struct Transport {
    pub accepted: Counter,
    pub open: Gauge,
    /// Connections the readiness loop holds (idle keep-alive, slow heads,
    /// handshakes, bodies it sends), stored by the loop each round.
    pub in_loop: Gauge,
    refused: [Counter; 4],
    pub workers_started: Gauge,
    pub workers_busy: Gauge,
    /// Request body bytes read (de-framed).
    pub bytes_received: Counter,
    /// Response body bytes written.
    pub bytes_sent: Counter,
}

impl Transport {
    const fn new() -> Transport {
        Transport {
            accepted: Counter::new(),
            open: Gauge::new(),
            in_loop: Gauge::new(),
            refused: [const { Counter::new() }; 4],
            workers_started: Gauge::new(),
            workers_busy: Gauge::new(),
            bytes_received: Counter::new(),
            bytes_sent: Counter::new(),
        }
    }

    pub fn refused(&self, why: Refused) {
        self.refused[why as usize].inc();
    }

    pub fn refused_by(&self, why: Refused, n: u64) {
        self.refused[why as usize].add(n);
    }
}

/// Why a login failed: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong password or unknown user.
    Password = 0,
    /// A wrong, revoked or expired API token.
    Token,
    /// A refused bearer token (bad MAC, expired, deleted user).
    Bearer,
}
const LOGIN_FAILURES: [&str; 3] = ["password", "token", "bearer"];

/// Authentication.
pub struct Auth {
    login_failures: [Counter; 3],
    /// 429 for too many failed logins (the throttle).
    pub throttled: Counter,
    /// Password checks waiting for a verifier thread.
    pub checks_queued: Gauge,
    /// Password checks refused because the queue was full (429).
    pub check_rejections: Counter,
    pub checks_run: Counter,
}

impl Auth {
    const fn new() -> Auth {
        Auth {
            login_failures: [const { Counter::new() }; 3],
            throttled: Counter::new(),
            checks_queued: Gauge::new(),
            check_rejections: Counter::new(),
            checks_run: Counter::new(),
        }
    }

    pub fn login_failed(&self, why: LoginFailure) {
        self.login_failures[why as usize].inc();
    }
}

/// Garbage collection run by this process (scheduled or `POST /v2/_soute/gc`).
pub struct Gc {
    pub runs: Counter,
    pub failures: Counter,
    pub micros: Counter,
    pub freed_bytes: Counter,
    pub blobs_deleted: Counter,
    pub manifests_deleted: Counter,
}

impl Gc {
    const fn new() -> Gc {
        Gc {
            runs: Counter::new(),
            failures: Counter::new(),
            micros: Counter::new(),
            freed_bytes: Counter::new(),
            blobs_deleted: Counter::new(),
            manifests_deleted: Counter::new(),
        }
    }
}

/// Everything counted in this process.
pub struct Metrics {
    pub requests: Requests,
    pub transport: Transport,
    /// Requests streaming an upload body now.
    pub uploads_in_progress: Gauge,
    pub auth: Auth,
    pub gc: Gc,
    /// Upstream fetches that failed (the upstream's last error is in SQLite).
    pub upstream_errors: Counter,
}

static METRICS: Metrics = Metrics {
    requests: Requests::new(),
    transport: Transport::new(),
    uploads_in_progress: Gauge::new(),
    auth: Auth::new(),
    gc: Gc::new(),
    upstream_errors: Counter::new(),
};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Whether counters count (`serve --metrics off` stops them: the
/// benchmark's baseline). Gauges of things in progress always follow.
pub fn enabled() -> bool {
    ENABLED.load(R)
}

pub fn set_enabled(on: bool) {
    ENABLED.store(on, R);
}

/// A source of families read at scrape time (SQLite, the disk).
pub trait Collect {
    fn collect(&self, out: &mut Exposition);
}

/// The families of the in-process groups, in order. Append a group here.
pub const GROUPS: &[fn(&Metrics, &mut Exposition)] = &[
    families::requests,
    families::transport,
    families::auth,
    families::gc,
];

/// The whole page: every group, then each source.
pub fn render(sources: &[&dyn Collect]) -> String {
    let mut out = Exposition::new();
    let m = get();
    for group in GROUPS {
        group(m, &mut out);
    }
    for source in sources {
        source.collect(&mut out);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(Endpoint::NAMES.len(), Endpoint::Rejected as usize + 1);
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(method_index("GET"), 0);
        assert_eq!(method_index("BREW"), METHODS.len() - 1);
        assert_eq!(status_index(200), 1);
        assert_eq!(status_index(599), STATUSES.len());
        assert_eq!(Endpoint::name_of(200), "unknown");
    }

    /// What one request's recording costs (`cargo test --release --lib
    /// recording_cost -- --nocapture`): two threads on the same series,
    /// the contended case. Asserted far above what it measures.
    #[test]
    fn recording_cost() {
        const N: u64 = 2_000_000;
        let m = get();
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for i in 0..N {
                        let took = Duration::from_micros(i % 3000);
                        m.requests
                            .observe(Endpoint::Manifest.label(), "GET", 200, took);
                        m.transport.bytes_sent.add(512);
                        m.transport.bytes_received.add(0);
                    }
                });
            }
        });
        let per = start.elapsed().as_nanos() as f64 / (2 * N) as f64;
        println!("recording one request: {per:.1} ns (2 threads, one series)");
        assert!(per < 5_000.0, "{per} ns per request");
        assert!(m.requests.count(Endpoint::Manifest, "GET", 200) >= 2 * N);
    }

    #[test]
    fn an_observation_counts_once_in_its_slot_and_bucket() {
        let r = Requests::new();
        r.observe(
            Endpoint::Manifest.label(),
            "GET",
            200,
            Duration::from_millis(3),
        );
        r.observe(
            Endpoint::Manifest.label(),
            "BREW",
            299,
            Duration::from_secs(500),
        );
        assert_eq!(r.count(Endpoint::Manifest, "GET", 200), 1);
        assert_eq!(r.count(Endpoint::Manifest, "other", 999), 1);
        let e = Endpoint::Manifest as usize;
        assert_eq!(r.buckets[e][2].load(R), 1, "3 ms: the 5 ms bucket");
        assert_eq!(r.buckets[e][BUCKETS - 1].load(R), 1, "over every bound");
        assert_eq!(r.micros[e].load(R), 3_000 + 500_000_000);
    }
}
