//! Integration tests of `soute::http` over real sockets (127.0.0.1 and ::1).
//! Every test is bounded in time (client socket timeouts) and stops its server.
//! Helpers (raw connections, digests, /proc readers): `tests/support`.

#[path = "support/mod.rs"]
mod support;

use support::{read_response, rss_kib, sha256_hex, wait_until, Conn};

use sha2::{Digest, Sha256};
use soute::http::{bind, Body, Handler, Request, Response, Server, ServerConfig};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- access log capture

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target() == "soute::access"
    }
    fn log(&self, r: &log::Record) {
        if r.target() == "soute::access" {
            if let Ok(mut v) = self.0.lock() {
                v.push(r.args().to_string());
            }
        }
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAP: OnceLock<&'static Capture> = OnceLock::new();
    CAP.get_or_init(|| {
        let cap: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(cap);
        log::set_max_level(log::LevelFilter::Info);
        cap
    })
}

// ---------------------------------------------------------------- test handler

struct TestHandler {
    file: PathBuf,
}

fn query_u64(q: &str, key: &str) -> u64 {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

impl Handler for TestHandler {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        match req.path.as_str() {
            "/echo" => {
                let declared = format!("{:?}", req.body.declared_len());
                let chunked = req.body.is_chunked();
                let mut hasher = Sha256::new();
                let mut buf = [0u8; 8192];
                let mut total = 0u64;
                loop {
                    match req.body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            hasher.update(&buf[..n]);
                            total += n as u64;
                        }
                        Err(e) => {
                            return Response::new(400)
                                .body(Body::Bytes(format!("body error: {e}").into_bytes()))
                        }
                    }
                }
                let sha: String = hasher
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Response::new(200)
                    .header("X-Declared", declared)
                    .header("X-Chunked", chunked.to_string())
                    .body(Body::Bytes(format!("len={total} sha={sha}").into_bytes()))
            }
            "/refuse" => Response::new(401).body(Body::Bytes(b"no".to_vec())),
            "/panic" => panic!("test handler panics on purpose"),
            "/file" => {
                let offset = query_u64(&req.query, "off");
                let len = query_u64(&req.query, "len");
                match std::fs::File::open(&self.file) {
                    Ok(file) => Response::new(206).body(Body::File { file, offset, len }),
                    Err(_) => Response::new(500),
                }
            }
            "/length" => Response::new(200).body(Body::Length(12345)),
            "/nocontent" => Response::new(204).body(Body::Bytes(b"ignored".to_vec())),
            "/notmodified" => Response::new(304),
            "/close" => {
                let mut r = Response::new(200).body(Body::Bytes(b"bye".to_vec()));
                r.close = true;
                r
            }
            "/slow" => {
                std::thread::sleep(Duration::from_millis(300));
                Response::new(200).body(Body::Bytes(b"slow".to_vec()))
            }
            _ => Response::new(200)
                .header("X-Path", req.path.clone())
                .body(Body::Bytes(format!("hello {}", req.method).into_bytes())),
        }
    }

    // The server's own refusals are worded by the handler.
    fn rejection(&self, status: u16, reason: &str) -> Response {
        Response::new(status)
            .header("X-Rejected-By", "test-handler")
            .body(Body::Bytes(format!("refused: {reason}").into_bytes()))
    }
}

fn file_bytes() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut x: u32 = 0x1234_5678;
        (0..1_500_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    })
}

fn test_file() -> PathBuf {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = PATH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("blob");
        std::fs::write(&p, file_bytes()).expect("write blob");
        (dir, p)
    });
    p.clone()
}

fn start_with(addr: &str, tune: impl FnOnce(&mut ServerConfig)) -> (Server, SocketAddr) {
    let l = bind(addr.parse().expect("addr")).expect("bind");
    let mut cfg = ServerConfig::new(vec![l]);
    cfg.workers = 4;
    tune(&mut cfg);
    let server = Server::start(cfg, Arc::new(TestHandler { file: test_file() })).expect("start");
    let a = server.local_addrs()[0];
    (server, a)
}

fn start() -> (Server, SocketAddr) {
    start_with("127.0.0.1:0", |_| {})
}

// ---------------------------------------------------------------- raw client

/// A keep-alive connection whose every response must be HTTP/1.1 framed by
/// Content-Length (see `Conn::strict`).
fn connect(addr: SocketAddr) -> Conn {
    Conn::open_strict(addr, CLIENT_TIMEOUT)
}

// ---------------------------------------------------------------- tests

#[test]
fn keep_alive_serves_several_requests() {
    let (server, addr) = start();
    let mut c = connect(addr);
    for i in 0..5 {
        let r = c.get(&format!("/n{i}?q=1"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-path"), Some(format!("/n{i}").as_str()));
        assert_eq!(r.header("content-length"), Some("9"));
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert!(!r.closes());
    }
    server.shutdown();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (server, addr) = start();
    let mut c = connect(addr);
    c.send(
        b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcHEAD /c HTTP/1.1\r\nHost: t\r\n\r\nGET /d HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let a = c.resp();
    assert_eq!(a.header("x-path"), Some("/a"));
    let b = c.resp();
    assert_eq!(b.text(), format!("len=3 sha={}", sha256_hex(b"abc")));
    let h = c.read(true).expect("head response");
    assert_eq!(h.header("content-length"), Some("10"));
    assert_eq!(h.header("x-path"), Some("/c"));
    let d = c.resp();
    assert_eq!(d.header("x-path"), Some("/d"));
    server.shutdown();
}

#[test]
fn head_and_bodiless_statuses() {
    let (server, addr) = start();
    let mut c = connect(addr);
    c.send(b"HEAD /file?off=10&len=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read(true).expect("head");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("5000"));
    c.send(b"HEAD /length HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read(true).expect("head");
    assert_eq!(r.header("content-length"), Some("12345"));
    // GET with Body::Length also writes no body: the next response follows directly.
    c.send(b"GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read(true).expect("length");
    assert_eq!(r.header("content-length"), Some("12345"));
    let r = c.get("/nocontent");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    let r = c.get("/notmodified");
    assert_eq!(r.status, 304);
    assert_eq!(r.header("content-length"), None);
    // Still in sync: no stray body bytes were sent.
    let r = c.get("/after");
    assert_eq!(r.header("x-path"), Some("/after"));
    server.shutdown();
}

#[test]
fn connection_close_and_http10_rules() {
    let (server, addr) = start();
    let mut c = connect(addr);
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.resp();
    assert!(r.closes());
    assert!(c.closed());

    let mut c = connect(addr);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let r = c.resp();
    assert_eq!(r.status, 200);
    assert!(r.closes());
    assert!(c.closed());

    let mut c = connect(addr);
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.resp();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET /again HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_eq!(c.resp().header("x-path"), Some("/again"));

    let mut c = connect(addr);
    let r = c.get("/close");
    assert!(r.closes());
    assert!(c.closed());
    server.shutdown();
}

#[test]
fn chunked_request_body_is_decoded() {
    let (server, addr) = start();
    let mut c = connect(addr);
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n",
    );
    std::thread::sleep(Duration::from_millis(20));
    c.send(b"1 ; a=\"b\"\r\n,\r\nA\r\n world 123\r\n0\r\nX-Trailer: t\r\n\r\n");
    let r = c.resp();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-chunked"), Some("true"));
    assert_eq!(r.header("x-declared"), Some("None"));
    assert_eq!(
        r.text(),
        format!("len=16 sha={}", sha256_hex(b"hello, world 123"))
    );

    // A large chunked body in many chunks, then keep-alive still works.
    let data = &file_bytes()[..300_000];
    let mut req = b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in data.chunks(7_777) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send(&req);
    let r = c.resp();
    assert_eq!(r.text(), format!("len=300000 sha={}", sha256_hex(data)));
    assert_eq!(c.get("/x").status, 200);

    // Content-Length body, for comparison.
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.resp();
    assert_eq!(r.header("x-declared"), Some("Some(5)"));
    assert_eq!(r.header("x-chunked"), Some("false"));
    let r = c.get("/echo");
    assert_eq!(r.header("x-declared"), Some("Some(0)"));
    server.shutdown();
}

fn expect_rejected(addr: SocketAddr, req: &[u8], statuses: &[u16]) {
    let mut c = connect(addr);
    c.send(req);
    let r = c.resp();
    assert!(
        statuses.contains(&r.status),
        "{} for {:?}",
        r.status,
        String::from_utf8_lossy(req)
    );
    assert_eq!(r.header("x-rejected-by"), Some("test-handler"));
    assert!(r.closes());
    assert!(c.closed());
}

#[test]
fn ambiguous_framing_is_rejected() {
    let (server, addr) = start();
    expect_rejected(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        &[400],
    );
    expect_rejected(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        &[400],
    );
    expect_rejected(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        &[400],
    );
    expect_rejected(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello",
        &[400],
    );
    expect_rejected(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        &[400, 501],
    );
    expect_rejected(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        &[400, 501],
    );
    expect_rejected(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nExpect: something\r\n\r\n",
        &[417],
    );
    expect_rejected(addr, b"NOT A REQUEST\r\n\r\n", &[400]);
    // A malformed chunked body is reported to the handler as an error, then the connection closes.
    let mut c = connect(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
    let r = c.resp();
    assert_eq!(r.status, 400);
    assert!(r.closes());
    assert!(c.closed());
    server.shutdown();
}

#[test]
fn head_limits_give_431() {
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.limits.max_head_bytes = 8 * 1024;
        c.limits.max_headers = 20;
    });
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    expect_rejected(addr, big.as_bytes(), &[431]);
    // Never-ending head: 431 once the limit is reached, without waiting for the end.
    let mut c = connect(addr);
    c.send(b"GET / HTTP/1.1\r\n");
    for _ in 0..100 {
        c.send(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(c.resp().status, 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..30 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    expect_rejected(addr, many.as_bytes(), &[431]);
    // Just under the limits is fine.
    let mut c = connect(addr);
    let ok = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(7000)
    );
    c.send(ok.as_bytes());
    assert_eq!(c.resp().status, 200);
    server.shutdown();
}

#[test]
fn huge_unread_body_is_not_drained() {
    let (server, addr) = start();
    let before = rss_kib();
    for _ in 0..5 {
        // The answer and the close come while the client has sent 64 KiB of
        // the announced 1 TB (each read is bounded by CLIENT_TIMEOUT): the
        // server did not wait for, nor drain, the rest.
        let mut c = connect(addr);
        c.send(b"PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000000\r\n\r\n");
        c.send(&[b'x'; 65536]);
        let r = c.resp();
        assert_eq!(r.status, 401);
        assert!(r.closes());
        assert!(c.closed());
    }
    // A small unread body is drained and the connection kept.
    let mut c = connect(addr);
    c.send(b"PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789");
    let r = c.resp();
    assert_eq!(r.status, 401);
    assert!(!r.closes());
    assert_eq!(c.get("/next").header("x-path"), Some("/next"));
    let after = rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    server.shutdown();
}

#[test]
fn expect_100_continue_is_lazy() {
    let (server, addr) = start();
    // Handler reads: 100 Continue first, then the final answer.
    let mut c = connect(addr);
    c.send(b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.resp();
    assert_eq!(r.status, 100);
    c.send(b"hello");
    let r = c.resp();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("len=5 sha={}", sha256_hex(b"hello")));
    assert!(!r.closes());
    assert_eq!(c.get("/x").status, 200);

    // Handler refuses without reading: no 100, final answer, connection closed.
    let mut c = connect(addr);
    c.send(b"PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.resp();
    assert_eq!(r.status, 401);
    assert!(r.closes());
    assert!(c.closed());
    server.shutdown();
}

#[test]
fn stalled_head_times_out_while_others_are_served() {
    // Ordering and lower bounds only: the fast client is answered while the
    // stalled one is still open, and the stalled one is closed no earlier
    // than the head timeout (load can only make things later).
    const HEAD: Duration = Duration::from_millis(3000);
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.workers = 2;
        c.limits.head_timeout = HEAD;
    });
    let mut slow = connect(addr);
    let t = Instant::now();
    slow.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Half: ");
    std::thread::sleep(Duration::from_millis(100));
    let mut fast = connect(addr);
    assert_eq!(fast.get("/fast").status, 200);
    assert_eq!(fast.get("/fast2").status, 200);
    // Served while the stalled client still held its worker.
    assert!(
        slow.open_now(),
        "the stalled client was closed before the fast one was served"
    );
    assert!(slow.closed());
    let waited = t.elapsed();
    assert!(
        waited >= HEAD - Duration::from_millis(200),
        "closed after {waited:?}"
    );

    // A connection that sends nothing at all is closed after the head timeout too.
    let mut silent = connect(addr);
    let t = Instant::now();
    assert!(silent.closed());
    let waited = t.elapsed();
    assert!(
        waited >= HEAD - Duration::from_millis(200),
        "closed after {waited:?}"
    );
    server.shutdown();
}

#[test]
fn client_that_stops_reading_frees_its_worker() {
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.workers = 1;
        c.limits.write_timeout = Duration::from_millis(300);
    });
    // Ask for ~45 MB of pipelined file responses and never read them.
    let mut stuck = connect(addr);
    let len = file_bytes().len();
    let one = format!("GET /file?off=0&len={len} HTTP/1.1\r\nHost: t\r\n\r\n");
    stuck.send(one.repeat(30).as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    // With the only worker stuck for good, `other` would never be answered:
    // an answer at all (within a generous 20 s) proves the write timeout
    // freed the worker.
    let mut other = Conn::open_strict(addr, Duration::from_secs(20));
    assert_eq!(other.get("/other").status, 200);
    drop(stuck);
    server.shutdown();
}

#[test]
fn handler_panic_becomes_500() {
    let (server, addr) = start();
    let mut c = connect(addr);
    let r = c.get("/panic");
    assert_eq!(r.status, 500);
    // The default wording (the handler does not override it): plain text, no OCI envelope.
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = r.text();
    assert!(text.starts_with("internal error (request id "), "{text}");
    assert!(r.closes());
    assert!(c.closed());
    let mut c = connect(addr);
    assert_eq!(c.get("/after-panic").status, 200);
    server.shutdown();
}

#[test]
fn file_body_is_byte_exact() {
    let (server, addr) = start();
    let data = file_bytes();
    let mut c = connect(addr);
    for (off, len) in [
        (0u64, 1u64),
        (1, 1_000_000),
        (777, 65_537),
        (1_400_000, 100_000),
        (0, data.len() as u64),
    ] {
        let r = c.get(&format!("/file?off={off}&len={len}"));
        assert_eq!(r.status, 206);
        assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
        assert!(
            r.body == data[off as usize..(off + len) as usize],
            "range {off}+{len}"
        );
    }
    // Asking past the end of the file: the framing cannot be honoured, the connection closes.
    let mut c = connect(addr);
    c.send(
        format!(
            "GET /file?off={}&len=100 HTTP/1.1\r\nHost: t\r\n\r\n",
            data.len() - 10
        )
        .as_bytes(),
    );
    let mut all = Vec::new();
    let _ = c.r.read_to_end(&mut all);
    assert!(all.starts_with(b"HTTP/1.1 206"));
    server.shutdown();
}

#[test]
fn too_many_connections_from_one_address_get_503() {
    let (server, addr) = start_with("127.0.0.1:0", |c| c.limits.max_connections_per_ip = 2);
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(a.get("/a").status, 200);
    assert_eq!(b.get("/b").status, 200);
    let mut c = connect(addr);
    let r = c.resp();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-rejected-by"), Some("test-handler"));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.closes());
    assert!(c.closed());
    // Freeing a slot lets the next one in.
    drop(a);
    wait_until("a freed connection slot", Duration::from_secs(20), || {
        let mut d = connect(addr);
        d.send(b"GET /d HTTP/1.1\r\nHost: t\r\n\r\n");
        matches!(d.read(false), Ok(r) if r.status == 200)
    });
    assert_eq!(b.get("/b2").status, 200);
    server.shutdown();
}

#[test]
fn a_full_total_cap_evicts_the_oldest_idle_connection() {
    let (server, addr) = start_with("127.0.0.1:0", |c| c.limits.max_connections = 2);
    let mut a = connect(addr);
    assert_eq!(a.get("/a").status, 200);
    std::thread::sleep(Duration::from_millis(30));
    let mut b = connect(addr);
    assert_eq!(b.get("/b").status, 200);
    // Both idle between requests: the newcomer is served, the older goes.
    let mut c = connect(addr);
    assert_eq!(c.get("/c").status, 200);
    assert!(a.closed(), "the longest-idle connection was evicted");
    assert_eq!(b.get("/b2").status, 200);
    assert_eq!(c.get("/c2").status, 200);
    server.shutdown();
}

#[test]
fn ipv6_and_ipv4_bind() {
    let (s6, a6) = start_with("[::1]:0", |_| {});
    assert!(a6.is_ipv6());
    assert_eq!(connect(a6).get("/v6").status, 200);
    // The same port on IPv4 loopback can be bound too (IPV6_V6ONLY).
    let l4 = bind(SocketAddr::new("127.0.0.1".parse().expect("ip"), a6.port()));
    assert!(l4.is_ok(), "{l4:?}");
    let (s4, a4) = start_with("127.0.0.1:0", |_| {});
    assert_eq!(connect(a4).get("/v4").status, 200);
    s6.shutdown();
    s4.shutdown();
}

#[test]
fn shutdown_is_quick_with_idle_clients() {
    let (server, addr) = start();
    let mut idle = connect(addr);
    assert_eq!(idle.get("/x").status, 200);
    let mut fresh = connect(addr); // connected, never sent anything
    let mut half = connect(addr);
    half.send(b"GET / HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(50));
    // Waiting for these clients would take the head timeout (10 s) or the
    // keep-alive timeout (15 s); under 8 s proves it did not, with room for
    // a loaded machine.
    let t = Instant::now();
    server.shutdown();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert!(idle.closed());
    assert!(fresh.closed());
    assert!(half.closed());
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());

    // Dropping without shutdown does not hang either, even mid-request.
    let (server, addr) = start();
    let mut c = connect(addr);
    c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    drop(server);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "drop took {:?}",
        t.elapsed()
    );
    // The request in progress was allowed to finish.
    let r = c.resp();
    assert_eq!(r.text(), "slow");
    assert!(r.closes());
}

#[test]
fn access_log_has_no_query_or_credentials() {
    let cap = capture();
    let (server, addr) = start();
    let mut c = connect(addr);
    c.send(b"GET /logged-path?token=SECRETQ HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer SECRETA\r\n\r\n");
    assert_eq!(c.resp().status, 200);
    server.shutdown();
    let lines = cap.0.lock().map(|v| v.clone()).unwrap_or_default();
    let line = lines
        .iter()
        .find(|l| l.contains("/logged-path"))
        .expect("access line");
    assert!(
        line.contains("GET") && line.contains(" 200 ") && line.contains("id="),
        "{line}"
    );
    assert!(!line.contains("SECRET"), "{line}");
}

// ---------------------------------------------------------------- TLS

fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[test]
fn tls_file_body_and_keep_alive() {
    let (scfg, ccfg) = tls_configs();
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.tls = Some(scfg);
        c.limits.head_timeout = Duration::from_millis(800);
    });
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("rto");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(ccfg, name).expect("client");
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
    let data = file_bytes();
    for (off, len) in [(5u64, 700_000u64), (0, 10), (1_000_000, 500_000)] {
        tls.get_mut()
            .write_all(
                format!("GET /file?off={off}&len={len} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
            )
            .expect("send");
        let r = read_response(&mut tls, false).expect("response");
        assert_eq!(r.status, 206);
        assert!(
            r.body == data[off as usize..(off + len) as usize],
            "range {off}+{len}"
        );
    }
    tls.get_mut()
        .write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        .expect("send");
    let r = read_response(&mut tls, false).expect("echo");
    assert_eq!(r.text(), format!("len=3 sha={}", sha256_hex(b"abc")));

    // A client that is not speaking TLS is just closed.
    let mut plain = connect(addr);
    plain.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut sink = Vec::new();
    let _ = plain.r.read_to_end(&mut sink);
    assert!(!sink.starts_with(b"HTTP/1.1 200"));
    // A client that never finishes the handshake is closed after the head timeout.
    let mut stall = connect(addr);
    stall.send(&[0x16, 0x03, 0x01, 0x00, 0x50]);
    let t = Instant::now();
    assert!(stall.closed());
    // Not before the 800 ms head timeout (a lower bound cannot flake).
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    server.shutdown();
}

fn tls_connect(addr: SocketAddr, ccfg: &Arc<rustls::ClientConfig>) -> TlsTestClient {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("rto");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(ccfg.clone(), name).expect("client");
    BufReader::new(rustls::StreamOwned::new(conn, sock))
}

type TlsTestClient = BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

#[test]
fn a_stalled_tls_file_body_is_finished_by_the_loop_intact_and_kept_alive() {
    // Two workers; two TLS clients each asking for eight pipelined file
    // answers (12 MB) and reading nothing for 300 ms: each worker stalls and
    // hands the rest of a body, with its TLS session, to the readiness loop
    // (else both would be held and `/other` never answered).
    let (scfg, ccfg) = tls_configs();
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.tls = Some(scfg);
        c.workers = 2;
    });
    let bytes = file_bytes();
    let part = &bytes[7..];
    let one = format!(
        "GET /file?off=7&len={} HTTP/1.1\r\nHost: t\r\n\r\n",
        part.len()
    );
    let mut stalled: Vec<TlsTestClient> = (0..2).map(|_| tls_connect(addr, &ccfg)).collect();
    for c in &mut stalled {
        c.get_mut()
            .write_all(one.repeat(8).as_bytes())
            .expect("send");
    }
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    for _ in 0..4 {
        let mut o = tls_connect(addr, &ccfg);
        o.get_mut()
            .write_all(b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        assert_eq!(read_response(&mut o, false).expect("other").status, 200);
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    for c in &mut stalled {
        for i in 0..8 {
            let r = read_response(c, false).expect("answer");
            assert_eq!(r.status, 206, "answer {i}");
            assert!(r.body == part, "answer {i}: every byte, in order");
        }
        // Kept alive after the loop sent the body.
        c.get_mut()
            .write_all(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        assert_eq!(read_response(c, false).expect("after").status, 200);
    }
    server.shutdown();
}

#[test]
fn tls_trickled_head_respects_head_timeout() {
    let (scfg, ccfg) = tls_configs();
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.tls = Some(scfg);
        c.limits.head_timeout = Duration::from_millis(800);
    });
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("rto");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(ccfg, name).expect("client");
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("handshake");
    }
    // One TLS record holding a whole request, sent one byte every 150 ms (~10 s in all).
    conn.writer()
        .write_all(b"GET /trickle HTTP/1.1\r\nHost: t\r\nX-Pad: 0123456789\r\n\r\n")
        .expect("plaintext");
    let mut record = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut record).expect("record");
    }
    let t = Instant::now();
    let mut cut = false;
    for b in &record {
        if sock.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
        if t.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let mut sink = [0u8; 256];
    let closed = cut || matches!(sock.read(&mut sink), Ok(0) | Err(_));
    // The whole record takes over 10 s to trickle; a close within 8 s proves
    // the 800 ms head timeout covers the head, not each read.
    assert!(
        closed && t.elapsed() < Duration::from_secs(8),
        "{:?}",
        t.elapsed()
    );
    server.shutdown();
}

/// The client's Finished and two pipelined requests in one write (one TLS
/// record for both requests): the readiness loop finishes the handshake, the
/// worker gets the first head, and the second, still inside the TLS session,
/// is not lost.
#[test]
fn tls_request_in_the_handshake_flight_and_pipelined_in_one_record() {
    let (scfg, ccfg) = tls_configs();
    let (server, addr) = start_with("127.0.0.1:0", |c| {
        c.tls = Some(scfg);
        c.limits.head_timeout = Duration::from_secs(3);
    });
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(CLIENT_TIMEOUT)).expect("rto");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(ccfg, name).expect("client");
    while conn.wants_write() {
        conn.write_tls(&mut sock).expect("client hello");
    }
    let t = Instant::now();
    while conn.is_handshaking() {
        assert!(t.elapsed() < CLIENT_TIMEOUT, "handshake never finished");
        assert!(conn.read_tls(&mut sock).expect("server flight") > 0);
        conn.process_new_packets().expect("server flight");
    }
    conn.writer()
        .write_all(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\nGET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("plaintext");
    let mut flight = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut flight).expect("flight");
    }
    sock.write_all(&flight)
        .expect("send Finished and requests at once");
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
    for path in ["/first", "/second"] {
        let r = read_response(&mut tls, false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-path"), Some(path));
    }
    server.shutdown();
}

#[test]
fn a_stalled_file_body_is_finished_by_the_loop_intact_and_kept_alive() {
    // Two workers; two clients each asking for eight pipelined file answers
    // (12 MB, more than the socket buffers hold) and reading nothing for
    // 300 ms: each worker stalls and hands the rest of a body to the
    // readiness loop (else both would be held and `/other` never answered).
    let (server, addr) = start_with("127.0.0.1:0", |c| c.workers = 2);
    let bytes = file_bytes();
    let part = &bytes[7..];
    let one = format!(
        "GET /file?off=7&len={} HTTP/1.1\r\nHost: t\r\n\r\n",
        part.len()
    );
    let mut stalled: Vec<Conn> = (0..2).map(|_| connect(addr)).collect();
    for c in &mut stalled {
        c.send(one.repeat(8).as_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    // No worker is held meanwhile.
    let t = Instant::now();
    let mut others: Vec<Conn> = (0..4).map(|_| connect(addr)).collect();
    for o in &mut others {
        assert_eq!(o.get("/other").status, 200);
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    for c in &mut stalled {
        for i in 0..8 {
            let r = c.resp();
            assert_eq!(r.status, 206, "answer {i}");
            assert!(r.body == part, "answer {i}: every byte, in order");
        }
        // Kept alive after the loop sent the body.
        assert_eq!(c.get("/after").status, 200);
    }
    server.shutdown();
}
