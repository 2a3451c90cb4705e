//! Probes on accounts and the data folder: lockout of a user by others, the
//! last user deleted and the first one added while serving, file modes under
//! umask 000 and loosened by hand. Each starts and kills its own server; never
//! traffic beyond loopback.

use crate::net::{self, attacker_src, Target};
use crate::probes::{finish, status_key, Counts, Ctx, Outcome};
use crate::server::{self, Launch, Soute, ALICE, NORMAL};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

pub fn lockout(ctx: &Ctx<'_>) -> Result<Outcome, String> {
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

pub fn last_user_del(ctx: &Ctx<'_>) -> Result<Outcome, String> {
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

pub fn first_user_race(ctx: &Ctx<'_>) -> Result<Outcome, String> {
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

pub fn file_modes(ctx: &Ctx<'_>) -> Result<Outcome, String> {
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

pub fn loosened_modes(ctx: &Ctx<'_>) -> Result<Outcome, String> {
    // What this build warns about on a folder it made itself, to compare with.
    let (baseline, usual) = startup_warns(ctx, None)?;
    drop(baseline);
    let (mut s, warns) = startup_warns(ctx, Some(loosen))?;
    let (data, db) = (mode_of(&s.data), mode_of(&s.data.join("soute.db")));
    let tightened = data & 0o077 == 0 && db & 0o077 == 0;
    // The words of the warning itself: counting WARN lines against a baseline
    // depended on whether the first, short `serve` lived long enough to log.
    let named = s.warn_text().contains("looser than");
    let detail = format!(
        "data/ set to 0777, soute.db to 0644 before start: {warns} WARN lines at start ({usual} on an untouched folder), a mode named: {named}; now data/ {data:04o}, soute.db {db:04o}"
    );
    Ok(finish(
        &mut s,
        None,
        detail,
        Some(named || warns > usual || tightened),
    ))
}
