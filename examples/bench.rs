//! soute vs CNCF distribution, same workloads, same machine, one run.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- [--quick] [--only W[,W]] [--json PATH] [--dir DIR] [--soute BIN]
//! ```
//! Workloads: null, machine, start, push, pull, small, manifest, tags, catalog, memory.
//! Only ratios within one run are meaningful: the machine is shared.

#[path = "bench/client.rs"]
mod client;
#[path = "bench/servers.rs"]
mod servers;
#[path = "bench/work.rs"]
mod work;

use client::Mode;
use servers::{Kind, Mode2, Server};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use work::{BigBlob, Res, SmallImage, Stats};

const ALL: &[&str] = &[
    "null", "machine", "start", "push", "pull", "small", "manifest", "tags", "catalog", "memory",
];
const MB: f64 = 1_000_000.0;

struct Opts {
    quick: bool,
    only: Vec<String>,
    json: PathBuf,
    dir: Option<PathBuf>,
    soute: PathBuf,
}

struct Sizes {
    blob: usize,
    chunk: usize,
    tags: u64,
    repos: u64,
    small_secs: f64,
    req_secs: f64,
    list_reps: usize,
}

impl Opts {
    fn sel(&self, w: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == w)
    }
}

#[derive(Clone, Copy)]
enum Target {
    /// soute/distribution at least this.
    RatioMin(f64),
    /// soute/distribution at most this.
    RatioMax(f64),
    /// soute's own figure at most this.
    AbsMax(f64),
    /// soute's own figure at least this.
    AbsMin(f64),
}

struct Row {
    key: String,
    label: String,
    unit: &'static str,
    soute: Option<f64>,
    dist: Option<f64>,
    target: Option<Target>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        match (self.soute, self.dist) {
            (Some(s), Some(d)) if d != 0.0 => Some(s / d),
            _ => None,
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            None => String::new(),
            Some(Target::RatioMin(x)) => format!("ratio >= {x}"),
            Some(Target::RatioMax(x)) => format!("ratio <= {x}"),
            Some(Target::AbsMax(x)) => format!("soute <= {x}"),
            Some(Target::AbsMin(x)) => format!("soute >= {x}"),
        }
    }

    /// Some(true) when met; the factor by which it is off otherwise.
    fn verdict(&self) -> Option<(bool, f64)> {
        let (v, bound, higher) = match self.target? {
            Target::RatioMin(x) => (self.ratio()?, x, true),
            Target::RatioMax(x) => (self.ratio()?, x, false),
            Target::AbsMax(x) => (self.soute?, x, false),
            Target::AbsMin(x) => (self.soute?, x, true),
        };
        let met = if higher { v >= bound } else { v <= bound };
        let off = if higher { bound / v } else { v / bound };
        Some((met, off))
    }
}

struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Report {
    fn add(
        &mut self,
        key: &str,
        label: &str,
        unit: &'static str,
        s: Option<f64>,
        d: Option<f64>,
        t: Option<Target>,
    ) {
        let row = Row {
            key: key.into(),
            label: label.into(),
            unit,
            soute: s,
            dist: d,
            target: t,
        };
        eprintln!("  {:<44} {:>12} {:>12}", label, fmt(s), fmt(d));
        self.rows.push(row);
    }

    fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("  note: {n}");
        self.notes.push(n);
    }
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

fn parse_opts() -> Res<Opts> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        println!(
            "usage: cargo run --release --example bench -- [--quick] [--only W[,W...]] [--json PATH] [--dir DIR] [--soute BIN]\nworkloads: {}",
            ALL.join(", ")
        );
        std::process::exit(0);
    }
    let quick = args.contains("--quick");
    let only: Vec<String> = args
        .opt_value_from_str::<_, String>("--only")?
        .map(|s| s.split(',').map(|w| w.trim().to_string()).collect())
        .unwrap_or_default();
    for w in &only {
        if !ALL.contains(&w.as_str()) {
            return Err(format!("unknown workload {w:?}; one of {}", ALL.join(", ")).into());
        }
    }
    let json = args
        .opt_value_from_str("--json")?
        .unwrap_or_else(|| PathBuf::from("target/bench.json"));
    let dir = args.opt_value_from_str("--dir")?;
    let soute = args
        .opt_value_from_str("--soute")?
        .unwrap_or_else(|| PathBuf::from("target/release/soute"));
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments {rest:?}").into());
    }
    Ok(Opts {
        quick,
        only,
        json,
        dir,
        soute,
    })
}

fn machine_info() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "cpu": cpu, "cores": cores, "mem_gib": mem_kb as f64 / 1048576.0,
        "kernel": kernel.trim(),
    })
}

fn sync_disks() {
    let _ = std::process::Command::new("sync").status();
}

fn fsync_write_rate(dir: &Path, size: usize) -> Res<f64> {
    let path = dir.join("fsync-probe");
    let buf = vec![0xa5u8; 1 << 20];
    sync_disks();
    let start = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len());
        f.write_all(&buf[..n])?;
        left -= n;
    }
    f.sync_all()?;
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(size as f64 / MB / secs)
}

/// Start-to-first-200 on /v2/, median of `runs` starts (the first on an empty folder).
fn start_time(kind: Kind, bin: &Path, root: &Path, runs: usize) -> Res<f64> {
    let data = root.join(format!("start-{}", kind.name()));
    std::fs::create_dir_all(&data)?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let port = servers::free_port();
        let addr = format!("127.0.0.1:{port}").parse()?;
        let target = client::Target::plain(addr);
        let t0 = Instant::now();
        let mut child = match kind {
            Kind::Soute => std::process::Command::new(bin)
                .args(["serve", "--data"])
                .arg(data.join("soute"))
                .args(["--listen", &format!("127.0.0.1:{port}"), "--tls", "off"])
                .args(["--log-level", "error"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?,
            Kind::Distribution => {
                let cfg = servers::distribution_config(&data, &data.join("dist"), port, None);
                std::process::Command::new(servers::DISTRIBUTION)
                    .arg("serve")
                    .arg(cfg)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()?
            }
        };
        let ready = servers::wait_ready(&target, Duration::from_secs(20)).map(|_| t0.elapsed());
        let _ = child.kill();
        let _ = child.wait();
        times.push(ready.ok_or("server did not start")?.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Push a 1 GiB-class blob; returns (MB/s, server CPU seconds per GB).
fn timed_push(
    srv: &Server,
    blob: &mut BigBlob,
    tag: u64,
    repo: &str,
    chunk: Option<usize>,
) -> Res<(f64, f64, String)> {
    let digest = blob.unique(tag);
    sync_disks();
    let mut c = srv.client();
    c.get_ok("/v2/", &[], 200)?;
    let cpu0 = servers::cpu_seconds(srv.pid());
    let t0 = Instant::now();
    match chunk {
        None => work::push_monolithic(&mut c, repo, &blob.data, &digest)?,
        Some(n) => work::push_chunked(&mut c, repo, &blob.data, &digest, n)?,
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = servers::cpu_seconds(srv.pid()) - cpu0;
    let gb = blob.data.len() as f64 / 1e9;
    Ok((gb * 1000.0 / secs, cpu / gb, digest))
}

/// Pull a blob twice on one connection; returns (best MB/s, server CPU seconds per GB).
fn timed_pull(srv: &Server, repo: &str, digest: &str, size: usize) -> Res<(f64, f64)> {
    let mut c = srv.client();
    c.get_ok("/v2/", &[], 200)?;
    // Best of two: the first read may come from disk for one server and not the other.
    let mut best: f64 = 0.0;
    let cpu0 = servers::cpu_seconds(srv.pid());
    for _ in 0..2 {
        let t0 = Instant::now();
        let n = work::pull(&mut c, repo, digest)?;
        let secs = t0.elapsed().as_secs_f64();
        if n != size as u64 {
            return Err(format!("pulled {n} bytes, expected {size}").into());
        }
        best = best.max(size as f64 / MB / secs);
    }
    let cpu = servers::cpu_seconds(srv.pid()) - cpu0;
    Ok((best, cpu / (2.0 * size as f64 / 1e9)))
}

fn small_images(srv: &Server, clients: usize, secs: f64, run: u64) -> Res<Stats> {
    work::run_clients(
        &srv.target,
        clients,
        Duration::from_secs_f64(secs),
        |c, k, i| {
            let seed = (run << 48) | ((k as u64) << 32) | i;
            let img = SmallImage::new(seed);
            img.push(c, &format!("small/r{run}c{k}"), &format!("t{i}"))
        },
    )
}

fn manifest_reqs(srv: &Server, clients: usize, secs: f64, head: bool) -> Res<Stats> {
    work::run_clients(
        &srv.target,
        clients,
        Duration::from_secs_f64(secs),
        |c, _, _| work::get_manifest(c, "bench/manifest", "latest", head),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times a list (paged and whole) `reps` times; checks it equals `expected`.
fn timed_list(
    srv: &Server,
    first_paged: &str,
    whole: &str,
    key: &str,
    expected: &[String],
    reps: usize,
) -> Res<(f64, f64, usize)> {
    let mut c = srv.client();
    let (mut paged_ms, mut whole_ms) = (Vec::new(), Vec::new());
    let mut pages = 0;
    for _ in 0..reps {
        let t0 = Instant::now();
        let (items, p) = work::paged_list(&mut c, first_paged, key)?;
        paged_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        pages = p;
        check_list(srv.kind, "paged", &items, expected)?;
        let t0 = Instant::now();
        let (items, _) = work::paged_list(&mut c, whole, key)?;
        whole_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        check_list(srv.kind, "whole", &items, expected)?;
    }
    Ok((median(paged_ms), median(whole_ms), pages))
}

/// soute must return exactly `expected` (lexical order, no duplicates).
/// distribution is held to the same set; an order other than lexical is noted.
fn check_list(kind: Kind, how: &str, got: &[String], expected: &[String]) -> Res<()> {
    let mut sorted = got.to_vec();
    sorted.sort();
    let same_set = sorted == expected;
    if got == expected || (kind == Kind::Distribution && same_set) {
        if got != expected {
            unsorted_note(kind, how);
        }
        return Ok(());
    }
    let first_diff = got.iter().zip(expected).position(|(a, b)| a != b);
    Err(format!(
        "{} {how} list wrong: {} entries, expected {}; first difference at {first_diff:?}",
        kind.name(),
        got.len(),
        expected.len()
    )
    .into())
}

static UNSORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn unsorted_note(kind: Kind, how: &str) {
    let n = format!(
        "{} returned the {how} list complete but not in lexical order",
        kind.name()
    );
    let mut v = UNSORTED.lock().unwrap_or_else(|p| p.into_inner());
    if !v.contains(&n) {
        v.push(n);
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let opts = parse_opts()?;
    let sz = if opts.quick {
        Sizes {
            blob: 128 << 20,
            chunk: 16 << 20,
            tags: 1000,
            repos: 200,
            small_secs: 1.0,
            req_secs: 1.0,
            list_reps: 3,
        }
    } else {
        Sizes {
            blob: 1 << 30,
            chunk: 64 << 20,
            tags: 10_000,
            repos: 1000,
            small_secs: 4.0,
            req_secs: 3.0,
            list_reps: 5,
        }
    };
    let bin = opts.soute.clone();
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        )
        .into());
    }
    if !Path::new(servers::DISTRIBUTION).exists() {
        return Err(format!(
            "{} is missing: apt-get install docker-registry",
            servers::DISTRIBUTION
        )
        .into());
    }
    let tmp = match &opts.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let root = tmp.path().to_path_buf();
    let started = Instant::now();
    let mut rep = Report {
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let mut client_ceiling = serde_json::Map::new();
    let mut machine = serde_json::Map::new();
    eprintln!(
        "bench: {} run in {}",
        if opts.quick { "quick" } else { "full" },
        root.display()
    );
    let mib = sz.blob >> 20;

    // ------------------------------------------------------------- client ceiling
    if opts.sel("null") {
        eprintln!("[null] client ceiling against an in-process null server");
        let plain = servers::null_server(false);
        let tls = servers::null_server(true);
        let junk = vec![0x11u8; sz.blob];
        let mut c = client::Client::new(plain.target.clone());
        let t0 = Instant::now();
        let r = c.req("PUT", "/null", &[], &junk, Mode::Collect)?;
        let push = sz.blob as f64 / MB / t0.elapsed().as_secs_f64();
        assert_eq!(r.status, 200);
        for (name, target) in [("pull", &plain.target), ("pull_tls", &tls.target)] {
            let mut c = client::Client::new(target.clone());
            let t0 = Instant::now();
            let r = c.req(
                "GET",
                &format!("/blob/{}", sz.blob),
                &[],
                &[],
                Mode::Discard,
            )?;
            let rate = r.len as f64 / MB / t0.elapsed().as_secs_f64();
            client_ceiling.insert(format!("{name}_mb_s"), rate.into());
        }
        client_ceiling.insert("push_mb_s".into(), push.into());
        for (name, target) in [("get", &plain.target), ("get_tls_auth", &tls.target)] {
            for n in [1, 8, 32] {
                let st = work::run_clients(
                    target,
                    n,
                    Duration::from_secs_f64(sz.req_secs / 2.0),
                    |c, _, _| {
                        let r = c.req(
                            "GET",
                            "/v2/x/manifests/latest",
                            &[("Accept", work::ACCEPT)],
                            &[],
                            Mode::Collect,
                        )?;
                        if r.status != 200 {
                            return Err("null server".into());
                        }
                        Ok(())
                    },
                )?;
                client_ceiling.insert(format!("{name}_c{n}_req_s"), st.rate().into());
            }
        }
        eprintln!("  {}", serde_json::Value::Object(client_ceiling.clone()));
    }

    // ------------------------------------------------------------- machine
    let mut blob: Option<BigBlob> = None;
    if opts.sel("machine") || opts.sel("push") || opts.sel("pull") || opts.sel("memory") {
        eprintln!("[machine] generating {mib} MiB and hashing it");
        let b = BigBlob::new(sz.blob);
        let sha = (sz.blob - 64) as f64 / MB / b.hash_secs;
        machine.insert("sha256_mb_s".into(), sha.into());
        blob = Some(b);
    }
    if opts.sel("machine") {
        let w = fsync_write_rate(&root, sz.blob)?;
        machine.insert("fsync_write_mb_s".into(), w.into());
        eprintln!("  {}", serde_json::Value::Object(machine.clone()));
    }

    // ------------------------------------------------------------- start, size
    if opts.sel("start") {
        eprintln!("[start] binary size and start-to-first-200");
        let size = std::fs::metadata(&bin)?.len() as f64 / MB;
        let dsize = std::fs::metadata(servers::DISTRIBUTION)?.len() as f64 / MB;
        rep.add(
            "binary_mb",
            "binary size",
            "MB",
            Some(size),
            Some(dsize),
            Some(Target::AbsMax(10.0)),
        );
        let s = start_time(Kind::Soute, &bin, &root, 7)?;
        let d = start_time(Kind::Distribution, &bin, &root, 7)?;
        rep.add(
            "start_ms",
            "start to first 200 on /v2/ (median of 7)",
            "ms",
            Some(s),
            Some(d),
            Some(Target::AbsMax(100.0)),
        );
    }

    // ------------------------------------------------------------- plain phase
    let need_plain = [
        "push", "pull", "small", "manifest", "tags", "catalog", "memory",
    ]
    .iter()
    .any(|w| opts.sel(w));
    let soute_data = root.join("soute-data");
    let dist_root = root.join("dist-data");
    let dist_dir = root.join("dist-conf");
    std::fs::create_dir_all(&dist_dir)?;
    let dist_port = servers::free_port();
    let soute_port = servers::free_port();
    let mut big_digests: Vec<(Kind, String)> = Vec::new();
    let base_image = SmallImage::new(0xba5e);
    if need_plain {
        let soute = servers::start_soute(&bin, &soute_data, Mode2::Plain, soute_port);
        servers::wait_ready(&soute.target, Duration::from_secs(10)).ok_or("soute did not start")?;
        let dist = servers::start_distribution(&dist_dir, &dist_root, None, dist_port);
        let both = [&soute, &dist];
        std::thread::sleep(Duration::from_millis(500));
        let idle: Vec<(u64, u64, u64)> =
            both.iter().map(|s| servers::mem_status(s.pid())).collect();
        rep.add(
            "rss_idle_mb",
            "RSS idle",
            "MB",
            Some(idle[0].0 as f64 / 1024.0),
            Some(idle[1].0 as f64 / 1024.0),
            Some(Target::AbsMax(6.0)),
        );
        rep.add(
            "threads_idle",
            "threads idle",
            "",
            Some(idle[0].2 as f64),
            Some(idle[1].2 as f64),
            None,
        );
        for s in both {
            base_image.push(&mut s.client(), "bench/manifest", "latest")?;
        }

        if opts.sel("push") || opts.sel("pull") {
            eprintln!("[push] {mib} MiB blob");
            let blob = blob.as_mut().ok_or("no blob")?;
            let mut res = Vec::new();
            for (i, s) in both.iter().enumerate() {
                let (mb, cpu, digest) = timed_push(s, blob, 1 + i as u64, "bench/big", None)?;
                big_digests.push((s.kind, digest));
                res.push((mb, cpu));
            }
            let fsync_rate = machine.get("fsync_write_mb_s").and_then(|v| v.as_f64());
            report_push(
                &mut rep,
                "mono",
                &format!("push {mib} MiB monolithic"),
                "monolithic",
                &res,
                fsync_rate,
            );
            if opts.sel("push") {
                let mut res = Vec::new();
                for (i, s) in both.iter().enumerate() {
                    let (mb, cpu, _) =
                        timed_push(s, blob, 10 + i as u64, "bench/chunked", Some(sz.chunk))?;
                    res.push((mb, cpu));
                }
                let label = format!("push {mib} MiB chunked ({} MiB PATCHes)", sz.chunk >> 20);
                report_push(&mut rep, "chunked", &label, "chunked", &res, fsync_rate);
            }
        }
        if opts.sel("pull") {
            eprintln!("[pull] plain");
            let mut r = Vec::new();
            for (s, (_, d)) in both.iter().zip(&big_digests) {
                r.push(timed_pull(s, "bench/big", d, sz.blob)?);
            }
            rep.add(
                "pull_mb_s",
                &format!("pull {mib} MiB (plain HTTP)"),
                "MB/s",
                Some(r[0].0),
                Some(r[1].0),
                Some(Target::RatioMin(1.0)),
            );
            rep.add(
                "pull_cpu_s_per_gb",
                "server CPU per GB pulled (plain)",
                "s/GB",
                Some(r[0].1),
                Some(r[1].1),
                None,
            );
        }
        if opts.sel("small") {
            for (run, n) in [1usize, 8, 32].into_iter().enumerate() {
                eprintln!("[small] {n} clients");
                let mut st = Vec::new();
                for s in both {
                    st.push(small_images(s, n, sz.small_secs, run as u64 + 1)?);
                }
                let t = if n == 8 {
                    Some(Target::RatioMin(5.0))
                } else {
                    None
                };
                rep.add(
                    &format!("small_c{n}_img_s"),
                    &format!("small images, {n} clients"),
                    "img/s",
                    Some(st[0].rate()),
                    Some(st[1].rate()),
                    t,
                );
                rep.add(
                    &format!("small_c{n}_p50_ms"),
                    &format!("small images, {n} clients, p50"),
                    "ms",
                    Some(st[0].p50_ms),
                    Some(st[1].p50_ms),
                    None,
                );
                rep.add(
                    &format!("small_c{n}_p99_ms"),
                    &format!("small images, {n} clients, p99"),
                    "ms",
                    Some(st[0].p99_ms),
                    Some(st[1].p99_ms),
                    None,
                );
            }
        }
        if opts.sel("manifest") {
            manifest_rows(&mut rep, &both, "plain", &sz, 5.0)?;
        }
        if opts.sel("tags") {
            eprintln!("[tags] setting up {} tags", sz.tags);
            let mut expected: Vec<String> = (0..sz.tags).map(|i| format!("v{i}")).collect();
            expected.sort();
            let mut rates = Vec::new();
            for s in both {
                let mut c = s.client();
                base_image.mount_and_tag(&mut c, "bench/tags", "bench/manifest", "v0")?;
                rates.push(work::parallel(&s.target, 8, sz.tags - 1, |c, i| {
                    base_image.put_manifest(c, "bench/tags", &format!("v{}", i + 1))
                })?);
            }
            rep.add(
                "tag_put_s",
                "manifest PUT by tag, 8 clients (setup)",
                "req/s",
                Some(rates[0]),
                Some(rates[1]),
                None,
            );
            let mut res = Vec::new();
            for s in both {
                res.push(timed_list(
                    s,
                    "/v2/bench/tags/tags/list?n=100",
                    "/v2/bench/tags/tags/list",
                    "tags",
                    &expected,
                    sz.list_reps,
                )?);
            }
            rep.add(
                "tags_paged_ms",
                &format!("tags list of {} tags, paged n=100", sz.tags),
                "ms",
                Some(res[0].0),
                Some(res[1].0),
                Some(Target::RatioMax(0.2)),
            );
            rep.add(
                "tags_whole_ms",
                &format!("tags list of {} tags, whole", sz.tags),
                "ms",
                Some(res[0].1),
                Some(res[1].1),
                Some(Target::RatioMax(0.2)),
            );
            for n in UNSORTED.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
                rep.note(format!("tags: {n}"));
            }
            rep.add(
                "tags_pages",
                "tags list: pages fetched when paging n=100",
                "",
                Some(res[0].2 as f64),
                Some(res[1].2 as f64),
                None,
            );
            if res[1].2 == 1 {
                rep.note("distribution ignored n=100 on the tags list and returned every tag in one page");
            }
        }
        if opts.sel("catalog") {
            eprintln!("[catalog] setting up {} repositories", sz.repos);
            for s in both {
                work::parallel(&s.target, 8, sz.repos, |c, i| {
                    base_image.mount_and_tag(c, &format!("cat/r{i}"), "bench/manifest", "latest")
                })?;
            }
            let mut res = Vec::new();
            for s in both {
                // Every repository the server lists must include ours, sorted, no duplicates.
                let mut c = s.client();
                let (listed, _) = work::paged_list(&mut c, "/v2/_catalog?n=100", "repositories")?;
                let mut expected = listed.clone();
                expected.sort();
                expected.dedup();
                let ours = (0..sz.repos)
                    .filter(|i| expected.binary_search(&format!("cat/r{i}")).is_ok())
                    .count() as u64;
                if ours != sz.repos {
                    return Err(format!(
                        "{}: catalog lists {ours} of {} repositories",
                        s.kind.name(),
                        sz.repos
                    )
                    .into());
                }
                if listed != expected {
                    return Err(
                        format!("{}: catalog not sorted or has duplicates", s.kind.name()).into(),
                    );
                }
                // Whole: the fewest requests the server allows (distribution caps n at 1000).
                let whole = match s.kind {
                    Kind::Soute => "/v2/_catalog",
                    Kind::Distribution => "/v2/_catalog?n=1000",
                };
                let (p, w, pages) = timed_list(
                    s,
                    "/v2/_catalog?n=100",
                    whole,
                    "repositories",
                    &expected,
                    sz.list_reps,
                )?;
                res.push((p, w, pages, expected.len()));
            }
            rep.add(
                "catalog_paged_ms",
                &format!("_catalog over {}+ repositories, paged n=100", sz.repos),
                "ms",
                Some(res[0].0),
                Some(res[1].0),
                Some(Target::RatioMax(0.2)),
            );
            rep.add(
                "catalog_whole_ms",
                &format!("_catalog over {}+ repositories, whole", sz.repos),
                "ms",
                Some(res[0].1),
                Some(res[1].1),
                Some(Target::RatioMax(0.2)),
            );
            for n in UNSORTED.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
                rep.note(format!("catalog: {n}"));
            }
            rep.note("catalog whole: soute in one request without n; distribution with n=1000 (its maximum) following Link");
            rep.add(
                "catalog_repos",
                "_catalog: repositories listed",
                "",
                Some(res[0].3 as f64),
                Some(res[1].3 as f64),
                None,
            );
        }
        if opts.sel("memory") {
            eprintln!("[memory] {mib} MiB push with 32 small-image clients at once");
            let blob = blob.as_mut().ok_or("no blob")?;
            let mut peaks = Vec::new();
            for (i, s) in both.iter().enumerate() {
                let digest = blob.unique(100 + i as u64);
                let sampler = servers::Sampler::start(s.pid());
                let done = std::sync::atomic::AtomicBool::new(false);
                let data = &blob.data;
                let push_secs = std::thread::scope(|sc| -> Res<f64> {
                    let h = sc.spawn(|| -> Res<f64> {
                        let t0 = Instant::now();
                        let r = work::push_monolithic(&mut s.client(), "bench/peak", data, &digest);
                        done.store(true, std::sync::atomic::Ordering::Relaxed);
                        r?;
                        Ok(t0.elapsed().as_secs_f64())
                    });
                    let done = &done;
                    let small = std::thread::scope(|sc2| {
                        let hs: Vec<_> = (0..32u64)
                            .map(|k| {
                                sc2.spawn(move || -> Res<()> {
                                    let mut c = s.client();
                                    let mut j = 0u64;
                                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                                        let img = SmallImage::new((99u64 << 48) | (k << 32) | j);
                                        img.push(&mut c, &format!("peak/c{k}"), &format!("t{j}"))?;
                                        j += 1;
                                    }
                                    Ok(())
                                })
                            })
                            .collect();
                        hs.into_iter()
                            .map(|h| h.join().unwrap_or_else(|_| Err("panic".into())))
                            .collect::<Vec<_>>()
                    });
                    for r in small {
                        r?;
                    }
                    h.join().unwrap_or_else(|_| Err("panic".into()))
                })?;
                let (rss, threads) = sampler.finish();
                let (_, hwm, _) = servers::mem_status(s.pid());
                peaks.push((rss, hwm, threads, push_secs));
            }
            let mb = |k: u64| Some(k as f64 / 1024.0);
            rep.add(
                "rss_peak_mb",
                "RSS peak (VmHWM, whole plain phase)",
                "MB",
                mb(peaks[0].1),
                mb(peaks[1].1),
                Some(Target::AbsMax(32.0)),
            );
            rep.add(
                "rss_peak_sampled_mb",
                "RSS max sampled during push + 32 clients",
                "MB",
                mb(peaks[0].0),
                mb(peaks[1].0),
                Some(Target::AbsMax(32.0)),
            );
            rep.add(
                "threads_peak",
                "threads max during push + 32 clients",
                "",
                Some(peaks[0].2 as f64),
                Some(peaks[1].2 as f64),
                None,
            );
            rep.add(
                "push_under_load_mb_s",
                "push monolithic with 32 small-image clients",
                "MB/s",
                Some(sz.blob as f64 / MB / peaks[0].3),
                Some(sz.blob as f64 / MB / peaks[1].3),
                None,
            );
        }
        soute.stop();
        dist.stop();
    }

    // ------------------------------------------------------------- TLS + auth phase
    if opts.sel("pull") || opts.sel("manifest") {
        eprintln!("[tls] restarting both with TLS and a user");
        servers::soute_add_user(&bin, &soute_data);
        let soute = servers::start_soute(&bin, &soute_data, Mode2::TlsAuth, 0);
        servers::wait_ready(&soute.target, Duration::from_secs(10)).ok_or("soute did not start")?;
        let tls = servers::DistTls {
            cert: soute_data.join("tls").join("server.crt"),
            key: soute_data.join("tls").join("server.key"),
            ca_pem: std::fs::read(soute_data.join("tls").join("ca.crt"))?,
        };
        let dist =
            servers::start_distribution(&dist_dir, &dist_root, Some(&tls), servers::free_port());
        let both = [&soute, &dist];
        if opts.sel("pull") {
            eprintln!("[pull] TLS");
            let mut r = Vec::new();
            for (s, (_, d)) in both.iter().zip(&big_digests) {
                r.push(timed_pull(s, "bench/big", d, sz.blob)?);
            }
            let plain = rep
                .rows
                .iter()
                .find(|r| r.key == "pull_mb_s")
                .and_then(|r| Some((r.soute?, r.dist?)));
            rep.add(
                "pull_tls_mb_s",
                &format!("pull {mib} MiB (TLS + auth)"),
                "MB/s",
                Some(r[0].0),
                Some(r[1].0),
                None,
            );
            rep.add(
                "pull_tls_cpu_s_per_gb",
                "server CPU per GB pulled (TLS)",
                "s/GB",
                Some(r[0].1),
                Some(r[1].1),
                None,
            );
            if let Some((ps, pd)) = plain {
                rep.add(
                    "pull_tls_vs_plain",
                    "pull TLS / own plain pull",
                    "x",
                    Some(r[0].0 / ps),
                    Some(r[1].0 / pd),
                    Some(Target::AbsMin(0.6)),
                );
            }
        }
        if opts.sel("manifest") {
            manifest_rows(&mut rep, &both, "tls_auth", &sz, 10.0)?;
        }
        soute.stop();
        dist.stop();
    }

    // ------------------------------------------------------------- report
    let table = render(&rep, &client_ceiling, &machine);
    println!("{table}");
    let secs = started.elapsed().as_secs_f64();
    println!("total bench time: {secs:.0} s");
    let json = serde_json::json!({
        "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "quick": opts.quick,
        "only": opts.only,
        "machine": machine_info(),
        "machine_ceilings": machine,
        "client_ceiling": client_ceiling,
        "blob_bytes": sz.blob,
        "seconds": secs,
        "notes": rep.notes,
        "rows": rep.rows.iter().map(|r| serde_json::json!({
            "key": r.key, "label": r.label, "unit": r.unit,
            "soute": r.soute, "distribution": r.dist, "ratio": r.ratio(),
            "target": r.target_text(), "met": r.verdict().map(|v| v.0),
        })).collect::<Vec<_>>(),
    });
    if let Some(parent) = opts.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&opts.json, serde_json::to_string_pretty(&json)?)?;
    println!("wrote {}", opts.json.display());
    Ok(())
}

fn manifest_rows(
    rep: &mut Report,
    both: &[&Server; 2],
    mode: &str,
    sz: &Sizes,
    target: f64,
) -> Res<()> {
    for head in [false, true] {
        let method = if head { "HEAD" } else { "GET" };
        for n in [1usize, 8, 32] {
            eprintln!("[manifest] {method} {mode} {n} clients");
            let mut st = Vec::new();
            for s in both {
                st.push(manifest_reqs(s, n, sz.req_secs, head)?);
            }
            let t = if n == 8 && !head {
                Some(Target::RatioMin(target))
            } else {
                None
            };
            let key = format!("manifest_{}_{mode}_c{n}", method.to_lowercase());
            let label = format!("manifest {method} by tag, {mode}, {n} clients");
            rep.add(
                &format!("{key}_req_s"),
                &label,
                "req/s",
                Some(st[0].rate()),
                Some(st[1].rate()),
                t,
            );
            rep.add(
                &format!("{key}_p50_ms"),
                &format!("{label}, p50"),
                "ms",
                Some(st[0].p50_ms),
                Some(st[1].p50_ms),
                None,
            );
            let t99 = if n == 8 && !head {
                Some(Target::AbsMax(5.0))
            } else {
                None
            };
            rep.add(
                &format!("{key}_p99_ms"),
                &format!("{label}, p99"),
                "ms",
                Some(st[0].p99_ms),
                Some(st[1].p99_ms),
                t99,
            );
        }
    }
    Ok(())
}

fn render(
    rep: &Report,
    client: &serde_json::Map<String, serde_json::Value>,
    machine: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut out = String::new();
    out.push_str("| metric | unit | soute | distribution | soute/dist | target | verdict |\n");
    out.push_str("|---|---|---:|---:|---:|---|---|\n");
    for r in &rep.rows {
        let verdict = match r.verdict() {
            None => String::new(),
            Some((true, _)) => "met".into(),
            Some((false, off)) => format!("NOT MET ({off:.2}x off)"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.label,
            r.unit,
            fmt(r.soute),
            fmt(r.dist),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}")),
            r.target_text(),
            verdict
        ));
    }
    let show = |m: &serde_json::Map<String, serde_json::Value>| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", fmt(v.as_f64())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !machine.is_empty() {
        out.push_str(&format!("\nmachine ceilings: {}\n", show(machine)));
    }
    if !client.is_empty() {
        out.push_str(&format!("client ceiling (null server): {}\n", show(client)));
    }
    for n in &rep.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// The three rows of one push workload: throughput, server CPU per GB, and
/// throughput against the machine's fsync'd write rate.
fn report_push(
    rep: &mut Report,
    key: &str,
    label: &str,
    kind: &str,
    res: &[(f64, f64)],
    fsync_rate: Option<f64>,
) {
    rep.add(
        &format!("push_{key}_mb_s"),
        label,
        "MB/s",
        Some(res[0].0),
        Some(res[1].0),
        Some(Target::RatioMin(1.8)),
    );
    rep.add(
        &format!("push_{key}_cpu_s_per_gb"),
        &format!("server CPU per GB pushed ({kind})"),
        "s/GB",
        Some(res[0].1),
        Some(res[1].1),
        Some(Target::RatioMax(0.5)),
    );
    if let Some(w) = fsync_rate {
        rep.add(
            &format!("push_{key}_vs_fsync"),
            &format!("push {kind} / fsync'd write rate"),
            "x",
            Some(res[0].0 / w),
            Some(res[1].0 / w),
            Some(Target::AbsMin(0.8)),
        );
    }
}
