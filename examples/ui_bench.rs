//! The web UI's render time and page weight (issue J's benchmark): soute
//! in-process on 127.0.0.1 (plain HTTP, open registry), one repository with
//! 10,000 tags (each its own manifest) and 1,000 repositories, then timed GETs
//! of the repository page (its first 100 tags) and the repositories page
//! (its first 50 of 1,000). Times are measured by the client on loopback, so
//! they bound the server's render time from above.
//!
//! ```text
//! cargo run --release --example ui_bench -- [--tags N] [--repos N] [--runs N] [--keep]
//! ```
//! Goals: each page <= 20 ms, HTML + CSS + JS <= 100 KB.

use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn send(&self, method: &str, path: &str, body: &[u8], ct: &str) -> Res<u16> {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", ct)
            .body(body.to_vec())?;
        Ok(self.agent.run(req)?.status().as_u16())
    }

    fn get(&self, path: &str) -> Res<(u16, usize, Duration)> {
        let t = Instant::now();
        let req = ureq::http::Request::builder()
            .uri(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .body(())?;
        let mut resp = self.agent.run(req)?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec()?;
        Ok((status, body.len(), t.elapsed()))
    }

    fn blob(&self, repo: &str, bytes: &[u8]) -> Res<String> {
        let d = sha256(bytes);
        let s = self.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            bytes,
            "application/octet-stream",
        )?;
        if s != 201 {
            return Err(format!("blob push: {s}").into());
        }
        Ok(d)
    }

    fn manifest(
        &self,
        repo: &str,
        tag: &str,
        config: &(String, usize),
        layer: &(String, usize),
        note: &str,
    ) -> Res<()> {
        let body = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.0, "size": layer.1}],
            "annotations": {"note": note}
        });
        let s = self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &serde_json::to_vec(&body)?,
            "application/vnd.oci.image.manifest.v1+json",
        )?;
        if s != 201 {
            return Err(format!("manifest push: {s}").into());
        }
        Ok(())
    }
}

fn timed(c: &Client, what: &str, path: &str, runs: usize) -> Res<()> {
    let (status, _, first) = c.get(path)?;
    if status != 200 {
        return Err(format!("{path}: {status}").into());
    }
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let (_, n, t) = c.get(path)?;
        bytes = n;
        times.push(t);
    }
    times.sort();
    let css = c.get("/ui/static/ui.css")?.1;
    let js = c.get("/ui/static/ui.js")?.1;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: first GET {:.1} ms, then median {:.1} ms, max {:.1} ms over {runs} GETs; HTML {bytes} B + CSS {css} B + JS {js} B = {} B",
        ms(first),
        ms(times[runs / 2]),
        ms(times[runs - 1]),
        bytes + css + js
    );
    Ok(())
}

fn main() -> Res<()> {
    let (tags, repos, runs) = (
        arg("--tags", 10_000),
        arg("--repos", 1_000),
        arg("--runs", 30).max(1),
    );
    let dir = tempfile_dir()?;
    let mut cfg = soute::config::Config::for_data(&dir);
    cfg.listen = vec!["127.0.0.1:0".parse()?];
    cfg.tls = soute::config::TlsMode::Off;
    cfg.gc_interval = None;
    let running = soute::app::start(cfg)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let c = Client {
        agent,
        base: format!("http://{}", running.addrs()[0]),
    };
    let t0 = Instant::now();
    let config = br#"{"architecture":"amd64","os":"linux","created":"2024-05-06T07:08:09.123456789Z","config":{}}"#;
    let layer = b"one small layer";
    let cfg_d = (c.blob("bench/tags", config)?, config.len());
    let layer_d = (c.blob("bench/tags", layer)?, layer.len());
    for i in 0..tags {
        c.manifest(
            "bench/tags",
            &format!("v{i:05}"),
            &cfg_d,
            &layer_d,
            &i.to_string(),
        )?;
    }
    for i in 0..repos {
        let repo = format!("bench/r{i:04}");
        c.blob(&repo, config)?;
        c.blob(&repo, layer)?;
        c.manifest(&repo, "latest", &cfg_d, &layer_d, "r")?;
    }
    println!(
        "seeded {tags} tags and {repos} repositories in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    timed(
        &c,
        &format!("repository page ({tags} tags, first 100)"),
        "/ui/r/bench/tags",
        runs,
    )?;
    timed(
        &c,
        &format!("repositories page ({} repositories, first 50)", repos + 1),
        "/ui/",
        runs,
    )?;
    timed(&c, "image page", "/ui/i/bench/tags:v00000", runs)?;
    // What is cold: the space figures alone, recomputed after a change (a
    // blob linked to one repository moves the space generation; SQLite pages
    // and statements already warm), each beside a GET right after it (the
    // figures cached again) on the same connection.
    for i in 0..5 {
        c.blob("bench/r0000", format!("change {i}").as_bytes())?;
        let (_, _, changed) = c.get("/ui/")?;
        let (_, _, fresh) = c.get("/ui/")?;
        println!(
            "repositories page right after a change: {:.1} ms, the next view: {:.1} ms",
            changed.as_secs_f64() * 1000.0,
            fresh.as_secs_f64() * 1000.0
        );
    }
    running.shutdown();
    if std::env::args().any(|a| a == "--keep") {
        println!("kept the data folder {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// A fresh folder under the system's temporary folder.
fn tempfile_dir() -> Res<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("soute-ui-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
