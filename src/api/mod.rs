//! api: the protocol. Maps routes and methods to registry calls, reads and
//! writes the spec's headers and status codes, and is the only place that turns
//! an `Error` into the `{"errors":[...]}` envelope (`error_response`).
//!
//! It must never write SQL, build paths under the data folder or touch sockets.

pub mod basic;
pub mod routes;

use crate::auth::{self, Action, AuthOutcome, Authenticator, Identity, Policy};
use crate::error::{Code, Error, Result};
use crate::http::{Body, Handler, Request, Response};
use crate::oci::manifest::MAX_MANIFEST_BYTES;
use crate::oci::{
    parse_query, percent_encode, Algorithm, Digest, Reference, RepoName, Tag, UploadId,
};
use crate::registry::{GcPolicy, Registry, UploadStatus, MAX_PAGE};
use routes::Route;
use serde_json::json;
use std::io::Read;
use std::sync::Arc;

const API_VERSION: (&str, &str) = ("Docker-Distribution-API-Version", "registry/2.0");
const JSON: &str = "application/json";
/// At most this many `?tag=` parameters on one manifest PUT (the spec asks for 10).
const MAX_TAG_PARAMS: usize = 100;

/// How requests are authenticated.
pub struct AuthSettings {
    pub realm: String,
    /// Reads (GET/HEAD) need no credentials even when users exist.
    pub anonymous_pull: bool,
    /// Verifier threads, queue, cache and throttle bounds.
    pub limits: auth::Limits,
}

/// The request handler the HTTP server calls.
pub struct Api {
    registry: Arc<Registry>,
    /// PEM of the registry's CA certificate, served at `/ca.crt` when TLS is automatic.
    ca_pem: Option<Vec<u8>>,
    auth: AuthSettings,
    authenticator: Authenticator,
}

/// What an authentication check decided.
enum Access {
    Granted,
    Denied(Response),
}

impl Api {
    pub fn new(
        registry: Arc<Registry>,
        ca_pem: Option<Vec<u8>>,
        auth: AuthSettings,
    ) -> Result<Api> {
        let authenticator =
            Authenticator::new(auth.limits.clone()).map_err(|e| Error::internal(e.to_string()))?;
        Ok(Api {
            registry,
            ca_pem,
            auth,
            authenticator,
        })
    }

    /// Decide whether the request may proceed (DESIGN.md §6).
    fn authenticate(&self, req: &Request<'_>, route: &Route) -> Result<Access> {
        // Read for every request: a user added or a registry opened applies at once.
        if matches!(route, Route::CaCert | Route::V1Ping)
            || !self.registry.needs_credentials(&self.authenticator)
        {
            return Ok(Access::Granted);
        }
        let action = match (req.method.as_str(), route.is_admin()) {
            (_, true) => Action::Admin,
            ("GET" | "HEAD", false) => Action::Pull,
            _ => Action::Push,
        };
        let who = match req.header("authorization").and_then(basic::parse_basic) {
            None => Identity::Anonymous,
            Some((user, password)) => match self.registry.check_password(
                &self.authenticator,
                &user,
                &password,
                req.remote.ip(),
            ) {
                AuthOutcome::Ok(identity) => identity,
                AuthOutcome::Bad => {
                    let shown: String = user.chars().take(64).collect();
                    log::warn!("failed login for user {shown:?} from {}", req.remote.ip());
                    return Ok(Access::Denied(
                        self.challenge(req.id, "invalid username or password"),
                    ));
                }
                AuthOutcome::Throttled { retry_after_secs } => {
                    let err = Error::client(
                        Code::TooManyRequests,
                        "too many failed logins; try again later",
                    );
                    let wait = retry_after_secs.max(1).to_string();
                    return Ok(Access::Denied(
                        error_response(&err, req.id).header("Retry-After", wait),
                    ));
                }
                AuthOutcome::Busy { retry_after_secs } => {
                    let err =
                        Error::client(Code::TooManyRequests, "too many logins at once; try again");
                    let wait = retry_after_secs.max(1).to_string();
                    return Ok(Access::Denied(
                        error_response(&err, req.id).header("Retry-After", wait),
                    ));
                }
            },
        };
        let policy = Policy {
            anonymous_pull: self.auth.anonymous_pull,
        };
        if policy.allows(&who, action) {
            Ok(Access::Granted)
        } else {
            Ok(Access::Denied(
                self.challenge(req.id, "authentication required"),
            ))
        }
    }

    fn challenge(&self, request_id: u64, message: &str) -> Response {
        let realm = self.auth.realm.replace('"', "");
        error_response(&Error::client(Code::Unauthorized, message), request_id)
            .header("WWW-Authenticate", format!("Basic realm=\"{realm}\""))
    }

    fn route_and_dispatch(&self, req: &mut Request<'_>) -> Result<Response> {
        let Some(route) = routes::parse(&req.path)? else {
            let err = Error::client(Code::Unsupported, format!("no endpoint at {}", req.path));
            return Err(err.with_status(404));
        };
        if let Access::Denied(resp) = self.authenticate(req, &route)? {
            return Ok(resp);
        }
        self.dispatch(req, route)
    }

    fn dispatch(&self, req: &mut Request<'_>, route: Route) -> Result<Response> {
        let method = req.method.as_str();
        let query = parse_query(&req.query);
        let q = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        match (route, method) {
            (Route::Base, "GET" | "HEAD") => Ok(json_response(200, &json!({}))),
            (Route::CaCert, "GET" | "HEAD") => match &self.ca_pem {
                Some(pem) => Ok(Response::new(200)
                    .header("Content-Type", "application/x-pem-file")
                    .header("Content-Disposition", "attachment; filename=\"ca.crt\"")
                    .body(Body::Bytes(pem.clone()))),
                None => Err(Error::client(
                    Code::Unsupported,
                    "this registry does not use its own CA",
                )
                .with_status(404)),
            },
            (Route::V1Ping, "GET" | "HEAD") => {
                Ok(json_response(200, &json!({})).header("X-Docker-Registry-Standalone", "true"))
            }
            (Route::V1Search, "GET") => self.search(q("q").unwrap_or(""), q("n")),
            (Route::Catalog, "GET") => {
                let (n, last) = page_params(q("n"), q("last"))?;
                let (repos, more) = if n == 0 {
                    (Vec::new(), false)
                } else {
                    self.registry.catalog(last, n)?
                };
                #[derive(serde::Serialize)]
                struct Catalog<'a> {
                    repositories: &'a [String],
                }
                let mut resp = json_body_response(&Catalog {
                    repositories: &repos,
                })?;
                if more {
                    if let Some(l) = repos.last() {
                        resp = resp.header(
                            "Link",
                            format!(
                                "</v2/_catalog?n={n}&last={}>; rel=\"next\"",
                                percent_encode(l)
                            ),
                        );
                    }
                }
                Ok(resp)
            }
            (Route::Tags { name }, "GET") => {
                let (n, last) = page_params(q("n"), q("last"))?;
                let page = self.registry.tags(&name, last, n)?;
                let mut body = Vec::with_capacity(page.json.len() + name.as_str().len() + 24);
                body.extend_from_slice(b"{\"name\":");
                let _ = serde_json::to_writer(&mut body, name.as_str());
                body.extend_from_slice(b",\"tags\":");
                body.extend_from_slice(&page.json);
                body.push(b'}');
                let mut resp = Response::new(200)
                    .header("Content-Type", JSON)
                    .body(Body::Bytes(body));
                if let (true, Some(l)) = (page.more, &page.last) {
                    resp = resp.header(
                        "Link",
                        format!(
                            "</v2/{name}/tags/list?n={n}&last={}>; rel=\"next\"",
                            percent_encode(l)
                        ),
                    );
                }
                Ok(resp)
            }
            (Route::Manifest { name, reference }, "GET") => {
                let reference = lookup_reference(&reference)?;
                let (digest, media_type, bytes) = self.registry.get_manifest(&name, &reference)?;
                Ok(manifest_headers(Response::new(200), &digest, &media_type)
                    .body(Body::Bytes(bytes)))
            }
            (Route::Manifest { name, reference }, "HEAD") => {
                let reference = lookup_reference(&reference)?;
                let (digest, media_type, size) = self.registry.head_manifest(&name, &reference)?;
                Ok(manifest_headers(Response::new(200), &digest, &media_type)
                    .body(Body::Length(size)))
            }
            (Route::Manifest { name, reference }, "PUT") => {
                self.put_manifest(req, &name, &reference, &query)
            }
            (Route::Manifest { name, reference }, "DELETE") => {
                let reference = lookup_reference(&reference)?;
                self.registry.delete_manifest(&name, &reference)?;
                Ok(Response::new(202))
            }
            (Route::Blob { name, digest }, "GET") => {
                let digest = Digest::parse(&digest)?;
                self.get_blob(req, &name, &digest)
            }
            (Route::Blob { name, digest }, "HEAD") => {
                let digest = Digest::parse(&digest)?;
                let size = self.registry.blob_size(&name, &digest)?;
                Ok(blob_headers(Response::new(200), &digest).body(Body::Length(size)))
            }
            (Route::Blob { name, digest }, "DELETE") => {
                let digest = Digest::parse(&digest)?;
                self.registry.delete_blob(&name, &digest)?;
                Ok(Response::new(202))
            }
            (Route::UploadStart { name }, "POST") => self.post_upload(
                req,
                &name,
                q("mount"),
                q("from"),
                q("digest"),
                q("digest-algorithm"),
            ),
            (Route::Upload { name, id }, method) => {
                let id = UploadId::parse(&id)?;
                match method {
                    "GET" | "HEAD" => {
                        let status = self.registry.upload_status(&name, &id)?;
                        Ok(upload_headers(Response::new(204), &status))
                    }
                    "PATCH" => self.patch_upload(req, &name, &id),
                    "PUT" => self.put_upload(req, &name, &id, q("digest")),
                    "DELETE" => {
                        self.registry.cancel_upload(&name, &id)?;
                        Ok(Response::new(204))
                    }
                    _ => Err(method_not_allowed()),
                }
            }
            (Route::Referrers { name, digest }, "GET") => {
                let digest = Digest::parse(&digest)?;
                let artifact_type = q("artifactType").filter(|t| !t.is_empty());
                let index = self.registry.referrers(&name, &digest, artifact_type)?;
                let mut resp = json_response(200, &index)
                    .header_replace("Content-Type", crate::oci::media::OCI_INDEX);
                if artifact_type.is_some() {
                    resp = resp.header("OCI-Filters-Applied", "artifactType");
                }
                Ok(resp)
            }
            (Route::AdminGc, m) => self.admin(m, true, &query),
            (Route::AdminDu, m) => self.admin(m, false, &query),
            _ => Err(method_not_allowed()),
        }
    }

    /// `POST /v2/_soute/gc` and `GET /v2/_soute/du`. Every authenticated user
    /// is an administrator for now (soute has no roles yet); with no users the
    /// registry is open and so are these, like deletes.
    fn admin(&self, method: &str, gc: bool, query: &[(String, String)]) -> Result<Response> {
        let q = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let mut policy = GcPolicy::default();
        let num = |key: &str| -> Result<Option<i64>> {
            q(key)
                .map(|v| {
                    v.parse::<u32>().map(i64::from).map_err(|_| {
                        Error::client(Code::Unknown, format!("{key} must be a number of seconds"))
                            .with_status(400)
                    })
                })
                .transpose()
        };
        let flag = |key: &str| -> Result<bool> {
            match q(key) {
                None | Some("false") | Some("0") => Ok(false),
                Some("") | Some("true") | Some("1") => Ok(true),
                Some(v) => Err(Error::client(
                    Code::Unknown,
                    format!("{key} must be true or false, not {v:?}"),
                )
                .with_status(400)),
            }
        };
        if let Some(g) = num("grace")? {
            policy.grace_secs = g;
        }
        if let Some(g) = num("link_grace")? {
            policy.link_grace_secs = g;
        }
        if let Some(t) = num("upload_ttl")? {
            policy.upload_ttl_secs = t;
        }
        policy.delete_untagged = flag("delete_untagged")?;
        match (gc, method) {
            (true, "POST") => {
                policy.dry_run = flag("dry_run")?;
                let mut report = self.registry.gc(&policy)?;
                if !policy.dry_run {
                    report.kept.clear();
                }
                Ok(json_response(200, &json!(report)))
            }
            (false, "GET") => {
                let repo = q("repo").map(RepoName::parse).transpose()?;
                let tag = q("tag").map(Tag::parse).transpose()?;
                if tag.is_some() && repo.is_none() {
                    return Err(Error::client(Code::Unknown, "tag needs repo").with_status(400));
                }
                let usage = self.registry.du(repo.as_ref(), tag.as_ref(), &policy)?;
                Ok(json_response(200, &json!(usage)))
            }
            _ => Err(method_not_allowed()),
        }
    }

    fn put_manifest(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        reference: &str,
        query: &[(String, String)],
    ) -> Result<Response> {
        let reference = Reference::parse(reference)?;
        let too_large = || {
            Error::client(
                Code::ManifestInvalid,
                format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"),
            )
            .with_status(413)
        };
        if req
            .body
            .declared_len()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(too_large());
        }
        let tag_params: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "tag")
            .map(|(_, v)| v.as_str())
            .collect();
        if tag_params.len() > MAX_TAG_PARAMS {
            return Err(Error::client(Code::TagInvalid, "too many tag parameters").with_status(414));
        }
        let extra_tags = tag_params
            .iter()
            .map(|t| Tag::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let mut body = Vec::new();
        req.body
            .take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                Error::client(
                    Code::ManifestInvalid,
                    format!("reading the manifest failed: {e}"),
                )
            })?;
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(too_large());
        }
        let content_type = req.header("content-type").map(str::to_string);
        let outcome = self.registry.put_manifest(
            name,
            &reference,
            content_type.as_deref(),
            &body,
            &extra_tags,
        )?;
        let mut resp = Response::new(201)
            .header(
                "Location",
                format!("/v2/{name}/manifests/{}", outcome.digest),
            )
            .header("Docker-Content-Digest", outcome.digest.to_string());
        if let Some(subject) = &outcome.subject {
            resp = resp.header("OCI-Subject", subject.to_string());
        }
        if !extra_tags.is_empty() {
            for t in &outcome.tags {
                resp = resp.header("OCI-Tag", t.as_str());
            }
        }
        Ok(resp)
    }

    fn get_blob(&self, req: &Request<'_>, name: &RepoName, digest: &Digest) -> Result<Response> {
        let (file, size) = self.registry.open_blob(name, digest)?;
        let resp = blob_headers(Response::new(200), digest);
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
                    len: end - start + 1,
                });
                resp.status = 206;
                Ok(resp.header("Content-Range", format!("bytes {start}-{end}/{size}")))
            }
        }
    }

    fn post_upload(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        mount: Option<&str>,
        from: Option<&str>,
        digest: Option<&str>,
        algorithm: Option<&str>,
    ) -> Result<Response> {
        if let Some(mount) = mount {
            let digest = Digest::parse(mount)?;
            let from = match from.filter(|f| !f.is_empty()) {
                Some(f) => Some(RepoName::parse(f)?),
                None => None,
            };
            if self.registry.mount_blob(name, &digest, from.as_ref())? {
                return Ok(Response::new(201)
                    .header("Location", format!("/v2/{name}/blobs/{digest}"))
                    .header("Docker-Content-Digest", digest.to_string()));
            }
        }
        let alg = match algorithm {
            Some(a) => Algorithm::parse(a)?,
            None => match digest {
                Some(d) => Digest::parse(d)?.algorithm(),
                None => Algorithm::Sha256,
            },
        };
        if let (Some(d), None) = (digest, mount) {
            // end-4b: single-POST monolithic upload.
            let digest = Digest::parse(d)?;
            let status = self.registry.start_upload(name, alg)?;
            let expected = req.body.declared_len();
            let result = self.registry.finish_upload(
                name,
                &status.id,
                &digest,
                Some((None, expected, &mut *req.body)),
            );
            return match result {
                Ok(digest) => Ok(Response::new(201)
                    .header("Location", format!("/v2/{name}/blobs/{digest}"))
                    .header("Docker-Content-Digest", digest.to_string())),
                Err(e) => {
                    let _ = self.registry.cancel_upload(name, &status.id);
                    Err(e)
                }
            };
        }
        let status = self.registry.start_upload(name, alg)?;
        Ok(upload_headers(Response::new(202), &status))
    }

    fn patch_upload(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        id: &UploadId,
    ) -> Result<Response> {
        let (start, expected) = chunk_range(req)?;
        match self
            .registry
            .append_upload(name, id, start, expected, &mut *req.body)
        {
            Ok(status) => Ok(upload_headers(Response::new(202), &status)),
            Err(e) if e.code() == Code::RangeInvalid => {
                let status = self.registry.upload_status(name, id)?;
                Ok(upload_headers(error_response(&e, req.id), &status))
            }
            Err(e) => Err(e),
        }
    }

    fn put_upload(
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
        let (start, expected) = chunk_range(req)?;
        let has_body = req.body.is_chunked() || req.body.declared_len().is_some_and(|n| n > 0);
        let chunk = if has_body {
            Some((start, expected, &mut *req.body as &mut dyn Read))
        } else {
            None
        };
        match self.registry.finish_upload(name, id, &digest, chunk) {
            Ok(digest) => Ok(Response::new(201)
                .header("Location", format!("/v2/{name}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest.to_string())),
            Err(e) if e.code() == Code::RangeInvalid => {
                let status = self.registry.upload_status(name, id)?;
                Ok(upload_headers(error_response(&e, req.id), &status))
            }
            Err(e) => Err(e),
        }
    }

    /// `docker search`: repository names containing the term.
    fn search(&self, term: &str, n: Option<&str>) -> Result<Response> {
        let limit = match n {
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

impl Handler for Api {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        let resp = match self.route_and_dispatch(req) {
            Ok(resp) => resp,
            Err(e) => error_response(&e, req.id),
        };
        resp.header(API_VERSION.0, API_VERSION.1)
    }
}

/// The only place an `Error` becomes an HTTP response.
pub fn error_response(err: &Error, request_id: u64) -> Response {
    let (code, message, detail) = match err {
        Error::Client {
            code,
            message,
            detail,
            ..
        } => (code.as_str(), message.clone(), detail.clone()),
        Error::NoSpace(_) => {
            log::error!("request {request_id}: {err}");
            (
                "UNKNOWN",
                "insufficient storage: the registry's disk is full; nothing was stored".to_string(),
                None,
            )
        }
        Error::Internal { .. } => {
            let mut chain = err.to_string();
            let mut src = std::error::Error::source(err);
            while let Some(s) = src {
                chain.push_str(&format!(": {s}"));
                src = s.source();
            }
            log::error!("request {request_id}: {chain}");
            (
                "UNKNOWN",
                "internal server error".to_string(),
                Some(json!({ "request_id": request_id })),
            )
        }
    };
    let mut entry = json!({ "code": code, "message": message });
    entry["detail"] = detail.unwrap_or(json!({}));
    let mut resp = json_response(err.status(), &json!({ "errors": [entry] }));
    if err.code() == Code::Unsupported && err.status() == 405 {
        resp = resp.header("Allow", "GET, HEAD, PUT, PATCH, POST, DELETE");
    }
    resp
}

/// A reference to read or delete: an invalid tag names nothing, so it is 404
/// MANIFEST_UNKNOWN (as distribution answers); an invalid digest stays 400.
fn lookup_reference(raw: &str) -> Result<Reference> {
    Reference::parse(raw).map_err(|e| match e.code() {
        Code::TagInvalid => Error::client(Code::ManifestUnknown, e.to_string()),
        _ => e,
    })
}

fn method_not_allowed() -> Error {
    Error::client(Code::Unsupported, "method not allowed on this endpoint")
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    Response::new(status)
        .header("Content-Type", JSON)
        .body(Body::Bytes(value.to_string().into_bytes()))
}

/// A 200 JSON response serialized straight from `value`: no `Value` tree,
/// one output buffer sized for it (tag and repository lists can be long).
fn json_body_response<T: serde::Serialize>(value: &T) -> Result<Response> {
    let mut out = Vec::with_capacity(4096);
    serde_json::to_writer(&mut out, value)
        .map_err(|e| Error::internal(format!("serializing a response: {e}")))?;
    Ok(Response::new(200)
        .header("Content-Type", JSON)
        .body(Body::Bytes(out)))
}

trait HeaderReplace {
    fn header_replace(self, name: &str, value: &str) -> Self;
}

impl HeaderReplace for Response {
    fn header_replace(mut self, name: &str, value: &str) -> Response {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.header(name, value)
    }
}

fn manifest_headers(resp: Response, digest: &Digest, media_type: &str) -> Response {
    resp.header("Content-Type", media_type)
        .header("Docker-Content-Digest", digest.to_string())
        .header("ETag", format!("\"{digest}\""))
}

fn blob_headers(resp: Response, digest: &Digest) -> Response {
    resp.header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest.to_string())
        .header("Accept-Ranges", "bytes")
        .header("ETag", format!("\"{digest}\""))
        .header("Cache-Control", "max-age=31536000")
}

fn upload_headers(resp: Response, status: &UploadStatus) -> Response {
    let range = if status.length == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", status.length - 1)
    };
    resp.header(
        "Location",
        format!("/v2/{}/blobs/uploads/{}", status.repo, status.id),
    )
    .header("Docker-Upload-UUID", status.id.as_str())
    .header("Range", range)
}

/// `n` and `last` of a paged list. `n` absent means "everything" (bounded by MAX_PAGE).
fn page_params<'q>(n: Option<&str>, last: Option<&'q str>) -> Result<(usize, &'q str)> {
    let n = match n {
        None | Some("") => MAX_PAGE,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| Error::client(Code::PaginationNumberInvalid, format!("invalid n {s:?}")))?
            .min(MAX_PAGE),
    };
    Ok((n, last.unwrap_or("")))
}

/// The `Content-Range` of a PATCH/PUT chunk: (first byte, byte count). Accepts
/// the spec's `<start>-<end>` and the RFC forms `bytes <start>-<end>/<total|*>`.
fn chunk_range(req: &Request<'_>) -> Result<(Option<u64>, Option<u64>)> {
    let declared = req.body.declared_len().filter(|_| !req.body.is_chunked());
    let Some(raw) = req.header("content-range") else {
        return Ok((None, declared));
    };
    let invalid = || Error::client(Code::RangeInvalid, format!("invalid Content-Range {raw:?}"));
    let spec = raw
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let spec = spec.split('/').next().unwrap_or("");
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let start: u64 = a.trim().parse().map_err(|_| invalid())?;
    let end: u64 = b.trim().parse().map_err(|_| invalid())?;
    if end < start {
        return Err(invalid());
    }
    let count = end - start + 1;
    if declared.is_some_and(|d| d != count) {
        return Err(Error::client(
            Code::RangeInvalid,
            format!("Content-Range {raw:?} does not match Content-Length"),
        ));
    }
    Ok((Some(start), Some(count)))
}

#[derive(Debug, PartialEq)]
enum RangeRequest {
    /// No usable single range: serve the whole blob.
    Ignore,
    Unsatisfiable,
    /// Inclusive byte positions.
    Bytes(u64, u64),
}

fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignore;
    };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeRequest::Ignore,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => RangeRequest::Unsatisfiable,
            Ok(_) if size == 0 => RangeRequest::Unsatisfiable,
            Ok(n) => RangeRequest::Bytes(size.saturating_sub(n), size - 1),
            Err(_) => RangeRequest::Ignore,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return RangeRequest::Ignore;
            };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                    // last < first: the conformance suite expects 416 here.
                    Ok(_) => return RangeRequest::Unsatisfiable,
                    Err(_) => return RangeRequest::Ignore,
                }
            };
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Bytes(start, end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let table = [
            ("bytes=0-9", 100, Bytes(0, 9)),
            ("bytes=10-", 100, Bytes(10, 99)),
            ("bytes=-10", 100, Bytes(90, 99)),
            ("bytes=90-200", 100, Bytes(90, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-1,3-4", 100, Ignore),
            ("items=0-1", 100, Ignore),
            ("bytes=5-1", 100, Unsatisfiable),
            ("bytes=5-x", 100, Ignore),
            ("bytes=0-0", 0, Unsatisfiable),
        ];
        for (h, size, want) in table {
            assert_eq!(parse_range(h, size), want, "{h}");
        }
    }
}
