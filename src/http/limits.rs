//! The server's settings: the one definition of every HTTP limit and timeout
//! and their one set of defaults. `config` holds a [`Limits`] and `check-config`
//! prints it; the server reads it.
//!
//! It must never parse flags or environment variables (that is `config`/`cli`)
//! and never hold sockets or TLS material.

use std::fmt;
use std::time::Duration;

/// Worker threads at most, by default (4 start up front, more as needed).
pub const DEFAULT_WORKERS: usize = 64;

/// Limits and timeouts of the HTTP server.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Open connections at most, in every state (lowered at start when the
    /// file-descriptor limit cannot hold them).
    pub max_connections: usize,
    /// Open connections at most from one client address (IPv6: per full address).
    pub max_connections_per_ip: usize,
    /// Time allowed for the TLS handshake plus a whole request head, counted
    /// from the connection's accept or, on a kept-alive one, from the first
    /// byte of the next request. Trickling bytes does not extend it.
    pub head_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Longest a response write may make no progress.
    pub write_timeout: Duration,
    /// Longest a connection may wait idle for its next request.
    pub keepalive_timeout: Duration,
    /// Largest request head (request line and header fields), in bytes.
    pub max_head_bytes: usize,
    /// Most header fields in one request head.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 4096,
            max_connections_per_ip: 64,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(30),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

impl Limits {
    /// The limits with every value raised to its working minimum.
    pub(crate) fn sane(&self) -> Limits {
        Limits {
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            max_head_bytes: self.max_head_bytes.max(256),
            max_headers: self.max_headers.max(1),
            ..self.clone()
        }
    }
}

impl fmt::Display for Limits {
    /// The lines `check-config` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "max connections:  {} in total, {} per client address",
            self.max_connections, self.max_connections_per_ip
        )?;
        writeln!(
            f,
            "timeouts:         head {}, body {}, write {}, keep-alive {}",
            secs(self.head_timeout),
            secs(self.body_timeout),
            secs(self.write_timeout),
            secs(self.keepalive_timeout)
        )?;
        writeln!(
            f,
            "request head:     at most {} bytes, {} header fields",
            self.max_head_bytes, self.max_headers
        )
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
