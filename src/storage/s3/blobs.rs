//! S3Blobs: the [`BlobBackend`] on an S3-compatible object store. A blob is
//! the object `blobs/<alg>/<hex>` under the configured prefix. Publishing
//! uploads the verified, fsynced staging file of the data folder straight to
//! that key (one PUT up to 8 MiB, else streamed 8 MiB parts: a multipart
//! object is invisible until completed, so the key never shows partial
//! bytes); the staging file is removed only once the store acknowledged it.
//!
//! It must NEVER run SQL, hold an object or part in memory, or read the data
//! folder's `blobs/` (uploads stage in `uploads/`, which it never lists).

use super::client::{ByteRange, S3Client};
use super::multipart::upload_file;
use super::{S3Error, S3ErrorKind};
use crate::oci::Digest;
use crate::storage::backend::{BlobBackend, BlobBody, RemoteBlob, StagedUpload};
use crate::storage::space::FsSpace;
use crate::storage::{hash_reader, BlobFile, BlobStore, Imported};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Object names of blobs start with this.
pub const BLOBS_PREFIX: &str = "blobs/";

pub struct S3Blobs {
    client: Arc<S3Client>,
    folder: BlobStore,
    /// `--s3-redirect`: blob GETs answer 307 to a presigned URL.
    redirect: bool,
}

/// How long a presigned blob URL of `--s3-redirect` stays valid.
pub const REDIRECT_VALID_FOR: Duration = Duration::from_secs(15 * 60);

/// The S3 error as an I/O error that keeps it (see [`s3_error_of`]).
pub fn io_error(e: S3Error) -> io::Error {
    let kind = match e.kind {
        S3ErrorKind::NotFound => io::ErrorKind::NotFound,
        S3ErrorKind::Unreachable => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The S3 error inside an I/O error made by [`io_error`], if any.
pub fn s3_error_of(e: &io::Error) -> Option<&S3Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<S3Error>())
}

/// Whether an I/O error means the store cannot be reached or is failing
/// (a client gets 503 and should retry).
pub fn is_unavailable(e: &io::Error) -> bool {
    s3_error_of(e).is_some_and(|s| {
        matches!(
            s.kind,
            S3ErrorKind::Unreachable | S3ErrorKind::Unavailable | S3ErrorKind::Endpoint
        )
    })
}

/// The object name of `digest`.
pub fn object_name(digest: &Digest) -> String {
    format!(
        "{BLOBS_PREFIX}{}/{}",
        digest.algorithm().as_str(),
        digest.hex()
    )
}

fn digest_of_name(name: &str) -> Option<Digest> {
    let rest = name.strip_prefix(BLOBS_PREFIX)?;
    let (alg, hex) = rest.split_once('/')?;
    let d = Digest::parse(&format!("{alg}:{hex}")).ok()?;
    (object_name(&d) == name).then_some(d)
}

/// `2026-12-02T05:38:12.000Z` as a time (fractions dropped); `None` if unparsable.
fn parse_modified(s: &str) -> Option<SystemTime> {
    let whole = s.get(..19)?;
    let secs = crate::cli::parse_rfc3339(&format!("{whole}Z"))?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The blob backend `choice` names, on the data folder `data_dir` (its
/// `uploads/` and database stay there). An S3 store is checked first (HEAD
/// bucket, a probe object written, read and deleted): an unusable one stops
/// start-up with a message naming the setting to fix.
pub fn open_backend(
    data_dir: &Path,
    choice: &crate::config::BlobStoreConfig,
) -> crate::error::Result<Box<dyn BlobBackend>> {
    open_backend_redirecting(data_dir, choice, false)
}

/// [`open_backend`]; with `redirect` (`--s3-redirect`) an S3 store answers
/// blob GETs with a 307 to a presigned URL.
pub fn open_backend_redirecting(
    data_dir: &Path,
    choice: &crate::config::BlobStoreConfig,
    redirect: bool,
) -> crate::error::Result<Box<dyn BlobBackend>> {
    use crate::error::Error;
    let folder = BlobStore::open(data_dir).map_err(|e| Error::io("opening the blob store", e))?;
    match choice {
        crate::config::BlobStoreConfig::Local => Ok(Box::new(folder)),
        crate::config::BlobStoreConfig::S3(config) => {
            let client = S3Client::new(config.clone())
                .map_err(|e| Error::internal(format!("S3 blob store: {e}")))?;
            super::check::startup_check(&client).map_err(Error::internal)?;
            log::info!("blobs in {}", config.describe());
            Ok(Box::new(S3Blobs::new(client, folder).redirecting(redirect)))
        }
    }
}

impl S3Blobs {
    /// The store over `client`, staging in the data folder `folder`.
    pub fn new(client: S3Client, folder: BlobStore) -> S3Blobs {
        S3Blobs {
            client: Arc::new(client),
            folder,
            redirect: false,
        }
    }

    /// With `on`, blob GETs are answered by a 307 to a presigned URL.
    pub fn redirecting(mut self, on: bool) -> S3Blobs {
        self.redirect = on;
        self
    }

    pub fn client(&self) -> &S3Client {
        &self.client
    }
}

impl BlobBackend for S3Blobs {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn describe(&self) -> String {
        self.client.config().describe()
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn folder(&self) -> &BlobStore {
        &self.folder
    }

    fn open(&self, digest: &Digest) -> io::Result<Option<BlobBody>> {
        let name = object_name(digest);
        let Some(len) = self.client.head(&name).map_err(io_error)? else {
            return Ok(None);
        };
        let client = self.client.clone();
        let open = Arc::new(
            move |start: u64, end: u64| -> io::Result<Box<dyn io::Read + Send>> {
                if start >= end.min(len) {
                    return Ok(Box::new(io::empty()));
                }
                let range = ByteRange {
                    start,
                    end: end.min(len) - 1,
                };
                match client.open(&name, Some(range)).map_err(io_error)? {
                    Some(r) => Ok(Box::new(r)),
                    None => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("object {name} disappeared"),
                    )),
                }
            },
        );
        Ok(Some(BlobBody::Remote(RemoteBlob::new(open, len))))
    }

    fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        self.client.head(&object_name(digest)).map_err(io_error)
    }

    fn publish(&self, from: &Path, digest: &Digest, size: u64) -> io::Result<()> {
        let file = File::open(from)?;
        upload_file(&self.client, &object_name(digest), &file, size).map_err(io_error)?;
        match std::fs::remove_file(from) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn remove(&self, digest: &Digest) -> io::Result<()> {
        self.client.delete(&object_name(digest)).map_err(io_error)
    }

    fn list(&self) -> io::Result<Vec<BlobFile>> {
        let entries = self.client.list(BLOBS_PREFIX).map_err(io_error)?;
        let mut out: Vec<BlobFile> = entries
            .into_iter()
            .map(|e| BlobFile {
                digest: digest_of_name(&e.name),
                modified: parse_modified(&e.modified).unwrap_or_else(SystemTime::now),
                rel: e.name,
                len: e.size,
            })
            .collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    fn remove_listed(&self, file: &BlobFile) -> io::Result<()> {
        if !file.rel.starts_with(BLOBS_PREFIX) {
            return Err(io::Error::other(
                "refusing to remove an object outside blobs/",
            ));
        }
        self.client.delete(&file.rel).map_err(io_error)
    }

    fn hash(&self, digest: &Digest, progress: &mut dyn FnMut(u64)) -> io::Result<(u64, Digest)> {
        let mut reader = self
            .client
            .open(&object_name(digest), None)
            .map_err(io_error)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such object"))?;
        let expected = reader.len;
        let (len, actual) =
            hash_reader(&mut reader, digest.algorithm(), &mut io::sink(), progress)?;
        if len != expected {
            return Err(io_error(S3Error::new(
                S3ErrorKind::Unreachable,
                format!("GET {digest}: body ended after {len} of {expected} bytes"),
            )));
        }
        Ok((len, actual))
    }

    fn export_to(&self, target: &BlobStore, digest: &Digest) -> io::Result<Imported> {
        let mut reader = self
            .client
            .open(&object_name(digest), None)
            .map_err(io_error)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such object"))?;
        target.import_reader(digest, &mut reader)
    }

    fn space(&self) -> io::Result<FsSpace> {
        self.folder.space()
    }

    fn list_staged(&self) -> io::Result<Vec<StagedUpload>> {
        let uploads = self
            .client
            .list_multipart_uploads(BLOBS_PREFIX)
            .map_err(io_error)?;
        Ok(uploads
            .into_iter()
            .map(|u| StagedUpload {
                started: parse_modified(&u.initiated),
                name: u.name,
                upload_id: u.upload_id,
            })
            .collect())
    }

    fn redirect_url(&self, digest: &Digest) -> Option<String> {
        self.redirect.then(|| {
            self.client
                .presigned_get(&object_name(digest), REDIRECT_VALID_FOR)
        })
    }

    fn s3_config(&self) -> Option<&super::S3Config> {
        Some(self.client.config())
    }

    fn abort_staged(&self, staged: &StagedUpload) -> io::Result<()> {
        self.client
            .abort_multipart(&staged.name, &staged.upload_id)
            .map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Algorithm;

    #[test]
    fn names_round_trip() {
        let d = Digest::of(Algorithm::Sha256, b"x");
        let name = object_name(&d);
        assert_eq!(name, format!("blobs/sha256/{}", d.hex()));
        assert_eq!(digest_of_name(&name), Some(d));
        assert_eq!(digest_of_name("blobs/sha256/zz"), None);
        assert_eq!(digest_of_name("staging/x"), None);
        let t = parse_modified("2026-12-02T05:38:12.000Z").expect("time");
        let secs = t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs();
        assert_eq!(crate::clock::rfc3339(secs as i64), "2026-12-02T05:38:12Z");
    }
}
