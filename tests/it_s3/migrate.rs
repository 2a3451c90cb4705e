//! `soute blobs migrate` on the real binary and the binary's Garage cluster:
//! local folder to S3 while `serve` runs, which switches live (a push after
//! it lands in the bucket) and records the store (serve on the local folder
//! is then refused); local → S3 → local live with pulls and pushes running
//! throughout, none failing; the registry then served from S3 with the local
//! `blobs/` gone; verify by listing vs `--deep`; back to local, where a
//! damaged object is refused (not published, nothing recorded) and a rerun
//! resumes with only what is left. `soute backup` of an S3 registry: an
//! object list by default (verify on it works; its `--repair` removes no
//! object of the shared bucket), the objects themselves with `--with-blobs`.
//! Must NEVER contact a non-loopback address; every wait has a deadline.

use crate::faults::{finish_url, object, serve_flags};
use crate::store;
use crate::support::*;
use soute::storage::s3::S3Client;
use std::path::Path;
use std::time::Duration;

/// POST + monolithic PUT of `bytes` into `repo` at `base`: the status.
fn push_blob(agent: &ureq::Agent, base: &str, repo: &str, bytes: &[u8]) -> u16 {
    let r = call(
        agent,
        "POST",
        &format!("{base}/v2/{repo}/blobs/uploads/"),
        None,
        &[],
        Some(b""),
    );
    r.expect_status(202);
    let loc = r.header("location").expect("Location").to_string();
    call(
        agent,
        "PUT",
        &finish_url(base, &loc, &sha256(bytes)),
        None,
        &[("Content-Type", "application/octet-stream")],
        Some(bytes),
    )
    .status
}

/// `soute ARGS` with the S3 credentials in the environment (as an operator
/// of an S3 registry runs gc, verify or migrate): (ok, stdout, stderr).
fn soute_with_keys(cfg: &soute::storage::s3::S3Config, args: &[&str]) -> (bool, String, String) {
    run_soute_with(
        args,
        &[
            ("AWS_ACCESS_KEY_ID", &cfg.credentials.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &cfg.credentials.secret_access_key),
        ],
    )
}

/// Every blob of `blobs` pulls back from `base` byte for byte.
fn pulls_back(agent: &ureq::Agent, base: &str, repo: &str, blobs: &[&[u8]]) {
    for b in blobs {
        let r = call(
            agent,
            "GET",
            &format!("{base}/v2/{repo}/blobs/{}", sha256(b)),
            None,
            &[],
            None,
        );
        r.expect_status(200);
        assert!(r.body == *b, "blob {} read back differs", sha256(b));
    }
}

fn migrate_args<'a>(to: &'a str, dir: &'a Path, s3: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "blobs",
        "migrate",
        "--to",
        to,
        "--data",
        dir.to_str().expect("utf-8"),
    ];
    if to == "s3" {
        // serve_flags without its `--blob-store s3`
        args.extend(s3.iter().skip(2).map(String::as_str));
    }
    args
}

/// A migration test's store under its own prefix: the config, a client, a
/// temporary folder, the data folder inside it and the `serve` S3 flags.
struct Setup {
    cfg: soute::storage::s3::S3Config,
    client: S3Client,
    temp: tempfile::TempDir,
    dir: std::path::PathBuf,
    s3: Vec<String>,
}

fn setup(name: &str) -> Setup {
    let cfg = store::config(&format!("{name}-{}-{}", std::process::id(), unique()));
    let client = S3Client::new(cfg.clone()).expect("client");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("data");
    let s3 = serve_flags(&cfg, temp.path());
    Setup {
        cfg,
        client,
        temp,
        dir,
        s3,
    }
}

#[test]
fn blobs_migrate_to_s3_while_serving_then_back_to_local_resuming() {
    let Setup {
        cfg,
        client,
        temp,
        dir,
        s3,
    } = setup("migrate");
    let agent = http_agent();
    let repo = "mig/app";
    let layer = pseudo_random_bytes(71, 3 << 20);
    let big = pseudo_random_bytes(72, 20 << 20); // multipart on the way to S3
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let late = pseudo_random_bytes(73, 5000);

    // 1. A local registry with an image; migrate while it serves.
    let served = serve(&dir, &[]);
    let base = format!("http://{}", served.addr);
    for b in [&layer, &big, &config] {
        assert_eq!(push_blob(&agent, &base, repo, b), 201);
    }
    let manifest = image_manifest(
        OCI_MANIFEST,
        &Descriptor::new(OCI_CONFIG, &config),
        &[
            Descriptor::new(OCI_LAYER, &layer),
            Descriptor::new(OCI_LAYER, &big),
        ],
        None,
        None,
    );
    call(
        &agent,
        "PUT",
        &format!("{base}/v2/{repo}/manifests/v1"),
        None,
        &[("Content-Type", OCI_MANIFEST)],
        Some(&manifest),
    )
    .expect_status(201);
    let (ok, out, err) = run_soute(&migrate_args("s3", &dir, &s3));
    assert!(ok, "migrate while serving: {out}{err}");
    assert!(out.contains("3 copied"), "{out}");
    assert!(
        out.contains("soute serve switched live") && out.contains("--blob-store s3"),
        "{out}"
    );
    for b in [&layer, &big, &config] {
        assert_eq!(
            client.head(&object(&sha256(b))).expect("head"),
            Some(b.len() as u64),
            "the object of {} is in the bucket",
            sha256(b)
        );
    }
    // A push after the switch lands in the bucket only.
    assert_eq!(push_blob(&agent, &base, repo, &late), 201);
    assert_eq!(
        client.head(&object(&sha256(&late))).expect("head"),
        Some(late.len() as u64)
    );
    let h = &sha256(&late)[7..];
    assert!(!dir.join(format!("blobs/sha256/{}/{h}", &h[..2])).exists());
    assert!(
        !dir.join("store-switch.json").exists(),
        "the request (with the credentials) is gone"
    );
    drop(served);

    // 2. The store is recorded: a rerun has nothing to do.
    let (ok, out, err) = soute_with_keys(&cfg, &migrate_args("s3", &dir, &s3));
    assert!(
        ok && out.contains("nothing to do"),
        "a rerun after the switch: {out}{err}"
    );
    std::fs::rename(dir.join("blobs"), temp.path().join("old-blobs")).expect("move blobs/ away");

    // An old unit starting serve on the local folder is refused, naming the bucket.
    let mut local = soute_bin();
    local.args(["serve", "--data", dir.to_str().expect("utf-8")]);
    local.args(["--listen", "127.0.0.1:0", "--tls", "off"]);
    let (status, _, err) = Proc::spawn(local).finish(Duration::from_secs(30));
    assert!(!status.success(), "serve on the wrong store must not start");
    assert!(
        err.contains(&format!(
            "this registry's blobs are in the S3 bucket {}",
            cfg.bucket
        )) && err.contains("--blob-store s3"),
        "{err}"
    );

    // 3. Served from S3; verify by listing, then --deep.
    let flags: Vec<&str> = s3.iter().map(String::as_str).collect();
    let served = serve(&dir, &flags);
    let base = format!("http://{}", served.addr);
    pulls_back(&agent, &base, repo, &[&layer, &big, &config, &late]);
    drop(served);
    let d = dir.to_str().expect("utf-8");
    let (ok, out, err) = soute_with_keys(&cfg, &["verify", "--data", d]);
    assert!(ok, "verify: {out}{err}");
    assert!(
        out.contains("4 blob(s) checked, 0 ("),
        "by listing, no object read: {out}"
    );
    // Same length, other bytes: only a re-hash can tell.
    let damaged = pseudo_random_bytes(74, layer.len());
    let key = object(&sha256(&layer));
    client
        .put(&key, &mut damaged.as_slice(), damaged.len() as u64)
        .expect("put damaged");
    let (ok, out, _) = soute_with_keys(&cfg, &["verify", "--data", d]);
    assert!(ok, "a listing cannot see a same-size change: {out}");
    let (ok, out, _) = soute_with_keys(&cfg, &["verify", "--deep", "--data", d]);
    assert!(!ok, "--deep re-hashes: {out}");
    assert!(
        out.contains(&format!("blob {}: damaged", sha256(&layer))),
        "{out}"
    );

    // 4. Back to local with that object damaged: refused, nothing recorded.
    let (ok, out, err) = soute_with_keys(&cfg, &migrate_args("local", &dir, &s3));
    assert!(!ok, "a damaged source blob fails the migration: {out}{err}");
    assert!(out.contains("the source's bytes hash to"), "{out}");
    assert!(
        !dir.join(format!("blobs/sha256/{}", &sha256(&layer)[7..9]))
            .join(&sha256(&layer)[7..])
            .exists(),
        "the damaged bytes were not published"
    );
    assert!(
        std::fs::read_dir(dir.join("uploads"))
            .expect("uploads")
            .next()
            .is_none(),
        "no staging file is left"
    );
    client
        .put(&key, &mut layer.as_slice(), layer.len() as u64)
        .expect("put back");
    let (ok, out, err) = soute_with_keys(&cfg, &migrate_args("local", &dir, &s3));
    assert!(ok, "the rerun: {out}{err}");
    assert!(out.contains("done:"), "{out}");
    assert!(
        out.contains("1 copied") && out.contains("3 already there"),
        "the rerun resumes, not restarts: {out}"
    );

    // 5. Served from the local folder again, without any --s3-* flag.
    let served = serve(&dir, &[]);
    let base = format!("http://{}", served.addr);
    pulls_back(&agent, &base, repo, &[&layer, &big, &config, &late]);
    let (ok, out, err) = run_soute(&["verify", "--data", d]);
    assert!(ok, "verify on the local folder: {out}{err}");
    assert!(out.contains("4 blob(s) checked, 4 ("), "{out}");
}

/// Local folder → S3 → local folder with `serve` running the whole time:
/// four clients pull every blob in a loop and one pushes new ones; not one
/// request fails, and afterwards everything is in the local folder (served
/// after a restart without any fallback, verify clean).
#[test]
fn live_migration_to_s3_and_back_keeps_every_blob_pullable_and_pushable() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Mutex;
    let st = setup("live");
    let (cfg, client, dir, s3) = (&st.cfg, &st.client, &st.dir, &st.s3);
    let served = serve(dir, &[]);
    let base = format!("http://{}", served.addr);
    let agent = http_agent();
    let repo = "live/app";
    // One multipart-sized blob and a spread of small ones.
    let blobs: Vec<Vec<u8>> = (0..20usize)
        .map(|i| pseudo_random_bytes(100 + i, if i == 0 { 12 << 20 } else { 20_000 + i * 3_000 }))
        .collect();
    for b in &blobs {
        assert_eq!(push_blob(&agent, &base, repo, b), 201);
    }
    let stop = AtomicBool::new(false);
    let pulls = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let pushed = Mutex::new(Vec::<Vec<u8>>::new());
    let fail = |what: String| failures.lock().expect("lock").push(what);
    let (to_s3, to_local) = std::thread::scope(|s| {
        for t in 0..4usize {
            let (stop, pulls, fail, blobs, base) = (&stop, &pulls, &fail, &blobs, &base);
            s.spawn(move || {
                let agent = http_agent();
                let deadline = std::time::Instant::now() + Duration::from_secs(240);
                while !stop.load(SeqCst) && std::time::Instant::now() < deadline {
                    for b in blobs.iter().skip(t).chain(blobs.iter().take(t)) {
                        let url = format!("{base}/v2/{repo}/blobs/{}", sha256(b));
                        let r = call(&agent, "GET", &url, None, &[], None);
                        if r.status != 200 || r.body != *b {
                            fail(format!("GET {} -> {}", sha256(b), r.status));
                        }
                        pulls.fetch_add(1, SeqCst);
                    }
                }
            });
        }
        let (stop, fail, pushed, base) = (&stop, &fail, &pushed, &base);
        s.spawn(move || {
            let agent = http_agent();
            for i in 0..400usize {
                if stop.load(SeqCst) {
                    break;
                }
                let b = pseudo_random_bytes(1_000 + i, 7_000);
                match push_blob(&agent, base, repo, &b) {
                    201 => pushed.lock().expect("lock").push(b),
                    status => fail(format!("push {i} -> {status}")),
                }
                std::thread::sleep(Duration::from_millis(40));
            }
        });
        let to_s3 = run_soute(&migrate_args("s3", dir, s3));
        let to_local = soute_with_keys(cfg, &migrate_args("local", dir, s3));
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, SeqCst);
        (to_s3, to_local)
    });
    let (ok, out, err) = to_s3;
    assert!(ok && out.contains("switched live"), "to s3: {out}{err}");
    let (ok, out, err) = to_local;
    assert!(
        ok && out.contains("switched live"),
        "back to local: {out}{err}"
    );
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} request(s) failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let pushed = pushed.into_inner().expect("lock");
    eprintln!(
        "live migration: {} pulls, {} pushes, none failed",
        pulls.load(SeqCst),
        pushed.len()
    );
    assert!(
        pulls.load(SeqCst) >= 100 && pushed.len() >= 5,
        "pulls {} pushes {}",
        pulls.load(SeqCst),
        pushed.len()
    );
    let first = &blobs[0];
    assert_eq!(
        client.head(&object(&sha256(first))).expect("head"),
        Some(first.len() as u64),
        "the first migration copied it to the bucket"
    );
    drop(served);

    // Restarted on the local folder (no fallback now): everything is there.
    let served = serve(dir, &[]);
    let base = format!("http://{}", served.addr);
    let all: Vec<&[u8]> = blobs
        .iter()
        .chain(pushed.iter())
        .map(Vec::as_slice)
        .collect();
    pulls_back(&agent, &base, repo, &all);
    drop(served);
    let (ok, out, err) = run_soute(&["verify", "--data", dir.to_str().expect("utf-8")]);
    let n = all.len();
    assert!(
        ok && out.contains(&format!("{n} blob(s) checked, {n} (")),
        "verify: {out}{err}"
    );
}

/// Every file below `dir` (recursively).
fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn backup_of_an_s3_registry_lists_objects_or_copies_them_with_blobs() {
    let cfg = store::config(&format!("backup-{}-{}", std::process::id(), unique()));
    let client = S3Client::new(cfg.clone()).expect("client");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("data");
    let s3 = serve_flags(&cfg, temp.path());
    let flags: Vec<&str> = s3.iter().map(String::as_str).collect();
    let served = serve(&dir, &flags);
    let base = format!("http://{}", served.addr);
    let agent = http_agent();
    let a = pseudo_random_bytes(81, 9 << 20);
    let b = pseudo_random_bytes(82, 4000);
    for x in [&a, &b] {
        assert_eq!(push_blob(&agent, &base, "bak/app", x), 201);
    }
    let d = dir.to_str().expect("utf-8");

    // Object list: the snapshot, tls/, OBJECTS; no blob bytes.
    let listed = temp.path().join("listed");
    let l = listed.to_str().expect("utf-8");
    let (ok, out, err) = soute_with_keys(&cfg, &["backup", l, "--data", d]);
    assert!(ok, "backup: {out}{err}");
    assert!(out.contains("2 object(s) of the S3 store listed"), "{out}");
    let objects = std::fs::read_to_string(listed.join("OBJECTS")).expect("OBJECTS");
    for x in [&a, &b] {
        let line = format!(
            "{} {} s3://{}/{}",
            sha256(x),
            x.len(),
            cfg.bucket,
            cfg.key(&object(&sha256(x)))
        );
        assert!(objects.lines().any(|l| l == line), "{line} in {objects}");
    }
    assert!(
        files_below(&listed.join("blobs")).is_empty(),
        "no object was copied"
    );
    let (ok, out, err) = soute_with_keys(&cfg, &["verify", "--data", l]);
    assert!(ok, "verify of the listed backup: {out}{err}");
    assert!(out.contains("2 blob(s) checked"), "{out}");
    // A push after the backup is an orphan to the backup, and stays.
    let c = pseudo_random_bytes(83, 3000);
    assert_eq!(push_blob(&agent, &base, "bak/app", &c), 201);
    let (_, out, err) = soute_with_keys(&cfg, &["verify", "--repair", "--data", l]);
    assert!(
        out.contains("orphan") && out.contains("not removed"),
        "{out}{err}"
    );
    assert_eq!(
        client.head(&object(&sha256(&c))).expect("head"),
        Some(c.len() as u64),
        "verify --repair on the backup left the live registry's object"
    );

    // gc on the backup (links of blobs no manifest uses, no grace) deletes
    // none of the shared bucket's objects.
    let (ok, out, err) = soute_with_keys(
        &cfg,
        &["gc", "--grace", "0", "--link-grace", "0", "--data", l],
    );
    assert!(ok, "gc on the listed backup: {out}{err}");
    for x in [&a, &b] {
        assert_eq!(
            client.head(&object(&sha256(x))).expect("head"),
            Some(x.len() as u64),
            "gc on the backup deleted a live object"
        );
    }

    // --with-blobs: the objects copied; the backup is a local registry.
    let copied = temp.path().join("copied");
    let cp = copied.to_str().expect("utf-8");
    let (ok, out, err) = soute_with_keys(&cfg, &["backup", cp, "--with-blobs", "--data", d]);
    assert!(ok, "backup --with-blobs: {out}{err}");
    for x in [&a, &b, &c] {
        let h = &sha256(x)[7..];
        let file = copied.join(format!("blobs/sha256/{}/{h}", &h[..2]));
        assert!(
            std::fs::read(&file).expect("blob file") == *x,
            "{}",
            file.display()
        );
    }
    let (ok, out, err) = run_soute(&["verify", "--data", cp]);
    assert!(ok, "verify of the copy, no S3 key given: {out}{err}");
    assert!(out.contains("3 blob(s) checked, 3 ("), "{out}");
    drop(served);
}

/// A second migration of the same folder is refused while one runs (its
/// lock on `uploads/` held here, as a running migration holds it), and a
/// blob whose row has no bytes in the source fails the migration, naming it.
#[test]
fn blobs_migrate_runs_one_at_a_time_and_fails_on_a_row_without_bytes() {
    let cfg = store::config(&format!("migrate1-{}-{}", std::process::id(), unique()));
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("data");
    let s3 = serve_flags(&cfg, temp.path());
    let served = serve(&dir, &[]);
    let base = format!("http://{}", served.addr);
    let agent = http_agent();
    let kept = pseudo_random_bytes(91, 4000);
    let lost = pseudo_random_bytes(92, 5000);
    for b in [&kept, &lost] {
        assert_eq!(push_blob(&agent, &base, "one/app", b), 201);
    }
    drop(served);

    let held = std::fs::File::open(dir.join("uploads")).expect("open uploads/");
    held.try_lock().expect("lock uploads/");
    let (ok, out, err) = run_soute(&migrate_args("s3", &dir, &s3));
    assert!(
        !ok && err.contains("another `soute blobs migrate` is running"),
        "{out}{err}"
    );
    drop(held);

    let h = &sha256(&lost)[7..];
    std::fs::remove_file(dir.join(format!("blobs/sha256/{}/{h}", &h[..2]))).expect("rm blob");
    let (ok, out, err) = run_soute(&migrate_args("s3", &dir, &s3));
    assert!(!ok, "a row without bytes fails the migration: {out}{err}");
    assert!(
        out.contains(&format!(
            "failed: blob {}: it has a row but no bytes",
            sha256(&lost)
        )),
        "{out}"
    );
    assert!(!out.contains("done:"), "nothing was recorded: {out}");
}

/// A switch request no migration waits for (left by one that died) is
/// removed when serve starts, never acted on; and a serve whose folder says
/// a live switch happened that no migration recorded refuses to start,
/// naming the command that finishes it.
#[test]
fn serve_ignores_a_stale_switch_request_and_refuses_an_unfinished_switch() {
    let st = setup("stale");
    let (cfg, client, dir) = (&st.cfg, &st.client, &st.dir);
    drop(serve(dir, &[]));
    let request = dir.join("store-switch.json");
    let body = serde_json::json!({
        "id": "left-behind", "to": "s3", "endpoint": cfg.endpoint, "bucket": cfg.bucket,
        "prefix": cfg.prefix, "region": cfg.region,
        "access_key_id": cfg.credentials.access_key_id,
        "secret_access_key": cfg.credentials.secret_access_key,
    });
    std::fs::write(&request, body.to_string()).expect("write request");
    let served = serve(dir, &[]);
    assert!(!request.exists(), "removed at start");
    std::thread::sleep(Duration::from_millis(1500)); // three watcher ticks
    let base = format!("http://{}", served.addr);
    let b = pseudo_random_bytes(95, 4000);
    assert_eq!(push_blob(&http_agent(), &base, "stale/app", &b), 201);
    assert_eq!(client.head(&object(&sha256(&b))).expect("head"), None);
    let h = &sha256(&b)[7..];
    assert!(
        dir.join(format!("blobs/sha256/{}/{h}", &h[..2])).exists(),
        "still local"
    );
    drop(served);

    // A switch answered `done` whose migration never recorded the store.
    let db = rusqlite::Connection::open(dir.join("soute.db")).expect("db");
    db.execute(
        "INSERT INTO setting (key, value) VALUES ('blob_store_switch', ?1)",
        [r#"{"id":"x","state":"done","detail":"","store":"s3 bucket=elsewhere"}"#],
    )
    .expect("state");
    drop(db);
    let mut cmd = soute_bin();
    cmd.args(["serve", "--data", dir.to_str().expect("utf-8")]);
    cmd.args(["--listen", "127.0.0.1:0", "--tls", "off"]);
    let (status, _, err) = Proc::spawn(cmd).finish(Duration::from_secs(30));
    assert!(!status.success(), "an unfinished switch stops serve");
    assert!(
        err.contains("did not finish")
            && err.contains("s3 bucket=elsewhere")
            && err.contains("soute blobs migrate"),
        "{err}"
    );
}
