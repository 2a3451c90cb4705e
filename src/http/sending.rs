//! File bodies the readiness loop sends: after a worker wrote the head of a
//! `Body::File` answer and its client stopped keeping up, the loop feeds the
//! rest on each writability event, at no less than the minimum send rate, so
//! a slow reader holds a descriptor and a table slot, never a worker. Plain
//! sockets get non-blocking `sendfile(2)`; TLS connections get one 16 KiB
//! chunk of the file at a time through rustls, the next read only once the
//! previous one is all on the socket (also the worker's stall-detecting copy).
//!
//! It must never block (it runs on the loop thread), never hold more than one
//! chunk of a body in memory per connection, never send past the announced
//! length, and never keep a connection whose window fell under the minimum rate.

use super::admission::SendPermit;
use super::conn::Conn;
use super::io::{ConnIo, Stream};
use super::readiness::{Arrival, Table, Waiting, MAX_STEPS};
use super::response::{FileBody, SendRate};
use super::server::Shared;
use super::sys::Epoll;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Most bytes one `sendfile` call is asked for.
const CHUNK: u64 = 1 << 20;
/// Plaintext read from the file per TLS step (one TLS record's worth): what
/// rustls holds for a connection the loop sends is at most this, encrypted.
pub(crate) const TLS_CHUNK: usize = 16 * 1024;

type TlsStream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// What the worker leaves to the loop: the body, how the connection ends
/// after it, and its place among the loop's senders.
pub(crate) struct Deferred {
    pub(crate) body: FileBody,
    /// Close after the body (else kept alive for the next request).
    pub(crate) close: bool,
    /// Request bytes were left unread: linger before closing.
    pub(crate) unread: bool,
    pub(crate) _permit: SendPermit,
}

/// A body being sent, with its rate window.
pub(super) struct Sending {
    deferred: Box<Deferred>,
    sent: u64,
    window_start: Instant,
    at_window_start: u64,
    last_progress: Instant,
}

pub(super) enum Pumped {
    /// All of it is sent.
    Done,
    /// The socket is full: wait for writability.
    Wait,
    /// A socket error, or the file ended early: close.
    Failed,
}

impl Sending {
    pub(super) fn new(deferred: Box<Deferred>, now: Instant) -> Sending {
        Sending {
            deferred,
            sent: 0,
            window_start: now,
            at_window_start: 0,
            last_progress: now,
        }
    }

    /// When the loop's sweep must look at it next.
    pub(super) fn deadline(&self, rate: &SendRate) -> Instant {
        if rate.enforced() {
            self.window_start + rate.window
        } else {
            self.last_progress + rate.write_timeout
        }
    }

    /// Sends what the socket takes now.
    pub(super) fn pump(&mut self, io: &mut ConnIo) -> Pumped {
        let before = self.sent;
        let pumped = self.pump_stream(io);
        let bytes = &crate::metrics::get().transport.bytes_sent;
        bytes.add(self.sent.saturating_sub(before));
        pumped
    }

    fn pump_stream(&mut self, io: &mut ConnIo) -> Pumped {
        match &mut io.stream {
            Stream::Plain(s) => self.pump_plain(s.as_raw_fd()),
            Stream::Tls(t) => {
                let body = &self.deferred.body;
                let mut pos = body.offset + self.sent;
                let end = body.offset + body.len;
                let r = pump_tls(t, &body.file, (&mut pos, end), &mut self.last_progress);
                self.sent = pos - body.offset;
                r
            }
        }
    }

    fn pump_plain(&mut self, sock: RawFd) -> Pumped {
        let body = &self.deferred.body;
        for _ in 0..MAX_STEPS {
            let left = body.len - self.sent;
            if left == 0 {
                return Pumped::Done;
            }
            let Ok(mut offset) = i64::try_from(body.offset + self.sent) else {
                return Pumped::Failed;
            };
            let ask = left.min(CHUNK) as usize;
            match super::sys::sendfile(sock, body.file.as_raw_fd(), &mut offset, ask) {
                // The file is shorter than announced: the framing is broken.
                Ok(0) => return Pumped::Failed,
                Ok(n) => {
                    self.sent += n as u64;
                    self.last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pumped::Wait,
                Err(e) => {
                    log::debug!("sending a file body: {e}");
                    return Pumped::Failed;
                }
            }
        }
        if self.sent == body.len {
            Pumped::Done
        } else {
            Pumped::Wait
        }
    }

    /// At its deadline: the next one if the rate (or, with no minimum rate,
    /// the write timeout) held, None to close.
    pub(super) fn renew(&mut self, now: Instant, rate: &SendRate) -> Option<Instant> {
        if !rate.enforced() {
            let end = self.last_progress + rate.write_timeout;
            return (now < end).then_some(end);
        }
        let end = self.window_start + rate.window;
        if now < end {
            return Some(end);
        }
        let need = rate.bytes_per_sec as f64 * now.duration_since(self.window_start).as_secs_f64();
        if ((self.sent - self.at_window_start) as f64) < need
            || now.duration_since(self.last_progress) >= rate.write_timeout
        {
            log::debug!("response read slower than the minimum rate: closing");
            return None;
        }
        self.window_start = now;
        self.at_window_start = self.sent;
        Some(now + rate.window)
    }

    pub(super) fn into_deferred(self) -> Box<Deferred> {
        self.deferred
    }
}

/// Takes a connection whose file body the loop sends: non-blocking, what the
/// socket takes now, then watched for writability until it is all sent.
pub(super) fn start_sending(
    shared: &Shared,
    (table, epoll): (&mut Table, &Epoll),
    conn: Conn,
    body: Box<Deferred>,
    rate: &SendRate,
    now: Instant,
) {
    let mut conn = conn;
    if let Err(e) = conn.io.set_nonblocking(true) {
        log::debug!("{}: set_nonblocking: {e}", conn.remote);
        return;
    }
    // Nothing buffered (no pipelined head): no read buffer while it is sent.
    conn.io.release_buffer();
    let mut s = Sending::new(body, now);
    match s.pump(&mut conn.io) {
        Pumped::Done => sent(
            shared,
            Waiting {
                conn,
                deadline: now,
                timed: true,
                want_write: false,
                since: now,
                closing: false,
                sending: Some(Box::new(s)),
            },
        ),
        Pumped::Failed => {}
        Pumped::Wait => {
            let w = Waiting {
                conn,
                deadline: s.deadline(rate),
                timed: true,
                want_write: false,
                since: now,
                closing: false,
                sending: Some(Box::new(s)),
            };
            table.insert(w, epoll);
        }
    }
}

/// A file body is all sent: the connection closes (lingering if request
/// bytes were left unread) or waits for its next request, both through the
/// inbox like any answered connection. A TLS close_notify is written while
/// the socket is still non-blocking (the loop never waits on a full socket).
pub(super) fn sent(shared: &Shared, mut w: Waiting) {
    let Some(s) = w.sending.take() else { return };
    let d = s.into_deferred();
    if shared.stopping() {
        return;
    }
    if d.close {
        if let Stream::Tls(t) = &mut w.conn.io.stream {
            t.conn.send_close_notify();
            let _ = t.conn.write_tls(&mut t.sock);
        }
        let _ = w.conn.io.tcp().shutdown(std::net::Shutdown::Write);
    }
    if w.conn.io.set_nonblocking(false).is_err() {
        return;
    }
    if !d.close {
        shared.waiting.hand(w.conn, Arrival::KeptAlive);
    } else if d.unread {
        shared.waiting.hand(w.conn, Arrival::Closing);
    }
}

/// Moves the file bytes `[*pos, end)` through the TLS session to its
/// non-blocking socket: first what rustls holds already, then one
/// [`TLS_CHUNK`] of the file at a time, read only once the previous one is
/// all on the socket. `progress` is set whenever the socket takes bytes.
fn pump_tls(
    t: &mut TlsStream,
    file: &File,
    (pos, end): (&mut u64, u64),
    progress: &mut Instant,
) -> Pumped {
    let mut chunk = [0u8; TLS_CHUNK];
    for _ in 0..MAX_STEPS {
        while t.conn.wants_write() {
            match t.conn.write_tls(&mut t.sock) {
                Ok(0) => return Pumped::Failed,
                Ok(_) => *progress = Instant::now(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pumped::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("sending a file body over TLS: {e}");
                    return Pumped::Failed;
                }
            }
        }
        if *pos >= end {
            return Pumped::Done;
        }
        let ask = (end - *pos).min(TLS_CHUNK as u64) as usize;
        let n = match file.read_at(&mut chunk[..ask], *pos) {
            // The file is shorter than announced: the framing is broken.
            Ok(0) => return Pumped::Failed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::debug!("reading a file body: {e}");
                return Pumped::Failed;
            }
        };
        match t.conn.writer().write(&chunk[..n]) {
            Ok(k) if k > 0 => *pos += k as u64,
            _ => return Pumped::Failed,
        }
    }
    if *pos >= end && !t.conn.wants_write() {
        Pumped::Done
    } else {
        Pumped::Wait
    }
}

/// A worker's copy of a file body over TLS while the client keeps up: true
/// when all of it is on the socket, false when the socket took nothing for
/// `stall` or `until` passed (the rest, and what rustls holds, is then the
/// loop's to send). `sent` counts the body bytes given to rustls.
pub(crate) fn copy_tls_until_stalled(
    io: &mut ConnIo,
    file: &File,
    (offset, len): (u64, u64),
    (until, stall): (Instant, Duration),
    sent: &mut u64,
) -> io::Result<bool> {
    let Stream::Tls(t) = &mut io.stream else {
        return Err(io::Error::other("not a TLS connection"));
    };
    t.sock.set_nonblocking(true)?;
    let mut pos = offset;
    let mut progress = Instant::now();
    let r = loop {
        match pump_tls(t, file, (&mut pos, offset + len), &mut progress) {
            Pumped::Done => break Ok(true),
            Pumped::Failed => break Err(io::Error::other("sending a file body over TLS failed")),
            Pumped::Wait if Instant::now() >= until => break Ok(false),
            Pumped::Wait => {
                let mut p = [libc::pollfd {
                    fd: t.sock.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                match super::sys::poll(&mut p, stall.as_millis() as i32) {
                    Ok(0) => break Ok(false),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            }
        }
    };
    *sent = pos - offset;
    t.sock.set_nonblocking(false)?;
    r
}
