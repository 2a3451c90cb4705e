//! oci: pure types of the distribution spec: digests, repository names, tags,
//! references, media types and manifest parsing.
//!
//! It must never do I/O or know about HTTP, the database or the filesystem.

pub mod digest;
pub mod manifest;
pub mod name;

pub use digest::{Algorithm, Digest, Hasher};
pub use manifest::{Descriptor, Manifest};
pub use name::{Reference, RepoName, Tag, UploadId};

/// Manifest media types soute accepts.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
}
