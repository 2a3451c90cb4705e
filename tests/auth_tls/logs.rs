//! Credentials never reach the log, even at debug level.

use crate::support::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use std::time::Duration;

const MARKER: &str = "S3cret-Marker-xyz";

#[test]
fn passwords_never_reach_stdout_or_stderr() {
    let data = tempfile::tempdir().expect("tempdir");
    user_cmd(data.path(), &["add", "logger"], Some(MARKER));

    let mut cmd = soute_bin();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "off",
        "--log-level",
        "debug",
        "--data",
    ])
    .arg(data.path());
    let proc = Proc::spawn(cmd);
    let first = proc
        .lines
        .recv_timeout(Duration::from_secs(20))
        .expect("soute prints its address");
    let addr = first
        .strip_prefix("soute listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let base = format!("http://{addr}");
    let agent = http_agent();

    let wrong_pw = format!("{MARKER}-wrong");
    let right = basic("logger", MARKER);
    let wrong = basic("logger", &wrong_pw);
    let unknown = basic("nobody", MARKER);
    let v2 = format!("{base}/v2/");
    get(&agent, &v2, Some(&right)).expect_status(200);
    get(&agent, &v2, Some(&right)).expect_status(200);
    get(&agent, &v2, Some(&wrong)).expect_challenge("soute");
    get(&agent, &v2, Some(&unknown)).expect_challenge("soute");
    get(&agent, &format!("{base}/v2/_catalog"), Some(&wrong)).expect_challenge("soute");
    // Malformed values carrying the secret are not logged either.
    let raw_values = [
        format!("Basic {MARKER}"),
        format!("Bearer {MARKER}"),
        format!("Basic {}", STANDARD.encode(MARKER)),
    ];
    for v in &raw_values {
        get(&agent, &v2, Some(v)).expect_challenge("soute");
    }
    // A request the server refuses before the handler sees it.
    let r = call(
        &agent,
        "GET",
        &format!("{base}/v2/x/manifests/%zz"),
        Some(&wrong),
        &[],
        None,
    );
    assert!(r.status >= 400, "{}", r.status);

    proc.terminate();
    let (status, stdout, stderr) = proc.finish(Duration::from_secs(20));
    assert!(status.success(), "soute exited with {status}: {stderr}");
    // The log did run at debug level (so silence is not why the secret is absent).
    assert!(stderr.contains("failed login for user"), "{stderr}");
    assert!(stderr.contains("/v2/"), "no access log: {stderr}");
    assert!(stderr.contains("stopped"), "no orderly stop: {stderr}");

    let mut needles: Vec<String> = vec![
        MARKER.to_string(),
        wrong_pw.clone(),
        STANDARD.encode(MARKER),
        STANDARD_NO_PAD.encode(MARKER),
        STANDARD.encode(&wrong_pw),
    ];
    for v in [&right, &wrong, &unknown] {
        needles.push(v.trim_start_matches("Basic ").to_string());
    }
    // The marker's base64 at every alignment inside a longer value.
    for shift in 0..3 {
        let padded = format!("{}{MARKER}", "x".repeat(shift));
        let enc = STANDARD_NO_PAD.encode(padded);
        // Skip the characters that also depend on the prefix.
        let skip = (shift * 4).div_ceil(3) + 1;
        needles.push(enc[skip..enc.len() - 2].to_string());
    }
    for needle in &needles {
        assert!(
            !stdout.contains(needle.as_str()),
            "stdout holds {needle:?}:\n{stdout}"
        );
        assert!(
            !stderr.contains(needle.as_str()),
            "stderr holds {needle:?}:\n{stderr}"
        );
    }
}
