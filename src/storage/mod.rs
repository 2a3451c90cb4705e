//! storage: the blob files of the data folder and their durable commit.
//!
//! ```text
//! <data>/blobs/<alg>/<2 hex>/<hex>   immutable, content-addressed
//! <data>/uploads/<id>                bytes of an unfinished upload session
//! ```
//! Commit order: fsync the upload file, rename it into `blobs/`, fsync the
//! shard directory. Paths are built only from parsed `Digest`s and `UploadId`s.
//!
//! It must never run SQL or decide whether a blob may be served.

use crate::oci::{Digest, UploadId};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub struct BlobStore {
    blobs: PathBuf,
    uploads: PathBuf,
}

/// fsync a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlobStore {
    /// Open the store under `data_dir`, creating `blobs/` and `uploads/`.
    pub fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let store = BlobStore {
            blobs: data_dir.join("blobs"),
            uploads: data_dir.join("uploads"),
        };
        for dir in [&store.blobs, &store.uploads] {
            if !dir.exists() {
                fs::create_dir_all(dir)?;
                sync_dir(data_dir)?;
            }
        }
        Ok(store)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    pub fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.uploads.join(id.as_str())
    }

    /// Create the (empty) file of a new upload session.
    pub fn create_upload(&self, id: &UploadId) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.upload_path(id))?;
        Ok(())
    }

    /// Open an upload's file for reading and writing; recreate it when it is
    /// missing (a crash between the session row and the file).
    pub fn open_upload(&self, id: &UploadId) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.upload_path(id))
    }

    pub fn remove_upload(&self, id: &UploadId) -> io::Result<()> {
        match fs::remove_file(self.upload_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Move a finished, verified upload into place as `digest`. The caller has
    /// fsynced the file. When the blob already exists the upload is dropped.
    pub fn commit_upload(&self, id: &UploadId, digest: &Digest) -> io::Result<()> {
        let dest = self.blob_path(digest);
        let shard = dest
            .parent()
            .ok_or_else(|| io::Error::other("blob path without parent"))?;
        if !shard.exists() {
            fs::create_dir_all(shard)?;
            if let Some(alg_dir) = shard.parent() {
                sync_dir(alg_dir)?;
            }
        }
        fs::rename(self.upload_path(id), &dest)?;
        sync_dir(shard)
    }

    pub fn open_blob(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.blob_path(digest))
    }

    pub fn blob_exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn remove_blob(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Names of the files in `uploads/` (for start-up cleanup).
    pub fn upload_files(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.uploads)? {
            out.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    /// Remove a stray file in `uploads/` that is not a valid session (start-up cleanup).
    pub fn remove_upload_file(&self, name: &str) -> io::Result<()> {
        if name.contains('/') || name.contains("..") {
            return Ok(());
        }
        fs::remove_file(self.uploads.join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Algorithm;
    use std::io::Write;

    #[test]
    fn layout_and_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(dir.path()).expect("open");
        let d = Digest::of(Algorithm::Sha256, b"hello");
        let p = store.blob_path(&d);
        assert!(p.ends_with(format!("blobs/sha256/{}/{}", &d.hex()[..2], d.hex())));
        let d512 = Digest::of(Algorithm::Sha512, b"hello");
        assert!(store
            .blob_path(&d512)
            .to_string_lossy()
            .contains("/blobs/sha512/"));

        let id = UploadId::random().expect("id");
        store.create_upload(&id).expect("create");
        store
            .open_upload(&id)
            .expect("open")
            .write_all(b"hello")
            .expect("write");
        store.commit_upload(&id, &d).expect("commit");
        assert_eq!(fs::read(&p).expect("read"), b"hello");
        assert!(!store.upload_path(&id).exists());
    }
}
