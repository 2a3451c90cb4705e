//! storage::read_ahead: a remote object read ahead of its consumer, so
//! receiving from the store overlaps sending to the client. The bytes from
//! an offset to the end are cut into segments of [`SEGMENT`]; [`STREAMS`]
//! threads each fetch every other segment with a ranged request of its own,
//! into chunks of [`CHUNK`] (filled whole: one large write to the client
//! each), at most [`AHEAD`] chunks ahead per thread; the consumer takes the
//! segments in order.
//!
//! Memory per reader: each stream's chunks go back to its own pool, so a
//! stream allocates only while all of its chunks are in use: at most
//! STREAMS x (AHEAD + 2) chunks (512 KiB with one stream). A thread ends at its last segment or an error, or at its next
//! chunk once the consumer is gone (a client that left, a Range elsewhere).
//!
//! It must never give bytes out of order, pass a short segment off as whole,
//! or hold more than the chunks above.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Bytes a chunk holds.
pub const CHUNK: usize = 128 * 1024;
/// Chunks a stream may have ready beyond the one it fills.
pub const AHEAD: usize = 2;
/// Bytes one ranged request fetches: in effect the whole rest of the object.
/// Measured (`bench --only s3`, 1 GiB, loopback 3-node Garage on 2 cores):
/// 2 streams of 8 MiB segments pulled at 0.84-0.92x distribution, one
/// request at 0.93-1.19x: the store is CPU-bound here, and a second stream
/// only takes CPU from the rest. On a store of several machines more
/// streams may pay; the design keeps them one constant away.
pub const SEGMENT: u64 = 1 << 40;
/// Ranged requests in flight per reader.
pub const STREAMS: usize = 1;

/// How a reader cuts the object: bytes per ranged request and requests in
/// flight.
#[derive(Clone, Copy, Debug)]
pub struct Segments {
    pub size: u64,
    pub streams: usize,
}

/// The measured choice above.
pub const DEFAULT_SEGMENTS: Segments = Segments {
    size: SEGMENT,
    streams: STREAMS,
};

/// Opens the bytes `start..end` (end exclusive) of a remote object.
pub type OpenRange = Arc<dyn Fn(u64, u64) -> io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// A remote object's bytes from an offset to its end, read ahead.
pub struct ReadAhead {
    streams: Vec<Receiver<io::Result<Vec<u8>>>>,
    /// Recycled chunks, one pool per stream.
    empties: Vec<SyncSender<Vec<u8>>>,
    /// Where each segment starts; the last entry is the end.
    bounds: Vec<u64>,
    segment: usize,
    /// Bytes of the current segment not yet taken.
    left: u64,
    cur: Vec<u8>,
    /// The stream `cur` came from (its pool gets it back).
    cur_from: usize,
    at: usize,
}

/// Fill `buf` from `r` as far as it goes: the bytes read (fewer only at its end).
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One stream's thread: the segments `mine` of `bounds`, in order.
fn fetch(
    open: OpenRange,
    bounds: Vec<u64>,
    mine: Vec<usize>,
    full: SyncSender<io::Result<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
) {
    for s in mine {
        let (start, end) = (bounds[s], bounds[s + 1]);
        let mut body = match open(start, end) {
            Ok(b) => b,
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        };
        let mut left = end - start;
        while left > 0 {
            let mut buf = empty.try_recv().unwrap_or_default();
            buf.resize(CHUNK.min(usize::try_from(left).unwrap_or(CHUNK)), 0);
            let n = match fill(&mut *body, &mut buf) {
                Ok(0) => {
                    let _ = full.send(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the store sent {left} bytes short of bytes {start}-{end}"),
                    )));
                    return;
                }
                Ok(n) => n,
                Err(e) => {
                    let _ = full.send(Err(e));
                    return;
                }
            };
            buf.truncate(n);
            left -= n as u64;
            if full.send(Ok(buf)).is_err() {
                return; // the consumer is gone
            }
        }
    }
}

impl ReadAhead {
    /// Reads `start..len` of the object `open` fetches, cut as `cut` says.
    pub fn new(open: OpenRange, start: u64, len: u64, cut: Segments) -> io::Result<ReadAhead> {
        let (size, streams_wanted) = (cut.size.max(1), cut.streams.max(1));
        let mut bounds = vec![start];
        let mut at = start;
        while at < len {
            at = (at + size).min(len);
            bounds.push(at);
        }
        let segments = bounds.len() - 1;
        let mut streams = Vec::new();
        let mut empties = Vec::new();
        for k in 0..streams_wanted.min(segments.max(1)) {
            let (full_tx, full) = sync_channel(AHEAD);
            let (empty, empty_rx) = sync_channel(AHEAD + 2);
            let mine: Vec<usize> = (k..segments).step_by(streams_wanted).collect();
            let (open, bounds) = (open.clone(), bounds.clone());
            std::thread::Builder::new()
                .name("soute-read-ahead".into())
                .spawn(move || fetch(open, bounds, mine, full_tx, empty_rx))?;
            streams.push(full);
            empties.push(empty);
        }
        let left = bounds.get(1).map_or(0, |e| e - start);
        Ok(ReadAhead {
            streams,
            empties,
            bounds,
            segment: 0,
            left,
            cur: Vec::new(),
            cur_from: 0,
            at: 0,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.cur.len() {
            while self.left == 0 {
                self.segment += 1;
                if self.segment + 1 >= self.bounds.len() {
                    return Ok(0);
                }
                self.left = self.bounds[self.segment + 1] - self.bounds[self.segment];
            }
            let k = self.segment % self.streams.len();
            let next = match self.streams[k].recv() {
                Ok(chunk) => chunk?,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the read-ahead stream ended early",
                    ))
                }
            };
            self.left = self.left.saturating_sub(next.len() as u64);
            let used = std::mem::replace(&mut self.cur, next);
            let _ = self.empties[self.cur_from].try_send(used);
            self.cur_from = k;
            self.at = 0;
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
