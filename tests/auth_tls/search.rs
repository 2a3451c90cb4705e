//! `docker search`: /v1/_ping and /v1/search, over TLS with credentials.

use crate::auth::push_image;
use crate::support::*;
use serde_json::json;
use soute::config::TlsMode;
use ureq::config::IpFamily;

#[test]
fn search_answers_in_docker_hub_shape() {
    let soute = Soute::start(|cfg| cfg.tls = TlsMode::Auto);
    soute.registry().set_user("alice", "pw").expect("set_user");
    let ca = std::fs::read(soute.data().join("tls/ca.crt")).expect("ca.crt");
    let agent = tls_agent(&ca, IpFamily::Ipv4Only);
    let base = soute.https_base();
    let auth = basic("alice", "pw");

    let ping = get(&agent, &format!("{base}/v1/_ping"), None);
    ping.expect_status(200);

    push_image(&agent, &base, Some(&auth), "lab/app", "a tiny test image");
    let search = |query: &str| {
        let r = get(&agent, &format!("{base}/v1/search?{query}"), Some(&auth));
        r.expect_status(200);
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{}: content type {:?}",
            r.what,
            r.header("content-type")
        );
        r.json()
    };
    let hit = json!({
        "name": "lab/app",
        "description": "a tiny test image",
        "star_count": 0,
        "is_official": false,
        "is_automated": false,
    });
    assert_eq!(
        search("q=tiny&n=25"),
        json!({"num_results": 1, "query": "tiny", "results": [hit.clone()]})
    );
    // By name (docker sends the slash encoded).
    let by_name = search("q=lab%2Fapp");
    assert_eq!(by_name["num_results"], 1);
    assert_eq!(by_name["query"], "lab/app");
    assert_eq!(by_name["results"], json!([hit.clone()]));
    // Nothing matches.
    assert_eq!(
        search("q=absent"),
        json!({"num_results": 0, "query": "absent", "results": []})
    );

    // A second match; n limits the answer.
    push_image(&agent, &base, Some(&auth), "lab/tool", "another tiny tool");
    let both = search("q=tiny");
    assert_eq!(both["num_results"], 2);
    let names: Vec<&str> = both["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["lab/app", "lab/tool"]);
    let one = search("q=tiny&n=1");
    assert_eq!(one["num_results"], 1);
    assert_eq!(one["results"], json!([hit]));

    // Without credentials: the challenge, also for docker's logged-out value.
    get(&agent, &format!("{base}/v1/search?q=tiny"), None).expect_challenge("soute");
    get(
        &agent,
        &format!("{base}/v1/search?q=tiny"),
        Some("Basic Og=="),
    )
    .expect_challenge("soute");
    soute.stop();
}
