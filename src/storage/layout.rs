//! storage::layout: the one place that names a path in the data folder.
//!
//! ```text
//! <data>/                                 0700  the data folder (the unit of backup)
//!   soute.db soute.db-wal soute.db-shm    0600  SQLite: repos, manifests, tags, blob index,
//!                                               repo->blob links, upload sessions, users
//!   soute.db.partial                      0600  a backup's database before it is complete
//!   blobs/<alg>/<2 hex>/<hex>        dirs 0700, files 0600: content-addressed bytes, immutable
//!   blobs/<alg>/<2 hex>/<hex>.partial     0600  a backup's blob copy before its rename
//!   uploads/<id>                     dir 0700, files 0600: bytes of unfinished upload sessions
//!   tls/                                  0700  soute's own CA and server certificate:
//!     ca.crt server.crt                   0644    certificates (public)
//!     ca.key server.key                   0600    private keys
//!   lock                                  0600  flock held by `serve`: one server per folder
//!   store-switch.json                     0600  a live blob-store switch `blobs migrate` asks of
//!                                               `serve`; removed as soon as serve reads it
//!   SHA256SUMS SHA512SUMS                 0600  checksum lists a backup writes
//! ```
//!
//! Every other module asks this one for a path (`Layout::blob`, `Layout::db`, ...)
//! and never joins a folder name itself; file modes are the constants below, so
//! whoever creates a path creates it private whatever the umask.
//!
//! It must never create, open or remove a file: it only names paths and modes.

use crate::oci::{Algorithm, Digest, UploadId};
use std::path::{Path, PathBuf};

/// Mode of the data folder and of every folder inside it but `tls/`'s certificates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every private file: the database, blobs, uploads, keys, the lock.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the certificates under `tls/` (public by nature).
pub const CERT_MODE: u32 = 0o644;

const DB: &str = "soute.db";
const BLOBS: &str = "blobs";
const UPLOADS: &str = "uploads";
const TLS: &str = "tls";
const LOCK: &str = "lock";
const STORE_SWITCH: &str = "store-switch.json";
const PARTIAL: &str = "partial";

/// The files in a TLS folder (`<data>/tls/`, or any folder given to `tls`).
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const LEAF_CERT: &str = "server.crt";
pub const LEAF_KEY: &str = "server.key";

/// The paths of one data folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The data folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database.
    pub fn db(&self) -> PathBuf {
        self.root.join(DB)
    }

    /// SQLite's write-ahead log and shared-memory index beside the database.
    pub fn db_sidecars(&self) -> [PathBuf; 2] {
        [
            self.root.join(format!("{DB}-wal")),
            self.root.join(format!("{DB}-shm")),
        ]
    }

    /// Where a backup writes the database before it is complete.
    pub fn db_partial(&self) -> PathBuf {
        self.root.join(format!("{DB}.{PARTIAL}"))
    }

    /// The lock file `serve` holds.
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }

    /// A live blob-store switch `soute blobs migrate` asks of `serve`.
    pub fn store_switch_request(&self) -> PathBuf {
        self.root.join(STORE_SWITCH)
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS)
    }

    /// `blobs/<alg>/<2 hex>/<hex>`.
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.root.join(blob_rel(digest))
    }

    /// The temporary name a copied blob has until its rename.
    pub fn blob_partial(&self, digest: &Digest) -> PathBuf {
        self.blob(digest).with_extension(PARTIAL)
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join(UPLOADS)
    }

    /// `uploads/<id>`.
    pub fn upload(&self, id: &UploadId) -> PathBuf {
        self.uploads_dir().join(id.as_str())
    }

    /// A file found in `uploads/` by listing it (`None` for a name that could
    /// leave the folder).
    pub fn upload_named(&self, name: &str) -> Option<PathBuf> {
        (!name.is_empty() && !name.contains('/') && name != "." && name != "..")
            .then(|| self.uploads_dir().join(name))
    }

    /// The TLS folder (soute's own CA and server certificate).
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join(TLS)
    }

    /// A backup's checksum list for `alg` (`SHA256SUMS`, `SHA512SUMS`).
    pub fn checksum_list(&self, alg: Algorithm) -> PathBuf {
        self.root.join(checksum_list_name(alg))
    }

    /// The temporary name of a root file being written (`<name>.partial`).
    pub fn partial_of(&self, path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{PARTIAL}"));
        path.with_file_name(name)
    }

    /// The paths whose mode `serve` checks at start, with the mode each must
    /// have and whether it holds secrets (those are tightened, not only reported).
    pub fn private_paths(&self) -> Vec<(PathBuf, u32, bool)> {
        let mut out = vec![(self.root.clone(), DIR_MODE, false)];
        out.push((self.db(), FILE_MODE, true));
        out.extend(self.db_sidecars().map(|p| (p, FILE_MODE, true)));
        out.push((self.lock(), FILE_MODE, false));
        out.push((self.blobs_dir(), DIR_MODE, false));
        out.push((self.uploads_dir(), DIR_MODE, false));
        let tls = self.tls_dir();
        out.push((tls.clone(), DIR_MODE, true));
        out.push((tls.join(CA_KEY), FILE_MODE, true));
        out.push((tls.join(LEAF_KEY), FILE_MODE, true));
        out
    }
}

/// `blobs/<alg>/<2 hex>/<hex>` relative to the data folder (for checksum
/// lists and messages).
pub fn blob_rel(digest: &Digest) -> String {
    let hex = digest.hex();
    format!(
        "{BLOBS}/{}/{}/{hex}",
        digest.algorithm().as_str(),
        &hex[..2]
    )
}

/// `uploads/<name>` relative to the data folder (for messages).
pub fn upload_rel(name: &str) -> String {
    format!("{UPLOADS}/{name}")
}

/// `SHA256SUMS` or `SHA512SUMS`.
pub fn checksum_list_name(alg: Algorithm) -> String {
    format!("{}SUMS", alg.as_str().to_ascii_uppercase())
}

/// `<alg>/<2 hex>/<hex>` below `blobs/` back to the digest it names, when it
/// names one in its canonical place.
pub fn digest_of_blob_path(rel: &Path) -> Option<Digest> {
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    match parts.as_slice() {
        [alg, shard, hex] => Digest::parse(&format!("{alg}:{hex}"))
            .ok()
            .filter(|d| hex.get(..2) == Some(*shard) && d.algorithm().as_str() == *alg),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_a_data_folder() {
        let l = Layout::new("/d");
        let d = Digest::of(Algorithm::Sha256, b"hello");
        let hex = d.hex();
        assert_eq!(
            l.blob(&d),
            PathBuf::from(format!("/d/blobs/sha256/{}/{hex}", &hex[..2]))
        );
        assert_eq!(
            digest_of_blob_path(Path::new(&format!("sha256/{}/{hex}", &hex[..2]))),
            Some(d.clone())
        );
        assert_eq!(
            digest_of_blob_path(Path::new(&format!("sha256/zz/{hex}"))),
            None
        );
        assert_eq!(l.db(), PathBuf::from("/d/soute.db"));
        assert_eq!(l.db_partial(), PathBuf::from("/d/soute.db.partial"));
        assert_eq!(
            l.db_sidecars(),
            [
                PathBuf::from("/d/soute.db-wal"),
                PathBuf::from("/d/soute.db-shm")
            ]
        );
        assert_eq!(l.lock(), PathBuf::from("/d/lock"));
        assert_eq!(l.tls_dir(), PathBuf::from("/d/tls"));
        assert_eq!(l.partial_of(&l.db()), l.db_partial());
        assert_eq!(
            l.checksum_list(Algorithm::Sha512),
            PathBuf::from("/d/SHA512SUMS")
        );
        assert_eq!(l.upload_named("../x"), None);
        assert_eq!(l.upload_named(".."), None);
        assert_eq!(l.upload_named("abc"), Some(PathBuf::from("/d/uploads/abc")));
    }
}
