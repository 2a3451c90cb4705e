//! A minimal HTTP/1.1 client for the benchmark: one keep-alive connection per
//! `Client`, a 1 MiB read buffer, request bodies written straight from the
//! caller's slice, response bodies collected or discarded. Plain or rustls.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const RBUF: usize = 1 << 20;
/// Bodies up to this size are sent in the same write as the head.
const INLINE_BODY: usize = 64 * 1024;

/// Where a client connects and how it authenticates.
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The whole `Authorization` header value, sent on every request.
    pub auth: Option<String>,
}

impl Target {
    pub fn plain(addr: SocketAddr) -> Arc<Target> {
        Arc::new(Target {
            addr,
            host: addr.to_string(),
            tls: None,
            auth: None,
        })
    }
}

/// A rustls client configuration trusting exactly the given PEM certificates.
pub fn tls_config(ca_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("PEM certificate")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub fn basic_auth(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // A peer that closes without close_notify: treat as EOF.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// What to do with a response body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Collect,
    Discard,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body when collected.
    pub body: Vec<u8>,
    /// Body bytes received (collected or not).
    pub len: u64,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Client {
    target: Arc<Target>,
    stream: Option<Stream>,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    head: Vec<u8>,
    /// Connections opened so far (to check that keep-alive works).
    pub connects: u64,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Client {
    pub fn new(target: Arc<Target>) -> Client {
        Client {
            target,
            stream: None,
            rbuf: vec![0; RBUF],
            rpos: 0,
            rend: 0,
            head: Vec::with_capacity(1024),
            connects: 0,
        }
    }

    fn connect(&mut self) -> io::Result<()> {
        let tcp = TcpStream::connect_timeout(&self.target.addr, Duration::from_secs(10))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(300)))?;
        let stream = match &self.target.tls {
            None => Stream::Plain(tcp),
            Some(cfg) => {
                let host = self
                    .target
                    .host
                    .rsplit_once(':')
                    .map_or(self.target.host.as_str(), |(h, _)| h)
                    .to_string();
                let name = rustls_pki_types::ServerName::try_from(host)
                    .map_err(|e| invalid(format!("server name: {e}")))?;
                let conn = rustls::ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| invalid(format!("TLS: {e}")))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        self.stream = Some(stream);
        self.rpos = 0;
        self.rend = 0;
        self.connects += 1;
        Ok(())
    }

    /// Sends a request and reads the whole response. A request on a kept-alive
    /// connection that the server had closed is retried once on a new one.
    pub fn req(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        mode: Mode,
    ) -> io::Result<Resp> {
        let reused = self.stream.is_some();
        match self.try_req(method, path, headers, body, mode) {
            Err(e) if reused && e.kind() == io::ErrorKind::ConnectionAborted => {
                self.stream = None;
                self.try_req(method, path, headers, body, mode)
            }
            r => r,
        }
    }

    /// GET that collects the body and fails unless the status is `want`.
    pub fn get_ok(&mut self, path: &str, headers: &[(&str, &str)], want: u16) -> io::Result<Resp> {
        let r = self.req("GET", path, headers, &[], Mode::Collect)?;
        if r.status != want {
            return Err(invalid(format!(
                "GET {path}: status {} (wanted {want}): {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
            )));
        }
        Ok(r)
    }

    fn try_req(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        mode: Mode,
    ) -> io::Result<Resp> {
        if self.stream.is_none() {
            self.connect()?;
        }
        let target = self.target.clone();
        let head = &mut self.head;
        head.clear();
        write!(
            head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: soute-bench\r\n",
            target.host
        )?;
        if let Some(a) = &target.auth {
            write!(head, "Authorization: {a}\r\n")?;
        }
        for (k, v) in headers {
            write!(head, "{k}: {v}\r\n")?;
        }
        if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
            write!(head, "Content-Length: {}\r\n", body.len())?;
        }
        head.extend_from_slice(b"\r\n");
        let inline = body.len() <= INLINE_BODY;
        if inline {
            head.extend_from_slice(body);
        }
        let stream = self.stream.as_mut().expect("connected");
        let sent = stream
            .write_all(head)
            .and_then(|_| {
                if inline {
                    Ok(())
                } else {
                    stream.write_all(body)
                }
            })
            .and_then(|_| stream.flush());
        if let Err(e) = sent {
            self.stream = None;
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, e));
        }
        let result = self.read_response(method == "HEAD", mode);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    /// Reads more bytes into the buffer; 0 at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
        }
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| invalid("not connected"))?;
        let n = stream.read(&mut self.rbuf[self.rend..])?;
        self.rend += n;
        Ok(n)
    }

    fn read_response(&mut self, head_only: bool, mode: Mode) -> io::Result<Resp> {
        loop {
            let (status, headers, used) = loop {
                let mut hdrs = [httparse::EMPTY_HEADER; 64];
                let mut parsed = httparse::Response::new(&mut hdrs);
                match parsed
                    .parse(&self.rbuf[self.rpos..self.rend])
                    .map_err(|e| invalid(format!("response head: {e}")))?
                {
                    httparse::Status::Complete(used) => {
                        let headers = parsed
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_string(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect::<Vec<_>>();
                        break (parsed.code.unwrap_or(0), headers, used);
                    }
                    httparse::Status::Partial => {
                        let fresh = self.rpos == self.rend;
                        if self.fill()? == 0 {
                            return Err(if fresh {
                                io::Error::new(io::ErrorKind::ConnectionAborted, "closed")
                            } else {
                                invalid("response head cut short")
                            });
                        }
                    }
                }
            };
            self.rpos += used;
            if (100..200).contains(&status) {
                continue;
            }
            let mut resp = Resp {
                status,
                headers,
                body: Vec::new(),
                len: 0,
            };
            let close = resp
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if head_only || status == 204 || status == 304 {
                // no body
            } else if resp
                .header("transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
            {
                self.read_chunked(&mut resp, mode)?;
            } else if let Some(cl) = resp.header("content-length") {
                let n: u64 = cl
                    .trim()
                    .parse()
                    .map_err(|_| invalid("bad Content-Length"))?;
                self.read_exact_body(n, &mut resp, mode)?;
            } else {
                // Close-delimited.
                self.read_exact_body(u64::MAX, &mut resp, mode)?;
                self.stream = None;
            }
            if close {
                self.stream = None;
            }
            return Ok(resp);
        }
    }

    /// Reads `n` body bytes (u64::MAX: until EOF).
    fn read_exact_body(&mut self, n: u64, resp: &mut Resp, mode: Mode) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            if self.rpos == self.rend && self.fill()? == 0 {
                if n == u64::MAX {
                    return Ok(());
                }
                return Err(invalid("response body cut short"));
            }
            let take = ((self.rend - self.rpos) as u64).min(left) as usize;
            if mode == Mode::Collect {
                resp.body
                    .extend_from_slice(&self.rbuf[self.rpos..self.rpos + take]);
            }
            self.rpos += take;
            resp.len += take as u64;
            left -= take as u64;
        }
        Ok(())
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.rbuf[self.rpos..self.rend]
                .iter()
                .position(|&b| b == b'\n')
            {
                let line =
                    String::from_utf8_lossy(&self.rbuf[self.rpos..self.rpos + i]).into_owned();
                self.rpos += i + 1;
                return Ok(line.trim_end_matches('\r').to_string());
            }
            if self.fill()? == 0 {
                return Err(invalid("chunked body cut short"));
            }
        }
    }

    fn read_chunked(&mut self, resp: &mut Resp, mode: Mode) -> io::Result<()> {
        loop {
            let line = self.read_line()?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("chunk size {line:?}")))?;
            if size == 0 {
                // Trailers until an empty line.
                while !self.read_line()?.is_empty() {}
                return Ok(());
            }
            self.read_exact_body(size, resp, mode)?;
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk data longer than its size"));
            }
        }
    }
}
