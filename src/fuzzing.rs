//! fuzzing: thin entry points for the fuzz targets in `fuzz/` (see
//! docs/fuzzing.md) to parsers that are private to the crate. Hidden from the
//! docs and not a stable API: it exists only so a fuzz target calls exactly the
//! code the server runs.
//!
//! It must never hold logic of its own (each function forwards to the real
//! parser) nor be used by the server itself.

use crate::api::ranges;
use crate::error::Result;

pub use crate::api::ranges::RangeRequest;

/// `api::ranges::parse_range`: a `Range` header against a blob of `size` bytes.
pub fn range(header: &str, size: u64) -> RangeRequest {
    ranges::parse_range(header, size)
}

/// `api::ranges::chunk_range`: an upload chunk's `Content-Range` with the
/// body's declared length.
pub fn content_range(
    header: Option<&str>,
    declared: Option<u64>,
) -> Result<(Option<u64>, Option<u64>)> {
    ranges::chunk_range(header, declared)
}

/// `http::body::Chunked`: the `chunked` transfer-coding decoder, over any `BufRead`.
pub struct ChunkedDecoder(crate::http::body::Chunked);

impl ChunkedDecoder {
    #[allow(clippy::new_without_default)]
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder(crate::http::body::Chunked::new())
    }

    /// De-chunked bytes into `out`; `Ok(0)` only at the real end of the body.
    pub fn read<R: std::io::BufRead>(
        &mut self,
        src: &mut R,
        out: &mut [u8],
    ) -> std::io::Result<usize> {
        self.0.read(src, out)
    }

    pub fn is_done(&self) -> bool {
        self.0.is_done()
    }
}

/// How a request body is framed (`http::body::Framing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    Length(u64),
    Chunked,
}

/// Why a buffered head is refused (`http::conn::HeadError`; the server answers
/// 431, 431 and 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadRefused {
    TooLarge,
    TooManyHeaders,
    Malformed,
}

/// A whole request head (`http::conn::parse_head`) and what the server makes
/// of it (`http::conn::plan`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedHead {
    pub method: String,
    pub target: String,
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, CRLF CRLF included.
    pub len: usize,
    /// `Err((status, reason))` when the server refuses the request.
    pub plan: std::result::Result<HeadPlan, (u16, &'static str)>,
}

/// `http::conn::Plan`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadPlan {
    pub path: String,
    pub query: String,
    pub framing: BodyFraming,
    pub expect_continue: bool,
    pub close: bool,
    pub keep_alive_10: bool,
}

/// `http::conn::parse_head` then `http::conn::plan` on the bytes a connection
/// buffered: `Ok(None)` while more bytes may complete the head.
pub fn http_head(
    buffered: &[u8],
    max_bytes: usize,
    max_headers: usize,
) -> std::result::Result<Option<ParsedHead>, HeadRefused> {
    use crate::http::body::{Continue, Framing};
    use crate::http::conn::{self, HeadError};
    let parsed = conn::parse_head(buffered, max_bytes, max_headers).map_err(|e| match e {
        HeadError::TooLarge => HeadRefused::TooLarge,
        HeadError::TooManyHeaders => HeadRefused::TooManyHeaders,
        HeadError::Malformed | HeadError::Quiet => HeadRefused::Malformed,
    })?;
    Ok(parsed.map(|(head, len)| ParsedHead {
        plan: conn::plan(&head).map(|p| HeadPlan {
            path: p.path,
            query: p.query,
            framing: match p.framing {
                Framing::Length(n) => BodyFraming::Length(n),
                Framing::Chunked => BodyFraming::Chunked,
            },
            expect_continue: p.cont == Continue::Pending,
            close: p.close,
            keep_alive_10: p.keep_alive_10,
        }),
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        len,
    }))
}
