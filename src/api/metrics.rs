//! `GET /metrics`: the Prometheus page. The process's counters
//! (`crate::metrics`) plus what is read at scrape time: what is stored
//! (SQLite aggregates; when they took 5 ms or more, reused for 200 x the
//! time they took, at most 60 s, so a big registry is not scanned on every
//! scrape), upstream
//! counters, the disk and its reserve, and the last GC, backup and verify.
//! Also [`DebugEndpoints`], the handler of the unauthenticated listener
//! (`--metrics-listen`): `/metrics`, `/livez` and `/readyz` only.
//!
//! The only label values written here are fixed words and the names the
//! operator gave upstreams: never a repository or user name.
//!
//! It must never decide access (`api::access` lets `/metrics` through to
//! admins and `metrics` scopes) nor write SQL.

use super::routes::Route;
use super::Api;
use crate::db::stats::Stored;
use crate::error::{Error, Result};
use crate::http::{Body, Handler, Request, Response};
use crate::metrics::{self, Collect, Endpoint, Exposition, Kind};
use crate::registry::Job;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

/// The longest time a reading of what is stored is reused.
const STORED_TTL_MAX: Duration = Duration::from_secs(60);
/// A reading quicker than this is not reused (a small registry's is ~1 ms).
const STORED_CACHE_FROM: Duration = Duration::from_millis(5);

/// What is stored, when it was read and until when it is reused.
pub(super) struct StoredCache {
    until: Instant,
    stored: Arc<Stored>,
}

/// The `endpoint` label of a route.
pub(super) fn endpoint_of(route: &Route) -> Endpoint {
    match route {
        Route::Base => Endpoint::Base,
        Route::Catalog => Endpoint::Catalog,
        Route::Manifest { .. } => Endpoint::Manifest,
        Route::Blob { .. } => Endpoint::Blob,
        Route::UploadStart { .. } | Route::Upload { .. } => Endpoint::Upload,
        Route::Tags { .. } => Endpoint::Tags,
        Route::Referrers { .. } => Endpoint::Referrers,
        Route::V1Ping | Route::V1Search => Endpoint::Search,
        Route::Token => Endpoint::Token,
        Route::AdminGc | Route::AdminDu => Endpoint::Admin,
        Route::CaCert => Endpoint::CaCert,
        Route::Livez | Route::Readyz => Endpoint::Health,
        Route::Metrics => Endpoint::Metrics,
    }
}

impl Api {
    /// `GET /metrics`.
    pub(super) fn metrics_page(&self) -> Result<Response> {
        if self.health.settings.metrics_off {
            return Err(Error::NoEndpoint(
                "metrics are off (soute serve --metrics off)".into(),
            ));
        }
        let stored = self.stored_now();
        let sources = ScrapeTime { api: self, stored };
        let page = metrics::render(&[&sources]);
        Ok(Response::new(200)
            .header("Content-Type", metrics::CONTENT_TYPE)
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(page.into_bytes())))
    }

    /// What is stored: the cached reading while it is fresh, else a new one.
    fn stored_now(&self) -> Option<Arc<Stored>> {
        let mut cache = self
            .health
            .stored
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.until) {
            return Some(c.stored.clone());
        }
        let started = Instant::now();
        match self.registry.stored() {
            Ok(stored) => {
                let took = started.elapsed();
                let stored = Arc::new(stored);
                *cache = (took >= STORED_CACHE_FROM).then(|| StoredCache {
                    until: Instant::now() + (took * 200).min(STORED_TTL_MAX),
                    stored: stored.clone(),
                });
                Some(stored)
            }
            Err(e) => {
                log::warn!("reading what is stored for /metrics failed: {e}");
                None
            }
        }
    }
}

/// The families read at scrape time.
struct ScrapeTime<'a> {
    api: &'a Api,
    stored: Option<Arc<Stored>>,
}

const KINDS: [&str; 2] = ["private", "cached"];

impl Collect for ScrapeTime<'_> {
    fn collect(&self, out: &mut Exposition) {
        if let Some(s) = &self.stored {
            write_stored(s, out);
        }
        let registry = &self.api.registry;
        if let Ok(d) = registry.disk() {
            let gauge = Kind::Gauge;
            let help = "free bytes on the data folder's filesystem (for unprivileged users)";
            out.single("soute_disk_free_bytes", gauge, help, d.free as f64);
            let help = "size of the data folder's filesystem";
            out.single("soute_disk_total_bytes", gauge, help, d.total as f64);
            let help = "free space uploads must leave (--disk-reserve, resolved)";
            out.single("soute_disk_reserve_bytes", gauge, help, d.reserve as f64);
        }
        if let Ok(upstreams) = registry.upstream_counters() {
            write_upstreams(&upstreams, out);
        }
        write_last_runs(self.api, out);
        write_webhooks(out);
        let up = self
            .api
            .health
            .started
            .map_or(0.0, |s| s.elapsed().as_secs_f64());
        out.single(
            "soute_uptime_seconds",
            Kind::Gauge,
            "seconds since this server started",
            up,
        );
        out.family("soute_build_info", Kind::Gauge, "the running version");
        out.sample(
            "soute_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
    }
}

fn write_stored(s: &Stored, out: &mut Exposition) {
    let per_kind = |out: &mut Exposition, name: &str, help: &str, values: [u64; 2]| {
        out.family(name, Kind::Gauge, help);
        for (kind, v) in KINDS.iter().zip(values) {
            out.sample(name, &[("kind", kind)], v as f64);
        }
    };
    per_kind(
        out,
        "soute_repositories",
        "repositories (cached: filled from an upstream)",
        s.repositories,
    );
    per_kind(
        out,
        "soute_manifests",
        "manifests stored",
        s.manifests.map(|a| a.count),
    );
    per_kind(out, "soute_tags", "tags", s.tags);
    per_kind(
        out,
        "soute_blobs",
        "unique blobs stored (cached: only cached repositories link it)",
        s.blobs.map(|a| a.count),
    );
    per_kind(
        out,
        "soute_stored_bytes",
        "bytes of unique blobs and manifests stored",
        [0, 1].map(|i| s.blobs[i].bytes + s.manifests[i].bytes),
    );
    out.single(
        "soute_upload_sessions",
        Kind::Gauge,
        "open upload sessions",
        s.upload_sessions.count as f64,
    );
    out.single(
        "soute_upload_session_bytes",
        Kind::Gauge,
        "bytes acknowledged in open upload sessions",
        s.upload_sessions.bytes as f64,
    );
}

fn write_upstreams(upstreams: &[crate::registry::UpstreamCounters], out: &mut Exposition) {
    type Field = fn(&crate::registry::UpstreamCounters) -> u64;
    let families: [(&str, &str, Field); 4] = [
        (
            "soute_upstream_hits_total",
            "pulls of cached content answered without fetching",
            |u| u.hits,
        ),
        (
            "soute_upstream_misses_total",
            "pulls that fetched from the upstream",
            |u| u.misses,
        ),
        (
            "soute_upstream_fetched_bytes_total",
            "bytes fetched from the upstream",
            |u| u.bytes_fetched,
        ),
        (
            "soute_upstream_served_bytes_total",
            "bytes of cached content served",
            |u| u.bytes_served,
        ),
    ];
    for (name, help, field) in families {
        out.family(name, Kind::Counter, help);
        for u in upstreams {
            out.sample(name, &[("upstream", &u.name)], field(u) as f64);
        }
    }
}

fn write_last_runs(api: &Api, out: &mut Exposition) {
    let runs: Vec<(Job, crate::db::stats::LastRun)> = Job::ALL
        .into_iter()
        .filter_map(|job| Some((job, api.registry.last_run(job).ok()??)))
        .collect();
    let name = "soute_last_run_timestamp_seconds";
    out.family(
        name,
        Kind::Gauge,
        "when gc, backup or verify last ended (any process on this data folder)",
    );
    for (job, run) in &runs {
        out.sample(name, &[("job", job.as_str())], run.at as f64);
    }
    let name = "soute_last_run_success";
    out.family(
        name,
        Kind::Gauge,
        "1 when the last gc, backup or verify succeeded, 0 when it failed",
    );
    for (job, run) in &runs {
        out.sample(name, &[("job", job.as_str())], f64::from(u8::from(run.ok)));
    }
}

/// The handler of the `--metrics-listen` listener: `/metrics`, `/livez`
/// and `/readyz` without auth; everything else is 404.
pub struct DebugEndpoints(pub Arc<Api>);

impl Handler for DebugEndpoints {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        let api = &self.0;
        let read = matches!(req.method.as_str(), "GET" | "HEAD");
        let (endpoint, result) = match (req.path.as_str(), read) {
            ("/metrics", true) => (Endpoint::Metrics, api.metrics_page()),
            ("/livez", true) => (Endpoint::Health, Ok(api.livez())),
            ("/readyz", true) => (Endpoint::Health, Ok(api.readyz(true))),
            ("/metrics" | "/livez" | "/readyz", false) => {
                (Endpoint::Health, Err(super::method_not_allowed()))
            }
            _ => (
                Endpoint::Unknown,
                Err(Error::NoEndpoint(
                    "this listener serves only /metrics, /livez and /readyz".into(),
                )),
            ),
        };
        let mut resp = result.unwrap_or_else(|e| super::error_response(&e, req.id));
        resp.label = endpoint.label();
        resp
    }

    fn rejection(&self, status: u16, reason: &str) -> Response {
        super::transport_errors::rejection(status, reason)
    }

    fn internal_error(&self, request_id: u64) -> Response {
        super::transport_errors::internal_error(request_id)
    }
}

/// Webhook deliveries (`webhook::stats`: totals since start, and the backlog).
fn write_webhooks(out: &mut Exposition) {
    let w = crate::webhook::stats::counters();
    let counter = Kind::Counter;
    let help = "webhook events delivered (acknowledged with a 2xx)";
    out.single(
        "soute_webhook_delivered_total",
        counter,
        help,
        w.delivered as f64,
    );
    let help = "webhook delivery attempts that failed (each retried with back-off)";
    out.single(
        "soute_webhook_failed_attempts_total",
        counter,
        help,
        w.failed_attempts as f64,
    );
    let help = "webhook events dropped (a backlog or the pull/login queue was full)";
    out.single(
        "soute_webhook_dropped_total",
        counter,
        help,
        w.dropped as f64,
    );
    let help = "webhook events waiting for delivery, all webhooks";
    out.single("soute_webhook_backlog", Kind::Gauge, help, w.backlog as f64);
}
