//! One client connection while a worker serves it: request-head parsing
//! with its limits, the request/response loop that calls the
//! [`Handler`](super::Handler), and how the connection ends (close, linger,
//! or back to the readiness loop).
//!
//! It must never parse OCI paths or know OCI error codes (the handler words
//! every answer), never buffer a request body, never drain more than a small
//! bounded amount of an unwanted body, never wait for a request head (the
//! readiness loop does that) and never let one connection hold a worker past
//! its timeouts.

use super::admission::{HeadCharge, Slot};
use super::body::{BodyReader, Continue, Framing, MinRate};
use super::io::{ConnIo, Stream};
use super::readiness::Arrival;
use super::response::{self, Outgoing, SendRate};
use super::sending::Deferred;
use super::server::Shared;
use super::{Body, Request, Response};
use std::io::{self, BufRead, Write};
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// At most this much of an unread request body is drained to keep a connection.
const DRAIN_MAX: u64 = 4 * 1024 * 1024;
/// Longest time spent draining an unread body.
const DRAIN_TIME: Duration = Duration::from_secs(2);

pub(crate) struct Conn {
    pub(crate) io: ConnIo,
    pub(crate) remote: SocketAddr,
    /// A TLS connection whose session is not started yet (it has sent
    /// nothing): a silent connection costs no TLS state.
    pub(crate) tls_pending: bool,
    /// This connection's place in the connection caps.
    pub(crate) slot: Slot,
    /// Its buffered head bytes in the head budget (zero while a worker has it).
    pub(crate) charge: HeadCharge,
}

/// What a worker does with a connection after serving it.
pub(crate) enum Next {
    Close,
    /// No whole request head buffered: back to the readiness loop.
    Idle(Conn),
    /// The next request head is already buffered, but other connections are waiting.
    Ready(Conn),
    /// The head of a file answer is written: the readiness loop sends the body.
    Send(Conn, Box<Deferred>),
}

pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) version: u8,
    pub(crate) headers: Vec<(String, String)>,
}

pub(crate) enum HeadError {
    /// The client closed or stayed silent before sending anything: just close.
    Quiet,
    TooLarge,
    TooManyHeaders,
    Malformed,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads and parses one request head, all of it before `deadline`.
pub(crate) fn read_head(
    io: &mut ConnIo,
    deadline: Instant,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Head, HeadError> {
    io.set_head_deadline(Some(deadline));
    let r = read_head_inner(io, deadline, max_bytes, max_headers);
    io.set_head_deadline(None);
    r
}

fn read_head_inner(
    io: &mut ConnIo,
    deadline: Instant,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Head, HeadError> {
    let mut got_bytes = !io.buffered().is_empty();
    loop {
        if !io.buffered().is_empty() {
            if let Some((head, n)) = parse_head(io.buffered(), max_bytes, max_headers)? {
                io.consume(n);
                return Ok(head);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            log::debug!("request head timeout");
            return Err(HeadError::Quiet);
        }
        io.set_read_timeout(deadline - now);
        match io.fill_more(max_bytes) {
            Ok(0) if got_bytes => return Err(HeadError::Malformed),
            Ok(0) => return Err(HeadError::Quiet),
            Ok(_) => got_bytes = true,
            Err(e) if e.kind() == io::ErrorKind::Other && io.buffered().len() >= max_bytes => {
                return Err(HeadError::TooLarge)
            }
            Err(e) => {
                if timed_out(&e) {
                    log::debug!("request head timeout");
                } else {
                    log::debug!("reading request head: {e}");
                }
                return Err(HeadError::Quiet);
            }
        }
    }
}

/// Parses the request head at the start of `buffered`: `Some((head, n))` when
/// a whole head of `n` bytes is there, `None` while more bytes may complete it.
pub(crate) fn parse_head(
    buffered: &[u8],
    max_bytes: usize,
    max_headers: usize,
) -> Result<Option<(Head, usize)>, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers.max(1)];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(buffered) {
        Ok(httparse::Status::Complete(n)) => {
            if n > max_bytes {
                return Err(HeadError::TooLarge);
            }
            let head = Head {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                version: req.version.unwrap_or(1),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_string();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect(),
            };
            Ok(Some((head, n)))
        }
        Ok(httparse::Status::Partial) if buffered.len() >= max_bytes => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Splits a request target into (path, query). Origin form, absolute form and `*`.
fn split_target(target: &str) -> Option<(String, String)> {
    let rest = if target.starts_with('/') {
        target
    } else if target == "*" {
        return Some(("*".to_string(), String::new()));
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return None;
        }
        let after = &target[target.find("://")? + 3..];
        // The authority ends at the first `/`, `?` or `#` (RFC 3986 3.2).
        match after
            .find(['/', '?', '#'])
            .map(|i| (i, after.as_bytes()[i]))
        {
            Some((i, b'/')) => &after[i..],
            Some((i, b'?')) => {
                let query = &after[i + 1..];
                let query = query.split('#').next().unwrap_or(query);
                return Some(("/".to_string(), query.to_string()));
            }
            // Only a fragment, or nothing, after the authority.
            _ => "/",
        }
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    Some(match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (rest.to_string(), String::new()),
    })
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Decides the body framing from the headers; Err(reason) for a 400.
fn framing(headers: &[(String, String)], version: u8) -> Result<Framing, &'static str> {
    let mut te = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .peekable();
    let mut cl = headers.iter().filter(|(n, _)| n == "content-length");
    let first_cl = cl.next();
    if te.peek().is_some() {
        if first_cl.is_some() {
            return Err("both Content-Length and Transfer-Encoding");
        }
        if version == 0 {
            return Err("Transfer-Encoding in an HTTP/1.0 request");
        }
        let mut codings = te.flat_map(|(_, v)| v.split(',')).map(str::trim);
        return match (codings.next(), codings.next()) {
            (Some(c), None) if c.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err("unsupported transfer coding"),
        };
    }
    let Some((_, v)) = first_cl else {
        return Ok(Framing::Length(0));
    };
    if cl.next().is_some() {
        return Err("repeated Content-Length");
    }
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err("malformed Content-Length");
    }
    v.parse::<u64>()
        .map(Framing::Length)
        .map_err(|_| "malformed Content-Length")
}

/// What serving a parsed head means before the handler runs: the target split
/// into path and query, the body framing, a pending `100 Continue`, and whether
/// the connection closes after the answer.
pub(crate) struct Plan {
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) framing: Framing,
    pub(crate) cont: Continue,
    pub(crate) close: bool,
    /// An HTTP/1.0 client that asked for keep-alive.
    pub(crate) keep_alive_10: bool,
}

/// Decides a head's [`Plan`]; `Err((status, reason))` when it is refused.
pub(crate) fn plan(head: &Head) -> Result<Plan, (u16, &'static str)> {
    let Some((path, query)) = split_target(&head.target) else {
        return Err((400, "unsupported request target"));
    };
    let framing = framing(&head.headers, head.version).map_err(|why| (400, why))?;
    let mut cont = Continue::No;
    for (_, v) in head.headers.iter().filter(|(n, _)| n == "expect") {
        if v.eq_ignore_ascii_case("100-continue") {
            if head.version >= 1 {
                cont = Continue::Pending;
            }
        } else {
            return Err((417, "unsupported expectation"));
        }
    }
    let close = if head.version == 0 {
        !has_token(&head.headers, "connection", "keep-alive")
    } else {
        has_token(&head.headers, "connection", "close")
    };
    Ok(Plan {
        path,
        query,
        framing,
        cont,
        close,
        keep_alive_10: head.version == 0 && !close,
    })
}

/// Flushes and shuts the write side, then gives the connection to the
/// readiness loop, which reads (and drops) briefly what the client still
/// sends, so the answer is not lost to a reset; no worker waits for that.
fn linger_close(shared: &Shared, mut conn: Conn) {
    let _ = conn.io.flush();
    if let Stream::Tls(t) = &mut conn.io.stream {
        t.conn.send_close_notify();
        let _ = t.conn.write_tls(&mut t.sock);
    }
    let _ = conn.io.tcp().shutdown(Shutdown::Write);
    if !shared.stopping() {
        shared.waiting.hand(conn, Arrival::Closing);
    }
}

/// A plain close after a complete exchange (TLS: with close_notify).
fn close_clean(mut io: ConnIo) {
    if let Stream::Tls(t) = &mut io.stream {
        t.conn.send_close_notify();
        let _ = t.conn.write_tls(&mut t.sock);
    }
    let _ = io.tcp().shutdown(Shutdown::Write);
}

fn access_log(
    remote: SocketAddr,
    method: &str,
    path: &str,
    status: u16,
    bytes: u64,
    start: Instant,
    id: u64,
) {
    log::info!(
        target: "soute::access",
        "{} {} {} {} {} {}ms id={}",
        remote,
        method,
        path,
        status,
        bytes,
        start.elapsed().as_millis(),
        id
    );
}

/// The minimum send rate of the server's responses.
pub(crate) fn send_rate(shared: &Shared) -> SendRate {
    SendRate {
        bytes_per_sec: shared.cfg.min_send_rate,
        window: shared.cfg.body_rate_grace,
        write_timeout: shared.cfg.write_timeout,
    }
}

/// Answers a request that never reached the handler (in the handler's words), then closes.
fn reject(shared: &Shared, conn: Conn, status: u16, why: &str, start: Instant) -> Next {
    let id = shared.next_id();
    log::debug!("{} rejected with {status}: {why}", conn.remote);
    let mut conn = conn;
    let resp = shared.handler.rejection(status, why);
    let out = Outgoing {
        head_only: false,
        close: true,
        keep_alive_10: false,
        rate: send_rate(shared),
    };
    let (r, bytes) = response::write(&mut conn.io, resp, out);
    if let Err(e) = r {
        log::debug!("{} writing {status}: {e}", conn.remote);
    }
    access_log(conn.remote, "-", "-", status, bytes, start, id);
    let m = crate::metrics::get();
    m.transport.bytes_sent.add(bytes);
    let rejected = crate::metrics::Endpoint::Rejected.label();
    m.requests
        .observe(rejected, "other", status, start.elapsed());
    linger_close(shared, conn);
    Next::Close
}

/// Answers `status` (in the handler's words) to a connection no request of
/// which was read, then closes it.
pub(crate) fn refuse(shared: &Shared, conn: Conn, status: u16, why: &str) {
    reject(shared, conn, status, why, Instant::now());
}

/// Serves requests on `conn` while whole request heads are buffered; the
/// readiness loop handed it over with (at least) one.
pub(crate) fn serve(shared: &Shared, mut conn: Conn) -> Next {
    let cfg = &shared.cfg;
    loop {
        let deadline = Instant::now() + cfg.head_timeout;
        let head = match read_head(&mut conn.io, deadline, cfg.max_head_bytes, cfg.max_headers) {
            Ok(h) => h,
            Err(HeadError::Quiet) => return Next::Close,
            Err(HeadError::TooLarge) => {
                return reject(shared, conn, 431, "request head too large", Instant::now())
            }
            Err(HeadError::TooManyHeaders) => {
                return reject(shared, conn, 431, "too many header fields", Instant::now())
            }
            Err(HeadError::Malformed) => {
                return reject(shared, conn, 400, "malformed request head", Instant::now())
            }
        };
        let start = Instant::now();
        let Plan {
            path,
            query,
            framing,
            cont,
            close,
            keep_alive_10,
        } = match plan(&head) {
            Ok(p) => p,
            Err((status, why)) => return reject(shared, conn, status, why, start),
        };
        let mut close = close;
        let id = shared.next_id();
        let head_only = head.method == "HEAD";
        let remote = conn.remote;
        let secure = conn.io.is_tls();

        let rate = MinRate {
            bytes_per_sec: cfg.min_body_rate,
            grace: cfg.body_rate_grace,
        };
        let mut body = BodyReader::new(&mut conn.io, framing, cont, cfg.body_timeout, rate);
        let mut req = Request {
            method: head.method,
            path,
            query,
            headers: head.headers,
            remote,
            secure,
            id,
            body: &mut body,
        };
        let handler = &shared.handler;
        let outcome = catch_unwind(AssertUnwindSafe(|| handler.handle(&mut req)));
        let Request { method, path, .. } = req;
        let mut resp = match outcome {
            Ok(r) => r,
            Err(_) => {
                log::error!("handler panicked on {method} {path} (request id {id})");
                close = true;
                catch_unwind(AssertUnwindSafe(|| handler.internal_error(id)))
                    .unwrap_or_else(|_| Response::new(500))
            }
        };
        close |= resp.close || shared.stopping() || has_token(&resp.headers, "connection", "close");
        if !close && !body.finished() {
            // Keep the connection only if the rest of the body is small and quick.
            let drained = body.drain(DRAIN_MAX, Instant::now() + DRAIN_TIME.min(cfg.body_timeout));
            if !drained {
                log::debug!("{remote} request body left unread: closing");
                close = true;
            }
        }
        let unread = !body.finished() || body.failed();
        let metrics = crate::metrics::get();
        metrics.transport.bytes_received.add(body.got());
        drop(body);

        resp.close = close;
        let out = Outgoing {
            head_only,
            close,
            keep_alive_10,
            rate: send_rate(shared),
        };
        let status = resp.status;
        let label = resp.label;
        let counted = |bytes: u64| {
            metrics.transport.bytes_sent.add(bytes);
            metrics
                .requests
                .observe(label, &method, status, start.elapsed());
        };
        // A file body: copied here while the client keeps up; what a
        // stalled client has not taken, the loop sends (plain or TLS).
        let defer = !head_only && matches!(resp.body, Body::File { .. } | Body::Growing { .. });
        let (written, bytes) = match defer.then(|| shared.sends.try_take()).flatten() {
            Some(permit) => match response::write_or_hand_off(&mut conn.io, resp, out) {
                (Ok(Some(body)), bytes) => {
                    access_log(remote, &method, &path, status, bytes, start, id);
                    counted(bytes);
                    let deferred = Deferred {
                        body,
                        close,
                        unread,
                        _permit: permit,
                    };
                    return Next::Send(conn, Box::new(deferred));
                }
                (r, bytes) => (r.map(|_| ()), bytes),
            },
            None => response::write(&mut conn.io, resp, out),
        };
        access_log(remote, &method, &path, status, bytes, start, id);
        counted(bytes);
        if let Err(e) = written {
            log::debug!("{remote} writing response: {e}");
            return Next::Close;
        }
        if close {
            if unread {
                linger_close(shared, conn);
            } else {
                close_clean(conn.io);
            }
            return Next::Close;
        }
        // The next request already here whole (pipelined, or a quick client)?
        // Otherwise the readiness loop waits for it (it also picks up what TLS
        // decrypted already).
        if !conn.io.head_ready(cfg.max_head_bytes, cfg.max_headers) {
            conn.io.fill_if_readable(cfg.max_head_bytes);
        }
        if conn.io.head_ready(cfg.max_head_bytes, cfg.max_headers) {
            if shared.others_waiting() {
                return Next::Ready(conn);
            }
            continue;
        }
        conn.io.release_buffer();
        return Next::Idle(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn framing_rules() {
        assert!(matches!(framing(&h(&[]), 1), Ok(Framing::Length(0))));
        assert!(matches!(
            framing(&h(&[("content-length", "12")]), 1),
            Ok(Framing::Length(12))
        ));
        assert!(matches!(
            framing(&h(&[("transfer-encoding", "Chunked")]), 1),
            Ok(Framing::Chunked)
        ));
        for bad in [
            h(&[("content-length", "1"), ("transfer-encoding", "chunked")]),
            h(&[("content-length", "1"), ("content-length", "1")]),
            h(&[("content-length", "1"), ("content-length", "2")]),
            h(&[("content-length", "1, 1")]),
            h(&[("content-length", "+1")]),
            h(&[("content-length", "")]),
            h(&[("content-length", "99999999999999999999")]),
            h(&[("transfer-encoding", "gzip")]),
            h(&[("transfer-encoding", "gzip, chunked")]),
            h(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ]),
        ] {
            assert!(framing(&bad, 1).is_err(), "{bad:?}");
        }
        assert!(framing(&h(&[("transfer-encoding", "chunked")]), 0).is_err());
    }

    #[test]
    fn targets() {
        let t = |s: &str| split_target(s);
        assert_eq!(t("/v2/?a=b"), Some(("/v2/".into(), "a=b".into())));
        assert_eq!(t("/x"), Some(("/x".into(), "".into())));
        assert_eq!(
            t("http://h:5000/v2/x?q"),
            Some(("/v2/x".into(), "q".into()))
        );
        assert_eq!(t("https://h"), Some(("/".into(), "".into())));
        // A query right after the authority loses its fragment too (found by
        // the http_head fuzz target); a fragment there is no path.
        assert_eq!(t("http://h?v1/#x"), Some(("/".into(), "v1/".into())));
        assert_eq!(t("http://h#frag/v2/x"), Some(("/".into(), "".into())));
        assert_eq!(t("*"), Some(("*".into(), "".into())));
        assert_eq!(t("v2"), None);
    }
}
