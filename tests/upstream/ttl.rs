//! Tags and their TTL: before the TTL no upstream request at all; after it
//! a HEAD only while the tag has not moved; a moved tag is fetched again.

use super::common::*;
use crate::support::*;
use std::time::Duration;

#[test]
fn no_request_before_the_ttl_a_head_after_it_and_a_moved_tag_is_seen() {
    if !distribution_available("no_request_before_the_ttl_a_head_after_it_and_a_moved_tag_is_seen")
    {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let first = push_image(
        &agent,
        &upstream.url(),
        "team/app",
        "stable",
        10,
        &[500],
        None,
    );
    let soute = Soute::plain();
    // Two namespaces over the same upstream: a long TTL and a 1 s one.
    add_upstream(
        soute.data(),
        &["slow.test", &upstream.url(), "--tag-ttl", "3600"],
        None,
    );
    add_upstream(
        soute.data(),
        &["fast.test", &upstream.url(), "--tag-ttl", "1"],
        None,
    );

    pull_manifest(&soute, "slow.test/team/app", "stable", &first.manifest);
    pull_manifest(&soute, "fast.test/team/app", "stable", &first.manifest);
    let before = soute_requests(&upstream).len();
    for _ in 0..3 {
        pull_manifest(&soute, "slow.test/team/app", "stable", &first.manifest);
    }
    assert_eq!(
        soute_requests(&upstream).len(),
        before,
        "a tag within its TTL was checked upstream"
    );

    // After the TTL, an unmoved tag costs one HEAD and no GET.
    std::thread::sleep(Duration::from_millis(2100));
    pull_manifest(&soute, "fast.test/team/app", "stable", &first.manifest);
    let after: Vec<_> = soute_requests(&upstream).split_off(before);
    let manifest_calls: Vec<_> = after
        .iter()
        .filter(|(_, p, _)| p.contains("/manifests/"))
        .collect();
    assert_eq!(manifest_calls.len(), 1, "{after:?}");
    assert_eq!(manifest_calls[0].0, "HEAD", "{after:?}");

    // The tag moves upstream.
    let second = push_image(
        &agent,
        &upstream.url(),
        "team/app",
        "stable",
        11,
        &[600],
        None,
    );
    assert_ne!(first.digest, second.digest);
    pull_manifest(&soute, "slow.test/team/app", "stable", &first.manifest);
    std::thread::sleep(Duration::from_millis(2100));
    pull_manifest(&soute, "fast.test/team/app", "stable", &second.manifest);
    pull_blobs(&soute, "fast.test/team/app", &second);
    // Both digests stay pullable by digest from the cache.
    pull_manifest(&soute, "fast.test/team/app", &first.digest, &first.manifest);
}
