//! Faults: the upstream stopped (cached tags and digests still pull, after
//! the TTL too; uncached ones fail fast with a clear error), and an upstream
//! that sends other bytes than the digest (nothing stored, an error).

use super::common::*;
use crate::support::*;
use std::time::{Duration, Instant};

#[test]
fn a_stopped_upstream_leaves_cached_content_pullable_and_fails_fast_otherwise() {
    if !distribution_available(
        "a_stopped_upstream_leaves_cached_content_pullable_and_fails_fast_otherwise",
    ) {
        return;
    }
    let mut upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "library/redis",
        "7",
        20,
        &[4000, 5000],
        None,
    );
    let other = push_image(
        &agent,
        &upstream.url(),
        "library/redis",
        "8",
        21,
        &[100],
        None,
    );
    let soute = Soute::plain();
    add_upstream(
        soute.data(),
        &["docker.io", &upstream.url(), "--tag-ttl", "1"],
        None,
    );
    pull_manifest(&soute, "docker.io/redis", "7", &image.manifest);
    pull_blobs(&soute, "docker.io/redis", &image);

    upstream.stop();
    std::thread::sleep(Duration::from_millis(2100));
    // Past the TTL: the revalidation fails, the cached tag is served.
    pull_manifest(&soute, "docker.io/redis", "7", &image.manifest);
    pull_manifest(
        &soute,
        "docker.io/library/redis",
        &image.digest,
        &image.manifest,
    );
    pull_blobs(&soute, "docker.io/redis", &image);

    for path in [
        "/v2/docker.io/redis/manifests/8".to_string(),
        format!("/v2/docker.io/redis/manifests/{}", other.digest),
        format!("/v2/docker.io/redis/blobs/{}", sha256(&other.blobs[1])),
    ] {
        let started = Instant::now();
        let r = manifest_at(&soute.url(&path), None);
        let took = started.elapsed();
        r.expect_error(502, &["UNKNOWN"]);
        let text = r.text();
        assert!(
            text.contains("upstream docker.io") && text.contains("not cached"),
            "{path}: {text}"
        );
        assert!(took < Duration::from_secs(10), "{path} took {took:?}");
    }
    let listed = list_json(soute.data());
    let error = listed[0]["last_error"].as_str().unwrap_or("");
    assert!(error.contains("unreachable"), "{listed}");

    // Back up: the uncached tag pulls.
    upstream.resume();
    pull_manifest(&soute, "docker.io/redis", "8", &other.manifest);
}

#[test]
fn an_upstream_blob_with_other_bytes_is_not_stored() {
    if !distribution_available("an_upstream_blob_with_other_bytes_is_not_stored") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(&agent, &upstream.url(), "org/bad", "1", 30, &[10_000], None);
    let layer = sha256(&image.blobs[1]);
    // distribution serves its files as they are: flip one byte on its disk.
    let file = upstream.blob_file(&layer);
    let mut bytes = std::fs::read(&file).expect("upstream blob file");
    bytes[5000] ^= 0xff;
    std::fs::write(&file, &bytes).expect("corrupt");

    let soute = Soute::plain();
    add_upstream(soute.data(), &["quay.io", &upstream.url()], None);
    pull_manifest(&soute, "quay.io/org/bad", "1", &image.manifest);
    let r = get(
        &agent,
        &soute.url(&format!("/v2/quay.io/org/bad/blobs/{layer}")),
        None,
    );
    r.expect_error(502, &["UNKNOWN"]);
    assert!(r.text().contains("nothing was stored"), "{}", r.text());
    assert!(
        !blob_rows(soute.data()).contains(&layer),
        "a row for the bad blob"
    );
    assert!(
        !blob_files(soute.data()).contains(&layer),
        "a file for the bad blob"
    );
    assert_eq!(
        std::fs::read_dir(soute.data().join("uploads"))
            .expect("uploads")
            .count(),
        0,
        "the cache session was left behind"
    );
    // The config blob, which is intact, caches normally.
    pull_blobs(
        &soute,
        "quay.io/org/bad",
        &Image {
            manifest: image.manifest.clone(),
            digest: image.digest.clone(),
            blobs: vec![image.blobs[0].clone()],
        },
    );
}
