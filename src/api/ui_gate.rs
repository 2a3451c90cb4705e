//! The API's side of the web UI ([`crate::ui::Gate`]): the registry, the
//! access policy the API enforces (the same cached object), and the API's
//! own credential check (`Api::identify`: throttle, verifier pool, audit).
//! UI requests are handed to `crate::ui::serve` before API routing.
//!
//! It must never decide access or check a password differently from the API.

use super::Api;
use crate::auth::Policy;
use crate::error::Result;
use crate::http::Request;
use crate::registry::Registry;
use crate::ui::{Gate, SignIn};
use std::sync::Arc;

impl Gate for Api {
    fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn gc_policy(&self) -> crate::registry::GcPolicy {
        self.gc_policy.clone()
    }

    fn current_policy(&self) -> Result<Option<Arc<Policy>>> {
        let (closed, generation) = self.registry.access_state()?;
        if !self.authenticator.observe_closed(closed) {
            return Ok(None);
        }
        Ok(Some(self.policy(generation)?))
    }

    fn sign_in(&self, req: &Request<'_>, user: &str, secret: &str) -> SignIn {
        match self.identify(req, user, secret) {
            Ok(who) => SignIn::Ok(who),
            Err(resp) if resp.status == 429 => {
                let wait = resp
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(1);
                SignIn::Later(wait)
            }
            Err(_) => SignIn::Refused,
        }
    }
}
