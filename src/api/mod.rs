//! api: the protocol. Maps routes and methods to registry calls (`dispatch`,
//! one method per route), reads and writes the spec's headers and status
//! codes. One file per resource: `blobs`, `uploads`, `manifests`, `lists`
//! (catalog, tags, referrers), `search` (v1), `admin` (`/v2/_soute/`), `auth`
//! (who is asking, the challenge), `access` (the one place a request is
//! allowed or refused, by `auth::access::Policy`), `audit` (what a request is
//! recorded as in the audit log), `events` (what it tells the webhooks);
//! `envelope` is the only place an `Error` becomes a
//! response, `headers` builds the rest, `query` and `ranges` parse the client's
//! parameters.
//!
//! It must never write SQL, build paths under the data folder or touch sockets.

mod access;
mod admin;
mod audit;
mod auth;
pub mod basic;
mod bearer_cache;
mod blobs;
pub mod envelope;
mod events;
mod headers;
mod health;
mod lists;
mod manifests;
mod metrics;
pub mod query;
pub(crate) mod ranges;
pub mod routes;
mod search;
mod token;
pub mod transport_errors;
mod ui_gate;
mod uploads;

pub use auth::AuthSettings;
pub use envelope::error_response;
pub use health::HealthSettings;
pub use metrics::DebugEndpoints;
pub use token::AuthMode;

use crate::auth::tokens::LastUsed;
use crate::auth::Authenticator;
use crate::error::{Code, Error, Result};
use crate::http::{Body, Handler, Request, Response};
use crate::oci::{RepoName, UploadId};
use crate::registry::Registry;
use access::Caller;
use auth::Access;
use headers::{json_response, API_VERSION};
use query::Query;
use routes::Route;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The request handler the HTTP server calls.
pub struct Api {
    registry: Arc<Registry>,
    /// PEM of the registry's CA certificate, served at `/ca.crt` when TLS is automatic.
    ca_pem: Option<Vec<u8>>,
    auth: AuthSettings,
    authenticator: Authenticator,
    /// The resolved access policy and the generation it was loaded at.
    policy_cache: Mutex<Option<(i64, Arc<crate::auth::Policy>)>>,
    /// When each token's `last used` was last written.
    token_uses: LastUsed,
    /// The key bearer tokens are signed with (`--auth token` only).
    bearer_key: Option<crate::auth::Key>,
    /// Refused bearer tokens are logged at most once per 10 s.
    bearer_warnings: token::QuietWarnings,
    /// Bearer tokens already verified (their content, until they expire).
    bearer_cache: bearer_cache::BearerCache,
    /// Reads under an upstream's namespace go through the cache.
    pull_through: crate::upstream::PullThrough,
    /// `/livez`, `/readyz` and `/metrics`.
    health: health::Health,
    /// The scheduled GC's policy (`--gc-grace`, `--gc-delete-untagged`): the
    /// web UI's GC button and plans use the same.
    gc_policy: crate::registry::GcPolicy,
}

impl Api {
    pub fn new(
        registry: Arc<Registry>,
        ca_pem: Option<Vec<u8>>,
        auth: AuthSettings,
    ) -> Result<Api> {
        let authenticator = Authenticator::new(auth.limits.clone())
            .map_err(|e| Error::internal_from("starting the authenticator", e))?;
        // A new key for each process: tokens do not outlive a restart, and
        // no copy of the data folder (a backup) can mint tokens for it.
        let bearer_key = match auth.mode {
            AuthMode::Token | AuthMode::Auto => Some(
                crate::auth::bearer::new_key()
                    .map_err(|e| Error::internal_from("making the bearer token key", e))?,
            ),
            AuthMode::Basic => None,
        };
        Ok(Api {
            pull_through: crate::upstream::PullThrough::new(registry.clone()),
            registry,
            ca_pem,
            auth,
            authenticator,
            policy_cache: Mutex::new(None),
            token_uses: LastUsed::new(Duration::from_secs(60), 10_000),
            bearer_key,
            bearer_warnings: token::QuietWarnings::new(Duration::from_secs(10)),
            bearer_cache: bearer_cache::BearerCache::default(),
            health: health::Health::new(HealthSettings::default()),
            gc_policy: crate::registry::GcPolicy::default(),
        })
    }

    /// The same handler with the server's GC policy.
    pub fn with_gc_policy(mut self, policy: crate::registry::GcPolicy) -> Api {
        self.gc_policy = policy;
        self
    }

    /// The server's worker count (the pull-through cache keeps half free).
    pub fn with_workers(self, workers: usize) -> Api {
        self.pull_through.set_workers(workers);
        self
    }

    /// The same handler with the health and metrics endpoints' settings.
    pub fn with_health(mut self, settings: HealthSettings) -> Api {
        self.health = health::Health::new(settings);
        self
    }

    fn route_and_dispatch(
        &self,
        req: &mut Request<'_>,
        endpoint: &mut crate::metrics::Endpoint,
    ) -> Result<Response> {
        if let Some(page) = crate::ui::serve(self, req) {
            return Ok(page);
        }
        let Some(route) = routes::parse(&req.path)? else {
            return Err(Error::NoEndpoint(format!("no endpoint at {}", req.path)));
        };
        *endpoint = metrics::endpoint_of(&route);
        let caller = match self.authenticate(req, &route)? {
            Access::Known(caller) => caller,
            Access::Denied(resp) => return Ok(refused_before_body(req, resp)),
        };
        if let Some(refused) = self.enforce(req, &route, &caller) {
            self.audit_refusal(req, &route, &caller, refused.status);
            return Ok(refused_before_body(req, refused));
        }
        if let (Some(name), false) = (route.repo(), matches!(req.method.as_str(), "GET" | "HEAD")) {
            if let Err(e) = self.pull_through.refuse_write(name) {
                return Ok(refused_before_body(req, error_response(&e, req.id)));
            }
        }
        // The audit log: pushes, deletes and admin actions, after the fact.
        let audited = audit::audited(&route, &req.method);
        let uploading = matches!(route, Route::UploadStart { .. } | Route::Upload { .. })
            && matches!(req.method.as_str(), "POST" | "PATCH" | "PUT");
        let _uploading = uploading
            .then(|| crate::metrics::InProgress::of(&crate::metrics::get().uploads_in_progress));
        // Webhooks: the writes it audits record their events with this origin.
        let pull = self.pull_event(&route, &req.method);
        let result = match audited {
            Some(_) => crate::webhook::with_origin(self.event_origin(req, &caller), || {
                self.dispatch(req, route, &caller)
            }),
            None => self.dispatch(req, route, &caller),
        };
        if let Some(audited) = audited {
            self.audit_outcome(req, audited, &caller, &result);
        }
        if let Some(pull) = pull {
            self.record_pull(req, pull, &caller, &result);
        }
        result
    }

    /// One handler per (route, method); anything else is 405. `enforce` has
    /// let the request through; `caller` only narrows lists and mounts.
    fn dispatch(&self, req: &mut Request<'_>, route: Route, caller: &Caller) -> Result<Response> {
        let query = Query::parse(&req.query);
        let method = req.method.clone();
        match (route, method.as_str()) {
            (Route::Base, "GET" | "HEAD") => Ok(json_response(200, &json!({}))),
            (Route::CaCert, "GET" | "HEAD") => self.ca_cert(),
            (Route::V1Ping, "GET" | "HEAD") => Ok(self.v1_ping()),
            (Route::V1Search, "GET") => self.search(&query, caller, req.id),
            (Route::Catalog, "GET") => self.catalog(&query, caller),
            (Route::Tags { name }, "GET") => self.tags(&name, &query),
            (Route::Manifest { name, reference }, "GET") => {
                self.get_manifest(&name, &reference, &query, caller.content_generation)
            }
            (Route::Manifest { name, reference }, "HEAD") => {
                self.head_manifest(&name, &reference, &query, caller.content_generation)
            }
            (Route::Manifest { name, reference }, "PUT") => {
                let actor = crate::registry::AuditEvent::actor_of(&caller.who);
                self.put_manifest(req, &name, &reference, &query, &actor)
            }
            (Route::Manifest { name, reference }, "DELETE") => {
                let actor = crate::registry::AuditEvent::actor_of(&caller.who);
                self.delete_manifest(&name, &reference, &actor)
            }
            (Route::Blob { name, digest }, "GET") => self.get_blob(req, &name, &digest, &query),
            (Route::Blob { name, digest }, "HEAD") => self.head_blob(&name, &digest, &query),
            (Route::Blob { name, digest }, "DELETE") => self.delete_blob(&name, &digest),
            (Route::UploadStart { name }, "POST") => {
                let from = query.get("from").filter(|f| !f.is_empty());
                let may_mount = query.get("mount").is_none()
                    || caller.may_mount_from(from.map(RepoName::parse).transpose()?.as_ref());
                self.post_upload(req, &name, &query, may_mount)
            }
            (Route::Upload { name, id }, method) => {
                let id = UploadId::parse(&id)?;
                match method {
                    "GET" | "HEAD" => self.upload_status(&name, &id),
                    "PATCH" => self.patch_upload(req, &name, &id),
                    "PUT" => self.put_upload(req, &name, &id, query.get("digest")),
                    "DELETE" => self.cancel_upload(&name, &id),
                    _ => Err(method_not_allowed()),
                }
            }
            (Route::Referrers { name, digest }, "GET") => self.referrers(&name, &digest, &query),
            (Route::Token, _) => self.token_service(req, &query, caller),
            (Route::AdminGc, "POST") => self.admin_gc(&query),
            (Route::AdminDu, "GET") => self.admin_du(&query),
            (Route::AdminGc | Route::AdminDu, _) => self.admin_other_method(&query),
            (Route::Metrics, "GET" | "HEAD") => self.metrics_page(),
            (Route::Livez, "GET" | "HEAD") => Ok(self.livez()),
            (Route::Readyz, "GET" | "HEAD") => Ok(self.readyz(caller.is_admin())),
            _ => Err(method_not_allowed()),
        }
    }

    /// `/ca.crt`: soute's own CA certificate, when it runs one.
    fn ca_cert(&self) -> Result<Response> {
        match &self.ca_pem {
            Some(pem) => Ok(Response::new(200)
                .header("Content-Type", "application/x-pem-file")
                .header("Content-Disposition", "attachment; filename=\"ca.crt\"")
                .body(Body::Bytes(pem.clone()))),
            None => Err(Error::NoEndpoint(
                "this registry does not use its own CA".into(),
            )),
        }
    }
}

impl Handler for Api {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        let mut endpoint = crate::metrics::Endpoint::Unknown;
        let resp = match self.route_and_dispatch(req, &mut endpoint) {
            Ok(resp) => resp,
            Err(e) => error_response(&e, req.id),
        };
        let mut resp = resp.header(API_VERSION.0, API_VERSION.1);
        resp.label = endpoint.label();
        resp
    }

    fn rejection(&self, status: u16, reason: &str) -> Response {
        transport_errors::rejection(status, reason)
    }

    fn internal_error(&self, request_id: u64) -> Response {
        transport_errors::internal_error(request_id)
    }
}

pub(super) fn method_not_allowed() -> Error {
    Error::client(Code::Unsupported, "method not allowed on this endpoint")
}

/// A request refused by authentication or access rules closes its connection
/// when it announced a body: the transport then lingers briefly instead of
/// draining up to 4 MiB for 2 s on a worker, so clients without credentials
/// cannot hold workers by announcing bodies they never send (attack F2).
fn refused_before_body(req: &Request<'_>, mut resp: Response) -> Response {
    if req.body.is_chunked() || req.body.declared_len().unwrap_or(0) > 0 {
        resp.close = true;
    }
    resp
}
