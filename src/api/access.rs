//! Enforcement of access rules: the ONE place in api where a request is
//! allowed or refused. From the [`Route`] and method, [`need`] says which
//! repository and action the request needs (the table below);
//! [`Api::enforce`] asks `auth::access::Policy::decide` and answers 403
//! DENIED to a known caller, 401 with the Basic challenge to an anonymous
//! one. Lists (`/v2/_catalog`, `/v1/search`) are filtered to the
//! repositories the [`Caller`] may pull, and a cross-repository mount only
//! happens from a repository the caller may pull ([`Caller::may_mount_from`]).
//!
//! | route | GET/HEAD | PUT | DELETE | POST/PATCH |
//! |---|---|---|---|---|
//! | manifests | pull | push | delete | push |
//! | blobs | pull | push | delete | push |
//! | uploads, mount | push (+ pull on `from`) | push | push | push |
//! | tags list, referrers | pull | | | |
//! | `_catalog`, `/v1/search` | listed: pull per repository | | | |
//! | `/v2/_soute/*` | admin | | | admin |
//! | `/metrics` | metrics (admins; a rule or token scope `metrics`) | | | |
//! | `/v2/` | anyone signed in; anonymous with a token if it may pull somewhere | | | |
//! | `/ca.crt`, `/v1/_ping`, `/livez`, `/readyz` | anyone | | | |
//!
//! It must never check credentials (`api::auth` does) nor decide itself
//! (only `Policy::decide` decides): no handler decides access on its own.

use super::envelope::error_response;
use super::routes::Route;
use super::Api;
use crate::auth::{Action, Identity, Policy, Reason};
use crate::error::{Code, Error};
use crate::http::{Request, Response};
use crate::oci::RepoName;
use std::sync::Arc;

/// What a request needs to be let through.
#[derive(Debug, PartialEq)]
pub(super) enum Need<'r> {
    /// Nothing (`/ca.crt`, `/v1/_ping`).
    Nothing,
    /// `/v2/`: a signed-in caller, or anonymous pull somewhere.
    Base,
    /// A list filtered to what the caller may pull (anonymous: as `Base`).
    Listing,
    /// `action` on one repository.
    Repo(&'r RepoName, Action),
    /// `action` on no repository (`/v2/_soute/*`).
    System(Action),
}

/// The table of the module comment.
pub(super) fn need<'r>(route: &'r Route, method: &str) -> Need<'r> {
    let read = matches!(method, "GET" | "HEAD");
    match route {
        Route::CaCert | Route::V1Ping | Route::Token | Route::Livez | Route::Readyz => {
            Need::Nothing
        }
        Route::Base => Need::Base,
        Route::Catalog | Route::V1Search => Need::Listing,
        Route::Tags { name } | Route::Referrers { name, .. } => Need::Repo(name, Action::Pull),
        Route::Manifest { name, .. } | Route::Blob { name, .. } => match method {
            _ if read => Need::Repo(name, Action::Pull),
            "DELETE" => Need::Repo(name, Action::Delete),
            _ => Need::Repo(name, Action::Push),
        },
        Route::UploadStart { name } | Route::Upload { name, .. } => Need::Repo(name, Action::Push),
        Route::AdminGc | Route::AdminDu => Need::System(Action::Admin),
        Route::Metrics => Need::System(Action::Metrics),
    }
}

/// Who is asking, and the policy that applies (`None`: the registry is
/// open, everything is allowed).
pub(super) struct Caller {
    pub who: Identity,
    pub policy: Option<Arc<Policy>>,
    /// The request carried a bearer token (anonymous ones included).
    pub with_bearer: bool,
    /// The content generation read when the request started (the manifest
    /// read cache's check); `None` where nothing read it.
    pub content_generation: Option<i64>,
}

impl Caller {
    pub fn open() -> Caller {
        Caller {
            who: Identity::Anonymous,
            policy: None,
            with_bearer: false,
            content_generation: None,
        }
    }

    /// Whether the caller may `action` on `repo`.
    pub fn may(&self, repo: &RepoName, action: Action) -> bool {
        match &self.policy {
            None => true,
            Some(p) => p.decide(&self.who, Some(repo), action).allowed,
        }
    }

    /// Whether the caller is an administrator of a closed registry (an
    /// open one has none: everyone gets what anonymous callers get).
    pub fn is_admin(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|p| p.decide(&self.who, None, Action::Admin).allowed)
    }

    /// Whether the caller may see every repository in lists: an
    /// administrator (a token of one: with a `**` pull scope), or an open
    /// registry.
    pub fn sees_everything(&self) -> bool {
        match &self.policy {
            None => true,
            Some(p) => {
                let d = p.decide(&self.lister(), None, Action::Pull);
                d.allowed && d.reason == Reason::Admin
            }
        }
    }

    /// Whether `repo` is shown to the caller in `_catalog` and search: one
    /// it may pull. A bearer token lists what its credentials may pull (its
    /// user's rights, and its API token's scopes), not only the repositories
    /// it was granted: clients such as podman list with a token asked for
    /// no scope at all.
    pub fn may_list(&self, repo: &RepoName) -> bool {
        match &self.policy {
            None => true,
            Some(p) => p.decide(&self.lister(), Some(repo), Action::Pull).allowed,
        }
    }

    /// The identity lists are judged by (see [`Caller::may_list`]).
    fn lister(&self) -> Identity {
        match &self.who {
            Identity::Bearer {
                user,
                api_token_scopes,
                ..
            } => issued_to(user, api_token_scopes),
            other => other.clone(),
        }
    }

    /// A mount of a blob from `from` (`None`: from wherever it is): only
    /// from a repository the caller may pull; without `from`, only for a
    /// caller who may pull everything.
    pub fn may_mount_from(&self, from: Option<&RepoName>) -> bool {
        match from {
            Some(repo) => self.may(repo, Action::Pull),
            None => self.sees_everything(),
        }
    }
}

impl Api {
    /// `None` when the request may proceed, else the refusal.
    pub(super) fn enforce(
        &self,
        req: &Request<'_>,
        route: &Route,
        caller: &Caller,
    ) -> Option<Response> {
        let policy = caller.policy.as_ref()?;
        let anonymous = caller.who == Identity::Anonymous;
        let decided = |repo: Option<&RepoName>, action: Action| {
            let d = policy.decide(&caller.who, repo, action);
            (d.allowed, d.reason == Reason::TokenScope)
        };
        let ((allowed, outside_scope), what) = match need(route, &req.method) {
            Need::Nothing => return None,
            // An anonymous caller without a token is always challenged
            // here, as Docker Hub does: clients learn from this 401 that
            // they may sign in (Basic) or where the token service is
            // (Bearer) and come back with credentials or a token, so a
            // signed-in client never lists or pushes as anonymous.
            Need::Base | Need::Listing => (
                (
                    !anonymous || (caller.with_bearer && policy.anonymous_may_pull_somewhere()),
                    false,
                ),
                String::new(),
            ),
            Need::Repo(repo, action) => (
                decided(Some(repo), action),
                format!("{} {repo}", action.as_str()),
            ),
            Need::System(Action::Metrics) => {
                (decided(None, Action::Metrics), "read /metrics".to_string())
            }
            Need::System(action) => (
                decided(None, action),
                format!("{} (operator endpoints)", action.as_str()),
            ),
        };
        if allowed {
            return None;
        }
        if anonymous {
            return Some(self.challenge(req, "authentication required"));
        }
        // A bearer token without the scope: 401 so the client fetches a
        // token for it (RFC 6750 insufficient_scope), as Docker clients expect.
        if outside_scope && self.token_would_grant(policy, &caller.who, route, &req.method) {
            return Some(self.bearer_challenge(
                req,
                route,
                Some("insufficient_scope"),
                &format!("the token does not grant {what}"),
            ));
        }
        let user = caller.who.user().unwrap_or("");
        let shown: String = user.chars().take(64).collect();
        let message = match &caller.who {
            Identity::Token { token, .. } => {
                format!("token {token} of {shown} may not {what}")
            }
            Identity::Bearer {
                api_token_scopes: Some(_),
                ..
            } if outside_scope => format!("the API token of {shown} may not {what}"),
            _ => format!("{shown} may not {what}"),
        };
        Some(error_response(
            &Error::client(Code::Denied, message),
            req.id,
        ))
    }
}

/// The identity a bearer token was issued to: its user, limited to the
/// scopes of the API token it was issued on, if any.
fn issued_to(user: &str, api_token_scopes: &Option<Vec<crate::auth::Scope>>) -> Identity {
    match api_token_scopes {
        Some(scopes) => Identity::Token {
            user: user.to_string(),
            token: String::new(),
            scopes: scopes.clone(),
        },
        None => Identity::User(user.to_string()),
    }
}

impl Api {
    /// Whether a new token for the same credentials would allow what this
    /// bearer token does not (then 401 `insufficient_scope` makes the client
    /// fetch one; otherwise the answer is 403: asking again cannot help).
    fn token_would_grant(
        &self,
        policy: &Policy,
        who: &Identity,
        route: &Route,
        method: &str,
    ) -> bool {
        let Identity::Bearer {
            user,
            api_token_scopes,
            ..
        } = who
        else {
            return false;
        };
        let issued_to = issued_to(user, api_token_scopes);
        match need(route, method) {
            Need::Repo(repo, action) => policy.decide(&issued_to, Some(repo), action).allowed,
            Need::System(action) => policy.decide(&issued_to, None, action).allowed,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::parse;

    #[test]
    fn every_route_needs_what_the_table_says() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let upload = "/v2/lab/app/blobs/uploads/0123456789abcdef0123456789abcdef";
        let cases: Vec<(&str, String, &str)> = vec![
            ("GET", "/ca.crt".into(), "nothing"),
            ("GET", "/v1/_ping".into(), "nothing"),
            ("GET", "/v2/".into(), "base"),
            ("GET", "/v2/_catalog".into(), "listing"),
            ("GET", "/v1/search".into(), "listing"),
            ("GET", "/v2/lab/app/tags/list".into(), "pull"),
            ("GET", format!("/v2/lab/app/referrers/{digest}"), "pull"),
            ("GET", "/v2/lab/app/manifests/v1".into(), "pull"),
            ("HEAD", "/v2/lab/app/manifests/v1".into(), "pull"),
            ("PUT", "/v2/lab/app/manifests/v1".into(), "push"),
            ("DELETE", "/v2/lab/app/manifests/v1".into(), "delete"),
            ("GET", format!("/v2/lab/app/blobs/{digest}"), "pull"),
            ("HEAD", format!("/v2/lab/app/blobs/{digest}"), "pull"),
            ("DELETE", format!("/v2/lab/app/blobs/{digest}"), "delete"),
            ("POST", "/v2/lab/app/blobs/uploads/".into(), "push"),
            ("GET", upload.into(), "push"),
            ("PATCH", upload.into(), "push"),
            ("PUT", upload.into(), "push"),
            ("DELETE", upload.into(), "push"),
            ("POST", "/v2/_soute/gc".into(), "admin"),
            ("GET", "/v2/_soute/du".into(), "admin"),
            ("GET", "/metrics".into(), "metrics"),
            ("GET", "/livez".into(), "nothing"),
            ("GET", "/readyz".into(), "nothing"),
        ];
        for (method, path, want) in cases {
            let route = parse(&path).expect("parse").expect("route");
            let got = match need(&route, method) {
                Need::Nothing => "nothing".to_string(),
                Need::Base => "base".to_string(),
                Need::Listing => "listing".to_string(),
                Need::Repo(repo, a) => {
                    assert_eq!(repo.as_str(), "lab/app");
                    a.as_str().to_string()
                }
                Need::System(a) => a.as_str().to_string(),
            };
            assert_eq!(got, want, "{method} {path}");
        }
    }
}
