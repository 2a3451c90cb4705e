//! Verify: re-hash every blob file, check every reference and tag, run
//! SQLite's integrity and foreign-key checks, and list orphan files. With
//! `repair`, remove what is safe to remove (orphans, stray files, GC's pending
//! trash) and nothing that a row or a reference needs: damaged or missing
//! referenced data is reported with what to do. It must never see HTTP types.

use super::Registry;
use crate::db::{blobs, graph, integrity, uploads};
use crate::error::{Error, Result};
use crate::oci::Digest;
use crate::storage::backend::BlobBackend as _;
use serde::Serialize;
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// Files in `uploads/` younger than this are not orphans yet: a session's
/// file is created just before its row.
const UPLOAD_ORPHAN_AGE: Duration = Duration::from_secs(60);

pub enum VerifyProgress {
    /// This many blob files (bytes) will be re-hashed.
    Start { blobs: u64, bytes: u64 },
    /// Bytes hashed since the last event.
    Bytes(u64),
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub blobs_checked: u64,
    /// Blobs whose bytes were read and hashed (all of them, but for an S3
    /// store without `--deep`, whose objects are checked by name and size).
    pub blobs_hashed: u64,
    pub bytes_hashed: u64,
    pub manifests_checked: u64,
    /// What is wrong; the exit code is non-zero while any remain.
    pub problems: Vec<String>,
    /// What to do about the problems.
    pub advice: Vec<String>,
    /// Files no row needs (harmless; `--repair` removes them).
    pub orphans: Vec<String>,
    /// What `--repair` removed.
    pub repaired: Vec<String>,
    /// References of cached manifests to content no client pulled yet
    /// (not problems: a pull-through cache fetches only what is asked for).
    pub cached_refs_not_pulled: u64,
}

impl Registry {
    pub fn verify(
        &self,
        repair: bool,
        deep: bool,
        progress: &mut dyn FnMut(VerifyProgress),
    ) -> Result<VerifyReport> {
        let mut r = VerifyReport::default();
        if repair {
            let n = self.empty_trash()?;
            if n > 0 {
                r.repaired
                    .push(format!("unlinked {n} blob file(s) an interrupted GC left"));
            }
        }
        self.db.read(|c| {
            for p in integrity::integrity_problems(c)? {
                r.problems.push(format!("integrity_check: {p}"));
            }
            for p in integrity::foreign_key_problems(c)? {
                r.problems.push(format!("foreign_key_check: {p}"));
            }
            Ok(())
        })?;

        // Files first, rows second: a blob committed in between is seen as a row.
        let files = self
            .store
            .list()
            .map_err(|e| self.store_error("listing the stored blobs", e))?;
        let rows = self.db.read(graph::blobs)?;
        let by_listing = self.store.is_remote() && !deep;
        let listed: std::collections::HashMap<Digest, u64> = match by_listing {
            true => files
                .iter()
                .filter_map(|f| f.digest.clone().map(|d| (d, f.len)))
                .collect(),
            false => Default::default(),
        };
        progress(VerifyProgress::Start {
            blobs: rows.len() as u64,
            bytes: rows.iter().map(|b| b.size).sum(),
        });
        for row in &rows {
            r.blobs_checked += 1;
            let digest = match Digest::parse(&row.digest) {
                Ok(d) => d,
                Err(_) => {
                    r.problems
                        .push(format!("blob row {:?} is not a valid digest", row.digest));
                    continue;
                }
            };
            let outcome = if by_listing {
                // The listing's name and size: no object is read.
                progress(VerifyProgress::Bytes(row.size));
                // A blob published after the listing: ask for it (one HEAD).
                let len = match listed.get(&digest) {
                    Some(len) => Ok(Some(*len)),
                    None => self.store.size(&digest),
                };
                match len {
                    Ok(Some(len)) => Ok((len, digest.clone())),
                    Ok(None) => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
                    Err(e) => Err(e),
                }
            } else {
                let mut hashed = 0u64;
                let outcome = self.store.hash(&digest, &mut |n| {
                    hashed += n;
                    progress(VerifyProgress::Bytes(n));
                });
                r.bytes_hashed += hashed;
                r.blobs_hashed += 1;
                outcome
            };
            let problem = match outcome {
                Ok((len, _)) if len != row.size => Some(format!(
                    "blob {digest}: the file has {len} bytes, the row says {}",
                    row.size
                )),
                Ok((_, actual)) if actual != digest => Some(format!(
                    "blob {digest}: damaged, its bytes hash to {actual}"
                )),
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                    "blob {digest}: the {} is missing",
                    if self.store.is_remote() {
                        "object"
                    } else {
                        "file"
                    }
                )),
                Err(e) => Some(format!("blob {digest}: cannot read the file: {e}")),
            };
            if let Some(p) = problem {
                r.problems.push(p);
                let users = self.db.read(|c| integrity::blob_users(c, &row.digest))?;
                r.advice.push(if users.is_empty() {
                    format!(
                        "{digest} is used by no manifest: delete it from the repositories that link it (DELETE /v2/<name>/blobs/{digest}) and run `soute gc`"
                    )
                } else {
                    format!(
                        "{digest} is used by {}: restore it from a backup (its folder has the file and SHA256SUMS), or delete those manifests, run `soute gc --grace 0 --link-grace 0` and push the images again",
                        users.join(", ")
                    )
                });
            }
        }
        let known: HashSet<&str> = rows.iter().map(|b| b.digest.as_str()).collect();

        let bodies = self.db.read(integrity::manifest_bodies)?;
        for m in &bodies {
            r.manifests_checked += 1;
            match Digest::parse(&m.digest) {
                Ok(d) if Digest::of(d.algorithm(), &m.body) == d => {}
                _ => r.problems.push(format!(
                    "manifest {}@{}: the stored bytes do not match the digest",
                    m.repo, m.digest
                )),
            }
        }
        drop(bodies);
        r.cached_refs_not_pulled = self.db.read(integrity::unpulled_cached_refs)?;
        for (repo, manifest, child, kind) in self.db.read(integrity::dangling_refs)? {
            r.problems.push(format!(
                "manifest {repo}@{manifest} references {kind} {child}, which is not in {repo}"
            ));
        }
        for (repo, tag, digest) in self.db.read(integrity::dangling_tags)? {
            r.problems.push(format!(
                "tag {repo}:{tag} points at a missing manifest {digest}"
            ));
        }

        let shared_bucket = repair && self.store.is_remote() && self.is_object_list_backup()?;
        if shared_bucket {
            r.advice.push(
                "this folder is a backup listing the objects of a bucket it shares with the registry it came from: orphan objects are not removed (they may be that registry's); `soute serve` on it takes the bucket over".to_string(),
            );
        }
        for file in &files {
            let orphan = match &file.digest {
                Some(d) => !known.contains(d.to_string().as_str()),
                None => true,
            };
            if !orphan {
                continue;
            }
            r.orphans.push(format!("{} ({} bytes)", file.rel, file.len));
            if repair && self.store.is_remote() && shared_bucket {
                continue;
            } else if repair && self.store.is_remote() {
                if let Some(d) = &file.digest {
                    if self.remove_orphan_object(&d.to_string())? {
                        r.repaired.push(format!("removed orphan {}", file.rel));
                    }
                }
            } else if repair {
                // Under the write lock no upload is between rename and row.
                let removed = self.db.write(|tx| {
                    if let Some(d) = &file.digest {
                        if blobs::blob_size(tx, &d.to_string())?.is_some() {
                            return Ok(false);
                        }
                    }
                    self.store
                        .remove_listed(file)
                        .map_err(|e| Error::io(format!("removing {}", file.rel), e))?;
                    Ok(true)
                })?;
                if removed {
                    r.repaired.push(format!("removed orphan {}", file.rel));
                }
            }
        }
        let sessions: HashSet<String> = self.db.read(uploads::upload_ids)?.into_iter().collect();
        let uploads = self
            .store
            .folder()
            .upload_files_with_age()
            .map_err(|e| Error::io("listing uploads/", e))?;
        let now = SystemTime::now();
        for (name, modified) in uploads {
            if sessions.contains(&name) {
                continue;
            }
            r.orphans.push(crate::storage::layout::upload_rel(&name));
            let old = now
                .duration_since(modified)
                .is_ok_and(|age| age >= UPLOAD_ORPHAN_AGE);
            if repair && old {
                self.store
                    .folder()
                    .remove_upload_file(&name)
                    .map_err(|e| Error::io(format!("removing uploads/{name}"), e))?;
                r.repaired.push(format!("removed orphan uploads/{name}"));
            }
        }
        Ok(r)
    }
}
