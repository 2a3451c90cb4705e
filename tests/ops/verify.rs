//! verify finds a flipped byte and a missing file; --repair removes only what
//! is safe (orphans) and keeps reporting the damaged referenced data.

use crate::common::*;
use std::time::{Duration, SystemTime};

#[test]
fn verify_finds_damage_and_repairs_only_orphans() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = start(dir.path());
    let img = Image::new(
        b"config",
        &[b"layer to flip", b"layer to lose", b"good layer"],
    );
    img.push(&srv.client, "lab/app", "v1").expect("push");
    srv.stop();
    let data = dir.path().to_str().expect("utf8");
    let (ok, out, _) = run_soute(&["verify", "--data", data]);
    assert!(ok, "clean registry: {out}");

    let flipped = blob_path(dir.path(), &sha256(b"layer to flip"));
    let mut bytes = std::fs::read(&flipped).expect("read");
    bytes[3] ^= 0x20;
    std::fs::write(&flipped, &bytes).expect("flip");
    let lost = sha256(b"layer to lose");
    std::fs::remove_file(blob_path(dir.path(), &lost)).expect("lose");
    let orphan = sha256(b"nobody's bytes");
    let op = blob_path(dir.path(), &orphan);
    std::fs::create_dir_all(op.parent().expect("parent")).expect("mkdir");
    std::fs::write(&op, b"nobody's bytes").expect("orphan");
    let stray_upload = dir.path().join("uploads").join("stray");
    std::fs::write(&stray_upload, b"x").expect("stray");
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stray_upload)
        .and_then(|f| f.set_modified(old))
        .expect("age");

    let (ok, out, _) = run_soute(&["verify", "--data", data]);
    assert!(!ok, "damage must fail verify: {out}");
    assert!(
        out.contains(&format!("blob {}: damaged", sha256(b"layer to flip"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("blob {lost}: the file is missing")),
        "{out}"
    );
    assert!(
        out.contains("orphan: blobs/sha256/") && out.contains("orphan: uploads/stray"),
        "{out}"
    );
    assert!(
        out.contains("to do:") && out.contains("lab/app@sha256:"),
        "{out}"
    );
    assert!(out.contains("2 problem(s), 2 orphan file(s)"), "{out}");

    let (ok, out, _) = run_soute(&["verify", "--repair", "--data", data]);
    assert!(!ok, "referenced damage remains after --repair: {out}");
    assert!(
        out.contains("repaired: removed orphan blobs/sha256/"),
        "{out}"
    );
    assert!(
        out.contains("repaired: removed orphan uploads/stray"),
        "{out}"
    );
    assert!(!op.exists() && !stray_upload.exists());
    assert!(
        flipped.exists(),
        "a damaged referenced blob is never deleted"
    );

    let (ok, out, _) = run_soute(&["verify", "--data", data]);
    assert!(!ok);
    assert!(out.contains("2 problem(s), 0 orphan file(s)"), "{out}");
}
