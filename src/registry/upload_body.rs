//! Streaming one request body into an upload file: the running hash (on a
//! helper thread for large bodies), the periodic fsync, and the bounds an
//! upload must stay within: the largest blob (`--max-blob-size`) and the
//! disk reserve (`--disk-reserve`), checked before the body is read and
//! while it streams.
//!
//! Bytes an upload announced and has not written yet are claimed for the
//! time it streams, so concurrent uploads cannot each pass the reserve check
//! against the same free space.
//!
//! It must never commit a length or touch the database: the caller
//! (`uploads::append_chunk`) acknowledges the bytes or rolls the file back.

use super::Registry;
use crate::error::{Code, Error, Result};
use crate::oci::Hasher;
use crate::storage::backend::BlobBackend as _;
use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::mpsc;

/// Bytes read and written per step while streaming an upload.
const CHUNK: usize = 256 * 1024;
/// fsync the upload file at least this often while a large body streams in,
/// so the final fsync is short.
const SYNC_EVERY: u64 = 64 * 1024 * 1024;
/// Measure free space this often while a body streams: a statvfs costs about
/// a microsecond, and an upload then digs at most this far into the reserve
/// before it stops (plus what other uploads wrote meanwhile).
pub(super) const SPACE_CHECK_EVERY: u64 = 8 * 1024 * 1024;

/// What one chunk may add to a session.
pub(super) struct Bounds<'a> {
    /// The longest the session may become (the largest blob).
    pub max_length: u64,
    /// Refuses when taking this many more bytes would leave less than the
    /// disk reserve free (0: only whether the reserve is already reached).
    pub check_space: &'a dyn Fn(u64) -> Result<()>,
    /// The longest the session may become under the repository's quotas
    /// (`quota::QuotaCap`), enforced like `max_length` while a body of
    /// unknown length streams; `None` without a quota.
    pub quota: Option<&'a super::quota::QuotaCap>,
}

impl Bounds<'_> {
    /// Before any byte is read: a chunk announced to end past the largest
    /// blob is 413, one that would take free space under the reserve 507.
    pub fn admit(&self, before: u64, expected: Option<u64>) -> Result<()> {
        if let (Some(q), Some(n)) = (self.quota, expected) {
            q.check(before.saturating_add(n))?;
        }
        if let Some(n) = expected {
            if before
                .checked_add(n)
                .is_none_or(|end| end > self.max_length)
            {
                return Err(Error::BlobTooLarge {
                    limit: self.max_length,
                });
            }
        }
        (self.check_space)(expected.unwrap_or(0))
    }
}

impl Registry {
    /// Run `f` with this registry's bounds for one chunk; the disk reserve
    /// applies only to a chunk that `needs_space`. What the chunk claimed is
    /// released when `f` returns (or unwinds).
    pub(super) fn with_bounds<T>(
        &self,
        needs_space: bool,
        quota: Option<&super::quota::QuotaCap>,
        f: impl FnOnce(&Bounds<'_>) -> T,
    ) -> T {
        let claim = Claim {
            registry: self,
            bytes: Cell::new(0),
        };
        let check_space = |more: u64| {
            if needs_space {
                self.claim_space(&claim, more)
            } else {
                Ok(())
            }
        };
        f(&Bounds {
            max_length: self.limits.max_blob_size,
            check_space: &check_space,
            quota,
        })
    }

    /// 507 when `more` bytes (still to come for this chunk), on top of what
    /// other uploads claimed, would leave less than the reserve free;
    /// otherwise `claim` becomes `more`. When free space cannot be measured
    /// the reserve is not enforced (a full disk still ends in 507 from the
    /// write itself).
    fn claim_space(&self, claim: &Claim<'_>, more: u64) -> Result<()> {
        let reserve = self.limits.disk_reserve;
        if reserve.is_off() {
            return Ok(());
        }
        let space = match self.store.space() {
            Ok(space) => space,
            Err(e) => {
                log::debug!("cannot measure free space ({e}); the disk reserve is not enforced");
                return Ok(());
            }
        };
        let keep = reserve.resolve(space.total);
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let others = claimed.saturating_sub(claim.bytes.get());
        if space.available.saturating_sub(others).saturating_sub(more) < keep {
            return Err(Error::BelowDiskReserve {
                reserve: keep,
                available: space.available,
            });
        }
        *claimed = others + more;
        claim.bytes.set(more);
        Ok(())
    }
}

/// Bytes one chunk announced and has not written yet, counted in
/// `Registry::claimed` until it is dropped.
struct Claim<'r> {
    registry: &'r Registry,
    bytes: Cell<u64>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut claimed = self
            .registry
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *claimed = claimed.saturating_sub(self.bytes.get());
    }
}

/// Hash the first `len` bytes of `file` (positioned at 0).
pub(super) fn hash_prefix(file: &mut File, len: u64, hasher: &mut Hasher) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        file.read_exact(&mut buf[..want])
            .map_err(|e| Error::io("reading upload", e))?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(())
}

/// Bodies at least this large (or of unknown length) are hashed on a helper
/// thread while the worker reads and writes: sha256 is the largest cost of a
/// big push, and on a multi-core board it then overlaps with the I/O.
const PIPELINE_MIN: u64 = 8 * 1024 * 1024;
/// Buffers in flight between the worker and the hashing thread.
const PIPELINE_BUFFERS: usize = 6;

/// Where streamed bytes go to be hashed.
trait Digesting {
    /// Hash `buf[..n]` (or hand it to something that will); returns a buffer
    /// for the next read.
    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8>;
}

/// Hashing on the worker thread.
struct Inline<'h>(&'h mut Hasher);

impl Digesting for Inline<'_> {
    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8> {
        self.0.update(&buf[..n]);
        buf
    }
}

/// Hashing on a scoped helper thread, buffers recycled through a return channel.
struct Pipelined {
    tx: mpsc::SyncSender<(Vec<u8>, usize)>,
    back: mpsc::Receiver<Vec<u8>>,
    made: usize,
}

impl Digesting for Pipelined {
    fn feed(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8> {
        // A send fails only if the hashing thread is gone; the digest check
        // at the end then fails too, so nothing wrong is ever committed.
        let _ = self.tx.send((buf, n));
        match self.back.try_recv() {
            Ok(b) => b,
            Err(_) if self.made < PIPELINE_BUFFERS => {
                self.made += 1;
                vec![0u8; CHUNK]
            }
            Err(_) => self.back.recv().unwrap_or_else(|_| vec![0u8; CHUNK]),
        }
    }
}

/// Copy `body` to the end of `file` (which holds `offset` bytes), hashing as
/// it goes, within `bounds`. Returns the byte count. On an error the file may
/// hold part of the body: the caller cuts it back. Without a file the body is
/// only hashed (a blob the registry already stores).
pub(super) fn stream_into(
    mut file: Option<&mut File>,
    body: &mut dyn Read,
    hasher: &mut Hasher,
    offset: u64,
    expected: Option<u64>,
    bounds: &Bounds<'_>,
) -> Result<u64> {
    if expected.is_some_and(|n| n < PIPELINE_MIN) {
        return copy_loop(file, body, &mut Inline(hasher), offset, expected, bounds);
    }
    let piped = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(PIPELINE_BUFFERS);
        let (back_tx, back) = mpsc::channel::<Vec<u8>>();
        let h = &mut *hasher;
        let spawned = std::thread::Builder::new()
            .name("upload-hash".into())
            .spawn_scoped(scope, move || {
                for (buf, n) in rx {
                    h.update(&buf[..n]);
                    let _ = back_tx.send(buf);
                }
            });
        if spawned.is_err() {
            return None;
        }
        let mut sink = Pipelined { tx, back, made: 1 };
        Some(copy_loop(
            file.as_deref_mut(),
            body,
            &mut sink,
            offset,
            expected,
            bounds,
        ))
    });
    match piped {
        Some(result) => result,
        None => copy_loop(file, body, &mut Inline(hasher), offset, expected, bounds),
    }
}

fn copy_loop(
    mut file: Option<&mut File>,
    body: &mut dyn Read,
    sink: &mut dyn Digesting,
    offset: u64,
    expected: Option<u64>,
    bounds: &Bounds<'_>,
) -> Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total: u64 = 0;
    let mut unsynced: u64 = 0;
    let mut unchecked: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::client(
                    Code::BlobUploadInvalid,
                    format!("reading the request body failed after {total} bytes: {e}"),
                ));
            }
        };
        // Checked before the bytes are written: a body of unknown length
        // stops at the limit (the announced ones were refused by `admit`).
        if offset.saturating_add(total + n as u64) > bounds.max_length {
            return Err(Error::BlobTooLarge {
                limit: bounds.max_length,
            });
        }
        if let Some(q) = bounds.quota {
            q.check(offset.saturating_add(total + n as u64))?;
        }
        if let Some(file) = file.as_deref_mut() {
            file.write_all(&buf[..n]).map_err(|e| {
                Error::io(format!("writing upload at offset {}", offset + total), e)
            })?;
        }
        buf = sink.feed(buf, n);
        total += n as u64;
        unsynced += n as u64;
        unchecked += n as u64;
        if unsynced >= SYNC_EVERY {
            if let Some(file) = file.as_deref_mut() {
                file.sync_data()
                    .map_err(|e| Error::io("syncing upload", e))?;
            }
            unsynced = 0;
        }
        if unchecked >= SPACE_CHECK_EVERY {
            let still_to_come = expected.map_or(0, |exp| exp.saturating_sub(total));
            (bounds.check_space)(still_to_come)?;
            unchecked = 0;
        }
        if let Some(exp) = expected {
            if total > exp {
                return Err(Error::client(
                    Code::SizeInvalid,
                    format!("body is longer than the declared {exp} bytes"),
                ));
            }
        }
    }
    if let Some(exp) = expected {
        if total != exp {
            return Err(Error::client(
                Code::SizeInvalid,
                format!("body has {total} bytes, {exp} were declared"),
            ));
        }
    }
    Ok(total)
}
