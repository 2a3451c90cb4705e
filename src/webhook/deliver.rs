//! The delivery thread: one per server, started by `app`. In a loop it saves
//! the queued pull and login-failure events, reads the webhooks, and for
//! each one whose back-off has passed POSTs its oldest undelivered events
//! (at most [`BATCH`] outbox rows, in order, in one envelope); a 2xx answer deletes them
//! from the outbox, anything else (another status, a redirect, a refused
//! connection, a timeout) leaves them and doubles the webhook's wait
//! ([`retry_delay`]: 0.5 s, 1 s, 2 s ... at most 5 min). Events of one
//! webhook go out in the order they were recorded, each batch retried as
//! is until it is acknowledged; webhooks wait for each other only during a
//! request (at most [`REQUEST_TIMEOUT`]). It sleeps until woken by a commit,
//! a retry is due, or a second passed (webhooks added by `soute webhook add`
//! are seen within a second), then [`LINGER`]s so a burst goes in one batch;
//! while pushes keep committing it sends at most one batch per [`LINGER`]
//! (one read, one POST, one acknowledging transaction), so it never competes
//! with them for the write lock more than ten times a second.
//!
//! Delivery is at least once: the outbox row goes only after the receiver
//! acknowledged it, so a crash between the two sends it again, with the same
//! event id. The back-off state lives in memory; after a restart every
//! webhook is tried at once.
//!
//! It must never run on a request thread, hold a transaction open while it
//! sends, follow a redirect, use a proxy, or log a secret.

use super::envelope::{self, MEDIA_TYPE, SIGNATURE_HEADER};
use super::stats;
use crate::db::webhooks::{self, OutboxRow, WebhookRow};
use crate::registry::Registry;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Outbox rows sent in one envelope at most (a row holds one change's
/// events for the webhook: a push's `push` and `tag` events).
pub const BATCH: usize = 200;
/// Connecting to a receiver gives up after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One delivery (connect, send, answer) gives up after this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry waits this long; each failure doubles it.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// The longest the thread sleeps with nothing due.
const IDLE: Duration = Duration::from_secs(1);
/// Once woken, it waits this long for more events before it sends: under a
/// burst of pushes, one request and one acknowledging transaction carry
/// many events instead of one or two each.
pub const LINGER: Duration = Duration::from_millis(100);
/// The most of an answer's body read (and thrown away).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// How long to wait after the `failures`-th failure in a row.
pub fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    FIRST_RETRY.saturating_mul(1u32 << doublings).min(MAX_RETRY)
}

/// A webhook's failures in a row and when it may be tried again.
#[derive(Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

/// The running delivery thread; [`Delivery::stop`] ends it.
pub struct Delivery {
    stop: Arc<AtomicBool>,
    registry: Arc<Registry>,
    handle: JoinHandle<()>,
}

impl Delivery {
    pub fn start(registry: Arc<Registry>) -> std::io::Result<Delivery> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (stop, registry) = (stop.clone(), registry.clone());
            std::thread::Builder::new()
                .name("soute-webhooks".into())
                .spawn(move || Deliverer::new().run(&registry, &stop))?
        };
        Ok(Delivery {
            stop,
            registry,
            handle,
        })
    }

    /// Ends the thread (after the delivery in flight, if any).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.registry.webhooks.wake();
        let _ = self.handle.join();
    }
}

struct Deliverer {
    agent: ureq::Agent,
    backoff: HashMap<i64, Backoff>,
    /// The last round's error and when it was logged: the same error is
    /// logged again once a minute at most (a failed flush fails every round).
    last_error: Option<(String, Instant)>,
}

/// A round that fails the same way is logged at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// The HTTP client of every delivery: soute's rustls with the system's
/// roots, no redirects, no proxy, bounded in time.
pub fn agent() -> ureq::Agent {
    let roots = crate::upstream::client::roots(None).unwrap_or(ureq::tls::RootCerts::WebPki);
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(REQUEST_TIMEOUT))
        .tls_config(tls)
        .user_agent(concat!("soute/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// POSTs `events` (JSON objects) in one envelope, signed when `secret` is
/// set. Ok with the status on 2xx; the reason otherwise.
pub fn post<'a>(
    agent: &ureq::Agent,
    url: &str,
    secret: Option<&str>,
    events: impl IntoIterator<Item = &'a str>,
) -> Result<u16, String> {
    let body = envelope::envelope(events);
    let mut req = agent.post(url).header("Content-Type", MEDIA_TYPE);
    if let Some(secret) = secret {
        req = req.header(SIGNATURE_HEADER, envelope::signature(secret, &body));
    }
    match req.send(&body[..]) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let mut sink = Vec::new();
            let _ = resp
                .body_mut()
                .as_reader()
                .take(MAX_ANSWER_BYTES)
                .read_to_end(&mut sink);
            match status {
                200..=299 => Ok(status),
                300..=399 => Err(format!(
                    "answered HTTP {status} (redirects are not followed)"
                )),
                _ => Err(format!("answered HTTP {status}")),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

impl Deliverer {
    fn new() -> Deliverer {
        Deliverer {
            agent: agent(),
            backoff: HashMap::new(),
            last_error: None,
        }
    }

    fn run(mut self, registry: &Registry, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let commits = registry.webhooks.commits();
            let wait = match self.round(registry) {
                Ok(wait) => {
                    self.last_error = None;
                    wait
                }
                Err(e) => {
                    let e = e.to_string();
                    let repeat = self
                        .last_error
                        .as_ref()
                        .is_some_and(|(last, at)| *last == e && at.elapsed() < ERROR_LOG_EVERY);
                    if !repeat {
                        log::warn!("webhook delivery: {e}");
                        self.last_error = Some((e, Instant::now()));
                    }
                    IDLE
                }
            };
            if !wait.is_zero() {
                registry.webhooks.wait(wait);
                std::thread::sleep(LINGER);
            } else if registry.webhooks.commits() != commits {
                // More is ready, but pushes are committing: one batch per
                // LINGER, so deliveries yield the write lock and the CPU to
                // them (a backlog with no writer drains at full speed).
                std::thread::sleep(LINGER);
            }
        }
    }

    /// One pass over the webhooks; returns how long to sleep (zero: more is
    /// ready now).
    fn round(&mut self, registry: &Registry) -> crate::error::Result<Duration> {
        registry.webhooks.save_queued(&registry.db)?;
        let hooks = registry.db.read(webhooks::all)?;
        registry.webhooks.refresh_wanted(&hooks);
        stats::set_backlog(hooks.iter().map(|h| h.pending).sum());
        self.backoff
            .retain(|id, _| hooks.iter().any(|h| h.id == *id));
        let mut wait = IDLE;
        for hook in hooks.iter().filter(|h| h.pending > 0) {
            let now = Instant::now();
            let backoff = self.backoff.entry(hook.id).or_default();
            if let Some(at) = backoff.retry_at.filter(|at| *at > now) {
                wait = wait.min(at - now);
                continue;
            }
            let rows = registry.db.read(|c| webhooks::oldest(c, hook.id, BATCH))?;
            let Some(last) = rows.last() else { continue };
            // Never announce a change before it is on disk.
            registry.db.wait_read_durable()?;
            match post(
                &self.agent,
                &hook.url,
                hook.secret.as_deref(),
                rows.iter().map(|r| r.events_json.as_str()),
            ) {
                Ok(_) => {
                    let last_seq = last.seq;
                    let gone = registry
                        .db
                        .write_unsynced(|tx| webhooks::acknowledge(tx, hook.id, last_seq))?;
                    stats::delivered(gone);
                    if backoff.failures > 0 {
                        log::info!(
                            "webhook {}: delivering again after {} failed attempt(s)",
                            hook.name,
                            backoff.failures
                        );
                    }
                    *backoff = Backoff::default();
                    if hook.pending > gone {
                        wait = Duration::ZERO;
                    }
                }
                Err(why) => {
                    backoff.failures += 1;
                    let delay = retry_delay(backoff.failures);
                    backoff.retry_at = Some(Instant::now() + delay);
                    wait = wait.min(delay);
                    stats::failed_attempt();
                    failed(registry, hook, &rows, backoff.failures, delay, &why);
                }
            }
        }
        Ok(wait)
    }
}

/// Logs a failed attempt (the first, then each time the wait doubled past a
/// minute, so a dead receiver costs a line every few minutes) and records
/// it as the webhook's last error.
fn failed(
    registry: &Registry,
    hook: &WebhookRow,
    rows: &[OutboxRow],
    failures: u32,
    delay: Duration,
    why: &str,
) {
    if failures == 1 || delay >= Duration::from_secs(60) {
        let events: u64 = rows.iter().map(|r| r.count).sum();
        log::warn!(
            "webhook {}: delivering {} event(s) to {} failed ({why}); attempt {failures}, \
             next in {:.1} s",
            hook.name,
            events,
            hook.url,
            delay.as_secs_f64()
        );
    }
    let why = why.chars().take(256).collect::<String>();
    if let Err(e) = registry
        .db
        .write_unsynced(|tx| webhooks::set_error(tx, hook.id, &why))
    {
        log::warn!(
            "webhook {}: recording its last error failed: {e}",
            hook.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_five_minutes() {
        let ms = |n| retry_delay(n).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(4)], [500, 1000, 2000, 4000]);
        assert_eq!(retry_delay(10), Duration::from_secs(256));
        assert_eq!(retry_delay(11), MAX_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }
}
