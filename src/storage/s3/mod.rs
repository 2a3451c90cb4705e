//! storage::s3: blobs on an S3-compatible object store (issue L, first
//! slice). The configuration ([`config`]), a synchronous client for the
//! calls a registry needs ([`client`]), streamed multipart uploads with a
//! bounded part size ([`multipart`]), the start-up check ([`check`]) and the
//! registry's blob backend on top of them ([`blobs`], `--blob-store s3`).
//!
//! See ARCHITECTURE.md, "Object store". It must NEVER run SQL, decide
//! whether a blob may be served, hold a whole object or part in memory, or
//! put a secret in a message.

pub mod blobs;
pub mod check;
pub mod client;
pub mod config;
pub mod multipart;
mod wire;
mod xml;

pub use client::{ByteRange, InProgressUpload, ObjectEntry, ObjectReader, S3Client};
pub use config::{S3Config, S3Flags};
pub use multipart::{upload_stream, PART_SIZE};

use std::fmt;

/// What went wrong, so callers can map it (a 503 for `Unreachable` /
/// `Unavailable`, a start-up message naming the setting to fix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3ErrorKind {
    /// The endpoint URL cannot be used at all.
    Endpoint,
    /// No connection, a timeout, or the connection broke mid-body.
    Unreachable,
    /// The store answered 5xx (e.g. no quorum).
    Unavailable,
    /// 401/403: unknown key, wrong secret, or the key may not do this.
    Credentials,
    NoSuchBucket,
    /// No such object or upload.
    NotFound,
    /// Another 4xx.
    Refused,
    /// An answer that does not parse.
    Protocol,
}

#[derive(Debug, Clone)]
pub struct S3Error {
    pub kind: S3ErrorKind,
    pub message: String,
}

impl S3Error {
    pub fn new(kind: S3ErrorKind, message: String) -> S3Error {
        S3Error { kind, message }
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for S3Error {}
