//! The total connection cap evicts instead of refusing: when it is full of
//! idle and unfinished connections from many addresses, a newcomer gets a
//! connection at once and the longest-waiting connection of the address
//! holding the most is closed for it; only when nothing is evictable
//! (every connection is mid-request) is the newcomer refused with a 503.

use crate::helpers::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const CAP: usize = 256;
/// Addresses 127.0.0.20.. each hold this many; 127.0.0.2 holds the rest.
const SMALL: usize = 12;
const SMALL_ADDRESSES: usize = 16;
const BIG: usize = CAP - SMALL * SMALL_ADDRESSES; // 64
const NEWCOMERS: usize = 20;

fn small_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 20 + i as u8)
}

/// A connection from `src` that made one keep-alive request and now idles.
fn kept_alive(to: SocketAddr, src: Ipv4Addr) -> TcpStream {
    let mut s = connect_from_io(src, to).expect("connect");
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("request");
    let status = read_status(&mut s).expect("status");
    assert_eq!(status, 200);
    // The body of /v2/ is `{}`.
    let mut body = [0u8; 2];
    s.read_exact(&mut body).expect("body");
    s
}

/// True once the server closed `s` (end of stream or reset).
fn closed(s: &TcpStream) -> bool {
    still_open([s]) == 0
}

#[test]
fn a_full_cap_evicts_the_oldest_idle_connection_of_the_fullest_address() {
    let _one = serial();
    raise_fd_limit(CAP as u64 + 200);
    let server = spawn(
        false,
        &["--max-connections", "256", "--max-connections-per-ip", "64"],
    );
    // Half of each small address's connections idle after a request, half
    // never sent anything (head phase); the big address's 64 are opened in
    // four groups in between, silent.
    let mut small: Vec<TcpStream> = Vec::new();
    let mut big: Vec<Vec<TcpStream>> = Vec::new();
    for group in 0..4 {
        for a in 0..SMALL_ADDRESSES {
            for i in 0..SMALL / 4 {
                let s = if i % 2 == 0 {
                    kept_alive(server.addr, small_address(a))
                } else {
                    connect_from_io(small_address(a), server.addr).expect("connect")
                };
                small.push(s);
            }
        }
        big.push(
            (0..BIG / 4)
                .map(|_| connect_from_io(source(0), server.addr).expect("connect"))
                .collect(),
        );
        // The groups reach the loop at distinct times.
        std::thread::sleep(Duration::from_millis(50));
        let _ = group;
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(still_open(&small) + still_open(big.iter().flatten()), CAP);

    // Newcomers from a new address, each keeping its connection open.
    let mut newcomers = Vec::new();
    let mut worst = Duration::ZERO;
    for _ in 0..NEWCOMERS {
        let t = Instant::now();
        let s = kept_alive(server.addr, NORMAL_CLIENT);
        worst = worst.max(t.elapsed());
        newcomers.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let big_closed: Vec<usize> = big
        .iter()
        .map(|g| g.iter().filter(|s| closed(s)).count())
        .collect();
    let small_open = still_open(&small);
    eprintln!(
        "{NEWCOMERS} newcomers at a full cap of {CAP}: slowest /v2/ {worst:?}; closed per \
         group of 127.0.0.2: {big_closed:?}; small addresses' still open {small_open}/{}",
        small.len()
    );
    assert!(worst < Duration::from_secs(1), "newcomer waited {worst:?}");
    assert_eq!(still_open(&newcomers), NEWCOMERS, "newcomers are kept");
    assert_eq!(small_open, small.len(), "the small addresses keep theirs");
    assert_eq!(
        big_closed.iter().sum::<usize>(),
        NEWCOMERS,
        "one evicted per newcomer"
    );
    assert_eq!(big_closed[0], BIG / 4, "oldest group first: {big_closed:?}");
    assert_eq!(big_closed[2] + big_closed[3], 0, "{big_closed:?}");
    // The evicted sockets were really closed: a request on one gets nothing.
    let victim = big[0].iter().find(|s| closed(s)).expect("an evicted one");
    let mut v = victim;
    let _ = v.write_all(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(read_status(&mut v).map_or(true, |s| s == 0));
    let w = server.warnings();
    assert!(w.len() <= 10, "{w:#?}");
}

#[test]
fn a_full_cap_with_nothing_evictable_refuses_with_503() {
    let _one = serial();
    raise_fd_limit(200);
    // Two workers (the least soute runs), five connections: two slow bodies
    // hold the workers, three whole heads wait in the ready queue. None may
    // be evicted.
    let server = spawn(
        false,
        &[
            "--workers",
            "2",
            "--max-connections",
            "5",
            "--body-rate-grace",
            "600",
        ],
    );
    // Chunked: no length to refuse up front, the workers read them.
    let bodies = [1, 3].map(|i| open_slow_body(server.addr, source(i), i));
    std::thread::sleep(Duration::from_millis(200));
    let mut queued: Vec<TcpStream> = (4..7)
        .map(|i| {
            let mut s = connect_from_io(source(i), server.addr).expect("connect");
            s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("head");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let (status, _) = plain_v2(server.addr, NORMAL_CLIENT).expect("refusal");
    assert_eq!(status, 503, "nothing evictable: refused");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(still_open(&bodies), 2, "the bodies in workers are kept");
    assert_eq!(still_open(&queued), 3, "the queued heads are kept");
    // Once the slow bodies go, the queued ones are served.
    drop(bodies);
    for s in &mut queued {
        s.set_nonblocking(false).expect("blocking");
        assert_eq!(read_status(s).expect("served"), 200);
    }
    let w = server.warnings();
    assert!(
        w.iter()
            .any(|l| l.contains("no idle connection is left to evict")),
        "{w:#?}"
    );
}
