//! The readiness loop: one thread that owns every connection a worker is not
//! serving. It completes TLS handshakes and buffers request heads without
//! blocking (level-triggered `epoll` over non-blocking sockets, so a wake-up
//! costs the number of ready connections, not of waiting ones), hands a connection to the
//! workers only once a whole request head is buffered (or bytes that can never
//! become one, which a worker rejects at once), and closes connections whose
//! head deadline or keep-alive time has passed. It keeps the bytes of heads
//! no worker holds under the head budget, refusing the connections that
//! hold the most first, and, when the total connection cap is full, evicts
//! the longest-waiting connection it holds for each newcomer (both in
//! `shedding.rs`). Answered connections that close with request bytes
//! unread come back to it to linger: their late bytes are dropped for 200 ms;
//! file bodies a stalled client had not taken come back to be sent
//! (`sending.rs`).
//!
//! It must never block on one client, never call the handler, never read past
//! the request-head limit, never extend a head deadline because bytes trickle
//! in, and never keep a read buffer for a connection that has sent nothing.

use super::conn::Conn;
use super::io::Stream;
use super::limits::Limits;
use super::response::SendRate;
use super::sending::{sent, start_sending, Deferred, Pumped, Sending};
use super::server::{lock, Shared};
use super::shedding::{charge, refuse, OVER_BUDGET};
use super::step::{plain_step, tls_step, Step};
use super::sys::Epoll;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest single wait, so the thread notices shutdown even without a wake-up.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// The loop's one read buffer, shared by every connection it holds.
const SCRATCH: usize = 16 * 1024;
/// Deadlines are enforced this late at most (the sweep's granularity).
const SWEEP_EVERY: Duration = Duration::from_millis(20);
/// Most read steps for one connection per wake-up (fairness; poll says
/// again when more is there).
pub(super) const MAX_STEPS: usize = 64;

/// How a connection comes to the loop; it decides the first deadline.
pub(crate) enum Arrival {
    /// Just accepted: handshake and head within the head timeout from now.
    Accepted,
    /// Back from a worker after a response: the keep-alive time for the next
    /// request to start, then the head timeout from its first byte.
    KeptAlive,
    /// Answered, its write side shut: what the client still sends is read
    /// and dropped for [`LINGER`] (so the answer is not lost to a reset), then closed.
    Closing,
    /// The head of a file answer is written: the loop sends the body.
    Sending(Box<Deferred>),
}

/// How long a closing connection's late bytes are read and dropped.
pub(crate) const LINGER: Duration = Duration::from_millis(200);

/// Connections handed to the loop, and the socket that wakes it.
pub(crate) struct Inbox {
    inbox: Mutex<Vec<(Conn, Arrival)>>,
    wake_tx: UnixStream,
}

pub(crate) struct Waker {
    wake_rx: UnixStream,
    epoll: Epoll,
}

/// The epoll token of the wake-up socket (connections use their slot index).
const WAKE_TOKEN: u64 = u64::MAX;
/// Events taken per wait.
const EVENTS: usize = 256;

pub(crate) fn channel() -> io::Result<(Inbox, Waker)> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    let epoll = Epoll::new()?;
    epoll.add(rx.as_raw_fd(), libc::EPOLLIN as u32, WAKE_TOKEN)?;
    Ok((
        Inbox {
            inbox: Mutex::new(Vec::new()),
            wake_tx: tx,
        },
        Waker { wake_rx: rx, epoll },
    ))
}

impl Inbox {
    /// Gives `conn` to the loop.
    pub(crate) fn hand(&self, conn: Conn, arrival: Arrival) {
        lock(&self.inbox).push((conn, arrival));
        self.wake();
    }

    pub(crate) fn wake(&self) {
        // A full pipe already means "wake up": ignore WouldBlock.
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn take(&self) -> Vec<(Conn, Arrival)> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    pub(crate) fn clear(&self) {
        drop(self.take());
    }
}

/// A connection the loop holds.
pub(super) struct Waiting {
    pub(super) conn: Conn,
    /// Closed (quietly) when this passes.
    pub(super) deadline: Instant,
    /// The head timer runs: set at accept, or at the first byte of the next
    /// request on a kept-alive connection. Set once, never pushed back.
    pub(super) timed: bool,
    /// Wait for writability too (a TLS handshake write that would block).
    pub(super) want_write: bool,
    /// When it came to the loop (the eviction order: oldest first).
    pub(super) since: Instant,
    /// Answered and closing: its reads are dropped until [`LINGER`] ends.
    pub(super) closing: bool,
    /// A file body being sent (never evicted; its deadline is the rate window).
    pub(super) sending: Option<Box<Sending>>,
}

enum Progress {
    Wait,
    /// A whole head (or hopeless bytes) is buffered: a worker's turn.
    Ready,
    Close,
}

/// The connections the loop holds, by epoll token (their slot index).
pub(super) struct Table {
    pub(super) slots: Vec<Option<Waiting>>,
    free: Vec<usize>,
    /// The earliest deadline of any held connection, or later (never earlier).
    earliest: Option<Instant>,
}

fn interest(w: &Waiting) -> u32 {
    if w.sending.is_some() {
        libc::EPOLLOUT as u32
    } else if w.want_write {
        (libc::EPOLLIN | libc::EPOLLOUT) as u32
    } else {
        libc::EPOLLIN as u32
    }
}

impl Table {
    fn note_deadline(&mut self, d: Instant) {
        self.earliest = Some(self.earliest.map_or(d, |e| e.min(d)));
    }

    /// Holds `w`, watched by `epoll`; false (and `w` dropped) when it cannot be watched.
    pub(super) fn insert(&mut self, w: Waiting, epoll: &Epoll) -> bool {
        let i = self.free.pop().unwrap_or(self.slots.len());
        if let Err(e) = epoll.add(w.conn.io.fd(), interest(&w), i as u64) {
            log::warn!("{}: cannot watch the connection: {e}", w.conn.remote);
            if i < self.slots.len() {
                self.free.push(i);
            }
            return false;
        }
        self.note_deadline(w.deadline);
        if i == self.slots.len() {
            self.slots.push(Some(w));
        } else {
            self.slots[i] = Some(w);
        }
        true
    }

    /// Stops holding slot `i` (the connection goes to a worker or is closed).
    pub(super) fn release(&mut self, i: usize, w: &Waiting, epoll: &Epoll) {
        let _ = epoll.delete(w.conn.io.fd());
        self.free.push(i);
    }

    /// Closes every connection whose deadline passed; recomputes `earliest`.
    fn sweep(&mut self, now: Instant, epoll: &Epoll, rate: &SendRate) {
        if self.earliest.is_none_or(|e| e > now) {
            return;
        }
        let mut closed = 0;
        let mut earliest: Option<Instant> = None;
        for i in 0..self.slots.len() {
            let expired = match &mut self.slots[i] {
                Some(w) if w.deadline <= now => {
                    // A body being sent: its rate window ended, not its time.
                    match w.sending.as_mut().and_then(|s| s.renew(now, rate)) {
                        Some(next) => {
                            w.deadline = next;
                            earliest = Some(earliest.map_or(next, |e| e.min(next)));
                            false
                        }
                        None => true,
                    }
                }
                Some(w) => {
                    earliest = Some(earliest.map_or(w.deadline, |e| e.min(w.deadline)));
                    false
                }
                None => false,
            };
            if expired {
                if let Some(w) = self.slots[i].take() {
                    self.release(i, &w, epoll);
                    closed += 1;
                }
            }
        }
        // Sweep at most every SWEEP_EVERY: many deadlines spread over time
        // then cost one pass per step, not one per deadline.
        self.earliest = earliest.map(|e| e.max(now + SWEEP_EVERY));
        if closed > 0 {
            log::debug!("closed {closed} connection(s) past their head or keep-alive time");
        }
    }
}

/// The loop thread.
pub(crate) fn run(shared: &Shared, waker: Waker) {
    let limits = &shared.cfg;
    let rate = super::conn::send_rate(shared);
    let epoll = &waker.epoll;
    let mut table = Table {
        slots: Vec::new(),
        free: Vec::new(),
        earliest: None,
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let mut scratch = vec![0u8; SCRATCH];
    let mut wake_buf = [0u8; 256];
    loop {
        if shared.stopping() {
            break;
        }
        shared.warnings.flush();
        let now = Instant::now();
        let mut ready = Vec::new();
        let incoming = shared.waiting.take();
        let mut room = table.make_room(&incoming, shared, epoll);
        for (mut conn, arrival) in incoming {
            if conn.slot.needs_room() {
                if room == 0 {
                    let transport = &crate::metrics::get().transport;
                    transport.refused(crate::metrics::Refused::TotalCap);
                    refuse(shared, conn, "too many connections, retry later");
                    continue;
                }
                room -= 1;
                conn.slot.room_made();
            }
            let arrival = match arrival {
                Arrival::Sending(body) => {
                    start_sending(shared, (&mut table, epoll), conn, body, &rate, now);
                    continue;
                }
                a => a,
            };
            if matches!(arrival, Arrival::Closing) {
                // Its reads are raw socket reads that never block: no mode switch.
                let w = Waiting {
                    conn,
                    deadline: now + LINGER,
                    timed: true,
                    want_write: false,
                    since: now,
                    closing: true,
                    sending: None,
                };
                if let Progress::Wait = drain(&w, &mut scratch) {
                    table.insert(w, epoll);
                }
                continue;
            }
            let switch = conn.tls_pending || conn.io.needs_mode_switch();
            let switched = if switch {
                conn.io.set_nonblocking(true)
            } else {
                Ok(())
            };
            if let Err(e) = switched {
                log::debug!("{}: set_nonblocking: {e}", conn.remote);
                continue;
            }
            let fresh = !conn.io.buffered().is_empty() || matches!(arrival, Arrival::Accepted);
            let mut w = Waiting {
                conn,
                deadline: now
                    + if fresh {
                        limits.head_timeout
                    } else {
                        limits.keepalive_timeout
                    },
                timed: fresh,
                want_write: false,
                since: now,
                closing: false,
                sending: None,
            };
            // Bytes may already sit in the socket or inside rustls: look now
            // (a TLS connection that has not spoken has nothing to look at).
            let progress = if w.conn.tls_pending {
                Progress::Wait
            } else if w
                .conn
                .io
                .head_ready(limits.max_head_bytes, limits.max_headers)
            {
                // The acceptor read a whole head but the budget was over:
                // the Ready arm below decides whether it may queue.
                Progress::Ready
            } else {
                advance(&mut w, limits, &mut scratch, now)
            };
            match progress {
                Progress::Wait => {
                    let over = charge(&mut w.conn, limits);
                    if table.insert(w, epoll) && over {
                        table.enforce_budget(shared, epoll, None);
                    }
                }
                Progress::Ready => {
                    if !charge(&mut w.conn, limits) || table.enforce_budget(shared, epoll, Some(&w))
                    {
                        ready.push(w.conn);
                    } else {
                        refuse(shared, w.conn, OVER_BUDGET);
                    }
                }
                Progress::Close => {}
            }
        }
        table.sweep(now, epoll, &rate);
        hand_over(shared, ready);
        let held = table.slots.len() - table.free.len();
        crate::metrics::get().transport.in_loop.set(held as i64);

        let wait = table
            .earliest
            .map_or(MAX_WAIT, |e| e.saturating_duration_since(now))
            .min(MAX_WAIT);
        // Round up so a deadline just short of a millisecond is not a busy loop.
        let ms = i32::try_from(wait.as_millis() + 1).unwrap_or(i32::MAX);
        let n = match epoll.wait(&mut events, ms) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("readiness loop: epoll_wait failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let now = Instant::now();
        let mut ready = Vec::new();
        for ev in &events[..n] {
            let token = ev.u64;
            if token == WAKE_TOKEN {
                while matches!((&waker.wake_rx).read(&mut wake_buf), Ok(n) if n > 0) {}
                continue;
            }
            let i = token as usize;
            let Some(mut w) = table.slots.get_mut(i).and_then(Option::take) else {
                continue;
            };
            if let Some(s) = w.sending.as_mut() {
                match s.pump(&mut w.conn.io) {
                    Pumped::Wait => table.slots[i] = Some(w),
                    Pumped::Done => {
                        table.release(i, &w, epoll);
                        sent(shared, w);
                    }
                    Pumped::Failed => table.release(i, &w, epoll),
                }
                continue;
            }
            if w.closing {
                match drain(&w, &mut scratch) {
                    Progress::Wait => table.slots[i] = Some(w),
                    _ => table.release(i, &w, epoll),
                }
                continue;
            }
            if w.conn.tls_pending {
                let fd = w.conn.io.fd();
                match start_tls(w, shared) {
                    Some(started) => w = started,
                    None => {
                        let _ = epoll.delete(fd);
                        table.free.push(i);
                        continue;
                    }
                }
            }
            let watched = interest(&w);
            match advance(&mut w, limits, &mut scratch, now) {
                Progress::Wait => {
                    if interest(&w) != watched {
                        let _ = epoll.modify(w.conn.io.fd(), interest(&w), token);
                    }
                    let over = charge(&mut w.conn, limits);
                    table.note_deadline(w.deadline);
                    table.slots[i] = Some(w);
                    if over {
                        table.enforce_budget(shared, epoll, None);
                    }
                }
                Progress::Ready => {
                    table.release(i, &w, epoll);
                    if !charge(&mut w.conn, limits) || table.enforce_budget(shared, epoll, Some(&w))
                    {
                        ready.push(w.conn);
                    } else {
                        refuse(shared, w.conn, OVER_BUDGET);
                    }
                }
                Progress::Close => table.release(i, &w, epoll),
            }
        }
        hand_over(shared, ready);
    }
    drop(table);
    shared.waiting.clear();
}

/// Starts the TLS session of a connection that has sent its first bytes.
fn start_tls(w: Waiting, shared: &Shared) -> Option<Waiting> {
    let cfg = shared.tls.as_ref()?;
    let Waiting {
        conn,
        deadline,
        timed,
        want_write,
        since,
        closing,
        sending,
    } = w;
    let Conn {
        io,
        remote,
        tls_pending: _,
        slot,
        charge,
    } = conn;
    match io.into_tls(cfg) {
        Ok(io) => Some(Waiting {
            conn: Conn {
                io,
                remote,
                tls_pending: false,
                slot,
                charge,
            },
            deadline,
            timed,
            want_write,
            since,
            closing,
            sending,
        }),
        Err(e) => {
            log::warn!("{remote}: TLS session setup failed: {e}");
            None
        }
    }
}

/// Back to blocking mode (workers use socket timeouts), then to the workers.
fn hand_over(shared: &Shared, conns: Vec<Conn>) {
    let conns: Vec<Conn> = conns
        .into_iter()
        .filter(|c| !c.io.needs_mode_switch() || c.io.set_nonblocking(false).is_ok())
        .collect();
    if !conns.is_empty() {
        shared.push_ready(conns);
    }
}

/// Reads and drops what a closing connection's client still sends, without
/// blocking: Close at its end of stream or an error, else Wait.
fn drain(w: &Waiting, scratch: &mut [u8]) -> Progress {
    for _ in 0..MAX_STEPS {
        match super::sys::recv_dontwait(w.conn.io.fd(), scratch) {
            Ok(0) => return Progress::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Wait,
            Err(_) => return Progress::Close,
        }
    }
    Progress::Wait
}

/// Reads what the connection has without blocking, until a whole head is
/// buffered, the client has nothing more for now, or it is gone.
fn advance(w: &mut Waiting, limits: &Limits, scratch: &mut [u8], now: Instant) -> Progress {
    w.want_write = false;
    for _ in 0..MAX_STEPS {
        let io = &mut w.conn.io;
        let have = io.buffered().len();
        let room = limits
            .max_head_bytes
            .saturating_sub(have)
            .min(scratch.len());
        if room == 0 {
            return Progress::Ready;
        }
        let out = &mut scratch[..room];
        let mut got_bytes = false;
        let step = match &mut io.stream {
            Stream::Plain(s) => plain_step(s, out),
            Stream::Tls(t) => tls_step(t, out, &mut got_bytes),
        };
        if (got_bytes || matches!(step, Step::Bytes(_))) && !w.timed {
            // The next request started: from now on the head timeout counts.
            w.timed = true;
            w.deadline = now + limits.head_timeout;
        }
        match step {
            Step::Bytes(n) => {
                let fresh = &out[..n];
                io.append(fresh, limits.max_head_bytes);
                // A head can only complete with a line end; small buffers are
                // parsed anyway so garbage is rejected without waiting.
                let worth_parsing = have + n <= 1024 || fresh.contains(&b'\n');
                if worth_parsing && io.head_ready(limits.max_head_bytes, limits.max_headers) {
                    return Progress::Ready;
                }
            }
            // A truncated head gets its 400 from a worker; nothing sent: just close.
            Step::Eof if have > 0 => return Progress::Ready,
            Step::Eof | Step::Failed => return Progress::Close,
            Step::Blocked { want_write } => {
                w.want_write = want_write;
                return Progress::Wait;
            }
        }
    }
    Progress::Wait
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ARCHITECTURE.md states a waiting connection costs (plus its
    /// buffered bytes, plus rustls' state once a TLS client has spoken).
    #[test]
    fn a_waiting_connection_is_small() {
        let bytes = std::mem::size_of::<Option<Waiting>>() + std::mem::size_of::<usize>();
        // 232 bytes on x86_64 today (the table slot and its free-list entry).
        eprintln!("a waiting connection: {bytes} bytes of loop state");
        assert!(bytes <= 256, "{bytes} bytes");
    }
}
