//! Raw TLS clients over rustls: a handshake with chosen protocol versions
//! and ALPN, then one GET, reporting what the server presented.
//! Must NEVER disable certificate verification.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use super::http::CALL_TIMEOUT;

/// What a raw TLS exchange saw.
pub struct TlsSeen {
    /// DER of the leaf certificate the server presented.
    pub peer: Vec<u8>,
    pub version: Option<ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
    /// The raw HTTP response.
    pub response: String,
}

pub fn roots_from_pem(pem: &[u8]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("PEM certificate")).expect("root");
    }
    roots
}

/// The DER of the first certificate in a PEM file.
pub fn first_der(pem: &[u8]) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem)
        .expect("PEM certificate")
        .to_vec()
}

/// Connects to `addr`, shakes hands as `server_name` with only `versions`
/// offered, ALPN `http/1.1`, and sends `GET path` (Connection: close).
pub fn tls_get(
    addr: SocketAddr,
    server_name: &str,
    roots: RootCertStore,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
) -> Result<TlsSeen, std::io::Error> {
    tls_get_alpn(addr, server_name, roots, versions, &[b"http/1.1"], path)
}

/// [`tls_get`] offering the given ALPN protocols.
pub fn tls_get_alpn(
    addr: SocketAddr,
    server_name: &str,
    roots: RootCertStore,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
    path: &str,
) -> Result<TlsSeen, std::io::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(server_name.to_string()).expect("server name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let sock = TcpStream::connect_timeout(&addr, CALL_TIMEOUT)?;
    sock.set_read_timeout(Some(CALL_TIMEOUT))?;
    sock.set_write_timeout(Some(CALL_TIMEOUT))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("peer certificate")
        .to_vec();
    let version = tls.conn.protocol_version();
    let alpn = tls.conn.alpn_protocol().map(|p| p.to_vec());
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n"
    )?;
    tls.flush()?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify still gave us the answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(TlsSeen {
        peer,
        version,
        alpn,
        response: String::from_utf8_lossy(&raw).into_owned(),
    })
}
