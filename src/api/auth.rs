//! Authentication glue: decides whether a request may proceed (DESIGN.md §6),
//! answers 401 with the Basic challenge and 429 when logins are throttled.
//!
//! It must never verify a password itself (the authenticator does) nor log a
//! password; it decides from the route and the outcome only.

use super::envelope::error_response;
use super::routes::Route;
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};
use crate::registry::credentials::{self, AuthOutcome};
use std::time::{Duration, Instant};

/// How requests are authenticated.
pub struct AuthSettings {
    pub realm: String,
    /// Reads (GET/HEAD) need no credentials even when users exist.
    pub anonymous_pull: bool,
}

/// What an authentication check decided.
pub(super) enum Access {
    Granted,
    Denied(Response),
}

impl Api {
    /// Whether any user exists, re-read at most once a second.
    fn users_exist(&self) -> Result<bool> {
        let mut cached = self.has_users.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(at), value) = *cached {
            if at.elapsed() < Duration::from_secs(1) {
                return Ok(value);
            }
        }
        let value = self.registry.has_users()?;
        *cached = (Some(Instant::now()), value);
        Ok(value)
    }

    /// Decide whether the request may proceed.
    pub(super) fn authenticate(&self, req: &Request<'_>, route: &Route) -> Result<Access> {
        if matches!(route, Route::CaCert | Route::V1Ping) || !self.users_exist()? {
            return Ok(Access::Granted);
        }
        let credentials = req
            .header("authorization")
            .and_then(credentials::parse_basic);
        // Operator endpoints always need credentials (anonymous pull is for images).
        let is_read = matches!(req.method.as_str(), "GET" | "HEAD") && !route.is_admin();
        let Some((user, password)) = credentials else {
            if self.auth.anonymous_pull && is_read {
                return Ok(Access::Granted);
            }
            return Ok(Access::Denied(
                self.challenge(req.id, "authentication required"),
            ));
        };
        let outcome =
            self.registry
                .check_password(&self.authenticator, &user, &password, req.remote.ip());
        let throttled = |message: &str, retry_after_secs: u64| {
            let err = Error::client(Code::TooManyRequests, message);
            let resp =
                error_response(&err, req.id).header("Retry-After", retry_after_secs.to_string());
            Ok(Access::Denied(resp))
        };
        match outcome {
            AuthOutcome::Ok => Ok(Access::Granted),
            AuthOutcome::Bad => {
                let shown: String = user.chars().take(64).collect();
                log::warn!("failed login for user {shown:?} from {}", req.remote.ip());
                Ok(Access::Denied(
                    self.challenge(req.id, "invalid username or password"),
                ))
            }
            AuthOutcome::Throttled { retry_after_secs } => throttled(
                "too many failed logins; try again later",
                retry_after_secs.max(1),
            ),
            AuthOutcome::Busy => throttled("too many logins at once; try again", 1),
        }
    }

    /// 401 UNAUTHORIZED with `WWW-Authenticate: Basic realm="..."`.
    fn challenge(&self, request_id: u64, message: &str) -> Response {
        let realm = self.auth.realm.replace('"', "");
        error_response(&Error::client(Code::Unauthorized, message), request_id)
            .header("WWW-Authenticate", format!("Basic realm=\"{realm}\""))
    }
}
