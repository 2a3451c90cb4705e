//! Unit tests of `registry::uploads`: chunk acknowledgement and the
//! finishing commit, on a real data folder.
use super::*;
use crate::registry::Registry;

fn setup() -> (tempfile::TempDir, Registry, RepoName) {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::open(dir.path(), true, 2).expect("open");
    (dir, reg, RepoName::parse("a/b").expect("name"))
}

#[test]
fn finish_with_last_chunk_records_the_blob() {
    let (_dir, reg, repo) = setup();
    let data = b"hello world".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &data);
    let up = reg
        .start_upload(&repo, Algorithm::Sha256, "test")
        .expect("start");
    reg.append_upload(&repo, &up.id, Some(0), Some(6), &mut &data[..6])
        .expect("patch");
    let got = reg
        .finish_upload(
            &repo,
            &up.id,
            &digest,
            Some((Some(6), Some(5), &mut &data[6..])),
        )
        .expect("finish");
    assert_eq!(got, digest);
    assert_eq!(reg.blob_size(&repo, &digest).expect("size"), 11);
    let err = reg.upload_status(&repo, &up.id).expect_err("session gone");
    assert_eq!(err.code(), Code::BlobUploadUnknown);
}

#[test]
fn digest_mismatch_keeps_the_last_chunk_acknowledged() {
    let (_dir, reg, repo) = setup();
    let data = b"some bytes".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &data);
    let wrong = Digest::of(Algorithm::Sha256, b"other");
    let up = reg
        .start_upload(&repo, Algorithm::Sha256, "test")
        .expect("start");
    let err = reg
        .finish_upload(&repo, &up.id, &wrong, Some((None, None, &mut &data[..])))
        .expect_err("mismatch");
    assert_eq!(err.code(), Code::DigestInvalid);
    assert_eq!(reg.upload_status(&repo, &up.id).expect("status").length, 10);
    // The client can still finish with the right digest and no body.
    reg.finish_upload(&repo, &up.id, &digest, None)
        .expect("finish");
    assert_eq!(reg.blob_size(&repo, &digest).expect("size"), 10);
}

#[test]
fn short_last_chunk_leaves_the_session_as_it_was() {
    let (_dir, reg, repo) = setup();
    let data = b"0123456789".to_vec();
    let digest = Digest::of(Algorithm::Sha256, &data);
    let up = reg
        .start_upload(&repo, Algorithm::Sha256, "test")
        .expect("start");
    reg.append_upload(&repo, &up.id, None, None, &mut &data[..4])
        .expect("patch");
    let err = reg
        .finish_upload(
            &repo,
            &up.id,
            &digest,
            Some((None, Some(10), &mut &data[4..])),
        )
        .expect_err("short body");
    assert_eq!(err.code(), Code::SizeInvalid);
    assert_eq!(reg.upload_status(&repo, &up.id).expect("status").length, 4);
    reg.finish_upload(
        &repo,
        &up.id,
        &digest,
        Some((Some(4), Some(6), &mut &data[4..])),
    )
    .expect("finish");
    assert_eq!(reg.blob_size(&repo, &digest).expect("size"), 10);
}
