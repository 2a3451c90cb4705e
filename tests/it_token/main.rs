//! The `it` suite (OCI distribution spec v1.1 and Docker registry v2
//! behaviour, `tests/it/`) run again in the Token mode: soute in `--auth token` mode with an administrator; the suite answers each Bearer challenge with a token from the realm (Basic credentials, cached per scope), as the Go clients do.
//! The modules are tests/it's own (`#[path]`); only [`AUTH_MODE`] differs.
//! Not here: `access.rs` (the permission matrix makes its own users and rules
//! and sends its own credentials: it would run identically) and
//! `upload_bounds.rs` (it starts soute itself, never through the harness).
//! Must NEVER hold a test of its own: a test goes in `tests/it/`.

#[path = "../support/mod.rs"]
mod support;

#[path = "../it/harness.rs"]
mod harness;

/// This binary's mode (see `tests/it/harness.rs`).
pub const AUTH_MODE: harness::AuthMode = harness::AuthMode::Token;
/// Blobs in the data folder (tests/it_s3 puts them on Garage).
pub const BLOB_STORE: Option<fn(&mut soute::config::Config)> = None;

#[path = "../it/bad_input.rs"]
mod bad_input;
#[path = "../it/deletes.rs"]
mod deletes;
#[path = "../it/errors.rs"]
mod errors;
#[path = "../it/framing.rs"]
mod framing;
#[path = "../it/limits.rs"]
mod limits;
#[path = "../it/manifests.rs"]
mod manifests;
#[path = "../it/persistence.rs"]
mod persistence;
#[path = "../it/pull.rs"]
mod pull;
#[path = "../it/push.rs"]
mod push;
#[path = "../it/referrers.rs"]
mod referrers;
#[path = "../it/tags_catalog.rs"]
mod tags_catalog;
#[path = "../it/uploads.rs"]
mod uploads;
