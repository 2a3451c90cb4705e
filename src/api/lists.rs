//! Paged lists (end-8, end-12 and the catalog): `/v2/_catalog`,
//! `/v2/<name>/tags/list` with `n`/`last` and `Link`, and the referrers index
//! with `artifactType` filtering.
//!
//! They must never return more than `MAX_PAGE` entries, nor list a
//! repository the caller may not pull, nor build a JSON tree per entry of a
//! long list (bodies are serialized straight into one buffer).

use super::access::Caller;
use super::headers::{json_body_response, next_page_link, JSON};
use super::query::Query;
use super::Api;
use crate::auth::Action;
use crate::error::{Code, Error, Result};
use crate::http::{Body, Response};
use crate::oci::{Digest, RepoName};
use crate::registry::MAX_PAGE;

impl Api {
    /// The catalog, listing only the repositories `caller` may pull.
    pub(super) fn catalog(&self, query: &Query, caller: &Caller) -> Result<Response> {
        let (n, last) = page_params(query)?;
        let (repos, more) = if n == 0 {
            (Vec::new(), false)
        } else if caller.sees_everything() {
            self.registry.catalog(last, n)?
        } else {
            self.visible_catalog(last, n, caller)?
        };
        #[derive(serde::Serialize)]
        struct Catalog<'a> {
            repositories: &'a [String],
        }
        let resp = json_body_response(&Catalog {
            repositories: &repos,
        })?;
        Ok(match (more, repos.last()) {
            (true, Some(l)) => next_page_link(resp, "/v2/_catalog", n, l),
            _ => resp,
        })
    }

    /// A catalog page of repositories `caller` may pull: reads pages until
    /// `n` visible ones (and one more, to know whether more remain) are
    /// found or the catalog ends.
    fn visible_catalog(
        &self,
        last: &str,
        n: usize,
        caller: &Caller,
    ) -> Result<(Vec<String>, bool)> {
        let mut visible = Vec::new();
        let mut cursor = last.to_string();
        loop {
            let (page, page_more) = self.registry.catalog(&cursor, n.clamp(100, 10_000))?;
            for name in page {
                cursor.clone_from(&name);
                let may = RepoName::parse(&name).is_ok_and(|r| caller.may(&r, Action::Pull));
                if !may {
                    continue;
                }
                if visible.len() == n {
                    return Ok((visible, true));
                }
                visible.push(name);
            }
            if !page_more {
                return Ok((visible, false));
            }
        }
    }

    pub(super) fn tags(&self, name: &RepoName, query: &Query) -> Result<Response> {
        let (n, last) = page_params(query)?;
        let cached = self.pull_through.local_name(name, query.get("ns"))?;
        let page = self
            .registry
            .tags(cached.as_ref().unwrap_or(name), last, n)?;
        let mut body = Vec::with_capacity(page.json.len() + name.as_str().len() + 24);
        body.extend_from_slice(b"{\"name\":");
        let _ = serde_json::to_writer(&mut body, name.as_str());
        body.extend_from_slice(b",\"tags\":");
        body.extend_from_slice(&page.json);
        body.push(b'}');
        let resp = Response::new(200)
            .header("Content-Type", JSON)
            .body(Body::Bytes(body));
        Ok(match (page.more, &page.last) {
            (true, Some(l)) => next_page_link(resp, &format!("/v2/{name}/tags/list"), n, l),
            _ => resp,
        })
    }

    pub(super) fn referrers(
        &self,
        name: &RepoName,
        digest: &str,
        query: &Query,
    ) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        let artifact_type = query.get("artifactType").filter(|t| !t.is_empty());
        let after = match query.get("after") {
            None | Some("") => 0,
            Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::client(
                    Code::PaginationNumberInvalid,
                    format!("invalid after {:?}", s.chars().take(40).collect::<String>()),
                )
            })?,
        };
        let page = self
            .registry
            .referrers(name, &digest, artifact_type, after)?;
        let mut resp = Response::new(200)
            .header("Content-Type", crate::oci::media::OCI_INDEX)
            .body(Body::Bytes(page.body));
        if let Some(next) = page.next {
            let filter = artifact_type
                .map(|t| format!("&artifactType={}", super::query::percent_encode(t)))
                .unwrap_or_default();
            resp = resp.header(
                "Link",
                format!("</v2/{name}/referrers/{digest}?after={next}{filter}>; rel=\"next\""),
            );
        }
        Ok(match artifact_type {
            Some(_) => resp.header("OCI-Filters-Applied", "artifactType"),
            None => resp,
        })
    }
}

/// `n` and `last` of a paged list. `n` absent means "everything" (bounded by MAX_PAGE).
fn page_params(query: &Query) -> Result<(usize, &str)> {
    let n = match query.get("n") {
        None | Some("") => MAX_PAGE,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| Error::client(Code::PaginationNumberInvalid, format!("invalid n {s:?}")))?
            .min(MAX_PAGE),
    };
    Ok((n, query.get("last").unwrap_or("")))
}
