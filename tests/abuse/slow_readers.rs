//! Slow readers cannot hold workers: the readiness loop sends blob bodies
//! on plain sockets, so 160 slow readers from 20 addresses (more than the
//! 24 workers) leave a normal client its manifests in well under a second,
//! and a client that takes a response slower than the minimum send rate
//! (500 bytes/s per window; here 2 s windows) is dropped one to three
//! windows after it starts (the kernel's socket buffers take the first MiBs
//! at once). Over TLS the same: 200 slow TLS readers from 8 addresses (more
//! than the 4 workers) are sent by the loop through rustls, hold no worker,
//! stay within a bounded VmHWM and are dropped under the rate; a TLS reader
//! that is slow then fast gets every byte and keeps its connection.

use crate::helpers::*;
use crate::support::*;
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Larger than every socket buffer between the server and a client.
const BLOB: usize = 16 << 20;
const ADDRESSES: usize = 20;
const PER_ADDRESS: usize = 4;
const WINDOW: Duration = Duration::from_secs(2);

fn slow_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 40 + i as u8)
}

fn send(to: SocketAddr, method: &str, path: &str, ctype: &str, body: &[u8]) -> RawResp {
    let mut s = connect_from(NORMAL_CLIENT, to, Duration::from_secs(30)).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    read_response(&mut BufReader::new(s), false).expect("response")
}

/// A 16 MiB layer and an image referencing it, tagged `latest`; the layer's digest.
fn push_image(to: SocketAddr) -> String {
    push_image_with(|method, path, ctype, body| send(to, method, path, ctype, body))
}

/// [`push_image`] through `send` (plain or TLS).
fn push_image_with(send: impl Fn(&str, &str, &str, &[u8]) -> RawResp) -> String {
    let layer = pseudo_random_bytes(7, BLOB);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let l = Descriptor::new("application/vnd.oci.image.layer.v1.tar", &layer);
    let c = Descriptor::new("application/vnd.oci.image.config.v1+json", config);
    for (d, bytes) in [(&l, &layer[..]), (&c, &config[..])] {
        let path = format!("/v2/big/blobs/uploads/?digest={}", d.digest);
        let r = send("POST", &path, "application/octet-stream", bytes);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let manifest = image_manifest(OCI_MANIFEST, &c, std::slice::from_ref(&l), None, None);
    let r = send("PUT", "/v2/big/manifests/latest", OCI_MANIFEST, &manifest);
    assert_eq!(r.status, 201, "{}", r.text());
    l.digest
}

fn get_manifest(to: SocketAddr) -> std::io::Result<(u16, Duration)> {
    let t = Instant::now();
    let mut s = connect_from_io(NORMAL_CLIENT, to)?;
    s.write_all(
        format!(
            "GET /v2/big/manifests/latest HTTP/1.1\r\nHost: localhost\r\nAccept: {OCI_MANIFEST}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    let r = read_response(&mut BufReader::new(s), false)?;
    Ok((r.status, t.elapsed()))
}

/// Reads what is left on `s` until the end of stream (or 10 s); the bytes read.
fn drain(s: &mut TcpStream) -> usize {
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

#[test]
fn readers_under_the_minimum_send_rate_are_dropped() {
    let _one = serial();
    raise_fd_limit(400);
    // 24 workers, 160 slow readers: none may hold a worker.
    let server = spawn(
        false,
        &[
            "--workers",
            "24",
            "--body-rate-grace",
            "2",
            "--min-send-rate",
            "500",
        ],
    );
    let digest = push_image(server.addr);
    std::thread::sleep(Duration::from_millis(200));
    let base_fds = server.open_fds();
    let request = format!("GET /v2/big/blobs/{digest} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..ADDRESSES * PER_ADDRESS)
        .map(|i| {
            let mut s = connect_from_io(slow_address(i % ADDRESSES), server.addr).expect("connect");
            s.write_all(request.as_bytes()).expect("request");
            s
        })
        .collect();
    // They read a byte every half second; a normal client pulls meanwhile.
    let mut worst = Duration::ZERO;
    let mut pulls = 0;
    let mut byte = [0u8; 1];
    // (elapsed, descriptors open): each slow reader holds its socket and the blob file.
    let mut fds: Vec<(Duration, usize)> = Vec::new();
    while started.elapsed() < 4 * WINDOW + Duration::from_secs(1) {
        for s in &mut slow {
            s.set_nonblocking(true).expect("nonblocking");
            let _ = s.read(&mut byte);
        }
        let (status, took) = get_manifest(server.addr).expect("manifest");
        assert_eq!(status, 200);
        worst = worst.max(took);
        pulls += 1;
        fds.push((started.elapsed(), server.open_fds()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let whole = BLOB + 200; // the body and a head of under 200 bytes
    let got: Vec<usize> = slow.iter_mut().map(drain).collect();
    let dropped = got.iter().filter(|&&n| n < BLOB).count();
    eprintln!(
        "{} slow readers from {ADDRESSES} addresses of a {} MiB blob, {WINDOW:?} windows: {dropped} dropped within \
         {:?} (each had taken {} KiB at most); {pulls} manifest pulls meanwhile, slowest {worst:?}",
        ADDRESSES * PER_ADDRESS,
        BLOB >> 20,
        4 * WINDOW + Duration::from_secs(1),
        got.iter().max().copied().unwrap_or(0) >> 10
    );
    eprintln!("server descriptors over time (base {base_fds}): {fds:?}");
    let n = ADDRESSES * PER_ADDRESS;
    // Held (socket + file each) through the first window, then let go at
    // once (SQLite may open more descriptors meanwhile: compare to the peak).
    let peak = fds.iter().map(|&(_, f)| f).max().unwrap_or(0);
    assert!(
        peak >= base_fds + 2 * n,
        "a socket and the file each: {fds:?}"
    );
    let dropped_by = |f: usize| f + 2 * n * 9 / 10 <= peak;
    let held_early = fds
        .iter()
        .filter(|(t, _)| *t > Duration::from_millis(500) && *t < WINDOW)
        .all(|&(_, f)| !dropped_by(f));
    assert!(held_early, "slow readers held in the first window: {fds:?}");
    let gone_at = fds.iter().find(|&&(_, f)| dropped_by(f)).map(|&(t, _)| t);
    let gone_at = gone_at.unwrap_or_else(|| panic!("never dropped: {fds:?}"));
    assert!(
        gone_at <= 3 * WINDOW + Duration::from_secs(1),
        "dropped at {gone_at:?}"
    );
    assert_eq!(dropped, n, "every slow reader dropped: {got:?}");
    assert!(got.iter().all(|&n| n < whole));
    assert!(worst < Duration::from_secs(1), "normal pull took {worst:?}");
    // A fast reader of the same blob gets all of it.
    let mut s = connect_from_io(NORMAL_CLIENT, server.addr).expect("connect");
    s.write_all(request.as_bytes()).expect("request");
    let r = read_response(&mut BufReader::new(s), false).expect("blob");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BLOB);
}

const TLS_READERS: usize = 200;
const FIRST_READERS: usize = 40;
const TLS_ADDRESSES: usize = 8;

/// A TLS session from `src` whose socket asks for a small receive buffer
/// (so a reader that takes nothing stalls the server within a few KiB).
fn tls_connect(
    src: Ipv4Addr,
    to: SocketAddr,
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    small: bool,
) -> std::io::Result<TlsClient> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    if small {
        s.set_recv_buffer_size(4096)?;
    }
    s.bind(&SocketAddr::from((src, 0)).into())?;
    s.connect_timeout(&to.into(), IO_TIMEOUT)?;
    let mut sock: TcpStream = s.into();
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn =
        rustls::ClientConnection::new(cfg.clone(), name).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

fn tls_send(
    to: SocketAddr,
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    (method, path, ctype): (&str, &str, &str),
    body: &[u8],
) -> RawResp {
    let mut s = tls_connect(NORMAL_CLIENT, to, cfg, false).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    read_response(&mut s, false).expect("response")
}

fn manifest_request(close: bool) -> String {
    format!(
        "GET /v2/big/manifests/latest HTTP/1.1\r\nHost: localhost\r\nAccept: {OCI_MANIFEST}\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    )
}

fn tls_manifest(
    to: SocketAddr,
    cfg: &std::sync::Arc<rustls::ClientConfig>,
) -> std::io::Result<(u16, Duration)> {
    let t = Instant::now();
    let mut s = tls_connect(NORMAL_CLIENT, to, cfg, false)?;
    s.write_all(manifest_request(true).as_bytes())?;
    let r = read_response(&mut s, false)?;
    Ok((r.status, t.elapsed()))
}

/// `n` slow TLS readers from [`TLS_ADDRESSES`] addresses, each asking for
/// `request` and reading nothing (opened by four threads).
fn open_slow_tls_readers(
    to: SocketAddr,
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    request: &str,
    n: usize,
) -> Vec<TlsClient> {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (cfg, request) = (cfg.clone(), request.to_string());
            std::thread::spawn(move || {
                (0..n)
                    .filter(|i| i % 4 == t)
                    .map(|i| {
                        let mut c = tls_connect(slow_address(i % TLS_ADDRESSES), to, &cfg, true)
                            .expect("slow reader");
                        c.write_all(request.as_bytes()).expect("request");
                        c
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|h| h.join().expect("opener thread"))
        .collect()
}

/// Raw TLS bytes left on each socket until its end of stream, all within
/// one shared deadline (a socket still sending at the deadline counts as
/// whole: it was not dropped).
fn drain_all(socks: &mut [TlsClient], whole: usize) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = vec![0u8; 1 << 16];
    socks
        .iter_mut()
        .map(|c| {
            let s = &mut c.sock;
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut n = 0;
            loop {
                if Instant::now() >= deadline || n >= whole {
                    return n.max(whole);
                }
                match s.read(&mut buf) {
                    Ok(0) => return n,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return whole,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return whole,
                    Err(_) => return n,
                }
            }
        })
        .collect()
}

#[test]
fn slow_tls_readers_hold_no_worker_stay_bounded_and_are_dropped() {
    let _one = serial();
    raise_fd_limit(1000);
    let server = spawn(
        true,
        &[
            "--workers",
            "4",
            "--body-rate-grace",
            "2",
            "--min-send-rate",
            "500",
        ],
    );
    let cfg = tls_client(server.ca_pem.as_ref().expect("CA"));
    let digest = push_image_with(|method, path, ctype, body| {
        tls_send(server.addr, &cfg, (method, path, ctype), body)
    });
    let layer = pseudo_random_bytes(7, BLOB);
    let request = format!("GET /v2/big/blobs/{digest} HTTP/1.1\r\nHost: localhost\r\n\r\n");

    // (1) Slow, then fast: every byte, and the connection stays usable.
    let mut c = tls_connect(NORMAL_CLIENT, server.addr, &cfg, true).expect("connect");
    c.write_all(request.as_bytes()).expect("request");
    std::thread::sleep(Duration::from_millis(1500));
    let r = read_response(&mut c, false).expect("blob after a stall");
    assert_eq!(r.status, 200);
    assert!(
        r.body == layer,
        "every byte, in order ({} read)",
        r.body.len()
    );
    c.write_all(manifest_request(false).as_bytes())
        .expect("next request");
    let r = read_response(&mut c, false).expect("kept alive");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(c);

    std::thread::sleep(Duration::from_millis(200));
    let base_fds = server.open_fds();
    let base_hwm = server.vm_hwm_kib();
    // (2) More slow TLS readers than workers (40 for 4): a normal TLS
    // client still pulls quickly. Then 200 in all, for the memory they cost.
    let started = Instant::now();
    let mut slow = open_slow_tls_readers(server.addr, &cfg, &request, FIRST_READERS);
    let mut pulls: Vec<(Duration, Duration)> = Vec::new();
    let mut fds: Vec<(Duration, usize)> = Vec::new();
    let mut rest_at = None;
    while started.elapsed() < 4 * WINDOW + Duration::from_secs(1) {
        if rest_at.is_none() && started.elapsed() >= WINDOW / 2 {
            rest_at = Some(started.elapsed());
            let more = TLS_READERS - FIRST_READERS;
            slow.extend(open_slow_tls_readers(server.addr, &cfg, &request, more));
        }
        let (status, took) = tls_manifest(server.addr, &cfg).expect("manifest");
        assert_eq!(status, 200);
        pulls.push((started.elapsed(), took));
        fds.push((started.elapsed(), server.open_fds()));
        std::thread::sleep(Duration::from_millis(100));
    }
    let rest_at = rest_at.expect("the rest opened");
    let worst_few = pulls
        .iter()
        .filter(|(at, _)| *at < rest_at)
        .map(|&(_, took)| took)
        .max()
        .unwrap_or_default();
    let worst = pulls
        .iter()
        .map(|&(_, took)| took)
        .max()
        .unwrap_or_default();
    let hwm = server.vm_hwm_kib();
    // (3) They read nothing: each is dropped under the minimum rate.
    let got = drain_all(&mut slow, BLOB);
    let dropped = got.iter().filter(|&&n| n < BLOB).count();
    eprintln!(
        "{FIRST_READERS} slow TLS readers from {TLS_ADDRESSES} addresses, 4 workers, {WINDOW:?} windows: \
         TLS manifest pulls took at most {worst_few:?}; with {TLS_READERS} (from {rest_at:?}) at most \
         {worst:?}; {dropped} dropped (largest share taken {} KiB); server VmHWM {base_hwm} KiB \
         before, {hwm} KiB with them",
        got.iter().max().copied().unwrap_or(0) >> 10
    );
    eprintln!("pulls (at, took): {pulls:?}");
    eprintln!("server descriptors over time (base {base_fds}): {fds:?}");
    // The loop held them, each with its socket and the blob file open.
    let peak = fds.iter().map(|&(_, f)| f).max().unwrap_or(0);
    assert!(
        peak >= base_fds + 2 * TLS_READERS * 9 / 10,
        "a socket and the file each: {fds:?}"
    );
    assert!(
        worst_few < Duration::from_secs(1),
        "normal TLS pull took {worst_few:?} with {FIRST_READERS} slow readers"
    );
    assert!(
        worst < Duration::from_secs(5),
        "normal TLS pull took {worst:?} with {TLS_READERS} slow readers"
    );
    assert_eq!(dropped, TLS_READERS, "every slow reader dropped: {got:?}");
    // One 16 KiB chunk (encrypted) + rustls' session each, not the blob:
    // at most 64 KiB each.
    assert!(
        hwm < base_hwm + (TLS_READERS as u64) * 64,
        "VmHWM {hwm} KiB with {TLS_READERS} slow TLS readers (base {base_hwm} KiB)"
    );
}
