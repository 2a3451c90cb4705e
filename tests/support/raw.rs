//! Raw TCP: requests no HTTP library would send as is (framing, odd paths,
//! pipelining) and a byte-exact HTTP/1.1 response reader.
//! Must NEVER read past the end of the response it parses (pipelined and
//! keep-alive tests read several responses off one stream).

use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawResp {
    /// The status line as sent, without CRLF.
    pub status_line: String,
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// True when EOF was seen while reading the body.
    pub closed: bool,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::http::header_in(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first error code of a JSON error body, if any.
    pub fn error_code(&self) -> Option<String> {
        self.json()?["errors"][0]["code"]
            .as_str()
            .map(str::to_string)
    }

    /// Retry-After in seconds; panics when absent or not a number.
    pub fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After on {self:?}"))
            .parse()
            .expect("Retry-After is a number of seconds")
    }

    /// True when the server announced `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Opens a connection with read/write timeouts.
pub fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    s.set_write_timeout(Some(timeout)).expect("timeout");
    s
}

/// One keep-alive connection: write requests, read responses in order.
pub struct Conn {
    pub w: TcpStream,
    pub r: BufReader<TcpStream>,
    /// Every response must be HTTP/1.1 and, when it has a body, framed by
    /// Content-Length (what `soute::http` always sends).
    pub strict: bool,
}

impl Conn {
    pub fn open(addr: SocketAddr, timeout: Duration) -> Conn {
        let s = connect(addr, timeout);
        let r = BufReader::new(s.try_clone().expect("clone"));
        Conn {
            w: s,
            r,
            strict: false,
        }
    }

    /// [`Conn::open`] with [`Conn::strict`] set.
    pub fn open_strict(addr: SocketAddr, timeout: Duration) -> Conn {
        Conn {
            strict: true,
            ..Conn::open(addr, timeout)
        }
    }

    /// The next response; `head` for a response to HEAD.
    pub fn read(&mut self, head: bool) -> io::Result<RawResp> {
        let r = read_response(&mut self.r, head)?;
        if self.strict {
            check_strict(&r, head)?;
        }
        Ok(r)
    }

    pub fn send(&mut self, data: &[u8]) {
        self.w.write_all(data).expect("send");
    }

    /// The next response (to a non-HEAD request).
    pub fn resp(&mut self) -> RawResp {
        self.read(false).expect("response")
    }

    /// GET `path` and read the response.
    pub fn get(&mut self, path: &str) -> RawResp {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.resp()
    }

    /// True when the connection is open right now: no EOF, no reset, no
    /// byte pending (checked with a 10 ms read; buffered bytes count as open).
    pub fn open_now(&mut self) -> bool {
        if !self.r.buffer().is_empty() {
            return true;
        }
        let old = self.r.get_ref().read_timeout().ok().flatten();
        let _ = self
            .r
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(10)));
        let mut b = [0u8; 1];
        let open = match self.r.get_mut().peek(&mut b) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        let _ = self.r.get_ref().set_read_timeout(old);
        open
    }

    /// True when the server closed (EOF or reset) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.r.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

/// HTTP/1.1, and Content-Length on every response that has a body.
fn check_strict(r: &RawResp, head: bool) -> io::Result<()> {
    if !r.status_line.starts_with("HTTP/1.1 ") {
        return Err(io::Error::other(format!(
            "not HTTP/1.1: {:?}",
            r.status_line
        )));
    }
    let has_body = !(head || r.status < 200 || r.status == 204 || r.status == 304);
    if has_body && r.header("content-length").is_none() {
        return Err(io::Error::other("response without Content-Length"));
    }
    Ok(())
}

/// Writes `req` from a helper thread (ignoring errors: the server may answer
/// and close before reading everything) while this thread reads the response;
/// then waits up to 3 s for the server to close the connection (`closed`).
pub fn send_and_read(addr: SocketAddr, req: Vec<u8>) -> RawResp {
    let mut s = connect(addr, Duration::from_secs(10));
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        for piece in req.chunks(64 * 1024) {
            if w.write_all(piece).is_err() {
                break;
            }
        }
    });
    let mut r = read_response(&mut s, false).expect("a response");
    r.closed = r.closed || peer_closed(&mut s, Some(Duration::from_secs(3)));
    drop(s);
    let _ = writer.join();
    r
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResp {
    let mut s = connect(addr, Duration::from_secs(10));
    // The server may answer and close before reading everything; ignore write errors.
    let _ = s.write_all(request);
    let _ = s.flush();
    read_response(&mut s, false)
        .unwrap_or_else(|e| panic!("no response to {:?}: {e}", head_line(request)))
}

fn head_line(request: &[u8]) -> String {
    let end = request
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(request.len())
        .min(200);
    String::from_utf8_lossy(&request[..end]).into_owned()
}

/// Reads one line ending in LF, byte by byte (so nothing past it is consumed).
fn read_line_exact<R: Read>(r: &mut R, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b)? == 0 {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed mid-line: {:?}", String::from_utf8_lossy(&line)),
                ))
            };
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            return Ok(Some(line));
        }
        if line.len() > limit {
            return Err(io::Error::other("line over the limit"));
        }
    }
}

/// Reads one HTTP/1.1 response from `r` and nothing after it; for a response
/// to HEAD pass `head = true`. Bodies framed by Content-Length, chunked, or
/// (without either) by the close. `closed` is set only when EOF was seen
/// while reading the body; use [`peer_closed`] to wait for a close.
pub fn read_response<R: Read>(r: &mut R, head: bool) -> io::Result<RawResp> {
    let first = read_line_exact(r, 64 << 10)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response"))?;
    let status_line = String::from_utf8_lossy(&first)
        .trim_end_matches(['\r', '\n'])
        .to_string();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    let mut head_bytes = first.len();
    loop {
        let line = read_line_exact(r, 64 << 10)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed in the head"))?;
        head_bytes += line.len();
        if head_bytes > 1 << 20 {
            return Err(io::Error::other("response head over 1 MiB"));
        }
        let text = String::from_utf8_lossy(&line);
        let l = text.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut resp = RawResp {
        status_line,
        status,
        headers,
        body: Vec::new(),
        closed: false,
    };
    if head || status == 204 || status == 304 || status < 200 {
        return Ok(resp);
    }
    if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let n = r.read(&mut body[got..])?;
            if n == 0 {
                resp.closed = true;
                break;
            }
            got += n;
        }
        body.truncate(got);
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let Some(line) = read_line_exact(r, 1024)? else {
                resp.closed = true;
                break;
            };
            let text = String::from_utf8_lossy(&line);
            let size_text = text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers up to the empty line.
                while let Some(t) = read_line_exact(r, 64 << 10)? {
                    if t == b"\r\n" || t == b"\n" {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk)?;
            resp.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        // Delimited by the close.
        let mut tmp = [0u8; 16384];
        loop {
            match r.read(&mut tmp) {
                Ok(0) => {
                    resp.closed = true;
                    break;
                }
                Ok(n) => resp.body.extend_from_slice(&tmp[..n]),
                Err(_) => break,
            }
        }
    }
    Ok(resp)
}

/// True when the peer closed (EOF or reset) within `wait` (or the socket's
/// read timeout when `None`).
pub fn peer_closed(s: &mut TcpStream, wait: Option<Duration>) -> bool {
    let old = s.read_timeout().ok().flatten();
    if let Some(w) = wait {
        let _ = s.set_read_timeout(Some(w));
    }
    let mut b = [0u8; 1024];
    let deadline = Instant::now() + wait.or(old).unwrap_or(Duration::from_secs(10));
    let res = loop {
        match s.read(&mut b) {
            Ok(0) => break true,
            Ok(_) if Instant::now() < deadline => continue, // stray bytes; keep looking
            Ok(_) => break false,
            Err(e) => {
                break !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                )
            }
        }
    };
    let _ = s.set_read_timeout(old);
    res
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Half-closes our side after writing (signals "no more body").
pub fn shutdown_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}
