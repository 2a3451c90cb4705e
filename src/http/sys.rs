//! The two system calls the HTTP layer needs that std does not expose:
//! `poll(2)` (idle connections) and `sendfile(2)` (file bodies on plain TCP).
//!
//! This is the only place with `unsafe` in the HTTP layer; each call is one
//! small function over borrowed descriptors. It must never own or close a
//! descriptor, and never grow beyond thin wrappers.

use std::io;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::{AsRawFd, BorrowedFd};

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

/// `sendfile(2)`: up to `count` bytes of `file` from `*offset` to `sock`,
/// advancing `*offset` (the file position is not used or changed).
/// None where the call does not exist (the caller copies through a buffer).
///
/// std's `io::copy` deliberately no longer uses sendfile from a file to a
/// socket (later writes to the file could show in data still queued); soute
/// only serves immutable, content-addressed files, so that cannot happen here.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
pub(crate) fn sendfile(
    sock: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: &mut libc::off_t,
    count: usize,
) -> Option<io::Result<usize>> {
    // SAFETY: both descriptors are borrowed, hence open for the whole call;
    // `offset` is a valid, exclusively borrowed off_t the kernel reads and updates.
    let r = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), offset, count) };
    if r < 0 {
        Some(Err(io::Error::last_os_error()))
    } else {
        Some(Ok(r as usize))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn sendfile(
    _sock: std::os::fd::BorrowedFd<'_>,
    _file: std::os::fd::BorrowedFd<'_>,
    _offset: &mut i64,
    _count: usize,
) -> Option<io::Result<usize>> {
    None
}
