//! The system calls the HTTP layer needs that std does not expose: `epoll`
//! (the readiness loop's wait set), `poll(2)` (is one socket readable now?),
//! `recv(MSG_DONTWAIT)` (one read that never blocks, whatever the socket's
//! mode) and `getrlimit`/`setrlimit` for the open-file limit.
//!
//! This is the only place with `unsafe` in the HTTP layer: small functions
//! over borrowed descriptors and plain structs. It must never own or close a
//! descriptor other than the epoll instance it creates, and never grow beyond
//! thin wrappers.

use std::io;

/// `poll(2)` over `fds`; Ok(0) on timeout or EINTR.
#[allow(unsafe_code)]
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    let n = fds.len() as libc::nfds_t;
    // SAFETY: `fds` is a valid, exclusively borrowed slice of `pollfd` and `n` is
    // its length; poll only writes the `revents` fields within that slice.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// One `recv(2)` with MSG_DONTWAIT on the socket `fd`: never blocks, and
/// leaves the socket's blocking mode alone (no `ioctl` before and after).
#[allow(unsafe_code)]
pub(crate) fn recv_dontwait(fd: std::os::fd::RawFd, out: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `out` is a valid, exclusively borrowed buffer of `out.len()`
        // bytes; recv writes at most that many; `fd` is borrowed, not closed.
        let r = unsafe { libc::recv(fd, out.as_mut_ptr().cast(), out.len(), libc::MSG_DONTWAIT) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One `send(2)` with MSG_DONTWAIT | MSG_NOSIGNAL: never blocks, whatever
/// the socket's mode; returns the bytes taken.
#[allow(unsafe_code)]
pub(crate) fn send_dontwait(fd: std::os::fd::RawFd, data: &[u8]) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: `data` is a valid borrowed buffer of `data.len()` bytes that
    // send only reads; `fd` is borrowed, not closed.
    let r = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// One `sendfile(2)` of at most `count` bytes of `file` from `*offset` to
/// the (non-blocking) socket `sock`; advances `*offset`, returns the bytes sent.
#[allow(unsafe_code)]
pub(crate) fn sendfile(
    sock: std::os::fd::RawFd,
    file: std::os::fd::RawFd,
    offset: &mut i64,
    count: usize,
) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are borrowed, not closed; `offset` is a
        // valid, exclusively borrowed i64 the kernel reads and updates.
        let r = unsafe { libc::sendfile(sock, file, offset, count) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Raises the soft RLIMIT_NOFILE toward the hard limit (at most to `want`)
/// and returns the soft limit now in force.
#[allow(unsafe_code)]
pub(crate) fn raise_open_file_limit(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, exclusively borrowed rlimit the call fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // rlim_t is u64 on Linux.
    let target: u64 = want.min(lim.rlim_max);
    if lim.rlim_cur >= target {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit read by the call; nothing is retained.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Ok(lim.rlim_cur);
    }
    Ok(target)
}

/// An epoll instance (level-triggered), the readiness loop's wait set: the
/// cost of a wake-up is the number of ready connections, not of waiting ones.
/// It owns only its own epoll descriptor.
pub(crate) struct Epoll {
    fd: std::os::fd::OwnedFd,
}

impl Epoll {
    #[allow(unsafe_code)]
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: plain call; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    #[allow(unsafe_code)]
    fn ctl(&self, op: i32, fd: std::os::fd::RawFd, events: u32, token: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the call's duration; `fd`
        // is borrowed (epoll does not take ownership).
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Watches `fd` for `events` (EPOLLIN, EPOLLOUT), reported with `token`.
    pub(crate) fn add(&self, fd: std::os::fd::RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub(crate) fn modify(&self, fd: std::os::fd::RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    pub(crate) fn delete(&self, fd: std::os::fd::RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` for events; Ok(0) on timeout or EINTR.
    #[allow(unsafe_code)]
    pub(crate) fn wait(&self, out: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let max = i32::try_from(out.len()).unwrap_or(i32::MAX);
        // SAFETY: `out` is a valid, exclusively borrowed buffer of `max` events;
        // the kernel writes at most `max` entries into it.
        let r = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), out.as_mut_ptr(), max, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(r as usize)
    }
}
