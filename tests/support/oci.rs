//! Digests and OCI content: media types, descriptors, image manifests and
//! indexes, deterministic blob bytes. Pure functions over bytes.
//! Must NEVER do I/O (pushing is the caller's job).

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What real clients (docker, containerd, oras) put in `Accept` for manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, */*";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number unique within this test process.
pub fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex SHA-256 of `bytes` (no algorithm prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// `sha512:<hex>` of `bytes`.
pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex(&Sha512::digest(bytes)))
}

/// True when `header` is a digest (of any algorithm this suite knows) of `body`.
pub fn digest_matches(header: Option<&str>, body: &[u8]) -> bool {
    match header {
        Some(h) if h.starts_with("sha256:") => h == sha256(body),
        Some(h) if h.starts_with("sha512:") => h == sha512(body),
        _ => false,
    }
}

/// A digest of content that was never pushed anywhere.
pub fn unknown_digest() -> String {
    sha256(format!("never pushed {} {:?}", unique(), Instant::now()).as_bytes())
}

/// Deterministic incompressible bytes (xorshift), different per seed.
pub fn pseudo_random_bytes(seed: usize, len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (seed as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An OCI descriptor.
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Descriptor {
    pub fn new(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256(bytes),
            size: bytes.len(),
        }
    }

    pub fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An image manifest (OCI or Docker schema2 depending on `media_type`).
pub fn image_manifest(
    media_type: &str,
    config: &Descriptor,
    layers: &[Descriptor],
    artifact_type: Option<&str>,
    subject: Option<&Descriptor>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.json(),
        "layers": layers.iter().map(Descriptor::json).collect::<Vec<_>>(),
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    if let Some(s) = subject {
        m["subject"] = s.json();
    }
    serde_json::to_vec(&m).expect("json")
}

/// An index / manifest list over child manifests (each `linux/amd64`).
pub fn index_manifest(media_type: &str, children: &[Descriptor]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|c| {
            let mut d = c.json();
            d["platform"] = json!({"architecture": "amd64", "os": "linux"});
            d
        })
        .collect();
    serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}),
    )
    .expect("json")
}
