//! The pull-through cache's blob decisions: serve what is stored; join the
//! running download of a cold blob (its clients read it as it grows); else
//! start one (`download`), under the digest's lock so concurrent requests
//! make one upstream GET; link a blob stored for another repository once the
//! upstream confirms this one has it; answer a cold HEAD from an upstream
//! HEAD, without downloading.
//!
//! It must never hand out bytes of a download whose digest did not match as
//! a complete body (`download::Tail` holds the last byte back), never fetch a
//! blob for a HEAD, and never wait on a download without a bound.

use super::client::{Call, Client, Failure};
use super::download::{self, Download, Job, StartError, Tail, READ_STALL};
use super::names::Mapped;
use super::PullThrough;
use crate::error::{Code, Error, Result};
use crate::http::Growing;
use crate::oci::{Digest, RepoName};
use std::sync::Arc;

/// Blobs smaller than this are downloaded whole before the answer (one
/// round trip more or less does not matter; a digest mismatch is then a
/// clean 502 instead of a cut connection).
pub const STREAM_FROM: u64 = 1024 * 1024;
/// At most this many downloads run at once (a download goes on when its
/// clients leave, so the workers alone do not bound them); then 429.
pub const MAX_DOWNLOADS: usize = 64;

/// How the api serves a blob of an upstream's repository.
pub enum BlobAnswer {
    /// Stored: read this local repository.
    Stored(RepoName),
    /// Downloading now: this body grows until the digest matched.
    Streaming { body: Box<dyn Growing>, size: u64 },
    /// For a HEAD of a cold blob: its size, as the upstream says.
    Size(u64),
}

impl PullThrough {
    /// How to serve `digest` of `name` when `name` is an upstream's
    /// (`None`: read `name` as it is). `head`: a HEAD, which never downloads
    /// and never uses the `--mirror` fallback (a push checks its blobs with
    /// HEAD before the repository exists).
    pub fn blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        ns: Option<&str>,
        head: bool,
    ) -> Result<Option<BlobAnswer>> {
        let Some((m, client)) = self.target(name, ns, !head)? else {
            return Ok(None);
        };
        if let Some(answer) = self.stored(&m, digest)? {
            return Ok(Some(answer));
        }
        let key = digest.to_string();
        if let Some(d) = self.flights.running(&key).filter(|d| !d.ended()) {
            if d.local == m.local {
                return self.answer(&m, d, head).map(Some);
            }
            if !head {
                // Another repository's download of the same bytes: once it
                // is stored, the shared-layer link below applies.
                let _ = d.wait_outcome(READ_STALL);
            }
        }
        if head {
            return self.head_upstream(&m, &client, digest).map(Some);
        }
        // One start per digest: who waited finds it stored or running.
        let flight = self.flights.join(&key);
        let _turn = flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answer) = self.stored(&m, digest)? {
            return Ok(Some(answer));
        }
        if let Some(d) = self
            .flights
            .running(&key)
            .filter(|d| d.local == m.local && !d.ended())
        {
            return self.answer(&m, d, head).map(Some);
        }
        let path = format!("/v2/{}/blobs/{digest}", m.remote);
        if self.registry.blob_known(digest)? && self.upstream_has(&m, &client, &path) {
            // Stored for another repository (a shared base layer): the
            // upstream confirmed this repository has it, so link, not fetch.
            if let Some(size) = self
                .registry
                .link_cached_blob(&m.upstream, &m.local, digest)?
            {
                self.count(&m, true, size, 0)?;
                return Ok(Some(BlobAnswer::Stored(m.local)));
            }
        }
        let what = format!("blob {digest} of {}", m.local);
        if self.flights.running_count() >= MAX_DOWNLOADS {
            return Err(Error::client(
                Code::TooManyRequests,
                format!(
                    "{MAX_DOWNLOADS} blobs are downloading from upstreams already; retry later"
                ),
            ));
        }
        let job = Job {
            registry: self.registry.clone(),
            client: client.clone(),
            m: m.clone(),
            digest: digest.clone(),
            flights: self.flights.clone(),
        };
        let d = match download::start(job) {
            Ok(d) => d,
            Err(StartError::Upstream(f)) => return Err(self.failed(&m, &client, &what, &f)),
            Err(StartError::Local(e)) => return Err(e),
        };
        self.answer(&m, d, head).map(Some)
    }

    fn stored(&self, m: &Mapped, digest: &Digest) -> Result<Option<BlobAnswer>> {
        match self.registry.blob_size(&m.local, digest) {
            Ok(size) => {
                self.count(m, true, size, 0)?;
                Ok(Some(BlobAnswer::Stored(m.local.clone())))
            }
            Err(_) => Ok(None),
        }
    }

    /// A request's share of a running download: its size for a HEAD; for a
    /// small blob, the stored blob once it is verified; else the growing body.
    fn answer(&self, m: &Mapped, d: Arc<Download>, head: bool) -> Result<BlobAnswer> {
        if head {
            return Ok(BlobAnswer::Size(d.size));
        }
        if d.size >= STREAM_FROM {
            let Some(slot) = self.streaming.take() else {
                let cap = self.streaming.cap();
                return Err(Error::client(
                    Code::TooManyRequests,
                    format!(
                        "{cap} clients are reading blobs still downloading from upstreams; retry later"
                    ),
                ));
            };
            self.count(m, false, d.size, 0)?;
            let size = d.size;
            return Ok(BlobAnswer::Streaming {
                body: Box::new(Tail::new(d, slot)),
                size,
            });
        }
        self.count(m, false, d.size, 0)?;
        match d.wait_outcome(READ_STALL) {
            Some(Ok(())) => Ok(BlobAnswer::Stored(m.local.clone())),
            Some(Err(msg)) => Err(Error::Upstream(format!("upstream {} {msg}", m.upstream))),
            None => Err(Error::Upstream(format!(
                "upstream {}: the download of a blob of {} stalled",
                m.upstream, m.local
            ))),
        }
    }

    /// A cold blob's HEAD: the upstream's HEAD says whether it exists and its
    /// size; nothing is downloaded.
    fn head_upstream(&self, m: &Mapped, client: &Client, digest: &Digest) -> Result<BlobAnswer> {
        let what = format!("blob {digest} of {}", m.local);
        let path = format!("/v2/{}/blobs/{digest}", m.remote);
        let resp = client
            .send("HEAD", &path, &m.remote, None, Call::Manifest)
            .and_then(|r| match r.status().as_u16() {
                200 => Ok(r),
                s => Err(Failure::Status(s)),
            })
            .map_err(|f| self.failed(m, client, &what, &f))?;
        let header = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok());
        if let Some(named) = header("docker-content-digest").and_then(|v| Digest::parse(v).ok()) {
            if &named != digest {
                return Err(self.mismatch(m, &what, &named));
            }
        }
        let size = header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::client(
                    Code::BlobUnknown,
                    format!("{what}: the upstream {} did not say its size", m.upstream),
                )
            })?;
        self.count(m, false, 0, 0)?;
        Ok(BlobAnswer::Size(size))
    }

    /// Whether the upstream says its repository has the blob at `path` (a
    /// HEAD); any failure is a no.
    fn upstream_has(&self, m: &Mapped, client: &Client, path: &str) -> bool {
        match client.send("HEAD", path, &m.remote, None, Call::Manifest) {
            Ok(r) => r.status().as_u16() == 200,
            Err(_) => false,
        }
    }
}
