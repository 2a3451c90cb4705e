//! Connection caps: one address cannot take every connection, refusals do
//! not flood the log, and a low open-file limit lowers the total cap.

use crate::helpers::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

const FLOOD: usize = 2000;
const PER_IP_CAP: usize = 64;

/// Sockets the server answered (503) or closed, until `want` or the deadline.
fn wait_refused(socks: &[TcpStream], want: usize, within: Duration) -> (usize, usize) {
    let deadline = Instant::now() + within;
    let mut refused = vec![false; socks.len()];
    let mut answered_503 = 0;
    let mut buf = [0u8; 512];
    loop {
        for (i, s) in socks.iter().enumerate() {
            if refused[i] {
                continue;
            }
            s.set_nonblocking(true).expect("nonblocking");
            match (&mut &*s).read(&mut buf) {
                Ok(n) if n > 0 => {
                    refused[i] = true;
                    if buf[..n].starts_with(b"HTTP/1.1 503") {
                        answered_503 += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => refused[i] = true,
            }
        }
        let n = refused.iter().filter(|r| **r).count();
        if n >= want || Instant::now() >= deadline {
            return (n, answered_503);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_address_cannot_take_every_connection() {
    let _one = serial();
    raise_fd_limit(FLOOD as u64 + 200);
    let server = spawn(false, &[]);
    let flooder = Ipv4Addr::new(127, 0, 0, 2);
    let normal = Ipv4Addr::new(127, 0, 0, 3);
    let mut idle = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        idle.push(connect_from_io(flooder, server.addr).expect("connect"));
        if i % 200 == 199 {
            // The other address keeps being served while the flood goes on.
            let (status, _) = plain_v2(server.addr, normal).expect("normal client");
            assert_eq!(status, 200, "after {} idle connections", i + 1);
        }
    }
    let lat = measure(20, || plain_v2(server.addr, normal));
    let (refused, answered) = wait_refused(&idle, FLOOD - PER_IP_CAP, Duration::from_secs(5));
    assert_eq!(refused, FLOOD - PER_IP_CAP, "beyond the per-address cap");
    assert!(answered > 0, "refusals are answered with 503");
    assert_eq!(still_open(&idle), PER_IP_CAP, "the admitted ones stay open");
    let warnings = server.warnings();
    eprintln!(
        "{refused} refused ({answered} with a 503), /v2/ from another address max {:?}; \
         {} warning line(s): {warnings:#?}",
        lat[lat.len() - 1],
        warnings.len()
    );
    assert!(
        !warnings.is_empty() && warnings.len() <= 10,
        "{warnings:#?}"
    );
    assert!(
        warnings[0].contains("the per-address cap of 64"),
        "{warnings:#?}"
    );
}

#[test]
fn low_open_file_limit_lowers_the_cap_and_says_so() {
    let _one = serial();
    // 8 workers reserve 64 + 4 * 8 = 96 descriptors: 300 leaves 204 for connections.
    let server = spawn_with(false, &[], Some(300));
    let (status, _) = plain_v2(server.addr, NORMAL_CLIENT).expect("served");
    assert_eq!(status, 200);
    let log = server.log_text();
    assert!(
        log.contains("open-file limit is 300") && log.contains("at most 204 connections"),
        "{log}"
    );
}

#[test]
fn a_tls_port_over_a_cap_closes_without_plaintext() {
    let _one = serial();
    raise_fd_limit(200);
    let server = spawn(true, &["--max-connections-per-ip", "2"]);
    let cfg = tls_client(server.ca_pem.as_deref().expect("CA"));
    let src = source(0);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from_io(src, server.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // The third from the same address: over its cap.
    let mut extra = connect_from_io(src, server.addr).expect("connect");
    let mut got = Vec::new();
    let _ = extra.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "plaintext on a TLS port: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(got.is_empty(), "closed without a word: {got:?}");
    assert_eq!(still_open(&held), 2);
    // Another address still gets its TLS answer.
    let (status, _) = tls_v2(server.addr, NORMAL_CLIENT, &cfg).expect("normal client");
    assert_eq!(status, 200);
}

#[test]
fn refused_requests_linger_off_the_workers() {
    let _one = serial();
    raise_fd_limit(300);
    const BAD: usize = 40;
    // Two workers: each refusal lingering 200 ms on one would take 4 s for 40.
    let server = spawn(false, &["--workers", "2"]);
    let started = Instant::now();
    let mut socks: Vec<TcpStream> = (0..BAD)
        .map(|i| {
            let mut s = connect_from_io(source(i), server.addr).expect("connect");
            s.write_all(b"NOT HTTP AT ALL\r\n\r\n").expect("garbage");
            s
        })
        .collect();
    // Every client reads its answer but keeps its side open (the server lingers).
    for s in &mut socks {
        let mut head = [0u8; 12];
        s.read_exact(&mut head).expect("an answer");
        assert_eq!(&head, b"HTTP/1.1 400");
    }
    let answered = started.elapsed();
    let lat = measure(5, || plain_v2(server.addr, NORMAL_CLIENT));
    // The lingering ends: the server closes them all.
    let (closed, _) = wait_refused(&socks, BAD, Duration::from_secs(5));
    eprintln!(
        "{BAD} malformed requests answered in {answered:?} by 2 workers; /v2/ meanwhile max {:?}",
        lat[lat.len() - 1]
    );
    assert_eq!(closed, BAD, "closed after lingering");
    assert!(answered < Duration::from_secs(1), "{answered:?}");
    assert!(lat[lat.len() - 1] < Duration::from_secs(1), "{lat:?}");
}
