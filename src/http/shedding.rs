//! Letting connections go that the readiness loop holds: refusing the
//! largest unfinished heads when the head budget is over, evicting the
//! longest-waiting connections when the total cap is full and newcomers
//! arrive, and the one non-blocking refusal both use.
//!
//! It must never block (it runs on the loop thread), never refuse a head
//! within its fair share of the budget for others' heads, never evict a
//! connection a worker holds, and never answer a TLS client in plaintext.

use super::admission::Trouble;
use super::conn::Conn;
use super::eviction::{self, Candidate};
use super::io::Stream;
use super::limits::Limits;
use super::readiness::{Arrival, Table, Waiting};
use super::server::Shared;
use super::sys::Epoll;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;

/// Charges what the connection's head buffer holds to the head budget;
/// true when the total is now over the budget.
pub(super) fn charge(conn: &mut Conn, limits: &Limits) -> bool {
    let held = conn.io.held_bytes();
    conn.charge.set(held) > limits.head_budget
}

/// A connection's fair share of the head budget: heads within it are never
/// refused for the budget (a normal head is a few hundred bytes).
fn fair_share(limits: &Limits) -> usize {
    (limits.head_budget / limits.max_connections.max(1)).max(4096)
}

impl Table {
    /// Brings the buffered head bytes back under the budget: refuses (503,
    /// close) the waiting connections holding the most, largest first, as
    /// long as they hold more than their fair share. `leaving` is a connection
    /// with a whole head that is about to go to the ready queue (not in the
    /// table): false when it must be refused instead (it holds more than the
    /// others and its fair share, and the total is still over).
    pub(super) fn enforce_budget(
        &mut self,
        shared: &Shared,
        epoll: &Epoll,
        leaving: Option<&Waiting>,
    ) -> bool {
        let limits = &shared.cfg;
        let fair = fair_share(limits);
        let mut refused = 0usize;
        let mut keep = true;
        for _ in 0..self.slots.len() + 1 {
            if shared.head_bytes.load(std::sync::atomic::Ordering::Acquire) <= limits.head_budget {
                break;
            }
            let largest = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|w| (i, w.conn.charge.bytes())))
                .max_by_key(|&(_, b)| b)
                .filter(|&(_, b)| b > fair);
            let own = leaving.map_or(0, |w| w.conn.charge.bytes());
            match largest {
                Some((i, b)) if b >= own => {
                    if let Some(w) = self.slots[i].take() {
                        self.release(i, &w, epoll);
                        refuse(shared, w.conn, OVER_BUDGET);
                        refused += 1;
                    }
                }
                _ if own > fair => {
                    keep = false;
                    refused += 1;
                    break;
                }
                _ => break,
            }
        }
        if refused > 0 {
            let transport = &crate::metrics::get().transport;
            transport.refused_by(crate::metrics::Refused::HeadBudget, refused as u64);
            shared.warnings.warn(
                Trouble::OverHeadBudget,
                "connections refused over the head budget",
                || {
                    format!(
                        "refused {refused} connection(s) holding the largest unfinished request heads: \
                         the budget of {} bytes for heads waiting for a worker is reached",
                        limits.head_budget
                    )
                },
            );
        }
        keep
    }
}

pub(super) const OVER_BUDGET: &str = "too many request bytes buffered, retry later";

impl Table {
    /// Evicts (closes quietly) one held connection for each newcomer in
    /// `incoming` admitted over the total cap, as [`eviction::pick`]
    /// chooses; returns how many were evicted. Scans the table only when
    /// such newcomers are there.
    pub(super) fn make_room(
        &mut self,
        incoming: &[(Conn, Arrival)],
        shared: &Shared,
        epoll: &Epoll,
    ) -> usize {
        let want = incoming.iter().filter(|(c, _)| c.slot.needs_room()).count();
        if want == 0 {
            return 0;
        }
        let candidates: Vec<Candidate> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(index, s)| {
                // A body being sent is mid-response: never evicted.
                s.as_ref()
                    .filter(|w| w.sending.is_none())
                    .map(|w| Candidate {
                        index,
                        ip: w.conn.remote.ip().to_canonical(),
                        since: w.since,
                    })
            })
            .collect();
        let chosen = shared
            .admission
            .with_counts(|open| eviction::pick(candidates, want, open));
        for &i in &chosen {
            if let Some(w) = self.slots[i].take() {
                // Dropped: the socket closes, its slot is given back.
                self.release(i, &w, epoll);
            }
        }
        if chosen.len() < want {
            let cap = shared.cfg.max_connections;
            shared.warnings.warn(
                Trouble::OverTotalCap,
                &format!("connections refused over the cap of {cap} open connections"),
                || {
                    format!(
                        "refused {} connection(s): the cap of {cap} open connections is reached \
                         and no idle connection is left to evict",
                        want - chosen.len()
                    )
                },
            );
        }
        log::debug!(
            "evicted {} waiting connection(s) at the total cap",
            chosen.len()
        );
        chosen.len()
    }
}

/// One best-effort, non-blocking 503 (in the handler's words), then close;
/// a TLS connection whose session has not started is only closed.
pub(super) fn refuse(shared: &Shared, conn: Conn, why: &str) {
    if conn.tls_pending {
        return;
    }
    let mut resp = shared.handler.rejection(503, why);
    resp.status = 503;
    resp.headers.push(("Retry-After".into(), "1".into()));
    let bytes = super::response::encode_small(resp);
    let mut io = conn.io;
    match &mut io.stream {
        Stream::Plain(s) => {
            // The socket may be in blocking mode (plain ones keep theirs).
            let _ = super::sys::send_dontwait(s.as_raw_fd(), &bytes);
        }
        Stream::Tls(t) => {
            if !t.conn.is_handshaking() {
                let _ = t.conn.writer().write_all(&bytes);
                t.conn.send_close_notify();
            }
            let _ = t.conn.write_tls(&mut t.sock);
        }
    }
    let _ = io.tcp().shutdown(std::net::Shutdown::Write);
}

/// Answers 503 (the handler's words) without ever blocking the acceptor:
/// one non-blocking write, then close. On a TLS port it only closes (no
/// handshake on the acceptor, and never plaintext to a TLS client).
pub(super) fn refuse_busy(shared: &Shared, sock: TcpStream) {
    if shared.tls.is_some() || sock.set_nonblocking(true).is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    for _ in 0..4 {
        match (&sock).read(&mut scratch) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let mut resp = shared
        .handler
        .rejection(503, "too many connections, retry later");
    resp.status = 503;
    if !resp
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
    {
        resp.headers.push(("Retry-After".into(), "1".into()));
    }
    let _ = (&sock).write_all(&super::response::encode_small(resp));
    let _ = sock.shutdown(Shutdown::Write);
}
