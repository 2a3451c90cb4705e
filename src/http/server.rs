//! The listener, worker pool and HTTP/1.1 connection loop (placeholder; being written).
use super::Handler;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

pub struct ServerConfig {
    pub listeners: Vec<TcpListener>,
    pub workers: usize,
    pub max_connections: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

pub struct Server {
    addrs: Vec<SocketAddr>,
}

pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

impl Server {
    pub fn start(cfg: ServerConfig, _handler: Arc<dyn Handler>) -> std::io::Result<Server> {
        let addrs = cfg
            .listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<_, _>>()?;
        Ok(Server { addrs })
    }
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
    pub fn shutdown(self) {}
}
