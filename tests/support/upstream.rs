//! Upstream registries for the pull-through tests: Debian's `docker-registry`
//! (CNCF distribution) on a loopback port with a config file, anonymous or
//! behind htpasswd Basic auth (`htpasswd -B`), stopped and started again on
//! the same port and folder; its access log read back as (method, path,
//! status) per user agent; and pushing blobs and manifests with plain HTTP.
//! Must NEVER leave the process running after the value is dropped, listen
//! anywhere but 127.0.0.1, or wait without a deadline.

use super::http::{call, Resp};
use super::wait::wait_until;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DISTRIBUTION_BIN: &str = "/usr/bin/docker-registry";

/// One `docker-registry serve` on 127.0.0.1, with its temporary folder.
pub struct Distribution {
    child: Option<Child>,
    pub addr: String,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

/// Whether docker-registry is installed; under CI=true a missing one fails
/// the test (never a skip), otherwise it says so loudly.
pub fn distribution_available(test: &str) -> bool {
    if Path::new(DISTRIBUTION_BIN).exists() {
        return true;
    }
    assert!(
        !super::in_ci(),
        "{DISTRIBUTION_BIN} is missing (apt-get install docker-registry); CI=true needs it"
    );
    eprintln!("SKIPPED {test}: {DISTRIBUTION_BIN} is missing (apt-get install docker-registry)");
    false
}

impl Distribution {
    /// Anonymous (`None`) or with one htpasswd user (made by `htpasswd -B`).
    pub fn start(user: Option<(&str, &str)>) -> Distribution {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: \"{addr}\", secret: s}}\n",
            dir.path().join("data").display()
        );
        if let Some((u, p)) = user {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apt-get install apache2-utils)");
            assert!(out.status.success(), "htpasswd -B failed");
            fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: upstream\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("registry.yml");
        fs::write(&config, cfg).expect("write registry.yml");
        let log = dir.path().join("registry.log");
        let mut d = Distribution {
            child: None,
            addr,
            dir,
            config,
            log,
        };
        d.resume();
        d
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where distribution keeps a blob's bytes (to corrupt one on purpose).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Start (again) on the same port and folder; waits until it listens.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(DISTRIBUTION_BIN)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        let addr = self.addr.clone();
        wait_until(
            &format!("docker-registry to listen on {addr}"),
            Duration::from_secs(20),
            || TcpStream::connect(&addr).is_ok(),
        );
    }

    /// SIGTERM, then SIGKILL after 10 s; waits for the exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // kill(1): the crate forbids the unsafe libc call.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// (method, path, status) of every request whose User-Agent contains
    /// `agent`, from the access log, in order.
    pub fn requests(&self, agent: &str) -> Vec<(String, String, u16)> {
        self.log_text()
            .lines()
            .filter(|l| l.contains(agent) && !l.starts_with("time="))
            .filter_map(|l| {
                let (_, rest) = l.split_once("] \"")?;
                let (request, rest) = rest.split_once("\" ")?;
                let mut parts = request.split(' ');
                let method = parts.next()?.to_string();
                let path = parts.next()?.to_string();
                let status = rest.split(' ').next()?.parse().ok()?;
                Some((method, path, status))
            })
            .collect()
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- docker-registry log ---\n{}", self.log_text());
        }
    }
}

/// Push one blob: an empty POST, then one PUT with the bytes (distribution
/// answers a POST with a body before reading it); panics unless 201.
pub fn push_blob(agent: &ureq::Agent, base: &str, repo: &str, bytes: &[u8], auth: Option<&str>) {
    let digest = super::oci::sha256(bytes);
    let r = call(
        agent,
        "POST",
        &format!("{base}/v2/{repo}/blobs/uploads/"),
        auth,
        &[],
        Some(b""),
    );
    r.expect_status(202);
    let location = r.location().to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    call(
        agent,
        "PUT",
        &format!("{url}{sep}digest={digest}"),
        auth,
        &[("Content-Type", "application/octet-stream")],
        Some(bytes),
    )
    .expect_status(201);
}

/// PUT a manifest; returns the answer (201 expected by the caller).
pub fn put_manifest(
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
    auth: Option<&str>,
) -> Resp {
    call(
        agent,
        "PUT",
        &format!("{base}/v2/{repo}/manifests/{reference}"),
        auth,
        &[("Content-Type", media_type)],
        Some(body),
    )
}
