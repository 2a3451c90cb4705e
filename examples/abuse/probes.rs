//! The table of issue G's probes, what they share, and the probes on
//! connections (bad logins, slow heads, idle floods). One function per probe
//! (the others in accounts.rs and uploads.rs): every one starts its own soute,
//! attacks it from loopback only, bounded in count and time, and says what the
//! server did and whether that meets the target. Sockets and the server
//! are dropped (closed, killed) when the function returns or panics.

use crate::net::{self, attacker_src, Conn, ConnState, Target};
use crate::server::{self, Launch, Seen, Soute, Watcher, ALICE, NORMAL};
use crate::{accounts, uploads};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Ctx<'a> {
    pub bin: &'a Path,
    pub tls: bool,
    pub quick: bool,
}

impl Ctx<'_> {
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    pub fn launch(&self, users: &[(&str, &str)]) -> Result<Soute, String> {
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
        run: accounts::lockout,
        tls_only: false,
    },
    Probe {
        name: "last-user-del",
        target: "anonymous push and gc: 401",
        run: accounts::last_user_del,
        tls_only: false,
    },
    Probe {
        name: "first-user-race",
        target: "wrong and no credentials right after add: 401",
        run: accounts::first_user_race,
        tls_only: false,
    },
    Probe {
        name: "file-modes",
        target: "folder 0700, db/keys/lock 0600 (umask 000)",
        run: accounts::file_modes,
        tls_only: false,
    },
    Probe {
        name: "loosened-modes",
        target: "start warns (or tightens) on a 0777 folder / 0644 db",
        run: accounts::loosened_modes,
        tls_only: false,
    },
    Probe {
        name: "huge-announced",
        target: "413 BLOB_UPLOAD_INVALID",
        run: uploads::huge_announced,
        tls_only: false,
    },
    Probe {
        name: "huge-chunked",
        target: "507 before free space < reserve",
        run: uploads::huge_chunked,
        tls_only: false,
    },
];

pub const MIB: u64 = 1024 * 1024;

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
pub fn finish(s: &mut Soute, seen: Option<Seen>, detail: String, pass: Option<bool>) -> Outcome {
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
pub struct Counts(BTreeMap<String, usize>);

impl Counts {
    pub fn add(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_default() += 1;
    }

    pub fn text(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}x{v}")).collect();
        parts.join(" ")
    }
}

pub fn status_key(r: &std::io::Result<net::Resp>) -> String {
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
    let threads = s.threads();
    let (hwm, _) = s.mem_kib();
    let pass = hwm <= 64 * 1024 && ms(seen.percentile(0.99)) < 100.0 && seen.failures() == 0;
    let detail = format!(
        "{rounds} x {n} bad logins: {}; server threads {threads}",
        counts.text()
    );
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
    let threads = s.threads();
    let pass = ms(seen.percentile(1.0)) < 1000.0 && seen.failures() == 0 && seen.ok > 0;
    let detail = format!(
        "{n} {what}: {} connected ({failed} failed, {opened_in:.1} s); after {} s {states}; server threads {threads}",
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
