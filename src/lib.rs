//! soute: a private OCI/Docker registry in one binary and one data folder.
//! See ARCHITECTURE.md for the map of the code and its invariants.

pub mod http;
pub mod registry;
pub mod tls;
