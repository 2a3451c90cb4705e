//! What the pull-through tests share: an image pushed to an upstream with
//! plain HTTP, `soute upstream add` run as the real binary on soute's data
//! folder, and pulls through soute that check bytes and digests.

use crate::support::*;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

/// The User-Agent soute sends upstream (the tests' agent is `soute-tests/1`).
pub const SOUTE_AGENT: &str = "soute/";

/// An image as pushed: its manifest bytes and digest, and its blobs.
pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub blobs: Vec<Vec<u8>>,
}

/// Push a config and `layers` (sizes in bytes) as an OCI image to
/// `base/repo:tag`; `seed` makes the bytes unique.
pub fn push_image(
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    tag: &str,
    seed: usize,
    layers: &[usize],
    auth: Option<&str>,
) -> Image {
    let config =
        format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed}}}").into_bytes();
    let mut blobs = vec![config.clone()];
    for (i, size) in layers.iter().enumerate() {
        blobs.push(pseudo_random_bytes(seed * 100 + i, *size));
    }
    for b in &blobs {
        push_blob(agent, base, repo, b, auth);
    }
    let layer_descs: Vec<Descriptor> = blobs[1..]
        .iter()
        .map(|b| Descriptor::new(OCI_LAYER, b))
        .collect();
    let manifest = image_manifest(
        OCI_MANIFEST,
        &Descriptor::new(OCI_CONFIG, &config),
        &layer_descs,
        None,
        None,
    );
    put_manifest(agent, base, repo, tag, OCI_MANIFEST, &manifest, auth).expect_status(201);
    Image {
        digest: sha256(&manifest),
        manifest,
        blobs,
    }
}

/// `soute upstream ARGS... --data DIR` (the password, if any, on stdin):
/// (success, stdout, stderr).
pub fn upstream_cmd(data: &Path, args: &[&str], password: Option<&str>) -> (bool, String, String) {
    let mut child = soute_bin()
        .arg("upstream")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn soute upstream");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(pw) = password {
            stdin
                .write_all(format!("{pw}\n").as_bytes())
                .expect("password");
        }
    }
    let out = child.wait_with_output().expect("soute upstream");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `soute upstream add ...`, which must succeed.
pub fn add_upstream(data: &Path, args: &[&str], password: Option<&str>) {
    let mut argv = vec!["add"];
    argv.extend_from_slice(args);
    let (ok, out, err) = upstream_cmd(data, &argv, password);
    assert!(ok, "soute upstream {argv:?} failed: {out}{err}");
}

/// `soute upstream list --json` as JSON.
pub fn list_json(data: &Path) -> serde_json::Value {
    let (ok, out, err) = upstream_cmd(data, &["list", "--json"], None);
    assert!(ok, "upstream list failed: {err}");
    serde_json::from_str(&out).expect("list --json is JSON")
}

/// GET a manifest through soute (any manifest type accepted): checks 200,
/// the bytes and the digest header.
pub fn pull_manifest(soute: &Soute, repo: &str, reference: &str, expect: &[u8]) -> Resp {
    let r = manifest_at(
        &soute.url(&format!("/v2/{repo}/manifests/{reference}")),
        None,
    );
    r.expect_status(200);
    assert_eq!(r.body, expect, "manifest {repo}:{reference} bytes differ");
    assert_eq!(
        r.header("docker-content-digest"),
        Some(sha256(expect).as_str())
    );
    r
}

/// GET a manifest URL accepting every manifest type, whatever the answer.
pub fn manifest_at(url: &str, auth: Option<&str>) -> Resp {
    call(
        &http_agent(),
        "GET",
        url,
        auth,
        &[("Accept", MANIFEST_ACCEPT)],
        None,
    )
}

/// GET every blob of `image` through soute and compare the bytes.
pub fn pull_blobs(soute: &Soute, repo: &str, image: &Image) {
    for b in &image.blobs {
        let digest = sha256(b);
        let r = get(
            &http_agent(),
            &soute.url(&format!("/v2/{repo}/blobs/{digest}")),
            None,
        );
        r.expect_status(200);
        assert!(r.body == *b, "blob {digest} of {repo}: bytes differ");
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    }
}

/// The requests soute made to `upstream` so far.
pub fn soute_requests(upstream: &Distribution) -> Vec<(String, String, u16)> {
    upstream.requests(SOUTE_AGENT)
}
