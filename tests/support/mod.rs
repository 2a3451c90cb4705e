//! The one test support library, shared by every test binary
//! (`#[path = "support/mod.rs"] mod support;` at the top of `tests/NAME.rs`,
//! `#[path = "../support/mod.rs"]` from `tests/NAME/main.rs`).
//!
//! It owns: HTTP exchanges over ureq ([`http`]) and raw TCP ([`raw`]), soute
//! started in-process on an ephemeral loopback port with a temporary data
//! folder ([`server::Soute`]), the real binary spawned with its port and log
//! read back ([`spawn`]), digests and OCI image/manifest builders ([`oci`]),
//! TLS clients trusting the served CA ([`tls`]), the client side of the
//! Docker token protocol (Bearer challenges, token requests: [`bearer`]), bounded waiting ([`wait`]),
//! a seeded RNG replayable with `SOUTE_TEST_SEED` ([`rng`]), /proc
//! readers ([`procfs`]) and many-socket helpers: connections from a chosen
//! loopback source address, the fd limit raised, p99 ([`net`]), a webhook
//! receiver that records deliveries ([`receiver`]).
//!
//! It must NEVER talk to a non-loopback address, wait without a deadline, or
//! leave a server or child process running after its owner is dropped. It
//! holds no test logic of its own: no assertion about soute's behaviour
//! beyond checking the shape of what it parses.
//!
//! A new test in a few lines:
//! ```ignore
//! let soute = Soute::start(|cfg| cfg.delete_enabled = false);
//! let agent = http_agent();
//! let r = get(&agent, &soute.url("/v2/"), None);
//! r.expect_status(200);
//! ```

#![allow(dead_code, unused_imports)]

pub mod bearer;
pub mod data;
pub mod http;
pub mod net;
pub mod oci;
pub mod procfs;
pub mod raw;
pub mod receiver;
pub mod rng;
pub mod server;
pub mod spawn;
pub mod tls;
pub mod upstream;
pub mod wait;

pub use bearer::*;
pub use data::*;
pub use http::*;
pub use net::*;
pub use oci::*;
pub use procfs::*;
pub use raw::*;
pub use receiver::*;
pub use rng::*;
pub use server::*;
pub use spawn::*;
pub use tls::*;
pub use upstream::*;
pub use wait::*;

/// True when the suite runs in CI (`CI=true`): tests that would skip for a
/// missing tool or privilege fail instead.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
