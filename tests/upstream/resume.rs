//! Faults injected by a loopback relay between soute and docker-registry:
//! a connection cut mid-blob is resumed with a Range request (the upstream
//! logs a 206) and the pull completes; a flipped byte cuts the streaming
//! client short of its Content-Length and stores nothing; a download broken
//! by a restart of soute (the real binary, SIGKILLed) resumes from its kept
//! partial file instead of starting over.

use super::common::*;
use super::relay::{Fault, Relay};
use super::space::soute_ok;
use super::stream::raw_pull;
use crate::support::*;
use std::time::Duration;

/// The relay's offsets land in the blob's body: it is 4 MiB, the cut or
/// flip comes at 1.5 MiB of the connection.
const SIZE: usize = 4 << 20;
const AT: u64 = 3 << 19;

fn partial_files(data: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_dir(data.join("upstream-partial"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map(|m| m.len()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_transfer_cut_mid_blob_is_resumed_with_a_range_request() {
    if !distribution_available("a_transfer_cut_mid_blob_is_resumed_with_a_range_request") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(&agent, &upstream.url(), "org/cut", "1", 50, &[SIZE], None);
    let layer = sha256(&image.blobs[1]);
    let relay = Relay::start(&upstream.addr, Fault::Pass);
    let soute = Soute::plain();
    add_upstream(soute.data(), &["ghcr.io", &relay.url()], None);
    pull_manifest(&soute, "ghcr.io/org/cut", "1", &image.manifest);

    relay.set(Fault::CutAt(AT));
    let r = raw_pull(
        soute.addr(),
        &format!("/v2/ghcr.io/org/cut/blobs/{layer}"),
        1,
    );
    assert_eq!(relay.cuts(), 1, "the relay did not cut");
    assert_eq!(r.status, 200);
    assert!(r.body == image.blobs[1], "bytes differ after the resume");
    let gets: Vec<_> = soute_requests(&upstream)
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&layer))
        .collect();
    let mut statuses: Vec<u16> = gets.iter().map(|g| g.2).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 206],
        "one GET, then one Range GET: {gets:?}"
    );
    // The client's last byte waits for the digest, not for the commit.
    let data = soute.data().to_path_buf();
    wait_until("the blob to be stored", Duration::from_secs(20), || {
        blob_rows(&data).contains(&layer)
    });
    assert!(
        partial_files(soute.data()).is_empty(),
        "the partial file stayed"
    );
}

#[test]
fn a_flipped_byte_cuts_the_streaming_client_and_stores_nothing() {
    if !distribution_available("a_flipped_byte_cuts_the_streaming_client_and_stores_nothing") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(&agent, &upstream.url(), "org/flip", "1", 51, &[SIZE], None);
    let layer = sha256(&image.blobs[1]);
    let relay = Relay::start(&upstream.addr, Fault::Pass);
    let soute = Soute::plain();
    add_upstream(soute.data(), &["quay.io", &relay.url()], None);
    pull_manifest(&soute, "quay.io/org/flip", "1", &image.manifest);

    relay.set(Fault::FlipAt(AT));
    let r = raw_pull(
        soute.addr(),
        &format!("/v2/quay.io/org/flip/blobs/{layer}"),
        1,
    );
    // Streamed: 200 and the length went out first; the connection is cut
    // before the last byte, so no client takes it for a whole blob.
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length, SIZE as u64);
    assert!(
        (r.body.len() as u64) < r.content_length,
        "a corrupt blob was sent whole ({} bytes)",
        r.body.len()
    );
    assert!(
        !blob_rows(soute.data()).contains(&layer),
        "a row for the bad blob"
    );
    assert!(
        !blob_files(soute.data()).contains(&layer),
        "a file for the bad blob"
    );
    assert!(
        partial_files(soute.data()).is_empty(),
        "the bad bytes were kept"
    );
    let listed = list_json(soute.data());
    let error = listed[0]["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains(&layer) && error.contains("other bytes"),
        "not recorded: {listed}"
    );
    // The next pull, without the fault, fetches and serves it.
    relay.set(Fault::Pass);
    let r = raw_pull(
        soute.addr(),
        &format!("/v2/quay.io/org/flip/blobs/{layer}"),
        1,
    );
    assert!(r.body == image.blobs[1], "bytes differ after the fault");
}

#[test]
fn a_partial_download_survives_a_restart_and_is_resumed() {
    if !distribution_available("a_partial_download_survives_a_restart_and_is_resumed") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "org/restart",
        "1",
        52,
        &[SIZE],
        None,
    );
    let layer = sha256(&image.blobs[1]);
    let relay = Relay::start(&upstream.addr, Fault::Pass);
    let served = Served::fresh(&[]);
    add_upstream(served.folder(), &["docker.io", &relay.url()], None);
    let path = format!("/v2/docker.io/org/restart/blobs/{layer}");
    let manifest = manifest_at(
        &format!(
            "http://{}/v2/docker.io/org/restart/manifests/1",
            served.addr
        ),
        None,
    );
    manifest.expect_status(200);

    relay.set(Fault::StallAt(AT));
    let addr = served.addr;
    let p = path.clone();
    let client = std::thread::spawn(move || raw_pull(addr, &p, 1));
    let folder = served.folder().to_path_buf();
    wait_until(
        "the download to stall past 1 MiB",
        Duration::from_secs(20),
        || {
            partial_files(&folder)
                .first()
                .is_some_and(|(_, len)| *len >= 1 << 20)
        },
    );
    let served = served.restart(&[]);
    let cut = client.join().expect("client");
    assert!(
        (cut.body.len() as u64) < cut.content_length,
        "the killed server's client got it all"
    );
    let kept = partial_files(served.folder());
    assert_eq!(kept.len(), 1, "the partial download was not kept: {kept:?}");
    relay.set(Fault::Pass);

    let r = raw_pull(served.addr, &path, 1);
    assert_eq!(r.status, 200);
    assert!(r.body == image.blobs[1], "bytes differ after the restart");
    let gets: Vec<_> = soute_requests(&upstream)
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&layer))
        .collect();
    let mut statuses: Vec<u16> = gets.iter().map(|g| g.2).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        vec![200, 206],
        "the restarted server resumed with a Range GET: {gets:?}"
    );
    let log = served.log_text();
    assert!(log.contains("resuming blob"), "{log}");
    let folder = served.folder().to_path_buf();
    wait_until(
        "the partial file to be committed",
        Duration::from_secs(20),
        || partial_files(&folder).is_empty(),
    );
}

#[test]
fn a_kept_partial_file_longer_than_the_blob_is_downloaded_again() {
    if !distribution_available("a_kept_partial_file_longer_than_the_blob_is_downloaded_again") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "org/stale",
        "1",
        53,
        &[2 << 20],
        None,
    );
    let layer = sha256(&image.blobs[1]);
    let soute = Soute::plain();
    add_upstream(soute.data(), &["ghcr.io", &upstream.url()], None);
    // What an older download (of other bytes) could have left.
    let dir = soute.data().join("upstream-partial");
    std::fs::create_dir_all(&dir).expect("partial dir");
    let hex = layer.strip_prefix("sha256:").expect("sha256");
    std::fs::write(
        dir.join(format!("sha256-{hex}")),
        vec![7u8; (2 << 20) + 4096],
    )
    .expect("stale partial");
    let r = raw_pull(
        soute.addr(),
        &format!("/v2/ghcr.io/org/stale/blobs/{layer}"),
        1,
    );
    assert_eq!(r.status, 200);
    assert!(r.body == image.blobs[1], "bytes differ");
    let data = soute.data().to_path_buf();
    wait_until("the blob to be stored", Duration::from_secs(20), || {
        blob_rows(&data).contains(&layer)
    });
    let stored = std::fs::metadata(blob_path(soute.data(), &layer)).expect("blob file");
    assert_eq!(stored.len(), 2 << 20, "the stale tail was kept");
    let statuses: Vec<u16> = soute_requests(&upstream)
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&layer))
        .map(|g| g.2)
        .collect();
    assert_eq!(
        statuses,
        vec![416, 200],
        "a Range GET refused, then the whole blob"
    );
}

/// A download its upstream left mid-blob keeps its partial file (the next
/// pull resumes it); GC removes one nobody resumed within the upload TTL,
/// and says so (it is counted in what GC frees).
#[test]
fn gc_removes_partial_downloads_nobody_resumed() {
    if !distribution_available("gc_removes_partial_downloads_nobody_resumed") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(&agent, &upstream.url(), "org/left", "1", 52, &[SIZE], None);
    let layer = sha256(&image.blobs[1]);
    // The relay holds the blob's connection at 1.5 MiB, then goes away
    // (its port closed: the download's Range retries are refused).
    let relay = Relay::start(&upstream.addr, Fault::StallAt(AT));
    let soute = Soute::plain();
    add_upstream(soute.data(), &["ghcr.io", &relay.url()], None);
    pull_manifest(&soute, "ghcr.io/org/left", "1", &image.manifest);
    let addr = soute.addr();
    let path = format!("/v2/ghcr.io/org/left/blobs/{layer}");
    let client = std::thread::spawn(move || raw_pull(addr, &path, 1));
    std::thread::sleep(Duration::from_millis(1500));
    drop(relay);
    let r = client.join().expect("client");
    assert!(
        (r.body.len() as u64) < SIZE as u64,
        "a whole blob from a stopped upstream"
    );
    // The download gives up (its resume attempts fail) and leaves the file.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let left = loop {
        let files = partial_files(soute.data());
        let running = soute.registry().gc(&soute::registry::GcPolicy {
            dry_run: true,
            ..soute::registry::GcPolicy::default()
        });
        if !files.is_empty() && running.is_ok() {
            break files;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no partial file was left"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(left.len(), 1, "{left:?}");
    let (name, bytes) = left[0].clone();
    assert!(bytes > 0 && bytes < SIZE as u64, "{bytes}");
    // `soute du` shows it on a line of its own, and in the JSON.
    let du = |data: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&soute_ok(data, &["du", "--json"])).expect("du --json is JSON")
    };
    let usage = du(soute.data());
    assert_eq!(usage["total"]["partial_downloads"], 1, "{usage:#}");
    assert_eq!(usage["total"]["partial_download_bytes"], bytes, "{usage:#}");
    let text = soute_ok(soute.data(), &["du"]);
    assert!(
        text.contains("partial pull-through downloads (upstream-partial/): ")
            && text.contains(&format!("({bytes} bytes) in 1 file(s)")),
        "{text}"
    );
    // Within the TTL (24 h by default) it stays, to be resumed.
    let report = soute
        .registry()
        .gc(&soute::registry::GcPolicy::default())
        .expect("gc");
    assert!(report
        .uploads_expired
        .iter()
        .all(|r| !r.what.contains(&name)));
    assert_eq!(partial_files(soute.data()).len(), 1);
    // Past it (here 0 s), a dry run names it and GC removes it.
    let policy = |dry_run| soute::registry::GcPolicy {
        dry_run,
        upload_ttl_secs: 0,
        ..soute::registry::GcPolicy::default()
    };
    let dry = soute.registry().gc(&policy(true)).expect("dry run");
    assert!(dry
        .uploads_expired
        .iter()
        .any(|r| r.what.contains(&name) && r.bytes == bytes));
    assert_eq!(partial_files(soute.data()).len(), 1, "a dry run removed it");
    let report = soute.registry().gc(&policy(false)).expect("gc");
    assert!(
        report
            .uploads_expired
            .iter()
            .any(|r| r.what.contains(&name) && r.bytes == bytes),
        "{:?}",
        report.uploads_expired
    );
    assert!(report.freed_bytes >= bytes);
    assert!(
        partial_files(soute.data()).is_empty(),
        "the partial file is still there"
    );
    let usage = du(soute.data());
    assert_eq!(usage["total"]["partial_download_bytes"], 0, "{usage:#}");
}
