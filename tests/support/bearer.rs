//! The client side of the Docker token protocol, as the Go clients (docker,
//! containerd, the OCI conformance suite) do it: parse a
//! `WWW-Authenticate: Bearer realm=..,service=..,scope=..` challenge, ask the
//! realm for a token for that scope (with Basic credentials, or none for an
//! anonymous token), and read `token` / `access_token` from the JSON answer.
//! Must NEVER ask a realm that is not on loopback (the realm comes from the
//! server under test; a wrong one is reported, not followed).

use super::http::{call, Resp};
use std::net::{IpAddr, SocketAddr};

/// A parsed Bearer challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Parses `Bearer k="v",k2="v2"` (values may hold commas inside quotes).
/// `None` for any other scheme or a challenge without a realm.
pub fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        match key.as_str() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            "scope" => scope = Some(value.to_string()),
            _ => {}
        }
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        realm: realm?,
        service,
        scope,
    })
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved bytes),
/// as Go's `url.Values.Encode` does for `scope=repository:a/b:pull,push`.
pub fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The host:port of an `http://` realm, checked to be a loopback address.
pub fn realm_addr(realm: &str) -> SocketAddr {
    let rest = realm
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("realm {realm:?}: the suite serves plain http on loopback"));
    let hostport = rest.split('/').next().unwrap_or_default();
    let addr: SocketAddr = hostport
        .parse()
        .unwrap_or_else(|_| panic!("realm {realm:?}: host is not an IP:port"));
    assert!(
        matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback())
            || matches!(addr.ip(), IpAddr::V6(ip) if ip.is_loopback()),
        "realm {realm:?} is not on loopback: refusing to follow it"
    );
    addr
}

/// `GET realm?service=..&scope=..[&scope=..]` with `auth` (a full
/// Authorization value, or `None` for an anonymous token). Ok(token) on 200
/// with a token; Err(the response) otherwise.
pub fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[&str],
    auth: Option<&str>,
) -> Result<String, Resp> {
    realm_addr(realm);
    let mut url = realm.to_string();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    if let Some(s) = service {
        url.push_str(&format!("{sep}service={}", query_encode(s)));
        sep = '&';
    }
    for scope in scopes {
        url.push_str(&format!("{sep}scope={}", query_encode(scope)));
        sep = '&';
    }
    let r = call(agent, "GET", &url, auth, &[], None);
    if r.status != 200 {
        return Err(r);
    }
    let v = r.json();
    let token = v["token"]
        .as_str()
        .or_else(|| v["access_token"].as_str())
        .filter(|t| !t.is_empty());
    match token {
        Some(t) => Ok(t.to_string()),
        None => Err(r),
    }
}

/// The scope a Go client would be challenged for on `method path`:
/// `repository:NAME:pull` for reads, `pull,push` for writes and anything on
/// an upload session, `delete` for DELETE, `registry:catalog:*` for the catalog, none for `/v2/` and paths
/// that name no repository. A guess only: the challenge has the last word.
pub fn scope_for(method: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix("/v2/")?;
    if rest == "_catalog" {
        return Some("registry:catalog:*".into());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let kind = segments
        .iter()
        .rposition(|s| matches!(*s, "blobs" | "manifests" | "tags" | "referrers"))?;
    if kind == 0 {
        return None;
    }
    let name = segments[..kind].join("/");
    let upload = segments.get(kind + 1) == Some(&"uploads") && segments[kind] == "blobs";
    let actions = match method {
        _ if upload => "pull,push",
        "GET" | "HEAD" => "pull",
        "DELETE" => "delete",
        _ => "pull,push",
    };
    Some(format!("repository:{name}:{actions}"))
}

/// The extra scope a cross-repository mount asks for, as docker does:
/// `repository:FROM:pull` for `POST ..?mount=D&from=FROM`.
pub fn mount_scope(path_and_query: &str) -> Option<String> {
    let (_, query) = path_and_query.split_once('?')?;
    let mut from = None;
    let mut mount = false;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("from", v)) => from = Some(super::http::percent_decode(v)),
            Some(("mount", _)) => mount = true,
            _ => {}
        }
    }
    from.filter(|f| mount && !f.is_empty())
        .map(|f| format!("repository:{f}:pull"))
}
