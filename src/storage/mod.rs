//! storage: the blob files of the data folder and their durable commit. The
//! folder's layout (every path and file mode) is `storage::layout`.
//!
//! Commit order: fsync the upload file, rename it into `blobs/`, fsync the
//! shard directory. Paths are built only from parsed `Digest`s and `UploadId`s.
//!
//! Every file and folder it creates gets `layout::FILE_MODE` / `DIR_MODE`
//! (0600 / 0700) at creation, whatever the umask.
//!
//! It must never run SQL or decide whether a blob may be served.

pub mod backend;
pub mod layout;
pub mod read_ahead;
pub mod s3;
pub mod space;
pub mod switch;
mod sys;

use crate::oci::{Algorithm, Digest, Hasher, UploadId};
use layout::{Layout, DIR_MODE, FILE_MODE};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct BlobStore {
    layout: Layout,
}

/// A file found under `blobs/`.
pub struct BlobFile {
    /// The digest its path names; `None` for a stray file with another name.
    pub digest: Option<Digest>,
    /// Its path relative to the data folder, for messages.
    pub rel: String,
    pub len: u64,
    pub modified: SystemTime,
}

/// How a backup obtained a blob file.
#[derive(Debug, PartialEq)]
pub enum Imported {
    /// A hard link to the same inode (same filesystem): no bytes copied.
    Linked,
    /// A verified copy (fsynced) with the digest its bytes have.
    Copied(Digest),
}

/// Read buffer for hashing and copying.
const BUF: usize = 256 * 1024;

/// fsync a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create `dir` and its missing parents with mode 0700 (the umask can only
/// remove bits, and `dir` itself is set exactly).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

/// Create `path` empty with mode 0600 if it does not exist (SQLite then
/// opens it as an empty database, and gives its -wal and -shm files the same mode).
pub fn create_private_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map(drop)
}

/// Check the modes of the data folder's private paths (`Layout::private_paths`)
/// and report each one someone loosened. Secrets (the database and its
/// sidecars, `tls/` and its keys) are tightened back; the other paths are
/// only reported, since an operator may have opened them on purpose (their
/// contents stay private: every file soute writes is 0600).
pub fn tighten_modes(layout: &Layout) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut reports = Vec::new();
    for (path, wanted, secret) in layout.private_paths() {
        let Ok(meta) = fs::metadata(&path) else {
            continue; // not created yet
        };
        let mode = meta.mode() & 0o7777;
        if mode & !wanted == 0 {
            continue;
        }
        let what = format!(
            "{} has mode {mode:04o}, looser than {wanted:04o}",
            path.display()
        );
        if !secret {
            reports.push(format!(
                "{what}; left as is (chmod {wanted:o} it unless meant)"
            ));
            continue;
        }
        match fs::set_permissions(&path, fs::Permissions::from_mode(wanted)) {
            Ok(()) => reports.push(format!("{what}; set it to {wanted:04o}")),
            Err(e) => reports.push(format!("{what}; could not tighten it: {e}")),
        }
    }
    reports
}

pub(crate) fn private_file(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.mode(FILE_MODE)
}

impl BlobStore {
    /// Open the store under `data_dir`, creating `blobs/` and `uploads/`.
    pub fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let store = BlobStore {
            layout: Layout::new(data_dir),
        };
        for dir in [store.layout.blobs_dir(), store.layout.uploads_dir()] {
            if !dir.exists() {
                create_private_dir(&dir)?;
                sync_dir(data_dir)?;
            }
        }
        Ok(store)
    }

    /// Size and free space of the data folder's filesystem.
    pub fn space(&self) -> io::Result<space::FsSpace> {
        sys::statvfs(self.layout.root())
    }

    /// The paths of the data folder this store lives in.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob(digest)
    }

    pub fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.layout.upload(id)
    }

    /// Create the (empty) file of a new upload session.
    pub fn create_upload(&self, id: &UploadId) -> io::Result<()> {
        private_file(OpenOptions::new().write(true).create_new(true)).open(self.upload_path(id))?;
        Ok(())
    }

    /// Open an upload's file for reading and writing; recreate it when it is
    /// missing (a crash between the session row and the file).
    pub fn open_upload(&self, id: &UploadId) -> io::Result<File> {
        private_file(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
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
        self.commit_file(&self.upload_path(id), digest)
    }

    /// Move a finished, verified, fsynced file of this data folder (an
    /// upload, or a pull-through download) into place as `digest`.
    pub fn commit_file(&self, from: &Path, digest: &Digest) -> io::Result<()> {
        let dest = self.blob_path(digest);
        let shard = dest
            .parent()
            .ok_or_else(|| io::Error::other("blob path without parent"))?;
        if !shard.exists() {
            create_private_dir(shard)?;
            if let Some(alg_dir) = shard.parent() {
                sync_dir(alg_dir)?;
            }
        }
        fs::rename(from, &dest)?;
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
        for entry in fs::read_dir(self.layout.uploads_dir())? {
            out.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    /// Names of the files in `uploads/` with their modification time.
    pub fn upload_files_with_age(&self) -> io::Result<Vec<(String, SystemTime)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.layout.uploads_dir())? {
            let entry = entry?;
            let modified = entry.metadata()?.modified()?;
            out.push((entry.file_name().to_string_lossy().into_owned(), modified));
        }
        Ok(out)
    }

    /// Every regular file under `blobs/`, sorted by path.
    pub fn blob_files(&self) -> io::Result<Vec<BlobFile>> {
        let mut out = Vec::new();
        let blobs = self.layout.blobs_dir();
        walk(&blobs, &mut |path, meta| {
            let rel = path
                .strip_prefix(self.layout.root())
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let digest = layout::digest_of_blob_path(path.strip_prefix(&blobs).unwrap_or(path));
            let digest = digest.filter(|d| self.blob_path(d) == path);
            out.push(BlobFile {
                digest,
                rel,
                len: meta.len(),
                modified: meta.modified()?,
            });
            Ok(())
        })?;
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Remove a file `blob_files` listed (an orphan or a stray).
    pub fn remove_blob_file(&self, file: &BlobFile) -> io::Result<()> {
        let path = self.layout.root().join(&file.rel);
        if !path.starts_with(self.layout.blobs_dir()) || file.rel.contains("..") {
            return Err(io::Error::other("refusing to remove a path outside blobs/"));
        }
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Re-hash a blob's file with the digest's algorithm: (length, digest of
    /// the bytes). `progress` gets the byte count of each block read.
    pub fn hash_blob(
        &self,
        digest: &Digest,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<(u64, Digest)> {
        let mut file = self.open_blob(digest)?;
        hash_reader(&mut file, digest.algorithm(), &mut io::sink(), progress)
    }

    /// Put `digest` from `src` into this store: a hard link when both are on
    /// one filesystem, else a copy through a temporary name, hashed on the
    /// way, fsynced, then renamed. The shard directories are fsynced later by
    /// `sync_blob_dirs`.
    pub fn import_blob(&self, src: &BlobStore, digest: &Digest) -> io::Result<Imported> {
        let from = src.blob_path(digest);
        let dest = self.blob_path(digest);
        if let Some(shard) = dest.parent() {
            create_private_dir(shard)?;
        }
        match fs::hard_link(&from, &dest) {
            Ok(()) => return Ok(Imported::Linked),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::remove_file(&dest)?;
            }
            Err(_) => {} // other filesystem (EXDEV) or no links there: copy
        }
        self.import_reader(digest, &mut File::open(&from)?)
    }

    /// Put `digest` into this store from the bytes of `input` (a remote
    /// blob): through a temporary name, hashed on the way, fsynced, renamed.
    pub fn import_reader(&self, digest: &Digest, input: &mut dyn Read) -> io::Result<Imported> {
        let dest = self.blob_path(digest);
        if let Some(shard) = dest.parent() {
            create_private_dir(shard)?;
        }
        let tmp = self.layout.blob_partial(digest);
        let mut out =
            private_file(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
        let (_, actual) = hash_reader(input, digest.algorithm(), &mut out, &mut |_| {})?;
        out.sync_all()?;
        drop(out);
        fs::rename(&tmp, &dest)?;
        Ok(Imported::Copied(actual))
    }

    /// fsync every directory under `blobs/` and the data folder itself.
    pub fn sync_blob_dirs(&self) -> io::Result<()> {
        let mut dirs = BTreeSet::new();
        let blobs = self.layout.blobs_dir();
        walk(&blobs, &mut |path, _| {
            if let Some(p) = path.parent() {
                dirs.insert(p.to_path_buf());
                if let Some(pp) = p.parent() {
                    dirs.insert(pp.to_path_buf());
                }
            }
            Ok(())
        })?;
        for dir in dirs.iter().rev() {
            sync_dir(dir)?;
        }
        sync_dir(&blobs)?;
        sync_dir(self.layout.root())
    }

    /// Write the checksum list for `alg` at the data folder's root durably
    /// (temporary name, fsync, rename).
    pub fn write_checksum_list(&self, alg: Algorithm, bytes: &[u8]) -> io::Result<()> {
        self.write_at(&self.layout.checksum_list(alg), bytes)
    }

    /// Write the file `name` at the folder's top (e.g. a backup's `OBJECTS`),
    /// through a temporary name, fsynced.
    pub fn write_root_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_at(&self.layout.root().join(name), bytes)
    }

    fn write_at(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let path = path.to_path_buf();
        let tmp = self.layout.partial_of(&path);
        let mut f =
            private_file(OpenOptions::new().write(true).create(true).truncate(true)).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &path)?;
        sync_dir(self.layout.root())
    }

    /// Where a backup writes the database copy before it is complete.
    pub fn partial_db_path(&self) -> PathBuf {
        self.layout.db_partial()
    }

    /// The last step of a backup: the database copy gets its real name, which
    /// is what makes the folder a registry.
    pub fn publish_db(&self) -> io::Result<()> {
        File::open(self.partial_db_path())?.sync_all()?;
        fs::rename(self.partial_db_path(), self.layout.db())?;
        sync_dir(self.layout.root())
    }

    /// Copy the TLS material (`tls/`) into `dest`'s data folder, fsynced.
    pub fn copy_tls(&self, dest: &BlobStore) -> io::Result<usize> {
        let from = self.layout.tls_dir();
        if !from.is_dir() {
            return Ok(0);
        }
        let to = dest.layout.tls_dir();
        create_private_dir(&to)?;
        let mut n = 0;
        for entry in fs::read_dir(&from)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let target = to.join(entry.file_name());
                fs::copy(entry.path(), &target)?;
                File::open(&target)?.sync_all()?;
                n += 1;
            }
        }
        sync_dir(&to)?;
        Ok(n)
    }

    /// Remove a stray file in `uploads/` that is not a valid session (start-up cleanup).
    pub fn remove_upload_file(&self, name: &str) -> io::Result<()> {
        match self.layout.upload_named(name) {
            Some(path) => fs::remove_file(path),
            None => Ok(()),
        }
    }
}

/// Visit every regular file below `dir` (depth-first); a missing `dir` is empty.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<()>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            walk(&path, f)?;
        } else if meta.is_file() {
            f(&path, &meta)?;
        }
    }
    Ok(())
}

/// Copy `input` to `out` while hashing: (bytes, digest).
pub(crate) fn hash_reader(
    input: &mut dyn Read,
    alg: Algorithm,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(u64, Digest)> {
    let mut hasher = Hasher::new(alg);
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        total += n as u64;
        progress(n as u64);
    }
    Ok((total, hasher.finish()))
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
