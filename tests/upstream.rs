//! The pull-through cache (issue I) through the real stack: real upstream
//! registries on loopback (Debian's `docker-registry`, anonymous and behind
//! htpasswd Basic auth; a second soute with `--auth token` as a Bearer
//! upstream, one with its own CA over HTTPS), soute in-process pulling through them over real HTTP, and
//! `soute upstream` run as the real binary. The upstream's own access log
//! counts what soute fetched. `space` covers eviction, `du` and deleting an
//! upstream; `sync` the cache warmed ahead of time. Under CI=true a missing docker-registry fails
//! the run. Helpers: `tests/support` (`support/upstream.rs`).

#[path = "support/mod.rs"]
mod support;

#[path = "upstream/auth.rs"]
mod auth;
#[path = "upstream/common.rs"]
mod common;
#[path = "upstream/faults.rs"]
mod faults;
#[path = "upstream/mirror.rs"]
mod mirror;
#[path = "upstream/pull.rs"]
mod pull;
#[path = "upstream/relay.rs"]
mod relay;
#[path = "upstream/resume.rs"]
mod resume;
#[path = "upstream/space.rs"]
mod space;
#[path = "upstream/stream.rs"]
mod stream;
#[path = "upstream/sync.rs"]
mod sync;
#[path = "upstream/tls.rs"]
mod tls;
#[path = "upstream/ttl.rs"]
mod ttl;
