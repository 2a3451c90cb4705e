//! Health endpoints, without auth: `GET /livez` (the process answers) and
//! `GET /readyz` (it can do its job: the database takes a write, the data
//! folder is there, free disk is above the reserve, the TLS certificate is
//! valid for more than 7 days). Each answers JSON naming every check, 200
//! when all pass, 503 otherwise.
//!
//! Readiness is computed at most once per [`READY_TTL`] and shared: a flood
//! of `/readyz` costs one probe write a second, whatever its rate. Each check
//! has a public reason (no path, no byte figures: what an anonymous caller
//! sees) and a full one (the data folder's path, free and reserve bytes,
//! errors) for administrators and the `--metrics-listen` listener.
//!
//! It must never let credentials change the status, write to SQLite more
//! than once per [`READY_TTL`], or give anyone but an administrator or the
//! metrics listener more than pass/fail and the public reason.

use super::headers::json_response;
use super::Api;
use crate::http::Response;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a readiness answer is reused.
pub const READY_TTL: Duration = Duration::from_secs(1);
/// A certificate that expires sooner than this makes the server not ready.
pub const CERT_MARGIN_SECS: i64 = 7 * 86_400;

/// What the health and metrics endpoints need besides the registry.
#[derive(Debug, Clone, Default)]
pub struct HealthSettings {
    /// The certificate the server presents (`None`: no TLS).
    pub certificate: Option<PathBuf>,
    /// `--metrics off`: `/metrics` is not served.
    pub metrics_off: bool,
}

/// The health endpoints' state: settings and the cached answers.
#[derive(Default)]
pub(super) struct Health {
    pub(super) settings: HealthSettings,
    /// When, the status, the full body and the public one.
    ready: Mutex<Option<(Instant, u16, Value, Value)>>,
    pub(super) started: Option<Instant>,
    /// What is stored, with when it was read and how long it may be reused.
    pub(super) stored: Mutex<Option<super::metrics::StoredCache>>,
}

impl Health {
    pub(super) fn new(settings: HealthSettings) -> Health {
        Health {
            settings,
            started: Some(Instant::now()),
            ..Health::default()
        }
    }
}

/// One check's outcome: the public reason and the full detail.
fn check(ok: bool, public: &str, detail: String) -> (Value, Value) {
    (
        json!({ "ok": ok, "detail": detail }),
        json!({ "ok": ok, "detail": public }),
    )
}

impl Api {
    /// `GET /livez`.
    pub(super) fn livez(&self) -> Response {
        let up = self.health.started.map_or(0, |s| s.elapsed().as_secs());
        json_response(200, &json!({ "status": "live", "uptime_seconds": up }))
    }

    /// `GET /readyz`; `full`: with every check's full detail.
    pub(super) fn readyz(&self, full: bool) -> Response {
        let mut cached = self
            .health
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fresh = cached
            .as_ref()
            .is_some_and(|(at, _, _, _)| at.elapsed() < READY_TTL);
        if !fresh {
            let (checks, public) = self.readiness_checks();
            let ready = checks.values().all(|c| c["ok"] == true);
            let checked_at_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let body = |checks: Map<String, Value>| {
                json!({
                    "status": if ready { "ready" } else { "not ready" },
                    "checks": Value::Object(checks),
                    "checked_at_ms": checked_at_ms,
                })
            };
            let status = if ready { 200 } else { 503 };
            *cached = Some((Instant::now(), status, body(checks), body(public)));
        }
        match cached.as_ref() {
            Some((_, status, all, public)) => {
                json_response(*status, if full { all } else { public })
                    .header("Cache-Control", "no-store")
            }
            None => json_response(503, &json!({ "status": "not ready" })),
        }
    }

    /// Every check, full and public.
    fn readiness_checks(&self) -> (Map<String, Value>, Map<String, Value>) {
        let (mut checks, mut public) = (Map::new(), Map::new());
        let mut insert = |name: &str, (full, open): (Value, Value)| {
            checks.insert(name.into(), full);
            public.insert(name.into(), open);
        };
        let db = match self.registry.probe_write() {
            Ok(()) => check(true, "a write committed", "a write committed".into()),
            Err(e) => check(false, "a write failed", format!("a write failed: {e}")),
        };
        insert("database", db);
        let dir = self.registry.data_dir();
        let folder = match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                check(true, "it is there", format!("{} is there", dir.display()))
            }
            Ok(_) => check(
                false,
                "it is not a folder",
                format!("{} is not a folder", dir.display()),
            ),
            Err(e) => check(
                false,
                "it cannot be read",
                format!("{}: {e}", dir.display()),
            ),
        };
        insert("data_folder", folder);
        let disk = match self.registry.disk() {
            Ok(d) if d.free > d.reserve => check(
                true,
                "free space is above the disk reserve",
                format!("{} bytes free, reserve {} bytes", d.free, d.reserve),
            ),
            Ok(d) => check(
                false,
                "free space is not above the disk reserve",
                format!(
                    "{} bytes free, not above the disk reserve of {} bytes",
                    d.free, d.reserve
                ),
            ),
            Err(e) => check(false, "free space cannot be read", e.to_string()),
        };
        insert("disk", disk);
        if let Some(cert) = &self.health.settings.certificate {
            let now = crate::db::now();
            let (ok, detail) = match crate::tls::not_after_of_file(cert) {
                Ok(end) if end - now > CERT_MARGIN_SECS => (
                    true,
                    format!(
                        "the certificate is valid for {} more days",
                        (end - now) / 86_400
                    ),
                ),
                Ok(end) if end > now => (
                    false,
                    format!(
                        "the certificate expires in {} hours (less than 7 days)",
                        (end - now) / 3600
                    ),
                ),
                Ok(_) => (false, "the certificate has expired".into()),
                Err(e) => (false, e),
            };
            // What the certificate says is public; a read error may name its path.
            let public = match ok || detail.starts_with("the certificate") {
                true => detail.clone(),
                false => "the certificate cannot be read".into(),
            };
            insert("tls_certificate", check(ok, &public, detail));
        }
        (checks, public)
    }
}
