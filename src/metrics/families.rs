//! The families each in-process group writes: names, help and types of
//! the counters in [`Metrics`], read with relaxed loads at scrape time.
//!
//! It must never write a label value that is not one of the fixed sets of
//! `metrics`, nor a series whose count is zero where the set is large.

use super::*;

pub(super) fn requests(m: &Metrics, out: &mut Exposition) {
    let name = "soute_http_requests_total";
    out.family(
        name,
        Kind::Counter,
        "HTTP requests answered, by endpoint kind, method and status",
    );
    let r = &m.requests;
    for e in 0..Endpoint::COUNT {
        for (mi, method) in METHODS.iter().enumerate() {
            for si in 0..STATUS_SLOTS {
                let n = r.counts[(e * METHODS.len() + mi) * STATUS_SLOTS + si].load(R);
                if n == 0 {
                    continue;
                }
                let status = STATUSES.get(si).map(u16::to_string);
                let labels = [
                    ("endpoint", Endpoint::name_of(e as u8)),
                    ("method", *method),
                    ("status", status.as_deref().unwrap_or("other")),
                ];
                out.sample(name, &labels, n as f64);
            }
        }
    }
    let name = "soute_http_request_duration_seconds";
    out.family(
        name,
        Kind::Histogram,
        "time from a request's head to its last response byte written (or handed to the loop)",
    );
    for e in 0..Endpoint::COUNT {
        let counts: Vec<u64> = r.buckets[e].iter().map(|c| c.load(R)).collect();
        if counts.iter().all(|&c| c == 0) {
            continue;
        }
        let sum = r.micros[e].load(R) as f64 / 1e6;
        let labels = [("endpoint", Endpoint::name_of(e as u8))];
        out.histogram(name, &labels, &DURATION_BOUNDS, &counts, sum);
    }
    out.single(
        "soute_uploads_in_progress",
        Kind::Gauge,
        "requests streaming an upload body now",
        m.uploads_in_progress.get() as f64,
    );
}

pub(super) fn transport(m: &Metrics, out: &mut Exposition) {
    let t = &m.transport;
    let c = |n: &Counter| n.get() as f64;
    let g = |n: &Gauge| n.get() as f64;
    out.single(
        "soute_http_connections_accepted_total",
        Kind::Counter,
        "connections accepted (refused ones included)",
        c(&t.accepted),
    );
    out.single(
        "soute_http_connections_open",
        Kind::Gauge,
        "connections open now",
        g(&t.open),
    );
    out.single(
        "soute_http_connections_idle",
        Kind::Gauge,
        "connections held by the readiness loop, not by a worker: idle keep-alive, heads and handshakes in progress, file bodies it sends",
        g(&t.in_loop),
    );
    let name = "soute_http_connections_refused_total";
    out.family(
        name,
        Kind::Counter,
        "connections or requests refused by the transport's caps",
    );
    for (i, reason) in REFUSED.iter().enumerate() {
        out.sample(name, &[("reason", reason)], c(&t.refused[i]));
    }
    out.single(
        "soute_http_workers",
        Kind::Gauge,
        "worker threads started",
        g(&t.workers_started),
    );
    out.single(
        "soute_http_workers_busy",
        Kind::Gauge,
        "worker threads serving a connection now",
        g(&t.workers_busy),
    );
    out.single(
        "soute_http_received_bytes_total",
        Kind::Counter,
        "request body bytes read",
        c(&t.bytes_received),
    );
    out.single(
        "soute_http_sent_bytes_total",
        Kind::Counter,
        "response body bytes written",
        c(&t.bytes_sent),
    );
}

pub(super) fn auth(m: &Metrics, out: &mut Exposition) {
    let a = &m.auth;
    let name = "soute_login_failures_total";
    out.family(name, Kind::Counter, "failed logins, by what was wrong");
    for (i, reason) in LOGIN_FAILURES.iter().enumerate() {
        out.sample(
            name,
            &[("reason", reason)],
            a.login_failures[i].get() as f64,
        );
    }
    out.single(
        "soute_login_throttled_total",
        Kind::Counter,
        "logins answered 429 because of earlier failures (the throttle)",
        a.throttled.get() as f64,
    );
    out.single(
        "soute_password_checks_total",
        Kind::Counter,
        "password checks run by the verifier pool",
        a.checks_run.get() as f64,
    );
    out.single(
        "soute_password_checks_queued",
        Kind::Gauge,
        "password checks waiting for a verifier thread now",
        a.checks_queued.get() as f64,
    );
    out.single(
        "soute_password_check_rejections_total",
        Kind::Counter,
        "password checks refused because the verifier queue was full (429)",
        a.check_rejections.get() as f64,
    );
}

pub(super) fn gc(m: &Metrics, out: &mut Exposition) {
    let gc = &m.gc;
    let c = |n: &Counter| n.get() as f64;
    out.single(
        "soute_gc_runs_total",
        Kind::Counter,
        "garbage collections run by this server (dry runs not counted)",
        c(&gc.runs),
    );
    out.single(
        "soute_gc_failures_total",
        Kind::Counter,
        "garbage collections that failed",
        c(&gc.failures),
    );
    out.single(
        "soute_gc_duration_seconds_total",
        Kind::Counter,
        "time spent in garbage collection",
        gc.micros.get() as f64 / 1e6,
    );
    out.single(
        "soute_gc_freed_bytes_total",
        Kind::Counter,
        "bytes of blobs, manifests and upload files garbage collection removed",
        c(&gc.freed_bytes),
    );
    out.single(
        "soute_gc_deleted_blobs_total",
        Kind::Counter,
        "blobs garbage collection removed",
        c(&gc.blobs_deleted),
    );
    out.single(
        "soute_gc_deleted_manifests_total",
        Kind::Counter,
        "manifests garbage collection removed",
        c(&gc.manifests_deleted),
    );
    out.single(
        "soute_upstream_errors_total",
        Kind::Counter,
        "fetches from upstream registries that failed",
        m.upstream_errors.get() as f64,
    );
}
