//! The admin page's forms over real HTTP: users, groups, rules and upstreams
//! changed through the same registry functions and grammar as the CLI,
//! recorded in the audit log; a form posted from another origin or with a
//! stale CSRF token, and every admin form posted by a non-admin, refused and
//! changing nothing.

use crate::fixtures::{seed, ADMIN, READER};
use crate::pages::{csrf_of, flash_cookie, page, sign_in};
use crate::support::*;

struct Session<'a> {
    agent: &'a ureq::Agent,
    base: &'a str,
    cookie: String,
    csrf: String,
}

impl Session<'_> {
    fn post_from(&self, origin: &str, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut body = format!("csrf={}", self.csrf);
        for (k, v) in fields {
            body.push_str(&format!("&{k}={}", soute::api::query::percent_encode(v)));
        }
        let c = format!("soute_session={}", self.cookie);
        call(
            self.agent,
            "POST",
            &format!("{}{path}", self.base),
            None,
            &[
                ("Origin", origin),
                ("Cookie", &c),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    }

    /// A form posted as the browser does: a change answers 303 to the admin
    /// page (post, redirect, get), followed here with the message cookie it
    /// sets; an error or a page shown at once (a new token) is returned as is.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let r = self.post_from(self.base, path, fields);
        if r.status != 303 {
            return r;
        }
        let to = r
            .header("location")
            .expect("303 has a Location")
            .to_string();
        assert_eq!(to, "/ui/admin", "{path} redirects to the admin page");
        let flash = flash_cookie(&r).expect("a change leaves its message in a cookie");
        let c = format!("soute_session={}; {flash}", self.cookie);
        let shown = call(
            self.agent,
            "GET",
            &format!("{}{to}", self.base),
            None,
            &[("Cookie", &c)],
            None,
        );
        assert!(
            shown
                .header_values("set-cookie")
                .iter()
                .any(|c| c.starts_with("soute_done=;")),
            "the admin page clears the message once shown"
        );
        shown
    }
}

fn session<'a>(agent: &'a ureq::Agent, base: &'a str, who: (&str, &str)) -> Session<'a> {
    let cookie = sign_in(agent, base, who.0, who.1).expect("signed in");
    let html = page(agent, &format!("{base}/ui/"), Some(&cookie)).text();
    Session {
        agent,
        base,
        csrf: csrf_of(&html),
        cookie,
    }
}

#[test]
fn admin_forms_change_users_groups_rules_and_upstreams_as_the_cli_does() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let admin = session(&agent, &seeded.base, ADMIN);
    let registry = soute.registry();
    let pulls = |user: &str, pw: &str| {
        get(
            &agent,
            &soute.url("/v2/lab/app/manifests/keep"),
            Some(&basic(user, pw)),
        )
        .status
    };

    // Users: add, then the new user signs in (API and UI).
    let r = admin.post(
        "/ui/admin/user/add",
        &[("name", "carol"), ("password", "carol-pw-1")],
    );
    r.expect_status(200);
    assert!(r.text().contains("carol added"), "{}", r.text());
    assert!(sign_in(&agent, &seeded.base, "carol", "carol-pw-1").is_some());
    admin
        .post(
            "/ui/admin/user/add",
            &[("name", "carol"), ("password", "x")],
        )
        .expect_status(400);
    admin
        .post(
            "/ui/admin/user/add",
            &[("name", "bad name"), ("password", "x")],
        )
        .expect_status(400);
    assert_eq!(pulls("carol", "carol-pw-1"), 403, "no rule yet");

    // Groups and rules: carol pulls lab/** through a group's rule.
    admin
        .post("/ui/admin/group/add", &[("group", "devs")])
        .expect_status(200);
    admin
        .post(
            "/ui/admin/group/member",
            &[("group", "devs"), ("user", "carol"), ("op", "add")],
        )
        .expect_status(200);
    admin
        .post(
            "/ui/admin/rule/add",
            &[
                ("who", "group:devs"),
                ("pattern", "lab/**"),
                ("actions", "pull"),
            ],
        )
        .expect_status(200);
    assert_eq!(pulls("carol", "carol-pw-1"), 200);
    // The CLI's grammar: admin is about the server, so only on '**'.
    let r = admin.post(
        "/ui/admin/rule/add",
        &[
            ("who", "carol"),
            ("pattern", "lab/**"),
            ("actions", "admin"),
        ],
    );
    r.expect_status(400);
    assert!(r.text().contains("grant it on"), "{}", r.text());
    admin
        .post(
            "/ui/admin/group/member",
            &[("group", "devs"), ("user", "carol"), ("op", "del")],
        )
        .expect_status(200);
    assert_eq!(pulls("carol", "carol-pw-1"), 403, "left the group");
    admin
        .post(
            "/ui/admin/group/member",
            &[("group", "devs"), ("user", "carol"), ("op", "add")],
        )
        .expect_status(200);
    admin
        .post(
            "/ui/admin/rule/del",
            &[("who", "group:devs"), ("pattern", "lab/**")],
        )
        .expect_status(200);
    assert_eq!(pulls("carol", "carol-pw-1"), 403, "rule revoked");
    admin
        .post("/ui/admin/group/del", &[("group", "devs")])
        .expect_status(200);
    assert!(registry.groups().expect("groups").is_empty());

    // Password and admin flag.
    admin
        .post(
            "/ui/admin/user/passwd",
            &[("name", "carol"), ("password", "carol-pw-2")],
        )
        .expect_status(200);
    assert!(sign_in(&agent, &seeded.base, "carol", "carol-pw-1").is_none());
    admin
        .post(
            "/ui/admin/user/admin",
            &[("name", "carol"), ("admin", "yes")],
        )
        .expect_status(200);
    assert_eq!(pulls("carol", "carol-pw-2"), 200, "an admin pulls anything");
    // An admin may not demote or delete itself here.
    admin
        .post("/ui/admin/user/del", &[("name", ADMIN.0)])
        .expect_status(400);
    admin
        .post(
            "/ui/admin/user/admin",
            &[("name", ADMIN.0), ("admin", "no")],
        )
        .expect_status(400);

    // Upstreams: the CLI's validation, then add and delete.
    let r = admin.post(
        "/ui/admin/upstream/add",
        &[("name", "hub"), ("url", "https://example.test/path")],
    );
    r.expect_status(400);
    assert!(registry.upstreams().expect("upstreams").is_empty());
    admin
        .post(
            "/ui/admin/upstream/add",
            &[("name", "Bad/Name"), ("url", "https://example.test")],
        )
        .expect_status(400);
    admin
        .post(
            "/ui/admin/upstream/add",
            &[
                ("name", "hub"),
                ("url", "https://example.test/"),
                ("username", "me"),
                ("password", "upstream-secret"),
                ("tag_ttl", "120"),
            ],
        )
        .expect_status(200);
    let ups = registry.upstreams().expect("upstreams");
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].url, "https://example.test");
    assert_eq!(ups[0].tag_ttl_secs, 120);
    assert_eq!(ups[0].password.as_deref(), Some("upstream-secret"));
    let shown = page(&agent, &soute.url("/ui/admin"), Some(&admin.cookie)).text();
    assert!(!shown.contains("upstream-secret"), "never shown");
    admin
        .post("/ui/admin/upstream/del", &[("name", "hub")])
        .expect_status(200);
    assert!(registry.upstreams().expect("upstreams").is_empty());

    admin
        .post("/ui/admin/user/del", &[("name", "carol")])
        .expect_status(200);
    assert!(!registry.user_exists("carol").expect("exists"));

    let audit = registry.audit_events(i64::MIN, 1000).expect("audit");
    for words in [
        "user add carol (web UI)",
        "group add devs (web UI)",
        "group member add devs carol (web UI)",
        "access grant group:devs lab/** pull (web UI)",
        "access revoke group:devs lab/** (web UI)",
        "user passwd carol (web UI)",
        "user admin carol yes (web UI)",
        "upstream del hub (web UI)",
        "user del carol (web UI)",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == "admin" && e.actor == ADMIN.0 && e.detail == words),
            "audited: {words}"
        );
    }
    assert!(
        !audit
            .iter()
            .any(|e| e.detail.contains("pw-") || e.detail.contains("upstream-secret")),
        "no password in the audit log"
    );
}

#[test]
fn admin_forms_refuse_other_origins_stale_tokens_and_non_admins() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let admin = session(&agent, &seeded.base, ADMIN);
    let add = [("name", "mallory"), ("password", "mallory-pw")];
    admin
        .post_from("http://evil.example", "/ui/admin/user/add", &add)
        .expect_status(403);
    let stale = Session {
        csrf: "0".repeat(64),
        ..session(&agent, &seeded.base, ADMIN)
    };
    stale.post("/ui/admin/user/add", &add).expect_status(403);
    assert!(!soute.registry().user_exists("mallory").expect("exists"));

    let reader = session(&agent, &seeded.base, READER);
    page(&agent, &soute.url("/ui/admin"), Some(&reader.cookie)).expect_status(403);
    let forms: [(&str, &[(&str, &str)]); 11] = [
        ("user/add", &add),
        (
            "user/passwd",
            &[("name", ADMIN.0), ("password", "taken-over")],
        ),
        ("user/del", &[("name", ADMIN.0)]),
        ("user/admin", &[("name", READER.0), ("admin", "yes")]),
        ("group/add", &[("group", "g")]),
        ("group/del", &[("group", "g")]),
        ("group/member", &[("group", "g"), ("user", READER.0)]),
        (
            "rule/add",
            &[("who", READER.0), ("pattern", "**"), ("actions", "pull")],
        ),
        ("rule/del", &[("who", READER.0), ("pattern", "lab/**")]),
        (
            "upstream/add",
            &[("name", "hub"), ("url", "https://example.test")],
        ),
        ("upstream/del", &[("name", "hub")]),
    ];
    for (path, fields) in forms {
        reader
            .post(&format!("/ui/admin/{path}"), fields)
            .expect_status(403);
    }
    let registry = soute.registry();
    assert!(!registry.user_exists("mallory").expect("exists"));
    assert_eq!(
        registry.rules().expect("rules").len(),
        1,
        "only lab/** pull"
    );
    assert!(registry.groups().expect("groups").is_empty());
    assert!(registry.upstreams().expect("upstreams").is_empty());
    assert!(
        sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).is_some(),
        "the admin's password is unchanged"
    );
    let users = registry.users().expect("users");
    assert!(users.iter().any(|u| u.name == READER.0 && !u.admin));
}
