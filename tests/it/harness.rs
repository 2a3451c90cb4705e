//! The `it` binary's registry handle: every module goes through
//! [`TestRegistry`], built on the shared support library (`tests/support`).
//!
//! Normal mode: each `TestRegistry` starts soute in-process on 127.0.0.1:0 with
//! a fresh temporary data folder, and shuts it down on drop.
//!
//! External mode (`SOUTE_TEST_EXTERNAL_URL=http://127.0.0.1:5000`): the tests
//! talk to an already running registry (used to check the tests' own request
//! logic against CNCF distribution). Repository names then get a unique prefix
//! so tests do not see each other, and tests that need a restart, a special
//! configuration or the data folder skip themselves with a printed note.
//! Must NEVER talk to a non-loopback registry or skip silently.

pub use crate::support::*;
use soute::config::Config;
use std::net::SocketAddr;
use std::path::Path;

pub const EXTERNAL_ENV: &str = "SOUTE_TEST_EXTERNAL_URL";

pub struct TestRegistry {
    base: String,
    addr: SocketAddr,
    agent: ureq::Agent,
    prefix: String,
    local: Option<Soute>,
}

/// True when the suite targets an external registry.
pub fn external_url() -> Option<String> {
    std::env::var(EXTERNAL_ENV).ok().filter(|s| !s.is_empty())
}

impl TestRegistry {
    /// A registry with the default test configuration.
    pub fn start() -> TestRegistry {
        Self::boot(|_| {}, true).expect("a registry")
    }

    /// A registry with a changed configuration; `None` (with a note) in
    /// external mode, where the configuration is not ours to change.
    pub fn local_with(
        test: &str,
        tweak: impl Fn(&mut Config) + Send + 'static,
    ) -> Option<TestRegistry> {
        let reg = Self::boot(tweak, false);
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

    fn boot(
        tweak: impl Fn(&mut Config) + Send + 'static,
        allow_external: bool,
    ) -> Option<TestRegistry> {
        if let Some(url) = external_url() {
            if !allow_external {
                return None;
            }
            let base = url.trim_end_matches('/').to_string();
            let hostport = base
                .strip_prefix("http://")
                .expect("SOUTE_TEST_EXTERNAL_URL must be http://host:port");
            let addr: SocketAddr = hostport.parse().expect("external url host:port");
            assert!(
                addr.ip().is_loopback(),
                "{EXTERNAL_ENV} must be a loopback address"
            );
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos();
            let prefix = format!(
                "it{}x{}x{}/",
                std::process::id(),
                nanos % 1_000_000_000,
                unique()
            );
            return Some(TestRegistry {
                base,
                addr,
                agent: http_agent(),
                prefix,
                local: None,
            });
        }
        // The suite checks the registry as shipped: the default worker pool
        // and GC schedule, not the smaller pool `base_config` picks (with 8
        // workers, stalled heads are shed sooner: framing.rs).
        let defaults = Config::for_data(Path::new("unused"));
        let soute = Soute::start(move |cfg| {
            cfg.workers = defaults.workers;
            cfg.gc_interval = defaults.gc_interval;
            tweak(cfg);
        });
        Some(TestRegistry {
            base: soute.http_base(),
            addr: soute.addr(),
            agent: http_agent(),
            prefix: String::new(),
            local: Some(soute),
        })
    }

    pub fn is_external(&self) -> bool {
        self.local.is_none()
    }

    /// The data folder (normal mode only).
    pub fn data_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(Soute::data)
    }

    /// Stops soute and starts it again on the same data folder. The port may
    /// change: use [`TestRegistry::url`] / [`TestRegistry::loc`] afterwards.
    pub fn restart(&mut self) {
        // Close our pooled keep-alive connections first, as a client going away would.
        self.agent = http_agent();
        let local = self.local.as_mut().expect("restart needs a local registry");
        local.restart();
        self.addr = local.addr();
        self.base = local.http_base();
        self.agent = http_agent();
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
        with_query(url, param)
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
        let r = call(&self.agent, method, &url, None, headers, body);
        r.expect_api_version();
        r
    }

    /// A PATCH whose body is sent with `Transfer-Encoding: chunked`, the way
    /// dockerd streams layers (no Content-Length, no Content-Range).
    pub fn patch_chunked(&self, target: &str, body: &[u8], piece: usize) -> Resp {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.url(target)
        };
        let ct = [("Content-Type", "application/octet-stream")];
        let r = call_chunked(&self.agent, "PATCH", &url, &ct, body, piece);
        r.expect_api_version();
        r
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
        let n = unique();
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
        // Close pooled connections before the server stops (it drops with us).
        self.agent = http_agent();
    }
}

/// A pushed sample image.
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
}
