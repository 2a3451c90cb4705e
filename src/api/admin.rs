//! Operator endpoints under `/v2/_soute/`: `POST gc` and `GET du`. They
//! need the `admin` action (administrators, or a rule `WHO ** admin`;
//! `api::access` enforces it); with no users the registry is open and so are
//! these, like deletes.
//!
//! They must never decide who may call them (`api::access` does) nor accept
//! a parameter they do not understand silently.

use super::headers::json_response;
use super::query::Query;
use super::{method_not_allowed, Api};
use crate::error::{Error, Result};
use crate::http::Response;
use crate::oci::{RepoName, Tag};
use crate::registry::GcPolicy;
use serde_json::json;

impl Api {
    /// `POST /v2/_soute/gc`: run GC (or plan it with `dry_run`).
    pub(super) fn admin_gc(&self, query: &Query) -> Result<Response> {
        let mut policy = gc_policy(query)?;
        policy.dry_run = flag(query, "dry_run")?;
        let mut report = self.registry.gc_recorded(&policy)?;
        if !policy.dry_run {
            report.kept.clear();
        }
        Ok(json_response(200, &json!(report)))
    }

    /// `GET /v2/_soute/du`: space accounting, for a repository or a tag.
    pub(super) fn admin_du(&self, query: &Query) -> Result<Response> {
        let policy = gc_policy(query)?;
        let repo = query.get("repo").map(RepoName::parse).transpose()?;
        let tag = query.get("tag").map(Tag::parse).transpose()?;
        if tag.is_some() && repo.is_none() {
            return Err(Error::InvalidParameter("tag needs repo".into()));
        }
        let usage = self.registry.du(repo.as_ref(), tag.as_ref(), &policy)?;
        Ok(json_response(200, &json!(usage)))
    }

    /// Another method on an operator endpoint: 405, but bad parameters are
    /// reported first (as they always were).
    pub(super) fn admin_other_method(&self, query: &Query) -> Result<Response> {
        gc_policy(query)?;
        Err(method_not_allowed())
    }
}

/// The keep rules shared by `gc` and `du`.
fn gc_policy(query: &Query) -> Result<GcPolicy> {
    let mut policy = GcPolicy::default();
    if let Some(g) = seconds(query, "grace")? {
        policy.grace_secs = g;
    }
    if let Some(g) = seconds(query, "link_grace")? {
        policy.link_grace_secs = g;
    }
    if let Some(t) = seconds(query, "upload_ttl")? {
        policy.upload_ttl_secs = t;
    }
    policy.delete_untagged = flag(query, "delete_untagged")?;
    Ok(policy)
}

fn seconds(query: &Query, key: &str) -> Result<Option<i64>> {
    query
        .get(key)
        .map(|v| {
            v.parse::<u32>()
                .map(i64::from)
                .map_err(|_| Error::InvalidParameter(format!("{key} must be a number of seconds")))
        })
        .transpose()
}

fn flag(query: &Query, key: &str) -> Result<bool> {
    match query.get(key) {
        None | Some("false") | Some("0") => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some(v) => Err(Error::InvalidParameter(format!(
            "{key} must be true or false, not {v:?}"
        ))),
    }
}
