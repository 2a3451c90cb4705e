//! http: the transport. Owns sockets, TLS sessions, HTTP/1.1 framing, timeouts,
//! limits and the worker pool; hands each parsed request to a [`Handler`].
//!
//! It must never parse OCI paths, know OCI error codes or touch the data folder:
//! everything above the wire format belongs to `api`.

mod admission;
pub(crate) mod body;
pub(crate) mod conn;
mod eviction;
mod growing;
mod io;
mod limits;
mod readiness;
mod response;
mod sending;
mod server;
mod shedding;
mod step;
mod sys;

pub use limits::{Limits, DEFAULT_WORKERS};
pub use server::{bind, Server, ServerConfig};

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;

/// One parsed request. Header names are lower-cased; values are kept as sent
/// (several lines with the same name stay separate entries, in order).
pub struct Request<'a> {
    pub method: String,
    /// The path part of the request target, still percent-encoded, without the query.
    pub path: String,
    /// The query string without the leading `?` (empty when absent).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub remote: SocketAddr,
    /// True when the request arrived over TLS.
    pub secure: bool,
    /// A per-process request id, for logs and 500 answers.
    pub id: u64,
    /// The request body, already de-framed (Content-Length or chunked).
    /// Reading it sends `100 Continue` first when the client asked for it.
    pub body: &'a mut dyn BodyRead,
}

/// The body reader the server hands to handlers.
pub trait BodyRead: Read {
    /// The declared Content-Length, or None for a chunked body.
    fn declared_len(&self) -> Option<u64>;
    /// True when the body uses `Transfer-Encoding: chunked`.
    fn is_chunked(&self) -> bool;
}

impl Request<'_> {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in the order sent.
    pub fn header_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response body.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` starting at `offset`, copied through one buffer.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// No body, but `Content-Length: n` (answers to HEAD).
    Length(u64),
    /// `len` bytes from `offset` of a body still arriving (a blob the
    /// pull-through cache is fetching): read as they come, and the
    /// connection is cut if the source fails (see [`Growing`]).
    Growing {
        source: Box<dyn Growing>,
        offset: u64,
        len: u64,
    },
}

/// A body whose bytes are still being written by someone else. The sender
/// copies what `read_at` gives; once `complete` names a file with every
/// byte (verified), the rest is sent as a file body.
pub trait Growing: Send {
    /// Reads bytes at `pos`, waiting (bounded) until some are there. An
    /// error (the source failed, or stalled too long) cuts the connection,
    /// so the client never sees a complete body. `Ok(0)`: past the end.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<usize>;
    /// The whole body as a file of its own (its own file offset), once all
    /// of it is there and verified.
    fn complete(&self) -> Option<File>;
}

impl Body {
    /// The number of bytes announced in Content-Length.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Length(n) => *n,
            Body::Growing { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Response {
    pub status: u16,
    /// Extra headers. The server adds Content-Length, Date and Connection itself.
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
    /// What the handler calls this request in the request counters
    /// (`metrics::Endpoint`); opaque to the transport.
    pub label: u8,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
            label: 0,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }
}

/// What the server calls for every request, and for the answers it makes
/// itself: the transport decides when to answer, the handler how it reads.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. A panic here becomes a 500 for that request only.
    fn handle(&self, req: &mut Request<'_>) -> Response;

    /// The answer to a request the server refuses before it reaches
    /// [`Handler::handle`]: 400 (malformed head or framing), 417, 431 (head
    /// too large) or 503 (over a connection cap). `reason` is plain English.
    /// The server adds `Connection: close` (and `Retry-After` to a 503).
    fn rejection(&self, status: u16, reason: &str) -> Response {
        plain_text(status, format!("{reason}\n"))
    }

    /// The answer when [`Handler::handle`] panicked on request `request_id`.
    fn internal_error(&self, request_id: u64) -> Response {
        plain_text(500, format!("internal error (request id {request_id})\n"))
    }
}

fn plain_text(status: u16, text: String) -> Response {
    Response::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::Bytes(text.into_bytes()))
}
