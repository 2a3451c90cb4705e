//! End-to-end tests with real third-party registry clients (skopeo, umoci, and through
//! `tests/e2e/real_clients.sh` dockerd/docker, podman, ctr, oras-py and the docker SDK,
//! and those daemons pulling through the cache, also as mirrors), the script once per
//! auth mode (auto, basic, token).
//!
//! These drive the real `soute` binary. A client that is not installed makes a test
//! fail when `CI=true` (`.ci/run` installs them all) and skip loudly otherwise.
//! Both tests take a process-wide lock, and the machine-wide flock that the shell
//! suite also takes, because skopeo and dockerd write global state (/var/lib/containers,
//! /etc/hosts, certs.d) that each of them restores at the end.
//!
//! `REGISTRY_IMPL=distribution` runs the same checks against Debian's `docker-registry`,
//! to tell a soute bug from a test bug. Helpers: `tests/support`.

#[path = "support/mod.rs"]
mod support;

#[path = "support/garage.rs"]
mod garage;

use support::{in_ci, run_soute, serve, sha256, wait_until, Proc, STARTUP};

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Serializes the tests of this binary: both touch machine-wide state.
static SERIAL: Mutex<()> = Mutex::new(());
/// The lock file `tests/e2e/real_clients.sh` also takes (machine-wide serialization).
const LOCK_FILE: &str = "/tmp/soute-e2e.lock";

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes past libtest's output capture, so that it shows even for a passing test.
fn loud(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
}

fn on_path(tool: &str) -> bool {
    let is_exe = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if tool.contains('/') {
        return is_exe(Path::new(tool));
    }
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| is_exe(&dir.join(tool))))
}

fn python_venv_works() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// True when every tool is there. Under `CI=true` a missing one fails the test;
/// elsewhere the test says loudly that it skips, and the caller returns.
fn require(test: &str, tools: &[&str], needs_venv: bool, needs_root: bool) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !on_path(t))
        .map(|t| t.to_string())
        .collect();
    if needs_venv && !python_venv_works() {
        missing.push("python3 venv (/usr/bin/python3 -m venv: Debian package python3-venv)".into());
    }
    if needs_root && !is_root() {
        missing.push("root (the suite edits /etc/hosts and starts dockerd)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    assert!(
        !in_ci(),
        "{test}: missing {what} (CI=true: every client must be installed; see .ci/run)"
    );
    loud(&format!(
        "\n!!!!! {test}: SKIPPED: missing {what} (install them as .ci/run does) !!!!!\n"
    ));
    false
}

/// Holds the machine-wide lock through a `flock` child; dropping it closes the child's
/// stdin, which ends the child and releases the lock (also when the test panics).
struct MachineLock {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl MachineLock {
    fn take() -> MachineLock {
        let mut child = Command::new("flock")
            .args([
                "-w",
                "900",
                LOCK_FILE,
                "-c",
                "echo locked; exec cat >/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn flock");
        let stdin = child.stdin.take();
        let mut line = String::new();
        let stdout = child.stdout.take().expect("flock stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read flock");
        assert_eq!(
            line.trim(),
            "locked",
            "could not take {LOCK_FILE} within 900 s"
        );
        MachineLock { child, stdin }
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Removes a path on drop unless it existed when the guard was made
/// (skopeo, as root, always writes /var/lib/containers/cache).
struct RestoreAbsent(Option<PathBuf>);

impl RestoreAbsent {
    fn new(path: &str) -> RestoreAbsent {
        let p = PathBuf::from(path);
        RestoreAbsent(if p.exists() { None } else { Some(p) })
    }
}

impl Drop for RestoreAbsent {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// A registry process under test; stopped with SIGTERM (then SIGKILL) on
/// drop, its log printed when the test failed.
struct Registry {
    proc: Option<Proc>,
    addr: String,
}

impl Registry {
    /// `soute serve --tls off` on 127.0.0.1:0 (or docker-registry with
    /// `REGISTRY_IMPL=distribution`), with no users: plain HTTP, no auth.
    fn start_plain(dir: &Path) -> Registry {
        if env::var("REGISTRY_IMPL").is_ok_and(|v| v == "distribution") {
            return Registry::start_distribution(dir);
        }
        let served = serve(&dir.join("data"), &[]);
        Registry {
            proc: Some(served.proc),
            addr: served.addr.to_string(),
        }
    }

    fn start_distribution(dir: &Path) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: \"{addr}\", secret: s}}\n",
                dir.join("data").display()
            ),
        )
        .expect("write registry.yml");
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&config);
        let proc = Proc::spawn(cmd);
        wait_until(
            &format!("docker-registry to listen on {addr}"),
            STARTUP,
            || TcpStream::connect(&addr).is_ok(),
        );
        Registry {
            proc: Some(proc),
            addr,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(proc) = self.proc.take() {
            let (_, log) = proc.stop(Duration::from_secs(10));
            if thread::panicking() {
                eprintln!("--- registry log ---\n{log}");
            }
        }
    }
}

/// Runs a command to completion and returns its output; prints the command line.
fn output(cmd: &mut Command) -> Output {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!(
        "$ {} {}",
        cmd.get_program().to_string_lossy(),
        args.join(" ")
    );
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its stdout and stderr.
fn run_fail(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{cmd:?} should have failed:\n{text}");
    text
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// An OCI image layout on disk.
struct Layout(PathBuf);

impl Layout {
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.0.join("blobs/sha256").join(hex)
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        read(&self.blob_path(digest))
    }

    /// Digest of the manifest or index that `index.json` names `tag`.
    fn tagged(&self, tag: &str) -> String {
        let index = json(&String::from_utf8_lossy(&read(&self.0.join("index.json"))));
        index["manifests"]
            .as_array()
            .expect("index.json manifests")
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .and_then(|m| m["digest"].as_str())
            .unwrap_or_else(|| panic!("no tag {tag} in {}", self.0.display()))
            .to_string()
    }

    fn manifest(&self, digest: &str) -> Value {
        json(&String::from_utf8_lossy(&self.blob(digest)))
    }
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_string())
        .collect()
}

/// Builds, offline, a 2-layer amd64 image `multi`, an arm64 variant `multi-arm64`
/// (same layers) and an OCI index `multiarch` over both, as in lab/real-clients.md §3.
fn build_images(work: &Path) -> Layout {
    let rootfs = work.join("rootfs/bin");
    fs::create_dir_all(&rootfs).expect("mkdir rootfs");
    let busybox = env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
        .expect("busybox on PATH");
    fs::copy(&busybox, rootfs.join("busybox")).expect("copy busybox");
    for applet in ["sh", "cat", "echo", "ls"] {
        std::os::unix::fs::symlink("busybox", rootfs.join(applet)).expect("symlink applet");
    }
    let hello = work.join("hello.txt");
    fs::write(&hello, "hello from layer 2\n").expect("write hello.txt");
    let layout = work.join("oci");
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image("multi")]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image("multi")])
        .arg(&rootfs)
        .arg("/bin"));
    run(Command::new("umoci")
        .args(["insert", "--image", &image("multi")])
        .arg(&hello)
        .arg("/hello.txt"));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image("multi"),
        "--os",
        "linux",
        "--architecture",
        "amd64",
        "--config.cmd",
        "/bin/cat",
        "--config.cmd",
        "/hello.txt",
    ]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image("multi"),
        "--architecture",
        "arm64",
        "--tag",
        "multi-arm64",
    ]));
    let oci = Layout(layout);
    let descriptor = |tag: &str, arch: &str| {
        let digest = oci.tagged(tag);
        let size = fs::metadata(oci.blob_path(&digest)).expect("stat").len();
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor("multi", "amd64"), descriptor("multi-arm64", "arm64")],
    });
    let bytes = serde_json::to_vec(&index).expect("index json");
    let digest = sha256(&bytes);
    fs::write(oci.blob_path(&digest), &bytes).expect("write index blob");
    let index_json = oci.0.join("index.json");
    let mut top = json(&String::from_utf8_lossy(&read(&index_json)));
    top["manifests"]
        .as_array_mut()
        .expect("index.json manifests")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multiarch"},
        }));
    fs::write(&index_json, serde_json::to_vec(&top).expect("json")).expect("write index.json");
    let layers = layer_digests(&oci.manifest(&oci.tagged("multi")));
    assert_eq!(layers.len(), 2, "umoci built {layers:?}");
    oci
}

/// skopeo with every configuration file in `work` and policy "accept anything".
fn skopeo(work: &Path) -> Command {
    let conf = work.join("containers");
    let mut cmd = Command::new("skopeo");
    cmd.env("REGISTRY_AUTH_FILE", conf.join("auth.json"))
        .env("CONTAINERS_CONF", conf.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", conf.join("storage.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", conf.join("registries.conf"))
        .env("TMPDIR", conf.join("tmp"))
        .arg("--policy")
        .arg(conf.join("policy.json"))
        .arg("--registries.d")
        .arg(conf.join("registries.d"));
    cmd
}

fn write_containers_conf(work: &Path) {
    let conf = work.join("containers");
    for dir in ["tmp", "registries.d", "run", "storage"] {
        fs::create_dir_all(conf.join(dir)).expect("mkdir containers");
    }
    let files = [
        (
            "policy.json",
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#.to_string(),
        ),
        (
            "registries.conf",
            "unqualified-search-registries = []\n".to_string(),
        ),
        ("containers.conf", "[engine]\n".to_string()),
        (
            "storage.conf",
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/storage\"\n",
                conf.display()
            ),
        ),
    ];
    for (name, text) in files {
        fs::write(conf.join(name), text).expect("write containers conf");
    }
}

/// Issue A: skopeo against `soute serve --tls off` (plain HTTP, no users).
#[test]
fn skopeo_round_trip() {
    let _serial = serial();
    if !require(
        "skopeo_round_trip",
        &["skopeo", "umoci", "busybox", "flock"],
        false,
        false,
    ) {
        return;
    }
    let _machine = MachineLock::take();
    let _cache = RestoreAbsent::new("/var/lib/containers");
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    write_containers_conf(work);
    let oci = build_images(work);
    let registry = Registry::start_plain(work);
    let reg = |name: &str| format!("docker://{}/{name}", registry.addr);
    let src = |tag: &str| format!("oci:{}:{tag}", oci.0.display());

    let manifest_digest = oci.tagged("multi");
    let manifest = oci.manifest(&manifest_digest);
    let layers = layer_digests(&manifest);
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    let index_digest = oci.tagged("multiarch");

    // push: one image, then the index with both platforms
    run(skopeo(work)
        .args(["copy", "--dest-tls-verify=false"])
        .arg(src("multi"))
        .arg(reg("lab/multi:1")));
    run(skopeo(work)
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(src("multiarch"))
        .arg(reg("lab/multiarch:1")));
    // a second tag, registry to registry
    run(skopeo(work)
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(reg("lab/multi:1"))
        .arg(reg("lab/multi:2")));

    // inspect: digest, layers, platform
    let info = json(&run(skopeo(work)
        .args(["inspect", "--tls-verify=false"])
        .arg(reg("lab/multi:1"))));
    assert_eq!(info["Digest"], manifest_digest.as_str(), "{info}");
    assert_eq!(info["Architecture"], "amd64", "{info}");
    assert_eq!(info["Os"], "linux", "{info}");
    let seen: Vec<&str> = info["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(seen, layers, "{info}");

    // inspect --raw: the exact bytes that were pushed
    let raw = run(skopeo(work)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(reg("lab/multi:1")));
    assert_eq!(
        sha256(raw.as_bytes()),
        manifest_digest,
        "manifest bytes changed"
    );
    let raw_index = run(skopeo(work)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(reg("lab/multiarch:1")));
    assert_eq!(
        sha256(raw_index.as_bytes()),
        index_digest,
        "index bytes changed"
    );
    let platforms: Vec<String> = json(&raw_index)["manifests"]
        .as_array()
        .expect("index manifests")
        .iter()
        .map(|m| format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"]))
        .collect();
    assert_eq!(platforms, ["\"linux\"/\"amd64\"", "\"linux\"/\"arm64\""]);
    let arm = json(&run(skopeo(work)
        .args(["inspect", "--override-arch", "arm64", "--tls-verify=false"])
        .arg(reg("lab/multiarch:1"))));
    assert_eq!(arm["Architecture"], "arm64", "{arm}");

    // copy back out to oci: and dir:, and compare digests with the originals
    let out = Layout(work.join("out-oci"));
    run(skopeo(work)
        .args(["copy", "--src-tls-verify=false"])
        .arg(reg("lab/multi:1"))
        .arg(format!("oci:{}:multi", out.0.display())));
    assert_eq!(out.tagged("multi"), manifest_digest);
    for digest in layers.iter().chain([&config_digest]) {
        assert_eq!(&sha256(&out.blob(digest)), digest, "blob {digest} in oci:");
    }
    run(skopeo(work)
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(reg("lab/multiarch:1"))
        .arg(format!("oci:{}:multiarch", out.0.display())));
    assert_eq!(out.tagged("multiarch"), index_digest);
    for child in oci.manifest(&index_digest)["manifests"]
        .as_array()
        .expect("index manifests")
    {
        let digest = child["digest"].as_str().expect("child digest");
        assert_eq!(sha256(&out.blob(digest)), digest, "child manifest {digest}");
    }
    let dir = work.join("out-dir");
    run(skopeo(work)
        .args(["copy", "--src-tls-verify=false"])
        .arg(reg("lab/multi:1"))
        .arg(format!("dir:{}", dir.display())));
    assert_eq!(sha256(&read(&dir.join("manifest.json"))), manifest_digest);
    for digest in layers.iter().chain([&config_digest]) {
        let hex = digest.strip_prefix("sha256:").expect("sha256");
        assert_eq!(
            &sha256(&read(&dir.join(hex))),
            digest,
            "blob {digest} in dir:"
        );
    }

    // list-tags
    let tags = json(&run(skopeo(work)
        .args(["list-tags", "--tls-verify=false"])
        .arg(reg("lab/multi"))));
    let tags: BTreeSet<&str> = tags["Tags"]
        .as_array()
        .expect("Tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tags, BTreeSet::from(["1", "2"]));

    // delete (by digest: both tags go), then the manifest is unknown
    run(skopeo(work)
        .args(["delete", "--tls-verify=false"])
        .arg(reg("lab/multi:1")));
    let err = run_fail(
        skopeo(work)
            .args(["inspect", "--tls-verify=false"])
            .arg(reg("lab/multi:1")),
    );
    assert!(err.contains("manifest unknown"), "after delete: {err}");
    let tags = json(&run(skopeo(work)
        .args(["list-tags", "--tls-verify=false"])
        .arg(reg("lab/multi"))));
    assert!(
        tags["Tags"].as_array().is_none_or(|t| t.is_empty()),
        "tags after delete: {tags}"
    );
    // the index in the other repository is untouched
    run(skopeo(work)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(reg("lab/multiarch:1")));
    drop(registry);
}

/// Issue I: skopeo pulls an image and one platform of an index through soute's
/// pull-through cache from a docker-registry upstream (Docker Hub's short form
/// included); the bytes are the upstream's, the other platform is never fetched.
#[test]
fn skopeo_pulls_through_the_cache() {
    let _serial = serial();
    if !require(
        "skopeo_pulls_through_the_cache",
        &["skopeo", "umoci", "busybox", "flock", "docker-registry"],
        false,
        false,
    ) {
        return;
    }
    let _machine = MachineLock::take();
    let _cache = RestoreAbsent::new("/var/lib/containers");
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    write_containers_conf(work);
    let oci = build_images(work);
    let upstream_dir = work.join("upstream");
    fs::create_dir_all(&upstream_dir).expect("mkdir upstream");
    let mut upstream = Registry::start_distribution(&upstream_dir);
    let src = |tag: &str| format!("oci:{}:{tag}", oci.0.display());
    run(skopeo(work)
        .args(["copy", "--dest-tls-verify=false"])
        .arg(src("multi"))
        .arg(format!("docker://{}/library/multi:1", upstream.addr)));
    run(skopeo(work)
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(src("multiarch"))
        .arg(format!("docker://{}/library/multiarch:1", upstream.addr)));
    let data = work.join("soute-data");
    let soute = serve(&data, &[]);
    let (ok, out, err) = run_soute(&[
        "upstream",
        "add",
        "docker.io",
        &format!("http://{}", upstream.addr),
        "--data",
        data.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "soute upstream add: {out}{err}");
    let through = |name: &str| format!("docker://{}/docker.io/{name}", soute.addr);

    let manifest_digest = oci.tagged("multi");
    let layers = layer_digests(&oci.manifest(&manifest_digest));
    let out = Layout(work.join("out-oci"));
    run(skopeo(work)
        .args(["copy", "--src-tls-verify=false"])
        .arg(through("multi:1"))
        .arg(format!("oci:{}:multi", out.0.display())));
    assert_eq!(out.tagged("multi"), manifest_digest);
    for digest in &layers {
        assert_eq!(&sha256(&out.blob(digest)), digest, "layer {digest}");
    }
    let index_digest = oci.tagged("multiarch");
    let raw_index = run(skopeo(work)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(through("library/multiarch:1")));
    assert_eq!(
        sha256(raw_index.as_bytes()),
        index_digest,
        "index bytes changed"
    );
    let arm = json(&run(skopeo(work)
        .args(["inspect", "--override-arch", "arm64", "--tls-verify=false"])
        .arg(through("multiarch:1"))));
    assert_eq!(arm["Architecture"], "arm64", "{arm}");
    drop(soute);
    let arm_digest = oci.tagged("multi-arm64");
    let (stdout, stderr) = upstream
        .proc
        .take()
        .expect("running")
        .stop(Duration::from_secs(10));
    let upstream_log = format!("{stdout}{stderr}");
    let soute_lines: Vec<&str> = upstream_log
        .lines()
        .filter(|l| l.contains("soute/") && l.contains("\"GET "))
        .collect();
    assert!(
        soute_lines
            .iter()
            .any(|l| l.contains(&index_digest) || l.contains("multiarch/manifests/1")),
        "soute fetched the index: {soute_lines:?}"
    );
    assert!(
        soute_lines.iter().any(|l| l.contains(&arm_digest)),
        "soute fetched the arm64 manifest skopeo asked for: {soute_lines:?}"
    );
    assert!(
        !soute_lines
            .iter()
            .any(|l| l.contains("multiarch/manifests/") && l.contains(&manifest_digest)),
        "soute fetched the amd64 child of the index, which nobody asked for: {soute_lines:?}"
    );
}

/// Issues B and H: the real-clients suite (`tests/e2e/real_clients.sh`) against soute
/// over TLS with its own CA and users, driving dockerd/docker, podman, skopeo, ctr and
/// Python clients, access rules and tokens included; `--auth auto` (the default: Basic
/// challenges, Bearer ones while an anonymous rule exists).
#[test]
fn real_clients_end_to_end() {
    real_clients("real_clients_end_to_end", "auto", None);
}

/// The same suite with `--auth basic`: Basic challenges always (docker then cannot pull
/// anonymously; every other check holds). Issue L: in this mode soute keeps its blobs on
/// a real 3-node Garage cluster (`--blob-store s3`), so every client's push and pull, and
/// the pull-through cache, go through the object store; the script checks at the end
/// that the data folder's `blobs/` stayed empty and `soute verify` finds every object.
#[test]
fn real_clients_end_to_end_basic_mode() {
    let test = "real_clients_end_to_end_basic_mode";
    let Some(bin) = garage::garage_or_skip(test) else {
        loud(&format!("{test}: without garage, on the local blob store"));
        return real_clients(test, "basic", None);
    };
    let cluster = garage::GarageCluster::start(bin);
    let endpoint = cluster.endpoint(0);
    let config = soute::storage::s3::S3Config {
        endpoint: endpoint.clone(),
        bucket: garage::BUCKET.to_string(),
        prefix: "clients".to_string(),
        region: garage::REGION.to_string(),
        credentials: soute::storage::s3::config::Credentials {
            access_key_id: cluster.key_id.clone(),
            secret_access_key: cluster.secret.clone(),
        },
    };
    let probe = soute::storage::s3::S3Client::new(config).expect("client");
    let ready = support::Deadline::after(Duration::from_secs(90));
    while let Err(e) = soute::storage::s3::check::startup_check(&probe) {
        assert!(ready.left(), "garage never became usable: {e}");
        thread::sleep(Duration::from_millis(300));
    }
    let s3 = S3Store {
        flags: format!(
            "--blob-store s3 --s3-endpoint {endpoint} --s3-bucket {} --s3-prefix clients --s3-region {}",
            garage::BUCKET,
            garage::REGION
        ),
        key_id: cluster.key_id.clone(),
        secret: cluster.secret.clone(),
    };
    real_clients(test, "basic", Some(&s3));
    drop(cluster);
}

/// `serve` flags and credentials putting soute's blobs on an S3 store.
struct S3Store {
    flags: String,
    key_id: String,
    secret: String,
}

/// Issue H: the same suite with `soute serve --auth token`: every client goes through
/// soute's Docker token service (Bearer challenges, `/v2/token`).
#[test]
fn real_clients_end_to_end_token_mode() {
    real_clients("real_clients_end_to_end_token_mode", "token", None);
}

/// Runs `tests/e2e/real_clients.sh` with `SOUTE_AUTH=auth` (and soute's blobs on
/// `s3`, if given) and checks its summary.
fn real_clients(test: &str, auth: &str, s3: Option<&S3Store>) {
    let _serial = serial();
    let tools = [
        "dockerd",
        "docker",
        "ctr",
        "podman",
        "skopeo",
        "umoci",
        "busybox",
        "jq",
        "openssl",
        "curl",
        "ss",
        "flock",
        "docker-registry",
    ];
    if !require(test, &tools, true, true) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/real_clients.sh");
    let started = Instant::now();
    let mut cmd = Command::new("bash");
    if let Some(s3) = s3 {
        cmd.env("SOUTE_SERVE_EXTRA", &s3.flags)
            .env("AWS_ACCESS_KEY_ID", &s3.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret);
    }
    let mut child = cmd
        .arg(&script)
        .env("SOUTE_BIN", env!("CARGO_BIN_EXE_soute"))
        .env("SOUTE_AUTH", auth)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn bash real_clients.sh");
    let stdout = child.stdout.take().expect("script stdout");
    let mut last_summary = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        loud(&line); // streamed as it comes, past libtest's capture
        if let Some(counts) = parse_summary(&line) {
            last_summary = Some(counts);
        }
    }
    let status = child.wait().expect("wait for real_clients.sh");
    loud(&format!(
        "real_clients.sh (SOUTE_AUTH={auth}): {status} after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    let (passed, failed) = last_summary.expect("no `N passed, N failed` line from real_clients.sh");
    assert!(
        status.success(),
        "real_clients.sh (SOUTE_AUTH={auth}): {status}, {passed} passed, {failed} failed"
    );
    assert_eq!(failed, 0);
    assert!(passed > 0, "real_clients.sh ran no step");
}

/// `N passed, N failed[, N skipped]` -> (passed, failed)
fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let mut parts = line.trim().split(", ");
    let passed = parts.next()?.strip_suffix(" passed")?.parse().ok()?;
    let failed = parts.next()?.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}
