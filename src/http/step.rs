//! One non-blocking step on a connection the readiness loop holds: a read
//! of a plain socket, or moving a TLS session forward (handshake writes,
//! decrypted bytes, socket reads) without ever waiting.
//!
//! It must never block, never keep bytes of its own (decrypted bytes beyond
//! the caller's buffer stay inside rustls) and never parse HTTP.

use super::readiness::MAX_STEPS;
use std::io::{self, Read};
use std::net::TcpStream;

/// What one non-blocking step on the socket gave.
pub(super) enum Step {
    /// `n` request bytes (plaintext) at the start of the scratch buffer.
    Bytes(usize),
    /// The client closed its side.
    Eof,
    /// Nothing more for now.
    Blocked { want_write: bool },
    /// A socket or TLS error: close.
    Failed,
}

/// One read that never blocks (MSG_DONTWAIT: a plain socket's mode is
/// never switched for the loop).
pub(super) fn plain_step(s: &mut TcpStream, out: &mut [u8]) -> Step {
    use std::os::fd::AsRawFd;
    match super::sys::recv_dontwait(s.as_raw_fd(), out) {
        Ok(0) => Step::Eof,
        Ok(n) => Step::Bytes(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Blocked { want_write: false },
        Err(_) => Step::Failed,
    }
}

/// Moves a TLS session forward without blocking: sends what rustls queued
/// (handshake messages, tickets, alerts), takes out decrypted bytes, reads the
/// socket. Decrypted bytes beyond `out` stay inside rustls, where the worker's
/// reads find them. `got_bytes` is set when the socket gave anything.
pub(super) fn tls_step(
    t: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    out: &mut [u8],
    got_bytes: &mut bool,
) -> Step {
    for _ in 0..MAX_STEPS {
        let mut write_blocked = false;
        while t.conn.wants_write() {
            match t.conn.write_tls(&mut t.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    write_blocked = true;
                    break;
                }
                Err(_) => return Step::Failed,
            }
        }
        if !t.conn.is_handshaking() {
            match t.conn.reader().read(out) {
                Ok(0) => return Step::Eof,
                Ok(n) => return Step::Bytes(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the peer closed without close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Step::Eof,
                Err(_) => return Step::Failed,
            }
        }
        match t.conn.read_tls(&mut t.sock) {
            Ok(0) => {
                // End of stream: whatever the last records held, then EOF.
                if t.conn.process_new_packets().is_err() {
                    return Step::Failed;
                }
                if !t.conn.is_handshaking() {
                    if let Ok(n) = t.conn.reader().read(out) {
                        if n > 0 {
                            return Step::Bytes(n);
                        }
                    }
                }
                return Step::Eof;
            }
            Ok(_) => {
                *got_bytes = true;
                if t.conn.process_new_packets().is_err() {
                    // Send the alert rustls queued (best effort), then give up.
                    let _ = t.conn.write_tls(&mut t.sock);
                    return Step::Failed;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Step::Blocked {
                    want_write: write_blocked,
                }
            }
            Err(_) => return Step::Failed,
        }
    }
    Step::Blocked { want_write: false }
}
