//! The repository page over real HTTP: each tag's `created` (from its
//! image config) and last pull (the pull log: a private repository's pull,
//! and a cached repository's, pulled through a real distribution upstream), and the multi-delete confirmation
//! listing what each tag alone frees, checked against du.

use crate::fixtures::{push_image, seed, To, ADMIN, CREATED};
use crate::pages::{csrf_of, page, sign_in};
use crate::support::*;
use soute::oci::{RepoName, Tag};
use soute::registry::GcPolicy;

#[test]
fn the_repository_page_shows_created_last_pulled_and_what_each_tag_frees() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let cookie = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("admin");
    let html = page(&agent, &soute.url("/ui/r/lab/app"), Some(&cookie)).text();
    let created = soute::cli::format_rfc3339(soute::cli::parse_rfc3339(CREATED).expect("time"));
    assert!(
        html.contains(&format!(
            "class=\"hide-narrow created\"><time datetime=\"{created}\""
        )),
        "created from the config"
    );
    assert!(
        html.contains("id=\"no-pulls\"") && !html.contains("Last pulled"),
        "no pull yet: {html}"
    );
    // A private repository's pull (by tag, as docker does) is recorded by digest.
    get(
        &agent,
        &soute.url("/v2/lab/app/manifests/keep"),
        Some(&basic(ADMIN.0, ADMIN.1)),
    )
    .expect_status(200);
    soute.registry().flush_pulls().expect("flush");
    let html = page(&agent, &soute.url("/ui/r/lab/app"), Some(&cookie)).text();
    let pulled = html.matches("class=\"hide-narrow pulled\"><time").count();
    assert!(
        pulled >= 1 && html.contains("Last pulled") && !html.contains("id=\"no-pulls\""),
        "the private pull is shown: {html}"
    );

    // The confirmation: each tag's own figure is du's for that tag.
    let c = format!("soute_session={cookie}");
    let body = format!("csrf={}&repo=lab/app&tag=old-1&tag=keep", csrf_of(&html));
    let r = call(
        &agent,
        "POST",
        &soute.url("/ui/delete"),
        None,
        &[
            ("Origin", &seeded.base),
            ("Cookie", &c),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(body.as_bytes()),
    );
    r.expect_status(200);
    let confirm = r.text();
    let repo = RepoName::parse("lab/app").expect("repo");
    for t in ["old-1", "keep"] {
        let du = soute
            .registry()
            .du(
                Some(&repo),
                Some(&Tag::parse(t).expect("tag")),
                &GcPolicy::default(),
            )
            .expect("du")
            .tag_delete_frees_bytes
            .expect("a tag's figure");
        assert!(du > 0);
        assert!(
            confirm.contains(&format!("data-tag=\"{t}\" data-bytes=\"{du}\"")),
            "{t} alone frees {du}: {confirm}"
        );
    }

    // A cached repository: its last pull is shown once the log is written.
    if !distribution_available("the_repository_page_shows_created_last_pulled") {
        return;
    }
    let upstream = Distribution::start(None);
    let to = To {
        agent: &agent,
        base: &upstream.url(),
        auth: None,
    };
    push_image(to, "team/tool", "v1", "amd64", &[b"tool".to_vec()], None);
    let mut row = soute::db::upstreams::UpstreamRow::new("hub", &upstream.url());
    row.tag_ttl_secs = 0;
    assert!(soute.registry().add_upstream(&row).expect("add upstream"));
    get(
        &agent,
        &soute.url("/v2/hub/team/tool/manifests/v1"),
        Some(&basic(ADMIN.0, ADMIN.1)),
    )
    .expect_status(200);
    soute.registry().flush_pulls().expect("flush");
    let html = page(&agent, &soute.url("/ui/r/hub/team/tool"), Some(&cookie)).text();
    assert!(
        html.contains("class=\"hide-narrow pulled\"><time"),
        "the last pull: {html}"
    );
}
