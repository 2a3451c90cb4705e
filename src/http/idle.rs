//! The idle poller: one thread that watches connections waiting for their
//! next request (new connections and keep-alive ones) with `poll(2)`, hands
//! readable ones to the workers and closes those idle too long.
//!
//! It must never read or write request data and never block on one client.

use super::conn::Conn;
use super::server::{lock, Shared};
use super::sys::poll;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest single wait, so the thread notices shutdown even without a wake-up.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// True when `fd` has bytes (or EOF/error) to read within `timeout_ms`.
pub(crate) fn readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    matches!(poll(&mut p, timeout_ms), Ok(n) if n > 0)
}

/// Connections handed to the poller, and the socket that wakes it.
pub(crate) struct IdleInbox {
    inbox: Mutex<Vec<(Conn, Instant)>>,
    wake_tx: UnixStream,
}

pub(crate) struct IdleWaker {
    wake_rx: UnixStream,
}

pub(crate) fn channel() -> io::Result<(IdleInbox, IdleWaker)> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((
        IdleInbox {
            inbox: Mutex::new(Vec::new()),
            wake_tx: tx,
        },
        IdleWaker { wake_rx: rx },
    ))
}

impl IdleInbox {
    /// Parks `conn` until it is readable or `deadline` passes.
    pub(crate) fn park(&self, conn: Conn, deadline: Instant) {
        lock(&self.inbox).push((conn, deadline));
        self.wake();
    }

    pub(crate) fn wake(&self) {
        // A full pipe already means "wake up": ignore WouldBlock.
        let _ = (&self.wake_tx).write(&[1]);
    }

    fn take(&self) -> Vec<(Conn, Instant)> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    pub(crate) fn clear(&self) {
        drop(self.take());
    }
}

/// The poller thread's loop.
pub(crate) fn run(shared: &Shared, waker: IdleWaker) {
    let mut idle: Vec<(Conn, Instant)> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut scratch = [0u8; 256];
    loop {
        if shared.stopping() {
            break;
        }
        idle.extend(shared.idle.take());
        let now = Instant::now();
        let before = idle.len();
        idle.retain(|(_, deadline)| *deadline > now);
        if idle.len() != before {
            log::debug!("closed {} idle connection(s)", before - idle.len());
        }
        let wait = idle
            .iter()
            .map(|(_, d)| d.saturating_duration_since(now))
            .min()
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT);
        fds.clear();
        fds.push(libc::pollfd {
            fd: waker.wake_rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        fds.extend(idle.iter().map(|(c, _)| libc::pollfd {
            fd: c.io.fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) => {
                log::warn!("idle poller: poll failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        if fds[0].revents != 0 {
            while matches!((&waker.wake_rx).read(&mut scratch), Ok(n) if n > 0) {}
        }
        let mut ready = Vec::new();
        // Walk backwards so swap_remove keeps the indices of unvisited entries valid.
        for i in (0..idle.len()).rev() {
            let ev = fds[i + 1].revents;
            if ev == 0 {
                continue;
            }
            let (conn, _) = idle.swap_remove(i);
            if ev & libc::POLLIN != 0 {
                ready.push(conn);
            }
            // POLLHUP/POLLERR/POLLNVAL without data: the connection is gone.
        }
        if !ready.is_empty() {
            shared.push_ready(ready);
        }
    }
    drop(idle);
    shared.idle.clear();
}
