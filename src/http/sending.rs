//! File bodies the readiness loop sends: after a worker wrote the head of a
//! `Body::File` answer on a plain socket, the loop feeds the rest with
//! non-blocking `sendfile(2)` on each writability event, at no less than
//! the minimum send rate, so a slow reader holds a descriptor and a table
//! slot, never a worker.
//!
//! It must never block (it runs on the loop thread), never read the file
//! into memory (the kernel copies it), never send past the announced length,
//! and never keep a connection whose window fell under the minimum rate.

use super::admission::SendPermit;
use super::conn::Conn;
use super::readiness::{Arrival, Table, Waiting, MAX_STEPS};
use super::response::{FileBody, SendRate};
use super::server::Shared;
use super::sys::Epoll;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// Most bytes one `sendfile` call is asked for.
const CHUNK: u64 = 1 << 20;

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
    pub(super) fn pump(&mut self, sock: RawFd) -> Pumped {
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
    if let Err(e) = conn.io.set_nonblocking(true) {
        log::debug!("{}: set_nonblocking: {e}", conn.remote);
        return;
    }
    let mut s = Sending::new(body, now);
    match s.pump(conn.io.fd()) {
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
/// inbox like any answered connection.
pub(super) fn sent(shared: &Shared, mut w: Waiting) {
    let Some(s) = w.sending.take() else { return };
    let d = s.into_deferred();
    if w.conn.io.set_nonblocking(false).is_err() || shared.stopping() {
        return;
    }
    if !d.close {
        shared.waiting.hand(w.conn, Arrival::KeptAlive);
    } else if d.unread {
        shared.waiting.hand(w.conn, Arrival::Closing);
    } else {
        let _ = w.conn.io.tcp().shutdown(std::net::Shutdown::Write);
    }
}
