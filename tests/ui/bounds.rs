//! What one web UI page may cost, whatever is stored (issue J, review
//! round 5): the real binary serving an index that lists one child 5,000
//! times (each distinct child shown once, the page's size, time and the
//! server's peak memory bounded), an index of 70 distinct children (64
//! shown, "and 6 more"), a config whose text is cut, manifest GETs that
//! stay fast while such pages load (a few at once, 429 with Retry-After
//! beyond); the multi-tag delete form's cap and its audit rows; a form over
//! 256 KiB (413); and who pushed, shown only to those who may push.

use crate::fixtures::{seed, ADMIN, READER};
use crate::pages::{csrf_of, sign_in};
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The image page of the fan-out index must stay under this (it showed
/// 1 GB before the bounds).
const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// And be built within this (release build, loaded 2-core machine).
const MAX_PAGE_TIME: Duration = Duration::from_secs(10);
/// The server's peak resident memory may grow by at most this while
/// serving such pages (it grew by 3 GB before).
const MAX_HWM_GROWTH_KIB: u64 = 200 * 1024;

fn html_get(agent: &ureq::Agent, url: &str, cookie: Option<&str>) -> Resp {
    let c = cookie.map(|c| format!("soute_session={c}"));
    let mut headers = vec![("Accept", "text/html")];
    if let Some(c) = &c {
        headers.push(("Cookie", c.as_str()));
    }
    call(agent, "GET", url, None, &headers, None)
}

/// Pushes into `repo` (an open registry): a config with `env_bytes` of Env,
/// one child manifest, an index listing it `copies` times (tag `fan`) and an
/// index of `distinct` different children (tag `wide`).
fn push_fan(
    agent: &ureq::Agent,
    base: &str,
    repo: &str,
    copies: usize,
    distinct: usize,
    env_bytes: usize,
) {
    let cfg = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": [format!("A={}", "x".repeat(env_bytes))]},
        "history": [{"created_by": "RUN make"}]
    }))
    .expect("json");
    push_blob(agent, base, repo, &cfg, None);
    let layer = b"fan layer".to_vec();
    push_blob(agent, base, repo, &layer, None);
    let (cd, ld) = (
        Descriptor::new(OCI_CONFIG, &cfg),
        Descriptor::new(OCI_LAYER, &layer),
    );
    let mut children = Vec::new();
    for i in 0..distinct.max(1) {
        let mut m: serde_json::Value = serde_json::from_slice(&image_manifest(
            OCI_MANIFEST,
            &cd,
            std::slice::from_ref(&ld),
            None,
            None,
        ))
        .expect("json");
        m["annotations"] = json!({ "pad": "y".repeat(1000), "n": i.to_string() });
        let body = serde_json::to_vec(&m).expect("json");
        let d = Descriptor::new(OCI_MANIFEST, &body);
        put_manifest(agent, base, repo, &d.digest, OCI_MANIFEST, &body, None).expect_status(201);
        children.push(d);
    }
    let fan = index_manifest(OCI_INDEX, &vec![children[0].clone(); copies]);
    put_manifest(agent, base, repo, "fan", OCI_INDEX, &fan, None).expect_status(201);
    let wide = index_manifest(OCI_INDEX, &children);
    put_manifest(agent, base, repo, "wide", OCI_INDEX, &wide, None).expect_status(201);
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn an_index_listing_one_child_5000_times_renders_a_bounded_page() {
    let served = Served::fresh(&[]);
    let base = format!("http://{}", served.addr);
    let agent = http_agent();
    // 300 KB of Env: more than a page renders of config text.
    push_fan(&agent, &base, "fan/app", 5000, 70, 300_000);
    let before = procfs::hwm_kib(served.pid());

    let t = Instant::now();
    let r = html_get(&agent, &format!("{base}/ui/i/fan/app:fan"), None);
    let took = t.elapsed();
    r.expect_status(200);
    let page = r.text();
    assert!(page.len() < MAX_PAGE_BYTES, "{} bytes", page.len());
    assert!(took < MAX_PAGE_TIME, "{took:?}");
    // One platform section (one layer row), the 5,000 entries said, the cut text marked.
    assert_eq!(count(&page, "class=\"layer\""), 1, "one distinct child");
    assert!(page.contains("data-entries=\"5000\""), "entries stated");
    assert!(page.contains("class=\"muted text-cut\""), "config text cut");
    assert!(
        !page.contains(&"x".repeat(262_145)),
        "at most 256 KiB of text"
    );

    // 70 distinct children: 64 shown and "6 more".
    let wide = html_get(&agent, &format!("{base}/ui/i/fan/app:wide"), None);
    wide.expect_status(200);
    let wide = wide.text();
    assert_eq!(count(&wide, "class=\"layer\""), 64);
    assert!(wide.contains("data-more=\"6\""), "the rest counted");
    assert!(wide.len() < MAX_PAGE_BYTES, "{} bytes", wide.len());

    // The repository page: each tag's platforms listed once, 64 at most.
    let t = Instant::now();
    let repo = html_get(&agent, &format!("{base}/ui/r/fan/app"), None);
    assert!(t.elapsed() < MAX_PAGE_TIME, "{:?}", t.elapsed());
    repo.expect_status(200);
    let repo = repo.text();
    assert!(repo.len() < MAX_PAGE_BYTES, "{} bytes", repo.len());
    assert!(
        repo.contains("class=\"muted more-platforms\" data-more=\"6\""),
        "wide: 6 more"
    );
    assert_eq!(count(&repo, "<li><a href=\"/ui/i/fan/app@"), 1 + 64);

    let after = procfs::hwm_kib(served.pid());
    assert!(
        after.saturating_sub(before) < MAX_HWM_GROWTH_KIB,
        "VmHWM {before} KiB -> {after} KiB"
    );
    drop(served);
}

#[test]
fn manifest_gets_stay_fast_while_heavy_pages_load() {
    let served = Served::fresh(&["--workers", "16"]);
    let base = format!("http://{}", served.addr);
    let agent = http_agent();
    push_fan(&agent, &base, "fan/app", 5000, 70, 300_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    let statuses = std::sync::Mutex::new(Vec::new());
    let mut slowest = Duration::ZERO;
    std::thread::scope(|s| {
        for i in 0..8 {
            let (base, statuses) = (&base, &statuses);
            s.spawn(move || {
                let agent = http_agent();
                let page = if i % 2 == 0 {
                    "/ui/i/fan/app:wide"
                } else {
                    "/ui/r/fan/app"
                };
                for _ in 0..4 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let r = html_get(&agent, &format!("{base}{page}"), None);
                    let retry = r.header("retry-after").map(str::to_string);
                    statuses.lock().expect("lock").push((r.status, retry));
                }
            });
        }
        for _ in 0..20 {
            if Instant::now() > deadline {
                break;
            }
            let t = Instant::now();
            call(
                &agent,
                "GET",
                &format!("{base}/v2/fan/app/manifests/fan"),
                None,
                &[("Accept", OCI_INDEX)],
                None,
            )
            .expect_status(200);
            slowest = slowest.max(t.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert!(
        slowest < Duration::from_secs(2),
        "slowest manifest GET {slowest:?}"
    );
    let statuses = statuses.into_inner().expect("lock");
    assert!(statuses.iter().any(|(s, _)| *s == 200), "{statuses:?}");
    for (status, retry) in &statuses {
        assert!(
            *status == 200 || (*status == 429 && retry.as_deref() == Some("1")),
            "{statuses:?}"
        );
    }
    drop(served);
}

#[test]
fn the_delete_form_is_capped_and_audits_only_the_tags_it_deleted() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let cookie = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("admin");
    let csrf = csrf_of(&html_get(&agent, &soute.url("/ui/r/lab/app"), Some(&cookie)).text());
    let c = format!("soute_session={cookie}");
    let post = |body: &str| {
        call(
            &agent,
            "POST",
            &soute.url("/ui/delete"),
            None,
            &[
                ("Origin", &seeded.base),
                ("Cookie", &c),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    };
    let audited = || {
        soute
            .registry()
            .audit_events(i64::MIN, 100_000)
            .expect("audit")
            .into_iter()
            .filter(|e| e.action == "delete")
            .collect::<Vec<_>>()
    };
    let before = audited().len();
    // 101 tags: refused, nothing deleted, nothing audited.
    let many: String = (0..101).map(|i| format!("&tag=t{i}")).collect();
    let r = post(&format!(
        "csrf={csrf}&repo=lab/app&confirm=yes&tag=keep{many}"
    ));
    r.expect_status(400);
    assert!(r.text().contains("at most 100 at once"), "{}", r.text());
    assert_eq!(audited().len(), before);
    let auth = basic(ADMIN.0, ADMIN.1);
    get(
        &agent,
        &soute.url("/v2/lab/app/manifests/keep"),
        Some(&auth),
    )
    .expect_status(200);
    // 99 unknown tags and one real one: one row, naming the real one only.
    let unknown: String = (0..99).map(|i| format!("&tag=t{i}")).collect();
    post(&format!(
        "csrf={csrf}&repo=lab/app&confirm=yes&tag=keep{unknown}"
    ))
    .expect_status(303);
    let rows = audited();
    assert_eq!(rows.len(), before + 1, "{rows:?}");
    let row = rows.iter().max_by_key(|e| e.id).expect("row");
    assert_eq!(row.detail, "tags keep (web UI)");
    get(
        &agent,
        &soute.url("/v2/lab/app/manifests/keep"),
        Some(&auth),
    )
    .expect_status(404);
    // Only unknown tags: nothing to audit.
    post(&format!("csrf={csrf}&repo=lab/app&confirm=yes{unknown}")).expect_status(303);
    assert_eq!(audited().len(), before + 1);
    // A form over 256 KiB: 413.
    let big = format!("csrf={csrf}&repo=lab/app&x={}", "a".repeat(300 * 1024));
    post(&big).expect_status(413);
}

#[test]
fn who_pushed_is_shown_only_to_those_who_may_push() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let admin = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("admin");
    let reader = sign_in(&agent, &seeded.base, READER.0, READER.1).expect("reader");
    let by = format!("by {}", ADMIN.0);
    let cell = format!("<td>{}</td>", ADMIN.0);
    for (cookie, may_push) in [(&admin, true), (&reader, false)] {
        let repo = html_get(&agent, &soute.url("/ui/r/lab/app"), Some(cookie)).text();
        let history = html_get(&agent, &soute.url("/ui/h/lab/app:moving"), Some(cookie)).text();
        assert_eq!(repo.contains(&by), may_push, "repository page: {repo}");
        assert_eq!(history.contains(&cell), may_push, "history page: {history}");
        assert_eq!(history.contains(">By<"), may_push, "history column");
    }
}
