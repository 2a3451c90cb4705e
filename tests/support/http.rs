//! HTTP exchanges over ureq: agents (plain, TLS with a given CA), one
//! `call` for every method, the fully read [`Resp`] with its assertions
//! (status, OCI error envelope, Basic challenge), Link/query parsing.
//! Must NEVER follow redirects (tests check them) or treat an HTTP error
//! status as a transport error.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use ureq::config::IpFamily;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Upper bound for any single HTTP exchange in the suite.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest body a test reads into memory.
const BODY_LIMIT: u64 = 64 << 20;

fn agent_builder(family: IpFamily) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(CALL_TIMEOUT))
        .ip_family(family)
        .user_agent("soute-tests/1")
}

/// A plain HTTP client (IPv4 loopback).
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

/// One exchange; panics on a transport error. `body: None` sends no body
/// (and no Content-Length) at all.
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

/// One exchange; a transport error (refused, reset, timeout) is returned.
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
    let resp = match body {
        Some(bytes) => agent.run(b.body(bytes).expect("request"))?,
        None => agent.run(b.body(()).expect("request"))?,
    };
    Resp::try_from_ureq(method, url, resp)
}

/// A request whose body is sent with `Transfer-Encoding: chunked` in reads
/// of `piece` bytes, the way dockerd streams layers.
pub fn call_chunked(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    piece: usize,
) -> Resp {
    let reader = Pieces {
        data: body.to_vec(),
        pos: 0,
        piece,
    };
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b
        .body(ureq::SendBody::from_owned_reader(reader))
        .expect("request");
    let resp = agent
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    Resp::from_ureq(method, url, resp)
}

pub fn get(agent: &ureq::Agent, url: &str, auth: Option<&str>) -> Resp {
    call(agent, "GET", url, auth, &[], None)
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

/// The first value of header `name` (any case) in lower-cased `headers`.
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Appends a query parameter to a URL that may already carry a query.
pub fn with_query(url: &str, param: &str) -> String {
    if url.contains('?') {
        format!("{url}&{param}")
    } else {
        format!("{url}?{param}")
    }
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
    /// Reads a whole ureq response (no body for HEAD); panics on a read error.
    pub fn from_ureq(method: &str, url: &str, resp: ureq::http::Response<ureq::Body>) -> Resp {
        Self::try_from_ureq(method, url, resp)
            .unwrap_or_else(|e| panic!("{method} {url}: reading body: {e}"))
    }

    /// Reads a whole ureq response (no body for HEAD).
    pub fn try_from_ureq(
        method: &str,
        url: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<Resp, ureq::Error> {
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
                .limit(BODY_LIMIT)
                .read_to_vec()?
        };
        Ok(Resp {
            what: format!("{method} {url}"),
            status,
            headers,
            body,
        })
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
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
        self.expect_api_version();
        if !self.what.starts_with("HEAD ") {
            assert_eq!(self.error_code(), "UNAUTHORIZED", "{}", self.what);
        }
    }

    /// Asserts `Docker-Distribution-API-Version: registry/2.0`, which every
    /// answer of the registry API carries.
    pub fn expect_api_version(&self) -> &Resp {
        assert_eq!(
            self.header("docker-distribution-api-version"),
            Some("registry/2.0"),
            "{}: Docker-Distribution-API-Version missing or wrong (status {})",
            self.what,
            self.status
        );
        self
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

/// The path and query of an absolute URL.
pub fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/')
        .map(|i| rest[i..].to_string())
        .unwrap_or_else(|| "/".into())
}
