//! Blob endpoints (end-2, end-10): `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`,
//! with single byte ranges on GET.
//!
//! They must never serve a blob the repository does not link (the registry
//! checks) nor read a blob into memory: the body is the file (or, for a
//! blob the pull-through cache is fetching, the file as it grows; for an
//! S3 store, the object streamed from a ranged GET).

use super::envelope::error_response;
use super::headers::blob_headers;
use super::query::Query;
use super::ranges::{parse_range, RangeRequest};
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::{Body, Request, Response};
use crate::oci::{Digest, RepoName};
use crate::storage::backend::{BlobBody, RemoteBlob};
use crate::upstream::BlobAnswer;
use serde_json::json;
use std::fs::File;

/// Where a blob's bytes come from: its file, or a download still growing.
enum BodySource {
    File(File),
    Growing(Box<dyn crate::http::Growing>),
}

/// An object of a remote blob store, streamed as it is read.
struct RemoteBody(RemoteBlob);

impl crate::http::Growing for RemoteBody {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
        self.0.read_at(buf, pos)
    }

    fn complete(&self) -> Option<File> {
        None
    }
}

impl BodySource {
    fn of(body: BlobBody) -> BodySource {
        match body {
            BlobBody::File(file) => BodySource::File(file),
            BlobBody::Remote(remote) => BodySource::Growing(Box::new(RemoteBody(remote))),
        }
    }

    fn part(self, offset: u64, len: u64) -> Body {
        match self {
            BodySource::File(file) => Body::File { file, offset, len },
            BodySource::Growing(source) => Body::Growing {
                source,
                offset,
                len,
            },
        }
    }
}

/// `--s3-redirect`: a 307 to the store's presigned URL (not cached: it expires).
fn redirect(url: String, digest: &Digest) -> Response {
    Response::new(307)
        .header("Location", url)
        .header("Docker-Content-Digest", digest.to_string())
        .header("Cache-Control", "no-store")
}

impl Api {
    pub(super) fn get_blob(
        &self,
        req: &Request<'_>,
        name: &RepoName,
        digest: &str,
        query: &Query,
    ) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        let pulled = self
            .pull_through
            .blob(name, &digest, query.get("ns"), false)?;
        let (body, size): (BodySource, u64) = match pulled {
            Some(BlobAnswer::Streaming { body, size }) => (BodySource::Growing(body), size),
            Some(BlobAnswer::Stored(local)) => {
                if let Some(url) = self.registry.blob_redirect(&local, &digest)? {
                    return Ok(redirect(url, &digest));
                }
                let (body, size) = self.registry.open_blob(&local, &digest)?;
                (BodySource::of(body), size)
            }
            Some(BlobAnswer::Size(_)) | None => {
                if let Some(url) = self.registry.blob_redirect(name, &digest)? {
                    return Ok(redirect(url, &digest));
                }
                let (body, size) = self.registry.open_blob(name, &digest)?;
                (BodySource::of(body), size)
            }
        };
        let resp = blob_headers(Response::new(200), &digest);
        match req.header("range").map(|r| parse_range(r, size)) {
            None | Some(RangeRequest::Ignore) => Ok(resp.body(body.part(0, size))),
            Some(RangeRequest::Unsatisfiable) => {
                let err = Error::client(
                    Code::RangeInvalid,
                    format!("range outside the blob's {size} bytes"),
                )
                .with_detail(json!({ "size": size }));
                Ok(error_response(&err, req.id).header("Content-Range", format!("bytes */{size}")))
            }
            Some(RangeRequest::Bytes(start, end)) => {
                let mut resp = resp.body(body.part(start, RangeRequest::len(start, end)));
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
        let size = match self
            .pull_through
            .blob(name, &digest, query.get("ns"), true)?
        {
            // A cold blob: the upstream's HEAD answered, nothing was fetched.
            Some(BlobAnswer::Size(size)) | Some(BlobAnswer::Streaming { size, .. }) => size,
            Some(BlobAnswer::Stored(local)) => self.registry.blob_size(&local, &digest)?,
            None => self.registry.blob_size(name, &digest)?,
        };
        Ok(blob_headers(Response::new(200), &digest).body(Body::Length(size)))
    }

    pub(super) fn delete_blob(&self, name: &RepoName, digest: &str) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        self.registry.delete_blob(name, &digest)?;
        Ok(Response::new(202))
    }
}
