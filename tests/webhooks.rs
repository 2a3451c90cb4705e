//! Webhooks (issue K) through the real stack: a receiver on loopback
//! (`support/receiver.rs`) that records every delivery, soute in-process or
//! as the real binary (the kill -9 test), `soute webhook` run as the real
//! binary. Bodies are parsed and checked field by field, signatures
//! recomputed with HMAC-SHA256, the back-off timed.

#[path = "support/mod.rs"]
mod support;

// Images pushed over HTTP (shared with the pull-through suite).
#[allow(dead_code)]
#[path = "upstream/common.rs"]
mod images;

#[path = "webhooks/batches.rs"]
mod batches;
#[path = "webhooks/changes.rs"]
mod changes;
#[path = "webhooks/common.rs"]
mod common;
#[path = "webhooks/durability.rs"]
mod durability;
#[path = "webhooks/events.rs"]
mod events;
