//! Upload sessions (end-4a, end-5, end-6, end-13, end-14): POST answers,
//! chunked PATCH with Content-Range (in order, out of order, retried),
//! streamed PATCH without Content-Range (Content-Length and chunked transfer
//! coding, as dockerd sends), the closing PUT with and without a last chunk,
//! session status, cancellation.

use crate::harness::*;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// PATCH one chunk with Content-Range; returns the response.
fn patch_range(reg: &TestRegistry, session: &str, start: usize, chunk: &[u8]) -> Resp {
    let range = format!("{}-{}", start, start + chunk.len() - 1);
    reg.call(
        "PATCH",
        session,
        &[OCTET, ("Content-Range", &range)],
        Some(chunk),
    )
}

/// Closes a session with PUT ?digest= and no body; asserts 201 and returns the response.
fn close(reg: &TestRegistry, session: &str, digest: &str) -> Resp {
    let url = TestRegistry::with_query(session, &format!("digest={digest}"));
    let r = reg.call("PUT", &url, &[OCTET], Some(b""));
    r.expect_status(201);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(digest),
        "{}",
        r.what
    );
    r
}

/// The blob is served from `repo` with exactly `bytes`, and from its Location.
fn assert_blob(reg: &TestRegistry, repo: &str, bytes: &[u8], done: &Resp) {
    let digest = sha256(bytes);
    let r = reg.get_blob(repo, &digest);
    r.expect_status(200);
    assert!(
        r.body == bytes,
        "{}: blob bytes differ ({} vs {} bytes)",
        r.what,
        r.body.len(),
        bytes.len()
    );
    let r = reg.get(&reg.loc(done.location()));
    r.expect_status(200);
    assert!(
        r.body == bytes,
        "{}: Location of the completed upload does not serve the blob",
        r.what
    );
}

#[test]
fn post_opens_a_session_with_location_uuid_and_range() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/post");
    let r = reg.call(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    r.expect_status(202);
    let loc = r.location().to_string();
    let uuid = r
        .header("docker-upload-uuid")
        .expect("Docker-Upload-UUID")
        .to_string();
    assert!(!uuid.is_empty());
    assert!(
        loc.contains(&uuid),
        "Location {loc} does not name the session {uuid}"
    );
    assert!(
        loc.contains(&format!("/v2/{repo}/blobs/uploads/")),
        "Location {loc}"
    );
    assert_eq!(r.header("range"), Some("0-0"), "Range on a fresh session");
    // Two POSTs give two different sessions.
    let r2 = reg.call(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    r2.expect_status(202);
    assert_ne!(r2.header("docker-upload-uuid"), Some(uuid.as_str()));
}

#[test]
fn chunked_patches_with_content_range_then_closing_put() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/chunked");
    let bytes = pseudo_random_bytes(10, 30_000);
    let mut session = reg.start_upload(&repo);
    for (i, chunk) in bytes.chunks(10_000).enumerate() {
        let start = i * 10_000;
        let r = patch_range(&reg, &session, start, chunk);
        r.expect_status(202);
        assert_eq!(
            r.header("range"),
            Some(format!("0-{}", start + chunk.len() - 1).as_str()),
            "{}",
            r.what
        );
        assert!(r
            .header("docker-upload-uuid")
            .is_some_and(|u| !u.is_empty()));
        // Each next chunk goes to the Location of the previous answer.
        session = reg.loc(r.location());
    }
    let done = close(&reg, &session, &sha256(&bytes));
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn last_chunk_may_travel_in_the_closing_put() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/lastinput");
    let bytes = pseudo_random_bytes(11, 20_000);
    let session = reg.start_upload(&repo);
    let r = patch_range(&reg, &session, 0, &bytes[..12_000]);
    r.expect_status(202);
    let session = reg.loc(r.location());
    let url = TestRegistry::with_query(&session, &format!("digest={}", sha256(&bytes)));
    let range = format!("12000-{}", bytes.len() - 1);
    let done = reg.call(
        "PUT",
        &url,
        &[OCTET, ("Content-Range", &range)],
        Some(&bytes[12_000..]),
    );
    done.expect_status(201);
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn out_of_order_chunk_gets_416_and_the_session_survives() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/order");
    let bytes = pseudo_random_bytes(12, 30);
    let session = reg.start_upload(&repo);
    let r = patch_range(&reg, &session, 0, &bytes[..10]);
    r.expect_status(202);
    let session = reg.loc(r.location());
    // Skips bytes 10..19.
    let r = patch_range(&reg, &session, 20, &bytes[20..]);
    assert_eq!(
        r.status,
        416,
        "{}: out-of-order chunk (body {})",
        r.what,
        r.text()
    );
    let st = reg.get(&session);
    st.expect_status(204);
    assert_eq!(
        st.header("range"),
        Some("0-9"),
        "Range after a rejected chunk"
    );
    let session = reg.loc(st.location());
    let r = patch_range(&reg, &session, 10, &bytes[10..20]);
    r.expect_status(202);
    let r = patch_range(&reg, &reg.loc(r.location()), 20, &bytes[20..]);
    r.expect_status(202);
    let done = close(&reg, &reg.loc(r.location()), &sha256(&bytes));
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn retried_chunk_gets_416_and_is_not_appended_twice() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/retry");
    let bytes = pseudo_random_bytes(13, 20);
    let session = reg.start_upload(&repo);
    let r = patch_range(&reg, &session, 0, &bytes[..10]);
    r.expect_status(202);
    let session = reg.loc(r.location());
    let again = patch_range(&reg, &session, 0, &bytes[..10]);
    assert_eq!(
        again.status,
        416,
        "{}: repeated chunk (body {})",
        again.what,
        again.text()
    );
    let r = patch_range(&reg, &session, 10, &bytes[10..]);
    r.expect_status(202);
    let session = reg.loc(r.location());
    let st = reg.get(&session);
    st.expect_status(204);
    assert_eq!(st.header("range"), Some("0-19"));
    let done = close(&reg, &session, &sha256(&bytes));
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn first_chunk_must_start_at_zero() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/zero");
    let session = reg.start_upload(&repo);
    let r = patch_range(&reg, &session, 5, b"abcde");
    assert_eq!(
        r.status,
        416,
        "{}: first chunk at 5 (body {})",
        r.what,
        r.text()
    );
}

#[test]
fn streamed_patches_without_content_range_append() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/stream");
    let bytes = pseudo_random_bytes(14, 50_000);
    let mut session = reg.start_upload(&repo);
    let mut sent = 0;
    for part in [&bytes[..20_000], &bytes[20_000..]] {
        let r = reg.call("PATCH", &session, &[OCTET], Some(part));
        r.expect_status(202);
        sent += part.len();
        assert_eq!(
            r.header("range"),
            Some(format!("0-{}", sent - 1).as_str()),
            "{}",
            r.what
        );
        session = reg.loc(r.location());
    }
    let done = close(&reg, &session, &sha256(&bytes));
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn streamed_patch_with_chunked_transfer_encoding_like_dockerd() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/dockerd");
    let bytes = pseudo_random_bytes(15, 200_000);
    let session = reg.start_upload(&repo);
    let r = reg.patch_chunked(&session, &bytes, 7_001);
    r.expect_status(202);
    assert_eq!(
        r.header("range"),
        Some(format!("0-{}", bytes.len() - 1).as_str())
    );
    let session = reg.loc(r.location());
    let done = close(&reg, &session, &sha256(&bytes));
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn get_on_a_session_reports_range_and_location() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/status");
    let bytes = pseudo_random_bytes(16, 150);
    let session = reg.start_upload(&repo);
    let fresh = reg.get(&session);
    fresh.expect_status(204);
    assert!(
        fresh.header("location").is_some(),
        "{}: Location",
        fresh.what
    );
    let r = patch_range(&reg, &session, 0, &bytes[..100]);
    r.expect_status(202);
    let st = reg.get(&reg.loc(r.location()));
    st.expect_status(204);
    assert!(st.body.is_empty());
    assert_eq!(st.header("range"), Some("0-99"));
    assert!(st
        .header("docker-upload-uuid")
        .is_some_and(|u| !u.is_empty()));
    // Resume from the Location the status answer gives.
    let next = reg.loc(st.location());
    let r = patch_range(&reg, &next, 100, &bytes[100..]);
    r.expect_status(202);
    let done = close(&reg, &reg.loc(r.location()), &sha256(&bytes));
    assert_blob(&reg, &repo, &bytes, &done);
}

#[test]
fn delete_cancels_a_session() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/cancel");
    let session = reg.start_upload(&repo);
    let r = patch_range(&reg, &session, 0, b"0123456789");
    r.expect_status(202);
    let session = reg.loc(r.location());
    let r = reg.delete(&session);
    r.expect_status(204);
    reg.get(&session)
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    patch_range(&reg, &session, 10, b"abc").expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    let url = TestRegistry::with_query(&session, &format!("digest={}", sha256(b"0123456789")));
    reg.call("PUT", &url, &[OCTET], Some(b""))
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.delete(&session)
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    reg.get_blob(&repo, &sha256(b"0123456789"))
        .expect_status(404);
}

#[test]
fn a_completed_session_is_gone() {
    let reg = TestRegistry::start();
    let repo = reg.repo("up/done");
    let bytes = b"complete me".to_vec();
    let session = reg.start_upload(&repo);
    let url = TestRegistry::with_query(&session, &format!("digest={}", sha256(&bytes)));
    reg.call("PUT", &url, &[OCTET], Some(&bytes))
        .expect_status(201);
    reg.get(&session)
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    patch_range(&reg, &session, 0, b"x").expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}
