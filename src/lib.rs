//! soute: a private OCI/Docker registry in one binary and one data folder.
//! See ARCHITECTURE.md for the map of the code and its invariants.
//!
//! It must never hold logic of its own: it only names the modules.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod oci;
pub mod registry;
pub mod storage;
pub mod tls;
pub mod ui;
pub mod upstream;
pub mod webhook;
