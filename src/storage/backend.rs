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
            let stream = (self.open_at)(pos)?;
            *st = Some((pos, Box::new(ReadAhead::new(stream)?)));
        }
        let (at, reader) = st.as_mut().ok_or_else(|| io::Error::other("no stream"))?;
        let n = reader.read(buf)?;
        *at += n as u64;
        Ok(n)
    }
}

/// Bytes a [`ReadAhead`] reads at once.
const AHEAD_CHUNK: usize = 128 * 1024;
/// Chunks a [`ReadAhead`] may hold beyond the one being consumed.
const AHEAD_CHUNKS: usize = 2;

/// Reads a remote stream on a thread of its own, at most [`AHEAD_CHUNKS`]
/// chunks ahead of the consumer, so receiving from the store overlaps
/// sending to the client. Memory: (AHEAD_CHUNKS + 2) chunks (512 KiB), reused.
/// The thread ends at the stream's end or error, or at its next chunk once
/// the consumer is gone (a client that left, or a Range elsewhere).
struct ReadAhead {
    full: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    empty: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    at: usize,
}

impl ReadAhead {
    fn new(mut inner: Box<dyn Read + Send>) -> io::Result<ReadAhead> {
        use std::sync::mpsc::sync_channel;
        let (full_tx, full) = sync_channel::<io::Result<Vec<u8>>>(AHEAD_CHUNKS);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(AHEAD_CHUNKS + 2);
        std::thread::Builder::new()
            .name("soute-read-ahead".into())
            .spawn(move || loop {
                let mut buf = empty_rx.try_recv().unwrap_or_default();
                buf.resize(AHEAD_CHUNK, 0);
                // Whole chunks (the HTTP reader gives a few KiB at a time):
                // one large write to the client per chunk.
                let mut n = 0;
                let end = loop {
                    match inner.read(&mut buf[n..]) {
                        Ok(0) => break true,
                        Ok(k) => {
                            n += k;
                            if n == buf.len() {
                                break false;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = full_tx.send(Err(e));
                            return;
                        }
                    }
                };
                buf.truncate(n);
                if n > 0 && full_tx.send(Ok(buf)).is_err() {
                    return;
                }
                if end {
                    return;
                }
            })?;
        Ok(ReadAhead {
            full,
            empty,
            cur: Vec::new(),
            at: 0,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.cur.len() {
            let next = match self.full.recv() {
                Ok(chunk) => chunk?,
                // The reader ended: the stream is complete.
                Err(_) => return Ok(0),
            };
            let used = std::mem::replace(&mut self.cur, next);
            let _ = self.empty.try_send(used);
            self.at = 0;
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
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

    /// A remote object of `len` pseudo-random bytes, failing at `fail_at`.
    fn remote(bytes: Arc<Vec<u8>>, fail_at: Option<u64>) -> RemoteBlob {
        RemoteBlob::new(Box::new(move |pos| {
            let end = fail_at.unwrap_or(bytes.len() as u64);
            let part = bytes[pos as usize..end as usize].to_vec();
            let tail: Box<dyn Read + Send> = match fail_at {
                Some(_) => Box::new(FailingTail),
                None => Box::new(io::empty()),
            };
            Ok(Box::new(io::Cursor::new(part).chain(tail)))
        }))
    }

    struct FailingTail;
    impl Read for FailingTail {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("store went away"))
        }
    }

    #[test]
    fn a_read_ahead_stream_gives_the_exact_bytes_sequentially_at_any_offset_and_its_error() {
        let bytes: Arc<Vec<u8>> = Arc::new(
            (0..3 * AHEAD_CHUNK as u32 + 123)
                .map(|i| (i * 7 % 251) as u8)
                .collect(),
        );
        let mut body = BlobBody::Remote(remote(bytes.clone(), None));
        let mut all = Vec::new();
        body.read_to_end(&mut all).expect("read");
        assert!(all == *bytes, "sequential read");
        let r = remote(bytes.clone(), None);
        let mut buf = vec![0u8; 1000];
        for pos in [AHEAD_CHUNK as u64 - 10, 5, bytes.len() as u64 - 1000] {
            let mut got = 0;
            while got < buf.len() {
                got += r
                    .read_at(&mut buf[got..], pos + got as u64)
                    .expect("read_at");
            }
            assert!(buf == bytes[pos as usize..pos as usize + 1000], "at {pos}");
        }
        let mut failing = BlobBody::Remote(remote(bytes, Some(AHEAD_CHUNK as u64 + 5)));
        let e = failing.read_to_end(&mut Vec::new()).expect_err("fails");
        assert!(e.to_string().contains("went away"), "{e}");
    }
}
