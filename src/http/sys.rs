//! The system call the HTTP layer needs that std does not expose:
//! `poll(2)` (idle connections).
//!
//! This is the only place with `unsafe` in the HTTP layer: one small
//! function over borrowed descriptors. It must never own or close a
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
