//! Images the UI tests push over real HTTP: single images with a config that
//! has entrypoint, env, labels and ports, and multi-arch indexes whose
//! platforms share a base layer. Returns the digests and sizes pushed.

#![allow(dead_code)]

use crate::support::{push_blob, put_manifest, sha256, Descriptor, OCI_INDEX, OCI_MANIFEST};
use serde_json::{json, Value};

pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Where to push: the agent, `http://ADDR` and the Authorization header.
#[derive(Clone, Copy)]
pub struct To<'a> {
    pub agent: &'a ureq::Agent,
    pub base: &'a str,
    pub auth: Option<&'a str>,
}

/// One pushed image manifest.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub digest: String,
    pub size: usize,
    pub layers: Vec<Descriptor>,
}

/// A config blob for `arch` with the fields the image page shows.
fn config(arch: &str, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {
            "Entrypoint": ["/bin/app"], "Cmd": ["--serve"],
            "Env": ["PATH=/usr/bin", format!("NOTE={note}")],
            "Labels": {"org.example.team": "lab"},
            "ExposedPorts": {"8080/tcp": {}}, "User": "1000", "WorkingDir": "/srv"
        },
        "history": [{"created_by": "ADD base.tar /"}, {"created_by": format!("RUN build {arch}")}],
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("json")
}

/// Push an image of `layers` (their bytes) for `arch` under `reference`,
/// with `annotations` on the manifest.
pub fn push_image(
    to: To<'_>,
    repo: &str,
    reference: &str,
    arch: &str,
    layers: &[Vec<u8>],
    annotations: Option<Value>,
) -> Pushed {
    let To { agent, base, auth } = to;
    let cfg = config(arch, reference);
    push_blob(agent, base, repo, &cfg, auth);
    let mut descs = Vec::new();
    for l in layers {
        push_blob(agent, base, repo, l, auth);
        descs.push(Descriptor::new(OCI_LAYER, l));
    }
    let mut m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": Descriptor::new(OCI_CONFIG, &cfg).json(),
        "layers": descs.iter().map(Descriptor::json).collect::<Vec<_>>(),
    });
    if let Some(a) = annotations {
        m["annotations"] = a;
    }
    let body = serde_json::to_vec(&m).expect("json");
    put_manifest(agent, base, repo, reference, OCI_MANIFEST, &body, auth).expect_status(201);
    Pushed {
        digest: sha256(&body),
        size: body.len(),
        layers: descs,
    }
}

/// Push a two-platform index (amd64, arm64) under `tag`: each platform has
/// the shared `base` layer and one of its own. Returns (index digest,
/// [amd64, arm64]).
pub fn push_index(to: To<'_>, repo: &str, tag: &str, base_layer: &[u8]) -> (String, Vec<Pushed>) {
    let To { agent, base, auth } = to;
    let mut children = Vec::new();
    for (arch, seed) in [("amd64", 11usize), ("arm64", 12)] {
        let own = crate::support::pseudo_random_bytes(seed + tag.len(), 3000 + seed * 100);
        let p = push_image(
            to,
            repo,
            &format!("{tag}-{arch}"),
            arch,
            &[base_layer.to_vec(), own],
            None,
        );
        children.push((arch, p));
    }
    let manifests: Vec<Value> = children
        .iter()
        .map(|(arch, p)| {
            json!({"mediaType": OCI_MANIFEST, "digest": p.digest, "size": p.size,
                   "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    let body = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
    )
    .expect("json");
    put_manifest(agent, base, repo, tag, OCI_INDEX, &body, auth).expect_status(201);
    (
        sha256(&body),
        children.into_iter().map(|(_, p)| p).collect(),
    )
}
