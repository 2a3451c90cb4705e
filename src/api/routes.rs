//! The route table: which endpoint a request path names. Pure; tested by tables.
//! Repository names are parsed here (NAME_INVALID); references, digests and
//! upload ids are parsed by the handlers, which know which error code fits.
//!
//! It must never call the registry nor decide on a method: it only names the endpoint.

use super::query::percent_decode;
use crate::error::Result;
use crate::oci::RepoName;

#[derive(Debug, PartialEq)]
pub enum Route {
    /// end-1: `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// end-3, end-7, end-9: `/v2/<name>/manifests/<reference>`
    Manifest {
        name: RepoName,
        reference: String,
    },
    /// end-2, end-10: `/v2/<name>/blobs/<digest>`
    Blob {
        name: RepoName,
        digest: String,
    },
    /// end-4, end-11: `/v2/<name>/blobs/uploads/`
    UploadStart {
        name: RepoName,
    },
    /// end-5, end-6, end-13, end-14: `/v2/<name>/blobs/uploads/<id>`
    Upload {
        name: RepoName,
        id: String,
    },
    /// end-8: `/v2/<name>/tags/list`
    Tags {
        name: RepoName,
    },
    /// end-12: `/v2/<name>/referrers/<digest>`
    Referrers {
        name: RepoName,
        digest: String,
    },
    /// `/ca.crt`: the registry's own CA certificate (no auth).
    CaCert,
    /// `/v1/_ping` and `/v1/search` for `docker search`.
    V1Ping,
    V1Search,
    /// `/v2/token`: the Docker token service (`--auth token`).
    Token,
    /// `/v2/_soute/gc`: run GC (POST). Admin: never anonymous.
    AdminGc,
    /// `/v2/_soute/du`: space accounting (GET). Admin: never anonymous.
    AdminDu,
    /// `/metrics`: the Prometheus page (admins and `metrics` scopes).
    Metrics,
    /// `/livez` and `/readyz`: health, no auth.
    Livez,
    Readyz,
}

impl Route {
    /// The repository the route is about, if any.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Parse a raw (still percent-encoded) request path. `Ok(None)`: no such endpoint.
pub fn parse(raw_path: &str) -> Result<Option<Route>> {
    match raw_path {
        "/v2" | "/v2/" => return Ok(Some(Route::Base)),
        "/v2/_catalog" | "/v2/_catalog/" => return Ok(Some(Route::Catalog)),
        "/ca.crt" => return Ok(Some(Route::CaCert)),
        "/v1/_ping" | "/v1/_ping/" => return Ok(Some(Route::V1Ping)),
        "/v1/search" | "/v1/search/" => return Ok(Some(Route::V1Search)),
        "/v2/token" | "/v2/token/" => return Ok(Some(Route::Token)),
        "/v2/_soute/gc" => return Ok(Some(Route::AdminGc)),
        "/v2/_soute/du" => return Ok(Some(Route::AdminDu)),
        "/metrics" => return Ok(Some(Route::Metrics)),
        "/livez" => return Ok(Some(Route::Livez)),
        "/readyz" => return Ok(Some(Route::Readyz)),
        _ => {}
    }
    let Some(rest) = raw_path.strip_prefix("/v2/") else {
        return Ok(None);
    };
    let segs: Vec<String> = rest.split('/').map(|s| percent_decode(s, false)).collect();
    let n = segs.len();
    let name_of = |k: usize| -> Result<Option<RepoName>> {
        if k == 0 {
            return Ok(None);
        }
        if segs[..k].iter().any(|s| s.contains('/')) {
            // An encoded slash is data, not a separator: one repository, one spelling.
            return RepoName::parse("%2F").map(Some);
        }
        RepoName::parse(&segs[..k].join("/")).map(Some)
    };
    let s = |i: usize| segs[i].as_str();
    // Longest fixed suffixes first.
    if n >= 4 && s(n - 3) == "blobs" && s(n - 2) == "uploads" {
        if let Some(name) = name_of(n - 3)? {
            return Ok(Some(if s(n - 1).is_empty() {
                Route::UploadStart { name }
            } else {
                Route::Upload {
                    name,
                    id: segs[n - 1].clone(),
                }
            }));
        }
    }
    if n >= 3 && s(n - 2) == "blobs" && s(n - 1) == "uploads" {
        if let Some(name) = name_of(n - 2)? {
            return Ok(Some(Route::UploadStart { name }));
        }
    }
    if n >= 3 {
        let last = segs[n - 1].clone();
        let route = match s(n - 2) {
            "manifests" => name_of(n - 2)?.map(|name| Route::Manifest {
                name,
                reference: last,
            }),
            "blobs" => name_of(n - 2)?.map(|name| Route::Blob { name, digest: last }),
            "referrers" => name_of(n - 2)?.map(|name| Route::Referrers { name, digest: last }),
            "tags" if last == "list" => name_of(n - 2)?.map(|name| Route::Tags { name }),
            _ => None,
        };
        return Ok(route);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    fn name(s: &str) -> RepoName {
        RepoName::parse(s).expect("name")
    }

    #[test]
    fn table() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases: Vec<(String, Option<Route>)> = vec![
            ("/v2/".into(), Some(Route::Base)),
            ("/v2".into(), Some(Route::Base)),
            ("/v2/_catalog".into(), Some(Route::Catalog)),
            (
                "/v2/a/b/manifests/latest".into(),
                Some(Route::Manifest {
                    name: name("a/b"),
                    reference: "latest".into(),
                }),
            ),
            (
                format!("/v2/a/blobs/{d}"),
                Some(Route::Blob {
                    name: name("a"),
                    digest: d.clone(),
                }),
            ),
            (
                "/v2/a/blobs/uploads/".into(),
                Some(Route::UploadStart { name: name("a") }),
            ),
            (
                "/v2/a/blobs/uploads".into(),
                Some(Route::UploadStart { name: name("a") }),
            ),
            (
                "/v2/a/b/blobs/uploads/abc".into(),
                Some(Route::Upload {
                    name: name("a/b"),
                    id: "abc".into(),
                }),
            ),
            (
                "/v2/x/tags/list".into(),
                Some(Route::Tags { name: name("x") }),
            ),
            (
                format!("/v2/x/referrers/{d}"),
                Some(Route::Referrers {
                    name: name("x"),
                    digest: d.clone(),
                }),
            ),
            (
                "/v2/manifests/manifests/v1".into(),
                Some(Route::Manifest {
                    name: name("manifests"),
                    reference: "v1".into(),
                }),
            ),
            ("/v2/a/blobs/uploads/x/y".into(), None),
            ("/v2/a/tags/other".into(), None),
            ("/v3/a/manifests/x".into(), None),
            ("/v2/manifests/x".into(), None),
            ("/ca.crt".into(), Some(Route::CaCert)),
            ("/v2/_soute/gc".into(), Some(Route::AdminGc)),
            ("/v2/_soute/du".into(), Some(Route::AdminDu)),
            ("/v1/search".into(), Some(Route::V1Search)),
            ("/metrics".into(), Some(Route::Metrics)),
            ("/livez".into(), Some(Route::Livez)),
            ("/readyz".into(), Some(Route::Readyz)),
            // Repositories named like them stay repositories.
            (
                "/v2/metrics/manifests/livez".into(),
                Some(Route::Manifest {
                    name: name("metrics"),
                    reference: "livez".into(),
                }),
            ),
            ("/metrics/".into(), None),
            ("/v2/readyz".into(), None),
            (
                "/v2/a/manifests/sha256%3Aab".into(),
                Some(Route::Manifest {
                    name: name("a"),
                    reference: "sha256:ab".into(),
                }),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(parse(&path).expect(&path), want, "{path}");
        }
    }

    #[test]
    fn invalid_names() {
        for path in [
            "/v2/A/manifests/x",
            "/v2/../manifests/x",
            "/v2/a/%2e%2e/manifests/x",
            "/v2/a%2Fb/tags/list",
            "/v2//tags/list",
            "/v2/_soute/manifests/x",
        ] {
            let err = parse(path).expect_err(path);
            assert_eq!(err.code(), Code::NameInvalid, "{path}");
        }
    }
}
