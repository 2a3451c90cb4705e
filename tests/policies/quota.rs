//! Quotas through the HTTP API with exact numbers: a manifest PUT past the
//! quota is 403 DENIED "quota exceeded: N of M bytes" and stores nothing; a
//! layer shared by two covered repositories counts once; a blob upload of
//! known size past it is refused before a byte is stored; deletes give the
//! bytes back; `quota list` agrees with `du`.

use crate::helpers::*;

/// `quota list --json`: the used bytes of `pattern`.
fn used(dir: &std::path::Path, pattern: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&cli(dir, &["quota", "list", "--json"])).expect("quota json");
    v.as_array()
        .and_then(|a| a.iter().find(|q| q["pattern"] == pattern))
        .and_then(|q| q["used_bytes"].as_u64())
        .unwrap_or_else(|| panic!("no quota {pattern} in {v}"))
}

/// Bytes an image commits: its config, layers and manifest.
fn bytes(i: &Image) -> u64 {
    (i.blobs().iter().map(|b| b.len()).sum::<usize>() + i.manifest().len()) as u64
}

#[test]
fn quota_refusals_with_exact_numbers() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    let a = image("A");
    a.push(&c, "lab/one", "v1").expect("push before any quota");
    let used_a = bytes(&a);
    let out = cli(
        &dir,
        &["quota", "set", "lab/**", &(used_a + 30).to_string()],
    );
    assert!(
        out.contains(&format!("used now {used_a} B ({used_a} bytes)")),
        "{out}"
    );
    assert_eq!(used(&dir, "lab/**"), used_a);

    // B's blobs (21 bytes) fit; its manifest does not.
    let b = image("B");
    for blob in b.blobs() {
        c.blob("lab/two", blob).expect("blobs fit");
    }
    let r = c.manifest("lab/two", "v1", &b.manifest()).expect("put");
    r.expect_error(403, &["DENIED"]);
    let adds = bytes(&b);
    assert_eq!(
        message(&r),
        format!(
            "quota exceeded: {} of {} bytes (quota lab/**: {used_a} used, this push adds {adds})",
            used_a + adds,
            used_a + 30
        )
    );
    c.get(&format!("/v2/lab/two/manifests/{}", b.digest()))
        .expect("get")
        .expect_status(404);
    assert_eq!(used(&dir, "lab/**"), used_a, "nothing of B counted");
    // Outside the pattern nothing is refused.
    b.push(&c, "other/app", "v1").expect("not covered");

    // C shares A's layer: only its config and manifest count, exactly to the limit.
    let layer_a = a.layers[0].clone();
    let cc = Image::new(b"config of C", &[&layer_a]);
    let limit = used_a + cc.config.len() as u64 + cc.manifest().len() as u64;
    cli(&dir, &["quota", "set", "lab/**", &limit.to_string()]);
    cc.push(&c, "lab/two", "v1")
        .expect("a shared layer counts once");
    assert_eq!(used(&dir, "lab/**"), limit);

    // Full: a 100-byte monolithic upload is refused before a byte is stored.
    let blob = vec![7u8; 100];
    let d = sha256(&blob);
    let r = c
        .post(&format!("/v2/lab/two/blobs/uploads/?digest={d}"), &blob)
        .expect("post");
    r.expect_error(403, &["DENIED"]);
    // B's blobs, linked into lab/two with no manifest, hold disk: they count.
    let pending_b: u64 = b.blobs().iter().map(|x| x.len() as u64).sum();
    assert_eq!(
        message(&r),
        format!(
            "quota exceeded: {} of {limit} bytes (quota lab/**: {limit} used by images, \
             {pending_b} in blobs no manifest references yet, this blob adds 100; push the \
             manifest of the blobs already sent, or delete them)",
            limit + pending_b + 100
        )
    );
    c.get(&format!("/v2/lab/two/blobs/{d}"))
        .expect("get")
        .expect_status(404);
    // A blob the quota counts already is free.
    c.blob("lab/three", &layer_a).expect("already counted");

    // A chunk with Content-Length past the quota: refused, the session stays at 0.
    let r = c.post("/v2/lab/two/blobs/uploads/", b"").expect("start");
    r.expect_status(202);
    let location = r.header("location").expect("location").to_string();
    let path = location.trim_start_matches(&c.base).to_string();
    let r = call(
        &http_agent(),
        "PATCH",
        &format!("{}{path}", c.base),
        None,
        &[("Content-Type", "application/octet-stream")],
        Some(&blob),
    );
    r.expect_error(403, &["DENIED"]);
    let r = c.get(&path).expect("status");
    r.expect_status(204);
    assert_eq!(r.header("range"), Some("0-0"));

    // Deleting C gives its config and manifest back (A still holds the layer).
    c.delete(&format!("/v2/lab/two/manifests/{}", cc.digest()))
        .expect("delete")
        .expect_status(202);
    assert_eq!(used(&dir, "lab/**"), used_a);
    // ... which agrees with du's logical bytes of lab/one, the only repository left counted.
    let du: serde_json::Value =
        serde_json::from_str(&cli(&dir, &["du", "lab/one", "--json"])).expect("du json");
    assert_eq!(
        du["repositories"][0]["logical_bytes"].as_u64(),
        Some(used_a)
    );

    let listed = cli(&dir, &["quota", "list"]);
    let row: Vec<&str> = listed
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let (limit_s, used_s) = (limit.to_string(), used_a.to_string());
    let pct = format!("{:.0}%", used_a as f64 * 100.0 / limit as f64);
    assert_eq!(row, ["lab/**", &limit_s, &used_s, &pct], "{listed}");
    cli(&dir, &["quota", "del", "lab/**"]);
    b.push(&c, "lab/two", "v1").expect("no quota any more");
    let (ok, _, err) = try_cli(&dir, &["quota", "del", "lab/**"]);
    assert!(!ok && err.contains("no quota for lab/**"), "{err}");
}

#[test]
fn every_matching_quota_applies_and_sizes_parse() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    let out = cli(&dir, &["quota", "set", "**", "10GB"]);
    assert!(out.contains("(10000000000 bytes)"), "{out}");
    let out = cli(&dir, &["quota", "set", "team/app", "500MiB"]);
    assert!(out.contains("(524288000 bytes)"), "{out}");
    cli(&dir, &["quota", "set", "team/**", "100"]);
    let err = image("A")
        .push(&c, "team/app", "v1")
        .expect_err("team/** is small");
    assert!(err.contains("(quota team/**: 0 used"), "{err}");
    for bad in [
        &["quota", "set", "**", "lots"][..],
        &["quota", "set", "Bad", "1GB"][..],
        &["quota", "set", "**"][..],
    ] {
        let (ok, _, err) = try_cli(&dir, bad);
        assert!(!ok && !err.is_empty(), "{bad:?} accepted");
    }
}

/// The push path's cost: a manifest PUT charged to a quota does a few
/// indexed reads per layer, not a scan of the registry. 200 repositories
/// share a base layer (the worst case of the design: each charge lists every
/// repository referencing it); PUTs into a covered and an uncovered
/// namespace alternate. Prints the medians; the bound is far (5x + 20 ms).
#[test]
fn a_quota_charge_does_not_scan_the_registry() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    let base = b"a base layer every repository shares".to_vec();
    for i in 0..200 {
        let config = format!("config of base {i}");
        let own = format!("layer of base {i}");
        Image::new(config.as_bytes(), &[&base, own.as_bytes()])
            .push(&c, &format!("q/base-{i}"), "v1")
            .expect("seed");
    }
    cli(&dir, &["quota", "set", "q/**", "100GB"]);
    let mut covered = Vec::new();
    let mut uncovered = Vec::new();
    for i in 0..30 {
        for (ns, times) in [("q", &mut covered), ("n", &mut uncovered)] {
            let repo = format!("{ns}/new-{i}");
            let config = format!("config of {repo}");
            let img = Image::new(config.as_bytes(), &[&base]);
            for b in img.blobs() {
                c.blob(&repo, b).expect("blob");
            }
            let t = std::time::Instant::now();
            c.manifest(&repo, "v1", &img.manifest())
                .expect("put")
                .expect_status(201);
            times.push(t.elapsed());
        }
    }
    covered.sort();
    uncovered.sort();
    let (with, without) = (covered[15], uncovered[15]);
    println!("manifest PUT median over 30: {with:?} charged to q/** (200 repositories share its layer), {without:?} uncovered");
    assert!(
        with < without * 5 + std::time::Duration::from_millis(20),
        "{with:?} vs {without:?}"
    );
    let seeded = {
        let v: serde_json::Value =
            serde_json::from_str(&cli(&dir, &["quota", "list", "--json"])).expect("json");
        v[0]["used_bytes"].as_u64().expect("used")
    };
    let du: serde_json::Value =
        serde_json::from_str(&cli(&dir, &["du", "--json"])).expect("du json");
    let logical_q: u64 = du["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("q/")))
        .map(|r| r["logical_bytes"].as_u64().unwrap_or(0))
        .sum();
    // du counts the shared layer once per repository; the quota once in all.
    assert_eq!(seeded, logical_q - 229 * base.len() as u64);
}

/// Blobs uploaded without a manifest hold disk until GC drops their links,
/// so they count against the quota at the next link: an attacker with push
/// rights cannot store 20x the quota as "pushes in progress". The same blob
/// again, or one an image already counts, adds nothing; a mount of an
/// outside blob is a link too.
#[test]
fn blobs_without_manifests_count_against_the_quota() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    let outside = pseudo_random_bytes(7, 600);
    c.blob("elsewhere/app", &outside)
        .expect("outside any quota");
    cli(&dir, &["quota", "set", "carol/**", "1000"]);

    let first = pseudo_random_bytes(1, 600);
    c.blob("carol/a", &first).expect("600 of 1000 fits");
    c.blob("carol/b", &first)
        .expect("the same blob again adds nothing");
    let second = pseudo_random_bytes(2, 600);
    let d = sha256(&second);
    // Monolithic POST (checked before the body is read) ...
    let r = c
        .post(&format!("/v2/carol/a/blobs/uploads/?digest={d}"), &second)
        .expect("post");
    r.expect_error(403, &["DENIED"]);
    assert!(
        message(&r).contains("600 in blobs no manifest references yet"),
        "{}",
        message(&r)
    );
    // ... and a chunked session (checked at the commit, under the write lock).
    let r = c.post("/v2/carol/a/blobs/uploads/", b"").expect("start");
    r.expect_status(202);
    let location = r.header("location").expect("location").to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}digest={d}", location.trim_start_matches(&c.base));
    let r = c
        .put(&url, "application/octet-stream", &second)
        .expect("put");
    r.expect_error(403, &["DENIED"]);
    c.get(&format!("/v2/carol/a/blobs/{d}"))
        .expect("get")
        .expect_status(404);
    // A mount of a blob from outside the quota is a new link: refused too.
    let m = sha256(&outside);
    let r = c
        .post(
            &format!("/v2/carol/c/blobs/uploads/?mount={m}&from=elsewhere/app"),
            b"",
        )
        .expect("mount");
    r.expect_error(403, &["DENIED"]);
    c.get(&format!("/v2/carol/c/blobs/{m}"))
        .expect("get")
        .expect_status(404);

    // An image using the pending blob as its layer: the blob moves from
    // pending to used; a small config still fits.
    let img = Image::new(b"cfg", &[&first]);
    img.push(&c, "carol/a", "v1").expect("fits");
    assert_eq!(used(&dir, "carol/**"), bytes(&img));
}

/// A body of unknown length (`Transfer-Encoding: chunked`, as dockerd sends
/// layers) stops at the room the quota leaves, like `--max-blob-size`; open
/// sessions' acknowledged bytes take room too; a close refused for quota
/// ends its session at once, so its bytes do not wait for `--upload-ttl`.
#[test]
fn chunked_bodies_and_open_sessions_stop_at_the_quota() {
    let soute = Soute::start(|_| {});
    let dir = soute.data().to_path_buf();
    let c = Client::new(soute.addr());
    cli(&dir, &["quota", "set", "dave/**", "1000"]);
    let agent = http_agent();
    let session = |repo: &str| -> String {
        let r = c
            .post(&format!("/v2/{repo}/blobs/uploads/"), b"")
            .expect("start");
        r.expect_status(202);
        let location = r.header("location").expect("location").to_string();
        location.trim_start_matches(&c.base).to_string()
    };
    let range = |path: &str| -> String {
        let r = c.get(path).expect("status");
        r.expect_status(204);
        r.header("range").unwrap_or_default().to_string()
    };
    let octets = [("Content-Type", "application/octet-stream")];

    // 4,000 bytes with no Content-Length: refused at the quota's room.
    let big = pseudo_random_bytes(3, 4000);
    let first = session("dave/a");
    let r = call_chunked(
        &agent,
        "PATCH",
        &format!("{}{first}", c.base),
        &octets,
        &big,
        500,
    );
    r.expect_error(403, &["DENIED"]);
    assert!(
        message(&r).contains("of 1000 bytes (quota dave/**: 0 taken"),
        "{}",
        message(&r)
    );
    assert_eq!(
        range(&first),
        "0-0",
        "nothing of the refused body acknowledged"
    );

    // 600 acknowledged in one session leave 400 for another.
    let six = pseudo_random_bytes(4, 600);
    let r = call_chunked(
        &agent,
        "PATCH",
        &format!("{}{first}", c.base),
        &octets,
        &six,
        200,
    );
    r.expect_status(202);
    let second = session("dave/b");
    let r = call_chunked(
        &agent,
        "PATCH",
        &format!("{}{second}", c.base),
        &octets,
        &six,
        200,
    );
    r.expect_error(403, &["DENIED"]);
    let r = call_chunked(
        &agent,
        "PATCH",
        &format!("{}{second}", c.base),
        &octets,
        &six[..400],
        200,
    );
    r.expect_status(202);

    // Closing the first: 600 + the 400 open elsewhere fit the 1,000 exactly.
    let sep = if first.contains('?') { '&' } else { '?' };
    let r = c
        .put(
            &format!("{first}{sep}digest={}", sha256(&six)),
            "application/octet-stream",
            b"",
        )
        .expect("close");
    r.expect_status(201);
    // One byte more in the second's close would not fit: refused while it
    // streams, the 400 acknowledged stay.
    let sep = if second.contains('?') { '&' } else { '?' };
    let mut body = six[..400].to_vec();
    body.push(9);
    let r = c
        .put(
            &format!("{second}{sep}digest={}", sha256(&body)),
            "application/octet-stream",
            &[9],
        )
        .expect("close");
    r.expect_error(403, &["DENIED"]);
    assert_eq!(range(&second), "0-399");
    // The quota lowered under it: the close of its 400 bytes is refused at
    // the link, and the session is gone at once.
    cli(&dir, &["quota", "set", "dave/**", "900"]);
    let r = c
        .put(
            &format!("{second}{sep}digest={}", sha256(&six[..400])),
            "application/octet-stream",
            b"",
        )
        .expect("close");
    r.expect_error(403, &["DENIED"]);
    c.get(&second)
        .expect("status")
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}
