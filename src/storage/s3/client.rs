//! The synchronous S3 client (issue L): one object operation per call over a
//! shared ureq agent (the rustls stack of the pull-through cache), every
//! request a SigV4 presigned URL from rusty-s3 (path-style, payload
//! `UNSIGNED-PAYLOAD`, so bodies stream without being hashed first).
//!
//! Object names given to it are relative to the configured prefix; it adds
//! the prefix and strips it from listings.
//!
//! It must NEVER buffer an object or a part in memory (bodies stream from a
//! reader and into a writer), wait without a timeout, or put a secret in an
//! error message.

use super::config::S3Config;
use super::wire::{
    content_length, error_from_xml, etag, expect_ok, failure, protocol, read_xml, transport, Exact,
};
use super::xml;
use super::{S3Error, S3ErrorKind};
use rusty_s3::actions::{
    CompleteMultipartUpload, CompleteMultipartUploadResponse, CreateMultipartUpload, ListObjectsV2,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::io::{self, Read, Write};
use std::time::Duration;
use ureq::SendBody;

/// Connecting to the endpoint: a dead endpoint fails within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// From the end of the request to the response head (Garage answers a
/// complete-multipart after writing to a quorum).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// No byte sent or received for this long ends a transfer.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the URL of one request stays valid.
const SIGN_FOR: Duration = Duration::from_secs(15 * 60);
/// Bound on the pages of one listing (1000 keys a page).
const MAX_LIST_PAGES: usize = 100_000;

/// An object found by [`S3Client::list`]: name relative to the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub name: String,
    pub size: u64,
    /// `LastModified` as the store reports it (RFC 3339), "" when absent.
    pub modified: String,
}

/// A multipart upload started and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProgressUpload {
    pub name: String,
    pub upload_id: String,
    /// As the store reports it (RFC 3339).
    pub initiated: String,
}

/// An inclusive byte range, as in a `Range: bytes=start-end` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// A GET being streamed: the bytes of the object (or range) and its length.
pub struct ObjectReader {
    pub len: u64,
    reader: Box<dyn Read + Send>,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

pub struct S3Client {
    config: S3Config,
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
}

impl S3Client {
    pub fn new(config: S3Config) -> Result<S3Client, S3Error> {
        let endpoint = config.endpoint.parse().map_err(|e| {
            S3Error::new(
                S3ErrorKind::Endpoint,
                format!("endpoint {}: {e}", config.endpoint),
            )
        })?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|e| {
            S3Error::new(
                S3ErrorKind::Endpoint,
                format!("endpoint {}: {e}", config.endpoint),
            )
        })?;
        let credentials = Credentials::new(
            config.credentials.access_key_id.clone(),
            config.credentials.secret_access_key.clone(),
        );
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .timeout_per_read(Some(IDLE_TIMEOUT))
            .timeout_per_write(Some(IDLE_TIMEOUT))
            .user_agent(concat!("soute/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(16)
            .build()
            .new_agent();
        Ok(S3Client {
            config,
            bucket,
            credentials,
            agent,
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    fn creds(&self) -> Option<&Credentials> {
        Some(&self.credentials)
    }

    /// PUT `name` with exactly `len` bytes read from `body`; returns the ETag.
    pub fn put(&self, name: &str, body: &mut dyn Read, len: u64) -> Result<String, S3Error> {
        let key = self.config.key(name);
        let url = self.bucket.put_object(self.creds(), &key).sign(SIGN_FOR);
        let resp = self
            .agent
            .put(url.as_str())
            .header("content-length", len.to_string())
            .send(SendBody::from_reader(&mut Exact::new(body, len)))
            .map_err(|e| transport("PUT", &key, &e))?;
        let resp = expect_ok(resp, "PUT", &key)?;
        Ok(etag(&resp))
    }

    /// Starts a multipart upload of `name`; returns its upload id.
    pub fn create_multipart(&self, name: &str) -> Result<String, S3Error> {
        let key = self.config.key(name);
        let url = CreateMultipartUpload::new(&self.bucket, self.creds(), &key).sign(SIGN_FOR);
        let resp = self
            .agent
            .post(url.as_str())
            .send_empty()
            .map_err(|e| transport("CreateMultipartUpload", &key, &e))?;
        let body = read_xml(expect_ok(resp, "CreateMultipartUpload", &key)?)?;
        let parsed = CreateMultipartUpload::parse_response(&body)
            .map_err(|e| protocol("CreateMultipartUpload", &key, &e))?;
        Ok(parsed.upload_id().to_string())
    }

    /// Uploads part `number` (1..=10000) of `len` bytes streamed from `body`;
    /// returns its ETag, needed by [`S3Client::complete_multipart`].
    pub fn upload_part(
        &self,
        name: &str,
        upload_id: &str,
        number: u16,
        body: &mut dyn Read,
        len: u64,
    ) -> Result<String, S3Error> {
        let key = self.config.key(name);
        let url = self
            .bucket
            .upload_part(self.creds(), &key, number, upload_id)
            .sign(SIGN_FOR);
        let resp = self
            .agent
            .put(url.as_str())
            .header("content-length", len.to_string())
            .send(SendBody::from_reader(&mut Exact::new(body, len)))
            .map_err(|e| transport("UploadPart", &key, &e))?;
        let resp = expect_ok(resp, "UploadPart", &key)?;
        Ok(etag(&resp))
    }

    /// Completes an upload from its parts' ETags in part order.
    pub fn complete_multipart(
        &self,
        name: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), S3Error> {
        let key = self.config.key(name);
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            self.creds(),
            &key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGN_FOR);
        let resp = self
            .agent
            .post(url.as_str())
            .send(action.body())
            .map_err(|e| transport("CompleteMultipartUpload", &key, &e))?;
        let body = read_xml(expect_ok(resp, "CompleteMultipartUpload", &key)?)?;
        // a 200 may still carry an <Error>
        CompleteMultipartUploadResponse::parse(&body)
            .map(|_| ())
            .map_err(|_| error_from_xml(200, &body, "CompleteMultipartUpload", &key))
    }

    pub fn abort_multipart(&self, name: &str, upload_id: &str) -> Result<(), S3Error> {
        let key = self.config.key(name);
        let url = self
            .bucket
            .abort_multipart_upload(self.creds(), &key, upload_id)
            .sign(SIGN_FOR);
        let resp = self
            .agent
            .delete(url.as_str())
            .call()
            .map_err(|e| transport("AbortMultipartUpload", &key, &e))?;
        expect_ok(resp, "AbortMultipartUpload", &key).map(|_| ())
    }

    /// Multipart uploads in progress whose name starts with `prefix`
    /// (all pages): what GC aborts when no upload session owns them.
    pub fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<InProgressUpload>, S3Error> {
        let key_prefix = self.config.key(prefix);
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        for _ in 0..MAX_LIST_PAGES {
            // ListMultipartUploads is a GET on the bucket with `?uploads`:
            // rusty-s3 signs it as a GetObject of the empty key plus the query.
            let mut action = self.bucket.get_object(self.creds(), "");
            let q = action.query_mut();
            q.insert("uploads", "");
            q.insert("prefix", key_prefix.clone());
            if !key_marker.is_empty() {
                q.insert("key-marker", key_marker.clone());
                q.insert("upload-id-marker", id_marker.clone());
            }
            let url = action.sign(SIGN_FOR);
            let resp = self
                .agent
                .get(url.as_str())
                .call()
                .map_err(|e| transport("ListMultipartUploads", &key_prefix, &e))?;
            let body = read_xml(expect_ok(resp, "ListMultipartUploads", &key_prefix)?)?;
            for upload in xml::texts(&body, "Upload") {
                let (Some(key), Some(upload_id)) =
                    (xml::text(&upload, "Key"), xml::text(&upload, "UploadId"))
                else {
                    return Err(protocol(
                        "ListMultipartUploads",
                        &key_prefix,
                        &"an Upload without Key or UploadId",
                    ));
                };
                out.push(InProgressUpload {
                    name: self.strip_prefix(&key),
                    upload_id,
                    initiated: xml::text(&upload, "Initiated").unwrap_or_default(),
                });
            }
            if xml::text(&body, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            let next_key = xml::text(&body, "NextKeyMarker").unwrap_or_default();
            let next_id = xml::text(&body, "NextUploadIdMarker").unwrap_or_default();
            if next_key.is_empty() || (next_key == key_marker && next_id == id_marker) {
                return Err(protocol(
                    "ListMultipartUploads",
                    &key_prefix,
                    &"truncated without a new marker",
                ));
            }
            (key_marker, id_marker) = (next_key, next_id);
        }
        Err(protocol(
            "ListMultipartUploads",
            &key_prefix,
            &"too many pages",
        ))
    }

    /// Opens `name` (or `range` of it) for streaming. `Ok(None)`: no such object.
    pub fn open(
        &self,
        name: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<ObjectReader>, S3Error> {
        let key = self.config.key(name);
        let url = self.bucket.get_object(self.creds(), &key).sign(SIGN_FOR);
        let mut req = self.agent.get(url.as_str());
        if let Some(r) = range {
            req = req.header("range", format!("bytes={}-{}", r.start, r.end));
        }
        let resp = req.call().map_err(|e| transport("GET", &key, &e))?;
        if resp.status().as_u16() == 404 {
            let err = failure(resp, "GET", &key);
            return if err.kind == S3ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(err)
            };
        }
        let resp = expect_ok(resp, "GET", &key)?;
        let len = content_length(&resp)
            .ok_or_else(|| protocol("GET", &key, &"no Content-Length in the answer"))?;
        let reader = resp.into_body().into_reader().take(len);
        Ok(Some(ObjectReader {
            len,
            reader: Box::new(reader),
        }))
    }

    /// Streams `name` (or `range` of it) into `out`; returns the bytes
    /// written. A short body is an error, never a silent truncation.
    pub fn get_into(
        &self,
        name: &str,
        range: Option<ByteRange>,
        out: &mut dyn Write,
    ) -> Result<u64, S3Error> {
        let key = self.config.key(name);
        let mut reader = self.open(name, range)?.ok_or_else(|| {
            S3Error::new(S3ErrorKind::NotFound, format!("GET {key}: no such object"))
        })?;
        let copied = io::copy(&mut reader, out)
            .map_err(|e| S3Error::new(S3ErrorKind::Unreachable, format!("GET {key}: {e}")))?;
        if copied != reader.len {
            return Err(S3Error::new(
                S3ErrorKind::Unreachable,
                format!(
                    "GET {key}: body ended after {copied} of {} bytes",
                    reader.len
                ),
            ));
        }
        Ok(copied)
    }

    /// The size of `name`, `None` when it does not exist.
    pub fn head(&self, name: &str) -> Result<Option<u64>, S3Error> {
        let key = self.config.key(name);
        let url = self.bucket.head_object(self.creds(), &key).sign(SIGN_FOR);
        let resp = self
            .agent
            .head(url.as_str())
            .call()
            .map_err(|e| transport("HEAD", &key, &e))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = expect_ok(resp, "HEAD", &key)?;
        content_length(&resp)
            .map(Some)
            .ok_or_else(|| protocol("HEAD", &key, &"no Content-Length in the answer"))
    }

    /// Deletes `name`; deleting a missing object succeeds (S3 semantics).
    pub fn delete(&self, name: &str) -> Result<(), S3Error> {
        let key = self.config.key(name);
        let url = self.bucket.delete_object(self.creds(), &key).sign(SIGN_FOR);
        let resp = self
            .agent
            .delete(url.as_str())
            .call()
            .map_err(|e| transport("DELETE", &key, &e))?;
        expect_ok(resp, "DELETE", &key).map(|_| ())
    }

    /// Every object whose name starts with `prefix`, all pages, in key order.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>, S3Error> {
        self.list_paged(prefix, 1000)
    }

    /// [`S3Client::list`] with `page` keys a request (tests use small pages).
    pub fn list_paged(&self, prefix: &str, page: usize) -> Result<Vec<ObjectEntry>, S3Error> {
        let key_prefix = self.config.key(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut action = ListObjectsV2::new(&self.bucket, self.creds());
            action.with_prefix(key_prefix.clone());
            action.with_max_keys(page);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGN_FOR);
            let resp = self
                .agent
                .get(url.as_str())
                .call()
                .map_err(|e| transport("ListObjectsV2", &key_prefix, &e))?;
            let body = read_xml(expect_ok(resp, "ListObjectsV2", &key_prefix)?)?;
            let parsed = ListObjectsV2::parse_response(&body)
                .map_err(|e| protocol("ListObjectsV2", &key_prefix, &e))?;
            for c in parsed.contents {
                out.push(ObjectEntry {
                    name: self.strip_prefix(&c.key),
                    size: c.size.unwrap_or(0),
                    modified: c.last_modified.unwrap_or_default(),
                });
            }
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
        Err(protocol("ListObjectsV2", &key_prefix, &"too many pages"))
    }

    /// A URL anyone can GET `name` with until `valid_for` has passed (for
    /// the later `--s3-redirect`: a 307 to the store). At most 7 days.
    pub fn presigned_get(&self, name: &str, valid_for: Duration) -> String {
        let key = self.config.key(name);
        let valid_for = valid_for.clamp(Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600));
        self.bucket
            .get_object(self.creds(), &key)
            .sign(valid_for)
            .to_string()
    }

    fn strip_prefix(&self, key: &str) -> String {
        if self.config.prefix.is_empty() {
            return key.to_string();
        }
        key.strip_prefix(&self.config.prefix)
            .and_then(|k| k.strip_prefix('/'))
            .unwrap_or(key)
            .to_string()
    }

    /// HEAD on the bucket: 2xx, or the error saying what is wrong.
    pub(super) fn head_bucket(&self) -> Result<(), S3Error> {
        let url = self.bucket.head_bucket(self.creds()).sign(SIGN_FOR);
        let resp = self
            .agent
            .head(url.as_str())
            .call()
            .map_err(|e| transport("HEAD bucket", &self.config.bucket, &e))?;
        expect_ok(resp, "HEAD bucket", &self.config.bucket).map(|_| ())
    }
}
