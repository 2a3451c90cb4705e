//! Abuse tests: what clients that hold connections open (slow heads, stalled
//! TLS handshakes, floods of idle connections from one address, slow bodies,
//! large unfinished heads) can make the
//! real binary hold. Each spawns the release `soute`, opens thousands of real
//! loopback sockets from several source addresses (127.0.0.2..), measures a
//! normal client and the server's own VmHWM, and kills the server. One test
//! runs at a time (they share the machine's fds and cores); each is bounded
//! in count and time.

#[path = "abuse/bodies.rs"]
mod bodies;
#[path = "abuse/connections.rs"]
mod connections;
#[path = "abuse/eviction.rs"]
mod eviction;
#[path = "abuse/helpers.rs"]
mod helpers;
#[path = "abuse/lists.rs"]
mod lists;
#[path = "abuse/memory.rs"]
mod memory;
#[path = "abuse/slow_heads.rs"]
mod slow_heads;
#[path = "abuse/slow_readers.rs"]
mod slow_readers;
#[path = "support/mod.rs"]
mod support;
