//! `docker search` support: `/v1/_ping` and `/v1/search?q=&n=` (the Docker
//! daemon's v1 API), answered from the registry's search index.
//!
//! `q` is capped at 128 characters (400 beyond), `n` at 100, and at most
//! two searches run at once (429 with `Retry-After`).
//!
//! It must never answer more than 100 results, nor list a repository the
//! caller may not pull, nor implement any other v1 endpoint.

use super::access::Caller;
use super::envelope::error_response;
use super::headers::json_response;
use super::query::Query;
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::Response;
use crate::oci::RepoName;
use serde_json::json;

/// The longest search term (`q`) accepted.
pub const MAX_TERM_CHARS: usize = 128;

impl Api {
    pub(super) fn v1_ping(&self) -> Response {
        json_response(200, &json!({})).header("X-Docker-Registry-Standalone", "true")
    }

    /// `docker search`: repository names containing the term, among those
    /// `caller` may pull (a restricted caller's hits are taken from the first
    /// 1,000 matches). A term over `MAX_TERM_CHARS` is 400; more than a few
    /// searches at once, 429.
    pub(super) fn search(
        &self,
        query: &Query,
        caller: &Caller,
        request_id: u64,
    ) -> Result<Response> {
        match self.search_inner(query, caller) {
            Err(e) if e.code() == Code::TooManyRequests => {
                Ok(error_response(&e, request_id).header("Retry-After", "1"))
            }
            other => other,
        }
    }

    fn search_inner(&self, query: &Query, caller: &Caller) -> Result<Response> {
        let term = query.get("q").unwrap_or("");
        if term.chars().count() > MAX_TERM_CHARS {
            return Err(Error::InvalidParameter(format!(
                "the search term is longer than {MAX_TERM_CHARS} characters"
            )));
        }
        let limit = match query.get("n") {
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| Error::client(Code::PaginationNumberInvalid, "n must be a number"))?
                .clamp(1, 100),
            None => 25,
        };
        let everything = caller.sees_everything();
        let asked = if everything { limit } else { 1_000 };
        let results: Vec<serde_json::Value> = self
            .registry
            .search(term.trim(), asked)?
            .into_iter()
            .filter(|hit| {
                everything
                    || RepoName::parse(&hit.name).is_ok_and(|r| caller.may_list(&r))
            })
            .take(limit)
            .map(|hit| {
                json!({ "name": hit.name, "description": hit.description, "star_count": 0, "is_official": false, "is_automated": false })
            })
            .collect();
        Ok(json_response(
            200,
            &json!({ "num_results": results.len(), "query": term, "results": results }),
        ))
    }
}
