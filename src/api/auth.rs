//! Authentication glue: decides whether a request may proceed (DESIGN.md §6),
//! answers 401 with the Basic challenge and 429 when logins are throttled or
//! the password verifiers are busy.
//!
//! It must never verify a password itself (`crate::auth` does), nor decide what
//! an identity may do (`auth::access::Policy` does), nor log a password.

use super::basic::parse_basic;
use super::envelope::error_response;
use super::routes::Route;
use super::Api;
use crate::auth::{self, Action, AuthOutcome, Identity, Policy};
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};

/// How requests are authenticated.
pub struct AuthSettings {
    pub realm: String,
    /// Reads (GET/HEAD) need no credentials even when users exist.
    pub anonymous_pull: bool,
    /// Verifier threads, queue, cache and throttle bounds.
    pub limits: auth::Limits,
}

/// What an authentication check decided.
pub(super) enum Access {
    Granted,
    Denied(Response),
}

impl Api {
    /// Decide whether the request may proceed.
    pub(super) fn authenticate(&self, req: &Request<'_>, route: &Route) -> Result<Access> {
        // Read for every request: a user added or a registry opened applies at once.
        if matches!(route, Route::CaCert | Route::V1Ping)
            || !self.registry.needs_credentials(&self.authenticator)
        {
            return Ok(Access::Granted);
        }
        let action = match (req.method.as_str(), route.is_admin()) {
            (_, true) => Action::Admin,
            ("GET" | "HEAD", false) => Action::Pull,
            _ => Action::Push,
        };
        let throttled = |message: &str, retry_after_secs: u64| {
            let err = Error::client(Code::TooManyRequests, message);
            let wait = retry_after_secs.max(1).to_string();
            Ok(Access::Denied(
                error_response(&err, req.id).header("Retry-After", wait),
            ))
        };
        let who = match req.header("authorization").and_then(parse_basic) {
            None => Identity::Anonymous,
            Some((user, password)) => match self.registry.check_password(
                &self.authenticator,
                &user,
                &password,
                req.remote.ip(),
            ) {
                AuthOutcome::Ok(identity) => identity,
                AuthOutcome::Bad => {
                    let shown: String = user.chars().take(64).collect();
                    log::warn!("failed login for user {shown:?} from {}", req.remote.ip());
                    return Ok(Access::Denied(
                        self.challenge(req.id, "invalid username or password"),
                    ));
                }
                AuthOutcome::Throttled { retry_after_secs } => {
                    return throttled("too many failed logins; try again later", retry_after_secs)
                }
                AuthOutcome::Busy { retry_after_secs } => {
                    return throttled("too many logins at once; try again", retry_after_secs)
                }
            },
        };
        let policy = Policy {
            anonymous_pull: self.auth.anonymous_pull,
        };
        if policy.allows(&who, action) {
            Ok(Access::Granted)
        } else {
            Ok(Access::Denied(
                self.challenge(req.id, "authentication required"),
            ))
        }
    }

    /// 401 UNAUTHORIZED with `WWW-Authenticate: Basic realm="..."`.
    fn challenge(&self, request_id: u64, message: &str) -> Response {
        let realm = self.auth.realm.replace('"', "");
        error_response(&Error::client(Code::Unauthorized, message), request_id)
            .header("WWW-Authenticate", format!("Basic realm=\"{realm}\""))
    }
}
