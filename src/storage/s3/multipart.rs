//! Streamed multipart uploads: a reader of known length cut into parts of
//! [`PART_SIZE`], each part sent straight from the reader (`Read::take`), so
//! an upload holds no part in memory: only ureq's and the socket's buffers.
//!
//! It must NEVER leave a multipart upload behind on failure when it can
//! abort it, nor read more than the stated length.

use super::client::S3Client;
use super::{S3Error, S3ErrorKind};
use std::io::Read;

/// 8 MiB: above S3's 5 MiB minimum part, 10 000 parts reach 78 GiB. Parts
/// stream from the reader, so this is not a memory cost.
pub const PART_SIZE: u64 = 8 << 20;
/// S3's limit on parts per upload.
const MAX_PARTS: u64 = 10_000;

/// Uploads exactly `len` bytes of `body` as `name`: one PUT up to
/// [`PART_SIZE`], otherwise a multipart upload of `PART_SIZE` parts
/// (aborted if any step fails). Returns the number of parts (0 for a PUT).
pub fn upload_stream(
    client: &S3Client,
    name: &str,
    body: &mut dyn Read,
    len: u64,
) -> Result<u64, S3Error> {
    upload_stream_with(client, name, body, len, PART_SIZE)
}

/// [`upload_stream`] with another part size (at least 5 MiB on real S3).
pub fn upload_stream_with(
    client: &S3Client,
    name: &str,
    body: &mut dyn Read,
    len: u64,
    part_size: u64,
) -> Result<u64, S3Error> {
    if len <= part_size {
        client.put(name, &mut body.take(len), len)?;
        return Ok(0);
    }
    let parts = len.div_ceil(part_size);
    if parts > MAX_PARTS {
        return Err(S3Error::new(
            S3ErrorKind::Refused,
            format!(
                "{name}: {len} bytes need {parts} parts of {part_size}, more than S3's {MAX_PARTS}"
            ),
        ));
    }
    let upload_id = client.create_multipart(name)?;
    let result = (|| {
        let mut etags = Vec::with_capacity(parts as usize);
        for n in 0..parts {
            let this = part_size.min(len - n * part_size);
            // n < MAX_PARTS (checked above), so n + 1 fits in u16
            let number = u16::try_from(n + 1).unwrap_or(u16::MAX);
            etags.push(client.upload_part(name, &upload_id, number, &mut body.take(this), this)?);
        }
        client.complete_multipart(name, &upload_id, &etags)
    })();
    if let Err(e) = result {
        // best effort: GC lists and aborts whatever this leaves behind
        let _ = client.abort_multipart(name, &upload_id);
        return Err(e);
    }
    Ok(parts)
}
