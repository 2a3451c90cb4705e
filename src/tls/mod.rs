//! tls: the registry's own PKI and its rustls configuration, in five parts:
//! `issue` (the local CA and the leaf it signs, made with rcgen), `names`
//! (which host names the leaf covers), `resolver` (the certificate resolver
//! that reloads changed files without a restart), `server_config` (the rustls
//! `ServerConfig`) and `trust` (the text telling users how to trust the CA).
//! This file owns what they share: the error type and the crypto provider.
//!
//! It must never open sockets, speak HTTP, touch the database, or write outside
//! the TLS folder it is given. Private keys are never logged.

mod expiry;
mod issue;
mod names;
mod resolver;
mod server_config;
mod trust;

pub use expiry::not_after_of_file;
pub use issue::{ensure_ca_and_leaf, TlsFiles};
pub use names::default_names;
pub use resolver::ReloadingResolver;
pub use server_config::server_config;
pub use trust::{ca_fingerprint, trust_instructions};

use rustls::crypto::CryptoProvider;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything that can go wrong while making, loading or using certificates.
#[derive(Debug)]
pub enum TlsError {
    /// A file or directory operation failed.
    Io { path: PathBuf, source: io::Error },
    /// rcgen could not build a key or certificate.
    Generate(rcgen::Error),
    /// rustls refused a configuration, certificate or key.
    Rustls(rustls::Error),
    /// A host name is neither a valid DNS name nor an IP address.
    InvalidName(String),
    /// No host name was given for the certificate.
    NoNames,
    /// A certificate or key file exists but cannot be used.
    BadFile { path: PathBuf, reason: String },
    /// The operating system's random number generator failed.
    Random(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::Generate(e) => write!(f, "cannot generate certificate: {e}"),
            TlsError::Rustls(e) => write!(f, "TLS: {e}"),
            TlsError::InvalidName(n) => write!(
                f,
                "{n:?} is neither a valid DNS name nor an IP address for a certificate"
            ),
            TlsError::NoNames => write!(f, "no host name given for the server certificate"),
            TlsError::BadFile { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::Random(e) => write!(f, "random number generator: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io { source, .. } => Some(source),
            TlsError::Generate(e) => Some(e),
            TlsError::Rustls(e) => Some(e),
            TlsError::InvalidName(_)
            | TlsError::NoNames
            | TlsError::BadFile { .. }
            | TlsError::Random(_) => None,
        }
    }
}

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> Self {
        TlsError::Generate(e)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_file(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The crypto provider soute uses everywhere: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    pub(crate) fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    pub(crate) fn mode(path: &Path) -> u32 {
        fs::metadata(path).map(|m| m.mode() & 0o777).unwrap_or(0)
    }

    /// A full TLS handshake in memory between a client trusting `ca_pem` and
    /// a server using `resolver`. Returns the server certificate the client saw.
    pub(crate) fn handshake(
        ca_pem: &[u8],
        resolver: Arc<ReloadingResolver>,
        name: &str,
    ) -> Result<CertificateDer<'static>, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem).expect("ca pem"))?;
        let mut client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = ServerName::try_from(name.to_string()).expect("server name");
        let mut client = ClientConnection::new(Arc::new(client_config), server_name)?;
        let mut server = ServerConnection::new(server_config(resolver).expect("config"))?;
        let mut buf = Vec::new();
        for _ in 0..20 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            buf.clear();
            while client.wants_write() {
                client.write_tls(&mut buf).expect("client write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).expect("server read");
            }
            server.process_new_packets()?;
            buf.clear();
            while server.wants_write() {
                server.write_tls(&mut buf).expect("server write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("client read");
            }
            client.process_new_packets()?;
        }
        assert!(!client.is_handshaking(), "handshake did not finish");
        assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
        Ok(client
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("peer certificate")
            .clone()
            .into_owned())
    }
}
