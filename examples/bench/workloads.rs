//! The workloads, one function each, called from the table in `bench.rs`
//! with the bench's state and the two servers of their phase (soute first,
//! then distribution; none for the machine-only workloads), plus the timing
//! helpers they share. Each adds its rows to the report.
//! Must NEVER start or stop the phase's servers (the table's runner does).

use crate::client::{self, Mode};
use crate::report::{report_push, Target, MB};
use crate::servers::{self, Kind, Server};
use crate::work::{self, BigBlob, Res, SmallImage, Stats};
use crate::Ctx;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `null`: the client ceiling against an in-process null server.
pub fn null_ceiling(cx: &mut Ctx, _: &[&Server]) -> Res<()> {
    eprintln!("[null] client ceiling against an in-process null server");
    let plain = servers::null_server(false);
    let tls = servers::null_server(true);
    let junk = vec![0x11u8; cx.sz.blob];
    let mut c = client::Client::new(plain.target.clone());
    let t0 = Instant::now();
    let r = c.req("PUT", "/null", &[], &junk, Mode::Collect)?;
    let push = cx.sz.blob as f64 / MB / t0.elapsed().as_secs_f64();
    assert_eq!(r.status, 200);
    for (name, target) in [("pull", &plain.target), ("pull_tls", &tls.target)] {
        let mut c = client::Client::new(target.clone());
        let t0 = Instant::now();
        let r = c.req(
            "GET",
            &format!("/blob/{}", cx.sz.blob),
            &[],
            &[],
            Mode::Discard,
        )?;
        let rate = r.len as f64 / MB / t0.elapsed().as_secs_f64();
        cx.client_ceiling
            .insert(format!("{name}_mb_s"), rate.into());
    }
    cx.client_ceiling.insert("push_mb_s".into(), push.into());
    for (name, target) in [("get", &plain.target), ("get_tls_auth", &tls.target)] {
        for n in [1, 8, 32] {
            let st = work::run_clients(
                target,
                n,
                Duration::from_secs_f64(cx.sz.req_secs / 2.0),
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
            cx.client_ceiling
                .insert(format!("{name}_c{n}_req_s"), st.rate().into());
        }
    }
    eprintln!("  {}", serde_json::Value::Object(cx.client_ceiling.clone()));
    Ok(())
}

/// Generates the big blob (and measures sha256) for the workloads that need it.
pub fn big_blob(cx: &mut Ctx, _: &[&Server]) -> Res<()> {
    eprintln!("[machine] generating {} MiB and hashing it", cx.mib());
    let b = BigBlob::new(cx.sz.blob);
    let sha = (cx.sz.blob - 64) as f64 / MB / b.hash_secs;
    cx.machine.insert("sha256_mb_s".into(), sha.into());
    cx.blob = Some(b);
    Ok(())
}

/// `machine`: the fsync'd write rate of the bench's folder.
pub fn fsync_rate(cx: &mut Ctx, _: &[&Server]) -> Res<()> {
    let w = fsync_write_rate(&cx.root, cx.sz.blob)?;
    cx.machine.insert("fsync_write_mb_s".into(), w.into());
    eprintln!("  {}", serde_json::Value::Object(cx.machine.clone()));
    Ok(())
}

/// `start`: binary size and start-to-first-200.
pub fn start(cx: &mut Ctx, _: &[&Server]) -> Res<()> {
    eprintln!("[start] binary size and start-to-first-200");
    let size = std::fs::metadata(&cx.bin)?.len() as f64 / MB;
    let dsize = std::fs::metadata(servers::DISTRIBUTION)?.len() as f64 / MB;
    cx.rep.add(
        "binary_mb",
        "binary size",
        "MB",
        Some(size),
        Some(dsize),
        Some(Target::AbsMax(10.0)),
    );
    let s = start_time(Kind::Soute, &cx.bin, &cx.root, 7)?;
    let d = start_time(Kind::Distribution, &cx.bin, &cx.root, 7)?;
    cx.rep.add(
        "start_ms",
        "start to first 200 on /v2/ (median of 7)",
        "ms",
        Some(s),
        Some(d),
        Some(Target::AbsMax(100.0)),
    );
    Ok(())
}

/// `push` (and `pull`, which pulls this blob): monolithic, then chunked.
pub fn push(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let mib = cx.mib();
    let both = servers;
    eprintln!("[push] {mib} MiB blob");
    let blob = cx.blob.as_mut().ok_or("no blob")?;
    let mut res = Vec::new();
    for (i, s) in both.iter().enumerate() {
        let (mb, cpu, digest) = timed_push(s, blob, 1 + i as u64, "bench/big", None)?;
        cx.big_digests.push((s.kind, digest));
        res.push((mb, cpu));
    }
    let fsync_rate = cx.machine.get("fsync_write_mb_s").and_then(|v| v.as_f64());
    report_push(
        &mut cx.rep,
        "mono",
        &format!("push {mib} MiB monolithic"),
        "monolithic",
        &res,
        fsync_rate,
    );
    if cx.opts.sel("push") {
        let mut res = Vec::new();
        for (i, s) in both.iter().enumerate() {
            let (mb, cpu, _) =
                timed_push(s, blob, 10 + i as u64, "bench/chunked", Some(cx.sz.chunk))?;
            res.push((mb, cpu));
        }
        let label = format!(
            "push {} MiB chunked ({} MiB PATCHes)",
            mib,
            cx.sz.chunk >> 20
        );
        report_push(&mut cx.rep, "chunked", &label, "chunked", &res, fsync_rate);
    }
    Ok(())
}

/// `pull` over plain HTTP.
pub fn pull_plain(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let mib = cx.mib();
    let both = servers;
    eprintln!("[pull] plain");
    let mut r = Vec::new();
    for (s, (_, d)) in both.iter().zip(&cx.big_digests) {
        r.push(timed_pull(s, "bench/big", d, cx.sz.blob)?);
    }
    cx.rep.add(
        "pull_mb_s",
        &format!("pull {mib} MiB (plain HTTP)"),
        "MB/s",
        Some(r[0].0),
        Some(r[1].0),
        Some(Target::RatioMin(1.0)),
    );
    cx.rep.add(
        "pull_cpu_s_per_gb",
        "server CPU per GB pulled (plain)",
        "s/GB",
        Some(r[0].1),
        Some(r[1].1),
        None,
    );
    Ok(())
}

/// `small`: N clients pushing small images.
pub fn small(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let both = servers;
    for (run, n) in [1usize, 8, 32].into_iter().enumerate() {
        eprintln!("[small] {n} clients");
        let mut st = Vec::new();
        for s in both {
            st.push(small_images(s, n, cx.sz.small_secs, run as u64 + 1)?);
        }
        let t = if n == 8 {
            Some(Target::RatioMin(5.0))
        } else {
            None
        };
        cx.rep.add(
            &format!("small_c{n}_img_s"),
            &format!("small images, {n} clients"),
            "img/s",
            Some(st[0].rate()),
            Some(st[1].rate()),
            t,
        );
        cx.rep.add(
            &format!("small_c{n}_p50_ms"),
            &format!("small images, {n} clients, p50"),
            "ms",
            Some(st[0].p50_ms),
            Some(st[1].p50_ms),
            None,
        );
        cx.rep.add(
            &format!("small_c{n}_p99_ms"),
            &format!("small images, {n} clients, p99"),
            "ms",
            Some(st[0].p99_ms),
            Some(st[1].p99_ms),
            None,
        );
    }
    Ok(())
}

/// `manifest` over plain HTTP.
pub fn manifest_plain(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    manifest_rows(&mut cx.rep, servers, "plain", &cx.sz, 5.0)
}

/// `tags`: one repository with many tags, listed paged and whole.
pub fn tags(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let both = servers;
    eprintln!("[tags] setting up {} tags", cx.sz.tags);
    let mut expected: Vec<String> = (0..cx.sz.tags).map(|i| format!("v{i}")).collect();
    expected.sort();
    let mut rates = Vec::new();
    for s in both {
        let mut c = s.client();
        cx.base_image
            .mount_and_tag(&mut c, "bench/tags", "bench/manifest", "v0")?;
        rates.push(work::parallel(&s.target, 8, cx.sz.tags - 1, |c, i| {
            cx.base_image
                .put_manifest(c, "bench/tags", &format!("v{}", i + 1))
        })?);
    }
    cx.rep.add(
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
            cx.sz.list_reps,
        )?);
    }
    cx.rep.add(
        "tags_paged_ms",
        &format!("tags list of {} tags, paged n=100", cx.sz.tags),
        "ms",
        Some(res[0].0),
        Some(res[1].0),
        Some(Target::RatioMax(0.2)),
    );
    cx.rep.add(
        "tags_whole_ms",
        &format!("tags list of {} tags, whole", cx.sz.tags),
        "ms",
        Some(res[0].1),
        Some(res[1].1),
        Some(Target::RatioMax(0.2)),
    );
    for n in UNSORTED.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        cx.rep.note(format!("tags: {n}"));
    }
    cx.rep.add(
        "tags_pages",
        "tags list: pages fetched when paging n=100",
        "",
        Some(res[0].2 as f64),
        Some(res[1].2 as f64),
        None,
    );
    if res[1].2 == 1 {
        cx.rep
            .note("distribution ignored n=100 on the tags list and returned every tag in one page");
    }
    Ok(())
}

/// `catalog`: many repositories, listed paged and whole.
pub fn catalog(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let both = servers;
    eprintln!("[catalog] setting up {} repositories", cx.sz.repos);
    for s in both {
        work::parallel(&s.target, 8, cx.sz.repos, |c, i| {
            cx.base_image
                .mount_and_tag(c, &format!("cat/r{i}"), "bench/manifest", "latest")
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
        let ours = (0..cx.sz.repos)
            .filter(|i| expected.binary_search(&format!("cat/r{i}")).is_ok())
            .count() as u64;
        if ours != cx.sz.repos {
            return Err(format!(
                "{}: catalog lists {ours} of {} repositories",
                s.kind.name(),
                cx.sz.repos
            )
            .into());
        }
        if listed != expected {
            return Err(format!("{}: catalog not sorted or has duplicates", s.kind.name()).into());
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
            cx.sz.list_reps,
        )?;
        res.push((p, w, pages, expected.len()));
    }
    cx.rep.add(
        "catalog_paged_ms",
        &format!("_catalog over {}+ repositories, paged n=100", cx.sz.repos),
        "ms",
        Some(res[0].0),
        Some(res[1].0),
        Some(Target::RatioMax(0.2)),
    );
    cx.rep.add(
        "catalog_whole_ms",
        &format!("_catalog over {}+ repositories, whole", cx.sz.repos),
        "ms",
        Some(res[0].1),
        Some(res[1].1),
        Some(Target::RatioMax(0.2)),
    );
    for n in UNSORTED.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        cx.rep.note(format!("catalog: {n}"));
    }
    cx.rep.note("catalog whole: soute in one request without n; distribution with n=1000 (its maximum) following Link");
    cx.rep.add(
        "catalog_repos",
        "_catalog: repositories listed",
        "",
        Some(res[0].3 as f64),
        Some(res[1].3 as f64),
        None,
    );
    Ok(())
}

/// `memory`: RSS and threads under a big push with 32 small-image clients.
pub fn memory(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let mib = cx.mib();
    let both = servers;
    eprintln!(
        "[memory] {} MiB push with 32 small-image clients at once",
        mib
    );
    let blob = cx.blob.as_mut().ok_or("no blob")?;
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
    cx.rep.add(
        "rss_peak_mb",
        "RSS peak (VmHWM, whole plain phase)",
        "MB",
        mb(peaks[0].1),
        mb(peaks[1].1),
        Some(Target::AbsMax(32.0)),
    );
    cx.rep.add(
        "rss_peak_sampled_mb",
        "RSS max sampled during push + 32 clients",
        "MB",
        mb(peaks[0].0),
        mb(peaks[1].0),
        Some(Target::AbsMax(32.0)),
    );
    cx.rep.add(
        "threads_peak",
        "threads max during push + 32 clients",
        "",
        Some(peaks[0].2 as f64),
        Some(peaks[1].2 as f64),
        None,
    );
    cx.rep.add(
        "push_under_load_mb_s",
        "push monolithic with 32 small-image clients",
        "MB/s",
        Some(cx.sz.blob as f64 / MB / peaks[0].3),
        Some(cx.sz.blob as f64 / MB / peaks[1].3),
        None,
    );
    Ok(())
}

/// `pull` over TLS with Basic auth.
pub fn pull_tls(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let mib = cx.mib();
    let both = servers;
    eprintln!("[pull] TLS");
    let mut r = Vec::new();
    for (s, (_, d)) in both.iter().zip(&cx.big_digests) {
        r.push(timed_pull(s, "bench/big", d, cx.sz.blob)?);
    }
    let plain = cx.rep.figures("pull_mb_s");
    cx.rep.add(
        "pull_tls_mb_s",
        &format!("pull {mib} MiB (TLS + auth)"),
        "MB/s",
        Some(r[0].0),
        Some(r[1].0),
        None,
    );
    cx.rep.add(
        "pull_tls_cpu_s_per_gb",
        "server CPU per GB pulled (TLS)",
        "s/GB",
        Some(r[0].1),
        Some(r[1].1),
        None,
    );
    if let Some((ps, pd)) = plain {
        cx.rep.add(
            "pull_tls_vs_plain",
            "pull TLS / own plain pull",
            "x",
            Some(r[0].0 / ps),
            Some(r[1].0 / pd),
            Some(Target::AbsMin(0.6)),
        );
    }
    Ok(())
}

/// `manifest` over TLS with Basic auth.
pub fn manifest_tls(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    manifest_rows(&mut cx.rep, servers, "tls_auth", &cx.sz, 10.0)
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
pub fn timed_push(
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
pub fn timed_pull(srv: &Server, repo: &str, digest: &str, size: usize) -> Res<(f64, f64)> {
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

pub fn small_images(srv: &Server, clients: usize, secs: f64, run: u64) -> Res<Stats> {
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

fn manifest_rows(
    rep: &mut crate::report::Report,
    both: &[&Server],
    mode: &str,
    sz: &crate::Sizes,
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
