//! A real 3-node Garage cluster on loopback (issue L): three `garage server`
//! processes, each with its own config file, S3 and RPC ports, data and
//! metadata folders in one tempdir, `replication_factor = 3`; the nodes
//! connected, a layout (one zone per node) assigned and applied, a key and a
//! bucket made with the `garage` CLI. Each cluster has its own RPC secret,
//! and a start that fails (a port taken before garage bound it) is retried
//! on new ports. Used by `tests/s3.rs` as
//! `#[path = "support/garage.rs"] mod garage;` next to `mod support;`.
//!
//! The binary: `$SOUTE_GARAGE`, else `garage` on PATH, else the CI cache
//! `$HOME/.cache/soute-ci/garage/bin/garage` (`.ci/run` builds it there).
//! Under CI=true a missing binary fails the test; otherwise it is SKIPPED.
//!
//! It must NEVER bind or contact a non-loopback address, wait without a
//! deadline, or leave a garage process running after the cluster is dropped.

use crate::support::Deadline;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const REGION: &str = "garage";
pub const BUCKET: &str = "soute-test";
/// One garage CLI call (they talk RPC to the local node).
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// One set-up step of a cluster, under a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Clusters tried, each on new ports, before a start fails: a port chosen
/// free can be taken by another process before garage binds it.
const START_ATTEMPTS: usize = 3;

/// 32 random bytes in hex: each cluster's own RPC secret, so nodes of two
/// clusters on one machine never join each other.
fn rpc_secret() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The garage binary, or `None` (after printing SKIPPED) when it is absent
/// and not under CI=true; under CI=true a missing binary panics.
pub fn garage_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(bin) = find_garage() {
        return Some(bin);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: no garage binary (SOUTE_GARAGE, PATH, ~/.cache/soute-ci/garage/bin); .ci/run installs it");
    }
    eprintln!(
        "{test}: SKIPPED: no garage binary (set SOUTE_GARAGE or `cargo install garage --locked`)"
    );
    None
}

/// `$SOUTE_GARAGE`, else `garage` on PATH, else the CI cache (also used by the benchmark).
pub fn find_garage() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SOUTE_GARAGE").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("garage"))
        .find(|p| p.is_file());
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = Path::new(&home).join(".cache/soute-ci/garage/bin/garage");
        p.is_file().then_some(p)
    })
}

pub struct Node {
    pub config: PathBuf,
    pub s3_port: u16,
    child: Option<Child>,
}

pub struct GarageCluster {
    bin: PathBuf,
    pub nodes: Vec<Node>,
    pub key_id: String,
    pub secret: String,
    /// Holds the nodes' folders until the cluster is dropped.
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().expect("local addr").port()
}

impl GarageCluster {
    /// Starts three nodes and sets the cluster up, on new ports and folders
    /// up to [`START_ATTEMPTS`] times; panics with the CLI's output (and the
    /// node logs' tails) if every attempt failed.
    pub fn start(bin: PathBuf) -> GarageCluster {
        for attempt in 1..=START_ATTEMPTS {
            let mut cluster = GarageCluster::spawn_all(bin.clone());
            match cluster.set_up() {
                Ok(()) => return cluster,
                Err(e) if attempt < START_ATTEMPTS => {
                    eprintln!(
                        "garage cluster attempt {attempt} failed, retrying on new ports: {e}"
                    );
                }
                Err(e) => panic!("garage cluster: {START_ATTEMPTS} attempts failed; the last: {e}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Three nodes on fresh ports and folders, started, not yet set up.
    fn spawn_all(bin: PathBuf) -> GarageCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = rpc_secret();
        let mut nodes = Vec::new();
        for i in 0..3 {
            let (s3_port, rpc_port) = (free_port(), free_port());
            let root = dir.path().join(format!("node{i}"));
            fs::create_dir_all(&root).expect("node dir");
            let config = root.join("garage.toml");
            fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"
"#,
                    root = root.display()
                ),
            )
            .expect("write garage.toml");
            nodes.push(Node {
                config,
                s3_port,
                child: None,
            });
        }
        let mut cluster = GarageCluster {
            bin,
            nodes,
            key_id: String::new(),
            secret: String::new(),
            _dir: dir,
        };
        for i in 0..3 {
            cluster.spawn(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let root = self.nodes[i]
            .config
            .parent()
            .expect("node dir")
            .to_path_buf();
        let log = fs::File::create(root.join("server.log")).expect("server log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[i].config)
            .arg("server")
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn garage server");
        self.nodes[i].child = Some(child);
    }

    /// Runs `garage -c <node i's config> ARGS`, killed after [`CLI_TIMEOUT`].
    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[i].config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn garage cli");
        let deadline = Deadline::after(CLI_TIMEOUT);
        while child.try_wait().expect("try_wait").is_none() {
            if !deadline.left() {
                let _ = child.kill();
                let _ = child.wait();
                panic!("garage {args:?} did not finish within {CLI_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("garage cli output")
    }

    /// [`GarageCluster::cli`] retried until it succeeds (the cluster settles
    /// after start and after a layout change), bounded by [`START_TIMEOUT`].
    fn cli_ok(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let deadline = Deadline::after(START_TIMEOUT);
        loop {
            let o = self.cli(i, args);
            if o.status.success() {
                return Ok(String::from_utf8_lossy(&o.stdout).into_owned());
            }
            if !deadline.left() {
                return Err(format!(
                    "garage {args:?} still failing after {START_TIMEOUT:?}: {}{}\nnode {i} log tail:\n{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr),
                    self.log_tail(i, 2000)
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn set_up(&mut self) -> Result<(), String> {
        let mut ids = Vec::new();
        for i in 0..3 {
            let out = self.cli_ok(i, &["node", "id", "-q"])?;
            let id = out
                .lines()
                .find(|l| l.contains('@'))
                .unwrap_or_else(|| panic!("garage node id: no id@addr in {out:?}"))
                .trim()
                .to_string();
            ids.push(id);
        }
        for id in &ids[1..] {
            self.cli_ok(0, &["node", "connect", id])?;
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap_or_default();
            let zone = format!("dc{}", i + 1);
            self.cli_ok(0, &["layout", "assign", "-z", &zone, "-c", "1G", short])?;
        }
        self.cli_ok(0, &["layout", "apply", "--version", "1"])?;
        let key = self.cli_ok(0, &["json-api", "CreateKey", r#"{"name":"soute-test"}"#])?;
        let v: serde_json::Value =
            serde_json::from_str(&key).unwrap_or_else(|e| panic!("CreateKey {key:?}: {e}"));
        self.key_id = v["accessKeyId"].as_str().expect("accessKeyId").to_string();
        self.secret = v["secretAccessKey"]
            .as_str()
            .expect("secretAccessKey")
            .to_string();
        self.cli_ok(0, &["bucket", "create", BUCKET])?;
        self.cli_ok(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                &self.key_id.clone(),
            ],
        )?;
        Ok(())
    }

    /// The S3 endpoint of node `i`: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// The process ids of the running nodes and the cluster's folder (for a
    /// watchdog that stops a cluster held in a static, see tests/it_s3).
    #[allow(dead_code)] // tests/it_s3 only
    pub fn pids_and_dir(&self) -> (Vec<u32>, PathBuf) {
        let pids = self
            .nodes
            .iter()
            .filter_map(|n| n.child.as_ref().map(Child::id))
            .collect();
        (pids, self._dir.path().to_path_buf())
    }

    /// SIGKILL node `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last `n` bytes of node `i`'s log (for failure messages).
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let root = self.nodes[i].config.parent().expect("node dir");
        let text = fs::read_to_string(root.join("server.log")).unwrap_or_default();
        let start = text.len().saturating_sub(n);
        text.get(start..).unwrap_or_default().to_string()
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
