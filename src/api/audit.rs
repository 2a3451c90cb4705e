//! What api records in the audit log (`Registry::audit`), from the route,
//! method, answer and [`Caller`]: manifest pushes, deletes of manifests,
//! tags and blobs, operator actions (2xx answers only), refusals by the
//! access rules for an action on a repository or the operator endpoints,
//! and logins (`Api::audit_login`: a password verified now, every failure).
//! `Api::route_and_dispatch` and `Api::authenticate` are its only callers.
//!
//! It must never record a read (pulls are the hot path: [`audited`] is one
//! `match` that allocates nothing for them), a password or token secret, nor
//! make a request fail because recording failed.

use super::access::{need, Caller, Need};
use super::routes::Route;
use super::Api;
use crate::error::Result;
use crate::http::{Request, Response};
use crate::registry::{AuditAction, AuditEvent};

/// A write the log records if it succeeds, known before it is dispatched.
pub(super) struct Audited {
    action: AuditAction,
    repository: String,
    detail: String,
}

/// What `method` on `route` is recorded as; `None` for everything not audited.
pub(super) fn audited(route: &Route, method: &str) -> Option<Audited> {
    let (action, repository, detail) = match (route, method) {
        (Route::Manifest { name, reference }, "PUT") => {
            (AuditAction::Push, name.as_str(), reference.clone())
        }
        (Route::Manifest { name, reference }, "DELETE") => {
            let what = if reference.contains(':') {
                "manifest"
            } else {
                "tag"
            };
            (
                AuditAction::Delete,
                name.as_str(),
                format!("{what} {reference}"),
            )
        }
        (Route::Blob { name, digest }, "DELETE") => {
            (AuditAction::Delete, name.as_str(), format!("blob {digest}"))
        }
        (Route::AdminGc, "POST") => (AuditAction::Admin, "", "gc".to_string()),
        _ => return None,
    };
    Some(Audited {
        action,
        repository: repository.to_string(),
        detail,
    })
}

impl Api {
    /// Records a write `audited` said to watch, when it succeeded.
    pub(super) fn audit_outcome(
        &self,
        req: &Request<'_>,
        audited: Audited,
        caller: &Caller,
        result: &Result<Response>,
    ) {
        let Ok(resp) = result else { return };
        if !(200..300).contains(&resp.status) {
            return;
        }
        let mut detail = audited.detail;
        match audited.action {
            AuditAction::Push => {
                let header = |name: &'static str| {
                    resp.headers
                        .iter()
                        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.as_str())
                };
                if let Some(digest) = header("docker-content-digest").next() {
                    if digest != detail {
                        detail = format!("{detail} {digest}");
                    }
                }
                // Tags given with `?tag=` (at most MAX_TAG_PARAMS, each a valid tag).
                let tags: Vec<&str> = header("oci-tag").collect();
                if !tags.is_empty() {
                    detail = format!("{detail} tags {}", tags.join(","));
                }
            }
            AuditAction::Admin if !req.query.is_empty() => {
                detail = format!("{detail} ?{}", req.query);
            }
            _ => {}
        }
        let event = AuditEvent::new(
            audited.action,
            AuditEvent::actor_of(&caller.who),
            req.remote.ip(),
        )
        .repository(audited.repository)
        .detail(detail)
        .status(resp.status);
        self.registry.audit(&event);
    }

    /// Records a refusal by the access rules (`status` 401 or 403) when it
    /// was about a repository or the operator endpoints (a 401 on `/v2/` is
    /// how every client starts, not an event).
    pub(super) fn audit_refusal(
        &self,
        req: &Request<'_>,
        route: &Route,
        caller: &Caller,
        status: u16,
    ) {
        let (repository, action) = match need(route, &req.method) {
            Need::Repo(repo, action) => (repo.as_str(), action),
            Need::System(action) => ("", action),
            Need::Nothing | Need::Base | Need::Listing => return,
        };
        let event = AuditEvent::new(
            AuditAction::Denied,
            AuditEvent::actor_of(&caller.who),
            req.remote.ip(),
        )
        .repository(repository)
        .detail(format!("{} {}", action.as_str(), req.method))
        .status(status);
        self.registry.audit(&event);
    }

    /// Records a login (`AuditAction::Login`, a password verified now;
    /// status 0: the request goes on) or a failed one, as `user` claimed it.
    pub(super) fn audit_login(
        &self,
        req: &Request<'_>,
        action: AuditAction,
        user: &str,
        detail: &str,
        status: u16,
    ) {
        let event = AuditEvent::new(action, user, req.remote.ip())
            .detail(detail)
            .status(status);
        self.registry.audit(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::parse;

    #[test]
    fn only_writes_are_audited() {
        let digest = format!("sha256:{}", "a".repeat(64));
        type Case<'a> = (&'a str, String, Option<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            ("GET", "/v2/lab/app/manifests/v1".into(), None),
            ("HEAD", "/v2/lab/app/manifests/v1".into(), None),
            ("GET", format!("/v2/lab/app/blobs/{digest}"), None),
            ("GET", "/v2/lab/app/tags/list".into(), None),
            ("POST", "/v2/lab/app/blobs/uploads/".into(), None),
            ("GET", "/v2/_soute/du".into(), None),
            (
                "PUT",
                "/v2/lab/app/manifests/v1".into(),
                Some(("push", "v1")),
            ),
            (
                "DELETE",
                "/v2/lab/app/manifests/v1".into(),
                Some(("delete", "tag v1")),
            ),
            (
                "DELETE",
                format!("/v2/lab/app/manifests/{digest}"),
                Some(("delete", "manifest sha256:")),
            ),
            (
                "DELETE",
                format!("/v2/lab/app/blobs/{digest}"),
                Some(("delete", "blob sha256:")),
            ),
            ("POST", "/v2/_soute/gc".into(), Some(("admin", "gc"))),
        ];
        for (method, path, want) in cases {
            let route = parse(&path).expect("parse").expect("route");
            let got = audited(&route, method);
            match (got, want) {
                (None, None) => {}
                (Some(a), Some((action, detail))) => {
                    assert_eq!(a.action.as_str(), action, "{method} {path}");
                    assert!(
                        a.detail.starts_with(detail),
                        "{method} {path}: {}",
                        a.detail
                    );
                }
                (got, want) => panic!(
                    "{method} {path}: got {:?}, want {want:?}",
                    got.map(|a| a.action)
                ),
            }
        }
    }
}
