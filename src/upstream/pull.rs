//! The pull-through cache's decisions: serve from the cache, revalidate a tag
//! after its TTL with a HEAD, fetch what is missing, verify its digest and
//! store it, and fall back to what is cached when the upstream is down.
//!
//! It must never store or serve bytes whose digest was not checked, never
//! answer an error for a tag whose content is on disk because the upstream
//! failed, and never fetch what the client did not ask for.

use super::client::{Call, Client, Failure};
use super::names::Mapped;
use super::PullThrough;
use crate::error::{Code, Error, Result};
use crate::oci::manifest::MAX_MANIFEST_BYTES;
use crate::oci::{Digest, Reference, RepoName, Tag};

/// Every manifest type soute stores, for the upstream's content negotiation.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

impl PullThrough {
    /// Make `reference` of `name` servable from the local store when `name`
    /// is an upstream's; returns the local repository to read it from
    /// (`None`: no upstream's, read `name` as it is).
    /// `ns`: the `?ns=` of the request (containerd's mirror hosts), if any.
    pub fn manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        ns: Option<&str>,
    ) -> Result<Option<RepoName>> {
        let Some((m, client)) = self.target(name, ns, true)? else {
            return Ok(None);
        };
        match reference {
            Reference::Digest(digest) => self.manifest_by_digest(&m, &client, digest)?,
            Reference::Tag(tag) => self.manifest_by_tag(&m, &client, tag)?,
        }
        // Its last-pulled time, for eviction (batched: no write per request).
        self.registry.note_pull(&m.local, reference);
        Ok(Some(m.local))
    }

    fn manifest_by_digest(&self, m: &Mapped, client: &Client, digest: &Digest) -> Result<()> {
        let reference = Reference::Digest(digest.clone());
        if let Ok((_, _, size)) = self.registry.head_manifest(&m.local, &reference) {
            return self.count(m, true, size, 0);
        }
        let fetched = self
            .fetch_manifest(m, client, &digest.to_string())
            .map_err(|f| self.failed(m, client, &format!("manifest {digest}"), &f))?;
        let actual = Digest::of(digest.algorithm(), &fetched.body);
        if &actual != digest {
            return Err(self.mismatch(m, &format!("manifest {digest}"), &actual));
        }
        self.store(m, &fetched, digest, None)
    }

    fn manifest_by_tag(&self, m: &Mapped, client: &Client, tag: &Tag) -> Result<()> {
        let cached = self.registry.cached_tag(&m.local, tag)?;
        let Some(cached) = cached else {
            return self.fetch_tag(m, client, tag);
        };
        let age = crate::db::now().saturating_sub(cached.checked_at);
        let size = || {
            self.registry
                .head_manifest(&m.local, &Reference::Digest(cached.digest.clone()))
                .map(|(_, _, s)| s)
        };
        if age >= 0 && (age as u64) < client.config.tag_ttl_secs {
            return self.count(m, true, size()?, 0);
        }
        match self.head_digest(m, client, tag) {
            Ok(Some(d)) if d == cached.digest => {
                self.registry.tag_revalidated(&m.local, tag)?;
                self.count(m, true, size()?, 0)
            }
            Ok(_) => match self.fetch_tag(m, client, tag) {
                Ok(()) => Ok(()),
                Err(e) => {
                    log::warn!(
                        "upstream {}: refetching {}:{tag} failed ({e}); serving the cached {}",
                        m.upstream,
                        m.local,
                        cached.digest
                    );
                    self.count(m, true, size()?, 0)
                }
            },
            Err(f) => {
                self.note_failure(m, &f);
                log::warn!(
                    "upstream {} {f}: serving the cached {}:{tag} ({}), last checked {age} s ago",
                    m.upstream,
                    m.local,
                    cached.digest
                );
                self.count(m, true, size()?, 0)
            }
        }
    }

    /// The digest the upstream's tag points at now (a HEAD, which Docker Hub
    /// does not count as a pull); `None` when it does not say.
    fn head_digest(
        &self,
        m: &Mapped,
        client: &Client,
        tag: &Tag,
    ) -> Result<Option<Digest>, Failure> {
        let resp = manifest_request(m, client, "HEAD", tag.as_str())?;
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok()))
    }

    /// GET the tag upstream, check the body against the digest the upstream
    /// names, store it under the tag.
    fn fetch_tag(&self, m: &Mapped, client: &Client, tag: &Tag) -> Result<()> {
        let what = format!("{}:{tag}", m.local);
        let fetched = self
            .fetch_manifest(m, client, tag.as_str())
            .map_err(|f| self.failed(m, client, &what, &f))?;
        let digest = match &fetched.digest {
            Some(named) => {
                let actual = Digest::of(named.algorithm(), &fetched.body);
                if &actual != named {
                    return Err(self.mismatch(m, &what, &actual));
                }
                actual
            }
            None => Digest::of(crate::oci::Algorithm::Sha256, &fetched.body),
        };
        self.store(m, &fetched, &digest, Some(tag))
    }

    fn store(
        &self,
        m: &Mapped,
        fetched: &Fetched,
        digest: &Digest,
        tag: Option<&Tag>,
    ) -> Result<()> {
        self.registry
            .store_cached_manifest(
                &m.upstream,
                &m.local,
                digest,
                fetched.content_type.as_deref(),
                &fetched.body,
                tag,
            )
            .map_err(|e| match e {
                Error::Client { .. } | Error::ManifestTooLarge { .. } => {
                    let msg = format!("sent manifest {digest}, which soute cannot store: {e}");
                    self.note(m, &msg);
                    Error::Upstream(format!("upstream {} {msg}", m.upstream))
                }
                e => e,
            })?;
        let n = fetched.body.len() as u64;
        log::info!(
            "upstream {}: cached manifest {} {digest} ({n} bytes)",
            m.upstream,
            m.local
        );
        self.count(m, false, n, n)
    }

    fn fetch_manifest(
        &self,
        m: &Mapped,
        client: &Client,
        reference: &str,
    ) -> Result<Fetched, Failure> {
        let resp = manifest_request(m, client, "GET", reference)?;
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| !c.is_empty() && c != "application/json");
        let digest = header("docker-content-digest").and_then(|d| Digest::parse(&d).ok());
        let body = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST_BYTES as u64)
            .read_to_vec()
            .map_err(|e| Failure::Unreachable(format!("reading the manifest: {e}")))?;
        Ok(Fetched {
            content_type,
            digest,
            body,
        })
    }

    /// The error a client gets for content that is not cached and could not
    /// be fetched.
    /// Through mirror mode, an upstream's 401 or 403 also means "unknown":
    /// Docker Hub answers 401 for repositories that do not exist, and a push
    /// of a new repository checks it with HEADs, which must see 404.
    pub(super) fn failed(&self, m: &Mapped, client: &Client, what: &str, f: &Failure) -> Error {
        let refused = matches!(f, Failure::Status(401 | 403));
        if *f == Failure::Status(404) || (m.mirrored && refused) {
            let code = if what.starts_with("blob") {
                Code::BlobUnknown
            } else {
                Code::ManifestUnknown
            };
            return Error::client(
                code,
                format!(
                    "{what} is not on the upstream {} ({}; it answered {f})",
                    m.upstream, m.remote
                ),
            );
        }
        self.note_failure(m, f);
        log::warn!("upstream {} {f}: {what} is not cached", m.upstream);
        Error::Upstream(format!(
            "upstream {} ({}) {f}, and {what} is not cached",
            m.upstream, client.config.url
        ))
    }

    pub(super) fn mismatch(&self, m: &Mapped, what: &str, actual: &Digest) -> Error {
        let msg = format!(
            "{what}: the upstream sent content whose digest is {actual}; nothing was stored"
        );
        log::warn!("upstream {}: {msg}", m.upstream);
        self.note(m, &msg);
        Error::Upstream(format!("upstream {} {msg}", m.upstream))
    }

    pub(super) fn note_failure(&self, m: &Mapped, f: &Failure) {
        self.note(m, &f.to_string());
    }

    /// Keep the last error for `soute upstream list`; a failure to write it
    /// is only logged (the answer matters more).
    pub(super) fn note(&self, m: &Mapped, msg: &str) {
        if let Err(e) = self.registry.upstream_failed(&m.upstream, msg) {
            log::warn!("recording upstream {}'s error: {e}", m.upstream);
        }
    }

    pub(super) fn count(&self, m: &Mapped, hit: bool, served: u64, fetched: u64) -> Result<()> {
        if let Err(e) = self
            .registry
            .count_upstream(&m.upstream, hit, served, fetched)
        {
            log::warn!("counting upstream {}: {e}", m.upstream);
        }
        Ok(())
    }
}

/// A manifest as the upstream sent it.
struct Fetched {
    content_type: Option<String>,
    /// The digest the upstream named (`Docker-Content-Digest`), if any.
    digest: Option<Digest>,
    body: Vec<u8>,
}
/// `method` (GET or HEAD) of `/v2/REMOTE/manifests/reference` upstream,
/// with soute's Accept list; anything but 200 is a `Failure::Status`.
fn manifest_request(
    m: &Mapped,
    client: &Client,
    method: &str,
    reference: &str,
) -> Result<ureq::http::Response<ureq::Body>, Failure> {
    let path = format!("/v2/{}/manifests/{reference}", m.remote);
    let resp = client.send(
        method,
        &path,
        &m.remote,
        Some(MANIFEST_ACCEPT),
        Call::Manifest,
    )?;
    match resp.status().as_u16() {
        200 => Ok(resp),
        status => Err(Failure::Status(status)),
    }
}
