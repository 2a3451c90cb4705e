//! soute vs CNCF distribution, same workloads, same machine, one run.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- [--quick] [--only W[,W]] [--json PATH] [--dir DIR] [--soute BIN]
//! ```
//! Workloads: null, machine, start, push, pull, small, manifest, tags, catalog, memory,
//! metrics (manifest GET with metrics on vs `--metrics off`, soute only), webhook,
//! upstream (the pull-through cache, distribution as soute's upstream),
//! peers (a realistically configured soute, anonymous, Basic and token, against
//! distribution and the Rust peers container-registry and nora when installed:
//! `bench/peers.rs`), s3 (soute local, soute on a 3-node Garage cluster and
//! distribution's S3 driver on it: `bench/s3.rs`).
//! Only ratios within one run are meaningful: the machine is shared.
//!
//! [`WORKLOADS`] is the table: each row names the `--only` words that select
//! it, the phase it runs in (alone, or with both servers over plain HTTP, or
//! over TLS with Basic auth) and its function in `bench/workloads.rs`. Rows
//! run in table order, which is the order of the report.

#[path = "bench/client.rs"]
mod client;
/// The test suite's 3-node Garage cluster, for the `s3` workload.
#[path = "../tests/support/garage.rs"]
#[allow(dead_code)]
mod garage;
#[path = "bench/metrics.rs"]
mod metrics;
#[path = "bench/peers.rs"]
mod peers;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/s3.rs"]
mod s3;
#[path = "bench/servers.rs"]
mod servers;
#[path = "bench/upstream.rs"]
mod upstream;
#[path = "../tests/support/wait.rs"]
#[allow(dead_code)]
mod wait;
#[path = "bench/webhooks.rs"]
mod webhooks;
#[path = "bench/work.rs"]
mod work;
#[path = "bench/workloads.rs"]
mod workloads;
/// What `garage.rs` takes from the test support: its bounded wait.
mod support {
    pub use crate::wait::Deadline;
}

use report::{render, Report, Target};
use servers::{Kind, Mode2, Server};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use work::{BigBlob, Res, SmallImage};

const ALL: &[&str] = &[
    "null", "machine", "start", "push", "pull", "small", "manifest", "tags", "catalog", "memory",
    "metrics", "webhook", "upstream", "peers", "s3",
];

pub struct Opts {
    quick: bool,
    only: Vec<String>,
    json: PathBuf,
    dir: Option<PathBuf>,
    soute: PathBuf,
}

pub struct Sizes {
    pub blob: usize,
    pub chunk: usize,
    pub tags: u64,
    pub repos: u64,
    pub small_secs: f64,
    pub req_secs: f64,
    pub list_reps: usize,
}

impl Opts {
    pub fn sel(&self, w: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == w)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// No registry running: the client and the machine alone.
    Alone,
    /// Both servers over plain HTTP without auth.
    Plain,
    /// Both restarted on the same data with TLS and a user.
    TlsAuth,
}

/// One row of the workload table.
struct Workload {
    /// The `--only` words that select it (any of them).
    when: &'static [&'static str],
    phase: Phase,
    run: fn(&mut Ctx, &[&Server]) -> Res<()>,
}

const fn w(
    when: &'static [&'static str],
    phase: Phase,
    run: fn(&mut Ctx, &[&Server]) -> Res<()>,
) -> Workload {
    Workload { when, phase, run }
}

/// The table, in run (and report) order.
const WORKLOADS: &[Workload] = &[
    w(&["null"], Phase::Alone, workloads::null_ceiling),
    w(
        &[
            "machine", "push", "pull", "memory", "upstream", "peers", "s3",
        ],
        Phase::Alone,
        workloads::big_blob,
    ),
    w(&["machine"], Phase::Alone, workloads::fsync_rate),
    w(&["start"], Phase::Alone, workloads::start),
    w(&["s3"], Phase::Alone, s3::s3),
    w(&["metrics"], Phase::Alone, metrics::metrics_on_off),
    w(&["push", "pull"], Phase::Plain, workloads::push),
    w(&["pull"], Phase::Plain, workloads::pull_plain),
    w(&["small"], Phase::Plain, workloads::small),
    w(&["manifest"], Phase::Plain, workloads::manifest_plain),
    w(&["tags"], Phase::Plain, workloads::tags),
    w(&["catalog"], Phase::Plain, workloads::catalog),
    w(&["memory"], Phase::Plain, workloads::memory),
    w(&["webhook"], Phase::Plain, webhooks::webhook),
    w(&["upstream"], Phase::Plain, upstream::pull_through),
    w(&["peers"], Phase::Plain, peers::peers),
    w(&["pull"], Phase::TlsAuth, workloads::pull_tls),
    w(&["manifest"], Phase::TlsAuth, workloads::manifest_tls),
];

/// What the workloads share: options, sizes, folders, the report, and what
/// one workload leaves for a later one (the big blob and its digests).
pub struct Ctx {
    pub opts: Opts,
    pub sz: Sizes,
    pub bin: PathBuf,
    pub root: PathBuf,
    _tmp: tempfile::TempDir,
    pub started: Instant,
    pub rep: Report,
    pub client_ceiling: serde_json::Map<String, serde_json::Value>,
    pub machine: serde_json::Map<String, serde_json::Value>,
    pub blob: Option<BigBlob>,
    /// The big blob's digest per server, pushed by `push`, pulled by `pull`.
    pub big_digests: Vec<(Kind, String)>,
    /// Pushed to both at the start of the plain phase (`bench/manifest:latest`).
    pub base_image: SmallImage,
    soute_data: PathBuf,
    dist_root: PathBuf,
    dist_dir: PathBuf,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let mut cx = Ctx::new(parse_opts()?)?;
    for phase in [Phase::Alone, Phase::Plain, Phase::TlsAuth] {
        let chosen: Vec<&Workload> = WORKLOADS
            .iter()
            .filter(|w| w.phase == phase && w.when.iter().any(|o| cx.opts.sel(o)))
            .collect();
        if chosen.is_empty() {
            continue;
        }
        let pair = cx.start_servers(phase)?;
        let both: Vec<&Server> = pair.iter().collect();
        for w in chosen {
            (w.run)(&mut cx, &both)?;
        }
        for s in pair {
            s.stop();
        }
    }
    cx.finish()
}

impl Ctx {
    fn new(opts: Opts) -> Res<Ctx> {
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
        eprintln!(
            "bench: {} run in {}",
            if opts.quick { "quick" } else { "full" },
            root.display()
        );
        let dist_dir = root.join("dist-conf");
        std::fs::create_dir_all(&dist_dir)?;
        Ok(Ctx {
            opts,
            sz,
            bin,
            soute_data: root.join("soute-data"),
            dist_root: root.join("dist-data"),
            dist_dir,
            root,
            _tmp: tmp,
            started: Instant::now(),
            rep: Report::new(),
            client_ceiling: serde_json::Map::new(),
            machine: serde_json::Map::new(),
            blob: None,
            big_digests: Vec::new(),
            base_image: SmallImage::new(0xba5e),
        })
    }

    /// The big blob's size in MiB (for labels).
    pub fn mib(&self) -> usize {
        self.sz.blob >> 20
    }

    /// soute then distribution for `phase` (none for [`Phase::Alone`]).
    fn start_servers(&mut self, phase: Phase) -> Res<Vec<Server>> {
        match phase {
            Phase::Alone => Ok(Vec::new()),
            Phase::Plain => self.start_plain(),
            Phase::TlsAuth => self.start_tls(),
        }
    }

    /// Both over plain HTTP; records their idle RSS and threads and pushes
    /// the base image the manifest, tags and catalog workloads use.
    fn start_plain(&mut self) -> Res<Vec<Server>> {
        let soute = servers::start_soute(
            &self.bin,
            &self.soute_data,
            Mode2::Plain,
            servers::free_port(),
        );
        servers::wait_ready(&soute.target, Duration::from_secs(10)).ok_or("soute did not start")?;
        let dist = servers::start_distribution(
            &self.dist_dir,
            &self.dist_root,
            None,
            servers::free_port(),
        );
        std::thread::sleep(Duration::from_millis(500));
        let idle: Vec<(u64, u64, u64)> = [&soute, &dist]
            .iter()
            .map(|s| servers::mem_status(s.pid()))
            .collect();
        self.rep.add(
            "rss_idle_mb",
            "RSS idle",
            "MB",
            Some(idle[0].0 as f64 / 1024.0),
            Some(idle[1].0 as f64 / 1024.0),
            Some(Target::AbsMax(6.0)),
        );
        self.rep.add(
            "threads_idle",
            "threads idle",
            "",
            Some(idle[0].2 as f64),
            Some(idle[1].2 as f64),
            None,
        );
        for s in [&soute, &dist] {
            self.base_image
                .push(&mut s.client(), "bench/manifest", "latest")?;
        }
        Ok(vec![soute, dist])
    }

    /// Both restarted on the same data with TLS (soute's certificate for
    /// both) and a user.
    fn start_tls(&mut self) -> Res<Vec<Server>> {
        eprintln!("[tls] restarting both with TLS and a user");
        let soute_data = &self.soute_data;
        servers::soute_add_user(&self.bin, soute_data);
        let soute = servers::start_soute(&self.bin, soute_data, Mode2::TlsAuth, 0);
        servers::wait_ready(&soute.target, Duration::from_secs(10)).ok_or("soute did not start")?;
        let tls = servers::DistTls {
            cert: soute_data.join("tls").join("server.crt"),
            key: soute_data.join("tls").join("server.key"),
            ca_pem: std::fs::read(soute_data.join("tls").join("ca.crt"))?,
        };
        let dist = servers::start_distribution(
            &self.dist_dir,
            &self.dist_root,
            Some(&tls),
            servers::free_port(),
        );
        Ok(vec![soute, dist])
    }

    /// Prints the table and writes the JSON.
    fn finish(self) -> Res<()> {
        let table = render(&self.rep, &self.client_ceiling, &self.machine);
        println!("{table}");
        let secs = self.started.elapsed().as_secs_f64();
        println!("total bench time: {secs:.0} s");
        let json = serde_json::json!({
            "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "quick": self.opts.quick,
            "only": self.opts.only,
            "machine": report::machine_info(),
            "machine_ceilings": self.machine,
            "client_ceiling": self.client_ceiling,
            "blob_bytes": self.sz.blob,
            "seconds": secs,
            "notes": self.rep.notes,
            "peers": self.rep.peers,
            "rows": self.rep.rows.iter().map(|r| serde_json::json!({
                "key": r.key, "label": r.label, "unit": r.unit,
                "soute": r.soute, "distribution": r.dist, "ratio": r.ratio(),
                "target": r.target_text(), "met": r.verdict().map(|v| v.0),
            })).collect::<Vec<_>>(),
        });
        if let Some(parent) = self.opts.json.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&self.opts.json, serde_json::to_string_pretty(&json)?)?;
        println!("wrote {}", self.opts.json.display());
        Ok(())
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
