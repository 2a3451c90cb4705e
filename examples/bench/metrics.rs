//! `metrics`: the cost of counting. Two soute servers on their own data
//! folders, one with metrics (the default) and one with `--metrics off`,
//! serve the same manifest; 8 clients GET it from each in turn, rounds
//! alternated so the shared machine's drift hits both, and the medians are
//! compared (goal: on within 3 % of off), as req/s and as the server's CPU
//! time per request (utime + stime from /proc, less sensitive to what else
//! runs on the machine than a rate).
//! Must NEVER run both servers' loads at the same time.

use crate::report::Target;
use crate::servers::{self, Mode2, Server};
use crate::work::{self, Res};
use crate::Ctx;
use std::time::Duration;

const ROUNDS: usize = 7;
const CLIENTS: usize = 8;

fn started(cx: &Ctx, dir: &str, extra: &[&str]) -> Res<Server> {
    let data = cx.root.join(dir);
    let s = servers::start_soute_with(&cx.bin, &data, Mode2::Plain, 0, extra);
    servers::wait_ready(&s.target, Duration::from_secs(10)).ok_or("soute did not start")?;
    cx.base_image
        .push(&mut s.client(), "bench/manifest", "latest")?;
    Ok(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn metrics_on_off(cx: &mut Ctx, _: &[&Server]) -> Res<()> {
    eprintln!("[metrics] manifest GET, {CLIENTS} clients: metrics on vs --metrics off");
    let on = started(cx, "metrics-on", &[])?;
    let off = started(cx, "metrics-off", &["--metrics", "off"])?;
    let secs = Duration::from_secs_f64(cx.sz.req_secs);
    let (mut on_rates, mut off_rates) = (Vec::new(), Vec::new());
    let (mut on_cpu, mut off_cpu) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let order: [(&Server, bool); 2] = if round % 2 == 0 {
            [(&on, true), (&off, false)]
        } else {
            [(&off, false), (&on, true)]
        };
        for (srv, counting) in order {
            let cpu0 = servers::cpu_seconds(srv.pid());
            let st = work::run_clients(&srv.target, CLIENTS, secs, |c, _, _| {
                work::get_manifest(c, "bench/manifest", "latest", false)
            })?;
            let cpu_us = (servers::cpu_seconds(srv.pid()) - cpu0) * 1e6 / st.ops.max(1) as f64;
            eprintln!(
                "  round {round} metrics {}: {:.0} req/s, {cpu_us:.1} us server CPU per request",
                if counting { "on " } else { "off" },
                st.rate()
            );
            if counting {
                on_rates.push(st.rate());
                on_cpu.push(cpu_us);
            } else {
                off_rates.push(st.rate());
                off_cpu.push(cpu_us);
            }
        }
    }
    let (on_med, off_med) = (median(on_rates), median(off_rates));
    cx.rep.add(
        "metrics_manifest_get_c8_req_s",
        "manifest GET, 8 clients: metrics on (soute) / off (dist column)",
        "req/s",
        Some(on_med),
        Some(off_med),
        Some(Target::RatioMin(0.97)),
    );
    cx.rep.add(
        "metrics_manifest_get_c8_cpu_us",
        "manifest GET, 8 clients: server CPU per request, on / off",
        "us",
        Some(median(on_cpu)),
        Some(median(off_cpu)),
        Some(Target::RatioMax(1.03)),
    );
    cx.rep.note(format!(
        "metrics row: both columns are soute (on vs --metrics off), medians of {ROUNDS} alternated rounds"
    ));
    on.stop();
    off.stop();
    Ok(())
}
