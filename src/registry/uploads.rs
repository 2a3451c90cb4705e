//! Upload sessions: start, append (chunked or streamed), status, finish
//! (verify, commit, link), cancel, and cross-repository mount.
//!
//! Bytes are appended to `uploads/<id>` while the digest is computed; the
//! acknowledged length is recorded in the database only after the bytes are
//! fsynced. After a restart the hash is rebuilt from the file.
//!
//! Every chunk stays within `UploadLimits`: a session never grows past the
//! largest blob (413) nor takes free space under the disk reserve (507);
//! a chunk refused before or while it streams leaves the session as it was.
//!
//! It must never record a length before its bytes are fsynced, nor insert a
//! blob row before the blob backend holds its bytes (`blob_commit`).

use super::sessions::{
    too_many, DEFAULT_MAX_UPLOAD_SESSIONS, DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT,
};
use super::upload_body::{hash_prefix, stream_into, Bounds};
use super::Registry;
use crate::db::{blobs, repos, uploads};
use crate::error::{Code, Error, Result};
use crate::oci::{Algorithm, Digest, Hasher, RepoName, UploadId};
use crate::storage::backend::BlobBackend as _;
use crate::storage::space::{DiskReserve, DEFAULT_MAX_BLOB_SIZE};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// What an upload may take: `--max-blob-size` and `--disk-reserve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_blob_size: u64,
    pub disk_reserve: DiskReserve,
    /// `--max-upload-sessions`: open sessions in the registry (429 beyond).
    pub max_sessions: u64,
    /// `--max-upload-sessions-per-client`: open sessions per client address.
    pub max_sessions_per_client: u64,
}

impl Default for UploadLimits {
    fn default() -> UploadLimits {
        UploadLimits {
            max_blob_size: DEFAULT_MAX_BLOB_SIZE,
            disk_reserve: DiskReserve::DEFAULT,
            max_sessions: DEFAULT_MAX_UPLOAD_SESSIONS,
            max_sessions_per_client: DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT,
        }
    }
}

/// The in-memory state of a session: its acknowledged length and running hash.
pub(crate) struct Session {
    length: u64,
    hasher: Hasher,
}

#[derive(Clone, Debug)]
pub struct UploadStatus {
    pub id: UploadId,
    pub repo: RepoName,
    /// Bytes received and acknowledged so far.
    pub length: u64,
}

fn unknown_upload() -> Error {
    Error::client(
        Code::BlobUploadUnknown,
        "upload session unknown or finished",
    )
}

impl Registry {
    /// Whether a new upload of `length` bytes (`None`: not known yet) may
    /// start: 413 past the largest blob, 507 when it would take free space
    /// under the disk reserve. Checked before a session is made.
    /// A blob the registry already stores (`digest`) needs no space: its
    /// upload is only hashed, so only the size limit applies.
    pub fn admit_upload(&self, length: Option<u64>, digest: Option<&Digest>) -> Result<()> {
        let needs_space = match digest {
            Some(d) => !self.blob_stored(d)?,
            None => true,
        };
        self.with_bounds(needs_space, None, |bounds| bounds.admit(0, length))
    }

    /// Whether `digest` has its row and its file.
    pub(super) fn blob_stored(&self, digest: &Digest) -> Result<bool> {
        let key = digest.to_string();
        let row = self.db.read(|c| blobs::blob_size(c, &key))?;
        Ok(row.is_some() && self.blob_bytes_present(digest))
    }

    /// Begin a new upload session in `repo` for `client` (its address).
    /// Past `max_sessions_per_client` for that client, or `max_sessions` in
    /// all, 429 and nothing is created.
    pub fn start_upload(
        &self,
        repo: &RepoName,
        alg: Algorithm,
        client: &str,
    ) -> Result<UploadStatus> {
        let id = UploadId::random()?;
        let limits = self.limits;
        self.owners
            .reserve(id.as_str(), client, limits.max_sessions_per_client)?;
        let started = self.create_session(repo, alg, &id, limits.max_sessions);
        if started.is_err() {
            self.owners.release(id.as_str());
        }
        started?;
        Ok(UploadStatus {
            id,
            repo: repo.clone(),
            length: 0,
        })
    }

    /// The row and file of a new session, unless `max_sessions` are open.
    fn create_session(
        &self,
        repo: &RepoName,
        alg: Algorithm,
        id: &UploadId,
        max_sessions: u64,
    ) -> Result<()> {
        let open = self.db.read(uploads::count_uploads)?;
        if open >= max_sessions {
            return Err(too_many(&format!(
                "{open} upload sessions are open (the most is {max_sessions}); try again later"
            )));
        }
        self.store
            .folder()
            .create_upload(id)
            .map_err(|e| Error::io("creating upload file", e))?;
        // A session lost to a power cut costs the client one retry: no fsync.
        let created = self.db.write_unsynced(|tx| {
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            uploads::create_upload(tx, id.as_str(), repo_id, alg.as_str())
        });
        if created.is_err() {
            let _ = self.store.folder().remove_upload(id);
        }
        created
    }

    /// Link `digest` into `repo` without moving bytes. With `from`, the blob
    /// must be in that repository; without, anywhere in the registry.
    /// Returns false when it cannot mount (the caller starts a normal upload).
    pub fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        let key = digest.to_string();
        self.db.write(|tx| {
            let present = match from {
                Some(src) => match repos::repo_id(tx, src.as_str())? {
                    Some(src_id) => blobs::repo_blob_size(tx, src_id, &key)?.is_some(),
                    None => false,
                },
                None => blobs::blob_size(tx, &key)?.is_some(),
            };
            if present {
                let size = blobs::blob_size(tx, &key)?.unwrap_or(0);
                super::quota::check_link(tx, repo.as_str(), &key, size)?;
                let repo_id = repos::ensure_repo(tx, repo.as_str())?;
                blobs::link_blob(tx, repo_id, &key)?;
            }
            Ok(present)
        })
    }

    /// The session's row, checked to belong to `repo`.
    fn session_row(&self, repo: &RepoName, id: &UploadId) -> Result<uploads::UploadRow> {
        let row = self
            .db
            .read(|c| uploads::upload(c, id.as_str()))?
            .ok_or_else(unknown_upload)?;
        if row.repo != repo.as_str() {
            return Err(unknown_upload());
        }
        Ok(row)
    }

    /// The state of a session, checked to belong to `repo`.
    pub fn upload_status(&self, repo: &RepoName, id: &UploadId) -> Result<UploadStatus> {
        let row = self.session_row(repo, id)?;
        Ok(UploadStatus {
            id: id.clone(),
            repo: repo.clone(),
            length: row.length,
        })
    }

    /// Append a body to a session. `start` is the first byte's offset from
    /// `Content-Range` (it must equal the current length, else 416);
    /// `expected` the number of bytes the client declared, when it did.
    pub fn append_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        start: Option<u64>,
        expected: Option<u64>,
        body: &mut dyn Read,
    ) -> Result<UploadStatus> {
        let (lock, length) = self.session_lock(repo, id)?;
        let mut guard = lock_or_busy(&lock, length)?;
        let (mut file, _) = self.load_session(repo, id, &mut guard)?;
        let session = guard
            .as_mut()
            .ok_or_else(|| Error::internal("session state missing"))?;
        let chunk = Chunk {
            start,
            expected,
            body,
        };
        let cap = self.quota_cap(repo, id)?;
        let length = self.with_bounds(true, cap.as_ref(), |bounds| {
            append_chunk(&mut file, session, chunk, bounds, |file, length| {
                file.sync_data()
                    .map_err(|e| Error::io("syncing upload", e))?;
                self.db
                    .write(|tx| uploads::set_upload_length(tx, id.as_str(), length))
            })
        })?;
        Ok(UploadStatus {
            id: id.clone(),
            repo: repo.clone(),
            length,
        })
    }

    /// Finish a session: append the optional last chunk, verify the digest,
    /// move the bytes into place and record the blob in one transaction.
    ///
    /// The last chunk is not acknowledged on its own (no fsync, no length
    /// update): on success the session row is deleted in the same transaction
    /// that records the blob. Only when the digest does not match is the chunk
    /// acknowledged as a PATCH would be, so the client can still finish the
    /// session. After any other failure the row keeps the old length and the
    /// next use rebuilds the session from the file cut to that length.
    pub fn finish_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        last_chunk: Option<(Option<u64>, Option<u64>, &mut dyn Read)>,
    ) -> Result<Digest> {
        let (lock, length) = self.session_lock(repo, id)?;
        let mut guard = lock_or_busy(&lock, length)?;
        let (mut file, _) = self.load_session(repo, id, &mut guard)?;
        let session = guard
            .as_mut()
            .ok_or_else(|| Error::internal("session state missing"))?;
        let acknowledged = session.length;
        if let Some((start, expected, body)) = last_chunk {
            let chunk = Chunk {
                start,
                expected,
                body,
            };
            if acknowledged == 0 && self.blob_stored(digest)? {
                drop(file);
                self.finish_stored_blob(repo, id, digest, chunk)?;
                *guard = None;
                drop(guard);
                self.forget_session(id);
                return Ok(digest.clone());
            }
            let cap = self.quota_cap(repo, id)?;
            self.with_bounds(true, cap.as_ref(), |bounds| {
                append_chunk(&mut file, session, chunk, bounds, |_, _| Ok(()))
            })?;
        }
        let actual = if session.hasher.algorithm() == digest.algorithm() {
            session.hasher.clone().finish()
        } else {
            let mut h = Hasher::new(digest.algorithm());
            file.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io("rewinding upload", e))?;
            hash_prefix(&mut file, session.length, &mut h)?;
            h.finish()
        };
        if &actual != digest {
            if session.length != acknowledged {
                file.sync_data()
                    .map_err(|e| Error::io("syncing upload", e))?;
                let length = session.length;
                self.db
                    .write(|tx| uploads::set_upload_length(tx, id.as_str(), length))?;
            }
            return Err(digest_mismatch(&actual, digest));
        }
        let size = session.length;
        let key = digest.to_string();
        file.sync_all()
            .map_err(|e| Error::io("syncing upload", e))?;
        drop(file);
        // Quota first, on a read (so a refused blob is not published), and
        // again in the transaction that links it (concurrent uploads).
        if let Err(e) = self
            .db
            .read(|c| super::quota::check_link(c, repo.as_str(), &key, size))
        {
            // Refused for quota: it will never be committed, so its session
            // and bytes go now rather than at --upload-ttl (they would count
            // against the quota as an open upload meanwhile).
            self.db
                .write(|tx| uploads::delete_upload(tx, id.as_str()))?;
            let _ = self.store.folder().remove_upload(id);
            *guard = None;
            drop(guard);
            self.forget_session(id);
            return Err(e);
        }
        // `commit_blob` orders the publish against GC (see blob_commit.rs).
        let path = self.store.folder().upload_path(id);
        self.commit_blob(&path, digest, size, &|tx| {
            super::quota::check_link(tx, repo.as_str(), &key, size)?;
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            blobs::link_blob(tx, repo_id, &key)?;
            uploads::delete_upload(tx, id.as_str())?;
            Ok(())
        })?;
        *guard = None;
        drop(guard);
        self.forget_session(id);
        Ok(digest.clone())
    }

    /// The whole body of a session for a blob the registry already stores:
    /// hashed, not written (it needs no space, so the disk reserve does not
    /// apply). On a match the blob is linked into `repo` and the session
    /// ends; on a mismatch nothing was stored and the session stays empty.
    fn finish_stored_blob(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        chunk: Chunk<'_>,
    ) -> Result<()> {
        if let Some(start) = chunk.start.filter(|&s| s != 0) {
            return Err(Error::UploadOutOfOrder {
                start,
                acknowledged: 0,
            });
        }
        let mut hasher = Hasher::new(digest.algorithm());
        self.with_bounds(false, None, |bounds| {
            bounds.admit(0, chunk.expected)?;
            stream_into(None, chunk.body, &mut hasher, 0, chunk.expected, bounds)
        })?;
        let actual = hasher.finish();
        if &actual != digest {
            return Err(digest_mismatch(&actual, digest));
        }
        let key = digest.to_string();
        // Under the write lock, as a normal commit: GC cannot remove the blob
        // between this check and the link.
        self.db.write(|tx| {
            if blobs::blob_size(tx, &key)?.is_none() || !self.blob_bytes_present(digest) {
                return Err(Error::client(
                    Code::BlobUploadInvalid,
                    format!("blob {digest} was removed during the upload; upload it again"),
                ));
            }
            let size = blobs::blob_size(tx, &key)?.unwrap_or(0);
            super::quota::check_link(tx, repo.as_str(), &key, size)?;
            self.store
                .folder()
                .remove_upload(id)
                .map_err(|e| Error::io("removing upload", e))?;
            let repo_id = repos::ensure_repo(tx, repo.as_str())?;
            blobs::link_blob(tx, repo_id, &key)?;
            uploads::delete_upload(tx, id.as_str())?;
            Ok(())
        })
    }

    /// Cancel a session and delete its bytes.
    pub fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<()> {
        let (lock, length) = self.session_lock(repo, id)?;
        let mut guard = lock_or_busy(&lock, length)?;
        self.db
            .write(|tx| uploads::delete_upload(tx, id.as_str()))?;
        self.store
            .folder()
            .remove_upload(id)
            .map_err(|e| Error::io("removing upload", e))?;
        *guard = None;
        drop(guard);
        self.forget_session(id);
        Ok(())
    }

    /// Check the session and make sure its in-memory state exists, rebuilding
    /// the hash from the file (truncated to the acknowledged length) if needed.
    fn load_session(
        &self,
        repo: &RepoName,
        id: &UploadId,
        state: &mut Option<Session>,
    ) -> Result<(File, Algorithm)> {
        let row = match self.session_row(repo, id) {
            Ok(row) => row,
            Err(e) => {
                // The row went (finished, cancelled, expired) after the lock
                // was taken: its map entry must not outlive it.
                self.forget_session(id);
                return Err(e);
            }
        };
        let alg = Algorithm::parse(&row.algorithm)?;
        let mut file = self
            .store
            .folder()
            .open_upload(id)
            .map_err(|e| Error::io("opening upload", e))?;
        let on_disk = file
            .metadata()
            .map_err(|e| Error::io("upload metadata", e))?
            .len();
        if on_disk < row.length {
            return Err(Error::internal(format!(
                "upload {id} lost bytes ({on_disk} < {})",
                row.length
            )));
        }
        if on_disk > row.length {
            file.set_len(row.length)
                .map_err(|e| Error::io("truncating upload", e))?;
        }
        if state.as_ref().map(|s| s.length) != Some(row.length) {
            let mut hasher = Hasher::new(alg);
            file.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io("rewinding upload", e))?;
            hash_prefix(&mut file, row.length, &mut hasher)?;
            *state = Some(Session {
                length: row.length,
                hasher,
            });
        }
        file.seek(SeekFrom::Start(row.length))
            .map_err(|e| Error::io("seeking upload", e))?;
        Ok((file, alg))
    }
}

/// The session's state if no other request is writing it. A second request
/// on a busy session is answered at once (416 with the acknowledged length:
/// its chunk is out of order) instead of waiting behind the first.
fn lock_or_busy(
    lock: &Mutex<Option<Session>>,
    acknowledged: u64,
) -> Result<MutexGuard<'_, Option<Session>>> {
    match lock.try_lock() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(TryLockError::WouldBlock) => Err(Error::UploadOutOfOrder {
            start: acknowledged,
            acknowledged,
        }),
    }
}

fn digest_mismatch(actual: &Digest, expected: &Digest) -> Error {
    Error::client(
        Code::DigestInvalid,
        format!("uploaded content has digest {actual}, not {expected}"),
    )
    .with_detail(
        serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() }),
    )
}

/// One chunk of a request: where it says it starts (`Content-Range`), how
/// long it says it is, and its body.
struct Chunk<'b> {
    start: Option<u64>,
    expected: Option<u64>,
    body: &'b mut dyn Read,
}

/// Append one chunk to a session's file and running hash, then `commit` the
/// new length. `start` (from Content-Range) must equal the current length,
/// else 416; an announced length past `bounds` is refused before the body is
/// read. On any failure, `commit`'s included, the file and the hash go back
/// to where they were, so memory never runs ahead of the recorded length.
fn append_chunk(
    file: &mut File,
    session: &mut Session,
    chunk: Chunk<'_>,
    bounds: &Bounds<'_>,
    commit: impl FnOnce(&mut File, u64) -> Result<()>,
) -> Result<u64> {
    let before = session.length;
    let Chunk {
        start,
        expected,
        body,
    } = chunk;
    if let Some(start) = start {
        if start != before {
            return Err(Error::UploadOutOfOrder {
                start,
                acknowledged: before,
            });
        }
    }
    bounds.admit(before, expected)?;
    let saved = session.hasher.clone();
    let result = stream_into(
        Some(&mut *file),
        body,
        &mut session.hasher,
        before,
        expected,
        bounds,
    )
    .and_then(|n| commit(file, before + n).map(|()| before + n));
    match result {
        Ok(length) => {
            session.length = length;
            Ok(length)
        }
        Err(e) => {
            session.hasher = saved;
            let _ = file.set_len(before);
            Err(e)
        }
    }
}

#[cfg(test)]
#[path = "uploads_tests.rs"]
mod tests;
