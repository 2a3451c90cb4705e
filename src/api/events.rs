//! What api tells the webhooks (`crate::webhook`): the [`Origin`] of the
//! writes it audits (set around their dispatch, so the registry's
//! transaction records who caused the event), and manifest pulls, after
//! the answer, from its headers.
//!
//! It must never send anything, make a request fail or wait, nor build an
//! event for a pull when no webhook subscribes to pulls (one atomic load).

use super::access::Caller;
use super::routes::Route;
use super::Api;
use crate::error::Result;
use crate::http::{Request, Response};
use crate::registry::AuditEvent;
use crate::webhook::{with_origin, Origin};

/// A manifest GET a pull event may be sent for: repository and reference.
pub(super) struct Pull {
    repository: String,
    reference: String,
}

impl Api {
    /// The request as the events it causes describe it.
    pub(super) fn event_origin(&self, req: &Request<'_>, caller: &Caller) -> Origin {
        let host = req.header("host").unwrap_or("").to_string();
        let scheme = if req.secure { "https" } else { "http" };
        Origin {
            actor: AuditEvent::actor_of(&caller.who),
            addr: req.remote.to_string(),
            base_url: if host.is_empty() {
                String::new()
            } else {
                format!("{scheme}://{host}")
            },
            host,
            method: req.method.clone(),
            user_agent: req.header("user-agent").unwrap_or("").to_string(),
            request_id: req.id.to_string(),
        }
    }

    /// `Some` for a manifest GET while some webhook subscribes to pulls.
    pub(super) fn pull_event(&self, route: &Route, method: &str) -> Option<Pull> {
        if method != "GET" || !self.registry.webhooks.wants_pulls() {
            return None;
        }
        match route {
            Route::Manifest { name, reference } => Some(Pull {
                repository: name.as_str().to_string(),
                reference: reference.clone(),
            }),
            _ => None,
        }
    }

    /// Queues the pull event of a manifest GET answered 200.
    pub(super) fn record_pull(
        &self,
        req: &Request<'_>,
        pull: Pull,
        caller: &Caller,
        result: &Result<Response>,
    ) {
        let Ok(resp) = result else { return };
        if resp.status != 200 {
            return;
        }
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let digest = header("docker-content-digest");
        let size = resp.body.len();
        let tag = if pull.reference.contains(':') {
            ""
        } else {
            pull.reference.as_str()
        };
        let outbox = &self.registry.webhooks;
        with_origin(self.event_origin(req, caller), || {
            outbox.pulled(&pull.repository, digest, header("content-type"), size, tag)
        });
    }
}
