//! `docker search` support: `/v1/_ping` and `/v1/search?q=&n=` (the Docker
//! daemon's v1 API), answered from the registry's search index.
//!
//! It must never answer more than 100 results nor implement any other v1 endpoint.

use super::headers::json_response;
use super::query::Query;
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::Response;
use serde_json::json;

impl Api {
    pub(super) fn v1_ping(&self) -> Response {
        json_response(200, &json!({})).header("X-Docker-Registry-Standalone", "true")
    }

    /// `docker search`: repository names containing the term.
    pub(super) fn search(&self, query: &Query) -> Result<Response> {
        let term = query.get("q").unwrap_or("");
        let limit = match query.get("n") {
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| Error::client(Code::PaginationNumberInvalid, "n must be a number"))?
                .clamp(1, 100),
            None => 25,
        };
        let results: Vec<serde_json::Value> = self
            .registry
            .search(term.trim(), limit)?
            .into_iter()
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
