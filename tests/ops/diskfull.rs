//! Disk full: a push that does not fit gets 507 with the JSON error, nothing
//! half-written shows, pulls keep working, and once space is freed the same
//! push succeeds without a restart. Needs root (tmpfs); see `Tmpfs::mount`.
//! The disk reserve is off here, so the write itself meets the full disk
//! (the reserve has its own test in `limits.rs`).

use crate::common::*;
use std::io::Write;

#[test]
fn disk_full_gives_507_and_recovers_without_restart() {
    let Some(fs) = Tmpfs::mount("8m", "disk_full_gives_507_and_recovers_without_restart") else {
        return;
    };
    let data = fs.path.join("data");
    let soute = Soute::start_at(&data, |cfg| {
        cfg.disk_reserve = soute::storage::space::DiskReserve::OFF
    });
    let srv = InProc {
        client: Client::new(soute.addr()),
        soute,
    };
    let c = srv.client.clone();
    let mut rng = Rng::new(7);
    let first = Image::new(b"config one", &[&rng.bytes(300_000)]);
    first.push(&c, "lab/app", "v1").expect("first push");

    let filler_path = fs.path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut filled = 0usize;
    // Until the 8 MiB tmpfs is full; bounded at 64 MiB in case it never is.
    for _ in 0..1024 {
        if filler.write_all(&chunk).is_err() {
            break;
        }
        filled += chunk.len();
    }
    let _ = filler.sync_all();
    drop(filler);
    eprintln!("filled {filled} bytes");

    let second = Image::new(b"config two", &[&rng.bytes(500_000)]);
    let layer = &second.layers[0];
    let err = c
        .blob("lab/app", layer)
        .expect_err("a push that does not fit");
    assert_eq!(err.status, 507, "{err:?}");
    let body = err.json();
    assert_eq!(body["errors"][0]["code"], "UNKNOWN", "{err:?}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("insufficient storage")),
        "{err:?}"
    );
    assert!(
        !blob_files(&data).contains(&sha256(layer)),
        "nothing half-written"
    );
    let r = c
        .get(&format!("/v2/lab/app/blobs/{}", sha256(layer)))
        .expect("head");
    assert_eq!(r.status, 404);
    first
        .check_pull(&c, "lab/app", "v1")
        .expect("pulls keep working");

    std::fs::remove_file(&filler_path).expect("free space");
    second
        .push(&c, "lab/app", "v2")
        .expect("the same push, after freeing space");
    second.check_pull(&c, "lab/app", "v2").expect("pull v2");
    first.check_pull(&c, "lab/app", "v1").expect("pull v1");
    let report = srv
        .registry()
        .verify(false, true, &mut |_| {})
        .expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    srv.stop();
    assert_eq!(blob_files(&data), blob_rows(&data));
}
