//! The `ops` binary's helpers on top of `tests/support`: a client whose
//! calls return transport errors (soute is killed under it), an image that
//! pushes and checks itself, soute in-process or spawned on a given folder.
//! Must NEVER hide a transport error as a status.

pub use crate::support::*;
use std::path::Path;

/// An HTTP client for one soute; every call returns the transport error
/// (refused, reset) instead of panicking.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Client {
        Client {
            base: format!("http://{addr}"),
            agent: http_agent(),
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Resp, String> {
        let url = format!("{}{path}", self.base);
        try_call(&self.agent, method, &url, None, headers, body).map_err(|e| e.to_string())
    }

    pub fn get(&self, path: &str) -> Result<Resp, String> {
        self.call("GET", path, &[], None)
    }
    pub fn delete(&self, path: &str) -> Result<Resp, String> {
        self.call("DELETE", path, &[], None)
    }
    pub fn post(&self, path: &str, body: &[u8]) -> Result<Resp, String> {
        self.call("POST", path, &[], Some(body))
    }
    pub fn put(&self, path: &str, ctype: &str, body: &[u8]) -> Result<Resp, String> {
        self.call("PUT", path, &[("Content-Type", ctype)], Some(body))
    }

    /// Monolithic upload; the digest on success, the response otherwise.
    pub fn blob(&self, repo: &str, bytes: &[u8]) -> Result<String, Resp> {
        let d = sha256(bytes);
        let r = self
            .post(&format!("/v2/{repo}/blobs/uploads/?digest={d}"), bytes)
            .map_err(|e| Resp {
                what: format!("POST blob to {repo}"),
                status: 0,
                headers: Vec::new(),
                body: e.into_bytes(),
            })?;
        if r.status == 201 {
            Ok(d)
        } else {
            Err(r)
        }
    }

    pub fn manifest(&self, repo: &str, reference: &str, body: &[u8]) -> Result<Resp, String> {
        let ctype = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| OCI_MANIFEST.into());
        self.put(&format!("/v2/{repo}/manifests/{reference}"), &ctype, body)
    }

    /// `POST /v2/_soute/gc?...`: the JSON report.
    pub fn gc(&self, query: &str) -> serde_json::Value {
        let r = self
            .post(&format!("/v2/_soute/gc?{query}"), b"")
            .expect("gc request");
        r.expect_status(200);
        r.json()
    }

    pub fn du(&self, query: &str) -> serde_json::Value {
        let r = self.get(&format!("/v2/_soute/du?{query}")).expect("du");
        r.expect_status(200);
        r.json()
    }
}

/// An image: its blobs and manifest bytes.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub subject: Option<(String, u64)>,
}

impl Image {
    pub fn new(config: &[u8], layers: &[&[u8]]) -> Image {
        Image {
            config: config.to_vec(),
            layers: layers.iter().map(|l| l.to_vec()).collect(),
            subject: None,
        }
    }

    pub fn blobs(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = vec![&self.config];
        v.extend(self.layers.iter().map(|l| l.as_slice()));
        v
    }

    pub fn manifest(&self) -> Vec<u8> {
        let layers: Vec<Descriptor> = self
            .layers
            .iter()
            .map(|l| Descriptor::new(OCI_LAYER_TAR, l))
            .collect();
        let subject = self.subject.as_ref().map(|(d, size)| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: d.clone(),
            size: *size as usize,
        });
        image_manifest(
            OCI_MANIFEST,
            &Descriptor::new(OCI_CONFIG, &self.config),
            &layers,
            None,
            subject.as_ref(),
        )
    }

    pub fn digest(&self) -> String {
        sha256(&self.manifest())
    }

    /// Upload the blobs and put the manifest under `reference`: its digest.
    pub fn push(&self, c: &Client, repo: &str, reference: &str) -> Result<String, String> {
        for b in self.blobs() {
            c.blob(repo, b).map_err(|r| {
                format!(
                    "blob upload: {} {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                )
            })?;
        }
        let r = c.manifest(repo, reference, &self.manifest())?;
        if r.status != 201 {
            return Err(format!(
                "manifest put: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        Ok(self.digest())
    }

    /// Pull by `reference` and check every digest.
    pub fn check_pull(&self, c: &Client, repo: &str, reference: &str) -> Result<(), String> {
        let r = c.get(&format!("/v2/{repo}/manifests/{reference}"))?;
        if r.status != 200 {
            return Err(format!("manifest {repo}:{reference}: status {}", r.status));
        }
        if sha256(&r.body) != self.digest() {
            return Err(format!("manifest {repo}:{reference}: wrong bytes"));
        }
        for b in self.blobs() {
            let d = sha256(b);
            let r = c.get(&format!("/v2/{repo}/blobs/{d}"))?;
            if r.status != 200 || sha256(&r.body) != d {
                return Err(format!("blob {d} in {repo}: status {}", r.status));
            }
        }
        Ok(())
    }
}

pub fn index(children: &[&[u8]]) -> Vec<u8> {
    let children: Vec<Descriptor> = children
        .iter()
        .map(|c| Descriptor::new(OCI_MANIFEST, c))
        .collect();
    index_manifest(OCI_INDEX, &children)
}

/// soute running in-process on `dir` (see [`base_config`]).
pub struct InProc {
    pub soute: Soute,
    pub client: Client,
}

pub fn start(dir: &Path) -> InProc {
    let soute = Soute::start_at(dir, |_| {});
    let client = Client::new(soute.addr());
    InProc { soute, client }
}

impl InProc {
    pub fn registry(&self) -> &soute::registry::Registry {
        self.soute.registry()
    }
    pub fn stop(self) {
        self.soute.stop();
    }
}

/// The real binary serving `dir`; killed on drop.
pub struct Spawned {
    pub served: Served,
    pub client: Client,
}

pub fn spawn(dir: &Path) -> Spawned {
    let served = serve(dir, &[]);
    let client = Client::new(served.addr);
    Spawned { served, client }
}

impl Spawned {
    /// kill -9 and reap.
    pub fn kill(&mut self) {
        self.served.proc.kill();
    }
}
