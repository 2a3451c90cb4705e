//! tls::server_config: the rustls `ServerConfig` every TLS listener uses.
//!
//! It must never load certificates itself: the resolver does.

use super::{provider, ReloadingResolver, TlsError};
use std::sync::Arc;

/// The server configuration: ring, TLS 1.2 and 1.3, ALPN `http/1.1`, no client certificates.
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
