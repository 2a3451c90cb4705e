//! `/metrics`, `/livez` and `/readyz` of the real binary, over real HTTP on
//! loopback. The page is parsed by Prometheus' own Python parser
//! (`prometheus_client.parser`, from PyPI, in the venv `.ci/run` makes at
//! `target/prometheus-venv`; `SOUTE_PROMETHEUS_PYTHON` names another
//! interpreter); without it the tests say so and stop, except under
//! `CI=true`, where they fail. Every wait is bounded.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const REPO: &str = "secret-team/hidden-app";

/// The interpreter that has `prometheus_client`, or `None` (outside CI).
fn parser_python() -> Option<PathBuf> {
    let path = std::env::var_os("SOUTE_PROMETHEUS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/prometheus-venv/bin/python")
        });
    let has_it = Command::new(&path)
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_it {
        return Some(path);
    }
    let why = format!(
        "no Python with prometheus_client at {} (`python3 -m venv target/prometheus-venv && \
         target/prometheus-venv/bin/pip install prometheus-client`, as .ci/run does)",
        path.display()
    );
    assert!(!in_ci(), "{why}");
    eprintln!("skipping: {why}");
    None
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([family.name, family.type, s.name, s.labels, s.value])
print(json.dumps(out))
"#;

/// (family, type, sample name, labels, value) as the parser prints them.
type ParsedSample = (String, String, String, BTreeMap<String, String>, f64);

/// A parsed page: `name{k="v",...}` (labels sorted) -> value, and each
/// family's type.
struct Page {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Page {
    fn parse(python: &PathBuf, text: &str) -> Page {
        let mut child = Command::new(python)
            .args(["-c", PARSE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the parser");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("feed the parser");
        let out = child.wait_with_output().expect("parser output");
        assert!(
            out.status.success(),
            "prometheus_client refused the page: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Vec<ParsedSample> = serde_json::from_slice(&out.stdout).expect("parser JSON");
        let mut page = Page {
            samples: BTreeMap::new(),
            types: BTreeMap::new(),
        };
        for (family, kind, name, labels, value) in rows {
            page.types.insert(family, kind);
            let key = series(
                &name,
                &labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>(),
            );
            assert!(
                page.samples.insert(key.clone(), value).is_none(),
                "{key} twice"
            );
        }
        page
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0.0)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples.contains_key(&series(name, labels))
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = labels.iter().collect();
    sorted.sort();
    let inner: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// soute spawned with a metrics listener; (server, its metrics address).
fn served_with_metrics(extra: &[&str]) -> (Served, String) {
    let mut args = vec!["--metrics-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let served = Served::fresh(&args);
    let metrics = served
        .proc
        .wait_line("soute metrics on ", STARTUP)
        .split_whitespace()
        .next()
        .expect("metrics address")
        .to_string();
    (served, metrics)
}

fn soute_ok(served: &Served, args: &[&str]) -> String {
    let dir = served.folder().display().to_string();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--data", &dir]);
    let (ok, out, err) = run_soute(&all);
    assert!(ok, "soute {args:?}: {out}{err}");
    out
}

fn requests(endpoint: &str, method: &str, status: &str) -> [(&'static str, String); 3] {
    [
        ("endpoint", endpoint.to_string()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ]
}

fn labels<'a>(l: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    l.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn counters_move_by_the_workload_and_prometheus_parses_the_page() {
    let Some(python) = parser_python() else {
        return;
    };
    let (served, metrics) = served_with_metrics(&["--disk-reserve", "1MiB"]);
    served.user_ok(&["add", "root", "--admin"], Some("root-pw"));
    let agent = http_agent();
    let base = format!("http://{}", served.addr);
    let scrape = |what: &str| {
        let r = get(&agent, &format!("{metrics}/metrics"), None);
        r.expect_status(200);
        let ctype = r.header("content-type").unwrap_or("").to_string();
        assert!(
            ctype.starts_with("text/plain; version=0.0.4"),
            "{what}: {ctype}"
        );
        let text = r.text();
        assert!(
            !text.contains("secret-team") && !text.contains("hidden-app") && !text.contains("root"),
            "{what}: a repository or user name in the page:\n{text}"
        );
        (Page::parse(&python, &text), text)
    };
    let (before, _) = scrape("before");
    let root = basic("root", "root-pw");

    // The workload: two blobs and a manifest pushed, three pulls, one 404,
    // a failed login, a GC and a backup.
    let layer = pseudo_random_bytes(7, 70_000);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    for blob in [&layer, &config] {
        let url = format!("{base}/v2/{REPO}/blobs/uploads/?digest={}", sha256(blob));
        call(&agent, "POST", &url, Some(&root), &[], Some(blob)).expect_status(201);
    }
    let manifest = image_manifest(
        OCI_MANIFEST,
        &Descriptor::new(OCI_CONFIG, &config),
        &[Descriptor::new(OCI_LAYER, &layer)],
        None,
        None,
    );
    let url = format!("{base}/v2/{REPO}/manifests/v1");
    let ctype = [("Content-Type", OCI_MANIFEST)];
    call(&agent, "PUT", &url, Some(&root), &ctype, Some(&manifest)).expect_status(201);
    for _ in 0..3 {
        let r = get(&agent, &url, Some(&root));
        r.expect_status(200);
        assert_eq!(r.body, manifest);
    }
    get(
        &agent,
        &format!("{base}/v2/{REPO}/manifests/nope"),
        Some(&root),
    )
    .expect_error(404, &["MANIFEST_UNKNOWN"]);
    get(
        &agent,
        &format!("{base}/v2/"),
        Some(&basic("root", "wrong")),
    )
    .expect_status(401);
    let gc = format!("{base}/v2/_soute/gc");
    call(&agent, "POST", &gc, Some(&root), &[], Some(b"")).expect_status(200);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("epoch")
        .as_secs() as f64;
    let dest = tempfile::tempdir().expect("tempdir");
    soute_ok(
        &served,
        &["backup", &dest.path().join("b").display().to_string()],
    );

    let (after, text) = scrape("after");
    let delta = |name: &str, l: &[(&str, &str)]| after.get(name, l) - before.get(name, l);
    let req = "soute_http_requests_total";
    for (endpoint, method, status, n) in [
        ("upload", "POST", "201", 2.0),
        ("manifest", "PUT", "201", 1.0),
        ("manifest", "GET", "200", 3.0),
        ("manifest", "GET", "404", 1.0),
        ("base", "GET", "401", 1.0),
        ("admin", "POST", "200", 1.0),
        // the first scrape, counted once its answer was written
        ("metrics", "GET", "200", 1.0),
    ] {
        let l = requests(endpoint, method, status);
        assert_eq!(
            delta(req, &labels(&l)),
            n,
            "{endpoint} {method} {status}\n{text}"
        );
    }
    let total_before: f64 = before
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("soute_http_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    let total_after: f64 = after
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("soute_http_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        total_after - total_before,
        10.0,
        "no other request was counted\n{text}"
    );
    // The duration histogram of manifests: 5 requests, cumulative buckets.
    let h = "soute_http_request_duration_seconds";
    assert_eq!(after.types.get(h).map(String::as_str), Some("histogram"));
    let m = [("endpoint", "manifest")];
    assert_eq!(delta(&format!("{h}_count"), &m), 5.0);
    let inf = [("endpoint", "manifest"), ("le", "+Inf")];
    assert_eq!(
        after.get(&format!("{h}_bucket"), &inf),
        after.get(&format!("{h}_count"), &m)
    );
    let mut last = 0.0;
    for le in ["0.001", "0.01", "0.1", "1", "10", "+Inf"] {
        let v = after.get(
            &format!("{h}_bucket"),
            &[("endpoint", "manifest"), ("le", le)],
        );
        assert!(v >= last, "buckets are cumulative: le={le} {v} < {last}");
        last = v;
    }
    assert!(after.get(&format!("{h}_sum"), &m) > 0.0);
    // Bytes: exactly the three bodies sent; at least the three manifests back.
    let sent_bodies = (layer.len() + config.len() + manifest.len()) as f64;
    assert_eq!(delta("soute_http_received_bytes_total", &[]), sent_bodies);
    assert!(delta("soute_http_sent_bytes_total", &[]) >= 3.0 * manifest.len() as f64);
    // Logins.
    assert_eq!(
        delta("soute_login_failures_total", &[("reason", "password")]),
        1.0
    );
    assert_eq!(
        delta("soute_login_failures_total", &[("reason", "token")]),
        0.0
    );
    assert_eq!(delta("soute_login_throttled_total", &[]), 0.0);
    // root's right password once (then the login cache), the wrong one once.
    assert_eq!(delta("soute_password_checks_total", &[]), 2.0);
    assert_eq!(after.get("soute_password_check_rejections_total", &[]), 0.0);
    assert_eq!(after.get("soute_password_checks_queued", &[]), 0.0);
    // What is stored, from SQLite.
    let private = [("kind", "private")];
    let cached = [("kind", "cached")];
    assert_eq!(after.get("soute_blobs", &private), 2.0);
    assert_eq!(after.get("soute_blobs", &cached), 0.0);
    assert_eq!(after.get("soute_manifests", &private), 1.0);
    assert_eq!(after.get("soute_tags", &private), 1.0);
    assert_eq!(after.get("soute_repositories", &private), 1.0);
    assert_eq!(after.get("soute_stored_bytes", &private), sent_bodies);
    assert_eq!(after.get("soute_upload_sessions", &[]), 0.0);
    assert_eq!(after.get("soute_uploads_in_progress", &[]), 0.0);
    // GC and the backup (another process) with their results.
    assert_eq!(delta("soute_gc_runs_total", &[]), 1.0);
    assert_eq!(after.get("soute_gc_failures_total", &[]), 0.0);
    for job in ["gc", "backup"] {
        let j = [("job", job)];
        assert_eq!(after.get("soute_last_run_success", &j), 1.0, "{job}");
        assert!(
            after.get("soute_last_run_timestamp_seconds", &j) >= started - 60.0,
            "{job}"
        );
    }
    assert!(
        !after.has("soute_last_run_success", &[("job", "verify")]),
        "no verify ran"
    );
    // No webhook is configured: nothing delivered, failed, dropped or waiting.
    for family in [
        "soute_webhook_delivered_total",
        "soute_webhook_failed_attempts_total",
        "soute_webhook_dropped_total",
        "soute_webhook_backlog",
    ] {
        assert_eq!(after.get(family, &[]), 0.0, "{family}");
    }
    // The transport: this scrape is on a connection, in a worker.
    assert!(after.get("soute_http_connections_open", &[]) >= 1.0);
    assert!(after.get("soute_http_workers_busy", &[]) >= 1.0);
    assert!(after.get("soute_http_workers", &[]) >= 1.0);
    assert!(delta("soute_http_connections_accepted_total", &[]) >= 1.0);
    assert_eq!(
        after
            .types
            .get("soute_http_connections_refused")
            .map(String::as_str),
        Some("counter")
    );
    // The disk and the reserve.
    assert_eq!(after.get("soute_disk_reserve_bytes", &[]), 1024.0 * 1024.0);
    assert!(after.get("soute_disk_free_bytes", &[]) > 0.0);
    assert!(after.get("soute_disk_total_bytes", &[]) >= after.get("soute_disk_free_bytes", &[]));
    assert_eq!(
        after.get(
            "soute_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // Ready, every check named.
    let r = get(&agent, &format!("{base}/readyz"), None);
    r.expect_status(200);
    let body = r.json();
    assert_eq!(body["status"], "ready", "{body}");
    for check in ["database", "data_folder", "disk"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
    }
    assert!(
        body["checks"].get("tls_certificate").is_none(),
        "no TLS: {body}"
    );
    drop(served);
}

#[test]
fn metrics_need_admin_or_the_metrics_scope_except_on_the_metrics_listener() {
    let (served, metrics) = served_with_metrics(&[]);
    served.user_ok(&["add", "root", "--admin"], Some("root-pw"));
    served.user_ok(&["add", "bob"], Some("bob-pw"));
    served.user_ok(&["add", "carol"], Some("carol-pw"));
    soute_ok(&served, &["access", "grant", "bob", "**", "pull,push"]);
    soute_ok(&served, &["access", "grant", "carol", "**", "metrics"]);
    let secret = soute_ok(
        &served,
        &[
            "token", "create", "scraper", "--user", "root", "--scope", "metrics",
        ],
    );
    let scraper = basic("root", secret.trim());
    let agent = http_agent();
    let base = format!("http://{}", served.addr);
    let page = format!("{base}/metrics");

    let anonymous = get(&agent, &page, None);
    anonymous.expect_error(401, &["UNAUTHORIZED"]);
    assert!(anonymous.header("www-authenticate").is_some());
    let bob = get(&agent, &page, Some(&basic("bob", "bob-pw")));
    bob.expect_error(403, &["DENIED"]);
    assert!(
        bob.text().contains("bob may not read /metrics"),
        "{}",
        bob.text()
    );
    for (who, auth) in [
        ("the admin", basic("root", "root-pw")),
        ("the metrics token", scraper.clone()),
        ("a user granted metrics", basic("carol", "carol-pw")),
    ] {
        let r = get(&agent, &page, Some(&auth));
        r.expect_status(200);
        assert!(
            r.text()
                .contains("# TYPE soute_http_requests_total counter"),
            "{who}"
        );
    }
    // A bearer token from the token service asked for `registry:soute:metrics`.
    let realm = format!("{base}/v2/token");
    let scope = ["registry:soute:metrics"];
    let root_pw = basic("root", "root-pw");
    let bearer = fetch_token(&agent, &realm, Some("soute"), &scope, Some(&root_pw))
        .unwrap_or_else(|r| panic!("token: {} {}", r.status, r.text()));
    get(&agent, &page, Some(&format!("Bearer {bearer}"))).expect_status(200);
    let other = ["registry:catalog:*"];
    let listing = fetch_token(&agent, &realm, Some("soute"), &other, Some(&root_pw))
        .unwrap_or_else(|r| panic!("token: {} {}", r.status, r.text()));
    // Without the grant: 401 insufficient_scope (a new token would get it).
    let r = get(&agent, &page, Some(&format!("Bearer {listing}")));
    r.expect_status(401);
    let challenge = r.header("www-authenticate").unwrap_or("");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    // The scope gives nothing else: no pull, no admin endpoint.
    get(
        &agent,
        &format!("{base}/v2/any/manifests/v1"),
        Some(&scraper),
    )
    .expect_error(403, &["DENIED"]);
    let gc = format!("{base}/v2/_soute/gc?dry_run=true");
    call(&agent, "POST", &gc, Some(&scraper), &[], Some(b"")).expect_error(403, &["DENIED"]);
    // ... and the metrics action exists only on `**`.
    let dir = served.folder().display().to_string();
    let (ok, _, err) = run_soute(&[
        "access", "grant", "bob", "team/**", "metrics", "--data", &dir,
    ]);
    assert!(!ok && err.contains("grant it on '**'"), "{err}");

    // The metrics listener: no auth, only its three paths.
    let r = get(&agent, &format!("{metrics}/metrics"), None);
    r.expect_status(200);
    assert!(
        r.text().contains(
            "soute_http_requests_total{endpoint=\"metrics\",method=\"GET\",status=\"403\"} 1"
        ),
        "{}",
        r.text()
    );
    get(&agent, &format!("{metrics}/livez"), None).expect_status(200);
    get(&agent, &format!("{metrics}/readyz"), None).expect_status(200);
    get(&agent, &format!("{metrics}/v2/"), None).expect_error(404, &["UNSUPPORTED"]);
    get(&agent, &format!("{metrics}/v2/any/manifests/v1"), None)
        .expect_error(404, &["UNSUPPORTED"]);
    call(
        &agent,
        "POST",
        &format!("{metrics}/metrics"),
        None,
        &[],
        Some(b""),
    )
    .expect_status(405);
    // Health needs no credentials on the main listener either.
    get(&agent, &format!("{base}/livez"), None).expect_status(200);
    get(&agent, &format!("{base}/readyz"), None).expect_status(200);
    drop(served);
}

#[test]
fn readyz_fails_below_the_disk_reserve_and_names_the_check() {
    // No filesystem here has 1000 TiB free: the reserve is never met.
    let (served, metrics) = served_with_metrics(&["--disk-reserve", "1000TiB"]);
    let agent = http_agent();
    let r = get(&agent, &format!("{metrics}/readyz"), None);
    r.expect_status(503);
    let body = r.json();
    assert_eq!(body["status"], "not ready", "{body}");
    assert_eq!(body["checks"]["disk"]["ok"], false, "{body}");
    let detail = body["checks"]["disk"]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("not above the disk reserve of 1099511627776000 bytes"),
        "{body}"
    );
    assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
    assert_eq!(body["checks"]["data_folder"]["ok"], true, "{body}");
    get(&agent, &format!("{metrics}/livez"), None).expect_status(200);
    let base = format!("http://{}", served.addr);
    get(&agent, &format!("{base}/readyz"), None).expect_status(503);

    // A burst is answered from one check a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let start = Instant::now();
    let mut checked = std::collections::BTreeSet::new();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(900) && Instant::now() < deadline && n < 2000 {
        let r = get(&agent, &format!("{base}/readyz"), None);
        r.expect_status(503);
        checked.insert(r.json()["checked_at_ms"].as_u64().expect("checked_at_ms"));
        n += 1;
    }
    assert!(n >= 20, "only {n} answers in 0.9 s");
    assert!(
        checked.len() <= 2,
        "{} checks for {n} requests in under 1 s",
        checked.len()
    );
    drop(served);
}

#[test]
fn readyz_gives_paths_and_byte_figures_only_to_admins_and_the_metrics_listener() {
    let (served, metrics) = served_with_metrics(&[]);
    served.user_ok(&["add", "root", "--admin"], Some("root-pw"));
    served.user_ok(&["add", "bob"], Some("bob-pw"));
    let agent = http_agent();
    let base = format!("http://{}", served.addr);
    let folder = served.folder().display().to_string();
    let detail = |body: &serde_json::Value| body["checks"].to_string();
    for auth in [None, Some(basic("bob", "bob-pw"))] {
        let r = get(&agent, &format!("{base}/readyz"), auth.as_deref());
        r.expect_status(200);
        let body = r.json();
        assert_eq!(body["checks"]["disk"]["ok"], true, "{body}");
        assert_eq!(
            body["checks"]["disk"]["detail"], "free space is above the disk reserve",
            "{body}"
        );
        assert!(!detail(&body).contains(&folder), "{body}");
        assert!(!detail(&body).contains("bytes"), "{body}");
    }
    for (url, auth) in [
        (format!("{base}/readyz"), Some(basic("root", "root-pw"))),
        (format!("{metrics}/readyz"), None),
    ] {
        let body = get(&agent, &url, auth.as_deref()).json();
        assert!(detail(&body).contains(&folder), "{url}: {body}");
        assert!(detail(&body).contains("bytes free"), "{url}: {body}");
    }
    drop(served);
}

#[test]
fn readyz_checks_the_certificate_when_soute_serves_tls() {
    let temp = tempfile::tempdir().expect("tempdir");
    let mut cmd = soute_bin();
    cmd.args(["serve", "--data"])
        .arg(temp.path().join("data"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "auto",
            "--gc-interval",
            "0",
            "--workers",
            "4",
            "--metrics-listen",
            "127.0.0.1:0",
        ]);
    let proc = Proc::spawn(cmd);
    proc.wait_line("soute listening on https://", STARTUP);
    let metrics = proc.wait_line("soute metrics on ", STARTUP);
    let metrics = metrics
        .split_whitespace()
        .next()
        .expect("address")
        .to_string();
    let r = get(&http_agent(), &format!("{metrics}/readyz"), None);
    r.expect_status(200);
    let body = r.json();
    let tls = &body["checks"]["tls_certificate"];
    assert_eq!(tls["ok"], true, "{body}");
    assert!(
        tls["detail"].as_str().unwrap_or("").contains("more days"),
        "{body}"
    );
    drop(proc);
}

#[test]
fn metrics_off_serves_no_page() {
    let (served, metrics) = served_with_metrics(&["--metrics", "off"]);
    let agent = http_agent();
    get(&agent, &format!("{metrics}/metrics"), None).expect_error(404, &["UNSUPPORTED"]);
    get(&agent, &format!("{metrics}/readyz"), None).expect_status(200);
    drop(served);
}
