//! The probes of issue G, one function each: every one starts its own soute,
//! attacks it from loopback only, bounded in count and time, and says what the
//! server did and whether that meets the target. Sockets and the server
//! are dropped (closed, killed) when the function returns or panics.

use crate::net::{self, attacker_src, Conn, ConnState, Target};
use crate::server::{self, Launch, Seen, Soute, Watcher, ALICE, NORMAL};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Ctx<'a> {
    pub bin: &'a Path,
    pub tls: bool,
    pub quick: bool,
}

impl Ctx<'_> {
    fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    fn launch(&self, users: &[(&str, &str)]) -> Result<Soute, String> {
        server::start(&Launch {
            bin: self.bin,
            tls: self.tls,
            users,
            umask_000: false,
            before_serve: None,
        })
    }
}

/// What one probe found.
pub struct Outcome {
    /// (VmHWM, VmRSS) KiB of the server after the attack.
    pub mem_kib: Option<(u64, u64)>,
    /// The normal client's view during the attack (if the probe runs one).
    pub seen: Option<Seen>,
    pub detail: String,
    /// None: the target cannot be decided by this run (said in `detail`).
    pub pass: Option<bool>,
}

pub type ProbeFn = fn(&Ctx<'_>) -> Result<Outcome, String>;

pub struct Probe {
    pub name: &'static str,
    pub target: &'static str,
    pub run: ProbeFn,
    pub tls_only: bool,
}

pub const PROBES: &[Probe] = &[
    Probe {
        name: "bad-logins",
        target: "VmHWM <= 64 MiB; normal p99 < 100 ms, no failures",
        run: bad_logins,
        tls_only: false,
    },
    Probe {
        name: "slow-heads",
        target: "normal max < 1 s, no failures",
        run: slow_heads,
        tls_only: false,
    },
    Probe {
        name: "slow-tls",
        target: "normal max < 1 s, no failures",
        run: slow_tls,
        tls_only: true,
    },
    Probe {
        name: "idle-flood",
        target: "normal: no 503, no failures; <= 100 WARN lines",
        run: idle_flood,
        tls_only: false,
    },
    Probe {
        name: "lockout",
        target: "alice from 127.0.0.3: 200",
        run: lockout,
        tls_only: false,
    },
    Probe {
        name: "last-user-del",
        target: "anonymous push and gc: 401",
        run: last_user_del,
        tls_only: false,
    },
    Probe {
        name: "first-user-race",
        target: "wrong and no credentials right after add: 401",
        run: first_user_race,
        tls_only: false,
    },
    Probe {
        name: "file-modes",
        target: "folder 0700, db/keys/lock 0600 (umask 000)",
        run: file_modes,
        tls_only: false,
    },
    Probe {
        name: "loosened-modes",
        target: "start warns (or tightens) on a 0777 folder / 0644 db",
        run: loosened_modes,
        tls_only: false,
    },
    Probe {
        name: "huge-announced",
        target: "413 BLOB_UPLOAD_INVALID",
        run: huge_announced,
        tls_only: false,
    },
    Probe {
        name: "huge-chunked",
        target: "507 before free space < reserve",
        run: huge_chunked,
        tls_only: false,
    },
];

const MIB: u64 = 1024 * 1024;

fn ms(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::INFINITY)
}

/// The normal client's password gets cached before the attack starts.
fn warm(s: &Soute) -> Result<(), String> {
    if server::normal_get(&s.target) {
        Ok(())
    } else {
        Err(format!(
            "normal client not served before the attack: {}",
            s.log_tail()
        ))
    }
}

/// Server state after the attack; a dead server fails the probe.
fn finish(s: &mut Soute, seen: Option<Seen>, detail: String, pass: Option<bool>) -> Outcome {
    let mem = s.mem_kib();
    let alive = s.alive();
    let (detail, pass) = if alive {
        (detail, pass)
    } else {
        (format!("SERVER DIED; {detail}"), Some(false))
    };
    Outcome {
        mem_kib: alive.then_some(mem),
        seen,
        detail,
        pass,
    }
}

/// Status counts as "401x800 503x200 err x3".
#[derive(Default)]
struct Counts(BTreeMap<String, usize>);

impl Counts {
    fn add(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_default() += 1;
    }

    fn text(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}x{v}")).collect();
        parts.join(" ")
    }
}

fn status_key(r: &std::io::Result<net::Resp>) -> String {
    match r {
        Ok(r) => r.status.to_string(),
        Err(_) => "err".into(),
    }
}

/// `n` requests in flight at once from the attacker addresses: every connection
/// opened and its request written before any response is read.
fn concurrent(
    t: &Target,
    n: usize,
    req: &(dyn Fn(usize) -> String + Sync),
    deadline: Instant,
) -> Counts {
    const THREADS: usize = 50;
    let counts = Mutex::new(Counts::default());
    std::thread::scope(|scope| {
        for th in 0..THREADS {
            let counts = &counts;
            scope.spawn(move || {
                let mut conns = Vec::new();
                for i in (th..n).step_by(THREADS) {
                    if Instant::now() > deadline {
                        break;
                    }
                    let c =
                        net::open(t, attacker_src(i), Duration::from_secs(5)).and_then(|mut c| {
                            c.write_all(req(i).as_bytes())?;
                            c.flush()?;
                            Ok(c)
                        });
                    conns.push(c);
                }
                for c in conns {
                    let r = c.and_then(|mut c| net::read_response(&mut c, deadline));
                    counts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .add(status_key(&r));
                }
            });
        }
    });
    counts.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn bad_logins(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE, NORMAL])?;
    warm(&s)?;
    let (n, rounds) = ctx.pick((200, 1), (1000, 2));
    let deadline = Instant::now() + Duration::from_secs(90);
    let watcher = Watcher::start(&s.target, Duration::from_secs(100));
    let mut counts = Counts::default();
    for round in 0..rounds {
        let req = |i: usize| {
            let auth = net::basic(&format!("user{round}-{i}"), "wrong-password");
            net::head("GET", "/v2/", &[("Authorization", &auth)])
        };
        for (k, v) in concurrent(&s.target, n, &req, deadline).0 {
            *counts.0.entry(k).or_default() += v;
        }
    }
    let seen = watcher.finish();
    let (hwm, _) = s.mem_kib();
    let pass = hwm <= 64 * 1024 && ms(seen.percentile(0.99)) < 100.0 && seen.failures() == 0;
    let detail = format!("{rounds} x {n} bad logins: {}", counts.text());
    Ok(finish(&mut s, Some(seen), detail, Some(pass)))
}

/// Opens `n` connections from the attacker addresses (TCP only, or TLS with
/// the handshake done when `tls_handshake`), writes `payload` on each, keeps them.
fn open_stalled(
    t: &Target,
    n: usize,
    one_src: bool,
    tls_handshake: bool,
    payload: &[u8],
) -> (Vec<Conn>, usize) {
    const THREADS: usize = 32;
    let deadline = Instant::now() + Duration::from_secs(20);
    let plain = Target {
        addr: t.addr,
        tls: None,
    };
    let via = if tls_handshake { t } else { &plain };
    let results: Vec<(Vec<Conn>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|th| {
                scope.spawn(move || {
                    let (mut conns, mut failed) = (Vec::new(), 0);
                    for i in (th..n).step_by(THREADS) {
                        if Instant::now() > deadline {
                            failed += 1;
                            continue;
                        }
                        let src = if one_src {
                            attacker_src(0)
                        } else {
                            attacker_src(i)
                        };
                        let c = net::open(via, src, Duration::from_secs(1)).and_then(|mut c| {
                            if !payload.is_empty() {
                                c.write_all(payload)?;
                                c.flush()?;
                            }
                            Ok(c)
                        });
                        match c {
                            Ok(c) => conns.push(c),
                            Err(_) => failed += 1,
                        }
                    }
                    (conns, failed)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut all = Vec::new();
    let mut failed = 0;
    for (c, f) in results {
        all.extend(c);
        failed += f;
    }
    (all, failed)
}

/// "N held, N answered, N closed".
fn conn_states(conns: &[Conn]) -> String {
    let count = |want: ConnState| conns.iter().filter(|c| c.state() == want).count();
    format!(
        "{} held, {} answered, {} closed",
        count(ConnState::Held),
        count(ConnState::Answered),
        count(ConnState::Closed)
    )
}

/// Holds `n` stalled connections while the normal client measures.
fn stall_probe(
    ctx: &Ctx<'_>,
    payload: &dyn Fn(&Target) -> Vec<u8>,
    tls_handshake: bool,
    what: &str,
) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE, NORMAL])?;
    warm(&s)?;
    let n = ctx.pick(500, 2000);
    let hold = ctx.pick(Duration::from_secs(4), Duration::from_secs(8));
    let bytes = payload(&s.target);
    let t0 = Instant::now();
    // The normal client measures while the attack builds up and while it holds.
    let watcher = Watcher::start(&s.target, Duration::from_secs(60));
    let (conns, failed) = open_stalled(&s.target, n, false, tls_handshake, &bytes);
    let opened_in = t0.elapsed().as_secs_f64();
    std::thread::sleep(hold);
    let seen = watcher.finish();
    let states = conn_states(&conns);
    let pass = ms(seen.percentile(1.0)) < 1000.0 && seen.failures() == 0 && seen.ok > 0;
    let detail = format!(
        "{n} {what}: {} connected ({failed} failed, {opened_in:.1} s); after {} s {states}",
        conns.len(),
        hold.as_secs()
    );
    let out = finish(&mut s, Some(seen), detail, Some(pass));
    drop(conns);
    Ok(out)
}

fn slow_heads(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let half = |_: &Target| b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: sl".to_vec();
    stall_probe(ctx, &half, true, "half heads")
}

fn slow_tls(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let half = |t: &Target| {
        t.tls
            .as_ref()
            .map(net::half_client_hello)
            .unwrap_or_default()
    };
    stall_probe(ctx, &half, false, "half ClientHellos")
}

fn idle_flood(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE, NORMAL])?;
    warm(&s)?;
    let n = ctx.pick(1000, 2000);
    let hold = ctx.pick(Duration::from_secs(4), Duration::from_secs(8));
    let warns_before = s.warn_lines();
    // Idle: connected, not one byte sent (the same with --tls).
    let watcher = Watcher::start(&s.target, Duration::from_secs(60));
    let (conns, failed) = open_stalled(&s.target, n, true, false, b"");
    std::thread::sleep(hold);
    let seen = watcher.finish();
    let states = conn_states(&conns);
    let warns = s.warn_lines().saturating_sub(warns_before);
    let pass = seen.unavailable == 0 && seen.failures() == 0 && seen.ok > 0 && warns <= 100;
    let detail = format!(
        "{n} idle from 127.0.0.2: {} connected ({failed} failed); {states}; {warns} WARN lines",
        conns.len()
    );
    let out = finish(&mut s, Some(seen), detail, Some(pass));
    drop(conns);
    Ok(out)
}

fn get_as(t: &Target, src: Ipv4Addr, user: &str, pass: &str) -> std::io::Result<net::Resp> {
    let auth = net::basic(user, pass);
    net::request(
        t,
        src,
        "GET",
        "/v2/",
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    )
}

fn lockout(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE, NORMAL])?;
    let mut wrong = Counts::default();
    for i in 0..10 {
        wrong.add(status_key(&get_as(
            &s.target,
            attacker_src(0),
            ALICE.0,
            &format!("guess-{i}"),
        )));
    }
    let right = get_as(&s.target, attacker_src(1), ALICE.0, ALICE.1);
    let key = status_key(&right);
    let detail = format!(
        "10 wrong from 127.0.0.2: {}; then right from 127.0.0.3: {key}",
        wrong.text()
    );
    let pass = right.is_ok_and(|r| r.status == 200);
    Ok(finish(&mut s, None, detail, Some(pass)))
}

fn anonymous_post(t: &Target, src: Ipv4Addr, path: &str) -> String {
    status_key(&net::request(
        t,
        src,
        "POST",
        path,
        &[],
        Duration::from_secs(10),
    ))
}

fn last_user_del(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE])?;
    let before = anonymous_post(&s.target, attacker_src(0), "/v2/abuse/blobs/uploads/");
    let (deleted, err) = server::user_del(&s.bin, &s.data, ALICE.0);
    // Past any short "are there users" cache.
    std::thread::sleep(Duration::from_millis(1500));
    let push = anonymous_post(&s.target, attacker_src(1), "/v2/abuse/blobs/uploads/");
    let gc = anonymous_post(&s.target, attacker_src(2), "/v2/_soute/gc");
    let del = if deleted {
        "del ok".to_string()
    } else {
        format!("del refused ({})", err.lines().next().unwrap_or(""))
    };
    let detail = format!("push before del {before}; {del}; after: anonymous push {push}, gc {gc}");
    let pass = push == "401" && gc == "401";
    Ok(finish(&mut s, None, detail, Some(pass)))
}

fn first_user_race(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[])?;
    // Anonymous traffic keeps any "are there users" cache fresh, as on a busy open registry.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (t, stop) = (s.target.clone(), stop.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(30);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                let _ = net::request(
                    &t,
                    attacker_src(3),
                    "GET",
                    "/v2/",
                    &[],
                    Duration::from_secs(5),
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let added = server::user_add(&s.bin, &s.data, ALICE.0, ALICE.1, false);
    let t_add = Instant::now();
    let wrong = status_key(&get_as(
        &s.target,
        attacker_src(0),
        ALICE.0,
        "wrong-password",
    ));
    let after_ms = t_add.elapsed().as_secs_f64() * 1000.0;
    let anon = status_key(&net::request(
        &s.target,
        attacker_src(1),
        "GET",
        "/v2/",
        &[],
        Duration::from_secs(5),
    ));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = poller.join();
    added?;
    let detail = format!(
        "right after add: wrong password {wrong} (at {after_ms:.0} ms), no credentials {anon}"
    );
    let pass = wrong == "401" && anon == "401";
    Ok(finish(&mut s, None, detail, Some(pass)))
}

fn file_modes(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = server::start(&Launch {
        bin: ctx.bin,
        tls: true,
        users: &[ALICE],
        umask_000: true,
        before_serve: None,
    })?;
    // One upload session, so uploads/ exists.
    let auth = net::basic(ALICE.0, ALICE.1);
    let _ = net::request(
        &s.target,
        attacker_src(0),
        "POST",
        "/v2/abuse/blobs/uploads/",
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    );
    let d = &s.data;
    // (path, group/other bits that must be clear)
    let checks: Vec<(String, std::path::PathBuf, u32)> = vec![
        ("data/".into(), d.clone(), 0o077),
        ("soute.db".into(), d.join("soute.db"), 0o077),
        ("soute.db-wal".into(), d.join("soute.db-wal"), 0o077),
        ("soute.db-shm".into(), d.join("soute.db-shm"), 0o077),
        ("lock".into(), d.join("lock"), 0o077),
        ("tls/ca.key".into(), d.join("tls/ca.key"), 0o077),
        ("tls/server.key".into(), d.join("tls/server.key"), 0o077),
        ("blobs/".into(), d.join("blobs"), 0o022),
        ("uploads/".into(), d.join("uploads"), 0o022),
        ("tls/".into(), d.join("tls"), 0o022),
    ];
    let mut shown = Vec::new();
    let mut bad = 0;
    for (name, path, forbidden) in &checks {
        match std::fs::metadata(path) {
            Ok(m) => {
                let mode = m.permissions().mode() & 0o777;
                let too_open = mode & forbidden != 0;
                bad += usize::from(too_open);
                shown.push(format!(
                    "{name} {mode:04o}{}",
                    if too_open { "!" } else { "" }
                ));
            }
            Err(_) => shown.push(format!("{name} absent")),
        }
    }
    let detail = format!("{bad} too open (!): {}", shown.join(", "));
    Ok(finish(&mut s, None, detail, Some(bad == 0)))
}

fn loosen(data: &Path) {
    let set = |p: std::path::PathBuf, mode: u32| {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    };
    set(data.to_path_buf(), 0o777);
    set(data.join("soute.db"), 0o644);
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

/// WARN lines a server writes at start (300 ms of slack after its address line).
fn startup_warns(ctx: &Ctx<'_>, before_serve: Option<fn(&Path)>) -> Result<(Soute, usize), String> {
    let s = server::start(&Launch {
        bin: ctx.bin,
        tls: ctx.tls,
        users: &[ALICE],
        umask_000: false,
        before_serve,
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let warns = s.warn_lines();
    Ok((s, warns))
}

fn loosened_modes(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    // What this build warns about on a folder it made itself, to compare with.
    let (baseline, usual) = startup_warns(ctx, None)?;
    drop(baseline);
    let (mut s, warns) = startup_warns(ctx, Some(loosen))?;
    let (data, db) = (mode_of(&s.data), mode_of(&s.data.join("soute.db")));
    let tightened = data & 0o077 == 0 && db & 0o077 == 0;
    let detail = format!(
        "data/ set to 0777, soute.db to 0644 before start: {warns} WARN lines at start ({usual} on an untouched folder); now data/ {data:04o}, soute.db {db:04o}"
    );
    Ok(finish(
        &mut s,
        None,
        detail,
        Some(warns > usual || tightened),
    ))
}

/// Starts an upload session as alice; its Location.
fn upload_location(s: &Soute) -> Result<String, String> {
    let auth = net::basic(ALICE.0, ALICE.1);
    let r = net::request(
        &s.target,
        attacker_src(0),
        "POST",
        "/v2/abuse/big/blobs/uploads/",
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    )
    .map_err(|e| format!("start upload: {e}"))?;
    match r.header("location") {
        Some(loc) if r.status == 202 => Ok(loc.to_string()),
        _ => Err(format!("start upload: status {}", r.status)),
    }
}

/// The path part of a Location header (absolute URL or path).
fn location_path(loc: &str) -> String {
    if loc.starts_with('/') {
        return loc.to_string();
    }
    loc.split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string()))
        .unwrap_or(loc.to_string())
}

/// What the server did with one endless or oversized body.
struct Streamed {
    /// Status, or "no answer" while the server still reads.
    status: String,
    /// The answer carried BLOB_UPLOAD_INVALID.
    upload_invalid: bool,
    /// Growth of uploads/ while it streamed.
    stored: u64,
    sent: u64,
    secs: f64,
}

/// Streams a body (zeros; chunk frames when `chunked`) as alice until the
/// server answers, a write fails, or `max_bytes` / `max_time` is reached.
fn stream_body(
    s: &Soute,
    method: &str,
    path: &str,
    framing: (&str, &str),
    max_bytes: u64,
    max_time: Duration,
) -> Result<Streamed, String> {
    let chunked = framing.0.eq_ignore_ascii_case("transfer-encoding");
    let uploads = s.data.join("uploads");
    let stored_before = server::dir_bytes(&uploads);
    let auth = net::basic(ALICE.0, ALICE.1);
    let mut c =
        net::open(&s.target, attacker_src(1), Duration::from_secs(5)).map_err(|e| e.to_string())?;
    c.set_timeouts(Duration::from_secs(2));
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/octet-stream"),
        framing,
    ];
    let head = net::head(method, path, &headers).replace("Connection: close\r\n", "");
    c.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let block = vec![0u8; 256 * 1024];
    let frame = format!("{:x}\r\n", block.len());
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < max_bytes && t0.elapsed() < max_time {
        let w = if chunked {
            c.write_all(frame.as_bytes())
                .and_then(|_| c.write_all(&block))
                .and_then(|_| c.write_all(b"\r\n"))
        } else {
            c.write_all(&block)
        };
        if w.is_err() {
            break;
        }
        sent += block.len() as u64;
    }
    let _ = c.flush();
    let secs = t0.elapsed().as_secs_f64();
    let stored = server::dir_bytes(&uploads).saturating_sub(stored_before);
    let (status, upload_invalid) =
        match net::read_response(&mut c, Instant::now() + Duration::from_secs(3)) {
            Ok(r) => (
                r.status.to_string(),
                String::from_utf8_lossy(&r.body).contains("BLOB_UPLOAD_INVALID"),
            ),
            Err(_) => ("no answer".to_string(), false),
        };
    Ok(Streamed {
        status,
        upload_invalid,
        stored,
        sent,
        secs,
    })
}

/// Waits (at most 3 s) until the size of `dir` stops changing: the server
/// may still be writing or removing the last attempt's bytes.
fn settle(dir: &Path) {
    let end = Instant::now() + Duration::from_secs(3);
    let mut last = server::dir_bytes(dir);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(300));
        let now = server::dir_bytes(dir);
        if now == last {
            return;
        }
        last = now;
    }
}

/// A new upload session's Location, as a path.
fn new_session_path(s: &Soute) -> Result<String, String> {
    upload_location(s).map(|l| location_path(&l))
}

fn huge_announced(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE])?;
    let max = ctx.pick(32 * MIB, 128 * MIB);
    let digest = format!("sha256:{}", "0".repeat(64));
    let with_digest = |p: String| {
        let sep = if p.contains('?') { '&' } else { '?' };
        format!("{p}{sep}digest={digest}")
    };
    let attempts = [
        ("POST", with_digest("/v2/abuse/big/blobs/uploads/".into())),
        ("PATCH", new_session_path(&s)?),
        ("PUT", with_digest(new_session_path(&s)?)),
    ];
    let mut parts = Vec::new();
    let mut pass = true;
    for (method, path) in &attempts {
        settle(&s.data.join("uploads"));
        let r = stream_body(
            &s,
            method,
            path,
            ("Content-Length", "1000000000000"),
            max,
            Duration::from_secs(10),
        )?;
        pass &= r.status == "413" && r.upload_invalid;
        parts.push(format!(
            "{method} {}{} ({} MiB sent in {:.1} s, {} MiB stored)",
            r.status,
            if r.upload_invalid {
                " BLOB_UPLOAD_INVALID"
            } else {
                ""
            },
            r.sent / MIB,
            r.secs,
            r.stored / MIB
        ));
    }
    let detail = format!("Content-Length 10^12: {}", parts.join("; "));
    Ok(finish(&mut s, None, detail, Some(pass)))
}

fn huge_chunked(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    let mut s = ctx.launch(&[ALICE])?;
    let (max, time) = ctx.pick(
        (256 * MIB, Duration::from_secs(10)),
        (2048 * MIB, Duration::from_secs(30)),
    );
    let free_before = server::free_bytes(&s.data).unwrap_or(0);
    let path = new_session_path(&s)?;
    let r = stream_body(
        &s,
        "PATCH",
        &path,
        ("Transfer-Encoding", "chunked"),
        max,
        time,
    )?;
    let (status, stored, sent, secs) = (r.status, r.stored, r.sent, r.secs);
    let free_after = server::free_bytes(&s.data).unwrap_or(0);
    // With more free space than the bound, no reserve can be reached here.
    let pass = match status.as_str() {
        "507" | "413" => Some(true),
        "no answer" if free_after > 1024 * MIB + max => None,
        _ => Some(false),
    };
    let detail = format!(
        "chunked PATCH, never ends: {status}; sent {} MiB in {secs:.1} s, {} MiB in uploads/; free {} -> {} MiB{}",
        sent / MIB,
        stored / MIB,
        free_before / MIB,
        free_after / MIB,
        if pass.is_none() { " (reserve not reachable within the bound)" } else { "" }
    );
    Ok(finish(&mut s, None, detail, pass))
}
