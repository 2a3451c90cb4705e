//! The one place that knows how to start soute, talk HTTP to it and build
//! registry content. Every other module goes through [`TestRegistry`].
//!
//! Normal mode: each `TestRegistry` starts soute in-process on 127.0.0.1:0 with
//! a fresh temporary data folder, and shuts it down on drop.
//!
//! External mode (`SOUTE_TEST_EXTERNAL_URL=http://127.0.0.1:5000`): the tests
//! talk to an already running registry (used to check the tests' own request
//! logic against CNCF distribution). Repository names then get a unique prefix
//! so tests do not see each other, and tests that need a restart, a special
//! configuration or the data folder skip themselves with a printed note.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};
use soute::config::{Config, TlsMode};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const EXTERNAL_ENV: &str = "SOUTE_TEST_EXTERNAL_URL";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What real clients (docker, containerd, oras) put in `Accept` for manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, */*";

/// Upper bound for any single HTTP exchange in the suite.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

type Tweak = Box<dyn Fn(&mut Config) + Send>;

struct Local {
    dir: tempfile::TempDir,
    tweak: Tweak,
    running: Option<soute::app::Running>,
}

pub struct TestRegistry {
    base: String,
    addr: SocketAddr,
    agent: ureq::Agent,
    prefix: String,
    local: Option<Local>,
}

/// True when the suite targets an external registry.
pub fn external_url() -> Option<String> {
    std::env::var(EXTERNAL_ENV).ok().filter(|s| !s.is_empty())
}

fn start_soute(dir: &Path, tweak: &Tweak) -> (soute::app::Running, SocketAddr) {
    let mut cfg = Config::for_data(dir);
    cfg.listen = vec!["127.0.0.1:0".parse().expect("loopback address")];
    cfg.tls = TlsMode::Off;
    cfg.delete_enabled = true;
    tweak(&mut cfg);
    let running = soute::app::start(cfg).expect("soute::app::start");
    let addr = running.addrs()[0];
    (running, addr)
}

fn new_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(CALL_TIMEOUT))
        .user_agent("soute-it/1")
        .build()
        .new_agent()
}

impl TestRegistry {
    /// A registry with the default test configuration.
    pub fn start() -> TestRegistry {
        Self::boot(Box::new(|_| {}), true).expect("a registry")
    }

    /// A registry with a changed configuration; `None` (with a note) in
    /// external mode, where the configuration is not ours to change.
    pub fn local_with(
        test: &str,
        tweak: impl Fn(&mut Config) + Send + 'static,
    ) -> Option<TestRegistry> {
        let reg = Self::boot(Box::new(tweak), false);
        if reg.is_none() {
            eprintln!("note: skipping {test}: it needs its own soute instance (external mode)");
        }
        reg
    }

    /// A registry this test owns (restart, data folder); `None` with a note in
    /// external mode.
    pub fn local(test: &str) -> Option<TestRegistry> {
        Self::local_with(test, |_| {})
    }

    fn boot(tweak: Tweak, allow_external: bool) -> Option<TestRegistry> {
        if let Some(url) = external_url() {
            if !allow_external {
                return None;
            }
            let base = url.trim_end_matches('/').to_string();
            let hostport = base
                .strip_prefix("http://")
                .expect("SOUTE_TEST_EXTERNAL_URL must be http://host:port");
            let addr: SocketAddr = hostport.parse().expect("external url host:port");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos();
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let prefix = format!("it{}x{}x{n}/", std::process::id(), nanos % 1_000_000_000);
            return Some(TestRegistry {
                base,
                addr,
                agent: new_agent(),
                prefix,
                local: None,
            });
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (running, addr) = start_soute(dir.path(), &tweak);
        Some(TestRegistry {
            base: format!("http://{addr}"),
            addr,
            agent: new_agent(),
            prefix: String::new(),
            local: Some(Local {
                dir,
                tweak,
                running: Some(running),
            }),
        })
    }

    pub fn is_external(&self) -> bool {
        self.local.is_none()
    }

    /// The data folder (normal mode only).
    pub fn data_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.dir.path())
    }

    /// Stops soute and starts it again on the same data folder. The port may
    /// change: use [`TestRegistry::url`] / [`TestRegistry::loc`] afterwards.
    pub fn restart(&mut self) {
        // Close our pooled keep-alive connections first, as a client going away would.
        self.agent = new_agent();
        let local = self.local.as_mut().expect("restart needs a local registry");
        if let Some(r) = local.running.take() {
            r.shutdown();
        }
        let (running, addr) = start_soute(local.dir.path(), &local.tweak);
        local.running = Some(running);
        self.addr = addr;
        self.base = format!("http://{addr}");
        self.agent = new_agent();
    }

    /// The socket address to open raw connections to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A repository name unique to this registry instance.
    pub fn repo(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Absolute URL of an API path (`/v2/...`).
    pub fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with /: {path}");
        format!("{}{path}", self.base)
    }

    /// Turns a `Location` header value (absolute or relative) into a URL on the
    /// running server. Absolute locations are rebased onto the current address
    /// so they stay valid across a restart that changed the port.
    pub fn loc(&self, location: &str) -> String {
        for scheme in ["http://", "https://"] {
            if let Some(rest) = location.strip_prefix(scheme) {
                let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
                return self.url(path);
            }
        }
        if location.starts_with('/') {
            self.url(location)
        } else {
            self.url(&format!("/{location}"))
        }
    }

    /// Appends a query parameter to a URL that may already carry a query.
    pub fn with_query(url: &str, param: &str) -> String {
        if url.contains('?') {
            format!("{url}&{param}")
        } else {
            format!("{url}?{param}")
        }
    }

    /// One HTTP exchange. `target` is an API path or a full URL. A body of
    /// `None` sends no body (and no Content-Length) at all.
    pub fn call(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.url(target)
        };
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let result = match body {
            Some(bytes) => self.agent.run(b.body(bytes).expect("request")),
            None => self.agent.run(b.body(()).expect("request")),
        };
        let resp = result.unwrap_or_else(|e| panic!("{method} {url}: transport error {e}"));
        Resp::from_ureq(method, &url, resp)
    }

    /// A PATCH whose body is sent with `Transfer-Encoding: chunked`, the way
    /// dockerd streams layers (no Content-Length, no Content-Range).
    pub fn patch_chunked(&self, target: &str, body: &[u8], piece: usize) -> Resp {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.url(target)
        };
        let reader = Pieces {
            data: body.to_vec(),
            pos: 0,
            piece,
        };
        let req = ureq::http::Request::builder()
            .method("PATCH")
            .uri(&url)
            .header("Content-Type", "application/octet-stream")
            .body(ureq::SendBody::from_owned_reader(reader))
            .expect("request");
        let resp = self
            .agent
            .run(req)
            .unwrap_or_else(|e| panic!("PATCH {url}: {e}"));
        Resp::from_ureq("PATCH", &url, resp)
    }

    pub fn get(&self, target: &str) -> Resp {
        self.call("GET", target, &[], None)
    }

    pub fn head(&self, target: &str) -> Resp {
        self.call("HEAD", target, &[], None)
    }

    pub fn delete(&self, target: &str) -> Resp {
        self.call("DELETE", target, &[], None)
    }

    /// GET a manifest the way clients do (with a full Accept list).
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Resp {
        let path = format!("/v2/{repo}/manifests/{reference}");
        self.call("GET", &path, &[("Accept", MANIFEST_ACCEPT)], None)
    }

    pub fn head_manifest(&self, repo: &str, reference: &str) -> Resp {
        let path = format!("/v2/{repo}/manifests/{reference}");
        self.call("HEAD", &path, &[("Accept", MANIFEST_ACCEPT)], None)
    }

    pub fn get_blob(&self, repo: &str, digest: &str) -> Resp {
        self.get(&format!("/v2/{repo}/blobs/{digest}"))
    }

    /// POST /uploads/ and return the absolute session URL (asserting 202).
    pub fn start_upload(&self, repo: &str) -> String {
        let r = self.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            Some(b""),
        );
        r.expect_status(202);
        self.loc(r.header("location").expect("Location on 202"))
    }

    /// Pushes a blob with POST + PUT ?digest= and returns its sha256 digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        self.push_blob_as(repo, bytes, &digest);
        digest
    }

    /// Pushes a blob under the given digest (any algorithm), asserting 201.
    pub fn push_blob_as(&self, repo: &str, bytes: &[u8], digest: &str) {
        let session = self.start_upload(repo);
        let url = Self::with_query(&session, &format!("digest={digest}"));
        let r = self.call(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream")],
            Some(bytes),
        );
        r.expect_status(201);
    }

    /// PUT a manifest; returns the response for the caller to check.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Resp {
        let path = format!("/v2/{repo}/manifests/{reference}");
        self.call("PUT", &path, &[("Content-Type", media_type)], Some(body))
    }

    /// PUT a manifest, assert 201 and the digest header, return the digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let r = self.put_manifest(repo, reference, media_type, body);
        r.expect_status(201);
        let digest = sha256(body);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.as_str()),
            "PUT manifest {repo}:{reference}: Docker-Content-Digest"
        );
        digest
    }

    /// A config blob and two layer blobs plus an OCI image manifest pointing at
    /// them, all pushed, the manifest under `tag`.
    pub fn sample_image(&self, repo: &str, tag: &str) -> Image {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"it":"{repo}:{tag}:{n}"}}}}}}"#
        )
        .into_bytes();
        let layers = vec![
            pseudo_random_bytes(3000 + n, 40_000),
            pseudo_random_bytes(7000 + n, 1_234),
        ];
        let config_desc = Descriptor::new(OCI_CONFIG, &config);
        for l in &layers {
            self.push_blob(repo, l);
        }
        self.push_blob(repo, &config);
        let layer_descs: Vec<Descriptor> = layers
            .iter()
            .map(|l| Descriptor::new(OCI_LAYER, l))
            .collect();
        let manifest = image_manifest(OCI_MANIFEST, &config_desc, &layer_descs, None, None);
        let digest = self.push_manifest(repo, tag, OCI_MANIFEST, &manifest);
        Image {
            config,
            layers,
            manifest,
            digest,
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.agent = new_agent();
        if let Some(local) = self.local.as_mut() {
            if let Some(r) = local.running.take() {
                r.shutdown();
            }
        }
    }
}

/// Hands out a body in fixed-size reads so the chunked encoder writes several chunks.
struct Pieces {
    data: Vec<u8>,
    pos: usize,
    piece: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.piece.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A pushed sample image.
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

/// An OCI descriptor.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Descriptor {
    pub fn new(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256(bytes),
            size: bytes.len(),
        }
    }

    pub fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An image manifest (OCI or Docker schema2 depending on `media_type`).
pub fn image_manifest(
    media_type: &str,
    config: &Descriptor,
    layers: &[Descriptor],
    artifact_type: Option<&str>,
    subject: Option<&Descriptor>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.json(),
        "layers": layers.iter().map(Descriptor::json).collect::<Vec<_>>(),
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    if let Some(s) = subject {
        m["subject"] = s.json();
    }
    serde_json::to_vec(&m).expect("json")
}

/// An index / manifest list over child manifests.
pub fn index_manifest(media_type: &str, children: &[Descriptor]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|c| {
            let mut d = c.json();
            d["platform"] = json!({"architecture": "amd64", "os": "linux"});
            d
        })
        .collect();
    serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}),
    )
    .expect("json")
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex(&Sha512::digest(bytes)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic incompressible bytes (xorshift), different per seed.
pub fn pseudo_random_bytes(seed: usize, len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (seed as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A digest of content that was never pushed anywhere.
pub fn unknown_digest() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    sha256(format!("never pushed {n} {:?}", Instant::now()).as_bytes())
}

/// A response, fully read.
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    fn from_ureq(method: &str, url: &str, mut resp: ureq::http::Response<ureq::Body>) -> Resp {
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
                .limit(64 << 20)
                .read_to_vec()
                .unwrap_or_else(|e| panic!("{method} {url}: reading body: {e}"))
        };
        let r = Resp {
            what: format!("{method} {url}"),
            status,
            headers,
            body,
        };
        // Every answer of the registry API carries the API version header.
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0"),
            "{}: Docker-Distribution-API-Version missing or wrong (status {})",
            r.what,
            r.status
        );
        r
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header, comma-separated lists split and trimmed.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// The Content-Length header as a number.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .map(|v| v.parse().expect("numeric Content-Length"))
    }

    pub fn expect_status(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status,
            status,
            "{}: status (body: {})",
            self.what,
            self.text()
        );
        self
    }

    /// Asserts a JSON error envelope with one of `codes` and the given status.
    pub fn expect_error(&self, status: u16, codes: &[&str]) -> &Resp {
        if let Some(problem) = self.error_mismatch(status, codes) {
            panic!("{problem}");
        }
        self
    }

    /// `None` when this is a well-formed error envelope with the given status
    /// and one of `codes`; otherwise what is wrong.
    pub fn error_mismatch(&self, status: u16, codes: &[&str]) -> Option<String> {
        match self.try_error_code() {
            Ok(code) if self.status == status && codes.contains(&code.as_str()) => None,
            Ok(code) => Some(format!(
                "{}: got {} {code}, want {status} {codes:?} (body {})",
                self.what,
                self.status,
                self.text()
            )),
            Err(e) => Some(format!(
                "{}: got {}, want {status} {codes:?}: {e}",
                self.what, self.status
            )),
        }
    }

    /// Checks the error envelope shape and returns the first code (panics otherwise).
    pub fn error_code(&self) -> String {
        self.try_error_code()
            .unwrap_or_else(|e| panic!("{} (status {}): {e}", self.what, self.status))
    }

    /// The first error code, after checking the envelope: JSON Content-Type,
    /// `errors` a non-empty array, each with an UPPER_SNAKE `code` and a
    /// string `message`.
    pub fn try_error_code(&self) -> Result<String, String> {
        let ct = self.header("content-type").unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(format!("error Content-Type {ct:?}, body {:?}", self.text()));
        }
        let v: Value = serde_json::from_slice(&self.body)
            .map_err(|e| format!("body is not JSON ({e}): {}", self.text()))?;
        let errors = v["errors"]
            .as_array()
            .ok_or_else(|| format!("no errors array: {v}"))?;
        if errors.is_empty() {
            return Err("empty errors array".into());
        }
        for e in errors {
            let code = e["code"]
                .as_str()
                .ok_or_else(|| format!("error without code: {e}"))?;
            if code.is_empty() || !code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(format!("code {code:?} is not UPPER_SNAKE"));
            }
            if !e["message"].is_string() {
                return Err(format!("error without message: {e}"));
            }
        }
        Ok(errors[0]["code"].as_str().unwrap_or_default().to_string())
    }

    /// The `Location` header, which must be present.
    pub fn location(&self) -> &str {
        self.header("location")
            .unwrap_or_else(|| panic!("{}: no Location header", self.what))
    }
}

/// Collects the failures of a table-driven test so one run reports them all.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    pub fn add(&mut self, problem: Option<String>) {
        self.0.extend(problem);
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failed case(s):\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

/// True when `header` is a digest (of any algorithm this suite knows) of `body`.
pub fn digest_matches(header: Option<&str>, body: &[u8]) -> bool {
    match header {
        Some(h) if h.starts_with("sha256:") => h == sha256(body),
        Some(h) if h.starts_with("sha512:") => h == sha512(body),
        _ => false,
    }
}

/// Parses `Link: <url>; rel="next"` and returns the URL.
pub fn next_link(r: &Resp) -> Option<String> {
    let v = r.header("link")?;
    let (url, params) = v.split_once(';')?;
    let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
    assert!(
        params.replace(' ', "").contains("rel=\"next\""),
        "{}: Link without rel=\"next\": {v}",
        r.what
    );
    Some(url.to_string())
}

/// Splits a query string into decoded pairs (only %XX decoding).
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Raw TCP, for framing cases and for paths no HTTP library would send as is.

/// A response read off a raw socket.
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// True when EOF was seen while reading the body.
    pub closed: bool,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
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

/// Opens a connection with read/write timeouts.
pub fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    s.set_write_timeout(Some(timeout)).expect("timeout");
    s
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

/// Reads one HTTP/1.1 response from `s`; for a response to HEAD pass `head = true`.
/// `closed` is set only when EOF was seen while reading the body; use
/// [`peer_closed`] to wait for a close.
pub fn read_response(s: &mut TcpStream, head: bool) -> std::io::Result<RawResp> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16384];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed after {} bytes: {:?}",
                    buf.len(),
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("response head over 1 MiB"));
        }
    };
    let head_text = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[head_end..].to_vec();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut closed = false;
    if !head && status != 204 && status != 304 && status >= 200 {
        if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while body.len() < len {
                let n = s.read(&mut tmp)?;
                if n == 0 {
                    closed = true;
                    break;
                }
                body.extend_from_slice(&tmp[..n]);
            }
            body.truncate(len);
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            // Read to the terminating chunk; bodies here are small.
            while find(&body, b"0\r\n\r\n").is_none() {
                let n = s.read(&mut tmp)?;
                if n == 0 {
                    closed = true;
                    break;
                }
                body.extend_from_slice(&tmp[..n]);
            }
            body = dechunk(&body);
        } else {
            // Delimited by close.
            loop {
                match s.read(&mut tmp) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => body.extend_from_slice(&tmp[..n]),
                    Err(_) => break,
                }
            }
        }
    }
    Ok(RawResp {
        status,
        headers,
        body,
        closed,
    })
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
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    };
    let _ = s.set_read_timeout(old);
    res
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(p) = find(b, b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..p])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || b.len() < p + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + size]);
        b = &b[(p + 4 + size).min(b.len())..];
    }
}

/// The path and query of an absolute URL.
pub fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/')
        .map(|i| rest[i..].to_string())
        .unwrap_or_else(|| "/".into())
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Half-closes our side after writing (signals "no more body").
pub fn shutdown_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// Every path under `root`, relative, sorted (directories end with `/`).
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p: PathBuf = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
