//! The servers under test (soute and CNCF distribution as child processes),
//! their /proc figures, and the null servers that measure the client's ceiling.

use crate::client::{self, Client, Mode, Target};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DISTRIBUTION: &str = "/usr/bin/docker-registry";
pub const USER: &str = "benchuser";
pub const PASS: &str = "bench-password-1";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Soute,
    Distribution,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Soute => "soute",
            Kind::Distribution => "distribution",
        }
    }
}

/// TLS with one user (Basic auth on every request), or plain without users.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode2 {
    Plain,
    TlsAuth,
}

pub struct Server {
    pub kind: Kind,
    pub child: Child,
    pub target: Arc<Target>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client::new(self.target.clone())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn drain_in_thread(r: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut BufReader::new(r), &mut std::io::sink());
    });
}

/// Adds the bench user to a soute data folder (before start).
pub fn soute_add_user(bin: &Path, data: &Path) {
    let mut child = Command::new(bin)
        .args(["user", "add", USER, "--data"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("soute user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASS}\n").as_bytes())
        .expect("password");
    let status = child.wait().expect("soute user add");
    assert!(status.success(), "soute user add failed");
}

/// Starts soute; `port` 0 lets it choose (read from its stdout).
pub fn start_soute(bin: &Path, data: &Path, mode: Mode2, port: u16) -> Server {
    start_soute_with(bin, data, mode, port, &[])
}

/// [`start_soute`] with `extra` serve flags.
pub fn start_soute_with(bin: &Path, data: &Path, mode: Mode2, port: u16, extra: &[&str]) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--data"])
        .arg(data)
        .args(["--listen", &listen, "--log-level", "error"])
        .args(extra);
    match mode {
        Mode2::Plain => cmd.args(["--tls", "off"]),
        Mode2::TlsAuth => cmd.args(["--tls", "auto", "--hostname", "localhost"]),
    };
    let log = std::fs::File::create(data.with_extension("soute.log")).expect("log file");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn soute");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("soute stdout");
    drain_in_thread(out);
    let url = line
        .trim()
        .strip_prefix("soute listening on ")
        .unwrap_or_else(|| panic!("unexpected soute output {line:?}"));
    let addr: SocketAddr = url
        .split_once("://")
        .map(|(_, a)| a)
        .unwrap_or(url)
        .parse()
        .expect("soute address");
    let target = match mode {
        Mode2::Plain => Target::plain(addr),
        Mode2::TlsAuth => {
            let ca = std::fs::read(data.join("tls").join("ca.crt")).expect("soute ca.crt");
            Arc::new(Target {
                addr,
                host: format!("localhost:{}", addr.port()),
                tls: Some(client::tls_config(&ca)),
                auth: Some(client::basic_auth(USER, PASS)),
            })
        }
    };
    Server {
        kind: Kind::Soute,
        child,
        target,
    }
}

/// TLS material for distribution: (cert, key, CA PEM to trust).
pub struct DistTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: Vec<u8>,
}

/// Writes distribution's config (and htpasswd) under `dir`; returns its path.
pub fn distribution_config(dir: &Path, root: &Path, port: u16, tls: Option<&DistTls>) -> PathBuf {
    let mut cfg = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: x\n",
        root.display()
    );
    if let Some(t) = tls {
        cfg.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            t.cert.display(),
            t.key.display()
        ));
        // htpasswd -B's default cost (5), as distribution's docs use.
        let hash = bcrypt::hash(PASS, 5).expect("bcrypt");
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).expect("htpasswd");
        cfg.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: r\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let path = dir.join(if tls.is_some() {
        "config-tls.yml"
    } else {
        "config.yml"
    });
    std::fs::write(&path, cfg).expect("distribution config");
    path
}

/// Starts distribution and waits until `/v2/` answers.
pub fn start_distribution(dir: &Path, root: &Path, tls: Option<&DistTls>, port: u16) -> Server {
    let config = distribution_config(dir, root, port, tls);
    spawn_distribution(dir, &config, tls, port)
}

/// Starts distribution with the config file `config` (listening on `port`)
/// and waits until `/v2/` answers.
pub fn spawn_distribution(dir: &Path, config: &Path, tls: Option<&DistTls>, port: u16) -> Server {
    let log = std::fs::File::create(dir.join("distribution.log")).expect("log file");
    let child = Command::new(DISTRIBUTION)
        .arg("serve")
        .arg(config)
        // Its S3 driver (aws-sdk-go) panics at start-up when this is set:
        // "LoadCustomCABundleError: HTTPClient's transport unsupported type".
        .env_remove("AWS_CA_BUNDLE")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn docker-registry");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let target = match tls {
        None => Target::plain(addr),
        Some(t) => Arc::new(Target {
            addr,
            host: format!("localhost:{port}"),
            tls: Some(client::tls_config(&t.ca_pem)),
            auth: Some(client::basic_auth(USER, PASS)),
        }),
    };
    let server = Server {
        kind: Kind::Distribution,
        child,
        target,
    };
    wait_ready(&server.target, Duration::from_secs(20)).expect("distribution did not start");
    server
}

/// Polls `GET /v2/` until it answers 200 (or 401 without credentials).
pub fn wait_ready(target: &Arc<Target>, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect(target.addr).is_ok() {
            let mut c = Client::new(target.clone());
            if let Ok(r) = c.req("GET", "/v2/", &[], &[], Mode::Collect) {
                if r.status == 200 || r.status == 401 {
                    return Some(start.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

/// Clock ticks per second for /proc/<pid>/stat.
pub fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / clk_tck_cached()
}

fn clk_tck_cached() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(clk_tck)
}

/// (VmRSS KiB, VmHWM KiB, Threads) from /proc/<pid>/status.
pub fn mem_status(pid: u32) -> (u64, u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("Threads:"))
}

/// Samples RSS and thread count of a process until stopped: (max RSS KiB, max threads).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<(u64, u64)>>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut rss, mut threads) = (0, 0);
            while !s.load(Ordering::Relaxed) {
                let (r, _, t) = mem_status(pid);
                rss = rss.max(r);
                threads = threads.max(t);
                std::thread::sleep(Duration::from_millis(20));
            }
            (rss, threads)
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or((0, 0))
    }
}

// ---------------------------------------------------------------- null server

/// An in-process server that answers every request from memory: it discards
/// request bodies, answers `GET /blob/<n>` with n bytes and anything else with
/// a small JSON body. Thread per connection. With `tls`, over rustls.
pub struct NullServer {
    pub target: Arc<Target>,
}

const SMALL_BODY: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1024},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":4096}]}"#;

pub fn null_server(tls: bool) -> NullServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind null server");
    let addr = listener.local_addr().expect("addr");
    let (server_cfg, target) = if tls {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let target = Arc::new(Target {
            addr,
            host: format!("localhost:{}", addr.port()),
            tls: Some(client::tls_config(cert.pem().as_bytes())),
            auth: Some(client::basic_auth(USER, PASS)),
        });
        (Some(Arc::new(cfg)), target)
    } else {
        (None, Target::plain(addr))
    };
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { continue };
            let cfg = server_cfg.clone();
            std::thread::spawn(move || {
                let _ = sock.set_nodelay(true);
                match cfg {
                    None => null_conn(sock),
                    Some(cfg) => {
                        let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        null_conn(rustls::StreamOwned::new(conn, sock));
                    }
                }
            });
        }
    });
    NullServer { target }
}

fn null_conn<S: Read + Write>(mut s: S) {
    let mut buf = vec![0u8; 1 << 20];
    let out = vec![0x5au8; 1 << 20];
    let (mut pos, mut end) = (0usize, 0usize);
    loop {
        // Read a request head.
        let (path, method, body_len, used) = loop {
            let mut hdrs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hdrs);
            match req.parse(&buf[pos..end]) {
                Ok(httparse::Status::Complete(used)) => {
                    let cl = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    break (
                        req.path.unwrap_or("/").to_string(),
                        req.method.unwrap_or("GET").to_string(),
                        cl,
                        used,
                    );
                }
                Ok(httparse::Status::Partial) => {
                    if pos == end {
                        pos = 0;
                        end = 0;
                    } else if end == buf.len() {
                        buf.copy_within(pos..end, 0);
                        end -= pos;
                        pos = 0;
                    }
                    match s.read(&mut buf[end..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => end += n,
                    }
                }
                Err(_) => return,
            }
        };
        pos += used;
        // Discard the body.
        let mut left = body_len;
        while left > 0 {
            if pos == end {
                pos = 0;
                end = match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
            }
            let take = ((end - pos) as u64).min(left) as usize;
            pos += take;
            left -= take as u64;
        }
        let blob_len: Option<u64> = path.strip_prefix("/blob/").and_then(|n| n.parse().ok());
        let len = blob_len.unwrap_or(SMALL_BODY.len() as u64);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\r\nContent-Length: {len}\r\n\r\n"
        );
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" {
            match blob_len {
                None => {
                    if s.write_all(SMALL_BODY).is_err() {
                        return;
                    }
                }
                Some(mut n) => {
                    while n > 0 {
                        let take = n.min(out.len() as u64) as usize;
                        if s.write_all(&out[..take]).is_err() {
                            return;
                        }
                        n -= take as u64;
                    }
                }
            }
        }
        if s.flush().is_err() {
            return;
        }
    }
}
