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
