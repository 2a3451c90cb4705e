//! token: the Docker token service of `--auth token` (Docker's "token
//! authentication specification", as Docker Hub and Harbor speak it).
//!
//! - `GET /v2/token?service=S&scope=repository:NAME:pull,push[&scope=...]`,
//!   with Basic credentials (a password or an API token) or none
//!   (anonymous), and `POST /v2/token` with an OAuth2 form
//!   (`grant_type=password`, `username`, `password`, `scope` space-separated)
//!   answer `{"token","access_token","expires_in","issued_at"}`. The access
//!   granted is what was asked AND what the caller may do now
//!   (`auth::access::Policy::decide`); asking more is not an error, it is
//!   just not granted (Docker's behaviour).
//! - Every 401 in token mode carries `WWW-Authenticate: Bearer realm=...,
//!   service=...,scope=...` naming what the request needs.
//! - A presented bearer token becomes an [`Identity`]: anonymous, or the
//!   user limited to the granted access; a token of a deleted user, or one
//!   issued on a since revoked or expired API token, is refused.
//!
//! It must never verify a password itself (`Api::identify` goes through
//! `crate::auth`), decide access itself (it asks the policy), or log a
//! token or password.

use super::access::{need, Caller, Need};
use super::bearer_cache::Verified;
use super::envelope::error_response;
use super::query::{percent_decode, Query};
use super::routes::Route;
use super::Api;
use crate::auth::bearer::{self, Claims, Grant};
use crate::auth::{Action, Identity, Policy};
use crate::error::{Code, Error, Result};
use crate::http::{Body, Request, Response};
use crate::oci::RepoName;
use serde_json::json;
use std::io::Read as _;

/// The largest POST form accepted at the token endpoint.
const MAX_FORM_BYTES: u64 = 16 * 1024;
/// Scopes looked at in one token request (the rest are ignored).
const MAX_ASKED_SCOPES: usize = 256;

/// How requests are authenticated (`soute serve --auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Basic challenges while no anonymous rule exists, the token service's
    /// Bearer challenges while one does (the default; ARCHITECTURE.md says
    /// why: with a Basic challenge Docker clients cannot both pull
    /// anonymously and sign in).
    #[default]
    Auto,
    /// `WWW-Authenticate: Basic` only; no token service.
    Basic,
    /// The Docker token service: Bearer challenges, tokens from `/v2/token`
    /// (Basic credentials are still accepted on every endpoint).
    Token,
}

impl AuthMode {
    pub fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "auto" => Some(AuthMode::Auto),
            "basic" => Some(AuthMode::Basic),
            "token" => Some(AuthMode::Token),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Auto => "auto",
            AuthMode::Basic => "basic",
            AuthMode::Token => "token",
        }
    }
}

/// A warning logged at most once per window, with the count of those left
/// out (a client sending bad tokens in a loop cannot fill the log).
pub(super) struct QuietWarnings {
    window: std::time::Duration,
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl QuietWarnings {
    pub(super) fn new(window: std::time::Duration) -> QuietWarnings {
        QuietWarnings {
            window,
            state: std::sync::Mutex::new((None, 0)),
        }
    }

    pub(super) fn warn(&self, line: impl FnOnce() -> String) {
        let now = std::time::Instant::now();
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match st.0 {
            Some(t) if now.duration_since(t) < self.window => st.1 += 1,
            _ => {
                let left_out = std::mem::take(&mut st.1);
                st.0 = Some(now);
                drop(st);
                if left_out > 0 {
                    log::warn!("{} ({left_out} more like it before this one)", line());
                } else {
                    log::warn!("{}", line());
                }
            }
        }
    }
}

/// What the challenge says a request needs, in Docker's scope words.
fn scope_of(route: &Route, method: &str) -> Option<String> {
    Some(match (need(route, method), route) {
        (Need::Repo(name, Action::Pull), _) => format!("repository:{name}:pull"),
        (Need::Repo(name, Action::Delete), _) => format!("repository:{name}:delete"),
        (Need::Repo(name, _), _) => format!("repository:{name}:pull,push"),
        (Need::Listing, Route::V1Search) => "registry:catalog:search".into(),
        (Need::Listing, _) => "registry:catalog:*".into(),
        (Need::System(_), _) => "registry:soute:admin".into(),
        (Need::Base | Need::Nothing, _) => return None,
    })
}

/// Only characters a host name, IP literal and port use (so a client's
/// `Host` header cannot put quotes or commas into the challenge).
fn plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
}

fn quoted(s: &str) -> String {
    s.replace(['"', '\\'], "")
}

impl Api {
    /// The Bearer challenge for `route` (`error`: `invalid_token` or
    /// `insufficient_scope`, as RFC 6750 words them).
    pub(super) fn bearer_challenge(
        &self,
        req: &Request<'_>,
        route: &Route,
        error: Option<&str>,
        message: &str,
    ) -> Response {
        let realm = match &self.auth.token_realm {
            Some(r) => r.clone(),
            None => {
                let host = req
                    .header("host")
                    .filter(|h| plausible_host(h))
                    .unwrap_or(&self.auth.public_host);
                let scheme = if req.secure { "https" } else { "http" };
                format!("{scheme}://{host}/v2/token")
            }
        };
        let mut value = format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            quoted(&realm),
            quoted(&self.auth.realm)
        );
        if let Some(scope) = scope_of(route, &req.method) {
            value.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Some(e) = error {
            value.push_str(&format!(",error=\"{e}\""));
        }
        error_response(&Error::client(Code::Unauthorized, message), req.id)
            .header("WWW-Authenticate", value)
    }

    /// The identity a bearer token stands for, or why it is refused.
    pub(super) fn bearer_identity(
        &self,
        token: &str,
        policy: Option<&Policy>,
    ) -> std::result::Result<Identity, &'static str> {
        let key = self.bearer_key.as_ref().ok_or("bearer tokens are off")?;
        let now = crate::db::now();
        let claims = match self.bearer_cache.get(token, now) {
            Some(verified) => verified,
            None => {
                let verified = Verified::of(&bearer::verify(key, token, now)?);
                self.bearer_cache.put(token, &verified, now);
                verified
            }
        };
        let Some(user) = claims.sub else {
            return Ok(Identity::Anonymous);
        };
        if policy.is_some_and(|p| !p.has_user(&user)) {
            return Err("the token's user no longer exists");
        }
        let api_token_scopes = match &claims.via {
            Some(hash) => Some(
                self.registry
                    .live_token_scopes(hash, &user)
                    .ok_or("the API token it was issued for is revoked or expired")?,
            ),
            None => None,
        };
        Ok(Identity::Bearer {
            user,
            scopes: claims.scopes,
            api_token_scopes,
        })
    }

    /// `GET|POST /v2/token`.
    pub(super) fn token_service(
        &self,
        req: &mut Request<'_>,
        query: &Query,
        caller: &Caller,
    ) -> Result<Response> {
        if self.bearer_key.is_none() {
            return Err(Error::NoEndpoint(
                "this registry uses Basic authentication only (soute serve --auth basic)".into(),
            ));
        }
        if caller.with_bearer {
            // A token is never traded for another: the new one would lose
            // the old one's expiry and limits (Docker Hub refuses it too).
            return Ok(self.bearer_challenge(
                req,
                &Route::Token,
                Some("invalid_request"),
                "the token service takes a password or an API token, not a bearer token",
            ));
        }
        let mut scopes: Vec<String> = query
            .all("scope")
            .flat_map(|s| s.split(' '))
            .map(str::to_string)
            .collect();
        // The secret the caller signed in with (form or Basic header).
        let mut form_secret: Option<String> = None;
        let posted: Option<Caller> = match req.method.as_str() {
            "GET" => None,
            "POST" => {
                let form = read_form(req)?;
                let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                scopes.extend(field("scope").unwrap_or("").split(' ').map(str::to_string));
                match field("grant_type") {
                    // An open registry needs no credentials: the caller stays open.
                    Some("password") if caller.policy.is_none() => None,
                    Some("password") => {
                        let (Some(user), Some(password)) = (field("username"), field("password"))
                        else {
                            return Err(Error::InvalidParameter(
                                "grant_type=password needs username and password".into(),
                            ));
                        };
                        form_secret = Some(password.to_string());
                        match self.identify(req, user, password) {
                            Ok(who) => Some(Caller {
                                who,
                                policy: caller.policy.clone(),
                                with_bearer: false,
                                content_generation: caller.content_generation,
                            }),
                            Err(refused) => return Ok(refused),
                        }
                    }
                    Some(other) => {
                        let shown: String = other.chars().take(40).collect();
                        return Err(Error::InvalidParameter(format!(
                            "unsupported grant_type {shown:?} (soute issues no refresh tokens; use password)"
                        )));
                    }
                    None => None,
                }
            }
            _ => return Err(super::method_not_allowed()),
        };
        let caller = posted.as_ref().unwrap_or(caller);
        scopes.retain(|s| !s.is_empty());
        scopes.truncate(MAX_ASKED_SCOPES);
        let mut access: Vec<Grant> = scopes.iter().filter_map(|s| grant(s, caller)).collect();
        access.truncate(bearer::MAX_GRANTS);
        let now = crate::db::now();
        let via = match &caller.who {
            Identity::Token { .. } => self.presented_token_hash(req, &form_secret),
            _ => None,
        };
        let claims = Claims {
            sub: caller.who.user().map(str::to_string),
            via,
            access,
            iat: now,
            exp: now + bearer::LIFETIME_SECS,
        };
        let key = self.bearer_key.as_ref().expect("checked above");
        let token = bearer::issue(key, &claims);
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": bearer::LIFETIME_SECS,
            "issued_at": crate::clock::rfc3339(now),
        });
        Ok(Response::new(200)
            .header("Content-Type", "application/json")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(body.to_string().into_bytes())))
    }

    /// The stored hash of the API token the caller signed in with (in the
    /// form, else in the Basic header).
    fn presented_token_hash(&self, req: &Request<'_>, form: &Option<String>) -> Option<String> {
        let secret = match form {
            Some(s) => s.clone(),
            None => {
                req.header("authorization")
                    .and_then(super::basic::parse_basic)?
                    .1
            }
        };
        Some(crate::auth::tokens::hash_secret(&secret))
    }
}

/// The part of one asked scope (`repository:NAME:ACTIONS`,
/// `registry:catalog:*`) that `caller` may have; `None` if nothing.
fn grant(scope: &str, caller: &Caller) -> Option<Grant> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let asked: Vec<&str> = actions.split(',').collect();
    let granted: Vec<String> = match kind {
        "repository" => {
            let repo = RepoName::parse(name).ok()?;
            let mut out = Vec::new();
            for action in [Action::Pull, Action::Push, Action::Delete] {
                let wanted = asked.contains(&action.as_str()) || asked.contains(&"*");
                if wanted && caller.may(&repo, action) {
                    out.push(action.as_str().to_string());
                }
            }
            out
        }
        "registry" if name == "catalog" => {
            let signed_in = caller.who != Identity::Anonymous;
            let anonymous_ok = caller
                .policy
                .as_ref()
                .is_none_or(|p| p.anonymous_may_pull_somewhere());
            if signed_in || anonymous_ok {
                asked
                    .iter()
                    .filter(|a| matches!(**a, "*" | "search"))
                    .map(|a| a.to_string())
                    .collect()
            } else {
                Vec::new()
            }
        }
        "registry" if name == "soute" => [Action::Admin, Action::Metrics]
            .into_iter()
            .filter(|a| asked.contains(&a.as_str()))
            .filter(|a| {
                caller
                    .policy
                    .as_ref()
                    .is_none_or(|p| p.decide(&caller.who, None, *a).allowed)
            })
            .map(|a| a.as_str().to_string())
            .collect(),
        _ => Vec::new(),
    };
    (!granted.is_empty()).then(|| Grant {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: granted,
    })
}

/// The `application/x-www-form-urlencoded` body of a POST, at most
/// [`MAX_FORM_BYTES`].
fn read_form(req: &mut Request<'_>) -> Result<Vec<(String, String)>> {
    let mut body = Vec::new();
    req.body
        .take(MAX_FORM_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::io("reading the token request", e))?;
    if body.len() as u64 > MAX_FORM_BYTES {
        return Err(Error::InvalidParameter(format!(
            "the token request form is larger than {MAX_FORM_BYTES} bytes"
        )));
    }
    let text = String::from_utf8_lossy(&body);
    Ok(text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_name_what_the_route_needs() {
        let route = |p: &str| crate::api::routes::parse(p).expect("ok").expect("route");
        let cases = [
            ("GET", "/v2/a/b/manifests/1", Some("repository:a/b:pull")),
            (
                "PUT",
                "/v2/a/b/manifests/1",
                Some("repository:a/b:pull,push"),
            ),
            (
                "POST",
                "/v2/a/b/blobs/uploads/",
                Some("repository:a/b:pull,push"),
            ),
            (
                "DELETE",
                "/v2/a/b/manifests/1",
                Some("repository:a/b:delete"),
            ),
            ("GET", "/v2/_catalog", Some("registry:catalog:*")),
            ("GET", "/v1/search", Some("registry:catalog:search")),
            ("POST", "/v2/_soute/gc", Some("registry:soute:admin")),
            ("GET", "/v2/", None),
        ];
        for (method, path, want) in cases {
            assert_eq!(
                scope_of(&route(path), method).as_deref(),
                want,
                "{method} {path}"
            );
        }
        assert!(plausible_host("registry.example:5000"));
        assert!(plausible_host("[::1]:5000"));
        assert!(plausible_host("my_registry:5000"));
        assert!(!plausible_host("evil\",realm=\"x"));
        assert!(!plausible_host(""));
    }
}
