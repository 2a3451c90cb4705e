//! Client side of the load check: loopback sockets bound to a chosen source
//! address (so one process looks like several clients), plain or TLS, and a
//! minimal HTTP/1.1 request/response. Never connects anywhere but loopback.

use base64::Engine;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The normal client's source address: never one an attacker uses.
pub const NORMAL_SRC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 100);

/// Attacker source address number `i`: 127.0.0.2 .. 127.0.0.9, round robin.
pub fn attacker_src(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8)
}

/// Where the server is and how to speak to it.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Open, nothing received: the server is still holding it.
    Held,
    /// The server sent something (an error response, a TLS alert).
    Answered,
    /// Closed or reset by the server.
    Closed,
}

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Read and write timeouts on the underlying socket.
    pub fn set_timeouts(&self, t: Duration) {
        let _ = self.tcp().set_read_timeout(Some(t));
        let _ = self.tcp().set_write_timeout(Some(t));
    }

    /// What the server did with this connection so far, without waiting.
    pub fn state(&self) -> ConnState {
        let sock = self.tcp();
        if sock.set_nonblocking(true).is_err() {
            return ConnState::Closed;
        }
        let mut b = [0u8; 1];
        let state = match sock.peek(&mut b) {
            Ok(0) => ConnState::Closed,
            Ok(_) => ConnState::Answered,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ConnState::Held,
            Err(_) => ConnState::Closed,
        };
        let _ = sock.set_nonblocking(false);
        state
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// A TCP connection to `addr` from `src` (bound before connect).
pub fn tcp_from(src: Ipv4Addr, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    sock.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
    sock.connect_timeout(&addr.into(), timeout)?;
    let stream: TcpStream = sock.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection from `src`; over TLS the handshake completes before it returns.
pub fn open(t: &Target, src: Ipv4Addr, timeout: Duration) -> io::Result<Conn> {
    let tcp = tcp_from(src, t.addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    match &t.tls {
        None => Ok(Conn::Plain(tcp)),
        Some(cfg) => {
            let name = rustls_pki_types::ServerName::try_from("localhost")
                .map_err(|e| io::Error::other(e.to_string()))?;
            let conn = rustls::ClientConnection::new(cfg.clone(), name)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock)?;
            }
            Ok(Conn::Tls(Box::new(s)))
        }
    }
}

/// The first half of a TLS ClientHello for `localhost` (a stalled handshake).
pub fn half_client_hello(cfg: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let Ok(name) = rustls_pki_types::ServerName::try_from("localhost") else {
        return Vec::new();
    };
    let Ok(mut conn) = rustls::ClientConnection::new(cfg.clone(), name) else {
        return Vec::new();
    };
    let mut hello = Vec::new();
    let _ = conn.write_tls(&mut hello);
    hello.truncate(hello.len() / 2);
    hello
}

pub fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request head: Host, `Connection: close`, then `headers`.
pub fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (n, v) in headers {
        h.push_str(&format!("{n}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// Reads one response (head, then a Content-Length body or up to EOF).
pub fn read_response(conn: &mut impl Read, deadline: Instant) -> io::Result<Resp> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "response deadline"));
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut hdrs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hdrs);
        let used = match r.parse(&buf) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) if buf.len() < 65536 => continue,
            _ => return Err(io::Error::other("unparsable response")),
        };
        let status = r.code.unwrap_or(0);
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let want = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0)
            .min(1 << 20);
        let mut body = buf[used..].to_vec();
        while body.len() < want && Instant::now() < deadline {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        return Ok(Resp {
            status,
            headers,
            body,
        });
    }
}

/// One request on a new connection from `src`; `Err` for network failures.
pub fn request(
    t: &Target,
    src: Ipv4Addr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<Resp> {
    let deadline = Instant::now() + timeout;
    let mut conn = open(t, src, timeout)?;
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !matches!(method, "GET" | "HEAD") {
        all.push(("Content-Length", "0"));
    }
    conn.write_all(head(method, path, &all).as_bytes())?;
    conn.flush()?;
    read_response(&mut conn, deadline)
}
