//! The outbox: turns a change into ONE row per webhook that wants some of
//! its events (a push's `push` and `tag` events share it: one insert and one
//! counter update per webhook and change, each `--repo` pattern parsed once,
//! no event built that no webhook wants). Writes (push, tag, delete) are
//! recorded by the registry inside the transaction that makes the change,
//! so the events commit with it or not at all; pulls and failed logins, which have no transaction, wait in a
//! small bounded queue ([`UNSAVED_LIMIT`]) until the delivery thread saves
//! them in one transaction (within a second). A request thread pays for a
//! pull event only when some webhook subscribes to pulls (one atomic load
//! otherwise).
//!
//! It must never send anything, block a request beyond one short mutex, or
//! grow without bound: each webhook holds at most [`BACKLOG_LIMIT`] events,
//! the queue at most [`UNSAVED_LIMIT`]; past either, events are dropped,
//! counted ([`super::stats`]) and logged (at most once a minute).

use super::envelope::{self, ActorRecord, Event, RequestRecord, SourceRecord, Target};
use super::filter::{self, EventKind};
use super::{current_origin, stats};
use crate::db::webhooks::{Subscription, WebhookRow};
use crate::db::{self, Db};
use crate::error::Result;
use crate::oci::{Reference, RepoName, Tag};
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// Events one webhook's outbox holds at most; past it new events for that
/// webhook are dropped (counted in `webhook.dropped` and the stats).
pub const BACKLOG_LIMIT: u64 = 10_000;
/// Pull and login-failure events waiting to be saved, at most.
pub const UNSAVED_LIMIT: usize = 4096;

/// An event ready to be saved: its kind, id and JSON.
struct Built {
    kind: EventKind,
    id: String,
    json: String,
}

impl Built {
    fn new(kind: EventKind, event: Event) -> Built {
        Built {
            kind,
            json: event.to_json(),
            id: event.id,
        }
    }
}

/// An event with no transaction of its own, before it is saved.
struct Unsaved {
    repository: Option<String>,
    event: Built,
}

fn join<'a>(parts: impl Iterator<Item = &'a str>, separator: &str) -> String {
    let mut out = String::new();
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(p);
    }
    out
}

/// The registry's side of webhooks: what it records, and how it wakes the
/// delivery thread.
pub struct Outbox {
    instance_id: String,
    source_addr: OnceLock<String>,
    /// Set when there may be something to send; the delivery thread waits on it.
    wake: (Mutex<bool>, Condvar),
    /// Some webhook subscribes to pulls / failed logins (refreshed by the
    /// delivery thread from the table, at least once a second).
    wants_pulls: AtomicBool,
    wants_login_failures: AtomicBool,
    unsaved: Mutex<Vec<Unsaved>>,
    /// Commits that recorded events, counted by [`Outbox::wake`] (the
    /// delivery thread sees from it whether pushes are going on).
    commits: AtomicU64,
    /// When a drop was last logged (seconds since the epoch).
    last_drop_log: AtomicI64,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            instance_id: envelope::new_id(),
            source_addr: OnceLock::new(),
            wake: (Mutex::new(false), Condvar::new()),
            wants_pulls: AtomicBool::new(false),
            wants_login_failures: AtomicBool::new(false),
            unsaved: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
            last_drop_log: AtomicI64::new(i64::MIN),
        }
    }
}

impl Outbox {
    /// `HOST:PORT` of this server, the events' `source.addr` (set once, at start).
    pub fn set_source_addr(&self, addr: String) {
        let _ = self.source_addr.set(addr);
    }

    fn event(&self, kind: EventKind, target: Target) -> Event {
        let origin = current_origin().unwrap_or_default();
        let mut target = target;
        if target.url.is_empty() && !origin.base_url.is_empty() && !target.digest.is_empty() {
            let what = if target.media_type == BLOB_MEDIA_TYPE {
                "blobs"
            } else {
                "manifests"
            };
            target.url = format!(
                "{}/v2/{}/{what}/{}",
                origin.base_url, target.repository, target.digest
            );
        }
        Event {
            id: envelope::new_id(),
            timestamp: envelope::timestamp_now(),
            action: kind.as_str(),
            target,
            request: RequestRecord {
                id: origin.request_id,
                addr: origin.addr,
                host: origin.host,
                method: origin.method,
                useragent: origin.user_agent,
            },
            actor: ActorRecord { name: origin.actor },
            source: SourceRecord {
                addr: self.source_addr.get().cloned().unwrap_or_default(),
                instance_id: self.instance_id.clone(),
            },
        }
    }

    /// Queues `events` (one change's) for every webhook of `subs` (those
    /// whose `--repo` matches the change) that wants some of them, in
    /// `conn`'s transaction: one row per webhook, holding the events it wants.
    fn save(&self, conn: &Connection, subs: &[&Subscription], events: &[Built]) -> Result<()> {
        let mut picked: Vec<&Built> = Vec::with_capacity(events.len());
        for sub in subs {
            picked.clear();
            picked.extend(
                events
                    .iter()
                    .filter(|e| filter::subscribes(&sub.events, e.kind)),
            );
            if picked.is_empty() {
                continue;
            }
            let ids = join(picked.iter().map(|e| e.id.as_str()), " ");
            let json = join(picked.iter().map(|e| e.json.as_str()), ",");
            let count = picked.len() as u64;
            if !db::webhooks::enqueue(conn, sub.id, &ids, &json, count, BACKLOG_LIMIT)? {
                stats::dropped(count);
                self.log_drop(&format!(
                    "webhook {}: its backlog holds {BACKLOG_LIMIT} undelivered events; \
                     dropping new ones until the receiver catches up",
                    sub.name
                ));
            }
        }
        Ok(())
    }

    /// Records the events of one change about `repository` in the
    /// transaction `conn` that makes it. `targets` are built only for the
    /// kinds some webhook wants (nothing is built when none does).
    fn record(
        &self,
        conn: &Connection,
        repository: &str,
        targets: impl IntoIterator<Item = (EventKind, Target)>,
    ) -> Result<()> {
        let all = db::webhooks::subscriptions(conn)?;
        if all.is_empty() {
            return Ok(());
        }
        // Each pattern parsed once per change.
        let subs: Vec<&Subscription> = all
            .iter()
            .filter(|s| filter::repo_matches(&s.repo_pattern, repository))
            .collect();
        let wanted = |kind: EventKind| subs.iter().any(|s| filter::subscribes(&s.events, kind));
        let events: Vec<Built> = targets
            .into_iter()
            .filter(|(kind, _)| wanted(*kind))
            .map(|(kind, target)| Built::new(kind, self.event(kind, target)))
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        self.save(conn, &subs, &events)
    }

    /// A manifest stored by a push to `reference`: one `push` event (with
    /// the tag it was pushed by, if any) and one `tag` event per tag now
    /// pointing at it, in one outbox row per webhook.
    #[allow(clippy::too_many_arguments)]
    pub fn manifest_pushed(
        &self,
        conn: &Connection,
        repository: &RepoName,
        digest: &str,
        media_type: &str,
        size: u64,
        reference: &Reference,
        tags: &[Tag],
    ) -> Result<()> {
        let target =
            |tag: &str| Target::manifest(repository.as_str(), digest, media_type, size, tag);
        let by_tag = match reference {
            Reference::Tag(t) => t.as_str(),
            Reference::Digest(_) => "",
        };
        let push = std::iter::once((EventKind::Push, target(by_tag)));
        let tagged = tags.iter().map(|t| (EventKind::Tag, target(t.as_str())));
        self.record(conn, repository.as_str(), push.chain(tagged))
    }

    /// A tag deleted (distribution's `TagDeleted`: repository and tag).
    pub fn tag_deleted(&self, conn: &Connection, repository: &str, tag: &str) -> Result<()> {
        let target = Target {
            repository: repository.to_string(),
            tag: tag.to_string(),
            ..Target::default()
        };
        self.record(conn, repository, [(EventKind::Delete, target)])
    }

    /// A manifest deleted by digest (its tags went with it).
    pub fn manifest_deleted(
        &self,
        conn: &Connection,
        repository: &str,
        digest: &str,
    ) -> Result<()> {
        let target = Target {
            repository: repository.to_string(),
            digest: digest.to_string(),
            ..Target::default()
        };
        self.record(conn, repository, [(EventKind::Delete, target)])
    }

    /// A blob unlinked from a repository.
    pub fn blob_deleted(&self, conn: &Connection, repository: &str, digest: &str) -> Result<()> {
        let target = Target {
            media_type: BLOB_MEDIA_TYPE.to_string(),
            repository: repository.to_string(),
            digest: digest.to_string(),
            ..Target::default()
        };
        self.record(conn, repository, [(EventKind::Delete, target)])
    }

    /// Whether some webhook subscribes to pulls (one atomic load: the
    /// request path asks before it builds anything).
    pub fn wants_pulls(&self) -> bool {
        self.wants_pulls.load(Ordering::Relaxed)
    }

    /// A manifest fetched (queued, saved by the delivery thread).
    pub fn pulled(&self, repository: &str, digest: &str, media_type: &str, size: u64, tag: &str) {
        if !self.wants_pulls() {
            return;
        }
        let target = Target::manifest(repository, digest, media_type, size, tag);
        let event = self.event(EventKind::Pull, target);
        self.queue(EventKind::Pull, Some(repository.to_string()), event);
    }

    /// A failed sign-in as `user` from `addr` (already rate-limited by the
    /// audit log: at most 10 a minute per user and address, 300 in all).
    pub fn login_failed(&self, user: &str, addr: &str) {
        if !self.wants_login_failures.load(Ordering::Relaxed) {
            return;
        }
        let mut event = self.event(EventKind::LoginFailure, Target::default());
        event.actor.name = user.to_string();
        if event.request.addr.is_empty() {
            event.request.addr = addr.to_string();
        }
        self.queue(EventKind::LoginFailure, None, event);
    }

    fn queue(&self, kind: EventKind, repository: Option<String>, event: Event) {
        let mut q = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= UNSAVED_LIMIT {
            drop(q);
            stats::dropped(1);
            self.log_drop(&format!(
                "{UNSAVED_LIMIT} pull and login-failure events wait to be saved; dropping new ones"
            ));
            return;
        }
        q.push(Unsaved {
            repository,
            event: Built::new(kind, event),
        });
        drop(q);
        self.wake();
    }

    /// Saves the queued pull and login-failure events in one transaction
    /// (delivery thread). Returns how many were saved.
    pub(super) fn save_queued(&self, db: &Db) -> Result<usize> {
        let batch = std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let saved = db.write_unsynced(|tx| {
            let all = db::webhooks::subscriptions(tx)?;
            for e in &batch {
                let subs: Vec<&Subscription> = all
                    .iter()
                    .filter(|s| {
                        e.repository
                            .as_deref()
                            .is_none_or(|r| filter::repo_matches(&s.repo_pattern, r))
                    })
                    .collect();
                self.save(tx, &subs, std::slice::from_ref(&e.event))?;
            }
            Ok(batch.len())
        });
        if saved.is_err() {
            // Not saved (a failed flush refuses every write): counted as
            // dropped, as the queue's other losses are.
            stats::dropped(batch.len() as u64);
        }
        saved
    }

    /// Remembers which kinds of event with no transaction some webhook wants.
    pub(super) fn refresh_wanted(&self, hooks: &[WebhookRow]) {
        let any = |k| hooks.iter().any(|h| filter::subscribes(&h.events, k));
        self.wants_pulls
            .store(any(EventKind::Pull), Ordering::Relaxed);
        self.wants_login_failures
            .store(any(EventKind::LoginFailure), Ordering::Relaxed);
    }

    /// Tells the delivery thread there may be events to send (call after
    /// the transaction that recorded them committed).
    pub fn wake(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let (flag, cv) = &self.wake;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
    }

    /// How many times [`Outbox::wake`] was called so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Waits at most `limit` for [`Outbox::wake`] (delivery thread).
    pub(super) fn wait(&self, limit: Duration) {
        let (flag, cv) = &self.wake;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = cv
            .wait_timeout_while(guard, limit, |woken| !*woken)
            .unwrap_or_else(|p| p.into_inner());
        *guard = false;
    }

    fn log_drop(&self, message: &str) {
        let now = db::now();
        let last = self.last_drop_log.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60
            && self
                .last_drop_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!("{message} (dropped so far: {})", stats::counters().dropped);
        }
    }
}

/// The media type a blob's events carry (distribution's layer type is
/// Docker-specific; soute does not know what a blob holds).
pub const BLOB_MEDIA_TYPE: &str = "application/octet-stream";
