//! Integration tests of the operator features: online GC, backup while
//! serving, verify, space accounting, crash and disk-full safety. Real HTTP on
//! loopback; some tests spawn the real binary. Every loop is bounded in time.
//! Helpers: `tests/support` (shared) and `ops/common.rs` (this binary).

#[path = "ops/backup.rs"]
mod backup;
#[path = "ops/common.rs"]
mod common;
#[path = "ops/crash.rs"]
mod crash;
#[path = "ops/diskfull.rs"]
mod diskfull;
#[path = "ops/gc.rs"]
mod gc;
#[path = "ops/limits.rs"]
mod limits;
#[path = "ops/session_gc.rs"]
mod session_gc;
#[path = "support/mod.rs"]
mod support;
#[path = "ops/verify.rs"]
mod verify;
