//! The wire helpers of the S3 client: an exact-length request body, response
//! headers read, and store answers turned into an [`S3Error`] with a kind.
//!
//! It must NEVER read an unbounded answer into memory or put a secret (or a
//! signed URL, which is a credential for its lifetime) in a message.

use super::xml;
use super::{S3Error, S3ErrorKind};
use std::io::{self, Read};
use ureq::http::Response;
use ureq::Body;

/// Largest XML answer read (listings, errors).
const MAX_XML_BYTES: u64 = 16 << 20;

/// Exactly `len` bytes of a body: never more, and an early end is an
/// error (ureq would otherwise wait for bytes that never come).
pub(super) struct Exact<'a> {
    inner: &'a mut dyn Read,
    left: u64,
}

impl<'a> Exact<'a> {
    pub(super) fn new(inner: &'a mut dyn Read, len: u64) -> Exact<'a> {
        Exact { inner, left: len }
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended {} bytes before its stated length", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

pub(super) fn content_length(resp: &Response<Body>) -> Option<u64> {
    resp.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

pub(super) fn etag(resp: &Response<Body>) -> String {
    resp.headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

pub(super) fn transport(op: &str, key: &str, e: &ureq::Error) -> S3Error {
    S3Error::new(
        S3ErrorKind::Unreachable,
        format!("{op} {key}: S3 endpoint unreachable: {e}"),
    )
}

pub(super) fn protocol(op: &str, key: &str, e: &dyn std::fmt::Display) -> S3Error {
    S3Error::new(
        S3ErrorKind::Protocol,
        format!("{op} {key}: unexpected answer: {e}"),
    )
}

pub(super) fn read_xml(resp: Response<Body>) -> Result<String, S3Error> {
    resp.into_body()
        .with_config()
        .limit(MAX_XML_BYTES)
        .read_to_string()
        .map_err(|e| {
            S3Error::new(
                S3ErrorKind::Unreachable,
                format!("reading an S3 answer: {e}"),
            )
        })
}

pub(super) fn expect_ok(
    resp: Response<Body>,
    op: &str,
    key: &str,
) -> Result<Response<Body>, S3Error> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(failure(resp, op, key))
    }
}

pub(super) fn failure(resp: Response<Body>, op: &str, key: &str) -> S3Error {
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    error_from_xml(status, &body, op, key)
}

pub(super) fn error_from_xml(status: u16, body: &str, op: &str, key: &str) -> S3Error {
    let code = xml::text(body, "Code").unwrap_or_default();
    let message = xml::text(body, "Message").unwrap_or_default();
    let kind = match (status, code.as_str()) {
        (_, "NoSuchBucket") => S3ErrorKind::NoSuchBucket,
        (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "InvalidToken"
            | "ExpiredToken",
        )
        | (401 | 403, _) => S3ErrorKind::Credentials,
        (_, "NoSuchKey" | "NoSuchUpload") | (404, _) => S3ErrorKind::NotFound,
        (500..=599, _) => S3ErrorKind::Unavailable,
        _ => S3ErrorKind::Refused,
    };
    let detail = match (code.is_empty(), message.is_empty()) {
        (true, _) => format!("HTTP {status}"),
        (false, true) => format!("HTTP {status} {code}"),
        (false, false) => format!("HTTP {status} {code}: {message}"),
    };
    S3Error::new(kind, format!("{op} {key}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reader_stops_at_the_length_and_refuses_a_short_body() {
        let mut long: &[u8] = b"abcdef";
        let mut got = Vec::new();
        Exact::new(&mut long, 4)
            .read_to_end(&mut got)
            .expect("read");
        assert_eq!(got, b"abcd");
        let mut short: &[u8] = b"ab";
        let e = Exact::new(&mut short, 4)
            .read_to_end(&mut Vec::new())
            .expect_err("short");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn store_errors_are_classified() {
        let kind = |status, body: &str| error_from_xml(status, body, "GET", "k").kind;
        let xml = |code: &str| format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
        assert_eq!(kind(404, &xml("NoSuchBucket")), S3ErrorKind::NoSuchBucket);
        assert_eq!(kind(404, &xml("NoSuchKey")), S3ErrorKind::NotFound);
        assert_eq!(kind(404, ""), S3ErrorKind::NotFound);
        assert_eq!(kind(403, &xml("AccessDenied")), S3ErrorKind::Credentials);
        assert_eq!(kind(403, ""), S3ErrorKind::Credentials);
        assert_eq!(
            kind(400, &xml("InvalidAccessKeyId")),
            S3ErrorKind::Credentials
        );
        assert_eq!(
            kind(503, &xml("ServiceUnavailable")),
            S3ErrorKind::Unavailable
        );
        assert_eq!(kind(400, &xml("InvalidPart")), S3ErrorKind::Refused);
        let e = error_from_xml(500, &xml("InternalError"), "PUT", "blobs/x");
        assert_eq!(e.message, "PUT blobs/x: HTTP 500 InternalError: m");
    }
}
