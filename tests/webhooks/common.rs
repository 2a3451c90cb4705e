//! What the webhook tests share: `soute webhook ...` as the real binary
//! (the secret on stdin), the signature check, and events picked out of a
//! receiver's record.

use crate::support::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// How long a delivery may take to arrive (the delivery thread wakes on a
/// commit; pull events are saved within a second).
pub const ARRIVAL: Duration = Duration::from_secs(20);

/// `soute webhook ARGS... --data DIR`, `stdin` written to its stdin:
/// (exit code, stdout, stderr).
pub fn webhook_cmd(data: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let out = data_cmd("webhook", data, args, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `soute webhook add NAME URL EXTRA...` (with `--secret-stdin` when a
/// secret is given), which must succeed.
pub fn add_webhook(data: &Path, name: &str, url: &str, extra: &[&str], secret: Option<&str>) {
    let mut argv = vec!["add", name, url];
    argv.extend_from_slice(extra);
    if secret.is_some() {
        argv.push("--secret-stdin");
    }
    let (code, out, err) = webhook_cmd(data, &argv, secret);
    assert_eq!(code, 0, "soute webhook {argv:?} failed: {out}{err}");
}

/// `soute webhook list --json` as JSON.
pub fn list_json(data: &Path) -> Value {
    let (code, out, err) = webhook_cmd(data, &["list", "--json"], None);
    assert_eq!(code, 0, "webhook list failed: {err}");
    serde_json::from_str(&out).expect("list --json is JSON")
}

/// Checks the delivery's media type and, with a secret, its signature
/// (recomputed here over the exact body).
pub fn check_envelope(d: &Delivery, secret: Option<&str>) {
    assert_eq!(d.method, "POST");
    assert_eq!(
        d.header("content-type"),
        Some("application/vnd.docker.distribution.events.v2+json")
    );
    let sig = d.header("x-soute-signature-256");
    match secret {
        None => assert_eq!(
            sig, None,
            "an unsigned webhook's delivery carries a signature"
        ),
        Some(secret) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
            mac.update(&d.body);
            let want = format!("sha256={}", hex(&mac.finalize().into_bytes()));
            assert_eq!(sig, Some(want.as_str()), "signature of {:?}", d.body);
        }
    }
}

/// Waits until the receiver accepted `n` events; returns them in order.
pub fn wait_events(receiver: &Receiver, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} accepted event(s)"), ARRIVAL, || {
        let events = receiver.accepted_events();
        (events.len() >= n).then_some(events)
    })
}

/// `(action, repository, tag, digest)` of an event, for comparing lists.
pub fn summary(e: &Value) -> (String, String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    (
        s(&e["action"]),
        s(&e["target"]["repository"]),
        s(&e["target"]["tag"]),
        s(&e["target"]["digest"]),
    )
}
