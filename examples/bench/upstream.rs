//! `upstream`: the pull-through cache (issue I) with the phase's
//! distribution as soute's upstream (`soute upstream add dist URL`, the real
//! CLI on soute's data folder). Three rows:
//! - cold: a blob pulled through soute the first time (soute fetches it,
//!   stores it and streams it) vs the same size pulled straight from
//!   distribution (goal >= 0.9x), alternated 3 times, best of each;
//! - warm: that blob pulled through soute again vs a blob of the same size
//!   pushed to soute itself (the second column is soute's private pull,
//!   goal >= 0.95x);
//! - 8 concurrent cold pulls of one new blob: bytes soute fetched from the
//!   upstream (its `bytes_fetched` counter, and distribution's access log
//!   when it has one) over the blob's size (goal 1.0x).
//!
//! Must NEVER start or stop the phase's servers, nor talk to anything but
//! them (both on loopback).

use crate::report::{Target, MB};
use crate::servers::{Kind, Server};
use crate::work::{self, Res};
use crate::Ctx;
use std::process::Command;
use std::time::Instant;

const UPSTREAM: &str = "dist";
const REPO: &str = "bench/upstream";
const CLIENTS: usize = 8;
/// Cold and direct pulls alternated this many times.
const ROUNDS: usize = 3;

pub fn pull_through(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let soute = servers
        .iter()
        .find(|s| s.kind == Kind::Soute)
        .ok_or("no soute")?;
    let dist = servers
        .iter()
        .find(|s| s.kind == Kind::Distribution)
        .ok_or("no distribution")?;
    let mib = cx.mib();
    let size = cx.sz.blob;
    eprintln!("[upstream] {mib} MiB through soute from distribution");
    let url = format!("http://{}", dist.target.addr);
    soute_cli(cx, &["add", UPSTREAM, &url])?;
    let through = format!("{UPSTREAM}/{REPO}");
    let blob = cx.blob.as_mut().ok_or("no blob")?;

    // Cold, and the same size straight from distribution: alternated
    // [`ROUNDS`] times (a fresh blob each time), the best of each kept, so a
    // burst of load on the shared machine does not decide the ratio.
    let direct_digest = blob.unique(0x0b51);
    work::push_monolithic(&mut dist.client(), REPO, &blob.data, &direct_digest)?;
    let (mut direct, mut cold) = (0.0f64, 0.0f64);
    let mut cold_digest = String::new();
    for round in 0..ROUNDS {
        cold_digest = blob.unique(0x0b52 + (round as u64) * 0x100);
        work::push_monolithic(&mut dist.client(), REPO, &blob.data, &cold_digest)?;
        direct = direct.max(timed(&mut dist.client(), REPO, &direct_digest, size)?);
        cold = cold.max(timed(&mut soute.client(), &through, &cold_digest, size)?);
    }
    cx.rep.add(
        "upstream_cold_mb_s",
        &format!("cold pull {mib} MiB through soute / direct"),
        "MB/s",
        Some(cold),
        Some(direct),
        Some(Target::RatioMin(0.9)),
    );

    // Warm, and soute's own private pull of the same size.
    let private_digest = blob.unique(0x0b53);
    work::push_monolithic(
        &mut soute.client(),
        "bench/private",
        &blob.data,
        &private_digest,
    )?;
    let mut warm: f64 = 0.0;
    let mut private: f64 = 0.0;
    for _ in 0..2 {
        warm = warm.max(timed(&mut soute.client(), &through, &cold_digest, size)?);
        private = private.max(timed(
            &mut soute.client(),
            "bench/private",
            &private_digest,
            size,
        )?);
    }
    cx.rep.add(
        "upstream_warm_mb_s",
        &format!("warm pull {mib} MiB through soute / private"),
        "MB/s",
        Some(warm),
        Some(private),
        Some(Target::RatioMin(0.95)),
    );
    cx.rep.note(
        "upstream_warm_mb_s: both columns are soute (through the cache, then a private pull)",
    );

    // 8 concurrent cold pulls of one blob.
    let shared_digest = blob.unique(0x0b54);
    work::push_monolithic(&mut dist.client(), REPO, &blob.data, &shared_digest)?;
    let before = fetched(cx)?;
    let log_before = dist_gets(cx, &shared_digest);
    let t0 = Instant::now();
    let pulls: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut c = soute.client();
            let (repo, digest) = (through.clone(), shared_digest.clone());
            std::thread::spawn(move || {
                work::pull(&mut c, &repo, &digest).map_err(|e| e.to_string())
            })
        })
        .collect();
    for p in pulls {
        let n = p.join().map_err(|_| "a pull panicked")??;
        if n != size as u64 {
            return Err(format!("pulled {n} bytes, expected {size}").into());
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let ratio = (fetched(cx)? - before) as f64 / size as f64;
    cx.rep.add(
        "upstream_c8_fetched_x",
        &format!("{CLIENTS} cold pulls: fetched / {mib} MiB"),
        "x",
        Some(ratio),
        None,
        Some(Target::AbsMax(1.0)),
    );
    cx.rep.add(
        "upstream_c8_mb_s",
        &format!("{CLIENTS} cold pulls, all clients together"),
        "MB/s",
        Some(CLIENTS as f64 * size as f64 / MB / secs),
        None,
        None,
    );
    if let Some(before) = log_before {
        let gets = dist_gets(cx, &shared_digest).unwrap_or(0) - before;
        cx.rep.note(format!(
            "upstream: distribution's log shows {gets} GET(s) of the blob the {CLIENTS} clients pulled"
        ));
    }
    Ok(())
}

/// Pull once, checking the length; MB/s.
fn timed(c: &mut crate::client::Client, repo: &str, digest: &str, size: usize) -> Res<f64> {
    let t0 = Instant::now();
    let n = work::pull(c, repo, digest)?;
    if n != size as u64 {
        return Err(format!("{repo}: pulled {n} bytes, expected {size}").into());
    }
    Ok(size as f64 / MB / t0.elapsed().as_secs_f64())
}

/// `soute upstream ARGS --data <soute's folder>`.
fn soute_cli(cx: &Ctx, args: &[&str]) -> Res<String> {
    let out = Command::new(&cx.bin)
        .arg("upstream")
        .args(args)
        .arg("--data")
        .arg(&cx.soute_data)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "soute upstream {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// soute's `bytes_fetched` for the upstream.
fn fetched(cx: &Ctx) -> Res<u64> {
    let list: serde_json::Value = serde_json::from_str(&soute_cli(cx, &["list", "--json"])?)?;
    list.as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == UPSTREAM))
        .and_then(|r| r["bytes_fetched"].as_u64())
        .ok_or_else(|| "upstream list has no bytes_fetched".into())
}

/// GETs of `digest` in distribution's log, if its log has access lines.
fn dist_gets(cx: &Ctx, digest: &str) -> Option<u64> {
    let log = std::fs::read_to_string(cx.dist_dir.join("distribution.log")).ok()?;
    let access = log.lines().any(|l| l.contains("\"GET /v2/"));
    access.then(|| {
        log.lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(digest) && l.contains("soute/"))
            .count() as u64
    })
}
