//! The system calls the HTTP layer needs that std does not expose:
//! `poll(2)` (connections waiting for bytes) and `getrlimit`/`setrlimit`
//! for the open-file limit.
//!
//! This is the only place with `unsafe` in the HTTP layer: small functions
//! over borrowed descriptors and plain structs. It must never own or close a
//! descriptor, and never grow beyond thin wrappers.

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
