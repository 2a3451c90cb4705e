//! kill -9 at random moments while a client pushes, deletes and runs GC; after
//! each restart every acknowledged push pulls with the right digests, every
//! acknowledged delete stays deleted; at the end verify (integrity_check
//! included) finds no problem, and --repair leaves no orphan blob file.
//! The seed is printed at the start; `SOUTE_TEST_SEED=N` replays the same
//! operations, sizes and kill delays (where the kill lands within the
//! client's work still depends on the machine's speed).

use crate::common::*;
use std::time::Duration;

enum Event {
    Pushed(String, String, Image),
    DeleteStarted(String),
    Deleted(String),
    Gc,
}

fn client_loop(c: Client, seed: u64, first: usize, tags: Vec<String>) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let mut events = Vec::new();
    let mut i = first;
    // Ends at the first transport error (the kill); bounded anyway.
    let deadline = Deadline::after(Duration::from_secs(60));
    for _ in 0..100_000 {
        if !deadline.left() {
            break;
        }
        let op = rng.below(10);
        if op < 6 || tags.is_empty() {
            let size = 1 + rng.below(200_000) as usize;
            let mut layers = vec![rng.bytes(size)];
            if rng.below(2) == 0 {
                layers.push(b"shared base layer".to_vec());
            }
            let refs: Vec<&[u8]> = layers.iter().map(|l| l.as_slice()).collect();
            let img = Image::new(format!("config {i} {}", rng.next()).as_bytes(), &refs);
            let tag = format!("t{i}");
            i += 1;
            match img.push(&c, "lab/crash", &tag) {
                Ok(_) => events.push(Event::Pushed("lab/crash".into(), tag, img)),
                Err(_) => return events,
            }
        } else if op < 8 {
            let tag = tags[rng.below(tags.len() as u64) as usize].clone();
            events.push(Event::DeleteStarted(tag.clone()));
            match c.delete(&format!("/v2/lab/crash/manifests/{tag}")) {
                Ok(r) if r.status == 202 || r.status == 404 => events.push(Event::Deleted(tag)),
                _ => return events,
            }
        } else {
            match c.post(
                "/v2/_soute/gc?grace=0&link_grace=0&delete_untagged=true",
                b"",
            ) {
                Ok(r) if r.status == 200 => events.push(Event::Gc),
                _ => return events,
            }
        }
    }
    events
}

#[test]
fn kill_9_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut rng = Rng::seeded("kill_9_at_random_points_loses_nothing_acknowledged");
    let mut live: Vec<(String, String, Image)> = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    let (mut kills, mut pushes, mut deletes, mut gcs, mut next) = (0, 0, 0, 0, 0usize);
    // A fixed number of rounds (so a seed replays the same rounds; about as
    // many as the former 30 s loop made), bounded in time on a slow machine.
    const ROUNDS: usize = 40;
    let deadline = Deadline::after(Duration::from_secs(120));
    while kills < ROUNDS && deadline.left() {
        let mut server = spawn(&data);
        for (repo, tag, img) in &live {
            img.check_pull(&server.client, repo, tag)
                .unwrap_or_else(|e| panic!("after {kills} kills: {e}"));
        }
        for tag in &gone {
            let r = server
                .client
                .get(&format!("/v2/lab/crash/manifests/{tag}"))
                .expect("get");
            assert_eq!(r.status, 404, "deleted tag {tag} came back");
        }
        let tags: Vec<String> = live.iter().map(|l| l.1.clone()).collect();
        let (c, seed, first) = (server.client.clone(), rng.next(), next);
        let worker = std::thread::spawn(move || client_loop(c, seed, first, tags));
        std::thread::sleep(Duration::from_millis(50 + rng.below(700)));
        server.kill();
        kills += 1;
        for e in worker.join().expect("client thread") {
            match e {
                Event::Pushed(repo, tag, img) => {
                    next += 1;
                    pushes += 1;
                    live.push((repo, tag, img));
                }
                Event::DeleteStarted(tag) => live.retain(|l| l.1 != tag),
                Event::Deleted(tag) => {
                    deletes += 1;
                    gone.push(tag);
                }
                Event::Gc => gcs += 1,
            }
        }
        next += 1; // an unacknowledged push may have used the next tag
    }
    eprintln!(
        "crash loop: {kills} kills, {pushes} acknowledged pushes, {deletes} deletes, {gcs} gc runs"
    );
    assert!(
        kills >= 5 && pushes >= 5,
        "too few rounds: {kills} kills, {pushes} pushes"
    );

    let d = data.to_str().expect("utf8");
    let (_, out, err) = run_soute(&["verify", "--json", "--data", d]);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    assert_eq!(report["problems"], serde_json::json!([]), "{out}");
    let (ok, out, err) = run_soute(&["verify", "--repair", "--data", d]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = run_soute(&["verify", "--json", "--data", d]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let orphans = report["orphans"].as_array().expect("orphans");
    assert!(
        orphans
            .iter()
            .all(|o| o.as_str().is_some_and(|o| o.starts_with("uploads/"))),
        "{orphans:?}"
    );
    // A last start removes the upload leftovers and serves everything.
    let server = spawn(&data);
    for (repo, tag, img) in &live {
        img.check_pull(&server.client, repo, tag)
            .expect("final pull");
    }
    drop(server);
    assert_eq!(blob_files(&data), blob_rows(&data));
}
