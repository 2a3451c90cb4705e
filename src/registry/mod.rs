//! registry: the rules of the registry (uploads, manifests, tags, users, gc,
//! backup, transactions), above `db` and `storage`.
//!
//! It must never see Request/Response types or choose HTTP status codes.

pub mod credentials;
