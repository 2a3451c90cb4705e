//! Blob endpoints (end-2, end-10): `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`,
//! with single byte ranges on GET.
//!
//! They must never serve a blob the repository does not link (the registry
//! checks) nor read a blob into memory: the body is the file.

use super::envelope::error_response;
use super::headers::blob_headers;
use super::query::Query;
use super::ranges::{parse_range, RangeRequest};
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::{Body, Request, Response};
use crate::oci::{Digest, RepoName};
use serde_json::json;

impl Api {
    pub(super) fn get_blob(
        &self,
        req: &Request<'_>,
        name: &RepoName,
        digest: &str,
        query: &Query,
    ) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        let cached = self
            .pull_through
            .blob(name, &digest, query.get("ns"), false)?;
        let name = cached.as_ref().unwrap_or(name);
        let (file, size) = self.registry.open_blob(name, &digest)?;
        let resp = blob_headers(Response::new(200), &digest);
        match req.header("range").map(|r| parse_range(r, size)) {
            None | Some(RangeRequest::Ignore) => Ok(resp.body(Body::File {
                file,
                offset: 0,
                len: size,
            })),
            Some(RangeRequest::Unsatisfiable) => {
                let err = Error::client(
                    Code::RangeInvalid,
                    format!("range outside the blob's {size} bytes"),
                )
                .with_detail(json!({ "size": size }));
                Ok(error_response(&err, req.id).header("Content-Range", format!("bytes */{size}")))
            }
            Some(RangeRequest::Bytes(start, end)) => {
                let mut resp = resp.body(Body::File {
                    file,
                    offset: start,
                    len: RangeRequest::len(start, end),
                });
                resp.status = 206;
                Ok(resp.header("Content-Range", format!("bytes {start}-{end}/{size}")))
            }
        }
    }

    pub(super) fn head_blob(
        &self,
        name: &RepoName,
        digest: &str,
        query: &Query,
    ) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        let cached = self
            .pull_through
            .blob(name, &digest, query.get("ns"), true)?;
        let name = cached.as_ref().unwrap_or(name);
        let size = self.registry.blob_size(name, &digest)?;
        Ok(blob_headers(Response::new(200), &digest).body(Body::Length(size)))
    }

    pub(super) fn delete_blob(&self, name: &RepoName, digest: &str) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        self.registry.delete_blob(name, &digest)?;
        Ok(Response::new(202))
    }
}
