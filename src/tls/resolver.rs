//! tls::resolver: the certificate resolver rustls asks at every handshake. It
//! serves one certificate chain and key and picks up new files when they
//! change on disk; a broken new pair keeps the old one in service.
//!
//! It must never write a file, and never stat its files more than once a
//! second from the handshake path.

use super::{bad_file, io_err, provider, TlsError};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The resolver stats its files at most this often.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Reads a PEM certificate chain and its PEM private key, and checks they belong together.
pub(super) fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = fs::read(cert_path).map_err(io_err(cert_path))?;
    let key_pem = fs::read(key_path).map_err(io_err(key_path))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_file(cert_path, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(bad_file(cert_path, "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad_file(key_path, format!("not a PEM private key: {e}")))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_file(key_path, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        bad_file(
            key_path,
            format!("does not match {}: {e}", cert_path.display()),
        )
    })?;
    Ok(certified)
}

/// Identity of a file as seen by `stat`: a change in any part means "re-read".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    fs::metadata(path).ok().map(|m| FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// A certificate resolver that serves one certificate and key, and picks up
/// new files when they change on disk (checked at most once per second during
/// handshakes, or on demand with [`ReloadingResolver::check_reload`]).
///
/// A new pair that cannot be used (unparsable, empty, key not matching the
/// certificate) is refused with a warning; the previous pair stays in service.
pub struct ReloadingResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// File stamps at the last load attempt (successful or not).
    seen: Mutex<(Option<FileStamp>, Option<FileStamp>)>,
    last_check: Mutex<Instant>,
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingResolver")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingResolver {
    /// Loads the pair once; fails when it cannot be used.
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<ReloadingResolver, TlsError> {
        let provider = provider();
        let seen = (stamp(cert_path), stamp(key_path));
        let certified = load_certified_key(cert_path, key_path, &provider)?;
        Ok(ReloadingResolver {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(certified)),
            seen: Mutex::new(seen),
            last_check: Mutex::new(Instant::now()),
        })
    }

    /// The pair currently served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the files if their stamps changed since the last attempt.
    /// Returns true when a new pair was put in service.
    pub fn check_reload(&self) -> bool {
        let now_seen = (stamp(&self.cert_path), stamp(&self.key_path));
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now_seen {
                return false;
            }
            *seen = now_seen;
        }
        match load_certified_key(&self.cert_path, &self.key_path, &self.provider) {
            Ok(certified) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
                log::info!(
                    "reloaded TLS certificate {} and key {}",
                    self.cert_path.display(),
                    self.key_path.display()
                );
                true
            }
            Err(e) => {
                log::warn!("keeping the previous TLS certificate: {e}");
                false
            }
        }
    }

    /// Runs [`check_reload`](Self::check_reload) if the last check is more
    /// than a second old and no other thread is checking right now.
    fn maybe_reload(&self) {
        let Ok(mut last) = self.last_check.try_lock() else {
            return;
        };
        if last.elapsed() < RELOAD_INTERVAL {
            return;
        }
        *last = Instant::now();
        self.check_reload();
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::ensure_ca_and_leaf;
    use crate::tls::issue::write_atomic;
    use crate::tls::test_support::{handshake, names};

    #[test]
    fn resolver_reloads_a_valid_pair_and_keeps_the_old_one_on_garbage() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("first");
        let ca_pem = fs::read(&files.ca_cert).expect("ca");
        let resolver = Arc::new(ReloadingResolver::new(&files.cert, &files.key).expect("load"));
        let served_first = handshake(&ca_pem, resolver.clone(), "a.lan").expect("hs1");
        assert!(!resolver.check_reload(), "nothing changed yet");

        // A new leaf (new name forces one): picked up.
        ensure_ca_and_leaf(&dir, &names(&["a.lan", "b.lan"])).expect("renew");
        assert!(resolver.check_reload());
        let served_second = handshake(&ca_pem, resolver.clone(), "b.lan").expect("hs2");
        assert_ne!(served_first, served_second);

        // Garbage, an empty file, a mismatched key: all refused, old pair kept.
        let good_cert = fs::read(&files.cert).expect("cert");
        let good_key = fs::read(&files.key).expect("key");
        let other =
            ensure_ca_and_leaf(&tmp.path().join("other"), &names(&["a.lan"])).expect("other");
        let other_key = fs::read(&other.key).expect("other key");
        let cases: [(&[u8], &[u8]); 4] = [
            (b"garbage", &good_key),
            (b"", &good_key),
            (
                &good_cert,
                b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
            ),
            (&good_cert, &other_key),
        ];
        for (cert, key) in cases {
            write_atomic(&files.cert, cert, 0o644).expect("write cert");
            write_atomic(&files.key, key, 0o600).expect("write key");
            assert!(!resolver.check_reload());
            let served = handshake(&ca_pem, resolver.clone(), "b.lan").expect("still serving");
            assert_eq!(served, served_second);
        }
        // Restoring a good pair is picked up again.
        write_atomic(&files.cert, &good_cert, 0o644).expect("restore cert");
        write_atomic(&files.key, &good_key, 0o600).expect("restore key");
        assert!(resolver.check_reload());
    }

    #[test]
    fn resolve_checks_files_at_most_once_per_second() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("first");
        let resolver = ReloadingResolver::new(&files.cert, &files.key).expect("load");
        let before = resolver.current();
        ensure_ca_and_leaf(&dir, &names(&["a.lan", "b.lan"])).expect("renew");
        resolver.maybe_reload(); // within a second of creation: no stat
        assert!(Arc::ptr_eq(&before, &resolver.current()));
        *resolver.last_check.lock().expect("lock") = Instant::now() - RELOAD_INTERVAL * 2;
        resolver.maybe_reload();
        assert!(!Arc::ptr_eq(&before, &resolver.current()));
    }
}
