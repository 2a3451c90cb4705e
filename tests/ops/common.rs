//! Helpers: start soute, push and pull images over HTTP, inspect the data folder.

#![allow(dead_code)]

use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A tiny deterministic generator (no rand crate needed).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(42);
        eprintln!("rng seed {t}");
        Rng::new(t)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// An HTTP client for one soute.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

pub struct Resp {
    pub status: u16,
    pub digest: Option<String>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Resp, String> {
    let mut r = r.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let digest = r
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(Resp {
        status,
        digest,
        body,
    })
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            base: format!("http://{addr}"),
            agent,
        }
    }

    pub fn get(&self, path: &str) -> Result<Resp, String> {
        finish(self.agent.get(format!("{}{path}", self.base)).call())
    }
    pub fn delete(&self, path: &str) -> Result<Resp, String> {
        finish(self.agent.delete(format!("{}{path}", self.base)).call())
    }
    pub fn post(&self, path: &str, body: &[u8]) -> Result<Resp, String> {
        finish(self.agent.post(format!("{}{path}", self.base)).send(body))
    }
    pub fn put(&self, path: &str, ctype: &str, body: &[u8]) -> Result<Resp, String> {
        finish(
            self.agent
                .put(format!("{}{path}", self.base))
                .header("Content-Type", ctype)
                .send(body),
        )
    }

    /// Monolithic upload; the digest on success, the response otherwise.
    pub fn blob(&self, repo: &str, bytes: &[u8]) -> Result<String, Resp> {
        let d = sha256(bytes);
        let r = self
            .post(&format!("/v2/{repo}/blobs/uploads/?digest={d}"), bytes)
            .map_err(|e| Resp {
                status: 0,
                digest: None,
                body: e.into_bytes(),
            })?;
        if r.status == 201 {
            Ok(d)
        } else {
            Err(r)
        }
    }

    pub fn manifest(&self, repo: &str, reference: &str, body: &[u8]) -> Result<Resp, String> {
        let ctype = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| OCI_MANIFEST.into());
        self.put(&format!("/v2/{repo}/manifests/{reference}"), &ctype, body)
    }

    /// `POST /v2/_soute/gc?...`: the JSON report.
    pub fn gc(&self, query: &str) -> serde_json::Value {
        let r = self
            .post(&format!("/v2/_soute/gc?{query}"), b"")
            .expect("gc request");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    pub fn du(&self, query: &str) -> serde_json::Value {
        let r = self.get(&format!("/v2/_soute/du?{query}")).expect("du");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }
}

/// An image: its blobs and manifest bytes.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub subject: Option<(String, u64)>,
}

impl Image {
    pub fn new(config: &[u8], layers: &[&[u8]]) -> Image {
        Image {
            config: config.to_vec(),
            layers: layers.iter().map(|l| l.to_vec()).collect(),
            subject: None,
        }
    }

    pub fn blobs(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = vec![&self.config];
        v.extend(self.layers.iter().map(|l| l.as_slice()));
        v
    }

    pub fn manifest(&self) -> Vec<u8> {
        let desc = |mt: &str, b: &[u8]| serde_json::json!({ "mediaType": mt, "digest": sha256(b), "size": b.len() });
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", &self.config),
            "layers": self.layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
        });
        if let Some((d, size)) = &self.subject {
            m["subject"] =
                serde_json::json!({ "mediaType": OCI_MANIFEST, "digest": d, "size": size });
        }
        serde_json::to_vec(&m).expect("json")
    }

    pub fn digest(&self) -> String {
        sha256(&self.manifest())
    }

    /// Upload the blobs and put the manifest under `reference`: its digest.
    pub fn push(&self, c: &Client, repo: &str, reference: &str) -> Result<String, String> {
        for b in self.blobs() {
            c.blob(repo, b).map_err(|r| {
                format!(
                    "blob upload: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                )
            })?;
        }
        let r = c.manifest(repo, reference, &self.manifest())?;
        if r.status != 201 {
            return Err(format!(
                "manifest put: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        Ok(self.digest())
    }

    /// Pull by `reference` and check every digest.
    pub fn check_pull(&self, c: &Client, repo: &str, reference: &str) -> Result<(), String> {
        let r = c.get(&format!("/v2/{repo}/manifests/{reference}"))?;
        if r.status != 200 {
            return Err(format!("manifest {repo}:{reference}: status {}", r.status));
        }
        if sha256(&r.body) != self.digest() {
            return Err(format!("manifest {repo}:{reference}: wrong bytes"));
        }
        for b in self.blobs() {
            let d = sha256(b);
            let r = c.get(&format!("/v2/{repo}/blobs/{d}"))?;
            if r.status != 200 || sha256(&r.body) != d {
                return Err(format!("blob {d} in {repo}: status {}", r.status));
            }
        }
        Ok(())
    }
}

pub fn index(children: &[&[u8]]) -> Vec<u8> {
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|c| serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": sha256(c), "size": c.len(),
            "platform": { "architecture": "amd64", "os": "linux" }
        })).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&m).expect("json")
}

/// soute running in-process on 127.0.0.1:0 without TLS or scheduled GC.
pub struct InProc {
    pub running: Option<soute::app::Running>,
    pub client: Client,
}

pub fn start(dir: &Path) -> InProc {
    let mut cfg = soute::config::Config::for_data(dir);
    cfg.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    cfg.tls = soute::config::TlsMode::Off;
    cfg.gc_interval = None;
    cfg.workers = 8;
    let running = soute::app::start(cfg).expect("start soute");
    let client = Client::new(running.addrs()[0]);
    InProc {
        running: Some(running),
        client,
    }
}

impl InProc {
    pub fn registry(&self) -> &soute::registry::Registry {
        self.running.as_ref().expect("running").registry()
    }
    pub fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

/// The real binary serving `dir`; killed on drop.
pub struct Spawned {
    pub child: Child,
    pub client: Client,
}

pub fn spawn(dir: &Path) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soute"))
        .args(["serve", "--data"])
        .arg(dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "off",
            "--gc-interval",
            "0",
            "--workers",
            "8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn soute");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("soute listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("addr");
    Spawned {
        child,
        client: Client::new(addr),
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `soute ARGS...`: (exit ok, stdout, stderr).
pub fn soute(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_soute"))
        .args(args)
        .output()
        .expect("run soute");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Digests of the files under `blobs/`.
pub fn blob_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let root = dir.join("blobs");
    for alg in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for shard in std::fs::read_dir(alg.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.insert(format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ));
            }
        }
    }
    out
}

pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("digest");
    dir.join("blobs").join(alg).join(&hex[..2]).join(hex)
}

/// Digests of the blob rows (read through SQLite, like any other reader).
pub fn blob_rows(dir: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(dir.join("soute.db")).expect("open db");
    let mut stmt = conn.prepare("SELECT digest FROM blob").expect("prepare");
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<BTreeSet<_>, _>>()
        .expect("rows");
    rows
}

pub fn set(items: &[&[u8]]) -> BTreeSet<String> {
    items.iter().map(|b| sha256(b)).collect()
}

/// A tmpfs mounted for a test, unmounted (lazily) on drop, even on panic.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. "8m"). Without root or mount: under
    /// CI=true the test fails, otherwise it is skipped loudly (`None`).
    pub fn mount(size: &str, test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: mounting a tmpfs failed (needs root); CI must run it");
            }
            eprintln!("\n*** SKIPPED {test}: cannot mount a tmpfs (not root?) ***\n");
            return None;
        }
        Some(Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
