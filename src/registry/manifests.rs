//! Manifests: validate and store the exact bytes with their references, tag
//! them, read them back by tag or digest, delete them, and list referrers.
//!
//! It must never store a manifest whose references the repository lacks, nor
//! change the bytes it was given.

use super::sessions::truncate_chars;
use super::{protect, quota, read_cache, Registry};
use crate::db::{blobs, content, manifests, now, repos, search, tags};
use crate::error::{Code, Error, Result};
use crate::oci::manifest::Manifest;
use crate::oci::{media, Algorithm, Digest, Reference, RepoName, Tag};
use serde_json::{json, Value};

const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
/// The most characters of a title / description kept as search text.
const MAX_TITLE_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// What a manifest PUT did.
#[derive(Debug)]
pub struct PutOutcome {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// Tags that now point at the manifest (the reference tag and `?tag=` ones).
    pub tags: Vec<Tag>,
}

/// Where a stored manifest comes from: a client's push, or the pull-through
/// cache (an upstream's name).
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    Push { actor: &'a str },
    Upstream { name: &'a str },
}

pub(super) fn manifest_unknown(repo: &RepoName, reference: &Reference) -> Error {
    Error::client(
        Code::ManifestUnknown,
        format!("manifest {reference} is not in {repo}"),
    )
}

impl Registry {
    /// Validate and store a manifest under `reference`, plus `extra_tags`;
    /// `actor` (who pushed) is recorded in the tags' history.
    pub fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
        extra_tags: &[Tag],
        actor: &str,
    ) -> Result<PutOutcome> {
        let source = Source::Push { actor };
        self.store_manifest(repo, reference, content_type, body, extra_tags, source)
    }

    /// `put_manifest`, or with `cached_from` (an upstream's name) a manifest
    /// fetched by the pull-through cache: its references are not required
    /// (they are fetched when a client asks for them), and the repository is
    /// marked as cached in the same transaction.
    pub(super) fn store_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
        extra_tags: &[Tag],
        source: Source<'_>,
    ) -> Result<PutOutcome> {
        let (cached_from, actor) = match source {
            Source::Push { actor } => (None, actor.to_string()),
            Source::Upstream { name } => (Some(name), format!("upstream:{name}")),
        };
        let manifest = Manifest::parse(body, content_type)?;
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = Digest::of(d.algorithm(), body);
                if &actual != d {
                    return Err(Error::client(
                        Code::DigestInvalid,
                        format!("manifest body has digest {actual}, not {d}"),
                    ));
                }
                actual
            }
            Reference::Tag(_) => Digest::of(Algorithm::Sha256, body),
        };
        let mut tags: Vec<Tag> = Vec::new();
        if let Reference::Tag(t) = reference {
            tags.push(t.clone());
        }
        for t in extra_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let key = digest.to_string();
        let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
        let subject_key = subject.as_ref().map(|d| d.to_string());
        let annotations = manifest
            .annotations
            .as_ref()
            .map(|a| Value::Object(a.clone()).to_string());
        let artifact_type = manifest.referrer_artifact_type();
        let mut refs: Vec<(String, &'static str)> = Vec::new();
        for d in manifest
            .config
            .iter()
            .chain(manifest.layers.iter())
            .filter(|d| !d.foreign)
        {
            refs.push((d.digest.to_string(), "blob"));
        }
        for d in &manifest.manifests {
            refs.push((d.digest.to_string(), "manifest"));
        }
        self.db.write(|tx| {
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            if let Some(upstream) = cached_from {
                crate::db::upstreams::mark_cached_repo(tx, repo_id, upstream)?;
                for t in &tags {
                    crate::db::upstreams::set_tag_checked(tx, repo_id, t.as_str(), now())?;
                }
            }
            for (child, kind) in refs.iter().filter(|_| cached_from.is_none()) {
                let present = if *kind == "blob" {
                    blobs::repo_blob_size(tx, repo_id, child)?.is_some()
                } else {
                    manifests::manifest_head(tx, repo_id, child)?.is_some()
                };
                if !present {
                    let what = if *kind == "blob" { "blob" } else { "manifest" };
                    return Err(Error::client(
                        Code::ManifestBlobUnknown,
                        format!("the manifest references {what} {child}, which is not in {repo}"),
                    )
                    .with_detail(json!({ "digest": child })));
                }
            }
            if cached_from.is_none() {
                for t in &tags {
                    protect::check_tag_move(tx, repo.as_str(), repo_id, t.as_str(), &key)?;
                }
                let layers: Vec<&str> = refs
                    .iter()
                    .filter(|(_, kind)| *kind == "blob")
                    .map(|(d, _)| d.as_str())
                    .collect();
                quota::charge_manifest(
                    tx,
                    repo.as_str(),
                    repo_id,
                    &key,
                    body.len() as u64,
                    &layers,
                )?;
            }
            manifests::put_manifest(
                tx,
                &manifests::NewManifest {
                    repo_id,
                    digest: &key,
                    media_type: &manifest.media_type,
                    artifact_type: artifact_type.as_deref(),
                    subject: subject_key.as_deref(),
                    annotations: annotations.clone(),
                    body,
                    refs: refs.clone(),
                },
            )?;
            for t in &tags {
                tags::set_tag(tx, repo_id, t.as_str(), &key, &actor)?;
            }
            let note = |k: &str| {
                manifest
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(k))
                    .and_then(|v| v.as_str())
            };
            // Capped: search text is scanned by every `docker search`.
            let title = note(ANNOTATION_TITLE).map(|t| truncate_chars(t, MAX_TITLE_CHARS));
            let description =
                note(ANNOTATION_DESCRIPTION).map(|d| truncate_chars(d, MAX_DESCRIPTION_CHARS));
            if title.is_some() || description.is_some() {
                search::set_repo_search_text(tx, repo_id, title, description)?;
            }
            if cached_from.is_none() {
                let (media_type, size) = (&manifest.media_type, body.len() as u64);
                let events = &self.webhooks;
                events.manifest_pushed(tx, repo, &key, media_type, size, reference, &tags)?;
            }
            Ok(())
        })?;
        if cached_from.is_none() {
            self.webhooks.wake();
        }
        Ok(PutOutcome {
            digest,
            subject,
            tags,
        })
    }

    fn resolve(
        &self,
        conn: &rusqlite::Connection,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(i64, Digest)> {
        let repo_id = repos::repo_id(conn, repo.as_str())?
            .ok_or_else(|| manifest_unknown(repo, reference))?;
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => {
                let d = tags::resolve_tag(conn, repo_id, t.as_str())?
                    .ok_or_else(|| manifest_unknown(repo, reference))?;
                Digest::parse(&d)?
            }
        };
        Ok((repo_id, digest))
    }

    /// The manifest's digest, media type and exact bytes.
    pub fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(Digest, String, Vec<u8>)> {
        self.get_manifest_at(repo, reference, None)
    }

    /// [`Registry::get_manifest`] for a request that read the content
    /// generation `seen` when it started (`None`: read it now).
    pub fn get_manifest_at(
        &self,
        repo: &RepoName,
        reference: &Reference,
        seen: Option<i64>,
    ) -> Result<(Digest, String, Vec<u8>)> {
        let e = self.cached_manifest(repo, reference, seen)?;
        Ok((e.digest.clone(), e.media_type.clone(), e.body.to_vec()))
    }

    /// The manifest's digest, media type and size, without its bytes.
    pub fn head_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(Digest, String, u64)> {
        self.head_manifest_at(repo, reference, None)
    }

    /// [`Registry::head_manifest`] for a request that read the content
    /// generation `seen` when it started (`None`: read it now).
    pub fn head_manifest_at(
        &self,
        repo: &RepoName,
        reference: &Reference,
        seen: Option<i64>,
    ) -> Result<(Digest, String, u64)> {
        let e = self.cached_manifest(repo, reference, seen)?;
        Ok((e.digest.clone(), e.media_type.clone(), e.body.len() as u64))
    }

    /// The manifest from the read cache when nothing changed since it was
    /// cached (the content generation `seen` at the request's start, or read
    /// now), else from SQLite in one read transaction that also reads the
    /// generation it is stamped with.
    fn cached_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        seen: Option<i64>,
    ) -> Result<std::sync::Arc<read_cache::Entry>> {
        let key = read_cache::key(repo.as_str(), &reference.to_string());
        let now = match seen {
            Some(g) => g,
            None => self.db.read(content::generation)?,
        };
        if let Some(e) = self.read_cache.get(now, &key) {
            return Ok(e);
        }
        let (generation, entry) = self.db.read(|c| {
            let tx = c.unchecked_transaction()?;
            let generation = content::generation(&tx)?;
            let (repo_id, digest) = self.resolve(&tx, repo, reference)?;
            let m = manifests::manifest(&tx, repo_id, &digest.to_string())?
                .ok_or_else(|| manifest_unknown(repo, reference))?;
            tx.commit()?;
            let entry = read_cache::Entry {
                digest,
                media_type: m.media_type,
                body: m.body.into(),
            };
            Ok((generation, std::sync::Arc::new(entry)))
        })?;
        self.read_cache.insert(generation, key, entry.clone());
        Ok(entry)
    }

    /// Delete a tag, or a manifest by digest (which removes its tags too);
    /// `actor` is recorded in the deleted tags' history.
    pub fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        actor: &str,
    ) -> Result<()> {
        self.require_delete()?;
        let removed = self.db.write(|tx| {
            let Some(repo_id) = repos::repo_id(tx, repo.as_str())? else {
                return Ok(false);
            };
            let removed = match reference {
                Reference::Tag(t) => {
                    if tags::resolve_tag(tx, repo_id, t.as_str())?.is_some() {
                        protect::check_tag_delete(tx, repo.as_str(), t.as_str())?;
                    }
                    tags::delete_tag(tx, repo_id, t.as_str(), actor)?
                }
                Reference::Digest(d) => {
                    let key = d.to_string();
                    protect::check_manifest_delete(tx, repo.as_str(), repo_id, &key)?;
                    tags::record_tags_of_deleted(tx, repo_id, &key, actor)?;
                    let removed = manifests::delete_manifest(tx, repo_id, &key)?;
                    if removed {
                        quota::recompute(tx, Some(repo.as_str()))?;
                    }
                    removed
                }
            };
            if removed {
                let (events, name) = (&self.webhooks, repo.as_str());
                match reference {
                    Reference::Tag(t) => events.tag_deleted(tx, name, t.as_str())?,
                    Reference::Digest(d) => events.manifest_deleted(tx, name, &d.to_string())?,
                }
            }
            Ok(removed)
        })?;
        if removed {
            self.webhooks.wake();
            Ok(())
        } else {
            Err(manifest_unknown(repo, reference))
        }
    }

    /// One page of the referrers index of `subject` in `repo` (optionally
    /// filtered by artifact type), starting after the cursor `after` (0: from
    /// the start). Never fails for an unknown subject: the index is empty.
    ///
    /// The page is built as bytes within [`REFERRERS_PAGE_BYTES`] (at least one
    /// descriptor, so at most that plus one manifest's annotations, itself under
    /// the 4 MiB manifest limit) and [`REFERRERS_PAGE_ROWS`] descriptors; the
    /// stored annotations (soute's own serialization of a JSON object) are copied
    /// verbatim, never parsed, so a request holds at most a few MiB.
    pub fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
        after: i64,
    ) -> Result<ReferrersPage> {
        let subject = subject.to_string();
        let mut body = Vec::with_capacity(256);
        body.extend_from_slice(b"{\"schemaVersion\":2,\"mediaType\":");
        json_str(&mut body, media::OCI_INDEX);
        body.extend_from_slice(b",\"manifests\":[");
        // Choose the page from the rows' sizes first, then copy each chosen
        // row's annotations one at a time: a request holds one of them at most.
        let rows = self.db.read(|c| match repos::repo_id(c, repo.as_str())? {
            Some(id) => manifests::referrers(
                c,
                id,
                &subject,
                artifact_type,
                after,
                REFERRERS_PAGE_ROWS + 1,
            ),
            None => Ok(Vec::new()),
        })?;
        let mut planned = 0usize;
        let mut take = 0usize;
        for r in &rows {
            let cost = 200 + r.media_type.len() + r.annotations_len;
            if take > 0 && (take >= REFERRERS_PAGE_ROWS || planned + cost > REFERRERS_PAGE_BYTES) {
                break;
            }
            planned += cost;
            take += 1;
        }
        let next = (take < rows.len()).then(|| rows[take - 1].cursor);
        for (i, r) in rows.iter().take(take).enumerate() {
            let annotations = if r.annotations_len > 0 {
                self.db
                    .read(|c| manifests::referrer_annotations(c, r.cursor))?
            } else {
                None
            };
            if i > 0 {
                body.push(b',');
            }
            referrer_descriptor(&mut body, r, annotations.as_deref());
        }
        body.extend_from_slice(b"]}");
        Ok(ReferrersPage { body, next })
    }
}

/// At most this many bytes of descriptors in one referrers page (plus one).
pub const REFERRERS_PAGE_BYTES: usize = 1024 * 1024;
/// At most this many descriptors in one referrers page.
pub const REFERRERS_PAGE_ROWS: usize = 1000;

/// One page of a referrers index: the JSON body and, when more follow, the
/// cursor of the last descriptor it holds.
pub struct ReferrersPage {
    pub body: Vec<u8>,
    pub next: Option<i64>,
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends one descriptor of the referrers index, as JSON bytes.
fn referrer_descriptor(d: &mut Vec<u8>, r: &manifests::Referrer, annotations: Option<&str>) {
    d.extend_from_slice(b"{\"mediaType\":");
    json_str(d, &r.media_type);
    d.extend_from_slice(b",\"digest\":");
    json_str(d, &r.digest);
    d.extend_from_slice(format!(",\"size\":{}", r.size).as_bytes());
    if let Some(t) = &r.artifact_type {
        d.extend_from_slice(b",\"artifactType\":");
        json_str(d, t);
    }
    if let Some(a) = annotations {
        d.extend_from_slice(b",\"annotations\":");
        d.extend_from_slice(a.as_bytes());
    }
    d.push(b'}');
}
