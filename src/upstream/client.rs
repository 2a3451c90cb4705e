//! The HTTP client of one upstream registry (ureq on soute's rustls): TLS
//! verified against the system's roots or the upstream's `--ca`, timeouts on
//! every call, and the `WWW-Authenticate` dance: a 401 with a Bearer
//! challenge fetches a token from its realm (with Basic credentials when the
//! upstream has them) and caches it until it expires; a Basic challenge is
//! answered with the credentials.
//!
//! It must never connect anywhere but the upstream's configured URL and the
//! hosts that upstream itself names (its token realm, its redirects), never
//! let a repository name choose a host, never log a password or a token, and
//! never send the credentials over a redirect (ureq drops them).

use super::challenge::{parse_challenge, Challenge};
use crate::db::upstreams::UpstreamRow;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ureq::http::Response;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::Body;

/// Connecting to an upstream (or its token realm) gives up after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A manifest (or token) request, body included, gives up after this.
pub const MANIFEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A blob transfer gives up when no byte came for this long.
pub const BLOB_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest token response read.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;
/// Basic credentials an upstream asked for are sent up front for this long.
const BASIC_REUSE: Duration = Duration::from_secs(3600);
/// The most scopes whose authorization is remembered (then all are forgotten).
const MAX_CACHED_SCOPES: usize = 1024;
/// Where Debian-like systems keep the system's trusted roots.
const SYSTEM_ROOTS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Why a call to an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Refused, timed out, TLS failed, broken transfer: nothing to learn.
    Unreachable(String),
    /// The upstream answered with this status (after authenticating).
    Status(u16),
    /// The upstream's answer cannot be used (a bad challenge or token).
    Invalid(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(m) => write!(f, "unreachable ({m})"),
            Failure::Status(s) => write!(f, "answered HTTP {s}"),
            Failure::Invalid(m) => write!(f, "{m}"),
        }
    }
}

/// What a call is for: its timeouts.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    Manifest,
    Blob,
}

pub struct Client {
    /// The settings it was made from (a changed row makes a new client).
    pub config: UpstreamRow,
    agent: ureq::Agent,
    /// Authorization header values by scope, and until when they are good.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// `--max-rate`: when the next byte from this upstream may come.
    next_byte_at: Mutex<Instant>,
}

pub(crate) fn roots(ca_pem: Option<&str>) -> Result<RootCerts, String> {
    let parse = |pem: &[u8]| -> Vec<Certificate<'static>> {
        ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect()
    };
    if let Some(pem) = ca_pem {
        let certs = parse(pem.as_bytes());
        if certs.is_empty() {
            return Err("the upstream's --ca holds no PEM certificate".into());
        }
        return Ok(RootCerts::new_with_certs(&certs));
    }
    for path in SYSTEM_ROOTS {
        if let Ok(pem) = std::fs::read(path) {
            let certs = parse(&pem);
            if !certs.is_empty() {
                return Ok(RootCerts::new_with_certs(&certs));
            }
        }
    }
    // No system bundle: Mozilla's roots, compiled in (webpki-roots).
    Ok(RootCerts::WebPki)
}

fn transport(e: &ureq::Error) -> Failure {
    Failure::Unreachable(e.to_string())
}

impl Client {
    pub fn new(config: UpstreamRow) -> Result<Client, String> {
        let tls = TlsConfig::builder()
            .root_certs(roots(config.ca_pem.as_deref())?)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .tls_config(tls)
            .user_agent(concat!("soute/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(8)
            .build()
            .new_agent();
        Ok(Client {
            config,
            agent,
            tokens: Mutex::new(HashMap::new()),
            next_byte_at: Mutex::new(Instant::now()),
        })
    }

    /// `n` bytes came from this upstream: with `--max-rate`, sleep until
    /// the rate allows them. Shared by every download from the upstream, so
    /// together they stay under it; unused time is not saved up.
    pub fn pace(&self, n: usize) {
        let Some(rate) = self.config.max_rate.filter(|r| *r > 0) else {
            return;
        };
        let wait = {
            let mut next = self.next_byte_at.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / rate as f64);
            start.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    fn basic(&self) -> Option<String> {
        let user = self.config.username.as_deref()?;
        let pass = self.config.password.as_deref().unwrap_or("");
        let raw = format!("{user}:{pass}");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    fn cached_auth(&self, scope: &str) -> Option<String> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        match tokens.get(scope) {
            Some((value, until)) if Instant::now() < *until => Some(value.clone()),
            Some(_) => {
                tokens.remove(scope);
                None
            }
            None => None,
        }
    }

    fn once(
        &self,
        method: &str,
        path: &str,
        accept: Option<&str>,
        auth: Option<&str>,
        (call, from): (Call, u64),
    ) -> Result<Response<Body>, Failure> {
        let url = format!("{}{path}", self.config.url);
        let mut req = match method {
            "HEAD" => self.agent.head(&url),
            _ => self.agent.get(&url),
        };
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if from > 0 {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let req = match call {
            Call::Manifest => req.config().timeout_global(Some(MANIFEST_TIMEOUT)).build(),
            Call::Blob => req
                .config()
                .timeout_recv_response(Some(MANIFEST_TIMEOUT))
                .timeout_per_read(Some(BLOB_IDLE_TIMEOUT))
                .build(),
        };
        req.call().map_err(|e| transport(&e))
    }

    /// `method` (GET or HEAD) of `path` (`/v2/...`) for `repo` (the
    /// upstream's name of the repository, for the token's scope); a 401 is
    /// answered once with what its challenge asks for. Any status is returned
    /// as a response except a 401 that stays one.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        repo: &str,
        accept: Option<&str>,
        call: Call,
    ) -> Result<Response<Body>, Failure> {
        self.send_from(method, path, repo, accept, (call, 0))
    }

    /// [`Client::send`] asking for the bytes from `from` on (`Range:
    /// bytes=FROM-`, when `from` is not 0): the resume of a broken transfer.
    pub fn send_from(
        &self,
        method: &str,
        path: &str,
        repo: &str,
        accept: Option<&str>,
        call: (Call, u64),
    ) -> Result<Response<Body>, Failure> {
        let scope = format!("repository:{repo}:pull");
        let cached = self.cached_auth(&scope);
        let resp = self.once(method, path, accept, cached.as_deref(), call)?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(parse_challenge)
            .ok_or_else(|| Failure::Invalid("answered 401 without a challenge".into()))?;
        let (auth, lifetime) = match challenge {
            Challenge::Basic => (self.basic().ok_or(Failure::Status(401))?, BASIC_REUSE),
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => self.fetch_token(
                &realm,
                service.as_deref(),
                asked.as_deref().unwrap_or(&scope),
            )?,
            Challenge::Other(kind) => {
                return Err(Failure::Invalid(format!(
                    "asks for {kind} authentication, which soute does not speak"
                )))
            }
        };
        let resp = self.once(method, path, accept, Some(&auth), call)?;
        if resp.status().as_u16() == 401 {
            return Err(Failure::Status(401));
        }
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_CACHED_SCOPES {
            tokens.clear();
        }
        tokens.insert(scope, (auth, Instant::now() + lifetime));
        Ok(resp)
    }

    /// GET a token from a Bearer challenge's realm (Docker's token protocol).
    /// Returns the Authorization value and how long it may be reused.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<(String, Duration), Failure> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(Failure::Invalid(format!(
                "its token realm {realm:?} is not an http(s) URL"
            )));
        }
        let mut req = self
            .agent
            .get(realm)
            .query("scope", scope)
            .config()
            .timeout_global(Some(MANIFEST_TIMEOUT))
            .build();
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(b) = self.basic() {
            req = req.header("Authorization", b);
        }
        let resp = req.call().map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(Failure::Invalid(format!(
                "its token service answered HTTP {status}"
            )));
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_TOKEN_BYTES)
            .read_to_vec()
            .map_err(|e| transport(&e))?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| Failure::Invalid("its token service answered no JSON".into()))?;
        let token = json
            .get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::Invalid("its token service answered no token".into()))?;
        // distribution's default is 60 s; keep a margin so it never expires in flight.
        let expires_in = json
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .unwrap_or(60)
            .clamp(10, 24 * 3600);
        Ok((
            format!("Bearer {token}"),
            Duration::from_secs(expires_in - 5),
        ))
    }
}
