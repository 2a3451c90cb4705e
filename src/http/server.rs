//! The server: listening sockets, acceptor threads, the connection limit, the
//! fixed worker pool, the ready queue and shutdown.
//!
//! It must never spawn a thread per request or connection, never let an accept
//! error stop serving, and never block shutdown on an idle client.

use super::conn::{self, Conn, ConnIo, Next, OpenGuard, Stream};
use super::idle::{self, IdleInbox};
use super::Handler;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Worker threads started up front; more start when all are busy.
const INITIAL_WORKERS: usize = 4;

/// How long shutdown lets workers finish their current request before it
/// shuts their sockets down under them.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1000);

pub struct ServerConfig {
    pub listeners: Vec<TcpListener>,
    pub workers: usize,
    pub max_connections: usize,
    /// Time allowed for the TLS handshake plus a whole request head.
    pub head_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Longest a response write may make no progress.
    pub write_timeout: Duration,
    /// Longest a connection may wait idle for its next request.
    pub keepalive_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Headers added to the answers the server makes itself (rejections,
    /// panics), so they look like the handler's (e.g. an API version header).
    pub extra_headers: Vec<(String, String)>,
}

impl ServerConfig {
    /// A configuration with the default limits: up to 64 workers (4 started
    /// up front, more as needed), 512 connections,
    /// head 10 s, body idle 30 s, write idle 30 s, keep-alive 15 s, 64 KiB
    /// heads of at most 100 header fields, no TLS.
    pub fn new(listeners: Vec<TcpListener>) -> ServerConfig {
        ServerConfig {
            listeners,
            workers: 64,
            max_connections: 512,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(15),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            tls: None,
            extra_headers: Vec::new(),
        }
    }
}

/// The limits the connection code reads (the config without sockets and TLS).
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) head_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) max_head_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) extra_headers: Vec<(String, String)>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Shared {
    pub(crate) cfg: Limits,
    pub(crate) handler: Arc<dyn Handler>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: AtomicBool,
    open: Arc<AtomicUsize>,
    next_id: AtomicU64,
    ready: Mutex<VecDeque<Conn>>,
    ready_cv: Condvar,
    pub(crate) idle: IdleInbox,
    /// A clone of the socket each worker is serving, so shutdown can cut it.
    active: Vec<Mutex<Option<TcpStream>>>,
    /// The worker threads started so far; the pool grows on demand up to
    /// `active.len()` and never shrinks (idle threads cost a few KiB each).
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Workers waiting for a connection.
    waiting: AtomicUsize,
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
        !lock(&self.ready).is_empty()
    }

    pub(crate) fn push_ready(&self, conns: Vec<Conn>) {
        let n = conns.len();
        let queued = {
            let mut q = lock(&self.ready);
            q.extend(conns);
            q.len()
        };
        let waiting = self.waiting.load(Ordering::Acquire);
        for _ in waiting..queued {
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
                true
            }
            Err(e) => {
                log::warn!("cannot start another worker thread: {e}");
                false
            }
        }
    }

    fn next_ready(&self) -> Option<Conn> {
        let mut q = lock(&self.ready);
        loop {
            if self.stopping() {
                return None;
            }
            if let Some(c) = q.pop_front() {
                return Some(c);
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            q = self.ready_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            self.waiting.fetch_sub(1, Ordering::AcqRel);
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
        let (inbox, waker) = idle::channel()?;
        let shared = Arc::new_cyclic(|me| Shared {
            cfg: Limits {
                max_connections: cfg.max_connections.max(1),
                head_timeout: cfg.head_timeout,
                body_timeout: cfg.body_timeout,
                write_timeout: cfg.write_timeout,
                keepalive_timeout: cfg.keepalive_timeout,
                max_head_bytes: cfg.max_head_bytes.max(256),
                max_headers: cfg.max_headers.max(1),
                extra_headers: cfg.extra_headers,
            },
            handler,
            tls: cfg.tls,
            stop: AtomicBool::new(false),
            open: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
            ready: Mutex::new(VecDeque::new()),
            ready_cv: Condvar::new(),
            idle: inbox,
            active: (0..workers).map(|_| Mutex::new(None)).collect(),
            workers: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
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
        server.poller = Some(spawn("http-idle".into(), move || idle::run(&s, waker))?);
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
        shared.idle.wake();
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
        lock(&shared.ready).clear();
        shared.idle.clear();
        self.listeners.clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(shared: &Shared, idx: usize) {
    while let Some(conn) = shared.next_ready() {
        *lock(&shared.active[idx]) = conn.io.tcp().try_clone().ok();
        if shared.stopping() {
            // Shutdown began after this connection was taken: do not start on it.
            *lock(&shared.active[idx]) = None;
            continue;
        }
        let next = conn::serve(shared, conn);
        *lock(&shared.active[idx]) = None;
        match next {
            Next::Close => {}
            Next::Idle(c) => {
                if !shared.stopping() {
                    shared
                        .idle
                        .park(c, Instant::now() + shared.cfg.keepalive_timeout);
                }
            }
            Next::Ready(c) => {
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
                        log::warn!("accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        }
    }
}

fn admit(shared: &Shared, sock: TcpStream, remote: SocketAddr) {
    let prev = shared.open.fetch_add(1, Ordering::AcqRel);
    let guard = OpenGuard(shared.open.clone());
    if prev >= shared.cfg.max_connections {
        drop(guard);
        log::warn!("{remote}: too many open connections ({prev}), answering 503");
        refuse_busy(sock);
        return;
    }
    let _ = sock.set_nodelay(true);
    if let Err(e) =
        sock.set_write_timeout(Some(shared.cfg.write_timeout.max(Duration::from_millis(1))))
    {
        log::debug!("{remote}: set_write_timeout: {e}");
        return;
    }
    let stream = match &shared.tls {
        None => Stream::Plain(sock),
        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
            Ok(tls) => Stream::Tls(Box::new(rustls::StreamOwned::new(tls, sock))),
            Err(e) => {
                log::warn!("{remote}: TLS session setup failed: {e}");
                return;
            }
        },
    };
    let conn = Conn {
        io: ConnIo::new(stream),
        remote,
        handshaken: false,
        _open: guard,
    };
    shared
        .idle
        .park(conn, Instant::now() + shared.cfg.head_timeout);
}

/// Answers 503 without ever blocking the acceptor (plain text, also on a TLS
/// port: a TLS client just sees the connection fail).
fn refuse_busy(sock: TcpStream) {
    if sock.set_nonblocking(true).is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    for _ in 0..4 {
        match (&sock).read(&mut scratch) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let body = "server busy, retry later\n";
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nDate: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        super::response::http_date(std::time::SystemTime::now()),
        body.len()
    );
    let _ = (&sock).write_all(resp.as_bytes());
    let _ = sock.shutdown(Shutdown::Write);
}
