//! Black-box integration suite: soute over real HTTP on loopback, checked
//! against the OCI distribution spec v1.1 (end-1..end-14) and the Docker
//! registry v2 behaviour real clients rely on. See `harness.rs` for how a
//! registry is started (in-process soute, or an external URL); the helpers
//! themselves live in the shared `tests/support` library.

#[path = "../support/mod.rs"]
mod support;

mod harness;

/// No users: the registry is open (tests/it_basic and tests/it_token run the
/// same modules with credentials).
pub const AUTH_MODE: harness::AuthMode = harness::AuthMode::Open;
/// Blobs in the data folder (tests/it_s3 puts them on Garage).
pub const BLOB_STORE: Option<fn(&mut soute::config::Config)> = None;

mod access;
mod bad_input;
mod deletes;
mod errors;
mod framing;
mod limits;
mod manifests;
mod persistence;
mod pull;
mod push;
mod read_cache;
mod referrers;
mod tags_catalog;
mod upload_bounds;
mod uploads;
