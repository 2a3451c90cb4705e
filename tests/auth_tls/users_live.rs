//! `soute user passwd|del` in another process apply at once to a running
//! server, cached logins included.

use crate::support::*;
use soute::config::TlsMode;
use ureq::config::IpFamily;

/// The NAME column of `soute user list` (after its header line).
fn listed_names(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn passwd_and_del_apply_at_once_even_to_cached_logins() {
    let soute = Soute::start(|cfg| cfg.tls = TlsMode::Auto);
    user_cmd(soute.data(), &["add", "alice"], Some("old-pw"));
    // bob keeps the registry closed once alice is gone.
    user_cmd(soute.data(), &["add", "bob"], Some("bob-pw"));
    let listed = user_cmd(soute.data(), &["list"], None);
    assert_eq!(listed_names(&listed), ["alice", "bob"]);

    let ca = std::fs::read(soute.data().join("tls/ca.crt")).expect("ca.crt");
    let agent = tls_agent(&ca, IpFamily::Ipv4Only);
    let v2 = format!("{}/v2/", soute.https_base());
    let old = basic("alice", "old-pw");
    let new = basic("alice", "new-pw");
    get(&agent, &v2, None).expect_challenge("soute");
    // Logged in twice: the second answer comes from the login cache.
    get(&agent, &v2, Some(&old)).expect_status(200);
    get(&agent, &v2, Some(&old)).expect_status(200);
    get(&agent, &v2, Some(&new)).expect_challenge("soute");

    user_cmd(soute.data(), &["passwd", "alice"], Some("new-pw"));
    // No wait: the very next request sees the change.
    get(&agent, &v2, Some(&old)).expect_challenge("soute");
    get(&agent, &v2, Some(&new)).expect_status(200);
    get(&agent, &v2, Some(&new)).expect_status(200);
    get(&agent, &v2, Some(&old)).expect_challenge("soute");

    user_cmd(soute.data(), &["del", "alice"], None);
    get(&agent, &v2, Some(&new)).expect_challenge("soute");
    get(&agent, &v2, Some(&old)).expect_challenge("soute");
    get(&agent, &v2, Some(&basic("bob", "bob-pw"))).expect_status(200);
    let listed = user_cmd(soute.data(), &["list"], None);
    assert_eq!(listed_names(&listed), ["bob"]);

    // Re-adding alice with the old password works again at once.
    user_cmd(soute.data(), &["add", "alice"], Some("old-pw"));
    get(&agent, &v2, Some(&old)).expect_status(200);
    get(&agent, &v2, Some(&new)).expect_challenge("soute");
    soute.stop();
}
