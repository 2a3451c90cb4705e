//! Helpers for the abuse tests: spawn the release binary (killed on drop),
//! open many sockets from chosen loopback source addresses, time a normal
//! client, read the server's VmHWM and warnings. The generic network helpers
//! (source addresses, fd limit, percentiles, VmHWM) are in tests/support/net.rs.

use crate::support::*;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Every socket operation of a test client gives up after this.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the spawned server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One abuse test at a time: each holds thousands of sockets and wants the cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The release binary serving a temporary data folder; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    /// The CA that signed the server certificate (`--tls auto`).
    pub ca_pem: Option<Vec<u8>>,
    _dir: tempfile::TempDir,
}

/// Spawns `soute serve` on 127.0.0.1:0 with 8 workers (unless `extra` says
/// `--workers`), plain or with its own
/// CA, plus `extra` flags. Its log goes to a file in the data folder's parent.
pub fn spawn(tls: bool, extra: &[&str]) -> Server {
    spawn_with(tls, extra, None)
}

/// Like [`spawn`], with the open-file limit (soft and hard) set to `nofile`
/// through the shell's `ulimit`, so the server cannot raise it.
pub fn spawn_with(tls: bool, extra: &[&str], nofile: Option<u32>) -> Server {
    spawn_in(tempfile::tempdir().expect("tempdir"), tls, extra, nofile)
}

/// Like [`spawn_with`], serving the data folder `data` inside `dir` (which
/// may hold one already).
fn spawn_in(dir: tempfile::TempDir, tls: bool, extra: &[&str], nofile: Option<u32>) -> Server {
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let stderr = File::create(&log).expect("log file");
    let bin = env!("CARGO_BIN_EXE_soute");
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--data".into(),
        data.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls".into(),
        if tls { "auto" } else { "off" }.into(),
        "--hostname".into(),
        "localhost".into(),
        "--gc-interval".into(),
        "0".into(),
    ];
    if !extra.contains(&"--workers") {
        args.extend(["--workers".into(), "8".into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut cmd = match nofile {
        None => {
            let mut c = Command::new(bin);
            c.args(&args);
            c
        }
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(bin)
                .args(&args);
            c
        }
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn soute");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining, so the server never writes into a closed pipe.
        let _ = io::copy(&mut r, &mut io::sink());
    });
    let line = match rx.recv_timeout(START_TIMEOUT) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "soute did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    let scheme = if tls { "https" } else { "http" };
    let addr = line
        .trim()
        .strip_prefix(&format!("soute listening on {scheme}://"))
        .and_then(|a| a.parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "unexpected first line {line:?}; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    let ca_pem = tls.then(|| std::fs::read(data.join("tls").join("ca.crt")).expect("ca.crt"));
    Server {
        child,
        addr,
        log,
        ca_pem,
        _dir: dir,
    }
}

impl Server {
    /// The data folder it serves.
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Stops this server (killed), runs `between` on its data folder, and
    /// starts a new one (plain) on the same folder with `extra` flags.
    pub fn restart_plain(
        mut self,
        between: impl FnOnce(&std::path::Path),
        extra: &[&str],
    ) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        between(&self.data_dir());
        let dir = tempfile::tempdir().expect("placeholder");
        let dir = std::mem::replace(&mut self._dir, dir);
        spawn_in(dir, false, extra, None)
    }

    /// How many descriptors the server has open now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The server's peak resident memory (VmHWM), in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        vm_hwm_kib(self.child.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The HTTP layer's warning lines so far.
    pub fn warnings(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains("soute::http"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a response head from `r` and returns its status.
pub fn read_status(r: &mut impl Read) -> io::Result<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
        if head.len() > 16 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status line in {text:?}")))
}

const V2: &[u8] = b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// A normal client: a new connection from `src`, `GET /v2/`; the status and
/// the time from connect to the response head.
pub fn plain_v2(to: SocketAddr, src: Ipv4Addr) -> io::Result<(u16, Duration)> {
    let t = Instant::now();
    let mut s = connect_from_io(src, to)?;
    s.write_all(V2)?;
    let status = read_status(&mut s)?;
    Ok((status, t.elapsed()))
}

/// The same over TLS, trusting `cfg`'s roots (connect, handshake, request).
pub fn tls_v2(
    to: SocketAddr,
    src: Ipv4Addr,
    cfg: &Arc<rustls::ClientConfig>,
) -> io::Result<(u16, Duration)> {
    let t = Instant::now();
    let s = connect_from_io(src, to)?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, s);
    tls.write_all(V2)?;
    let status = read_status(&mut tls)?;
    Ok((status, t.elapsed()))
}

/// A rustls client configuration trusting only `ca_pem`.
pub fn tls_client(ca_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// How many of `socks` the server still holds open: no end of stream and no
/// error (bytes already there, e.g. TLS session tickets, are skipped).
pub fn still_open<'a>(socks: impl IntoIterator<Item = &'a TcpStream>) -> usize {
    let mut open = 0;
    let mut buf = [0u8; 4096];
    for s in socks {
        s.set_nonblocking(true).expect("nonblocking");
        let mut r = s;
        for _ in 0..16 {
            match r.read(&mut buf) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => open += 1,
                _ => {}
            }
            break;
        }
        s.set_nonblocking(false).expect("blocking");
    }
    open
}

/// `n` connections that send half a request head and stall, spread over
/// the eight source addresses.
pub fn open_slow_heads(to: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut s = connect_from_io(source(i), to).expect("connect");
            s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                .expect("half head");
            s
        })
        .collect()
}

/// The first half of a real ClientHello.
fn half_client_hello(cfg: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(cfg.clone(), name).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("hello");
    }
    hello.truncate(hello.len() / 2);
    hello
}

/// `n` connections that start a TLS handshake and stall: every other one
/// sends half a ClientHello, the rest send nothing.
pub fn open_stalled_handshakes(
    to: SocketAddr,
    n: usize,
    cfg: &Arc<rustls::ClientConfig>,
) -> Vec<TcpStream> {
    let half = half_client_hello(cfg);
    (0..n)
        .map(|i| {
            let mut s = connect_from_io(source(i), to).expect("connect");
            if i % 2 == 0 {
                s.write_all(&half).expect("half hello");
            }
            s
        })
        .collect()
}

pub type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// `n` TLS connections that complete the handshake, then send half a
/// request head and stall (opened by four threads).
pub fn open_tls_slow_heads(
    to: SocketAddr,
    n: usize,
    cfg: &Arc<rustls::ClientConfig>,
) -> Vec<TlsClient> {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                (0..n)
                    .filter(|i| i % 4 == t)
                    .map(|i| {
                        let mut sock = connect_from_io(source(i), to).expect("connect");
                        let name =
                            rustls::pki_types::ServerName::try_from("localhost").expect("name");
                        let mut conn =
                            rustls::ClientConnection::new(cfg.clone(), name).expect("client");
                        while conn.is_handshaking() {
                            conn.complete_io(&mut sock).expect("handshake");
                        }
                        conn.writer()
                            .write_all(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                            .expect("plaintext");
                        while conn.wants_write() {
                            conn.write_tls(&mut sock).expect("half head");
                        }
                        rustls::StreamOwned::new(conn, sock)
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

/// [`connect_from`] with this binary's I/O timeout.
pub fn connect_from_io(src: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    connect_from(src, to, IO_TIMEOUT)
}

/// A blob upload that announces a huge body (or a chunked one) and sends one
/// byte of it.
pub fn open_slow_body(to: SocketAddr, src: Ipv4Addr, i: usize) -> TcpStream {
    let mut s = connect_from_io(src, to).expect("connect");
    let framing = if i.is_multiple_of(2) {
        "Content-Length: 1000000000\r\n\r\nx".to_string()
    } else {
        "Transfer-Encoding: chunked\r\n\r\n100000\r\nx".to_string()
    };
    let head = format!(
        "POST /v2/slow{i}/blobs/uploads/?digest=sha256:{} HTTP/1.1\r\nHost: localhost\r\n{framing}",
        "0".repeat(64)
    );
    s.write_all(head.as_bytes()).expect("slow body head");
    s
}
