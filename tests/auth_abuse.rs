//! Abuse of authentication (issue G), against the release binary over real
//! sockets on loopback: a flood of bad logins stays within a constant memory
//! while signed-in users are served; failed logins cannot lock a user out
//! of other addresses and back off more each time; a registry that had
//! users stays closed until the operator opens it; a user added while
//! serving applies to the very next request. Client addresses 127.0.0.2-9
//! are made by binding the client socket before connecting. Every loop has
//! a deadline and every server is killed on drop. Helpers: `tests/support`
//! (`Served`, `call_from`, `connect_port_from`, `vm_hwm_kib`, ...).

#[path = "auth_abuse/closed.rs"]
mod closed;
#[path = "auth_abuse/flood.rs"]
mod flood;
#[path = "auth_abuse/lockout.rs"]
mod lockout;
#[path = "support/mod.rs"]
mod support;

/// The flags every server here starts with: soute's own default worker
/// count, not the support library's 8, so the verifiers' memory is measured
/// at the default.
const SERVE: &[&str] = &["--workers", DEFAULT_WORKERS];
const DEFAULT_WORKERS: &str = "128";
const _: () = assert!(soute::http::DEFAULT_WORKERS == 128);
