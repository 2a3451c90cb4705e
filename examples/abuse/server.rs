//! The soute under attack: a child process on loopback with a fresh data folder
//! (killed when its guard drops, panics included), its users, its /proc figures
//! and its log; and the normal client that measures what others still get.
//! Never starts a server on anything but 127.0.0.1.

use crate::net::{self, Target, NORMAL_SRC};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const ALICE: (&str, &str) = ("alice", "alice-password-1");
/// The normal client's account.
pub const NORMAL: (&str, &str) = ("normal", "normal-password-1");

/// How to start one server.
pub struct Launch<'a> {
    pub bin: &'a Path,
    pub tls: bool,
    pub users: &'a [(&'a str, &'a str)],
    /// Run `user add` and `serve` under `umask 000`.
    pub umask_000: bool,
    /// Called on the data folder after the users are added, before `serve`.
    pub before_serve: Option<fn(&Path)>,
}

/// A running soute; killed (and its folder removed) on drop.
pub struct Soute {
    child: Child,
    pub target: Target,
    pub data: PathBuf,
    pub log: PathBuf,
    pub bin: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Soute {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Soute {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmHWM, VmRSS) in KiB from /proc/<pid>/status.
    pub fn mem_kib(&self) -> (u64, u64) {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// The server's thread count (/proc/<pid>/status).
    pub fn threads(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Lines of the server's log at WARN level.
    /// The WARN lines of the server's log, joined.
    pub fn warn_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn warn_lines(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN"))
            .count()
    }

    /// The last lines of the server's log (for error messages).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

fn has_prlimit() -> bool {
    Path::new("/usr/bin/prlimit").exists() || Path::new("/bin/prlimit").exists()
}

/// The hard limit on open files of this process ("unlimited" as 65536).
pub fn fd_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(4)? {
        "unlimited" => Some(65536),
        n => n.parse().ok().map(|n: u64| n.min(65536)),
    }
}

/// `bin args...`, under `umask 000` and with a raised fd limit when asked/possible.
fn command(bin: &Path, umask_000: bool) -> Command {
    let mut cmd = if umask_000 {
        let mut c = Command::new("sh");
        c.args(["-c", "umask 000; exec \"$0\" \"$@\""]);
        c
    } else {
        Command::new("env")
    };
    // Binaries from before issue G do not raise their own limit.
    if let (true, Some(n)) = (has_prlimit(), fd_hard_limit()) {
        cmd.args(["prlimit", &format!("--nofile={n}"), "--"]);
    }
    cmd.arg(bin);
    cmd
}

/// `soute user add NAME` with the password on stdin.
pub fn user_add(
    bin: &Path,
    data: &Path,
    user: &str,
    pass: &str,
    umask_000: bool,
) -> Result<(), String> {
    let mut child = command(bin, umask_000)
        .args(["user", "add", user, "--data"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("soute user add: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{pass}\n").as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("soute user add: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "soute user add {user} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// `soute user del NAME`: (exit success, stderr).
pub fn user_del(bin: &Path, data: &Path, user: &str) -> (bool, String) {
    match Command::new(bin)
        .args(["user", "del", user, "--data"])
        .arg(data)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Starts soute on 127.0.0.1 (port chosen by the kernel) in a fresh data folder.
pub fn start(l: &Launch<'_>) -> Result<Soute, String> {
    let dir = tempfile::Builder::new()
        .prefix("soute-abuse-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    // A folder soute creates itself, so its mode is soute's choice: only `serve`
    // creates one (since issue F), so a first short `serve` makes it before the
    // users are added (binaries from before F accept either order).
    let data = dir.path().join("data");
    let log = dir.path().join("soute.log");
    if !l.users.is_empty() || l.before_serve.is_some() {
        let (mut first, _) = spawn_serve(l, &data, &log)?;
        let _ = first.kill();
        let _ = first.wait();
    }
    for (user, pass) in l.users {
        user_add(l.bin, &data, user, pass, l.umask_000)?;
    }
    if let Some(prepare) = l.before_serve {
        prepare(&data);
    }
    let (child, addr) = spawn_serve(l, &data, &log)?;
    let mut guard = Soute {
        child,
        target: Target { addr, tls: None },
        data: data.clone(),
        log: log.clone(),
        bin: l.bin.to_path_buf(),
        _dir: dir,
    };
    if l.tls {
        let ca =
            std::fs::read(data.join("tls").join("ca.crt")).map_err(|e| format!("ca.crt: {e}"))?;
        guard.target.tls = Some(tls_config(&ca)?);
    }
    Ok(guard)
}

/// Starts `serve` on 127.0.0.1:0 and waits for its address line.
fn spawn_serve(l: &Launch<'_>, data: &Path, log: &Path) -> Result<(Child, SocketAddr), String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let mut cmd = command(l.bin, l.umask_000);
    cmd.args(["serve", "--data"]).arg(data).args([
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "warn",
        "--gc-interval",
        "0",
    ]);
    if l.tls {
        cmd.args(["--tls", "auto", "--hostname", "localhost"]);
    } else {
        cmd.args(["--tls", "off"]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", l.bin.display()))?;
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Some(out) = stdout else { return };
        let mut out = BufReader::new(out);
        // The address line, after whatever else a build prints first.
        for _ in 0..50 {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if line.starts_with("soute listening on ") {
                let _ = tx.send(line);
                break;
            }
        }
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    let fail = |child: &mut Child, msg: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("{msg}: {}", log_tail(log)))
    };
    let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
        return fail(&mut child, "soute did not start".into());
    };
    let url = line
        .trim()
        .strip_prefix("soute listening on ")
        .unwrap_or("");
    match url
        .split_once("://")
        .map(|(_, a)| a)
        .unwrap_or(url)
        .trim_end_matches('/')
        .parse::<SocketAddr>()
    {
        Ok(addr) => Ok((child, addr)),
        Err(e) => fail(&mut child, format!("soute address {url:?}: {e}")),
    }
}

fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| e.to_string())?;
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// What the normal client saw: one `GET /v2/` with valid credentials on a new
/// connection every 50 ms, each with a 5 s limit.
#[derive(Default)]
pub struct Seen {
    pub latencies_ms: Vec<f64>,
    pub ok: usize,
    pub unavailable: usize,
    pub other_status: usize,
    pub errors: usize,
}

impl Seen {
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.latencies_ms.is_empty() {
            return None;
        }
        let mut v = self.latencies_ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied()
    }

    pub fn failures(&self) -> usize {
        self.unavailable + self.other_status + self.errors
    }
}

pub const NORMAL_TIMEOUT: Duration = Duration::from_secs(5);

/// One request as the normal client; true on 200.
pub fn normal_get(target: &Target) -> bool {
    let auth = net::basic(NORMAL.0, NORMAL.1);
    net::request(
        target,
        NORMAL_SRC,
        "GET",
        "/v2/",
        &[("Authorization", &auth)],
        NORMAL_TIMEOUT,
    )
    .is_ok_and(|r| r.status == 200)
}

pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Seen>>,
}

impl Watcher {
    /// Starts the normal client; it stops by itself after `limit`.
    pub fn start(target: &Target, limit: Duration) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let target = target.clone();
        let handle = std::thread::spawn(move || {
            let auth = net::basic(NORMAL.0, NORMAL.1);
            let end = Instant::now() + limit;
            let mut seen = Seen::default();
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                let t0 = Instant::now();
                let r = net::request(
                    &target,
                    NORMAL_SRC,
                    "GET",
                    "/v2/",
                    &[("Authorization", &auth)],
                    NORMAL_TIMEOUT,
                );
                seen.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                match r {
                    Ok(r) if r.status == 200 => seen.ok += 1,
                    Ok(r) if r.status == 503 => seen.unavailable += 1,
                    Ok(_) => seen.other_status += 1,
                    Err(_) => seen.errors += 1,
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        Watcher {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Total size of the files under `dir` (recursively).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Free bytes on the filesystem holding `path` (from `df`).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .ok()?;
    let mut text = String::new();
    out.stdout.as_slice().read_to_string(&mut text).ok()?;
    text.lines().nth(1)?.trim().parse().ok()
}
