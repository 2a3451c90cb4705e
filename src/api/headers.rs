//! Response builders shared by the handlers: JSON bodies, the headers the spec
//! asks of blobs, manifests and upload sessions, and `Link` for paged lists.
//!
//! They must never decide a status code from an `Error` (that is
//! `envelope::error_response`) nor call the registry.

use super::query::percent_encode;
use crate::http::{Body, Response};
use crate::oci::Digest;
use crate::registry::UploadStatus;

/// Sent on every response.
pub const API_VERSION: (&str, &str) = ("Docker-Distribution-API-Version", "registry/2.0");
pub const JSON: &str = "application/json";

pub fn json_response(status: u16, value: &serde_json::Value) -> Response {
    Response::new(status)
        .header("Content-Type", JSON)
        .body(Body::Bytes(value.to_string().into_bytes()))
}

pub fn manifest_headers(resp: Response, digest: &Digest, media_type: &str) -> Response {
    resp.header("Content-Type", media_type)
        .header("Docker-Content-Digest", digest.to_string())
        .header("ETag", format!("\"{digest}\""))
}

pub fn blob_headers(resp: Response, digest: &Digest) -> Response {
    resp.header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest.to_string())
        .header("Accept-Ranges", "bytes")
        .header("ETag", format!("\"{digest}\""))
        .header("Cache-Control", "max-age=31536000")
}

/// `Location` and `Docker-Content-Digest` of a stored blob (201).
pub fn blob_created(name: &impl std::fmt::Display, digest: &Digest) -> Response {
    Response::new(201)
        .header("Location", format!("/v2/{name}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest.to_string())
}

/// `Location`, `Docker-Upload-UUID` and `Range: 0-<last byte>` of a session.
pub fn upload_headers(resp: Response, status: &UploadStatus) -> Response {
    let range = match status.length.checked_sub(1) {
        None => "0-0".to_string(),
        Some(last) => format!("0-{last}"),
    };
    resp.header(
        "Location",
        format!("/v2/{}/blobs/uploads/{}", status.repo, status.id),
    )
    .header("Docker-Upload-UUID", status.id.as_str())
    .header("Range", range)
}

/// `Link: <path?n=N&last=L>; rel="next"` for the next page of a list.
pub fn next_page_link(resp: Response, path: &str, n: usize, last: &str) -> Response {
    resp.header(
        "Link",
        format!("<{path}?n={n}&last={}>; rel=\"next\"", percent_encode(last)),
    )
}
