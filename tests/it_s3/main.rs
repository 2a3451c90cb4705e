//! The `it` suite (tests/it/) run again with soute's blobs on an S3 store: a
//! real 3-node Garage cluster on loopback (replication factor 3), one per
//! test binary, started on first use and stopped at exit (`store.rs`); each
//! registry gets its own key prefix. Under CI=true a missing `garage` fails.
//! The modules are tests/it's own (`#[path]`); only [`BLOB_STORE`] differs.
//! Not here: `upload_bounds.rs` (it starts soute itself, never through the
//! harness, so it would run on the local store as in `it`).
//! The S3-only fault tests (store unreachable, GC, verify) are in `faults.rs`.
//! Must NEVER hold a test of the shared suite: such a test goes in `tests/it/`.

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/garage.rs"]
mod garage;

#[path = "../it/harness.rs"]
mod harness;

mod faults;
mod migrate;
mod store;

/// This binary's mode (see `tests/it/harness.rs`).
pub const AUTH_MODE: harness::AuthMode = harness::AuthMode::Open;
/// Blobs on the binary's Garage cluster.
pub const BLOB_STORE: Option<fn(&mut soute::config::Config)> = Some(store::configure);

#[path = "../it/access.rs"]
mod access;
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
