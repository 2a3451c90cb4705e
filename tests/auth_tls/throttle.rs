//! Login throttling: 10 failures in a row per (user, address), 30 per
//! address, then a back-off that doubles from 1 s; cached sessions pass.

use crate::support::*;

fn expect_throttled(r: &Resp) {
    r.expect_status(429);
    assert_eq!(r.error_code(), "TOOMANYREQUESTS", "{}", r.what);
    let retry: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{}: no Retry-After", r.what))
        .parse()
        .expect("Retry-After is a number of seconds");
    assert!((1..=60).contains(&retry), "{}: Retry-After {retry}", r.what);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
}

#[test]
fn repeated_failures_throttle_the_pair_then_the_address_but_not_sessions() {
    let soute = Soute::start(|cfg| {
        cfg.listen = vec![
            "127.0.0.1:0".parse().expect("v4"),
            "[::1]:0".parse().expect("v6"),
        ];
    });
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        soute
            .registry()
            .set_user(user, &format!("{user}-pw"))
            .expect("set_user");
    }
    let addrs = soute.addrs();
    let agent = http_agent();
    let v2 = format!("http://{}/v2/", addrs[0]);
    let v2_ipv6 = format!("http://[::1]:{}/v2/", addrs[1].port());
    let agent6 = {
        use ureq::config::IpFamily;
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .ip_family(IpFamily::Ipv6Only)
            .build()
            .new_agent()
    };
    let right = |u: &str| basic(u, &format!("{u}-pw"));
    let wrong = |u: &str| basic(u, "guess");

    // alice logs in before the attack: her session is cached.
    get(&agent, &v2, Some(&right("alice"))).expect_status(200);

    // carol: 10 wrong passwords, then even the right one is refused.
    for i in 0..10 {
        let r = get(&agent, &v2, Some(&wrong("carol")));
        assert_eq!(r.status, 401, "carol failure {i}: {}", r.text());
    }
    expect_throttled(&get(&agent, &v2, Some(&wrong("carol"))));
    expect_throttled(&get(&agent, &v2, Some(&right("carol"))));

    // alice under attack: throttled for new checks, her session goes on.
    for _ in 0..10 {
        get(&agent, &v2, Some(&wrong("alice"))).expect_status(401);
    }
    expect_throttled(&get(&agent, &v2, Some(&wrong("alice"))));
    get(&agent, &v2, Some(&right("alice"))).expect_status(200);

    // 20 failures from this address so far: bob (never logged in) is fine.
    get(&agent, &v2, Some(&right("bob"))).expect_status(200);

    // dave's 10 failures bring the address to 30: now every uncached check
    // from it is refused, erin's right password included ...
    for _ in 0..10 {
        get(&agent, &v2, Some(&wrong("dave"))).expect_status(401);
    }
    expect_throttled(&get(&agent, &v2, Some(&right("erin"))));
    // ... but cached sessions from it still work ...
    get(&agent, &v2, Some(&right("alice"))).expect_status(200);
    get(&agent, &v2, Some(&right("bob"))).expect_status(200);
    // ... and another address is not affected, not even for carol: failures
    // from one address never lock a user out of another.
    get(&agent6, &v2_ipv6, Some(&right("erin"))).expect_status(200);
    get(&agent6, &v2_ipv6, Some(&right("carol"))).expect_status(200);
    // Requests without credentials are still challenged, not throttled.
    get(&agent, &v2, None).expect_challenge("soute");
    soute.stop();
}
