//! Request body de-framing: Content-Length bodies and the `chunked` transfer
//! coding, plus the lazy `100 Continue` and the bounded drain after a handler.
//!
//! It must never buffer a body, allocate in proportion to a client-sent number,
//! or accept ambiguous framing; it knows nothing about what the body means.

use super::io::ConnIo;
use super::BodyRead;
use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

/// Longest accepted chunk-size line (size, extensions and CRLF).
pub(crate) const MAX_CHUNK_LINE: usize = 4096;
/// Most bytes accepted in a chunked trailer section.
pub(crate) const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Most trailer fields accepted.
pub(crate) const MAX_TRAILERS: usize = 64;

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn too_slow() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "request body slower than the minimum rate",
    )
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "request body ended early")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF that ends chunk data.
    DataEnd,
    /// Reading trailer lines (bytes and count seen so far).
    Trailers(usize, usize),
    Done,
}

/// A `chunked` decoder over any `BufRead`. Lines are bounded; data is passed
/// through without buffering.
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
    line: Vec<u8>,
}

impl Chunked {
    pub(crate) fn new() -> Chunked {
        Chunked {
            state: State::Size,
            line: Vec::new(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads one CRLF-terminated line into `self.line` (without the CRLF),
    /// refusing lines longer than `max` bytes.
    fn read_line<R: BufRead>(&mut self, src: &mut R, max: usize) -> io::Result<()> {
        self.line.clear();
        loop {
            let avail = src.fill_buf()?;
            if avail.is_empty() {
                return Err(eof());
            }
            let (take, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if self.line.len() + take > max {
                return Err(bad("chunk line too long"));
            }
            self.line.extend_from_slice(&avail[..take]);
            src.consume(take);
            if found {
                // Strict CRLF: a bare LF is refused (request smuggling surface).
                if self.line.len() < 2 || self.line[self.line.len() - 2] != b'\r' {
                    return Err(bad("chunk line not ended by CRLF"));
                }
                self.line.truncate(self.line.len() - 2);
                return Ok(());
            }
        }
    }

    fn parse_size(line: &[u8]) -> io::Result<u64> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(bad("chunk size missing"));
        }
        let mut size: u64 = 0;
        for &b in &line[..digits] {
            let v = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => b - b'A' + 10,
            };
            size = size
                .checked_mul(16)
                .and_then(|s| s.checked_add(u64::from(v)))
                .ok_or_else(|| bad("chunk size overflows"))?;
        }
        // After the size: optional whitespace, then nothing or `;` extensions.
        let rest = &line[digits..];
        let rest = &rest[rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count()..];
        if !(rest.is_empty() || rest[0] == b';') {
            return Err(bad("malformed chunk size line"));
        }
        if rest.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(bad("control byte in chunk extension"));
        }
        Ok(size)
    }

    /// Reads de-chunked data into `out`. Returns 0 only at the real end of the body.
    pub(crate) fn read<R: BufRead>(&mut self, src: &mut R, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Size => {
                    self.read_line(src, MAX_CHUNK_LINE)?;
                    let size = Self::parse_size(&self.line)?;
                    self.state = if size == 0 {
                        State::Trailers(0, 0)
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(out.len());
                    let avail = src.fill_buf()?;
                    if avail.is_empty() {
                        return Err(eof());
                    }
                    let n = want.min(avail.len());
                    out[..n].copy_from_slice(&avail[..n]);
                    src.consume(n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(n);
                }
                State::DataEnd => {
                    self.read_line(src, 2)?;
                    if !self.line.is_empty() {
                        return Err(bad("chunk data longer than its size"));
                    }
                    self.state = State::Size;
                }
                State::Trailers(bytes, count) => {
                    let room = MAX_TRAILER_BYTES.saturating_sub(bytes);
                    self.read_line(src, room.max(2))?;
                    if self.line.is_empty() {
                        self.state = State::Done;
                        self.line = Vec::new();
                        return Ok(0);
                    }
                    if count + 1 > MAX_TRAILERS {
                        return Err(bad("too many trailer fields"));
                    }
                    self.state = State::Trailers(bytes + self.line.len() + 2, count + 1);
                }
            }
        }
    }
}

pub(crate) enum Framing {
    Length(u64),
    Chunked,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continue {
    /// The client did not ask for `100 Continue`.
    No,
    /// Asked for, not sent yet.
    Pending,
    Sent,
}

enum Kind {
    Length(u64),
    Chunked(Chunked),
}

/// The body reader handed to handlers.
pub(crate) struct BodyReader<'c> {
    io: &'c mut ConnIo,
    kind: Kind,
    declared: Option<u64>,
    pub(crate) cont: Continue,
    body_timeout: Duration,
    rate: MinRate,
    /// When the handler first read the body (after any `100 Continue`).
    first_read: Option<Instant>,
    /// Body bytes read so far.
    got: u64,
    started: bool,
    failed: bool,
}

/// The minimum average body rate: after `grace` from the first read, the
/// body must have come at `bytes_per_sec` on average (0: no minimum).
#[derive(Clone, Copy)]
pub(crate) struct MinRate {
    pub(crate) bytes_per_sec: u64,
    pub(crate) grace: Duration,
}

impl MinRate {
    /// When a body that started at `start` and has given `got` bytes falls
    /// under the rate if nothing more arrives (None: no minimum).
    fn cutoff(&self, start: Instant, got: u64) -> Option<Instant> {
        if self.bytes_per_sec == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(got as f64 / self.bytes_per_sec as f64);
        start.checked_add(self.grace.max(earned))
    }
}

impl<'c> BodyReader<'c> {
    pub(crate) fn new(
        io: &'c mut ConnIo,
        framing: Framing,
        cont: Continue,
        body_timeout: Duration,
        rate: MinRate,
    ) -> Self {
        let (kind, declared) = match framing {
            Framing::Length(n) => (Kind::Length(n), Some(n)),
            Framing::Chunked => (Kind::Chunked(Chunked::new()), None),
        };
        BodyReader {
            io,
            kind,
            declared,
            cont,
            body_timeout,
            rate,
            first_read: None,
            got: 0,
            started: false,
            failed: false,
        }
    }

    /// True when the whole body was read (or there was none).
    pub(crate) fn finished(&self) -> bool {
        match &self.kind {
            Kind::Length(left) => *left == 0,
            Kind::Chunked(c) => c.is_done(),
        }
    }

    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// Body bytes read so far (drained ones included).
    pub(crate) fn got(&self) -> u64 {
        self.got
    }

    /// Bytes still expected for a Content-Length body (None when chunked).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match &self.kind {
            Kind::Length(left) => Some(*left),
            Kind::Chunked(_) => None,
        }
    }

    /// Reads and discards what is left of the body, at most `max` bytes and
    /// until `deadline`. True when the body ended within those bounds.
    pub(crate) fn drain(&mut self, max: u64, deadline: Instant) -> bool {
        if self.finished() {
            return true;
        }
        if self.failed || self.cont == Continue::Pending {
            return false;
        }
        if matches!(self.remaining(), Some(left) if left > max) {
            return false;
        }
        self.started = true;
        let mut scratch = [0u8; 8192];
        let mut total = 0u64;
        loop {
            let now = Instant::now();
            if now >= deadline || total > max {
                return false;
            }
            self.io.set_read_timeout(deadline - now);
            match self.read_inner(&mut scratch) {
                Ok(0) => return self.finished(),
                Ok(n) => total += n as u64,
                Err(_) => {
                    self.failed = true;
                    return false;
                }
            }
        }
    }

    fn read_inner(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.kind {
            Kind::Length(left) => {
                if *left == 0 || out.is_empty() {
                    return Ok(0);
                }
                let want = usize::try_from(*left).unwrap_or(usize::MAX).min(out.len());
                let n = self.io.read(&mut out[..want])?;
                if n == 0 {
                    return Err(eof());
                }
                *left -= n as u64;
                Ok(n)
            }
            Kind::Chunked(c) => c.read(&mut *self.io, out),
        }
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.finished() {
            return Ok(0);
        }
        if self.failed {
            return Err(io::Error::other(
                "request body unreadable after an earlier error",
            ));
        }
        if !self.started {
            self.started = true;
            if self.cont == Continue::Pending {
                let sent = self
                    .io
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .and_then(|()| self.io.flush());
                if let Err(e) = sent {
                    self.failed = true;
                    return Err(e);
                }
                self.cont = Continue::Sent;
            }
            self.io.set_read_timeout(self.body_timeout);
            self.first_read = Some(Instant::now());
        }
        // The next read may wait the idle timeout, but never past the moment
        // the body's average rate falls under the minimum.
        let now = Instant::now();
        let cutoff = self
            .first_read
            .and_then(|start| self.rate.cutoff(start, self.got));
        let near = cutoff.filter(|c| *c < now + self.body_timeout);
        if let Some(c) = near {
            if c <= now {
                self.failed = true;
                return Err(too_slow());
            }
            self.io.set_read_timeout(c - now);
            self.io.set_head_deadline(Some(c));
        }
        let r = self.read_inner(out);
        if near.is_some() {
            self.io.set_head_deadline(None);
            self.io.set_read_timeout(self.body_timeout);
        }
        match r {
            Ok(n) => {
                self.got += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                let timed_out = matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                );
                if timed_out && near.is_some_and(|c| Instant::now() >= c) {
                    Err(too_slow())
                } else if timed_out {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request body idle timeout",
                    ))
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl BodyRead for BodyReader<'_> {
    fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    fn is_chunked(&self) -> bool {
        matches!(self.kind, Kind::Chunked(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> io::Result<Vec<u8>> {
        decode_with(input, 7)
    }

    fn decode_with(input: &[u8], step: usize) -> io::Result<Vec<u8>> {
        let mut src = io::BufReader::with_capacity(3, input);
        let mut c = Chunked::new();
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            let n = c.read(&mut src, &mut buf)?;
            if n == 0 {
                assert!(c.is_done());
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn simple_chunks() {
        let got = decode(b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n").ok();
        assert_eq!(got.as_deref(), Some(&b"hello, world"[..]));
    }

    #[test]
    fn extensions_uppercase_hex_and_trailers() {
        let input = b"A;name=value;x=\"q\"\r\n0123456789\r\n1 ; ext\r\nZ\r\n000\r\nX-Trailer: a\r\nY: b\r\n\r\n";
        let got = decode_with(input, 1).ok();
        assert_eq!(got.as_deref(), Some(&b"0123456789Z"[..]));
    }

    #[test]
    fn leaves_following_bytes_alone() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let mut src: &[u8] = input;
        let mut c = Chunked::new();
        let mut buf = [0u8; 64];
        assert_eq!(c.read(&mut src, &mut buf).ok(), Some(3));
        assert_eq!(c.read(&mut src, &mut buf).ok(), Some(0));
        assert_eq!(src, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn rejects_malformed() {
        for input in [
            &b"zz\r\nabc\r\n0\r\n\r\n"[..],
            b"\r\n",
            b"3x\r\nabc\r\n0\r\n\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"3\r\nabc\n0\r\n\r\n",
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"10000000000000000\r\n",
            b"3;a\x01b\r\nabc\r\n0\r\n\r\n",
        ] {
            let r = decode(input);
            assert_eq!(
                r.err().map(|e| e.kind()),
                Some(io::ErrorKind::InvalidData),
                "{:?}",
                input
            );
        }
    }

    #[test]
    fn premature_end_is_an_error() {
        for input in [
            &b""[..],
            b"5\r\nhel",
            b"5\r\nhello",
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nX: y\r\n",
        ] {
            let r = decode(input);
            assert_eq!(
                r.err().map(|e| e.kind()),
                Some(io::ErrorKind::UnexpectedEof),
                "{:?}",
                input
            );
        }
    }

    #[test]
    fn bounded_lines() {
        let mut long = vec![b'0'; MAX_CHUNK_LINE + 10];
        long.extend_from_slice(b"1\r\na\r\n0\r\n\r\n");
        assert_eq!(
            decode(&long).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
        let mut ext = b"1;".to_vec();
        ext.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE));
        ext.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
        assert_eq!(
            decode(&ext).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..MAX_TRAILERS + 1 {
            trailers.extend_from_slice(format!("t{i}: v\r\n").as_bytes());
        }
        trailers.extend_from_slice(b"\r\n");
        assert_eq!(
            decode(&trailers).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
        let mut big = b"0\r\nx: ".to_vec();
        big.extend(std::iter::repeat_n(b'v', MAX_TRAILER_BYTES));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            decode(&big).err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidData)
        );
    }

    #[test]
    fn huge_declared_chunk_does_not_allocate() {
        // A client-sent size is only a counter: the decoder asks for more data.
        let r = decode(b"ffffffffffffffff\r\nabc");
        assert_eq!(
            r.err().map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
    }
}
