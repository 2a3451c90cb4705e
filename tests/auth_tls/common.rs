//! Shared helpers: start soute in-process, HTTP(S) clients, raw rustls
//! handshakes, the `soute` binary, Basic credentials, bounded waiting.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use soute::config::{Config, TlsMode};
use soute::registry::Registry;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::config::IpFamily;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Upper bound for any single exchange.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

type Tweak = Box<dyn Fn(&mut Config)>;

/// The configuration every test starts from: loopback, plain HTTP, no GC
/// thread, few workers (the machine is shared).
pub fn base_config(dir: &Path) -> Config {
    let mut cfg = Config::for_data(dir);
    cfg.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    cfg.tls = TlsMode::Off;
    cfg.hostnames = vec!["localhost".into()];
    cfg.gc_interval = None;
    cfg.workers = 8;
    cfg
}

/// soute running in-process on its own temporary data folder. Stopped on drop.
pub struct Soute {
    dir: tempfile::TempDir,
    tweak: Tweak,
    running: Option<soute::app::Running>,
}

impl Soute {
    pub fn start(tweak: impl Fn(&mut Config) + 'static) -> Soute {
        let dir = tempfile::tempdir().expect("tempdir");
        let tweak: Tweak = Box::new(tweak);
        let mut cfg = base_config(dir.path());
        tweak(&mut cfg);
        let running = soute::app::start(cfg).expect("soute::app::start");
        Soute {
            dir,
            tweak,
            running: Some(running),
        }
    }

    fn running(&self) -> &soute::app::Running {
        self.running.as_ref().expect("soute is running")
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.running().addrs().to_vec()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs()[0]
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        self.running().registry()
    }

    /// Stop and start again on the same folder (the ports change).
    pub fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
        let mut cfg = base_config(self.dir.path());
        (self.tweak)(&mut cfg);
        self.running = Some(soute::app::start(cfg).expect("soute::app::start (restart)"));
    }

    /// `http://127.0.0.1:PORT` of the first listener.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `https://localhost:PORT` of the first listener.
    pub fn https_base(&self) -> String {
        format!("https://localhost:{}", self.port())
    }

    pub fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

impl Drop for Soute {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

fn agent_builder(family: IpFamily) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(CALL_TIMEOUT))
        .ip_family(family)
        .user_agent("soute-auth-tls/1")
}

/// A plain HTTP client.
pub fn http_agent() -> ureq::Agent {
    agent_builder(IpFamily::Ipv4Only).build().new_agent()
}

/// An HTTPS client that trusts exactly the CA certificate(s) in `ca_pem`.
pub fn tls_agent(ca_pem: &[u8], family: IpFamily) -> ureq::Agent {
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(ca_pem)
        .filter_map(|item| match item.expect("PEM item") {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!certs.is_empty(), "no certificate in the CA PEM");
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(certs)))
        .build();
    agent_builder(family).tls_config(tls).build().new_agent()
}

/// An HTTPS client with ureq's default roots (Mozilla's webpki list).
pub fn webpki_agent() -> ureq::Agent {
    let tls = TlsConfig::builder().root_certs(RootCerts::WebPki).build();
    agent_builder(IpFamily::Ipv4Only)
        .tls_config(tls)
        .build()
        .new_agent()
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}): {}",
                self.what,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first error code of a `{"errors":[...]}` body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error code in {}", self.what, self.text()))
            .to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn expect_status(&self, want: u16) -> &Resp {
        assert_eq!(
            self.status,
            want,
            "{}: status {} (want {want}); body {}",
            self.what,
            self.status,
            self.text()
        );
        self
    }

    /// The answer to a request without (valid) credentials: 401, the Basic
    /// challenge for `realm`, UNAUTHORIZED in the body (none for HEAD), and
    /// the API version header.
    pub fn expect_challenge(&self, realm: &str) {
        self.expect_status(401);
        assert_eq!(
            self.header("www-authenticate"),
            Some(format!("Basic realm=\"{realm}\"").as_str()),
            "{}: challenge",
            self.what
        );
        assert_eq!(
            self.header("docker-distribution-api-version"),
            Some("registry/2.0"),
            "{}: API version header",
            self.what
        );
        if !self.what.starts_with("HEAD ") {
            assert_eq!(self.error_code(), "UNAUTHORIZED", "{}", self.what);
        }
    }
}

/// One exchange. `body: None` sends no body at all.
pub fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    try_call(agent, method, url, auth, headers, body)
        .unwrap_or_else(|e| panic!("{method} {url}: transport error {e}"))
}

pub fn try_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp, ureq::Error> {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(a) = auth {
        b = b.header("Authorization", a);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut resp = match body {
        Some(bytes) => agent.run(b.body(bytes).expect("request"))?,
        None => agent.run(b.body(()).expect("request"))?,
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        resp.body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()?
    };
    Ok(Resp {
        what: format!("{method} {url}"),
        status,
        headers,
        body,
    })
}

pub fn get(agent: &ureq::Agent, url: &str, auth: Option<&str>) -> Resp {
    call(agent, "GET", url, auth, &[], None)
}

/// Polls `f` every 50 ms until it returns `Some`, at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The `soute` binary, with the REGISTRY_* environment and RUST_LOG cleared.
pub fn soute_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_soute"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("REGISTRY_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// `soute user ACTION NAME --data DIR`, the password (if any) on stdin.
/// Panics unless the command succeeds.
pub fn user_cmd(data: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = soute_bin();
    cmd.arg("user")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn soute user");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(pw) = password {
            stdin
                .write_all(format!("{pw}\n").as_bytes())
                .expect("write password");
        }
    }
    let out = child.wait_with_output().expect("soute user");
    assert!(
        out.status.success(),
        "soute user {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a raw TLS exchange saw.
pub struct TlsSeen {
    /// DER of the leaf certificate the server presented.
    pub peer: Vec<u8>,
    pub version: Option<ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
    /// The raw HTTP response.
    pub response: String,
}

pub fn roots_from_pem(pem: &[u8]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("PEM certificate")).expect("root");
    }
    roots
}

/// The DER of the first certificate in a PEM file.
pub fn first_der(pem: &[u8]) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem)
        .expect("PEM certificate")
        .to_vec()
}

/// Connects to `addr`, shakes hands as `server_name` with only `versions`
/// offered, ALPN `http/1.1`, and sends `GET path` (Connection: close).
pub fn tls_get(
    addr: SocketAddr,
    server_name: &str,
    roots: RootCertStore,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
) -> Result<TlsSeen, std::io::Error> {
    tls_get_alpn(addr, server_name, roots, versions, &[b"http/1.1"], path)
}

/// [`tls_get`] offering the given ALPN protocols.
pub fn tls_get_alpn(
    addr: SocketAddr,
    server_name: &str,
    roots: RootCertStore,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    path: &str,
) -> Result<TlsSeen, std::io::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(server_name.to_string()).expect("server name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let sock = TcpStream::connect_timeout(&addr, CALL_TIMEOUT)?;
    sock.set_read_timeout(Some(CALL_TIMEOUT))?;
    sock.set_write_timeout(Some(CALL_TIMEOUT))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("peer certificate")
        .to_vec();
    let version = tls.conn.protocol_version();
    let alpn = tls.conn.alpn_protocol().map(|p| p.to_vec());
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n"
    )?;
    tls.flush()?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify still gave us the answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(TlsSeen {
        peer,
        version,
        alpn,
        response: String::from_utf8_lossy(&raw).into_owned(),
    })
}

/// A spawned `soute` whose stdout and stderr are collected by threads.
pub struct Proc {
    pub child: std::process::Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Lines of stdout as they arrive.
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn soute");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = err.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        Proc {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            lines,
        }
    }

    /// Waits at most `limit` for the process to end (killing it after that,
    /// and failing); returns its exit status, stdout and stderr.
    pub fn finish(mut self, limit: Duration) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("soute did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = self
            .stdout
            .take()
            .expect("stdout")
            .join()
            .expect("stdout thread");
        let err = self
            .stderr
            .take()
            .expect("stderr")
            .join()
            .expect("stderr thread");
        (status, out, err)
    }

    /// SIGTERM through kill(1) (the crate forbids the unsafe libc call).
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
