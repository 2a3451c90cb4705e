//! Many-socket helpers for the abuse tests: connections bound to a chosen
//! loopback source address (so per-address limits can be tested from one
//! host), this process's open-file limit raised, raw requests sent from one
//! address, latency percentiles, and a spawned server's memory read strictly.
//! Must NEVER bind or connect to a non-loopback address, or report a missing
//! /proc field as a number (an absent VmHWM must not pass a `<=` bound).

use super::procfs::status_kib;
use super::raw::{read_response, RawResp};
use socket2::{Domain, Socket, Type};
use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The socket timeout of [`call_from`] and [`raw_call`].
pub const NET_TIMEOUT: Duration = Duration::from_secs(20);

/// The `i`-th of eight client source addresses, 127.0.0.2 to 127.0.0.9.
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8)
}

/// A normal client's own address (no address of [`source`]).
pub const NORMAL_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);

/// A TCP connection from loopback `src` (bound before connecting) to the
/// loopback `to`, with read/write timeouts of `timeout` and TCP_NODELAY.
pub fn connect_from(src: Ipv4Addr, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    assert!(
        src.is_loopback() && to.ip().is_loopback(),
        "loopback only: {src} -> {to}"
    );
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::from((src, 0)).into())?;
    s.connect_timeout(&to.into(), timeout)?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// [`connect_from`] `src` to 127.0.0.1:`port` with [`NET_TIMEOUT`]; panics
/// when it fails.
pub fn connect_port_from(src: Ipv4Addr, port: u16) -> TcpStream {
    connect_from(
        src,
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        NET_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("connect from {src} to port {port}: {e}"))
}

/// Raises this process's open-file limit toward its hard limit (at most
/// 65,536) and checks that `need` descriptors fit. Debian's default soft limit
/// is 1,024; root's hard limit is far higher.
#[allow(unsafe_code)]
pub fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, exclusively borrowed rlimit the call fills in.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) },
        0,
        "getrlimit"
    );
    let target = lim.rlim_max.min(65_536);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit read by the call.
        let _ = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    }
    assert!(
        lim.rlim_cur >= need,
        "this test needs {need} open files; the limit is {} (hard {})",
        lim.rlim_cur,
        lim.rlim_max
    );
}

/// A request head without a body (`Content-Length: 0` for POST/PUT/PATCH),
/// with an `Authorization` header when `auth` is given.
pub fn request(method: &str, path: &str, auth: Option<&str>) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    head
}

/// One [`request`] on its own connection from `src` to 127.0.0.1:`port`,
/// the response read in full.
pub fn call_from(
    src: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> RawResp {
    let mut stream = connect_port_from(src, port);
    stream
        .write_all(request(method, path, auth).as_bytes())
        .expect("write");
    read_response(&mut BufReader::new(stream), method == "HEAD")
        .unwrap_or_else(|e| panic!("no answer to {method} {path}: {e}"))
}

/// [`call_from`] 127.0.0.1.
pub fn raw_call(port: u16, method: &str, path: &str, auth: Option<&str>) -> RawResp {
    call_from(Ipv4Addr::LOCALHOST, port, method, path, auth)
}

/// `n` timed requests with `one`; every one must answer 200.
/// Returns the latencies sorted.
pub fn measure(n: usize, mut one: impl FnMut() -> io::Result<(u16, Duration)>) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        match one() {
            Ok((200, d)) => lat.push(d),
            Ok((status, d)) => panic!("request {i}: status {status} after {d:?}"),
            Err(e) => panic!("request {i}: {e}"),
        }
    }
    lat.sort();
    lat
}

/// The `p` quantile (0 < p <= 1) of sorted latencies: the smallest value
/// at or above a `p` share of them.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "no latencies");
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The p99 of sorted latencies (the largest of fewer than 100).
pub fn p99(sorted: &[Duration]) -> Duration {
    assert!(!sorted.is_empty(), "no latencies");
    let i = (sorted.len() * 99).div_ceil(100).saturating_sub(1);
    sorted[i.min(sorted.len() - 1)]
}

/// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`) of a live
/// process; panics when it cannot be read (never a silent 0).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let kib = status_kib(Some(pid), field);
    assert!(kib > 0, "no {field} in /proc/{pid}/status");
    kib
}

/// The peak resident memory (VmHWM) of `pid`, KiB; panics when unreadable.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    proc_kib(pid, "VmHWM")
}
