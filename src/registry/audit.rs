//! The audit log: who pushed, deleted, signed in, failed or was refused,
//! when and from where. [`Registry::audit`] is the one way a row is written:
//! it cleans and cuts the text (256 bytes per column, control characters
//! replaced), rate-limits the events anyone can cause (failed logins and
//! refusals: at most [`NOISY_PER_KEY`] a minute per actor, address, action,
//! repository and status, one for attempts answered 429 (throttled logins),
//! and [`NOISY_PER_MINUTE`] in all, then one `suppressed`
//! row for the rest of the minute), commits without waiting for fsync, and
//! prunes to the retention limits every so many inserts
//! ([`AuditRetention::prune_every`]).
//!
//! Failed logins the rate limit admits also go to the webhooks
//! (`login-failure` events), whatever the retention.
//!
//! It must never fail the caller's request: a failed write is a warning in
//! the log. It must never record a password, hash or token secret (callers
//! pass names and reasons only).

use super::Registry;
use crate::auth::Identity;
use crate::db::{self, audit::AuditRow};
use crate::error::Result;
use std::collections::hash_map::{HashMap, RandomState};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest text stored in one column, in bytes (cut on a character boundary).
pub const MAX_FIELD_BYTES: usize = 256;
/// Noisy events recorded per (action, actor, address, repository, status)
/// per minute; 1 for status 429 (a login refused by the throttle).
pub const NOISY_PER_KEY: u32 = 10;
/// Noisy events recorded per minute in all.
pub const NOISY_PER_MINUTE: u32 = 300;
/// Default row limit (`--audit-keep`).
pub const DEFAULT_AUDIT_KEEP: u64 = 100_000;
/// Default age limit in days (`--audit-days`).
pub const DEFAULT_AUDIT_DAYS: u64 = 90;

const WINDOW: Duration = Duration::from_secs(60);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A password verified by argon2 (not a login-cache hit).
    Login,
    /// A wrong password, unknown user, bad, expired or revoked token, or a
    /// throttled attempt.
    LoginFailed,
    /// A manifest stored (repository, reference and digest).
    Push,
    /// A manifest, tag or blob deleted.
    Delete,
    /// A request refused by the access rules (401 or 403) for an action on
    /// a repository or the operator endpoints.
    Denied,
    /// An operator action (`/v2/_soute/gc`).
    Admin,
    /// A token handed out (the Docker token service).
    TokenIssued,
    /// Noisy events of the rest of a minute were not recorded.
    Suppressed,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Push => "push",
            AuditAction::Delete => "delete",
            AuditAction::Denied => "denied",
            AuditAction::Admin => "admin",
            AuditAction::TokenIssued => "token_issued",
            AuditAction::Suppressed => "suppressed",
        }
    }

    /// Events anyone can cause, at request rate: rate-limited here, and
    /// pruned to half the log first (`db::audit::NOISY_ACTIONS`).
    pub fn is_noisy(self) -> bool {
        matches!(
            self,
            AuditAction::LoginFailed | AuditAction::Denied | AuditAction::Suppressed
        )
    }
}

/// One event to record; `Registry::audit` adds the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub action: AuditAction,
    /// A user name, `token:NAME` or `anonymous` (see [`AuditEvent::actor_of`]).
    pub actor: String,
    /// The client's IP address.
    pub address: String,
    /// Empty when the event concerns no repository.
    pub repository: String,
    /// Reference, digest or reason.
    pub detail: String,
    /// The HTTP status answered.
    pub status: u16,
}

impl AuditEvent {
    pub fn new(action: AuditAction, actor: impl Into<String>, address: IpAddr) -> AuditEvent {
        AuditEvent {
            action,
            actor: actor.into(),
            address: address.to_canonical().to_string(),
            repository: String::new(),
            detail: String::new(),
            status: 0,
        }
    }

    pub fn repository(mut self, repository: impl Into<String>) -> AuditEvent {
        self.repository = repository.into();
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> AuditEvent {
        self.detail = detail.into();
        self
    }

    pub fn status(mut self, status: u16) -> AuditEvent {
        self.status = status;
        self
    }

    /// How an identity is named in the log: the user, `token:NAME`, or `anonymous`.
    pub fn actor_of(who: &Identity) -> String {
        match who {
            Identity::Anonymous => "anonymous".to_string(),
            Identity::User(user) => user.clone(),
            Identity::Token { token, .. } => format!("token:{token}"),
            Identity::Bearer { user, .. } => user.clone(),
        }
    }
}

/// How long the log keeps events: at most `keep` rows (0: record nothing)
/// and, when `days` is set, nothing older.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    pub keep: u64,
    pub days: Option<u64>,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            keep: DEFAULT_AUDIT_KEEP,
            days: Some(DEFAULT_AUDIT_DAYS),
        }
    }
}

impl AuditRetention {
    /// Inserts between two prunes: 1 % of `keep` (at most 1,000), so the
    /// table holds at most `keep + keep / 100` rows.
    pub fn prune_every(&self) -> u64 {
        (self.keep / 100).clamp(1, 1000)
    }

    /// Noisy rows kept at most: half the log.
    pub fn keep_noisy(&self) -> u64 {
        (self.keep / 2).max(1)
    }
}

/// The in-memory state of the log: retention, the insert counter, and the
/// rate limit of noisy events (entries only for keys recorded in the last
/// minute, so at most [`NOISY_PER_MINUTE`] x 2).
pub(crate) struct AuditLog {
    retention: AuditRetention,
    inserts: AtomicU64,
    noise: Mutex<Noise>,
}

struct Noise {
    hasher: RandomState,
    window_start: Instant,
    in_window: u32,
    /// Per key: (start of its window, events recorded in it).
    keys: HashMap<u64, (Instant, u32)>,
}

/// What the rate limit lets through.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Record,
    /// The minute's total is reached: record a `suppressed` row instead.
    RecordSuppressed,
    Drop,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog::new(AuditRetention::default())
    }
}

impl AuditLog {
    pub(crate) fn new(retention: AuditRetention) -> AuditLog {
        AuditLog {
            retention,
            inserts: AtomicU64::new(0),
            noise: Mutex::new(Noise {
                hasher: RandomState::new(),
                window_start: Instant::now(),
                in_window: 0,
                keys: HashMap::new(),
            }),
        }
    }

    fn admit(&self, e: &AuditEvent, now: Instant) -> Admit {
        if !e.action.is_noisy() {
            return Admit::Record;
        }
        let mut n = self.noise.lock().unwrap_or_else(|p| p.into_inner());
        if now.duration_since(n.window_start) >= WINDOW {
            n.window_start = now;
            n.in_window = 0;
            n.keys
                .retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        if n.in_window > NOISY_PER_MINUTE {
            return Admit::Drop;
        }
        let key = n
            .hasher
            .hash_one((e.action, &e.actor, &e.address, &e.repository, e.status));
        let (start, count) = n.keys.get(&key).copied().unwrap_or((now, 0));
        let (start, count) = if now.duration_since(start) >= WINDOW {
            (now, 0)
        } else {
            (start, count)
        };
        let per_key = if e.status == 429 { 1 } else { NOISY_PER_KEY };
        if count >= per_key {
            return Admit::Drop;
        }
        n.in_window += 1;
        if n.in_window > NOISY_PER_MINUTE {
            return Admit::RecordSuppressed;
        }
        n.keys.insert(key, (start, count + 1));
        Admit::Record
    }
}

/// `s` with control characters replaced and cut to [`MAX_FIELD_BYTES`].
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_FIELD_BYTES));
    for c in s.chars() {
        let c = if c.is_control() { '\u{fffd}' } else { c };
        if out.len() + c.len_utf8() > MAX_FIELD_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

impl Registry {
    /// Use `retention` for the audit log (before the registry is shared).
    pub fn set_audit_retention(&mut self, retention: AuditRetention) {
        self.audit = AuditLog::new(retention);
    }

    /// Records `event` (see the module comment for what is cut, limited and
    /// pruned). Never fails: a write that fails is logged.
    pub fn audit(&self, event: &AuditEvent) {
        let log = &self.audit;
        let admit = log.admit(event, Instant::now());
        // Webhooks get the failed logins the rate limit lets through.
        if event.action == AuditAction::LoginFailed && admit != Admit::Drop {
            self.webhooks.login_failed(&event.actor, &event.address);
        }
        if log.retention.keep == 0 {
            return;
        }
        let suppressed;
        let event = match admit {
            Admit::Record => event,
            Admit::Drop => return,
            Admit::RecordSuppressed => {
                log::warn!(
                    "more than {NOISY_PER_MINUTE} failed logins and refusals in a minute: \
                     the audit log records no more of them until the minute ends"
                );
                suppressed = AuditEvent {
                    action: AuditAction::Suppressed,
                    actor: String::new(),
                    address: String::new(),
                    repository: String::new(),
                    detail: format!(
                        "more than {NOISY_PER_MINUTE} failed logins and refusals this minute; \
                         the rest of the minute is not recorded"
                    ),
                    status: 0,
                };
                &suppressed
            }
        };
        let at = db::now();
        let prune = log
            .inserts
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(log.retention.prune_every());
        let retention = log.retention;
        let result = self.db.write_unsynced(|tx| {
            db::audit::insert(
                tx,
                at,
                &clean(&event.actor),
                &clean(&event.address),
                event.action.as_str(),
                &clean(&event.repository),
                &clean(&event.detail),
                event.status,
            )?;
            if prune {
                let before = retention.days.map(|d| {
                    at.saturating_sub(i64::try_from(d).unwrap_or(i64::MAX).saturating_mul(86_400))
                });
                db::audit::prune(tx, retention.keep, retention.keep_noisy(), before)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            log::warn!(
                "recording a {} event in the audit log failed: {e}",
                event.action.as_str()
            );
        }
    }

    /// Recorded events at or after `since` (seconds since the epoch), oldest
    /// first; the newest `limit` when there are more.
    pub fn audit_events(&self, since: i64, limit: u64) -> Result<Vec<AuditRow>> {
        self.db.read(|c| db::audit::since(c, since, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn text_is_cleaned_and_cut_on_a_character_boundary() {
        assert_eq!(clean("alice"), "alice");
        assert_eq!(clean("a\nb\x1b[31m"), "a\u{fffd}b\u{fffd}[31m");
        let long = "é".repeat(200);
        let cut = clean(&long);
        assert!(cut.len() <= MAX_FIELD_BYTES && cut.len() >= MAX_FIELD_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn noisy_events_are_limited_per_key_and_in_all() {
        let log = AuditLog::default();
        let now = Instant::now();
        let fail = |user: &str| AuditEvent::new(AuditAction::LoginFailed, user, IP);
        let recorded = (0..50)
            .filter(|_| log.admit(&fail("alice"), now) == Admit::Record)
            .count();
        assert_eq!(recorded, NOISY_PER_KEY as usize);
        // Throttled attempts of the same pair: one a minute.
        let throttled = fail("alice").status(429);
        let recorded = (0..50)
            .filter(|_| log.admit(&throttled, now) == Admit::Record)
            .count();
        assert_eq!(recorded, 1);
        // Pushes are never limited.
        let push = AuditEvent::new(AuditAction::Push, "alice", IP);
        assert!((0..1000).all(|_| log.admit(&push, now) == Admit::Record));
        // Many names: the total stops them, with one suppressed row.
        let outcomes: Vec<Admit> = (0..1000)
            .map(|i| log.admit(&fail(&format!("u{i}")), now))
            .collect();
        let records = outcomes.iter().filter(|a| **a == Admit::Record).count();
        let notes = outcomes
            .iter()
            .filter(|a| **a == Admit::RecordSuppressed)
            .count();
        assert_eq!(
            records + NOISY_PER_KEY as usize + 1,
            NOISY_PER_MINUTE as usize
        );
        assert_eq!(notes, 1);
        // A minute later the window opens again, and the map was emptied of old keys.
        let later = now + WINDOW;
        assert_eq!(log.admit(&fail("alice"), later), Admit::Record);
        let keys = log.noise.lock().expect("noise").keys.len();
        assert_eq!(keys, 1);
    }

    #[test]
    fn actors_are_named() {
        assert_eq!(AuditEvent::actor_of(&Identity::Anonymous), "anonymous");
        assert_eq!(AuditEvent::actor_of(&Identity::User("bob".into())), "bob");
        let token = Identity::Token {
            user: "bob".into(),
            token: "ci".into(),
            scopes: Vec::new(),
        };
        assert_eq!(AuditEvent::actor_of(&token), "token:ci");
    }

    #[test]
    fn prune_interval_bounds_the_table() {
        let r = |keep| AuditRetention { keep, days: None };
        assert_eq!(r(100_000).prune_every(), 1000);
        assert_eq!(r(50).prune_every(), 1);
        assert_eq!(r(5_000).prune_every(), 50);
        assert_eq!(r(10_000_000).prune_every(), 1000);
    }
}
