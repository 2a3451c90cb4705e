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
