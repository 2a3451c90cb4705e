//! distribution's proxy settings, as `registry:2` users set them:
//! `REGISTRY_PROXY_REMOTEURL` (with `_USERNAME`, `_PASSWORD`, `_TTL`)
//! configure one `--mirror` upstream, written to the `upstream` table when
//! `serve` starts (the environment wins over an earlier row of that name).
//! The name is `docker.io` for Docker Hub's hosts, else the URL's host.
//!
//! It must never show the password (its `Debug` hides it) nor do I/O
//! beyond the row it writes at start.

use super::names::{parse_name, parse_url};
use crate::db::upstreams::UpstreamRow;
use crate::error::Result;
use crate::registry::Registry;

/// The upstream the environment configures.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyEnv {
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    password: Option<String>,
    pub tag_ttl_secs: u64,
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyEnv")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password_set", &self.password.is_some())
            .field("tag_ttl_secs", &self.tag_ttl_secs)
            .finish()
    }
}

/// Docker Hub's registry hosts, all cached as `docker.io`.
const DOCKER_HUB_HOSTS: &[&str] = &["registry-1.docker.io", "docker.io", "index.docker.io"];

impl ProxyEnv {
    /// Read the `REGISTRY_PROXY_*` variables; `None` without a remote URL.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ProxyEnv>, String> {
        let Some(raw) = env("REGISTRY_PROXY_REMOTEURL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let url = parse_url(&raw).map_err(|e| format!("REGISTRY_PROXY_REMOTEURL: {e}"))?;
        let host = url.split_once("://").map(|(_, h)| h).unwrap_or(&url);
        let host = host
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(host)
            .to_ascii_lowercase();
        let name = if DOCKER_HUB_HOSTS.contains(&host.as_str()) {
            "docker.io".to_string()
        } else {
            parse_name(&host).map_err(|_| {
                format!(
                    "REGISTRY_PROXY_REMOTEURL: the host {host:?} cannot name the upstream; \
                     use `soute upstream add NAME {url} --mirror` instead"
                )
            })?
        };
        let username = env("REGISTRY_PROXY_USERNAME").filter(|u| !u.is_empty());
        let password = env("REGISTRY_PROXY_PASSWORD").filter(|p| !p.is_empty());
        if username.is_some() != password.is_some() {
            return Err("REGISTRY_PROXY_USERNAME and REGISTRY_PROXY_PASSWORD go together".into());
        }
        let tag_ttl_secs = match env("REGISTRY_PROXY_TTL").filter(|t| !t.is_empty()) {
            None => crate::cli::DEFAULT_TAG_TTL_SECS,
            Some(t) => crate::auth::tokens::parse_lifetime(&t)
                .map_err(|e| format!("REGISTRY_PROXY_TTL: {e}"))? as u64,
        };
        Ok(Some(ProxyEnv {
            name,
            url,
            username,
            password,
            tag_ttl_secs,
        }))
    }

    /// Write it as the `--mirror` upstream (before the server takes requests).
    pub fn apply(&self, registry: &Registry) -> Result<()> {
        registry.set_env_mirror(&UpstreamRow {
            username: self.username.clone(),
            password: self.password.clone(),
            tag_ttl_secs: self.tag_ttl_secs,
            mirror: true,
            ..UpstreamRow::new(&self.name, &self.url)
        })?;
        log::info!(
            "REGISTRY_PROXY_REMOTEURL: upstream {} ({}) is the mirror; pull through HOST/REPO or HOST/{}/REPO",
            self.name,
            self.url,
            self.name
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_distribution_s_proxy_variables() {
        assert_eq!(ProxyEnv::from_env(&env(&[])), Ok(None));
        let p = ProxyEnv::from_env(&env(&[
            ("REGISTRY_PROXY_REMOTEURL", "https://registry-1.docker.io"),
            ("REGISTRY_PROXY_USERNAME", "me"),
            ("REGISTRY_PROXY_PASSWORD", "pw"),
            ("REGISTRY_PROXY_TTL", "10m"),
        ]))
        .expect("valid")
        .expect("some");
        assert_eq!(
            (p.name.as_str(), p.url.as_str(), p.tag_ttl_secs),
            ("docker.io", "https://registry-1.docker.io", 600)
        );
        assert!(
            !format!("{p:?}").contains("pw\""),
            "Debug shows the password: {p:?}"
        );
        let q = ProxyEnv::from_env(&env(&[(
            "REGISTRY_PROXY_REMOTEURL",
            "http://127.0.0.1:5001",
        )]))
        .expect("valid")
        .expect("some");
        assert_eq!((q.name.as_str(), q.tag_ttl_secs), ("127.0.0.1", 300));
        for bad in [
            vec![("REGISTRY_PROXY_REMOTEURL", "registry-1.docker.io")],
            vec![("REGISTRY_PROXY_REMOTEURL", "https://-bad.io")],
            vec![
                ("REGISTRY_PROXY_REMOTEURL", "https://x.io"),
                ("REGISTRY_PROXY_USERNAME", "u"),
            ],
            vec![
                ("REGISTRY_PROXY_REMOTEURL", "https://x.io"),
                ("REGISTRY_PROXY_TTL", "soon"),
            ],
        ] {
            assert!(ProxyEnv::from_env(&env(&bad)).is_err(), "{bad:?} accepted");
        }
    }
}
