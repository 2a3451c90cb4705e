//! The workloads: what one measurement sends to a registry, and the
//! concurrency harness that runs N clients for a fixed time.

use crate::client::{Client, Mode, Target};
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// What `docker pull` sends.
pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json";

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Fills `buf` with xorshift64* bytes from `seed`.
pub fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        c.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    for b in chunks.into_remainder() {
        *b = x as u8;
    }
}

/// A large pre-generated blob whose last 64 bytes can be changed cheaply:
/// the hash of everything before them is computed once.
pub struct BigBlob {
    pub data: Vec<u8>,
    prefix: Sha256,
    /// Seconds the prefix hash took (the machine's sha256 ceiling).
    pub hash_secs: f64,
}

impl BigBlob {
    pub fn new(size: usize) -> BigBlob {
        assert!(size.is_multiple_of(64) && size >= 128);
        let mut data = vec![0u8; size];
        fill_random(&mut data, 0x5017e);
        let start = Instant::now();
        let mut prefix = Sha256::new();
        prefix.update(&data[..size - 64]);
        let hash_secs = start.elapsed().as_secs_f64();
        BigBlob {
            data,
            prefix,
            hash_secs,
        }
    }

    /// Makes the content unique for `tag` and returns its digest.
    pub fn unique(&mut self, tag: u64) -> String {
        let n = self.data.len();
        let tail = &mut self.data[n - 64..];
        fill_random(tail, tag ^ 0xfeed);
        let mut h = self.prefix.clone();
        h.update(&self.data[n - 64..]);
        format!("sha256:{}", hex(&h.finalize()))
    }
}

/// The path part of a Location header (distribution sends absolute URLs).
pub fn loc_path(loc: &str) -> String {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = loc.strip_prefix(scheme) {
            return rest.find('/').map_or("/".into(), |i| rest[i..].to_string());
        }
    }
    loc.to_string()
}

fn add_query(path: &str, kv: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{kv}")
}

fn expect(r: &crate::client::Resp, want: u16, what: &str) -> Res<()> {
    if r.status != want {
        return Err(format!(
            "{what}: status {} (wanted {want}): {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        )
        .into());
    }
    Ok(())
}

fn location(r: &crate::client::Resp, what: &str) -> Res<String> {
    r.header("location")
        .map(loc_path)
        .ok_or_else(|| format!("{what}: no Location").into())
}

/// POST an upload session: its Location.
fn start_upload(c: &mut Client, repo: &str) -> Res<String> {
    let r = c.req(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        &[],
        Mode::Collect,
    )?;
    expect(&r, 202, "POST upload")?;
    location(&r, "POST upload")
}

/// POST then one PUT with the whole body.
pub fn push_monolithic(c: &mut Client, repo: &str, data: &[u8], digest: &str) -> Res<()> {
    let loc = start_upload(c, repo)?;
    let r = c.req(
        "PUT",
        &add_query(&loc, &format!("digest={digest}")),
        &[("Content-Type", "application/octet-stream")],
        data,
        Mode::Collect,
    )?;
    expect(&r, 201, "PUT blob")
}

/// POST, PATCH chunks with Content-Range, then an empty PUT.
pub fn push_chunked(
    c: &mut Client,
    repo: &str,
    data: &[u8],
    digest: &str,
    chunk: usize,
) -> Res<()> {
    let mut loc = start_upload(c, repo)?;
    let mut off = 0usize;
    while off < data.len() {
        let end = (off + chunk).min(data.len());
        let range = format!("{off}-{}", end - 1);
        let r = c.req(
            "PATCH",
            &loc,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &range),
            ],
            &data[off..end],
            Mode::Collect,
        )?;
        expect(&r, 202, "PATCH chunk")?;
        loc = location(&r, "PATCH chunk")?;
        off = end;
    }
    let r = c.req(
        "PUT",
        &add_query(&loc, &format!("digest={digest}")),
        &[],
        &[],
        Mode::Collect,
    )?;
    expect(&r, 201, "PUT blob")
}

/// GET a blob, discarding it; returns its length.
pub fn pull(c: &mut Client, repo: &str, digest: &str) -> Res<u64> {
    let r = c.req(
        "GET",
        &format!("/v2/{repo}/blobs/{digest}"),
        &[],
        &[],
        Mode::Discard,
    )?;
    if r.status != 200 {
        return Err(format!("GET blob: status {}", r.status).into());
    }
    Ok(r.len)
}

/// A small image: 1 KiB config, 4 KiB layer and its manifest.
pub struct SmallImage {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub manifest: Vec<u8>,
}

impl SmallImage {
    pub fn new(seed: u64) -> SmallImage {
        let mut config = vec![0u8; 1024];
        fill_random(&mut config, seed.wrapping_mul(2));
        let mut layer = vec![0u8; 4096];
        fill_random(&mut layer, seed.wrapping_mul(2) + 1);
        let config_digest = sha256_digest(&config);
        let layer_digest = sha256_digest(&layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        )
        .into_bytes();
        SmallImage {
            config,
            config_digest,
            layer,
            layer_digest,
            manifest,
        }
    }

    /// As `docker push` does: per blob HEAD (404), POST, PUT with the body;
    /// then PUT the manifest by tag.
    pub fn push(&self, c: &mut Client, repo: &str, tag: &str) -> Res<()> {
        for (data, digest) in [
            (&self.config, &self.config_digest),
            (&self.layer, &self.layer_digest),
        ] {
            let r = c.req(
                "HEAD",
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                &[],
                Mode::Collect,
            )?;
            if r.status != 404 && r.status != 200 {
                return Err(format!("HEAD blob: status {}", r.status).into());
            }
            push_monolithic(c, repo, data, digest)?;
        }
        self.put_manifest(c, repo, tag)
    }

    pub fn put_manifest(&self, c: &mut Client, repo: &str, tag: &str) -> Res<()> {
        let r = c.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Content-Type", OCI_MANIFEST)],
            &self.manifest,
            Mode::Collect,
        )?;
        expect(&r, 201, "PUT manifest")
    }

    /// Mount both blobs from `from`, then PUT the manifest.
    pub fn mount_and_tag(&self, c: &mut Client, repo: &str, from: &str, tag: &str) -> Res<()> {
        for digest in [&self.config_digest, &self.layer_digest] {
            let r = c.req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
                &[],
                &[],
                Mode::Collect,
            )?;
            expect(&r, 201, "mount blob")?;
        }
        self.put_manifest(c, repo, tag)
    }
}

/// GET or HEAD a manifest by tag.
pub fn get_manifest(c: &mut Client, repo: &str, tag: &str, head: bool) -> Res<()> {
    let method = if head { "HEAD" } else { "GET" };
    let r = c.req(
        method,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", ACCEPT)],
        &[],
        Mode::Collect,
    )?;
    if r.status != 200 || (!head && r.body.is_empty()) {
        return Err(format!("{method} manifest: status {}", r.status).into());
    }
    Ok(())
}

/// Follows a paged list from `first` through `Link: <...>; rel="next"`.
/// Returns (all entries, pages fetched).
pub fn paged_list(c: &mut Client, first: &str, key: &str) -> Res<(Vec<String>, usize)> {
    let mut out = Vec::new();
    let mut next = Some(first.to_string());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let r = c.get_ok(&path, &[], 200)?;
        pages += 1;
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        if let Some(items) = v[key].as_array() {
            out.extend(items.iter().filter_map(|t| t.as_str().map(str::to_string)));
        }
        if let Some(link) = r.header("link") {
            let start = link.find('<').ok_or("bad Link")? + 1;
            let end = link.find('>').ok_or("bad Link")?;
            next = Some(loc_path(&link[start..end]));
        }
        if pages > 100_000 {
            return Err("pagination does not end".into());
        }
    }
    Ok((out, pages))
}

/// Results of a fixed-duration run of N clients.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub ops: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// Runs `clients` threads for `dur`, each calling `op(client_index, i)` in a
/// loop on its own keep-alive connection after one uncounted warm-up call.
pub fn run_clients<F>(target: &Arc<Target>, clients: usize, dur: Duration, op: F) -> Res<Stats>
where
    F: Fn(&mut Client, usize, u64) -> Res<()> + Sync,
{
    let barrier = Barrier::new(clients + 1);
    let mut wall = 0.0;
    let results: Vec<Res<Vec<u32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|k| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || -> Res<Vec<u32>> {
                    let mut c = Client::new(target.clone());
                    let warm = op(&mut c, k, 0);
                    barrier.wait();
                    warm?;
                    let start = Instant::now();
                    let mut lat = Vec::with_capacity(1 << 16);
                    let mut i = 1u64;
                    while start.elapsed() < dur {
                        let t = Instant::now();
                        op(&mut c, k, i)?;
                        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        i += 1;
                    }
                    Ok(lat)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let out = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("client panicked".into())))
            .collect();
        wall = start.elapsed().as_secs_f64();
        out
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i] as f64 / 1000.0
    };
    Ok(Stats {
        ops: all.len() as u64,
        secs: wall,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

/// Runs `op(i)` for i in 0..n over `clients` threads (setup work).
pub fn parallel<F>(target: &Arc<Target>, clients: usize, n: u64, op: F) -> Res<f64>
where
    F: Fn(&mut Client, u64) -> Res<()> + Sync,
{
    let next = std::sync::atomic::AtomicU64::new(0);
    let start = Instant::now();
    let results: Vec<Res<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (next, op) = (&next, &op);
                s.spawn(move || -> Res<()> {
                    let mut c = Client::new(target.clone());
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return Ok(());
                        }
                        op(&mut c, i)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    for r in results {
        r?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
