//! Sending a [`Growing`] body (a blob the pull-through cache is still
//! fetching): the worker copies what its source has, through one buffer,
//! waiting on the source between pieces; time spent waiting on the source
//! does not count against the client's minimum send rate. An error of the
//! source fails the send, so the connection is closed short of its
//! Content-Length: the client never sees a complete body the source did
//! not finish.
//!
//! It must never send past the announced length, never hold more than one
//! buffer of the body, and never finish a body whose source failed.

use super::response::Paced;
use super::Growing;
use std::fs::File;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Copy buffer per connection.
const BUF: usize = 256 * 1024;
/// A read of the source that took longer than this waited on it: the send
/// rate's window starts again.
const WAITED: Duration = Duration::from_millis(5);

/// Copies `len` bytes from `offset` of `source` to `out`, counting them in
/// `sent`. With `stop_when_complete`, returns the source's file as soon as
/// it is complete (the caller sends the rest as a file body); else copies
/// all of it and returns `None`.
pub(super) fn copy(
    out: &mut Paced<'_>,
    source: &dyn Growing,
    (offset, len): (u64, u64),
    sent: &mut u64,
    stop_when_complete: bool,
) -> io::Result<Option<File>> {
    let mut buf = vec![0u8; BUF.min(usize::try_from(len).unwrap_or(BUF)).max(1)];
    while *sent < len {
        if stop_when_complete {
            if let Some(file) = source.complete() {
                return Ok(Some(file));
            }
        }
        let want = (len - *sent).min(buf.len() as u64) as usize;
        let started = Instant::now();
        let n = source.read_at(&mut buf[..want], offset + *sent)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "growing body ended before its Content-Length",
            ));
        }
        if started.elapsed() > WAITED {
            out.restart_window();
        }
        out.write_all(&buf[..n])?;
        *sent += n as u64;
    }
    Ok(None)
}
