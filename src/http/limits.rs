//! The server's settings: the one definition of every HTTP limit and timeout
//! and their one set of defaults. `config` holds a [`Limits`] and `check-config`
//! prints it; the server reads it.
//!
//! It must never parse flags or environment variables (that is `config`/`cli`)
//! and never hold sockets or TLS material.

use std::fmt;
use std::time::Duration;

/// Worker threads at most, by default (4 start up front, more as needed):
/// enough that 8 addresses each using their whole per-address share (8)
/// leave half the workers to everyone else.
pub const DEFAULT_WORKERS: usize = 128;

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
    /// Requests from one client address in workers at once; further ready
    /// connections of that address wait in the ready queue without a worker.
    pub max_workers_per_ip: usize,
    /// Longest a complete request head may wait in the ready queue for a
    /// worker (all busy, or its address over its share); then 503.
    pub queue_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Slowest average request-body rate accepted (bytes per second), checked
    /// once `body_rate_grace` has passed since the body's first read; below
    /// it the body is cut (like Apache's `RequestReadTimeout body=20,MinRate=500`).
    pub min_body_rate: u64,
    /// Time a body may take before its average rate is checked; for
    /// responses, the window `min_send_rate` is checked over.
    pub body_rate_grace: Duration,
    /// Slowest response rate accepted (bytes per second): in every
    /// `body_rate_grace` window of a response, at least this rate times the
    /// window must leave for the client, or the connection is dropped (0: no minimum).
    pub min_send_rate: u64,
    /// Bytes at most buffered in request heads that no worker holds yet (in
    /// the readiness loop and the ready queue), all connections together.
    pub head_budget: usize,
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
            max_workers_per_ip: 8,
            queue_timeout: Duration::from_secs(30),
            min_body_rate: 500,
            body_rate_grace: Duration::from_secs(20),
            min_send_rate: 500,
            head_budget: 16 * 1024 * 1024,
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
            max_workers_per_ip: self.max_workers_per_ip.max(1),
            // Room for at least one largest head, whatever was asked.
            head_budget: self.head_budget.max(self.max_head_bytes.max(256)),
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
            "workers:          at most {} at once per client address; a ready request waits {} for one",
            self.max_workers_per_ip,
            secs(self.queue_timeout)
        )?;
        writeln!(
            f,
            "request bodies:   at least {} bytes/s on average after {}",
            self.min_body_rate,
            secs(self.body_rate_grace)
        )?;
        writeln!(
            f,
            "responses:        at least {} bytes/s over every {} window",
            self.min_send_rate,
            secs(self.body_rate_grace)
        )?;
        writeln!(
            f,
            "head buffers:     at most {} bytes in total for heads no worker holds",
            self.head_budget
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
