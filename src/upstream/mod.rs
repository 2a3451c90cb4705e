//! upstream: the pull-through cache. A repository `NAME/REPO` whose first
//! segment is a configured upstream (`soute upstream add NAME URL`) is filled
//! from that upstream on demand: manifests by digest and blobs are fetched
//! once, verified and kept; a tag is re-checked with a HEAD after the
//! upstream's tag TTL and served from the cache when the upstream is down.
//! `names` maps repository names to upstreams, `challenge` parses
//! `WWW-Authenticate`, `client` talks HTTP(S) to one upstream, `pull` holds
//! the cache's decisions for manifests and `blob` for blobs, `download`
//! streams one blob in (its thread's loop, resumable, in `fetch`), `flight` makes concurrent fetches of a blob one,
//! `proxy_env` reads distribution's `REGISTRY_PROXY_*`, `sync` warms the
//! cache ahead of time (`soute upstream sync`). Content is written through `registry` like a push
//! (`Registry::store_cached_manifest`, `Registry::cache_blob`), so every
//! invariant of the store holds for cached content.
//!
//! It must never connect anywhere a repository name chooses (only the
//! configured URL, and what that upstream names: its token realm, its
//! redirects), never serve content it did not verify against its digest,
//! never decide access (the api's `enforce` already did), and never log a
//! password or token.

mod blob;
pub mod challenge;
pub mod client;
mod download;
mod fetch;
mod flight;
pub mod names;
mod proxy_env;
mod pull;
pub mod sync;

use crate::error::{Code, Error, Result};
use crate::oci::RepoName;
use crate::registry::Registry;
use client::Client;
use names::Mapped;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use blob::BlobAnswer;
pub use proxy_env::ProxyEnv;

/// The pull-through cache in front of the registry's read path.
pub struct PullThrough {
    registry: Arc<Registry>,
    /// One client per upstream, remade when its row changes.
    clients: Mutex<HashMap<String, Arc<Client>>>,
    /// One fetch per blob digest at a time.
    flights: Arc<flight::Flights>,
    /// Clients reading cold blobs as they download (bounded: they hold workers).
    streaming: Arc<download::StreamSlots>,
}

impl PullThrough {
    pub fn new(registry: Arc<Registry>) -> PullThrough {
        PullThrough {
            registry,
            clients: Mutex::new(HashMap::new()),
            flights: Arc::new(flight::Flights::default()),
            streaming: Arc::default(),
        }
    }

    /// The server's worker count: at most half of them read cold blobs as
    /// they download (the others stay free for every other request).
    pub fn set_workers(&self, workers: usize) {
        self.streaming.set_cap(workers / 2);
    }

    /// The upstream `name` belongs to, with its client, if any: the one
    /// whose NAME is its first segment; else, for a name this registry does
    /// not have (local repositories win), the one `ns` names (containerd's
    /// `?ns=docker.io`) or the `--mirror` one (dockerd's `registry-mirrors`
    /// asks for `library/nginx`). One or two indexed reads, so `soute
    /// upstream add|del` applies to the next request.
    /// `use_mirror` false: not the `--mirror` fallback (a HEAD of a blob:
    /// `docker push` asks that of repositories it has not created yet).
    fn target(
        &self,
        name: &RepoName,
        ns: Option<&str>,
        use_mirror: bool,
    ) -> Result<Option<(Mapped, Arc<Client>)>> {
        if let Some((first, rest)) = names::split_namespace(name) {
            if let Some(row) = self.registry.upstream(first)? {
                return self.client_for(row, rest).map(Some);
            }
        }
        let row = match ns.filter(|n| names::parse_name(n).is_ok()) {
            Some(ns) => self.registry.upstream(ns)?,
            None if use_mirror => self.registry.mirror_upstream()?,
            None => None,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        if self.registry.repo_exists(name)? {
            return Ok(None);
        }
        let (mut mapped, client) = self.client_for(row, name.as_str())?;
        mapped.mirrored = true;
        Ok(Some((mapped, client)))
    }

    /// `rest` (a repository name without the upstream's prefix) mapped to
    /// the upstream of `row`, with that upstream's client.
    fn client_for(
        &self,
        row: crate::db::upstreams::UpstreamRow,
        rest: &str,
    ) -> Result<(Mapped, Arc<Client>)> {
        let first = row.name.clone();
        let mapped = names::map(&first, rest).ok_or_else(|| {
            Error::client(
                Code::NameInvalid,
                format!("{first}/{rest} is not a valid repository name"),
            )
        })?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let client = match clients.get(&first) {
            Some(c) if same_settings(&c.config, &row) => c.clone(),
            _ => {
                let c = Arc::new(Client::new(row).map_err(|e| {
                    Error::Upstream(format!("upstream {first} cannot be used: {e}"))
                })?);
                clients.insert(first, c.clone());
                c
            }
        };
        Ok((mapped, client))
    }

    /// The local repository that caches `name` when it is an upstream's
    /// (`docker.io/busybox` is kept as `docker.io/library/busybox`); nothing
    /// is fetched. Its tags list is the tags cached so far.
    pub fn local_name(&self, name: &RepoName, ns: Option<&str>) -> Result<Option<RepoName>> {
        Ok(self.target(name, ns, true)?.map(|(m, _)| m.local))
    }

    /// A push, upload, mount or delete under an upstream's namespace is
    /// refused: that content belongs to the upstream.
    pub fn refuse_write(&self, name: &RepoName) -> Result<()> {
        let Some((first, _)) = names::split_namespace(name) else {
            return Ok(());
        };
        // A deleted upstream's cached repositories stay read-only too.
        if self.registry.upstream(first)?.is_some() || self.registry.is_cached_namespace(first)? {
            return Err(Error::client(
                Code::Unsupported,
                format!(
                    "{name} is in the namespace of the upstream {first}, which this registry \
                     caches read-only: push to a repository outside {first}/"
                ),
            ));
        }
        Ok(())
    }
}

/// Whether a cached client still matches the stored settings (the
/// counters and last error do not matter).
fn same_settings(
    a: &crate::db::upstreams::UpstreamRow,
    b: &crate::db::upstreams::UpstreamRow,
) -> bool {
    a.url == b.url
        && a.username == b.username
        && a.password == b.password
        && a.ca_pem == b.ca_pem
        && a.tag_ttl_secs == b.tag_ttl_secs
        && a.max_rate == b.max_rate
}
