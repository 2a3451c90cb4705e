//! Backup while a client pushes (and deletes, and GC runs); the backup serves
//! every image acknowledged before it started and verifies clean. A stopped
//! folder copied with `cp -a` to another path works too.

use crate::common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Pushed {
    repo: String,
    tag: String,
    image: Image,
    acked: Instant,
    delete_started: Option<Instant>,
}

fn image(i: usize) -> Image {
    let unique = format!("layer {i} ").repeat(4000).into_bytes();
    Image::new(format!("config {i}").as_bytes(), &[b"base layer", &unique])
}

#[test]
fn backup_while_pushing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let srv = start(&data);
    let c = srv.client.clone();
    // An unfinished upload: not part of the backup.
    assert_eq!(
        c.post("/v2/lab/p0/blobs/uploads/", b"")
            .expect("post")
            .status,
        202
    );

    let log: Arc<Mutex<Vec<Pushed>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (c, log, stop) = (c.clone(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let repo = format!("lab/p{}", i % 3);
                let tag = format!("t{i}");
                let img = image(i);
                img.push(&c, &repo, &tag).expect("push");
                log.lock().expect("log").push(Pushed {
                    repo,
                    tag,
                    image: img,
                    acked: Instant::now(),
                    delete_started: None,
                });
                if i >= 2 && i % 3 == 0 {
                    let (repo, tag) = {
                        let mut l = log.lock().expect("log");
                        let p = &mut l[i - 2];
                        p.delete_started = Some(Instant::now());
                        (p.repo.clone(), p.tag.clone())
                    };
                    let r = c
                        .delete(&format!("/v2/{repo}/manifests/{tag}"))
                        .expect("delete");
                    assert_eq!(r.status, 202);
                    c.gc("grace=0&link_grace=0&delete_untagged=true");
                }
                i += 1;
            }
            i
        })
    };
    wait_until(
        "6 acknowledged pushes before the backup",
        Duration::from_secs(30),
        || log.lock().expect("log").len() >= 6,
    );
    // Copy across filesystems when a tmpfs can be had (the copy path), else link.
    let tmpfs = Tmpfs::mount("64m", "backup to another filesystem");
    let dest = match &tmpfs {
        Some(t) => t.path.join("backup"),
        None => dir.path().join("backup"),
    };
    let t0 = Instant::now();
    let (ok, out, err) = run_soute(&[
        "backup",
        dest.to_str().expect("utf8"),
        "--data",
        data.to_str().expect("utf8"),
    ]);
    let t1 = Instant::now();
    assert!(ok, "backup failed: {out}{err}");
    eprintln!("{}", out.trim());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let pushes = pusher.join().expect("pusher");
    eprintln!(
        "backup took {:?} while {pushes} images were pushed",
        t1 - t0
    );
    assert!(
        out.contains("copied") && err.contains("snapshot taken"),
        "{out}{err}"
    );
    // A second backup into the same, now full, folder is refused.
    let (ok, _, err) = run_soute(&[
        "backup",
        dest.to_str().expect("utf8"),
        "--data",
        data.to_str().expect("utf8"),
    ]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let (ok, _, err) = run_soute(&[
        "backup",
        data.join("inside").to_str().expect("utf8"),
        "--data",
        data.to_str().expect("utf8"),
    ]);
    assert!(!ok && err.contains("outside the data folder"), "{err}");
    srv.stop();

    // The backup's checksum list matches its files.
    let sums = std::fs::read_to_string(dest.join("SHA256SUMS")).expect("SHA256SUMS");
    let mut listed = 0;
    for line in sums.lines() {
        let (hex, rel) = line.split_once("  ").expect("line");
        let bytes = std::fs::read(dest.join(rel)).expect("listed file");
        assert_eq!(sha256(&bytes), format!("sha256:{hex}"), "{rel}");
        listed += 1;
    }
    assert_eq!(listed, blob_files(&dest).len());
    assert!(std::fs::read_dir(dest.join("uploads"))
        .expect("uploads")
        .next()
        .is_none());
    let (ok, out, err) = run_soute(&["verify", "--data", dest.to_str().expect("utf8")]);
    assert!(ok, "verify of the backup: {out}{err}");
    assert!(out.contains("0 problem(s), 0 orphan file(s)"), "{out}");

    // Serve the backup: every image acknowledged before the backup started and
    // not deleted before it ended pulls with the right digests.
    let restored = start(&dest);
    let rc = restored.client.clone();
    let log = log.lock().expect("log");
    let mut checked = 0;
    for p in log.iter() {
        let must = p.acked < t0 && p.delete_started.is_none_or(|d| d > t1);
        if must {
            p.image
                .check_pull(&rc, &p.repo, &p.tag)
                .expect("pull from the backup");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} images checked");
    let conn = rusqlite::Connection::open(dest.join("soute.db")).expect("db");
    let uploads: i64 = conn
        .query_row("SELECT count(*) FROM upload", [], |r| r.get(0))
        .expect("count");
    assert_eq!(uploads, 0, "upload sessions are not part of a backup");
    drop(conn);
    restored.stop();
}

#[test]
fn copied_stopped_folder_serves_from_another_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let srv = start(&data);
    let img = image(7);
    img.push(&srv.client, "lab/moved", "v1").expect("push");
    srv.stop();
    let moved = dir.path().join("elsewhere").join("copy");
    std::fs::create_dir_all(moved.parent().expect("parent")).expect("mkdir");
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&moved)
        .status()
        .expect("cp")
        .success();
    assert!(ok);
    std::fs::remove_dir_all(&data).expect("remove the original");
    let srv = start(&moved);
    img.check_pull(&srv.client, "lab/moved", "v1")
        .expect("pull after the move");
    srv.stop();
    let (ok, out, err) = run_soute(&["verify", "--data", moved.to_str().expect("utf8")]);
    assert!(ok, "{out}{err}");
}
