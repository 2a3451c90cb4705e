//! The `it` binary's registry handle: every module goes through
//! [`TestRegistry`], built on the shared support library (`tests/support`).
//!
//! Normal mode: each `TestRegistry` starts soute in-process on 127.0.0.1:0 with
//! a fresh temporary data folder, and shuts it down on drop.
//!
//! Auth modes (`crate::AUTH_MODE`, one per test binary; the same modules run in
//! each): `Open` (`tests/it`: no users), `Basic` (`tests/it_basic`: an admin
//! user is made in the fresh data folder before start, every request carries
//! its Basic credentials) and `Token` (`tests/it_token`: the same user, soute
//! in `--auth token` mode; on a 401 with a Bearer challenge the harness asks
//! the realm for a token for the challenge's scope with the Basic credentials,
//! caches it per scope and retries, as the Go clients do). Raw-socket requests
//! (`raw_exchange`, `send_and_read`, `connect`) and `call_chunked`, shadowed
//! below, get the credentials inserted after their request line.
//!
//! Blob store (`crate::BLOB_STORE`): `None` keeps blobs in the data folder;
//! `tests/it_s3` sets each registry's blobs on its Garage cluster.
//!
//! External mode (`SOUTE_TEST_EXTERNAL_URL=http://127.0.0.1:5000`): the tests
//! talk to an already running registry (used to check the tests' own request
//! logic against CNCF distribution). Repository names then get a unique prefix
//! so tests do not see each other, and tests that need a restart, a special
//! configuration or the data folder skip themselves with a printed note. In
//! the Basic and Token modes the credentials come from
//! `SOUTE_TEST_EXTERNAL_CREDS=user:password`.
//! Must NEVER talk to a non-loopback registry or skip silently.

pub use crate::support::*;
use soute::config::Config;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

pub const EXTERNAL_ENV: &str = "SOUTE_TEST_EXTERNAL_URL";
pub const EXTERNAL_CREDS_ENV: &str = "SOUTE_TEST_EXTERNAL_CREDS";

/// How this binary's requests authenticate (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    Open,
    Basic,
    Token,
}

/// The mode of this test binary.
pub const MODE: AuthMode = crate::AUTH_MODE;

/// The administrator the Basic and Token modes make before soute starts.
pub const SUITE_USER: &str = "it-admin";
pub const SUITE_PASSWORD: &str = "it-admin-password";

/// `(user, password)` of this binary's mode; `None` in the open mode.
pub fn suite_credentials() -> Option<(String, String)> {
    if MODE == AuthMode::Open {
        return None;
    }
    if external_url().is_some() {
        let creds = std::env::var(EXTERNAL_CREDS_ENV).unwrap_or_else(|_| {
            panic!("{MODE:?} mode against an external registry needs {EXTERNAL_CREDS_ENV}=user:password")
        });
        let (u, p) = creds
            .split_once(':')
            .unwrap_or_else(|| panic!("{EXTERNAL_CREDS_ENV} is user:password"));
        return Some((u.to_string(), p.to_string()));
    }
    Some((SUITE_USER.to_string(), SUITE_PASSWORD.to_string()))
}

/// The Basic Authorization value of this mode's user.
fn suite_basic() -> Option<String> {
    suite_credentials().map(|(u, p)| basic(&u, &p))
}

pub struct TestRegistry {
    base: String,
    addr: SocketAddr,
    agent: ureq::Agent,
    prefix: String,
    local: Option<Soute>,
    /// Basic Authorization value of the suite user (Basic and Token modes).
    basic: Option<String>,
    /// Token mode: bearer tokens by scope (`""` for a challenge without one).
    tokens: Mutex<HashMap<String, String>>,
    /// The temporary data folder of a local registry (Basic and Token modes
    /// make it, to add the user before soute starts).
    _temp: Option<tempfile::TempDir>,
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
                basic: suite_basic(),
                tokens: Mutex::new(HashMap::new()),
                _temp: None,
            });
        }
        // The suite checks the registry as shipped: the default worker pool
        // and GC schedule, not the smaller pool `base_config` picks (with 8
        // workers, stalled heads are shed sooner: framing.rs).
        let defaults = Config::for_data(Path::new("unused"));
        let temp = tempfile::tempdir().expect("tempdir");
        if MODE != AuthMode::Open {
            let users = soute::registry::Registry::open(temp.path(), true, 1)
                .expect("open the fresh data folder");
            assert!(
                users
                    .add_user(SUITE_USER, SUITE_PASSWORD, true)
                    .expect("add the suite user"),
                "the suite user is an administrator"
            );
        }
        let soute = Soute::start_at(temp.path(), move |cfg| {
            cfg.workers = defaults.workers;
            cfg.gc_interval = defaults.gc_interval;
            set_auth_mode(cfg);
            if let Some(blob_store) = crate::BLOB_STORE {
                blob_store(cfg);
            }
            tweak(cfg);
        });
        let reg = TestRegistry {
            base: soute.http_base(),
            addr: soute.addr(),
            agent: http_agent(),
            prefix: String::new(),
            local: Some(soute),
            basic: suite_basic(),
            tokens: Mutex::new(HashMap::new()),
            _temp: Some(temp),
        };
        reg.expect_mode_in_force();
        Some(reg)
    }

    /// The registry really is in this binary's mode: without credentials
    /// `/v2/` is 200 (open) or 401 with a Basic or a Bearer challenge.
    fn expect_mode_in_force(&self) {
        let r = call(&self.agent, "GET", &self.url("/v2/"), None, &[], None);
        let challenge = r.header("www-authenticate").unwrap_or_default();
        let ok = match MODE {
            AuthMode::Open => r.status == 200,
            AuthMode::Basic => r.status == 401 && challenge.starts_with("Basic "),
            AuthMode::Token => {
                r.status == 401
                    && parse_bearer_challenge(challenge)
                        .is_some_and(|c| c.realm == self.url("/v2/token"))
            }
        };
        assert!(
            ok,
            "{MODE:?} mode: GET /v2/ without credentials answered {} {challenge:?}",
            r.status
        );
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
        let r = self.authed(method, &url, headers, |auth| {
            call(&self.agent, method, &url, auth, headers, body)
        });
        r.expect_api_version();
        r
    }

    /// Sends with this mode's credentials: none (open), Basic, or a bearer
    /// token (cached for the scope the request is expected to need; on a 401
    /// with a Bearer challenge, a token for the challenge's scope is fetched
    /// and the request sent once more). A caller's own Authorization header
    /// is sent as is.
    fn authed(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        send: impl Fn(Option<&str>) -> Resp,
    ) -> Resp {
        if headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            return send(None);
        }
        match MODE {
            AuthMode::Open => send(None),
            AuthMode::Basic => send(self.basic.as_deref()),
            AuthMode::Token => {
                let extra = mount_scope(&path_of(url));
                let key = |scope: &str| format!("{scope} {}", extra.as_deref().unwrap_or(""));
                let guess = key(&scope_for(method, &path_of(url)).unwrap_or_default());
                let cached = self.cached_token(&guess).map(|t| format!("Bearer {t}"));
                let r = send(cached.as_deref());
                if r.status != 401 {
                    return r;
                }
                let Some(challenge) = r
                    .header("www-authenticate")
                    .and_then(parse_bearer_challenge)
                else {
                    return r;
                };
                let token = self.token_for(&challenge, extra.as_deref());
                let mut cache = self.tokens.lock().expect("token cache");
                cache.insert(key(challenge.scope.as_deref().unwrap_or("")), token.clone());
                cache.insert(guess, token.clone());
                drop(cache);
                send(Some(&format!("Bearer {token}")))
            }
        }
    }

    fn cached_token(&self, scope: &str) -> Option<String> {
        self.tokens.lock().expect("token cache").get(scope).cloned()
    }

    /// A token from the challenge's realm for its scope (and `extra`, the
    /// source of a mount), with the suite user's Basic credentials. The
    /// realm must be on loopback, and for a local soute its own `/v2/token`
    /// (the Host the client used).
    fn token_for(&self, challenge: &Challenge, extra: Option<&str>) -> String {
        if !self.is_external() {
            assert_eq!(
                challenge.realm,
                self.url("/v2/token"),
                "the Bearer realm names this registry's /v2/token"
            );
        }
        let scopes: Vec<&str> = challenge
            .scope
            .as_deref()
            .into_iter()
            .chain(extra)
            .collect();
        fetch_token(
            &self.agent,
            &challenge.realm,
            challenge.service.as_deref(),
            &scopes,
            self.basic.as_deref(),
        )
        .unwrap_or_else(|r| panic!("token for {challenge:?}: {} {}", r.status, r.text()))
    }

    /// A PATCH whose body is sent with `Transfer-Encoding: chunked`, the way
    /// dockerd streams layers (no Content-Length, no Content-Range).
    pub fn patch_chunked(&self, target: &str, body: &[u8], piece: usize) -> Resp {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.url(target)
        };
        let r = self.authed("PATCH", &url, &[], |auth| {
            let mut headers = vec![("Content-Type", "application/octet-stream")];
            if let Some(a) = auth {
                headers.push(("Authorization", a));
            }
            crate::support::call_chunked(&self.agent, "PATCH", &url, &headers, body, piece)
        });
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

/// The server side of this binary's mode: `--auth token` for the Token mode
/// (the realm is then derived from the Host header); Basic otherwise.
fn set_auth_mode(cfg: &mut Config) {
    cfg.auth_mode = match MODE {
        AuthMode::Token => soute::api::AuthMode::Token,
        AuthMode::Open | AuthMode::Basic => soute::api::AuthMode::Basic,
    };
}

// ---- Raw requests with this mode's credentials. These shadow the support
// library's functions of the same names for every module that does
// `use crate::harness::*`, so the same test bytes run in every mode.

/// The `http://IP:PORT` of a URL on loopback.
fn url_addr(url: &str) -> SocketAddr {
    realm_addr(url)
}

/// The Authorization value a raw `method path` to `addr` carries in this
/// mode: none, the suite user's Basic credentials, or a bearer token fetched
/// from `addr`'s `/v2/token` for the scope the path needs.
fn raw_auth(addr: SocketAddr, method: &str, path: &str) -> Option<String> {
    match MODE {
        AuthMode::Open => None,
        AuthMode::Basic => suite_basic(),
        AuthMode::Token => {
            let realm = format!("http://{addr}/v2/token");
            let scope = scope_for(method, path);
            let mount = mount_scope(path);
            let scopes: Vec<&str> = scope
                .as_deref()
                .into_iter()
                .chain(mount.as_deref())
                .collect();
            let basic = suite_basic();
            let agent = http_agent();
            let token = fetch_token(&agent, &realm, Some("soute"), &scopes, basic.as_deref())
                .unwrap_or_else(|r| {
                    panic!(
                        "token for {scopes:?} from {realm}: {} {}",
                        r.status,
                        r.text()
                    )
                });
            Some(format!("Bearer {token}"))
        }
    }
}

/// `request` with this mode's Authorization header inserted after its
/// request line, when it starts with one (`METHOD /target HTTP/1.x`) and
/// carries none yet; anything else is returned unchanged.
fn with_credentials(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    if MODE == AuthMode::Open {
        return request.to_vec();
    }
    let Some(end) = find(request, b"\r\n") else {
        return request.to_vec();
    };
    let Ok(line) = std::str::from_utf8(&request[..end]) else {
        return request.to_vec();
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let is_request_line = parts.len() == 3
        && !parts[0].is_empty()
        && parts[0].bytes().all(|b| b.is_ascii_uppercase())
        && parts[1].starts_with('/')
        && parts[2].starts_with("HTTP/1.");
    let head_end = find(request, b"\r\n\r\n").unwrap_or(request.len());
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    if !is_request_line || head.contains("\r\nauthorization:") {
        return request.to_vec();
    }
    let Some(auth) = raw_auth(addr, parts[0], parts[1]) else {
        return request.to_vec();
    };
    let mut out = Vec::with_capacity(request.len() + auth.len() + 20);
    out.extend_from_slice(&request[..end + 2]);
    out.extend_from_slice(format!("Authorization: {auth}\r\n").as_bytes());
    out.extend_from_slice(&request[end + 2..]);
    out
}

/// [`crate::support::raw_exchange`] with this mode's credentials.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResp {
    crate::support::raw_exchange(addr, &with_credentials(addr, request))
}

/// [`crate::support::send_and_read`] with this mode's credentials.
pub fn send_and_read(addr: SocketAddr, req: Vec<u8>) -> RawResp {
    crate::support::send_and_read(addr, with_credentials(addr, &req))
}

/// [`crate::support::call_chunked`] with this mode's credentials.
pub fn call_chunked(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    piece: usize,
) -> Resp {
    let auth = raw_auth(url_addr(url), method, &path_of(url));
    let mut all = headers.to_vec();
    if let Some(a) = auth.as_deref() {
        all.push(("Authorization", a));
    }
    crate::support::call_chunked(agent, method, url, &all, body, piece)
}

/// [`crate::support::connect`] whose writes that start a request get this
/// mode's credentials after the request line; reads and the socket
/// (through `Deref`) are the plain stream's.
pub fn connect(addr: SocketAddr, timeout: Duration) -> AuthStream {
    AuthStream {
        stream: crate::support::connect(addr, timeout),
        addr,
    }
}

pub struct AuthStream {
    stream: TcpStream,
    addr: SocketAddr,
}

impl std::ops::Deref for AuthStream {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl std::ops::DerefMut for AuthStream {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl Write for AuthStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bytes = with_credentials(self.addr, buf);
        if bytes.len() == buf.len() {
            return self.stream.write(buf);
        }
        self.stream.write_all(&bytes)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

impl Read for AuthStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.read(buf)
    }
}
