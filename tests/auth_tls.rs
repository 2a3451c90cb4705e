//! Integration tests of authentication and TLS (issue B): soute started
//! in-process (and, where it matters, the real binary) on loopback, spoken to
//! over real HTTPS/HTTP. Covers the automatic CA, certificate reload, Basic
//! auth on every endpoint family, anonymous pull, user changes without a
//! restart, login throttling, htpasswd import, credentials kept out of logs
//! and the `docker search` answer. Every loop is bounded in time and every
//! server is stopped (on drop at the latest). Helpers: `tests/support`.

#[path = "support/mod.rs"]
mod support;

#[path = "auth_tls/auth.rs"]
mod auth;
#[path = "auth_tls/htpasswd.rs"]
mod htpasswd;
#[path = "auth_tls/logs.rs"]
mod logs;
#[path = "auth_tls/search.rs"]
mod search;
#[path = "auth_tls/throttle.rs"]
mod throttle;
#[path = "auth_tls/tls_auto.rs"]
mod tls_auto;
#[path = "auth_tls/tls_files.rs"]
mod tls_files;
#[path = "auth_tls/token_service.rs"]
mod token_service;
#[path = "auth_tls/users_live.rs"]
mod users_live;
