//! Response serialisation: status line, the headers the server owns
//! (Content-Length, Date, Connection), and the body (files through one
//! 256 KiB buffer), at no less than the minimum send rate; a file body whose
//! client stops keeping up (plain or TLS) is given back for the readiness
//! loop to send.
//!
//! It must never emit a header value containing CR/LF, never send chunked
//! responses, never wrap the socket in a buffer on the file fast path, and
//! never let a client that reads slower than the minimum rate keep a worker
//! past the window that shows it.

use super::io::ConnIo;
use super::{Body, Response};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;
/// Copy buffer for file bodies.
const TLS_COPY_BUF: usize = 256 * 1024;

/// How the response must be framed for this request.
pub(crate) struct Outgoing {
    /// The request was HEAD: announce the length, send no body.
    pub(crate) head_only: bool,
    /// Send `Connection: close`.
    pub(crate) close: bool,
    /// HTTP/1.0 client that asked for keep-alive: say `Connection: keep-alive`.
    pub(crate) keep_alive_10: bool,
    /// How slowly the client may take the response.
    pub(crate) rate: SendRate,
}

/// The minimum send rate: in every `window` of a response, at least
/// `bytes_per_sec` x `window` bytes must leave (be taken by the socket).
/// Counted per window, not since the start, because the kernel's socket
/// buffers take the first hundreds of KiB at once whatever the client reads.
/// The socket's send timeout ([`SendRate::socket_timeout`], set at accept) is
/// at most one window, so a blocked write comes back to be checked.
#[derive(Clone, Copy)]
pub(crate) struct SendRate {
    /// 0: no minimum (only `write_timeout`).
    pub(crate) bytes_per_sec: u64,
    pub(crate) window: Duration,
    /// Longest a write may make no progress.
    pub(crate) write_timeout: Duration,
}

impl SendRate {
    /// No minimum rate (refusals written without blocking).
    pub(crate) const NONE: SendRate = SendRate {
        bytes_per_sec: 0,
        window: Duration::ZERO,
        write_timeout: Duration::from_secs(60),
    };

    pub(crate) fn enforced(&self) -> bool {
        self.bytes_per_sec > 0 && !self.window.is_zero()
    }

    /// The socket send timeout every connection gets: the write timeout, or
    /// one window when that is shorter and the rate is enforced.
    pub(crate) fn socket_timeout(&self) -> Duration {
        let t = if self.enforced() {
            self.write_timeout.min(self.window)
        } else {
            self.write_timeout
        };
        t.max(Duration::from_millis(1))
    }
}

/// The connection's writer while a response goes out, enforcing its
/// [`SendRate`] and the write timeout (no progress for that long).
pub(super) struct Paced<'a> {
    io: &'a mut ConnIo,
    rate: SendRate,
    window_start: Instant,
    at_window_start: u64,
    sent: u64,
    last_progress: Instant,
}

impl<'a> Paced<'a> {
    pub(super) fn new(io: &'a mut ConnIo, rate: SendRate) -> Paced<'a> {
        let now = Instant::now();
        Paced {
            io,
            rate,
            window_start: now,
            at_window_start: 0,
            sent: 0,
            last_progress: now,
        }
    }

    /// Fails when a window ended with less than the rate; starts the next.
    fn check(&mut self, now: Instant) -> io::Result<()> {
        if !self.rate.enforced() || now < self.window_start + self.rate.window {
            return Ok(());
        }
        let took = now.duration_since(self.window_start).as_secs_f64();
        let need = self.rate.bytes_per_sec as f64 * took;
        if ((self.sent - self.at_window_start) as f64) < need {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response read slower than the minimum rate",
            ));
        }
        self.window_start = now;
        self.at_window_start = self.sent;
        Ok(())
    }

    /// The body's source made the sender wait (a blob still arriving from
    /// an upstream): that time is not the client's, so a new window starts.
    pub(super) fn restart_window(&mut self) {
        let now = Instant::now();
        self.window_start = now;
        self.at_window_start = self.sent;
        self.last_progress = now;
    }

    /// Whether a write that timed out may be retried (the socket timeout is
    /// one window: it is, until the write timeout passes without progress).
    fn retry(&self, e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) && self.last_progress.elapsed() < self.rate.write_timeout
    }
}

impl Write for Paced<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        loop {
            self.check(Instant::now())?;
            match self.io.write(data) {
                Ok(n) => {
                    if n > 0 {
                        self.sent += n as u64;
                        self.last_progress = Instant::now();
                    }
                    return Ok(n);
                }
                Err(e) if self.retry(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        loop {
            self.check(Instant::now())?;
            match self.io.flush() {
                Err(e) if self.retry(&e) => {}
                r => return r,
            }
        }
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::clock::imf_fixdate(secs.min(i64::MAX as u64) as i64)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// True for statuses that never carry a body or Content-Length.
fn bodiless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// Writes `resp`. Returns the result and the number of body bytes written.
/// The status line and headers of `status`, with the ones the server owns.
fn encode_head(
    status: u16,
    headers: &[(String, String)],
    body_len: u64,
    out: &Outgoing,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(
        format!(
            "HTTP/1.1 {status} {}\r\nDate: {}\r\n",
            reason(status),
            http_date(SystemTime::now())
        )
        .as_bytes(),
    );
    for (name, value) in headers {
        if !is_token(name) || !valid_value(value) {
            log::warn!("dropping invalid response header {name:?}");
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "date" | "keep-alive"
        ) {
            continue;
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !bodiless(status) {
        head.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
    }
    if out.close {
        head.extend_from_slice(b"Connection: close\r\n");
    } else if out.keep_alive_10 {
        head.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A whole closing answer in memory (for refusals written without blocking):
/// only in-memory bodies are sent; any other body is dropped.
pub(crate) fn encode_small(resp: Response) -> Vec<u8> {
    let body = match resp.body {
        Body::Bytes(b) if !bodiless(resp.status) => b,
        _ => Vec::new(),
    };
    let out = Outgoing {
        head_only: false,
        close: true,
        keep_alive_10: false,
        rate: SendRate::NONE,
    };
    let mut bytes = encode_head(resp.status, &resp.headers, body.len() as u64, &out);
    bytes.extend_from_slice(&body);
    bytes
}

/// A file body left for the readiness loop to send after its head went out.
pub(crate) struct FileBody {
    pub(crate) file: File,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

/// How long a worker waits for a socket (plain or TLS) to take more of a file body
/// before it gives the rest to the readiness loop.
const STALL: Duration = Duration::from_millis(20);

/// Like [`write`], but a `Body::File` answer (plain or TLS) is copied
/// only while the client keeps up: once the socket takes nothing for
/// [`STALL`], or the copy has lasted one send-rate window (the write timeout
/// without a rate), the rest is given back (`Some`) for the readiness loop to
/// send. Otherwise the answer is written whole (`None`). The count is of the
/// body bytes written here.
pub(crate) fn write_or_hand_off(
    io: &mut ConnIo,
    resp: Response,
    out: Outgoing,
) -> (io::Result<Option<FileBody>>, u64) {
    let deferrable = matches!(resp.body, Body::File { .. } | Body::Growing { .. });
    if bodiless(resp.status) || out.head_only || !deferrable {
        let (r, n) = write(io, resp, out);
        return (r.map(|()| None), n);
    }
    let head = encode_head(resp.status, &resp.headers, resp.body.len(), &out);
    match resp.body {
        Body::File { file, offset, len } => {
            let mut paced = Paced::new(io, out.rate);
            if let Err(e) = paced.write_all(&head).and_then(|()| paced.flush()) {
                return (Err(e), 0);
            }
            hand_off_file(io, &out, file, (offset, len))
        }
        Body::Growing {
            source,
            offset,
            len,
        } => {
            // While it grows, the worker copies it; once it is complete (and
            // verified), the rest is a file body like any other.
            let mut sent = 0u64;
            let copied = {
                let mut paced = Paced::new(io, out.rate);
                paced.write_all(&head).and_then(|()| {
                    let f =
                        super::growing::copy(&mut paced, &*source, (offset, len), &mut sent, true)?;
                    paced.flush()?;
                    Ok(f)
                })
            };
            match copied {
                Err(e) => (Err(e), sent),
                Ok(None) => (Ok(None), sent),
                Ok(Some(file)) => {
                    let (r, more) = hand_off_file(io, &out, file, (offset + sent, len - sent));
                    (r, sent + more)
                }
            }
        }
        _ => (Ok(None), 0),
    }
}

/// The rest of a file body whose head is written: copied while the client
/// keeps up, else given back for the readiness loop (see [`write_or_hand_off`]).
fn hand_off_file(
    io: &mut ConnIo,
    out: &Outgoing,
    file: File,
    (offset, len): (u64, u64),
) -> (io::Result<Option<FileBody>>, u64) {
    let mut sent = 0u64;
    let budget = if out.rate.enforced() {
        out.rate.window.min(out.rate.write_timeout)
    } else {
        out.rate.write_timeout
    };
    let until = Instant::now() + budget;
    let copied = if io.is_tls() {
        super::sending::copy_tls_until_stalled(io, &file, (offset, len), (until, STALL), &mut sent)
    } else {
        copy_until_stalled(io.fd(), &file, (offset, len), until, &mut sent)
    };
    let r = match copied {
        Ok(true) if sent == len => Ok(None),
        Ok(true) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file shorter than its Content-Length",
        )),
        Ok(false) => Ok(Some(FileBody {
            file,
            offset: offset + sent,
            len: len - sent,
        })),
        Err(e) => Err(e),
    };
    (r, sent)
}

/// Copies `len` bytes of `file` from `offset` to the plain socket `fd`
/// through one buffer with sends that never block; true when the file part
/// is all sent (or the file ended), false when the socket took nothing for
/// [`STALL`] or `until` passed.
fn copy_until_stalled(
    fd: std::os::fd::RawFd,
    mut file: &File,
    (offset, len): (u64, u64),
    until: Instant,
    sent: &mut u64,
) -> io::Result<bool> {
    file.seek(SeekFrom::Start(offset))?;
    let mut src = file.take(len);
    let size = TLS_COPY_BUF
        .min(usize::try_from(len).unwrap_or(usize::MAX))
        .max(1);
    let mut buf = vec![0u8; size];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut at = 0;
        while at < n {
            match super::sys::send_dontwait(fd, &buf[at..n]) {
                Ok(k) => {
                    at += k;
                    *sent += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        return Ok(false);
                    }
                    let mut p = [libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    if super::sys::poll(&mut p, STALL.as_millis() as i32)? == 0 {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

pub(crate) fn write(io: &mut ConnIo, resp: Response, out: Outgoing) -> (io::Result<()>, u64) {
    let Response {
        status,
        headers,
        body,
        ..
    } = resp;
    let mut head = encode_head(status, &headers, body.len(), &out);
    let no_body = bodiless(status);
    let io = &mut Paced::new(io, out.rate);
    if no_body || out.head_only {
        return (io.write_all(&head).and_then(|()| io.flush()), 0);
    }
    match body {
        Body::Empty | Body::Length(_) => (io.write_all(&head).and_then(|()| io.flush()), 0),
        Body::Bytes(b) => {
            let r = if b.len() <= INLINE_BODY {
                head.extend_from_slice(&b);
                io.write_all(&head)
            } else {
                io.write_all(&head).and_then(|()| io.write_all(&b))
            };
            let r = r.and_then(|()| io.flush());
            let n = if r.is_ok() { b.len() as u64 } else { 0 };
            (r, n)
        }
        Body::File { file, offset, len } => {
            let mut sent = 0u64;
            let r = io
                .write_all(&head)
                .and_then(|()| send_file(io, &file, offset, len, &mut sent));
            (r.and_then(|()| io.flush()), sent)
        }
        Body::Growing {
            source,
            offset,
            len,
        } => {
            let mut sent = 0u64;
            let r = io.write_all(&head).and_then(|()| {
                super::growing::copy(io, &*source, (offset, len), &mut sent, false).map(drop)
            });
            (r.and_then(|()| io.flush()), sent)
        }
    }
}

fn send_file(
    io: &mut Paced<'_>,
    file: &File,
    offset: u64,
    len: u64,
    sent: &mut u64,
) -> io::Result<()> {
    // One buffered copy for plain and TLS: measured on loopback here,
    // read+write through a 256 KiB buffer pulled 1.2-1.3x faster than
    // sendfile(2) and used less CPU per GB (docs/benchmarks.md).
    copy_buffered(io, file, offset, len, sent)?;
    if *sent != len {
        // The file was shorter than announced: the framing is broken, close.
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file shorter than its Content-Length",
        ));
    }
    Ok(())
}

/// Copies through one buffer.
fn copy_buffered(
    out: &mut dyn Write,
    mut file: &File,
    offset: u64,
    len: u64,
    sent: &mut u64,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut src = file.take(len);
    let mut buf = vec![
        0u8;
        TLS_COPY_BUF
            .min(usize::try_from(len).unwrap_or(usize::MAX))
            .max(1)
    ];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        *sent += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        let t = |s| http_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(t(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(t(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(t(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn header_checks() {
        assert!(is_token("Docker-Content-Digest"));
        assert!(!is_token("Bad Name"));
        assert!(!is_token(""));
        assert!(valid_value("a\tb c"));
        assert!(!valid_value("a\r\nSet-Cookie: x"));
    }
}
