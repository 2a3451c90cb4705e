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
    pub config_size: usize,
    pub layers: Vec<Descriptor>,
}

/// The `created` of every config pushed here.
pub const CREATED: &str = "2024-05-06T07:08:09.123456789Z";

/// A config blob for `arch` with the fields the image page shows.
fn config(arch: &str, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux", "created": CREATED,
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
        config_size: cfg.len(),
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

/// What [`seed`] made: who may sign in, and what was pushed.
pub struct Seeded {
    pub base: String,
    /// The layer both platforms of the index and `lab/base` share.
    pub base_layer_size: usize,
    /// `lab/app:multi`, a two-platform index.
    pub index: String,
    pub platforms: Vec<Pushed>,
    /// The two digests `lab/app:moving` pointed to, oldest first.
    pub moving: [String; 2],
}

pub const ADMIN: (&str, &str) = ("ada", "ada-password-1");
/// May pull `lab/**` only.
pub const READER: (&str, &str) = ("bob", "bob-password-1");
/// The annotation that must show as text.
pub const XSS: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";

/// Users (an admin, a reader of `lab/**`), and images: `lab/app` with a
/// multi-arch index, a tag moved twice, tags to delete and an annotation
/// holding markup; `lab/base` sharing the base layer; `team/secret`, which
/// the reader may not see.
pub fn seed(soute: &crate::support::Soute) -> Seeded {
    use soute::auth::{Actions, Pattern, Who};
    let registry = soute.registry();
    registry.add_user(ADMIN.0, ADMIN.1, true).expect("admin");
    registry
        .add_user(READER.0, READER.1, false)
        .expect("reader");
    registry
        .grant(
            &Who::parse(READER.0).expect("who"),
            &Pattern::parse("lab/**").expect("pattern"),
            Actions::parse("pull").expect("actions"),
        )
        .expect("grant");
    let agent = crate::support::http_agent();
    let base = soute.http_base();
    let auth = crate::support::basic(ADMIN.0, ADMIN.1);
    let to = To {
        agent: &agent,
        base: &base,
        auth: Some(&auth),
    };
    let base_layer = crate::support::pseudo_random_bytes(7, 40_000);
    let (index, platforms) = push_index(to, "lab/app", "multi", &base_layer);
    push_image(
        to,
        "lab/base",
        "latest",
        "amd64",
        std::slice::from_ref(&base_layer),
        None,
    );
    let first = push_image(
        to,
        "lab/app",
        "moving",
        "amd64",
        &[b"moving one".to_vec()],
        None,
    );
    let second = push_image(
        to,
        "lab/app",
        "moving",
        "amd64",
        &[b"moving two".to_vec()],
        None,
    );
    for t in ["old-1", "old-2", "keep"] {
        push_image(
            to,
            "lab/app",
            t,
            "amd64",
            &[format!("layer of {t}").into_bytes()],
            None,
        );
    }
    let notes = json!({ "org.opencontainers.image.description": XSS, "x.note": XSS });
    push_image(
        to,
        "lab/app",
        "xss",
        "amd64",
        &[b"xss layer".to_vec()],
        Some(notes),
    );
    push_image(
        to,
        "team/secret",
        "v1",
        "amd64",
        &[b"secret layer".to_vec()],
        None,
    );
    Seeded {
        base,
        base_layer_size: base_layer.len(),
        index,
        platforms,
        moving: [first.digest, second.digest],
    }
}
