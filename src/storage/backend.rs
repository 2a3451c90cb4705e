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

pub use super::read_ahead::OpenRange;
use super::read_ahead::{ReadAhead, Segments, DEFAULT_SEGMENTS};

/// A blob's bytes as the backend gives them.
pub enum BlobBody {
    /// A local file (sent with sendfile).
    File(File),
    /// A remote object, opened lazily at the offset first read.
    Remote(RemoteBlob),
}

/// A remote object of `len` bytes read sequentially (`read_ahead`); a read
/// at another offset starts reading there (ranged GETs from that offset), so
/// a Range request costs its own GETs only.
pub struct RemoteBlob {
    open: OpenRange,
    len: u64,
    cut: Segments,
    state: Mutex<Option<(u64, Box<dyn Read + Send>)>>,
    /// Where `Read::read` continues.
    pos: u64,
}

impl RemoteBlob {
    pub fn new(open: OpenRange, len: u64) -> RemoteBlob {
        RemoteBlob::cut(open, len, DEFAULT_SEGMENTS)
    }

    /// A remote object read in segments cut as `cut` says.
    pub fn cut(open: OpenRange, len: u64, cut: Segments) -> RemoteBlob {
        RemoteBlob {
            open,
            len,
            cut,
            state: Mutex::new(None),
            pos: 0,
        }
    }

    /// Reads bytes at `pos` (sequential reads reuse the open stream).
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.as_ref().map(|(at, _)| *at) != Some(pos) {
            let stream = ReadAhead::new(self.open.clone(), pos.min(self.len), self.len, self.cut)?;
            *st = Some((pos, Box::new(stream)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Small segments on two streams, so the test crosses segments and
    /// streams in a few hundred KiB (the default reads in one request).
    const SEGMENT: u64 = 256 * 1024;
    const CUT: Segments = Segments {
        size: SEGMENT,
        streams: 2,
    };

    /// A remote object of `bytes`; ranges reaching past `fail_at` break there.
    fn remote(bytes: Arc<Vec<u8>>, fail_at: Option<u64>) -> RemoteBlob {
        let len = bytes.len() as u64;
        let open: OpenRange = Arc::new(move |start, end| {
            let stop = fail_at.map_or(end, |f| end.min(f));
            let part = bytes[start as usize..stop as usize].to_vec();
            let tail: Box<dyn Read + Send> = match fail_at {
                Some(f) if end > f => Box::new(FailingTail),
                _ => Box::new(io::empty()),
            };
            Ok(Box::new(io::Cursor::new(part).chain(tail)))
        });
        RemoteBlob::cut(open, len, CUT)
    }

    struct FailingTail;
    impl Read for FailingTail {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("store went away"))
        }
    }

    #[test]
    fn a_read_ahead_object_gives_the_exact_bytes_across_segments_at_any_offset_and_its_error() {
        let len = 2 * SEGMENT as usize + 3 * 128 * 1024 + 123;
        let bytes: Arc<Vec<u8>> = Arc::new((0..len as u32).map(|i| (i * 7 % 251) as u8).collect());
        let mut body = BlobBody::Remote(remote(bytes.clone(), None));
        let mut all = Vec::new();
        body.read_to_end(&mut all).expect("read");
        assert!(
            all == *bytes,
            "sequential read over 3 segments on 2 streams"
        );
        let r = remote(bytes.clone(), None);
        let mut buf = vec![0u8; 1000];
        for pos in [SEGMENT - 10, 5, 2 * SEGMENT - 500, len as u64 - 1000] {
            let mut got = 0;
            while got < buf.len() {
                got += r
                    .read_at(&mut buf[got..], pos + got as u64)
                    .expect("read_at");
            }
            assert!(buf == bytes[pos as usize..pos as usize + 1000], "at {pos}");
        }
        let mut failing = BlobBody::Remote(remote(bytes.clone(), Some(SEGMENT + 5)));
        let e = failing.read_to_end(&mut Vec::new()).expect_err("fails");
        assert!(e.to_string().contains("went away"), "{e}");
        // A store that ends a range early without an error: never whole.
        let short: OpenRange = Arc::new(move |start, end| {
            let part = bytes[start as usize..end as usize - 1].to_vec();
            Ok(Box::new(io::Cursor::new(part)))
        });
        let mut body = BlobBody::Remote(RemoteBlob::cut(short, len as u64, CUT));
        let e = body.read_to_end(&mut Vec::new()).expect_err("short");
        assert!(e.to_string().contains("short"), "{e}");
    }
}
