//! storage::backend: the one interface the registry uses for blob bytes,
//! [`BlobBackend`], with two implementations: the data folder's `blobs/`
//! ([`BlobStore`], the default; GETs are file bodies sent with sendfile)
//! and an S3-compatible object store (`s3::blobs::S3Blobs`). Upload staging
//! (`uploads/`), the database and `tls/` always live in the data folder
//! ([`BlobBackend::folder`]).
//!
//! It must never run SQL or decide whether a blob may be served; code
//! outside `storage/` must never reach a blob except through this trait.

use super::space::FsSpace;
use super::{BlobFile, BlobStore, Imported};
use crate::oci::Digest;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

/// Opens a remote blob's bytes from an offset to its end.
pub type OpenAt = Box<dyn Fn(u64) -> io::Result<Box<dyn Read + Send>> + Send + Sync>;

/// A blob's bytes as the backend gives them.
pub enum BlobBody {
    /// A local file (sent with sendfile).
    File(File),
    /// A remote object, opened lazily at the offset first read.
    Remote(RemoteBlob),
}

/// A remote object read sequentially; a read at another offset reopens it
/// there (one ranged GET), so a Range request costs one GET.
pub struct RemoteBlob {
    open_at: OpenAt,
    state: Mutex<Option<(u64, Box<dyn Read + Send>)>>,
    /// Where `Read::read` continues.
    pos: u64,
}

impl RemoteBlob {
    pub fn new(open_at: OpenAt) -> RemoteBlob {
        RemoteBlob {
            open_at,
            state: Mutex::new(None),
            pos: 0,
        }
    }

    /// Reads bytes at `pos` (sequential reads reuse the open stream).
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.as_ref().map(|(at, _)| *at) != Some(pos) {
            *st = Some((pos, (self.open_at)(pos)?));
        }
        let (at, reader) = st.as_mut().ok_or_else(|| io::Error::other("no stream"))?;
        let n = reader.read(buf)?;
        *at += n as u64;
        Ok(n)
    }
}

impl Read for BlobBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BlobBody::File(f) => f.read(buf),
            BlobBody::Remote(r) => {
                let n = r.read_at(buf, r.pos)?;
                r.pos += n as u64;
                Ok(n)
            }
        }
    }
}

/// A multipart upload the object store holds that no object completed.
pub struct StagedUpload {
    pub name: String,
    pub upload_id: String,
    pub started: Option<SystemTime>,
}

/// Where blob bytes live. Every method may do network I/O for a remote
/// backend: callers must never call one under the database's write lock
/// when [`BlobBackend::is_remote`] (local renames and unlinks may).
pub trait BlobBackend: Send + Sync {
    /// `local` or `s3`, for messages and `check-config`.
    fn kind(&self) -> &'static str;
    /// One line saying where blobs are (never a secret).
    fn describe(&self) -> String;
    /// Whether its calls go over the network (then publish happens before
    /// the row's transaction, and deletes after it).
    fn is_remote(&self) -> bool;
    /// The data folder: `uploads/`, the database's paths, `tls/`. In S3 mode
    /// its `blobs/` is not used.
    fn folder(&self) -> &BlobStore;
    /// The bytes of `digest`; `None` when the store does not have it.
    fn open(&self, digest: &Digest) -> io::Result<Option<BlobBody>>;
    /// The stored size of `digest`, `None` when absent.
    fn size(&self, digest: &Digest) -> io::Result<Option<u64>>;
    /// Make the verified, fsynced file `from` (`size` bytes, of the data
    /// folder) the blob `digest`; `from` is gone afterwards.
    fn publish(&self, from: &Path, digest: &Digest, size: u64) -> io::Result<()>;
    /// Remove the blob `digest` (absent is fine).
    fn remove(&self, digest: &Digest) -> io::Result<()>;
    /// Every stored blob with size and age, sorted by name.
    fn list(&self) -> io::Result<Vec<BlobFile>>;
    /// Remove an entry `list` returned (an orphan or a stray).
    fn remove_listed(&self, file: &BlobFile) -> io::Result<()>;
    /// Re-read `digest`: (length, digest of the bytes).
    fn hash(&self, digest: &Digest, progress: &mut dyn FnMut(u64)) -> io::Result<(u64, Digest)>;
    /// Put `digest` into the local folder `target` (a backup).
    fn export_to(&self, target: &BlobStore, digest: &Digest) -> io::Result<Imported>;
    /// Size and free space of the data folder's filesystem (uploads stage there).
    fn space(&self) -> io::Result<FsSpace>;
    /// Multipart uploads in progress (none for the local folder).
    fn list_staged(&self) -> io::Result<Vec<StagedUpload>>;
    /// Abort one of them.
    fn abort_staged(&self, staged: &StagedUpload) -> io::Result<()>;
    /// A URL a client may GET `digest` from directly (`--s3-redirect`);
    /// `None`: serve the bytes.
    fn redirect_url(&self, _digest: &Digest) -> Option<String> {
        None
    }
    /// The object store's configuration (`None` for the local folder).
    fn s3_config(&self) -> Option<&crate::storage::s3::S3Config> {
        None
    }
}

impl BlobBackend for BlobStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.layout().blobs_dir().display())
    }

    fn is_remote(&self) -> bool {
        false
    }

    fn folder(&self) -> &BlobStore {
        self
    }

    fn open(&self, digest: &Digest) -> io::Result<Option<BlobBody>> {
        match self.open_blob(digest) {
            Ok(f) => Ok(Some(BlobBody::File(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match std::fs::metadata(self.blob_path(digest)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn publish(&self, from: &Path, digest: &Digest, _size: u64) -> io::Result<()> {
        self.commit_file(from, digest)
    }

    fn remove(&self, digest: &Digest) -> io::Result<()> {
        self.remove_blob(digest)
    }

    fn list(&self) -> io::Result<Vec<BlobFile>> {
        self.blob_files()
    }

    fn remove_listed(&self, file: &BlobFile) -> io::Result<()> {
        self.remove_blob_file(file)
    }

    fn hash(&self, digest: &Digest, progress: &mut dyn FnMut(u64)) -> io::Result<(u64, Digest)> {
        self.hash_blob(digest, progress)
    }

    fn export_to(&self, target: &BlobStore, digest: &Digest) -> io::Result<Imported> {
        target.import_blob(self, digest)
    }

    fn space(&self) -> io::Result<FsSpace> {
        BlobStore::space(self)
    }

    fn list_staged(&self) -> io::Result<Vec<StagedUpload>> {
        Ok(Vec::new())
    }

    fn abort_staged(&self, _staged: &StagedUpload) -> io::Result<()> {
        Ok(())
    }
}
