//! Integration tests of issue K's policies: retention rules applied by GC
//! (exact survivors, dry-run explanations, the audit log), protected tags
//! (refused moves and deletes through the HTTP API) and quotas (refusals
//! with exact numbers, nothing half-stored). Real HTTP on loopback, the real
//! binary for the `retention`, `tag`, `quota`, `gc` and `audit` commands.
//! Helpers: `tests/support`, `ops/common.rs` and `policies/helpers.rs`.

#[allow(dead_code)]
#[path = "ops/common.rs"]
mod common;
#[path = "policies/helpers.rs"]
mod helpers;
#[path = "policies/protect.rs"]
mod protect;
#[path = "policies/quota.rs"]
mod quota;
#[path = "policies/retention.rs"]
mod retention;
#[path = "policies/retention_du.rs"]
mod retention_du;
#[path = "support/mod.rs"]
mod support;
