//! What `soute webhook` does to the data folder: add, list, delete webhooks
//! (rows of `webhook`; a running server sees a change within a second), and
//! `test`: one test event POSTed now, directly from the calling process
//! with the delivery thread's client and signature, so the operator sees
//! the receiver's answer at once. A test event is not stored and not
//! retried.
//!
//! It must never return or print a secret, nor send anything but to the URL
//! of the webhook named.

use super::deliver;
use super::envelope::{self, ActorRecord, Event, RequestRecord, SourceRecord, Target};
use crate::db::webhooks::{self, WebhookRow};
use crate::error::Result;
use crate::registry::Registry;
use std::time::{Duration, Instant};

/// A webhook as `list` shows it: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookInfo {
    pub name: String,
    pub url: String,
    pub events: String,
    pub repo_pattern: String,
    pub secret_set: bool,
    pub pending: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_delivered_at: Option<i64>,
}

impl From<WebhookRow> for WebhookInfo {
    fn from(w: WebhookRow) -> WebhookInfo {
        WebhookInfo {
            name: w.name,
            url: w.url,
            events: w.events,
            repo_pattern: w.repo_pattern,
            secret_set: w.secret.is_some(),
            pending: w.pending,
            delivered: w.delivered,
            dropped: w.dropped,
            last_error: w.last_error,
            last_error_at: w.last_error_at,
            last_delivered_at: w.last_delivered_at,
        }
    }
}

/// Adds a webhook (arguments checked by `cli::webhook`); false when the
/// name is taken.
pub fn add(
    registry: &Registry,
    name: &str,
    url: &str,
    events: &str,
    repo_pattern: &str,
    secret: Option<&str>,
) -> Result<bool> {
    registry
        .db
        .write(|tx| webhooks::add(tx, name, url, events, repo_pattern, secret))
}

/// Deletes a webhook and what it had not delivered; false when none.
pub fn delete(registry: &Registry, name: &str) -> Result<bool> {
    registry.db.write(|tx| webhooks::delete(tx, name))
}

/// Every webhook, by name, without secrets.
pub fn list(registry: &Registry) -> Result<Vec<WebhookInfo>> {
    let rows = registry.db.read(webhooks::all)?;
    Ok(rows.into_iter().map(WebhookInfo::from).collect())
}

/// What `test` got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub url: String,
    pub event_id: String,
    /// The 2xx status, or why it failed.
    pub answer: std::result::Result<u16, String>,
    pub took: Duration,
}

/// Sends one `test` event to the webhook `name` now; `None` when there is
/// no such webhook.
pub fn test(registry: &Registry, name: &str) -> Result<Option<TestOutcome>> {
    let Some(hook) = registry.db.read(|c| webhooks::by_name(c, name))? else {
        return Ok(None);
    };
    let event = Event {
        id: envelope::new_id(),
        timestamp: envelope::timestamp_now(),
        action: "test",
        target: Target {
            repository: String::new(),
            ..Target::default()
        },
        request: RequestRecord::default(),
        actor: ActorRecord {
            name: "soute webhook test".to_string(),
        },
        source: SourceRecord::default(),
    };
    let json = event.to_json();
    let started = Instant::now();
    let answer = deliver::post(
        &deliver::agent(),
        &hook.url,
        hook.secret.as_deref(),
        [json.as_str()],
    );
    Ok(Some(TestOutcome {
        url: hook.url,
        event_id: event.id,
        answer,
        took: started.elapsed(),
    }))
}
