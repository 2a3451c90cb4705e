//! `peers`: soute against the other Rust registries, in the same run as the
//! plain phase's distribution, when their binaries are found:
//! `container-registry` (`cargo install --locked container-registry
//! --features bin`) and `nora` (`cargo install nora-registry`), looked up in
//! `$SOUTE_BENCH_PEERS`, then `$PATH`, then `~/.cache/soute-bench/bin` (where
//! `cargo install --root ~/.cache/soute-bench ...` puts them).
//!
//! soute runs here configured as a registry in use would be (`realistic`):
//! four users, a group, a dozen access rules, one upstream (the phase's
//! distribution, on loopback), metrics on; once in `--auth auto` (measured
//! anonymously and with Basic credentials) and once in `--auth token`
//! (a bearer token fetched up front). Every workload runs against every
//! opponent in turn, the order rotated per workload, with the same schema2
//! image (2 layers), the only manifest kind every peer accepts. What a peer
//! cannot do is probed, not assumed, and named in the report.
//!
//! Must NEVER talk to anything but loopback, nor leave a process it started
//! running (every child is killed when its `Opponent` drops).

use crate::client::{self, Client, Mode, Target};
use crate::servers::{self, Mode2};
use crate::work::{self, Res, Stats};
use crate::Ctx;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const SCHEMA2_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const SCHEMA2_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The repository every opponent serves the image under (container-registry
/// takes exactly two path segments).
const REPO: &str = "peers/app";
/// container-registry's master password (it takes any user name).
const CR_PASSWORD: &str = "bench-peer-password";

/// One registry under test in this workload.
struct Opponent {
    name: String,
    target: Arc<Target>,
    pid: u32,
    /// Only for processes this workload started.
    child: Option<Child>,
    /// The probed workloads it cannot run.
    cannot: Vec<&'static str>,
}

impl Drop for Opponent {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A peer's binary: `$SOUTE_BENCH_PEERS/NAME`, `$PATH`, `~/.cache/soute-bench/bin/NAME`.
pub fn find_peer(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("SOUTE_BENCH_PEERS") {
        dirs.push(d.into());
    }
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(Path::new(&h).join(".cache/soute-bench/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A schema2 image: a small JSON config and two layers (1 KiB and 4 KiB).
struct Image {
    blobs: Vec<(Vec<u8>, String)>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(seed: u64) -> Image {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["SEED={seed}"]}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        )
        .into_bytes();
        let mut blobs = vec![(config.clone(), work::sha256_digest(&config))];
        for (i, size) in [1024usize, 4096].into_iter().enumerate() {
            let mut layer = vec![0u8; size];
            work::fill_random(&mut layer, seed.wrapping_mul(3) + i as u64 + 1);
            let d = work::sha256_digest(&layer);
            blobs.push((layer, d));
        }
        let layers: Vec<String> = blobs[1..]
            .iter()
            .map(|(b, d)| {
                format!(
                    r#"{{"mediaType":"{SCHEMA2_LAYER}","digest":"{d}","size":{}}}"#,
                    b.len()
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{SCHEMA2}","config":{{"mediaType":"{SCHEMA2_CONFIG}","digest":"{}","size":{}}},"layers":[{}]}}"#,
            blobs[0].1,
            blobs[0].0.len(),
            layers.join(",")
        )
        .into_bytes();
        Image { blobs, manifest }
    }

    /// As `docker push` does: per blob HEAD, POST, one PATCH with the body,
    /// an empty PUT with the digest; then the manifest PUT by tag.
    fn push(&self, c: &mut Client, repo: &str, tag: &str) -> Res<()> {
        for (data, digest) in &self.blobs {
            let r = c.req(
                "HEAD",
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                &[],
                Mode::Collect,
            )?;
            if r.status == 200 {
                continue;
            }
            docker_upload(c, repo, data, digest)?;
        }
        let r = c.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Content-Type", SCHEMA2)],
            &self.manifest,
            Mode::Collect,
        )?;
        want(&r, 201, "PUT manifest")
    }
}

fn want(r: &client::Resp, status: u16, what: &str) -> Res<()> {
    if r.status != status {
        return Err(format!(
            "{what}: status {} (wanted {status}): {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
        )
        .into());
    }
    Ok(())
}

/// POST, PATCH with the whole body (no Content-Range), PUT `?digest=`.
fn docker_upload(c: &mut Client, repo: &str, data: &[u8], digest: &str) -> Res<()> {
    let r = c.req(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        &[],
        Mode::Collect,
    )?;
    want(&r, 202, "POST upload")?;
    let loc = work::loc_path(r.header("location").ok_or("POST upload: no Location")?);
    let r = c.req(
        "PATCH",
        &loc,
        &[("Content-Type", "application/octet-stream")],
        data,
        Mode::Collect,
    )?;
    want(&r, 202, "PATCH upload")?;
    let loc = work::loc_path(r.header("location").ok_or("PATCH upload: no Location")?);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = c.req(
        "PUT",
        &format!("{loc}{sep}digest={digest}"),
        &[],
        &[],
        Mode::Collect,
    )?;
    want(&r, 201, "PUT upload")
}

/// `soute ARGS --data DATA`, `stdin` written to it; fails on a non-zero exit.
fn soute_cli(bin: &Path, data: &Path, args: &[&str], stdin: &str) -> Res<()> {
    let mut child = Command::new(bin)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!(
            "soute {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// The realistic soute: started on `data` with `flags`, then given users,
/// a group, a dozen rules and an upstream through the real CLI while it runs.
fn realistic_soute(cx: &Ctx, data: &Path, flags: &[&str], upstream: &str) -> Res<servers::Server> {
    let s = servers::start_soute_with(&cx.bin, data, Mode2::Plain, 0, flags);
    servers::wait_ready(&s.target, Duration::from_secs(10)).ok_or("soute did not start")?;
    let pass = format!("{}\n", servers::PASS);
    for user in ["site-admin", servers::USER, "alice", "bob"] {
        soute_cli(&cx.bin, data, &["user", "add", user], &pass)?;
    }
    soute_cli(&cx.bin, data, &["group", "add", "devs"], "")?;
    for user in ["alice", "bob"] {
        soute_cli(&cx.bin, data, &["group", "member", "add", "devs", user], "")?;
    }
    let rules: [(&str, &str, &str); 12] = [
        ("anonymous", "peers/**", "pull"),
        ("anonymous", "public/**", "pull"),
        ("authenticated", "peers/**", "pull"),
        ("authenticated", "hub/**", "pull"),
        (servers::USER, "peers/**", "pull,push"),
        (servers::USER, "small/**", "pull,push"),
        ("group:devs", "team/**", "pull,push"),
        ("group:devs", "team/*/release", "pull"),
        ("alice", "alice/**", "pull,push,delete"),
        ("bob", "bob/**", "pull,push,delete"),
        ("bob", "team/secret/**", "none"),
        (servers::USER, "**", "metrics"),
    ];
    for (who, pattern, actions) in rules {
        soute_cli(
            &cx.bin,
            data,
            &["access", "grant", who, pattern, actions],
            "",
        )?;
    }
    soute_cli(&cx.bin, data, &["upstream", "add", "hub", upstream], "")?;
    Ok(s)
}

/// A bearer token from soute's token service for `scopes` (Basic credentials).
fn bearer(target: &Arc<Target>, scopes: &[String]) -> Res<String> {
    let anon = Arc::new(Target {
        addr: target.addr,
        host: target.host.clone(),
        tls: None,
        auth: None,
    });
    let mut c = Client::new(anon);
    let r = c.req("GET", "/v2/", &[], &[], Mode::Collect)?;
    let challenge = r.header("www-authenticate").ok_or("no challenge")?;
    let service = challenge
        .split("service=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or("no service in the challenge")?;
    let mut path = format!("/v2/token?service={service}");
    for s in scopes {
        path.push_str(&format!("&scope={s}"));
    }
    let mut c = Client::new(with_auth(
        target,
        client::basic_auth(servers::USER, servers::PASS),
    ));
    let r = c.get_ok(&path, &[], 200)?;
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    Ok(v["token"].as_str().ok_or("no token")?.to_string())
}

fn with_auth(t: &Arc<Target>, auth: String) -> Arc<Target> {
    Arc::new(Target {
        addr: t.addr,
        host: t.host.clone(),
        tls: None,
        auth: Some(auth),
    })
}

fn start_child(mut cmd: Command, log: &Path) -> Res<Child> {
    let log = std::fs::File::create(log)?;
    Ok(cmd.stdout(Stdio::null()).stderr(log).spawn()?)
}

fn start_container_registry(bin: &Path, dir: &Path) -> Res<Opponent> {
    let port = servers::free_port();
    std::fs::create_dir_all(dir.join("storage"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--storage")
        .arg(dir.join("storage"))
        .arg("--password")
        .arg(CR_PASSWORD)
        .env("RUST_LOG", "error");
    let child = start_child(cmd, &dir.join("container-registry.log"))?;
    let addr = format!("127.0.0.1:{port}").parse()?;
    let target = with_auth(
        &Target::plain(addr),
        client::basic_auth("bench", CR_PASSWORD),
    );
    opponent("container-registry", target, child)
}

fn start_nora(bin: &Path, dir: &Path) -> Res<Opponent> {
    let port = servers::free_port();
    std::fs::create_dir_all(dir.join("storage"))?;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhost = \"127.0.0.1\"\nport = {port}\n\n[storage]\npath = \"{}\"\n\n[rate_limit]\nenabled = false\n\n[docker]\nupstreams = []\n",
            dir.join("storage").display()
        ),
    )?;
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env("NORA_CONFIG_PATH", &config)
        .env("NORA_RATE_LIMIT_ENABLED", "false")
        .env("RUST_LOG", "error");
    let child = start_child(cmd, &dir.join("nora.log"))?;
    let addr = format!("127.0.0.1:{port}").parse()?;
    opponent("nora", Target::plain(addr), child)
}

fn opponent(name: &str, target: Arc<Target>, child: Child) -> Res<Opponent> {
    let pid = child.id();
    let o = Opponent {
        name: name.into(),
        target,
        pid,
        child: Some(child),
        cannot: Vec::new(),
    };
    servers::wait_ready(&o.target, Duration::from_secs(30))
        .ok_or_else(|| format!("{name} did not answer /v2/"))?;
    Ok(o)
}

/// Which of the bench's standard requests the opponent refuses.
fn probe(o: &mut Opponent, img: &Image) -> Res<()> {
    let mut c = Client::new(o.target.clone());
    let head = c.req(
        "HEAD",
        &format!("/v2/{REPO}/manifests/latest"),
        &[("Accept", work::ACCEPT)],
        &[],
        Mode::Collect,
    )?;
    if head.status != 200 {
        o.cannot.push("manifest HEAD");
    }
    let tags = c.req(
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        &[],
        &[],
        Mode::Collect,
    )?;
    if tags.status != 200 {
        o.cannot.push("tags list");
    }
    let cat = c.req("GET", "/v2/_catalog", &[], &[], Mode::Collect)?;
    if cat.status != 200 {
        o.cannot.push("catalog");
    }
    let small = crate::work::SmallImage::new(0x9ee7);
    if small.push(&mut c, "peers/oci", "probe").is_err() {
        o.cannot
            .push("OCI manifests + monolithic POST/PUT uploads (the bench's own push flow)");
    }
    let (data, digest) = &img.blobs[1];
    let mut c = Client::new(o.target.clone());
    if work::push_chunked(&mut c, "peers/chunked", data, digest, 512).is_err() {
        o.cannot.push("chunked uploads (PATCH with Content-Range)");
    }
    Ok(())
}

/// One measured figure per opponent, in opponent order.
struct Line {
    label: String,
    unit: &'static str,
    values: Vec<Option<f64>>,
    /// Higher is better (rates) or lower (latencies).
    higher: bool,
}

pub fn peers(cx: &mut Ctx, phase: &[&crate::servers::Server]) -> Res<()> {
    let found: Vec<(&str, Option<PathBuf>)> = ["container-registry", "nora"]
        .into_iter()
        .map(|n| (n, find_peer(n)))
        .collect();
    for (n, p) in &found {
        if p.is_none() {
            cx.rep.note(format!(
                "peers: {n} not found ($SOUTE_BENCH_PEERS, PATH, ~/.cache/soute-bench/bin); README's benchmark section says how to install it"
            ));
        }
    }
    let dist = phase.get(1).ok_or("peers runs in the plain phase")?;
    let dir = cx.root.join("peers");
    std::fs::create_dir_all(&dir)?;
    eprintln!("[peers] starting the realistic soute (auto and token) and the peers found");
    let upstream = format!("http://{}", dist.target.addr);
    let auto = realistic_soute(cx, &dir.join("soute-auto"), &[], &upstream)?;
    let token = realistic_soute(
        cx,
        &dir.join("soute-token"),
        &["--auth", "token"],
        &upstream,
    )?;
    let basic = client::basic_auth(servers::USER, servers::PASS);
    let anon_t = Arc::new(Target {
        addr: auto.target.addr,
        host: auto.target.host.clone(),
        tls: None,
        auth: None,
    });
    let small_scopes: Vec<String> = (0..8)
        .map(|k| format!("repository:small/p{k}:pull,push"))
        .chain([format!("repository:{REPO}:pull,push")])
        .collect();
    let tok = bearer(&token.target, &small_scopes)?;
    let mut opp: Vec<Opponent> = vec![
        Opponent {
            name: "soute anonymous".into(),
            target: anon_t,
            pid: auto.pid(),
            child: None,
            cannot: Vec::new(),
        },
        Opponent {
            name: "soute Basic".into(),
            target: with_auth(&auto.target, basic),
            pid: auto.pid(),
            child: None,
            cannot: Vec::new(),
        },
        Opponent {
            name: "soute token".into(),
            target: with_auth(&token.target, format!("Bearer {tok}")),
            pid: token.pid(),
            child: None,
            cannot: Vec::new(),
        },
        Opponent {
            name: "distribution".into(),
            target: dist.target.clone(),
            pid: dist.pid(),
            child: None,
            cannot: Vec::new(),
        },
    ];
    for (name, path) in &found {
        let Some(p) = path else { continue };
        let d = dir.join(name);
        std::fs::create_dir_all(&d)?;
        let o = match *name {
            "container-registry" => start_container_registry(p, &d),
            _ => start_nora(p, &d),
        };
        match o {
            Ok(o) => opp.push(o),
            Err(e) => cx.rep.note(format!("peers: {name} did not start: {e}")),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut lines = vec![Line {
        label: "RSS after start".into(),
        unit: "MB",
        values: opp
            .iter()
            .map(|o| Some(servers::mem_status(o.pid).0 as f64 / 1024.0))
            .collect(),
        higher: false,
    }];
    let img = Image::new(0x9ee5);
    // The anonymous soute cannot push: the Basic one pushed for both.
    for o in opp.iter().filter(|o| o.name != "soute anonymous") {
        img.push(&mut Client::new(o.target.clone()), REPO, "latest")
            .map_err(|e| format!("{}: {e}", o.name))?;
    }
    for o in opp.iter_mut().skip(3) {
        probe(o, &img)?;
    }
    manifest_lines(cx, &opp, &mut lines)?;
    pull_lines(cx, &opp, &mut lines)?;
    small_lines(cx, &opp, &mut lines)?;
    lines.push(Line {
        label: "RSS peak (VmHWM) after the workloads".into(),
        unit: "MB",
        values: opp
            .iter()
            .map(|o| Some(servers::mem_status(o.pid).1 as f64 / 1024.0))
            .collect(),
        higher: false,
    });
    let names: Vec<String> = opp.iter().map(|o| o.name.clone()).collect();
    let cannot: Vec<(String, Vec<&str>)> = opp
        .iter()
        .filter(|o| !o.cannot.is_empty())
        .map(|o| (o.name.clone(), o.cannot.clone()))
        .collect();
    cx.rep.sections.push(render(&names, &lines, &cannot));
    cx.rep.peers.push(serde_json::json!({
        "opponents": names,
        "cannot": cannot.iter().map(|(n, c)| serde_json::json!({"name": n, "cannot": c})).collect::<Vec<_>>(),
        "rows": lines.iter().map(|l| serde_json::json!({"label": l.label, "unit": l.unit, "values": l.values})).collect::<Vec<_>>(),
    }));
    drop(opp);
    auto.stop();
    token.stop();
    Ok(())
}

/// `f` for each opponent, the order rotated by `turn` (the shared machine's
/// drift then falls on a different one each time); results in opponent order.
fn each<T>(opp: &[Opponent], turn: usize, mut f: impl FnMut(&Opponent) -> Res<T>) -> Res<Vec<T>> {
    let n = opp.len();
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for k in 0..n {
        let i = (k + turn) % n;
        out[i] = Some(f(&opp[i])?);
    }
    Ok(out.into_iter().map(|v| v.expect("ran")).collect())
}

fn manifest_lines(cx: &Ctx, opp: &[Opponent], lines: &mut Vec<Line>) -> Res<()> {
    for (turn, n) in [8usize, 32].into_iter().enumerate() {
        eprintln!("[peers] manifest GET by tag, {n} connections");
        let st: Vec<Stats> = each(opp, turn, |o| {
            work::run_clients(
                &o.target,
                n,
                Duration::from_secs_f64(cx.sz.req_secs),
                |c, _, _| work::get_manifest(c, REPO, "latest", false),
            )
            .map_err(|e| format!("{}: {e}", o.name).into())
        })?;
        let label = format!("manifest GET by tag (schema2), {n} connections");
        lines.push(Line {
            label: label.clone(),
            unit: "req/s",
            values: st.iter().map(|s| Some(s.rate())).collect(),
            higher: true,
        });
        lines.push(Line {
            label: format!("{label}, p50"),
            unit: "ms",
            values: st.iter().map(|s| Some(s.p50_ms)).collect(),
            higher: false,
        });
        lines.push(Line {
            label: format!("{label}, p99"),
            unit: "ms",
            values: st.iter().map(|s| Some(s.p99_ms)).collect(),
            higher: false,
        });
    }
    Ok(())
}

fn pull_lines(cx: &mut Ctx, opp: &[Opponent], lines: &mut Vec<Line>) -> Res<()> {
    let Some(blob) = cx.blob.as_mut() else {
        return Ok(());
    };
    let mib = blob.data.len() >> 20;
    eprintln!("[peers] {mib} MiB blob: push (docker flow) and warm pull");
    let digest = blob.unique(0x9ee6);
    let data = &blob.data;
    let mut pushed = Vec::new();
    for o in opp {
        // soute anonymous reads what soute Basic pushed (same server).
        if o.name == "soute anonymous" {
            pushed.push(true);
            continue;
        }
        let r = docker_upload(&mut Client::new(o.target.clone()), REPO, data, &digest);
        pushed.push(r.is_ok());
    }
    let rates = each(opp, 0, |o| {
        let i = opp.iter().position(|x| x.name == o.name).unwrap_or(0);
        if !pushed[i] {
            return Ok(None);
        }
        let mut c = Client::new(o.target.clone());
        let mut best: f64 = 0.0;
        for _ in 0..2 {
            let t0 = Instant::now();
            let n = work::pull(&mut c, REPO, &digest)?;
            if n != data.len() as u64 {
                return Err(format!("{}: pulled {n} bytes", o.name).into());
            }
            best = best.max(n as f64 / crate::report::MB / t0.elapsed().as_secs_f64());
        }
        Ok(Some(best))
    })?;
    lines.push(Line {
        label: format!("blob pull {mib} MiB warm (plain)"),
        unit: "MB/s",
        values: rates,
        higher: true,
    });
    Ok(())
}

fn small_lines(cx: &Ctx, opp: &[Opponent], lines: &mut Vec<Line>) -> Res<()> {
    eprintln!("[peers] small images, docker push flow, 8 clients");
    let st = each(opp, 1, |o| {
        if o.name == "soute anonymous" {
            return Ok(None);
        }
        work::run_clients(
            &o.target,
            8,
            Duration::from_secs_f64(cx.sz.small_secs),
            |c, k, i| {
                let img = Image::new((7u64 << 40) | ((k as u64) << 32) | i);
                img.push(c, &format!("small/p{k}"), &format!("t{i}"))
            },
        )
        .map(Some)
        .map_err(|e| format!("{}: {e}", o.name).into())
    })?;
    lines.push(Line {
        label: "small images (schema2, docker push flow), 8 clients".into(),
        unit: "img/s",
        values: st.iter().map(|s| s.as_ref().map(Stats::rate)).collect(),
        higher: true,
    });
    Ok(())
}

/// The figures, then each soute mode's ratio against each other opponent
/// (>1 = soute better: rates soute/peer, latencies peer/soute).
fn render(names: &[String], lines: &[Line], cannot: &[(String, Vec<&str>)]) -> String {
    let fmt = crate::report::fmt;
    let mut out = format!(
        "\n### soute vs peers\n\n| metric | unit | {} |\n|---|---|",
        names.join(" | ")
    );
    out.push_str(&"---:|".repeat(names.len()));
    out.push('\n');
    for l in lines {
        let v: Vec<String> = l.values.iter().map(|x| fmt(*x)).collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            l.label,
            l.unit,
            v.join(" | ")
        ));
    }
    let souts: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with("soute"))
        .collect();
    let others: Vec<usize> = (0..names.len())
        .filter(|&i| !names[i].starts_with("soute"))
        .collect();
    out.push_str("\nratios (>1: soute better; rates soute/peer, latencies and memory peer/soute)\n\n| metric | soute mode |");
    for &o in &others {
        out.push_str(&format!(" vs {} |", names[o]));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(others.len()));
    out.push('\n');
    for l in lines {
        for &s in &souts {
            let Some(sv) = l.values[s] else { continue };
            out.push_str(&format!("| {} | {} |", l.label, names[s]));
            for &o in &others {
                let r = match l.values[o] {
                    Some(ov) if ov > 0.0 && sv > 0.0 => {
                        let x = if l.higher { sv / ov } else { ov / sv };
                        format!(" {x:.2} |")
                    }
                    _ => " - |".into(),
                };
                out.push_str(&r);
            }
            out.push('\n');
        }
    }
    for (n, c) in cannot {
        out.push_str(&format!("\n{n} cannot run: {}", c.join("; ")));
    }
    out.push('\n');
    out
}
