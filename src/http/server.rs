//! The server: listening sockets, acceptor threads, the connection caps at
//! accept, the open-file limit, the worker pool, the ready queue (with each
//! client address's share of the workers) and shutdown.
//!
//! It must never spawn a thread per request or connection, never let an accept
//! error stop serving, never block an acceptor on a client, and never block
//! shutdown on an idle client.

use super::admission::{Admission, HeadCharge, Refusal, Sends, Trouble, Warnings};
use super::conn::{self, Conn, Next};
use super::io::{ConnIo, Stream};
use super::limits::{Limits, DEFAULT_WORKERS};
use super::readiness::{self, Arrival, Inbox};
use super::{sys, Handler};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Worker threads started up front; more start when all are busy.
const INITIAL_WORKERS: usize = 4;

/// How long shutdown lets workers finish their current request before it
/// shuts their sockets down under them.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1000);

/// Descriptors kept free of connections: listeners, the wake-up pair, SQLite,
/// blob files being read or written (a few per worker), logs.
const RESERVED_FDS: usize = 64;
const FDS_PER_WORKER: usize = 4;

pub struct ServerConfig {
    pub listeners: Vec<TcpListener>,
    /// Worker threads at most (started on demand).
    pub workers: usize,
    pub limits: Limits,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ServerConfig {
    /// The default limits ([`Limits::default`]), [`DEFAULT_WORKERS`], no TLS.
    pub fn new(listeners: Vec<TcpListener>) -> ServerConfig {
        ServerConfig {
            listeners,
            workers: DEFAULT_WORKERS,
            limits: Limits::default(),
            tls: None,
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Connections with a whole head buffered, waiting for a worker, and how
/// many requests each client address has in workers now.
#[derive(Default)]
struct ReadyQueue {
    queue: VecDeque<(Conn, Instant)>,
    busy: HashMap<IpAddr, usize>,
}

/// A connection a worker took from the ready queue.
enum Taken {
    Serve(Conn),
    /// It waited past the queue timeout: answer 503.
    Expired(Conn),
}

pub(crate) struct Shared {
    pub(crate) cfg: Limits,
    pub(crate) handler: Arc<dyn Handler>,
    /// The TLS configuration; the readiness loop starts each session when
    /// the connection's first bytes arrive.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    stop: AtomicBool,
    pub(crate) admission: Arc<Admission>,
    /// Connections whose file body the readiness loop sends, and their cap.
    pub(crate) sends: Arc<Sends>,
    pub(crate) warnings: Warnings,
    next_id: AtomicU64,
    /// Bytes buffered in request heads no worker holds (the head budget).
    pub(crate) head_bytes: Arc<AtomicUsize>,
    ready: Mutex<ReadyQueue>,
    ready_cv: Condvar,
    /// Connections the readiness loop holds (handshake, head, keep-alive).
    pub(crate) waiting: Inbox,
    /// A clone of the socket each worker is serving, so shutdown can cut it.
    active: Vec<Mutex<Option<TcpStream>>>,
    /// The worker threads started so far; the pool grows on demand up to
    /// `active.len()` and never shrinks (idle threads cost a few KiB each).
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Workers waiting for a connection.
    idle_workers: AtomicUsize,
    me: std::sync::Weak<Shared>,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn others_waiting(&self) -> bool {
        !lock(&self.ready).queue.is_empty()
    }

    /// A new charge against the head budget.
    pub(crate) fn head_charge(&self) -> HeadCharge {
        HeadCharge::new(self.head_bytes.clone())
    }

    pub(crate) fn push_ready(&self, conns: Vec<Conn>) {
        let n = conns.len();
        let queued = {
            let mut q = lock(&self.ready);
            let now = Instant::now();
            q.queue.extend(conns.into_iter().map(|c| (c, now)));
            q.queue.len()
        };
        let idle = self.idle_workers.load(Ordering::Acquire);
        for _ in idle..queued {
            if !self.grow() {
                break;
            }
        }
        if n == 1 {
            self.ready_cv.notify_one();
        } else {
            self.ready_cv.notify_all();
        }
    }

    /// Start one more worker when every started one is busy and the limit allows.
    /// False when no worker was started (limit reached, stopping, or error).
    fn grow(&self) -> bool {
        if self.stopping() {
            return false;
        }
        let mut workers = lock(&self.workers);
        let idx = workers.len();
        if idx >= self.active.len() {
            return false;
        }
        let Some(me) = self.me.upgrade() else {
            return false;
        };
        match spawn(format!("http-worker-{idx}"), move || worker(&me, idx)) {
            Ok(h) => {
                workers.push(h);
                crate::metrics::get().transport.workers_started.inc();
                true
            }
            Err(e) => {
                log::warn!("cannot start another worker thread: {e}");
                false
            }
        }
    }

    /// The oldest ready connection whose address is under its share of the
    /// workers (or that waited past the queue timeout); counted as busy.
    fn next_ready(&self) -> Option<Taken> {
        let share = self.cfg.max_workers_per_ip;
        let mut q = lock(&self.ready);
        loop {
            if self.stopping() {
                return None;
            }
            let now = Instant::now();
            let ReadyQueue { queue, busy } = &mut *q;
            let pick = queue.iter().position(|(c, since)| {
                busy.get(&c.remote.ip().to_canonical())
                    .copied()
                    .unwrap_or(0)
                    < share
                    || now.duration_since(*since) >= self.cfg.queue_timeout
            });
            if let Some((mut c, since)) = pick.and_then(|i| queue.remove(i)) {
                *busy.entry(c.remote.ip().to_canonical()).or_insert(0) += 1;
                // The worker holds its head now: it leaves the head budget.
                c.charge.set(0);
                let waited = now.duration_since(since);
                let over = busy
                    .get(&c.remote.ip().to_canonical())
                    .copied()
                    .unwrap_or(0)
                    > share;
                return Some(if over && waited >= self.cfg.queue_timeout {
                    Taken::Expired(c)
                } else {
                    Taken::Serve(c)
                });
            }
            self.idle_workers.fetch_add(1, Ordering::AcqRel);
            // Skipped connections may pass the queue timeout with no event.
            let wait = if queue.is_empty() {
                Duration::from_secs(3600)
            } else {
                self.cfg.queue_timeout.max(Duration::from_millis(10))
            };
            q = self
                .ready_cv
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            self.idle_workers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// A worker is done with a request of `ip`: its address's share frees,
    /// and a connection of it the queue skipped may now be served.
    fn finished(&self, ip: IpAddr) {
        let ip = ip.to_canonical();
        let mut q = lock(&self.ready);
        if let Some(n) = q.busy.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                q.busy.remove(&ip);
            }
        }
        let skipped = q
            .queue
            .iter()
            .any(|(c, _)| c.remote.ip().to_canonical() == ip);
        drop(q);
        if skipped {
            self.ready_cv.notify_one();
        }
    }
}

/// A running server. Dropping it shuts it down too.
pub struct Server {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    listeners: Vec<Arc<TcpListener>>,
    acceptors: Vec<JoinHandle<()>>,
    poller: Option<JoinHandle<()>>,
}

/// Binds a listening socket: SO_REUSEADDR, IPV6_V6ONLY for IPv6 addresses (so
/// `0.0.0.0:p` and `[::]:p` can both be bound), backlog 1024.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

impl Server {
    pub fn start(cfg: ServerConfig, handler: Arc<dyn Handler>) -> io::Result<Server> {
        let addrs = cfg
            .listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<Vec<_>, _>>()?;
        let workers = cfg.workers.max(1);
        let mut limits = cfg.limits.sane();
        let (connections, sends) = fit_open_file_limit(limits.max_connections, workers);
        limits.max_connections = connections;
        let (inbox, waker) = readiness::channel()?;
        let shared = Arc::new_cyclic(|me| Shared {
            admission: Admission::new(limits.max_connections, limits.max_connections_per_ip),
            sends: Sends::new(sends),
            cfg: limits,
            handler,
            tls: cfg.tls,
            stop: AtomicBool::new(false),
            warnings: Warnings::new(),
            next_id: AtomicU64::new(1),
            head_bytes: Arc::new(AtomicUsize::new(0)),
            ready: Mutex::new(ReadyQueue::default()),
            ready_cv: Condvar::new(),
            waiting: inbox,
            active: (0..workers).map(|_| Mutex::new(None)).collect(),
            workers: Mutex::new(Vec::new()),
            idle_workers: AtomicUsize::new(0),
            me: me.clone(),
        });
        let listeners: Vec<Arc<TcpListener>> = cfg.listeners.into_iter().map(Arc::new).collect();
        let mut server = Server {
            addrs,
            shared: shared.clone(),
            listeners: listeners.clone(),
            acceptors: Vec::new(),
            poller: None,
        };
        // On a spawn error `server` is dropped, which stops what was started.
        let s = shared.clone();
        server.poller = Some(spawn("http-ready".into(), move || {
            readiness::run(&s, waker)
        })?);
        for _ in 0..workers.min(INITIAL_WORKERS) {
            shared.grow();
        }
        for (i, l) in listeners.into_iter().enumerate() {
            let s = shared.clone();
            server
                .acceptors
                .push(spawn(format!("http-accept-{i}"), move || {
                    accept_loop(&s, &l)
                })?);
        }
        Ok(server)
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting, lets workers finish their current request (up to a
    /// short grace period), closes every connection and joins every thread.
    pub fn shutdown(self) {
        drop(self)
    }

    fn stop(&mut self) {
        let shared = &self.shared;
        shared.stop.store(true, Ordering::Release);
        // Wake the acceptors: shutdown(2) on a listening socket makes a blocked
        // accept fail on Linux; a connection to ourselves covers the rest.
        for l in &self.listeners {
            let _ = SockRef::from(&**l).shutdown(Shutdown::Read);
        }
        for addr in &self.addrs {
            let mut a = *addr;
            if a.ip().is_unspecified() {
                a.set_ip(match a {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&a, Duration::from_millis(100));
        }
        shared.waiting.wake();
        {
            let _q = lock(&shared.ready);
            shared.ready_cv.notify_all();
        }
        for h in self.acceptors.drain(..) {
            let _ = h.join();
        }
        if let Some(h) = self.poller.take() {
            let _ = h.join();
        }
        // Grace period for requests in progress, then cut their sockets.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while Instant::now() < deadline && lock(&shared.workers).iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for slot in &shared.active {
            if let Some(s) = lock(slot).as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let workers: Vec<JoinHandle<()>> = lock(&shared.workers).drain(..).collect();
        for h in workers {
            let _ = h.join();
        }
        lock(&shared.ready).queue.clear();
        shared.waiting.clear();
        self.listeners.clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(shared: &Shared, idx: usize) {
    while let Some(taken) = shared.next_ready() {
        let conn = match taken {
            Taken::Serve(c) => c,
            Taken::Expired(c) => {
                let ip = c.remote.ip();
                shared
                    .warnings
                    .warn(Trouble::QueueTimeout, "requests refused after waiting for a worker", || {
                        format!(
                            "{}: refused a request that waited {} s for a worker ({} has its share of {} busy)",
                            c.remote,
                            shared.cfg.queue_timeout.as_secs(),
                            ip,
                            shared.cfg.max_workers_per_ip
                        )
                    });
                crate::metrics::get()
                    .transport
                    .refused(crate::metrics::Refused::QueueTimeout);
                conn::refuse(shared, c, 503, "server busy, retry later");
                shared.finished(ip);
                continue;
            }
        };
        let ip = conn.remote.ip();
        *lock(&shared.active[idx]) = conn.io.tcp().try_clone().ok();
        if shared.stopping() {
            // Shutdown began after this connection was taken: do not start on it.
            *lock(&shared.active[idx]) = None;
            shared.finished(ip);
            continue;
        }
        let busy = crate::metrics::InProgress::of(&crate::metrics::get().transport.workers_busy);
        let next = conn::serve(shared, conn);
        drop(busy);
        *lock(&shared.active[idx]) = None;
        shared.finished(ip);
        match next {
            Next::Close => {}
            Next::Idle(c) => {
                if !shared.stopping() {
                    shared.waiting.hand(c, Arrival::KeptAlive);
                }
            }
            Next::Send(c, body) if !shared.stopping() => {
                shared.waiting.hand(c, Arrival::Sending(body));
            }
            Next::Send(..) => {}
            Next::Ready(mut c) => {
                c.charge.set(c.io.held_bytes());
                if !shared.stopping() {
                    shared.push_ready(vec![c]);
                }
            }
        }
    }
}

fn accept_loop(shared: &Shared, listener: &TcpListener) {
    loop {
        if shared.stopping() {
            return;
        }
        match listener.accept() {
            Ok((sock, remote)) => {
                if shared.stopping() {
                    return;
                }
                admit(shared, sock, remote);
            }
            Err(e) => {
                if shared.stopping() {
                    return;
                }
                match e.kind() {
                    io::ErrorKind::Interrupted
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset => {}
                    _ => {
                        // EMFILE, ENFILE, ENOBUFS, ENOMEM...: wait and keep serving.
                        shared
                            .warnings
                            .warn(Trouble::AcceptFailed, "accept failures", || {
                                format!("accept failed: {e}")
                            });
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }
}

/// Lowers `max_connections` when the open-file limit (raised toward its hard
/// limit first) cannot hold them next to what the rest of soute needs; the
/// headroom left (up to a quarter of the connections) is the cap of
/// connections whose file body the loop sends. Returns both.
fn fit_open_file_limit(max_connections: usize, workers: usize) -> (usize, usize) {
    let reserve = RESERVED_FDS + FDS_PER_WORKER * workers;
    let sends = max_connections / 4;
    let want = (max_connections + reserve + sends) as u64;
    match sys::raise_open_file_limit(want) {
        Ok(soft) if soft as usize >= max_connections + reserve => {
            let sends = sends.min(soft as usize - max_connections - reserve);
            log::debug!("open-file limit {soft}: room for {max_connections} connections, {sends} sending files");
            (max_connections, sends)
        }
        Ok(soft) => {
            let cap = (soft as usize).saturating_sub(reserve).max(16);
            let cap = cap.min(max_connections);
            log::warn!(
                "the open-file limit is {soft} (hard limit reached): serving at most {cap} \
                 connections instead of {max_connections}; raise `ulimit -n` (or LimitNOFILE=) for more"
            );
            (cap, 0)
        }
        Err(e) => {
            log::warn!(
                "cannot read the open-file limit ({e}); keeping {max_connections} connections"
            );
            (max_connections, 0)
        }
    }
}

/// Counts the connection against the caps and, unless a whole plain head is
/// already readable, gives it to the readiness loop (which does the TLS
/// handshake and waits for the head). Never blocks.
fn admit(shared: &Shared, sock: TcpStream, remote: SocketAddr) {
    let transport = &crate::metrics::get().transport;
    transport.accepted.inc();
    let slot = match shared.admission.admit(remote.ip()) {
        Ok(slot) => slot,
        Err(why) => {
            transport.refused(match why {
                Refusal::Total => crate::metrics::Refused::TotalCap,
                Refusal::PerAddress => crate::metrics::Refused::AddressCap,
            });
            let (kind, summary, line) = match why {
                Refusal::Total => {
                    let cap = shared.admission.max_total();
                    (
                        Trouble::OverTotalCap,
                        format!("connections refused over the cap of {cap} open connections"),
                        format!("{remote}: refused a connection: the cap of {cap} open connections is reached"),
                    )
                }
                Refusal::PerAddress => {
                    let cap = shared.admission.max_per_ip();
                    (
                        Trouble::OverAddressCap,
                        format!("connections refused over the per-address cap of {cap}"),
                        format!(
                            "{remote}: refused a connection: {} has the per-address cap of {cap} open",
                            remote.ip()
                        ),
                    )
                }
            };
            shared.warnings.warn(kind, &summary, || line);
            super::shedding::refuse_busy(shared, sock);
            return;
        }
    };
    let _ = sock.set_nodelay(true);
    // At most one send-rate window, so blocked writes come back to be checked.
    if let Err(e) = sock.set_write_timeout(Some(conn::send_rate(shared).socket_timeout())) {
        log::debug!("{remote}: set_write_timeout: {e}");
        return;
    }
    let mut conn = Conn {
        io: ConnIo::new(Stream::Plain(sock)),
        remote,
        tls_pending: shared.tls.is_some(),
        slot,
        charge: shared.head_charge(),
    };
    // Over the total cap, the loop evicts an idle connection first.
    if !conn.tls_pending && !conn.slot.needs_room() {
        // Most clients send the head with the connection: one read that
        // never blocks, and a whole head goes straight to the workers (no
        // loop wake-up, no epoll registration, no mode switch).
        let mut scratch = [0u8; super::io::READ_BUF];
        let limits = &shared.cfg;
        match conn.io.append_dontwait(&mut scratch, limits.max_head_bytes) {
            Ok(0) => return,
            Ok(_)
                if conn
                    .io
                    .head_ready(limits.max_head_bytes, limits.max_headers) =>
            {
                let held = conn.io.held_bytes();
                // Over the head budget, the loop decides whom to refuse.
                if conn.charge.set(held) <= limits.head_budget {
                    shared.push_ready(vec![conn]);
                    return;
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    shared.waiting.hand(conn, Arrival::Accepted);
}
