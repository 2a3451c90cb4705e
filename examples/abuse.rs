//! The load check of issue G: every abuse probe of the issue's table against
//! one or more soute release builds on loopback, with the server's memory
//! (VmHWM, VmRSS from /proc) and what a normal client saw during the attack.
//!
//! ```text
//! cargo build --release && cargo run --release --example abuse -- [--soute BIN]... [--only P[,P]] [--quick] [--tls]
//! ```
//! Several `--soute` print before/after rows side by side (default:
//! target/release/soute). Every probe starts its own server in a fresh temp
//! folder, is bounded in count and time, sends traffic only to 127.0.0.1 (from
//! 127.0.0.2..9 as attackers, 127.0.0.100 as the normal client) and kills its
//! server at the end. See docs/abuse.md.

#[path = "abuse/accounts.rs"]
mod accounts;
#[path = "abuse/net.rs"]
mod net;
#[path = "abuse/probes.rs"]
mod probes;
#[path = "abuse/server.rs"]
mod server;
#[path = "abuse/uploads.rs"]
mod uploads;

use probes::{Ctx, Outcome, PROBES};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

struct Opts {
    soute: Vec<PathBuf>,
    only: Vec<String>,
    quick: bool,
    tls: bool,
}

fn parse_opts() -> Result<Opts, String> {
    let mut args = pico_args::Arguments::from_env();
    let names: Vec<&str> = PROBES.iter().map(|p| p.name).collect();
    if args.contains(["-h", "--help"]) {
        println!(
            "usage: cargo run --release --example abuse -- [--soute BIN]... [--only P[,P...]] [--quick] [--tls]\nprobes: {}",
            names.join(", ")
        );
        std::process::exit(0);
    }
    let quick = args.contains("--quick");
    let tls = args.contains("--tls");
    let mut soute: Vec<PathBuf> = args.values_from_str("--soute").map_err(|e| e.to_string())?;
    if soute.is_empty() {
        soute.push(PathBuf::from("target/release/soute"));
    }
    let only: Vec<String> = args
        .opt_value_from_str::<_, String>("--only")
        .map_err(|e| e.to_string())?
        .map(|s| s.split(',').map(|w| w.trim().to_string()).collect())
        .unwrap_or_default();
    for w in &only {
        if !names.contains(&w.as_str()) {
            return Err(format!("unknown probe {w:?}; one of {}", names.join(", ")));
        }
    }
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments {rest:?}"));
    }
    for bin in &soute {
        if !bin.is_file() {
            return Err(format!(
                "{} is not a file (cargo build --release?)",
                bin.display()
            ));
        }
    }
    Ok(Opts {
        soute,
        only,
        quick,
        tls,
    })
}

/// Thousands of sockets need file descriptors: raise our soft limit to the hard one.
fn raise_fd_limit() {
    let Some(hard) = server::fd_hard_limit() else {
        return;
    };
    let pid = std::process::id().to_string();
    let ok = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("note: could not raise the fd limit to {hard} (prlimit); large probes may fail to connect");
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn latency(o: &Outcome) -> String {
    match &o.seen {
        None => "-".into(),
        Some(s) => {
            let f = |p: f64| {
                s.percentile(p)
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or("-".into())
            };
            format!("{} / {} / {}", f(0.5), f(0.99), f(1.0))
        }
    }
}

fn failures(o: &Outcome) -> String {
    match &o.seen {
        None => "-".into(),
        Some(s) => format!(
            "{} / {} / {}",
            s.ok,
            s.unavailable,
            s.other_status + s.errors
        ),
    }
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("abuse: {e}");
            std::process::exit(2);
        }
    };
    raise_fd_limit();
    let started = Instant::now();
    let mut rows = Vec::new();
    for probe in PROBES {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == probe.name) {
            continue;
        }
        if probe.tls_only && !opts.tls {
            if !opts.only.is_empty() {
                eprintln!("== {} skipped: it needs --tls", probe.name);
            }
            continue;
        }
        for bin in &opts.soute {
            let ctx = Ctx {
                bin,
                tls: opts.tls,
                quick: opts.quick,
            };
            eprintln!("== {} on {}", probe.name, bin.display());
            let t0 = Instant::now();
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (probe.run)(&ctx)));
            let outcome = match outcome {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => Outcome {
                    mem_kib: None,
                    seen: None,
                    detail: format!("probe error: {e}"),
                    pass: Some(false),
                },
                Err(_) => Outcome {
                    mem_kib: None,
                    seen: None,
                    detail: "probe panicked".into(),
                    pass: Some(false),
                },
            };
            eprintln!(
                "   {} ({:.1} s)",
                outcome.detail,
                t0.elapsed().as_secs_f64()
            );
            rows.push((probe, bin.display().to_string(), outcome));
        }
    }
    println!(
        "\nsoute abuse probes ({}{}), {:.0} s; normal client: GET /v2/ with valid credentials on a new connection every 50 ms",
        if opts.quick { "quick" } else { "full" },
        if opts.tls { ", TLS" } else { ", plain HTTP" },
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| probe | binary | VmHWM MiB | VmRSS MiB | normal p50 / p99 / max ms | normal 200 / 503 / other | verdict | target |");
    println!("|---|---|---|---|---|---|---|---|");
    for (probe, bin, o) in &rows {
        let (hwm, rss) = o
            .mem_kib
            .map(|(h, r)| (mib(h), mib(r)))
            .unwrap_or(("-".into(), "-".into()));
        let verdict = match o.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a",
        };
        println!(
            "| {} | {bin} | {hwm} | {rss} | {} | {} | {verdict} | {} |",
            probe.name,
            latency(o),
            failures(o),
            probe.target
        );
    }
    println!();
    for (probe, bin, o) in &rows {
        println!("- {} on {bin}: {}", probe.name, o.detail);
    }
}
