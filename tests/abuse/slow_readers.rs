//! Slow readers cannot hold workers: the readiness loop sends blob bodies
//! on plain sockets, so 160 slow readers from 20 addresses (more than the
//! 24 workers) leave a normal client its manifests in well under a second,
//! and a client that takes a response slower than the minimum send rate
//! (500 bytes/s per window; here 2 s windows) is dropped one to three
//! windows after it starts (the kernel's socket buffers take the first MiBs
//! at once). Over TLS a worker still sends, under the same rate.

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
    let layer = pseudo_random_bytes(7, BLOB);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let l = Descriptor::new("application/vnd.oci.image.layer.v1.tar", &layer);
    let c = Descriptor::new("application/vnd.oci.image.config.v1+json", config);
    for (d, bytes) in [(&l, &layer[..]), (&c, &config[..])] {
        let path = format!("/v2/big/blobs/uploads/?digest={}", d.digest);
        let r = send(to, "POST", &path, "application/octet-stream", bytes);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let manifest = image_manifest(OCI_MANIFEST, &c, std::slice::from_ref(&l), None, None);
    let r = send(
        to,
        "PUT",
        "/v2/big/manifests/latest",
        OCI_MANIFEST,
        &manifest,
    );
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
