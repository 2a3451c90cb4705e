//! Upload endpoints (end-4 to end-6, end-11, end-13, end-14): start (with
//! mount and single-POST monolithic), status, PATCH chunks, closing PUT,
//! cancel. A chunk out of order gets 416 with the session's headers, built
//! from the length the error carries.
//!
//! A body announced past `--max-blob-size` (413), the disk reserve (507) or
//! a quota (403) is refused before it is read, and before a single-POST
//! upload makes a session.
//!
//! Open sessions are capped per client address and in total (429 with
//! `Retry-After`); a request on a session another request is writing gets
//! 416 at once instead of waiting.
//!
//! They must never buffer a body (the registry streams it) nor leave a
//! session open after a failed single-POST upload.

use super::envelope::error_response;
use super::headers::{blob_created, upload_headers};
use super::query::Query;
use super::ranges::chunk_range;
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};
use crate::oci::{Algorithm, Digest, RepoName, UploadId};
use crate::registry::UploadStatus;
use std::io::Read;

impl Api {
    /// `POST /v2/<name>/blobs/uploads/`: mount, monolithic upload or a new
    /// session. Without `may_mount` (`api::access`) a mount request opens a
    /// normal session instead, never linking the blob; 429 with `Retry-After`
    /// when the session caps are reached.
    pub(super) fn post_upload(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        query: &Query,
        may_mount: bool,
    ) -> Result<Response> {
        match self.post_upload_inner(req, name, query, may_mount) {
            Err(e) if e.code() == Code::TooManyRequests => {
                Ok(error_response(&e, req.id).header("Retry-After", "60"))
            }
            other => other,
        }
    }

    fn post_upload_inner(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        query: &Query,
        may_mount: bool,
    ) -> Result<Response> {
        let (mount, digest) = (query.get("mount"), query.get("digest"));
        if let Some(mount) = mount.filter(|_| may_mount) {
            let digest = Digest::parse(mount)?;
            let from = match query.get("from").filter(|f| !f.is_empty()) {
                Some(f) => Some(RepoName::parse(f)?),
                None => None,
            };
            if self.registry.mount_blob(name, &digest, from.as_ref())? {
                return Ok(blob_created(name, &digest));
            }
        }
        let alg = match query.get("digest-algorithm") {
            Some(a) => Algorithm::parse(a)?,
            None => match digest {
                Some(d) => Digest::parse(d)?.algorithm(),
                None => Algorithm::Sha256,
            },
        };
        if let (Some(d), None) = (digest, mount) {
            // end-4b: single-POST monolithic upload.
            let digest = Digest::parse(d)?;
            let expected = declared_len(req);
            // Too large or no room: refused before a session exists.
            self.registry.admit_upload(expected, Some(&digest))?;
            if let Some(n) = expected {
                self.registry.admit_quota(name, n, Some(&digest))?;
            }
            let status = self.start_session(req, name, alg)?;
            let result = self.registry.finish_upload(
                name,
                &status.id,
                &digest,
                Some((None, expected, &mut *req.body)),
            );
            return match result {
                Ok(digest) => Ok(blob_created(name, &digest)),
                Err(e) => {
                    let _ = self.registry.cancel_upload(name, &status.id);
                    Err(e)
                }
            };
        }
        self.registry.admit_upload(None, None)?;
        let status = self.start_session(req, name, alg)?;
        Ok(upload_headers(Response::new(202), &status))
    }

    /// A new session keyed to the client's address for the per-client cap.
    fn start_session(
        &self,
        req: &Request<'_>,
        name: &RepoName,
        alg: Algorithm,
    ) -> Result<UploadStatus> {
        let client = req.remote.ip().to_string();
        self.registry.start_upload(name, alg, &client)
    }

    /// `GET`/`HEAD` of a session: 204 with its `Range`.
    pub(super) fn upload_status(&self, name: &RepoName, id: &UploadId) -> Result<Response> {
        let status = self.registry.upload_status(name, id)?;
        Ok(upload_headers(Response::new(204), &status))
    }

    pub(super) fn patch_upload(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        id: &UploadId,
    ) -> Result<Response> {
        let (start, expected) = chunk_range(req.header("content-range"), declared_len(req))?;
        if let Some(n) = expected {
            self.registry.admit_quota_chunk(name, id, n)?;
        }
        let appended = self
            .registry
            .append_upload(name, id, start, expected, &mut *req.body);
        match appended {
            Ok(status) => Ok(upload_headers(Response::new(202), &status)),
            Err(e) => out_of_order(e, req.id, name, id),
        }
    }

    /// The closing `PUT ?digest=`, with or without a last chunk.
    pub(super) fn put_upload(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        id: &UploadId,
        digest: Option<&str>,
    ) -> Result<Response> {
        let digest = digest.ok_or_else(|| {
            Error::client(
                Code::DigestInvalid,
                "the digest query parameter is required",
            )
        })?;
        let digest = Digest::parse(digest)?;
        let (start, expected) = chunk_range(req.header("content-range"), declared_len(req))?;
        let has_body = req.body.is_chunked() || req.body.declared_len().is_some_and(|n| n > 0);
        if let Some(n) = expected.filter(|_| has_body) {
            self.registry.admit_quota_chunk(name, id, n)?;
        }
        let chunk = if has_body {
            Some((start, expected, &mut *req.body as &mut dyn Read))
        } else {
            None
        };
        match self.registry.finish_upload(name, id, &digest, chunk) {
            Ok(digest) => Ok(blob_created(name, &digest)),
            Err(e) => out_of_order(e, req.id, name, id),
        }
    }

    pub(super) fn cancel_upload(&self, name: &RepoName, id: &UploadId) -> Result<Response> {
        self.registry.cancel_upload(name, id)?;
        Ok(Response::new(204))
    }
}

/// The body's declared length, unless it is chunked.
fn declared_len(req: &Request<'_>) -> Option<u64> {
    req.body.declared_len().filter(|_| !req.body.is_chunked())
}

/// A chunk out of order: 416 with the session's `Location` and `Range` (from
/// the length the error carries); any other error unchanged.
fn out_of_order(err: Error, request_id: u64, name: &RepoName, id: &UploadId) -> Result<Response> {
    match err {
        Error::UploadOutOfOrder { acknowledged, .. } => {
            let status = UploadStatus {
                id: id.clone(),
                repo: name.clone(),
                length: acknowledged,
            };
            Ok(upload_headers(error_response(&err, request_id), &status))
        }
        e => Err(e),
    }
}
