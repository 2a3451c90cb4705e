//! Probes on uploads: bodies announcing 10^12 bytes and a chunked body that
//! never ends, each stopped at a byte and time bound; they report what the
//! server answered and how many bytes it stored. Never fills the disk.

use crate::net::{self, attacker_src};
use crate::probes::{finish, Ctx, Outcome, MIB};
use crate::server::{self, Soute, ALICE};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

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

pub fn huge_announced(ctx: &Ctx<'_>) -> Result<Outcome, String> {
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

pub fn huge_chunked(ctx: &Ctx<'_>) -> Result<Outcome, String> {
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
