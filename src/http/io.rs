//! A connection's byte stream: the socket (plain or TLS), its read buffer,
//! and reads that respect a request-head deadline even when a TLS peer
//! trickles a record byte by byte.
//!
//! It must never parse HTTP beyond finding where a request head ends, never
//! keep a read buffer on a connection that waits with nothing buffered, and
//! never block in a read while the socket is in non-blocking mode.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Read buffer size for a connection in use (grown up to the head limit).
pub(crate) const READ_BUF: usize = 16 * 1024;

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

/// The socket with its read buffer. The buffer exists only while the
/// connection is in use; idle connections give it back.
pub(crate) struct ConnIo {
    pub(crate) stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The SO_RCVTIMEO last set (None: unknown).
    rto: Option<Duration>,
    /// While reading a request head: when it must be complete (enforced
    /// between the socket reads one TLS record may need).
    deadline: Option<Instant>,
}

impl ConnIo {
    pub(crate) fn new(stream: Stream) -> ConnIo {
        ConnIo {
            stream,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            rto: None,
            deadline: None,
        }
    }

    pub(crate) fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Sets the socket read timeout (a zero duration becomes 1 ms: zero means "none").
    pub(crate) fn set_read_timeout(&mut self, d: Duration) {
        let d = d.max(Duration::from_millis(1));
        if self.rto != Some(d) {
            self.rto = self.tcp().set_read_timeout(Some(d)).ok().map(|()| d);
        }
    }

    /// The same connection with a new server-side TLS session on its socket
    /// (a no-op when it already speaks TLS).
    pub(crate) fn into_tls(
        self,
        cfg: &std::sync::Arc<rustls::ServerConfig>,
    ) -> Result<ConnIo, rustls::Error> {
        let ConnIo {
            stream,
            buf,
            pos,
            end,
            rto,
            deadline,
        } = self;
        let stream = match stream {
            Stream::Plain(sock) => {
                let tls = rustls::ServerConnection::new(cfg.clone())?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(tls, sock)))
            }
            tls => tls,
        };
        Ok(ConnIo {
            stream,
            buf,
            pos,
            end,
            rto,
            deadline,
        })
    }

    /// The bytes read but not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Appends bytes the readiness loop read. The buffer grows with what
    /// arrived (doubling, never past `limit`): a slow head costs about what it
    /// sent, not a whole read buffer.
    pub(crate) fn append(&mut self, data: &[u8], limit: usize) {
        if self.buf.len() - self.end < data.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            let need = self.end + data.len();
            if self.buf.len() < need {
                let cap = (self.buf.capacity() * 2).clamp(need, limit.max(need));
                self.buf.reserve_exact(cap - self.buf.len());
                self.buf.resize(need, 0);
            }
        }
        self.buf[self.end..self.end + data.len()].copy_from_slice(data);
        self.end += data.len();
    }

    /// True when a whole request head is buffered, or bytes that can never
    /// become one (malformed, too many fields, at the size limit): either way
    /// a worker can answer without waiting for the client.
    pub(crate) fn head_ready(&self, max_bytes: usize, max_headers: usize) -> bool {
        let b = self.buffered();
        if b.is_empty() {
            return false;
        }
        if b.len() >= max_bytes {
            return true;
        }
        let mut slots = vec![httparse::EMPTY_HEADER; max_headers.max(1)];
        !matches!(
            httparse::Request::new(&mut slots).parse(b),
            Ok(httparse::Status::Partial)
        )
    }

    /// Takes in what the client already sent, if its socket is readable now,
    /// without ever waiting (a worker looking for the next pipelined head).
    pub(crate) fn fill_if_readable(&mut self, limit: usize) {
        let mut p = [libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if !matches!(super::sys::poll(&mut p, 0), Ok(n) if n > 0) {
            return;
        }
        if self.set_nonblocking(true).is_ok() {
            // WouldBlock, EOF or an error: the readiness loop sees it too.
            let _ = self.fill_more(limit);
        }
        let _ = self.set_nonblocking(false);
    }

    /// Sets the deadline TLS reads of a request head respect (None: none).
    pub(crate) fn set_head_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Non-blocking while the readiness loop holds the connection, blocking
    /// (with socket timeouts) while a worker does.
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(on)
    }

    /// Frees the read buffer when it holds nothing (for idle connections).
    pub(crate) fn release_buffer(&mut self) {
        if self.pos == self.end {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
        }
    }

    fn read_stream(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let r = match &mut self.stream {
                Stream::Plain(s) => s.read(out),
                Stream::Tls(t) => {
                    let r = tls_read(t, out, self.deadline);
                    if self.deadline.is_some() {
                        self.rto = None;
                    }
                    r
                }
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Makes room at the end of the buffer, growing it up to `limit` bytes.
    /// False when the buffer is full and may not grow.
    fn make_room(&mut self, limit: usize) -> bool {
        if self.end < self.buf.len() {
            return true;
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            if self.end < self.buf.len() {
                return true;
            }
        }
        let cap = self.buf.len();
        let limit = limit.max(READ_BUF);
        if cap >= limit {
            return false;
        }
        let new = if cap == 0 {
            READ_BUF.min(limit)
        } else {
            (cap * 2).min(limit)
        };
        self.buf.resize(new, 0);
        true
    }

    /// Reads more bytes into the buffer. Ok(0) at end of stream.
    pub(crate) fn fill_more(&mut self, limit: usize) -> io::Result<usize> {
        if !self.make_room(limit) {
            return Err(io::Error::other("read buffer full"));
        }
        let mut buf = std::mem::take(&mut self.buf);
        let r = self.read_stream(&mut buf[self.end..]);
        self.buf = buf;
        let n = r?;
        self.end += n;
        Ok(n)
    }
}

/// Reads decrypted bytes, one socket read at a time, so that a peer trickling
/// a TLS record byte by byte cannot outlive `deadline` (rustls' own
/// `Stream::read` loops over socket reads until a whole record arrived).
fn tls_read(
    t: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    out: &mut [u8],
    deadline: Option<Instant>,
) -> io::Result<usize> {
    loop {
        match t.conn.reader().read(out) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return r,
        }
        while t.conn.wants_write() {
            t.conn.write_tls(&mut t.sock)?;
        }
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head timeout",
                ));
            }
            t.sock
                .set_read_timeout(Some((d - now).max(Duration::from_millis(1))))?;
        }
        if t.conn.read_tls(&mut t.sock)? == 0 {
            // End of stream: rustls now reports Ok(0) (close_notify) or UnexpectedEof.
            t.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            return t.conn.reader().read(out);
        }
        if let Err(e) = t.conn.process_new_packets() {
            let _ = t.conn.write_tls(&mut t.sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

impl Read for ConnIo {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end && out.len() >= READ_BUF {
            return self.read_stream(out);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ConnIo {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            self.fill_more(READ_BUF)?;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
}

impl Write for ConnIo {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(s) => s.write(data),
            Stream::Tls(t) => t.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn conn_io() -> (ConnIo, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        (ConnIo::new(Stream::Plain(s)), c)
    }

    #[test]
    fn append_grows_by_what_arrived_and_finds_whole_heads() {
        let (mut io, _peer) = conn_io();
        assert!(!io.head_ready(1024, 10));
        io.append(b"GET / HTTP/1.1\r\nHost: x\r\n", 1024);
        assert!(
            io.buf.capacity() < 64,
            "no whole read buffer for a slow head"
        );
        assert!(!io.head_ready(1024, 10));
        io.append(b"\r\nGET /next", 1024);
        assert!(io.head_ready(1024, 10));
        // The first head consumed: the pipelined rest is partial.
        io.consume(27);
        assert_eq!(io.buffered(), b"GET /next");
        assert!(!io.head_ready(1024, 10));
        // Garbage, too many fields, or the size limit: a worker answers at once.
        let (mut bad, _p) = conn_io();
        bad.append(b"\x16\x03\x01 not http\r\n", 1024);
        assert!(bad.head_ready(1024, 10));
        let (mut many, _p) = conn_io();
        many.append(b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n", 1024);
        assert!(many.head_ready(1024, 2));
        let (mut full, _p) = conn_io();
        full.append(&[b'a'; 300], 1024);
        assert!(full.head_ready(300, 10));
        io.release_buffer();
        assert_eq!(io.buffered(), b"GET /next", "a partial head is kept");
    }
}
