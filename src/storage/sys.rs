//! The one system call storage needs that std does not expose: `statvfs(3)`
//! (the size and free space of the data folder's filesystem).
//!
//! This is the only place with `unsafe` in storage: one function over a
//! path it borrows. It must never open, create or change a file, and never
//! grow beyond thin wrappers.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes of a filesystem: its size and what an unprivileged writer may still use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsSpace {
    pub total: u64,
    pub available: u64,
}

/// `statvfs(3)` of the filesystem holding `path` (which must exist).
#[allow(unsafe_code, clippy::unnecessary_cast)]
pub fn statvfs(path: &Path) -> io::Result<FsSpace> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut st = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call and
    // `st` points to writable memory the size of a `statvfs`, which the call
    // fills in on success.
    let r = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialized the whole structure (and
    // it was zeroed before, so every field holds a valid integer anyway).
    let st = unsafe { st.assume_init() };
    // The field types are u64 on 64-bit Linux but 32 bits on some 32-bit
    // boards (armv7 Raspberry Pi OS): the casts are for those.
    let unit = if st.f_frsize > 0 {
        st.f_frsize as u64
    } else {
        st.f_bsize as u64
    };
    Ok(FsSpace {
        total: (st.f_blocks as u64).saturating_mul(unit),
        available: (st.f_bavail as u64).saturating_mul(unit),
    })
}
