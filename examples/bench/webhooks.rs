//! `webhook`: the small-images push workload (8 clients) on soute, in
//! rounds alternating without a webhook and with one (push and tag events
//! to a receiver in this process on loopback); reports the median images/s
//! each way, the change, the server's CPU per image each way (the "with"
//! side measured until the outbox drained, so delivery is included), and
//! the median events/s the receiver got (from the start of a run to its
//! last event, once the outbox drained).
//!
//! It must never send anything off loopback, nor leave its receiver or the
//! webhook behind (both go before it returns).

use crate::report::Target;
use crate::servers::Server;
use crate::work::Res;
use crate::workloads::small_images;
use crate::Ctx;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts events POSTed to it; answers 200.
struct Receiver {
    port: u16,
    events: Arc<AtomicU64>,
    /// When the first and the latest events came.
    first: Arc<Mutex<Option<Instant>>>,
    last: Arc<Mutex<Instant>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16) -> Res<Receiver> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let events = Arc::new(AtomicU64::new(0));
        let last = Arc::new(Mutex::new(Instant::now()));
        let first = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (e, l, s, f) = (events.clone(), last.clone(), stop.clone(), first.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Ok(n) = one_request(stream) {
                            e.fetch_add(n, Ordering::Relaxed);
                            let now = Instant::now();
                            *l.lock().unwrap_or_else(|p| p.into_inner()) = now;
                            f.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(now);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Receiver {
            port,
            events,
            first,
            last,
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Reads one request, answers 200 and closes; returns the events it held.
fn one_request(stream: std::net::TcpStream) -> Res<u64> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut len = 0usize;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let n = v["events"].as_array().map_or(0, |a| a.len() as u64);
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    Ok(n)
}

fn webhook_cmd(cx: &Ctx, args: &[&str]) -> Res<()> {
    let out = std::process::Command::new(&cx.bin)
        .arg("webhook")
        .args(args)
        .arg("--data")
        .arg(&cx.soute_data)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "soute webhook {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Rounds of (without, with): the machine is shared, so the two are
/// alternated and each side's median is compared.
const ROUNDS: u64 = 7;

pub fn webhook(cx: &mut Ctx, servers: &[&Server]) -> Res<()> {
    let soute = servers[0];
    let secs = cx.sz.small_secs;
    eprintln!("[webhook] small images, 8 clients, {ROUNDS} rounds without / with a webhook");
    let receiver = Receiver::start(0)?;
    let url = format!("http://127.0.0.1:{}/events", receiver.port);
    let (mut offs, mut ons, mut rates) = (Vec::new(), Vec::new(), Vec::new());
    // Server CPU per image (utime + stime): steadier than images/s on a
    // shared machine; "with" runs until the outbox drained (delivery included).
    let (mut off_cpu, mut on_cpu) = (Vec::new(), Vec::new());
    let cpu = || crate::servers::cpu_seconds(soute.pid());
    let (mut delivered, mut expected) = (0, 0);
    for round in 0..ROUNDS {
        let cpu0 = cpu();
        let without = small_images(soute, 8, secs, 200 + 2 * round)?;
        off_cpu.push((cpu() - cpu0) * 1e6 / without.ops.max(1) as f64);
        offs.push(without.rate());
        webhook_cmd(cx, &["add", "bench", &url, "--events", "push,tag"])?;
        let counted = receiver.events.load(Ordering::Relaxed);
        let started = Instant::now();
        let cpu0 = cpu();
        let with = small_images(soute, 8, secs, 201 + 2 * round)?;
        // Each image pushed is one push and one tag event (warm-up pushes too).
        let want = 2 * with.ops;
        let drained = Instant::now() + Duration::from_secs(60);
        let got = || receiver.events.load(Ordering::Relaxed) - counted;
        while got() < want && Instant::now() < drained {
            std::thread::sleep(Duration::from_millis(20));
        }
        on_cpu.push((cpu() - cpu0) * 1e6 / with.ops.max(1) as f64);
        std::thread::sleep(Duration::from_millis(300));
        let last = *receiver.last.lock().unwrap_or_else(|p| p.into_inner());
        let span = last.duration_since(started).as_secs_f64().max(1e-9);
        webhook_cmd(cx, &["del", "bench"])?;
        eprintln!(
            "[webhook] round {round}: {:.1} img/s without, {:.1} with; {} events in {span:.2} s; \
             server CPU {:.0} us/img without, {:.0} with",
            offs[offs.len() - 1],
            with.rate(),
            got(),
            off_cpu[off_cpu.len() - 1],
            on_cpu[on_cpu.len() - 1]
        );
        rates.push(got() as f64 / span);
        delivered += got();
        expected += want;
        ons.push(with.rate());
    }
    drop(receiver);
    let drain = drain_rate(cx, soute)?;
    let (off, on) = (median(offs), median(ons));
    let (off_us, on_us) = (median(off_cpu), median(on_cpu));
    eprintln!("[webhook] server CPU medians: {off_us:.0} us/img without, {on_us:.0} with");
    let change = (on / off - 1.0) * 100.0;
    eprintln!("[webhook] medians: {off:.1} img/s without, {on:.1} with ({change:+.1} %)");
    let rep = &mut cx.rep;
    rep.add(
        "webhook_off_img_s",
        "small images c8, no webhook",
        "img/s",
        Some(off),
        None,
        None,
    );
    rep.add(
        "webhook_on_img_s",
        "small images c8, a webhook (push,tag)",
        "img/s",
        Some(on),
        None,
        None,
    );
    rep.add(
        "webhook_img_s_change_pct",
        "small images c8: change with a webhook",
        "%",
        Some(change),
        None,
        Some(Target::AbsMin(-5.0)),
    );
    rep.add(
        "webhook_cpu_us_per_img",
        "server CPU per image, small images c8: a webhook (on) vs none (off)",
        "us",
        Some(on_us),
        Some(off_us),
        None,
    );
    rep.add(
        "webhook_events_s",
        "webhook events delivered during small images c8",
        "ev/s",
        Some(median(rates)),
        None,
        None,
    );
    rep.add(
        "webhook_drain_events_s",
        "webhook backlog drained (receiver back after a c8 push run)",
        "ev/s",
        Some(drain),
        None,
        None,
    );
    if delivered < expected {
        return Err(format!("the receiver got {delivered} of {expected} events").into());
    }
    Ok(())
}

/// Events/s of a backlog drained: one push run (8 clients) while the
/// receiver is down, then the receiver starts on its port and counts from
/// its first event to its last.
fn drain_rate(cx: &Ctx, soute: &Server) -> Res<f64> {
    let port = crate::servers::free_port();
    let url = format!("http://127.0.0.1:{port}/events");
    webhook_cmd(cx, &["add", "drain", &url, "--events", "push,tag"])?;
    let pushed = small_images(soute, 8, cx.sz.small_secs, 299)?;
    let want = 2 * pushed.ops;
    let receiver = Receiver::start(port)?;
    let until = Instant::now() + Duration::from_secs(120);
    while receiver.events.load(Ordering::Relaxed) < want && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let got = receiver.events.load(Ordering::Relaxed);
    let first = *receiver.first.lock().unwrap_or_else(|p| p.into_inner());
    let last = *receiver.last.lock().unwrap_or_else(|p| p.into_inner());
    webhook_cmd(cx, &["del", "drain"])?;
    let span = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    eprintln!("[webhook] drain: {got} of {want} events in {span:.2} s once the receiver was up");
    if got < want {
        return Err(format!("the drain got {got} of {want} events").into());
    }
    Ok(got as f64 / span.max(1e-3))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
