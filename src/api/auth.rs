//! Authentication glue: who a request comes from (DESIGN.md §6): anonymous,
//! a user (Basic password, checked by `crate::auth`), or an API token (Basic
//! with a `soute_...` secret as the password, checked without argon2); the
//! policy to judge it by (cached until the access generation changes);
//! 401 with the Basic challenge and 429 when logins are throttled or the
//! password verifiers are busy.
//!
//! It must never verify a password itself (`crate::auth` does), nor decide what
//! an identity may do (`api::access` asks `auth::access::Policy`), nor log a
//! password or token secret.

use super::access::Caller;
use super::basic::parse_basic;
use super::envelope::error_response;
use super::routes::Route;
use super::Api;
use crate::auth::tokens::{looks_like_token, TokenOutcome};
use crate::auth::{self, AuthOutcome, Identity, Policy};
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};
use crate::registry::AuditAction;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How requests are authenticated.
pub struct AuthSettings {
    pub realm: String,
    /// The implicit rule `anonymous ** pull` (`--anonymous-pull`).
    pub anonymous_pull: bool,
    /// Basic (default) or the Docker token service (`--auth token`).
    pub mode: super::token::AuthMode,
    /// The token service's URL for Bearer challenges (`--token-realm`);
    /// `None`: `http(s)://<Host>/v2/token` from each request.
    pub token_realm: Option<String>,
    /// The host (and port) named in the realm when a request has no usable
    /// `Host` header: the first `--hostname`, else `localhost`.
    pub public_host: String,
    /// Verifier threads, queue, cache and throttle bounds.
    pub limits: auth::Limits,
}

/// What an authentication check decided.
pub(super) enum Access {
    /// Who is asking (and the policy to ask about it); not yet allowed:
    /// `Api::enforce` decides.
    Known(Caller),
    Denied(Response),
}

impl Api {
    /// Who is asking: no credentials, a user whose password is right, or a
    /// valid token; wrong credentials get 401, throttled ones 429.
    pub(super) fn authenticate(&self, req: &Request<'_>, route: &Route) -> Result<Access> {
        // `/readyz` with credentials is authenticated (wrong ones: 401 as
        // anywhere): an administrator gets every check's full detail.
        let readyz_signed = matches!(route, Route::Readyz) && req.header("authorization").is_some();
        if matches!(
            route,
            Route::CaCert | Route::V1Ping | Route::Livez | Route::Readyz
        ) && !readyz_signed
        {
            return Ok(Access::Known(Caller::open()));
        }
        // Read for every request: a user added, a rule granted or a registry
        // opened (by another process too) applies at once.
        let (closed, generation, content) = self.registry.read_state().unwrap_or_else(|e| {
            log::error!("reading whether the registry is closed failed: {e}");
            (true, -1, -1)
        });
        // -1 (the read failed) is never a generation: the cache then misses.
        let content_generation = Some(content);
        if !self.authenticator.observe_closed(closed) {
            return Ok(Access::Known(Caller {
                content_generation,
                ..Caller::open()
            }));
        }
        let policy = self.policy(generation)?;
        let header = req.header("authorization");
        let with_bearer = self.bearer_key.is_some() && header.and_then(bearer_of).is_some();
        let who = match header.and_then(bearer_of) {
            Some(token) if self.bearer_key.is_some() => {
                match self.bearer_identity(token, Some(&policy)) {
                    Ok(identity) => identity,
                    Err(why) => {
                        crate::metrics::get()
                            .auth
                            .login_failed(crate::metrics::LoginFailure::Bearer);
                        let ip = req.remote.ip();
                        self.bearer_warnings
                            .warn(|| format!("refused a bearer token from {ip}: {why}"));
                        return Ok(Access::Denied(if self.bearer_challenges() {
                            self.bearer_challenge(req, route, Some("invalid_token"), why)
                        } else {
                            self.challenge(req, why)
                        }));
                    }
                }
            }
            _ => match header.and_then(parse_basic) {
                None => Identity::Anonymous,
                Some((user, secret)) => {
                    match self.identify_at(req, &user, &secret, Some(generation)) {
                        Ok(identity) => identity,
                        Err(refused) => return Ok(Access::Denied(refused)),
                    }
                }
            },
        };
        Ok(Access::Known(Caller {
            who,
            policy: Some(policy),
            with_bearer,
            content_generation,
        }))
    }

    /// Checks a user name and secret (a password, or an API token when it
    /// has a token's shape): the identity, or the refusal to send (401 with
    /// the challenge, 429 when throttled or the verifiers are busy).
    pub(super) fn identify(
        &self,
        req: &Request<'_>,
        user: &str,
        secret: &str,
    ) -> std::result::Result<Identity, Response> {
        self.identify_at(req, user, secret, None)
    }

    /// [`Api::identify`] for a request that read the access generation
    /// `seen` when it started (the stored hash may then come from memory).
    fn identify_at(
        &self,
        req: &Request<'_>,
        user: &str,
        secret: &str,
        seen: Option<i64>,
    ) -> std::result::Result<Identity, Response> {
        let shown: String = user.chars().take(64).collect();
        let throttled = |message: &str, retry_after_secs: u64| {
            let err = Error::client(Code::TooManyRequests, message);
            let wait = retry_after_secs.max(1).to_string();
            error_response(&err, req.id).header("Retry-After", wait)
        };
        if looks_like_token(secret) {
            return match self.registry.check_token(user, secret) {
                TokenOutcome::Ok(identity) => {
                    if let Identity::Token { token, .. } = &identity {
                        if self.token_uses.due(token, Instant::now()) {
                            if let Err(e) = self.registry.touch_token(token) {
                                log::warn!("recording the use of token {token} failed: {e}");
                            }
                        }
                    }
                    Ok(identity)
                }
                TokenOutcome::Bad(why) => {
                    let m = &crate::metrics::get().auth;
                    m.login_failed(crate::metrics::LoginFailure::Token);
                    log::warn!(
                        "failed token login for user {shown:?} from {}: {why}",
                        req.remote.ip()
                    );
                    self.audit_login(req, AuditAction::LoginFailed, user, why, 401);
                    Err(self.challenge(req, "invalid username or token"))
                }
            };
        }
        match self.registry.check_password_at(
            &self.authenticator,
            user,
            secret,
            req.remote.ip(),
            seen,
        ) {
            AuthOutcome::Ok(identity) => Ok(identity),
            AuthOutcome::Verified(identity) => {
                self.audit_login(req, AuditAction::Login, user, "password", 0);
                Ok(identity)
            }
            AuthOutcome::Bad => {
                let m = &crate::metrics::get().auth;
                m.login_failed(crate::metrics::LoginFailure::Password);
                log::warn!("failed login for user {shown:?} from {}", req.remote.ip());
                let why = "wrong password or unknown user";
                self.audit_login(req, AuditAction::LoginFailed, user, why, 401);
                Err(self.challenge(req, "invalid username or password"))
            }
            AuthOutcome::Throttled { retry_after_secs } => {
                crate::metrics::get().auth.throttled.inc();
                self.audit_login(req, AuditAction::LoginFailed, user, "throttled", 429);
                Err(throttled(
                    "too many failed logins; try again later",
                    retry_after_secs,
                ))
            }
            AuthOutcome::Busy { retry_after_secs } => Err(throttled(
                "too many logins at once; try again",
                retry_after_secs,
            )),
        }
    }

    /// Whether 401s carry the token service's Bearer challenge: always with
    /// `--auth token`, never with `--auth basic`, and by default while an
    /// anonymous rule exists (in the policy last loaded).
    fn bearer_challenges(&self) -> bool {
        match self.auth.mode {
            super::token::AuthMode::Token => true,
            super::token::AuthMode::Basic => false,
            super::token::AuthMode::Auto => lock(&self.policy_cache)
                .as_ref()
                .is_some_and(|(_, p)| p.anonymous_may_pull_somewhere()),
        }
    }

    /// The resolved policy, reloaded from SQLite only when the access
    /// generation changed since it was loaded (one read of every rule,
    /// admin and membership; a failed state read, generation -1, reloads).
    pub(super) fn policy(&self, generation: i64) -> Result<Arc<Policy>> {
        {
            let cached = lock(&self.policy_cache);
            if let Some((g, policy)) = cached.as_ref() {
                if *g == generation && generation >= 0 {
                    return Ok(policy.clone());
                }
            }
        }
        let policy = Arc::new(self.registry.access_policy(self.auth.anonymous_pull)?);
        *lock(&self.policy_cache) = Some((generation, policy.clone()));
        Ok(policy)
    }

    /// 401 UNAUTHORIZED with the challenge of the mode: `Basic realm="..."`,
    /// or in token mode a Bearer challenge naming the request's scope.
    pub(super) fn challenge(&self, req: &Request<'_>, message: &str) -> Response {
        if self.bearer_challenges() {
            if let Ok(Some(route)) = super::routes::parse(&req.path) {
                return self.bearer_challenge(req, &route, None, message);
            }
        }
        let realm = self.auth.realm.replace('"', "");
        error_response(&Error::client(Code::Unauthorized, message), req.id)
            .header("WWW-Authenticate", format!("Basic realm=\"{realm}\""))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer_of(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
