//! Black-box integration suite: soute over real HTTP on loopback, checked
//! against the OCI distribution spec v1.1 (end-1..end-14) and the Docker
//! registry v2 behaviour real clients rely on. See `harness.rs` for how a
//! registry is started (in-process soute, or an external URL).

mod harness;

mod bad_input;
mod deletes;
mod errors;
mod framing;
mod manifests;
mod persistence;
mod pull;
mod push;
mod referrers;
mod tags_catalog;
mod uploads;
