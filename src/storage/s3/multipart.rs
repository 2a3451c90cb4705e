//! Streamed multipart uploads: a reader of known length cut into parts of
//! [`PART_SIZE`], each part sent straight from the reader (`Read::take`), so
//! an upload holds no part in memory: only ureq's and the socket's buffers.
//! A file ([`upload_file`]) sends [`PARALLEL_PARTS`] parts at once, each
//! read from its own offset (`pread`), on scoped threads; at most
//! [`PARTS_IN_FLIGHT`] parts are sent at once in the whole process.
//!
//! It must NEVER leave a multipart upload behind on failure when it can
//! abort it, nor read more than the stated length.

use super::client::S3Client;
use super::{S3Error, S3ErrorKind};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// 8 MiB: above S3's 5 MiB minimum part, 10 000 parts reach 78 GiB. Parts
/// stream from the reader, so this is not a memory cost.
pub const PART_SIZE: u64 = 8 << 20;
/// S3's limit on parts per upload.
const MAX_PARTS: u64 = 10_000;
/// Parts of one file in flight at once: an object store on a LAN is
/// latency-bound per request (a 1 GiB push to a loopback 3-node Garage: 4
/// parts at once 56-64 MB/s, 8 at once 71-80 MB/s); each costs a thread.
pub const PARALLEL_PARTS: usize = 8;
/// Parts in flight in the whole process, whatever the publishes: each holds
/// ureq's buffers and a connection to the store while it sends.
pub const PARTS_IN_FLIGHT: usize = 16;

/// The process-wide permits of [`PARTS_IN_FLIGHT`].
static PART_PERMITS: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// One part upload's permit, given back on drop.
struct PartPermit;

impl PartPermit {
    fn take() -> PartPermit {
        let (used, freed) = &PART_PERMITS;
        let mut n = used.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= PARTS_IN_FLIGHT {
            n = freed.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        PartPermit
    }
}

impl Drop for PartPermit {
    fn drop(&mut self) {
        let (used, freed) = &PART_PERMITS;
        let mut n = used.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        freed.notify_one();
    }
}

/// The parts `len` bytes need, or why S3 cannot take them.
fn part_count(name: &str, len: u64, part_size: u64) -> Result<u64, S3Error> {
    let parts = len.div_ceil(part_size);
    if parts > MAX_PARTS {
        return Err(S3Error::new(
            S3ErrorKind::Refused,
            format!(
                "{name}: {len} bytes need {parts} parts of {part_size}, more than S3's {MAX_PARTS}"
            ),
        ));
    }
    Ok(parts)
}

/// `len` bytes of a file from `pos`, read with `pread` (no shared cursor).
struct FileRange<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Uploads the first `len` bytes of `file` as `name`: one PUT up to
/// [`PART_SIZE`], else a multipart upload with [`PARALLEL_PARTS`] parts in
/// flight (aborted if any part fails). Returns the number of parts.
pub fn upload_file(client: &S3Client, name: &str, file: &File, len: u64) -> Result<u64, S3Error> {
    upload_file_with(client, name, file, len, PART_SIZE, PARALLEL_PARTS)
}

/// [`upload_file`] with another part size and parallelism.
pub fn upload_file_with(
    client: &S3Client,
    name: &str,
    file: &File,
    len: u64,
    part_size: u64,
    parallel: usize,
) -> Result<u64, S3Error> {
    let range = |pos: u64, this: u64| FileRange {
        file,
        pos,
        end: pos + this,
    };
    if len <= part_size {
        client.put(name, &mut range(0, len), len)?;
        return Ok(0);
    }
    let parts = part_count(name, len, part_size)?;
    let upload_id = client.create_multipart(name)?;
    let next = AtomicU64::new(0);
    let etags = Mutex::new(vec![String::new(); parts as usize]);
    let failed: Mutex<Option<S3Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, parts as usize) {
            s.spawn(|| loop {
                if failed.lock().map_or(true, |f| f.is_some()) {
                    return;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= parts {
                    return;
                }
                let start = n * part_size;
                let this = part_size.min(len - start);
                // n < MAX_PARTS (checked above), so n + 1 fits in u16
                let number = u16::try_from(n + 1).unwrap_or(u16::MAX);
                let permit = PartPermit::take();
                let sent =
                    client.upload_part(name, &upload_id, number, &mut range(start, this), this);
                drop(permit);
                match sent {
                    Ok(tag) => {
                        let mut tags = etags.lock().unwrap_or_else(|p| p.into_inner());
                        tags[n as usize] = tag;
                    }
                    Err(e) => {
                        let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    let result = match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => {
            let tags = etags.into_inner().unwrap_or_else(|p| p.into_inner());
            client.complete_multipart(name, &upload_id, &tags)
        }
    };
    if let Err(e) = result {
        // best effort: GC lists and aborts whatever this leaves behind
        let _ = client.abort_multipart(name, &upload_id);
        return Err(e);
    }
    Ok(parts)
}

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
    let parts = part_count(name, len, part_size)?;
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
