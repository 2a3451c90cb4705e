//! Upstream names and URLs, and how a repository name maps to an upstream:
//! `NAME/REPO` is served from the upstream NAME as `REPO` (Docker Hub's short
//! form `docker.io/busybox` is `library/busybox` there).
//!
//! It must never do I/O, and never let a repository name choose a host: the
//! host always comes from the configured URL.

use crate::oci::RepoName;

/// Check an upstream's name: one path component of a repository name
/// (lowercase letters, digits, `.`, `_`, `-`), e.g. `docker.io`, `ghcr.io`.
pub fn parse_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty() && !name.contains('/') && RepoName::parse(name).is_ok();
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} cannot be an upstream name: it must be one path segment of a repository \
             name (lowercase letters, digits, and . _ - between them), like docker.io or ghcr.io; \
             it is the namespace clients pull through (HOST/NAME/REPO:TAG), not the address"
        ))
    }
}

/// Check and normalize an upstream URL: `http://` or `https://`, a host and
/// an optional port, no path, query, fragment or credentials. A trailing `/`
/// is dropped.
pub fn parse_url(url: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("{url:?} is not an upstream URL: {why}"));
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("it needs https:// (or http://) in front");
    };
    if scheme != "https" && scheme != "http" {
        return bad("the scheme must be https or http");
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return bad("it has no host");
    }
    if authority
        .chars()
        .any(|c| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace() || c.is_control())
    {
        return bad("give only scheme://host[:port] (no path, query or user:password@)");
    }
    Ok(format!("{scheme}://{authority}"))
}

/// A repository of an upstream: its name there, and the local repository
/// that caches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The upstream's name (the first path segment).
    pub upstream: String,
    /// The repository's name on the upstream (`library/busybox`).
    pub remote: String,
    /// Where the cache keeps it (`docker.io/library/busybox`).
    pub local: RepoName,
    /// Reached through mirror mode (a name this registry lacks), not the
    /// upstream's own namespace.
    pub mirrored: bool,
}

/// Split `name` into its first segment and the rest; `None` when it has
/// only one segment (which cannot be an upstream's repository).
pub fn split_namespace(name: &RepoName) -> Option<(&str, &str)> {
    name.as_str().split_once('/')
}

/// Map a repository under the upstream `upstream` (its first segment).
pub fn map(upstream: &str, rest: &str) -> Option<Mapped> {
    let remote = if upstream == "docker.io" && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest.to_string()
    };
    let local = RepoName::parse(&format!("{upstream}/{remote}")).ok()?;
    Some(Mapped {
        upstream: upstream.to_string(),
        remote,
        local,
        mirrored: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "docker.io",
            "ghcr.io",
            "registry.k8s.io",
            "quay.io",
            "local-hub",
            "a",
        ] {
            assert_eq!(parse_name(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "Docker.io",
            "127.0.0.1:5001",
            "a/b",
            ".io",
            "io.",
            "a..b",
            "a b",
            "é",
        ] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://registry-1.docker.io/").as_deref(),
            Ok("https://registry-1.docker.io")
        );
        assert_eq!(
            parse_url("http://127.0.0.1:5001").as_deref(),
            Ok("http://127.0.0.1:5001")
        );
        assert_eq!(
            parse_url("https://[::1]:5001").as_deref(),
            Ok("https://[::1]:5001")
        );
        for bad in [
            "registry-1.docker.io",
            "ftp://x",
            "https://",
            "https://x/v2/",
            "https://u:p@x",
            "https://x?a",
            "https://x y",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn docker_hub_short_form() {
        let m = map("docker.io", "busybox").expect("mapped");
        assert_eq!(m.remote, "library/busybox");
        assert_eq!(m.local.as_str(), "docker.io/library/busybox");
        let m = map("docker.io", "library/busybox").expect("mapped");
        assert_eq!(m.local.as_str(), "docker.io/library/busybox");
        let m = map("ghcr.io", "busybox").expect("mapped");
        assert_eq!(m.remote, "busybox", "only Docker Hub has the short form");
        let name = RepoName::parse("ghcr.io/org/app").expect("name");
        assert_eq!(split_namespace(&name), Some(("ghcr.io", "org/app")));
        assert_eq!(
            split_namespace(&RepoName::parse("app").expect("name")),
            None
        );
    }
}
