//! The disk reserve on a real small filesystem (a 64 MiB tmpfs, needs root;
//! see `Tmpfs::mount`): an upload announced to cross the reserve gets 507
//! before a byte is written; a chunked one is stopped when it reaches the
//! reserve and rolled back; below the reserve, manifest pushes, mounts,
//! re-uploads of stored blobs and pulls keep working while new blob uploads
//! are refused.

use crate::common::*;
use soute::storage::space::{filesystem_space, parse_reserve, MIB};
use std::io::Write;
use std::path::Path;

const RESERVE: u64 = 24 * MIB;

fn available(path: &Path) -> u64 {
    filesystem_space(path).expect("statvfs").available
}

/// Asserts a 507 that names the disk reserve.
fn expect_reserve_507(what: &str, status: u16, body: &serde_json::Value) {
    assert_eq!(status, 507, "{what}: {body}");
    let e = &body["errors"][0];
    assert_eq!(e["code"], "UNKNOWN", "{what}");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("insufficient storage") && msg.contains("disk reserve of 24 MiB"),
        "{what}: {msg}"
    );
    assert_eq!(e["detail"]["reserve"], RESERVE, "{what}");
}

fn session_len_on_disk(data: &Path, location: &str) -> u64 {
    let id = location.rsplit('/').next().expect("id");
    std::fs::metadata(data.join("uploads").join(id))
        .expect("upload file")
        .len()
}

#[test]
fn the_disk_reserve_refuses_uploads_and_keeps_metadata_and_pulls_working() {
    let test = "the_disk_reserve_refuses_uploads_and_keeps_metadata_and_pulls_working";
    let Some(fs) = Tmpfs::mount("64m", test) else {
        return;
    };
    let data = fs.path.join("data");
    let soute = Soute::start_at(&data, |cfg| {
        cfg.disk_reserve = parse_reserve("24MiB").expect("reserve")
    });
    let c = Client::new(soute.addr());
    let mut rng = Rng::seeded(test);
    let first = Image::new(b"config one", &[&rng.bytes(200_000)]);
    first.push(&c, "lab/app", "v1").expect("first push");
    let free = available(&data);
    eprintln!("free after the first push: {free} bytes");
    assert!(free > RESERVE + 24 * MIB, "the tmpfs has room: {free}");

    // Announced to cross the reserve: 507 before the body is read.
    let announced = free - RESERVE + MIB;
    let head = format!(
        "POST /v2/lab/app/blobs/uploads/?digest={} HTTP/1.1\r\nHost: x\r\nContent-Length: {announced}\r\n\r\n",
        sha256(b"never sent")
    );
    let r = send_and_read(soute.addr(), head.into_bytes());
    expect_reserve_507("announced POST", r.status, &r.json().expect("JSON"));
    assert!(available(&data) + 64 * 1024 >= free, "nothing written");
    let uploads = std::fs::read_dir(data.join("uploads")).expect("uploads/");
    assert_eq!(uploads.count(), 0, "no session made");

    // A session with 1,000 acknowledged bytes, then a chunked body that
    // would cross the reserve by 16 MiB: stopped on the way, rolled back.
    let r = c.post("/v2/lab/app/blobs/uploads/", b"").expect("start");
    r.expect_status(202);
    let location = r.location().to_string();
    let head = rng.bytes(1000);
    let url = format!("{}{location}", c.base);
    let ct = [("Content-Type", "application/octet-stream")];
    let r = call_chunked(&http_agent(), "PATCH", &url, &ct, &head, 1000);
    r.expect_status(202);
    let before = available(&data);
    let streamed = before - RESERVE + 16 * MIB;
    let mut req =
        format!("PATCH {location} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    let piece = rng.bytes(256 * 1024);
    let mut sent = 0u64;
    while sent < streamed {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(&piece);
        req.extend_from_slice(b"\r\n");
        sent += piece.len() as u64;
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = send_and_read(soute.addr(), req);
    expect_reserve_507("streamed PATCH", r.status, &r.json().expect("JSON"));
    let r = c.get(&location).expect("status");
    r.expect_status(204);
    assert_eq!(r.header("range"), Some("0-999"), "session unchanged");
    assert_eq!(session_len_on_disk(&data, &location), 1000, "rolled back");
    let after = available(&data);
    assert!(
        after + MIB >= before,
        "the space came back: {before} -> {after}"
    );

    // Take free space under the reserve (a filler file, as another program would).
    let filler_path = fs.path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    let chunk = vec![0x5au8; 256 * 1024];
    for _ in 0..256 {
        if available(&data) < RESERVE - 8 * MIB || filler.write_all(&chunk).is_err() {
            break;
        }
    }
    filler.sync_all().expect("sync filler");
    drop(filler);
    let low = available(&data);
    assert!(
        low < RESERVE && low > MIB,
        "under the reserve, not full: {low}"
    );

    // New blobs are refused, even small ones and new sessions...
    let second = Image::new(b"config two", &[&rng.bytes(10_000)]);
    let err = c
        .blob("lab/app", &second.layers[0])
        .expect_err("below reserve");
    expect_reserve_507("small blob below the reserve", err.status, &err.json());
    let r = c.post("/v2/lab/app/blobs/uploads/", b"").expect("start");
    expect_reserve_507("new session below the reserve", r.status, &r.json());
    // ...but manifests, mounts and pulls keep working.
    let r = c
        .manifest("lab/app", "v1-again", &first.manifest())
        .expect("put");
    r.expect_status(201);
    for blob in first.blobs() {
        let r = c
            .post(
                &format!(
                    "/v2/lab/copy/blobs/uploads/?mount={}&from=lab/app",
                    sha256(blob)
                ),
                b"",
            )
            .expect("mount");
        r.expect_status(201);
    }
    let r = c
        .manifest("lab/copy", "v1", &first.manifest())
        .expect("put");
    r.expect_status(201);
    // Re-uploading a blob the registry stores needs no space: it is hashed,
    // not written, and linked; wrong bytes under its digest are 400.
    let sessions = || {
        std::fs::read_dir(data.join("uploads"))
            .expect("uploads/")
            .count()
    };
    let sessions_before = sessions();
    let layer = &first.layers[0];
    c.blob("lab/again", layer)
        .expect("re-upload of a stored blob below the reserve");
    let r = c
        .get(&format!("/v2/lab/again/blobs/{}", sha256(layer)))
        .expect("get");
    assert_eq!((r.status, sha256(&r.body)), (200, sha256(layer)));
    let wrong = format!(
        "/v2/lab/again/blobs/uploads/?digest={}",
        sha256(&first.config)
    );
    let r = c.post(&wrong, b"not the config").expect("post");
    r.expect_error(400, &["DIGEST_INVALID"]);
    assert_eq!(sessions(), sessions_before, "no session left behind");
    first.check_pull(&c, "lab/app", "v1").expect("pull v1");
    first
        .check_pull(&c, "lab/app", "v1-again")
        .expect("pull v1-again");
    first
        .check_pull(&c, "lab/copy", "v1")
        .expect("pull the mounted copy");

    // Space freed: the same push goes through, no restart.
    std::fs::remove_file(&filler_path).expect("free space");
    second
        .push(&c, "lab/app", "v2")
        .expect("push after freeing space");
    second.check_pull(&c, "lab/app", "v2").expect("pull v2");
    soute.stop();
    assert_eq!(blob_files(&data), blob_rows(&data));
}

/// Total bytes in `uploads/` (every session's file).
fn upload_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("uploads"))
        .expect("uploads/")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

#[test]
fn concurrent_uploads_cannot_count_the_same_free_space_twice() {
    let test = "concurrent_uploads_cannot_count_the_same_free_space_twice";
    let Some(fs) = Tmpfs::mount("64m", test) else {
        return;
    };
    let data = fs.path.join("data");
    let soute = Soute::start_at(&data, |cfg| {
        cfg.disk_reserve = parse_reserve("24MiB").expect("reserve")
    });
    let c = Client::new(soute.addr());
    let mut rng = Rng::seeded(test);
    let free = available(&data);
    assert!(free > 60 * MIB, "an empty 64 MiB tmpfs: {free}");

    // A announces 24 MiB, sends 1 MiB and waits: its other 23 MiB are claimed.
    let a = rng.bytes(24 * MIB as usize);
    let mut conn = connect(soute.addr(), std::time::Duration::from_secs(10));
    let head = format!(
        "POST /v2/lab/a/blobs/uploads/?digest={} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        sha256(&a),
        a.len()
    );
    conn.write_all(head.as_bytes()).expect("head");
    conn.write_all(&a[..MIB as usize]).expect("first MiB");
    wait_until(
        "A's first MiB on disk",
        std::time::Duration::from_secs(10),
        || upload_bytes(&data) >= MIB,
    );

    // B announces 20 MiB: the free space alone (~62 MiB) would take it, but
    // not on top of A's claim (62 - 24 - 20 < 24).
    let b = rng.bytes(20 * MIB as usize);
    let head = format!(
        "POST /v2/lab/b/blobs/uploads/?digest={} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        sha256(&b),
        b.len()
    );
    let r = send_and_read(soute.addr(), head.into_bytes());
    expect_reserve_507("B while A streams", r.status, &r.json().expect("JSON"));

    // A gives up: its session goes and its claim is released, so B fits.
    drop(conn);
    wait_until(
        "A's session removed",
        std::time::Duration::from_secs(10),
        || upload_bytes(&data) == 0,
    );
    c.blob("lab/b", &b).expect("B after A's claim is released");
    let r = c
        .get(&format!("/v2/lab/b/blobs/{}", sha256(&b)))
        .expect("get");
    assert_eq!((r.status, sha256(&r.body)), (200, sha256(&b)));
    soute.stop();
}
