//! What the UI promises before a change, and that it keeps it: the tag
//! delete's confirmation counts only repositories the viewer can see (a
//! hidden one sharing a layer changes nothing it shows), refuses at once
//! what the delete would refuse (a protected tag, a tag that is not there,
//! deletes switched off), and the dashboard's GC frees what it promised,
//! with post-redirect-get (a reload runs nothing). The sign-in form stays
//! good across tabs.

use crate::fixtures::{push_image, seed, To, ADMIN};
use crate::pages::{csrf_of, flash_cookie, page, sign_in};
use crate::support::*;

const DEE: (&str, &str) = ("dee", "dee-password-1");

/// A signed-in browser: its session cookie and CSRF token.
struct Browser<'a> {
    agent: &'a ureq::Agent,
    base: String,
    cookie: String,
    csrf: String,
}

impl Browser<'_> {
    fn new<'a>(agent: &'a ureq::Agent, base: &str, who: (&str, &str)) -> Browser<'a> {
        let cookie = sign_in(agent, base, who.0, who.1).expect("signed in");
        let csrf = csrf_of(&page(agent, &format!("{base}/ui/"), Some(&cookie)).text());
        Browser {
            agent,
            base: base.to_string(),
            cookie,
            csrf,
        }
    }

    fn post(&self, path: &str, fields: &str) -> Resp {
        let c = format!("soute_session={}", self.cookie);
        let body = format!("csrf={}&{fields}", self.csrf);
        call(
            self.agent,
            "POST",
            &format!("{}{path}", self.base),
            None,
            &[
                ("Origin", &self.base),
                ("Cookie", &c),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    }

    fn get(&self, path: &str) -> Resp {
        page(
            self.agent,
            &format!("{}{path}", self.base),
            Some(&self.cookie),
        )
    }

    /// The confirmation's total (`#frees data-bytes`) for deleting `tag`.
    fn frees(&self, repo: &str, tag: &str) -> (u64, String) {
        let r = self.post("/ui/delete", &format!("repo={repo}&tag={tag}"));
        r.expect_status(200);
        let html = r.text();
        let at = html.find("id=\"frees\" data-bytes=\"").expect("the figure") + 23;
        let n = html[at..at + html[at..].find('"').expect("end")]
            .parse()
            .expect("bytes");
        (n, html)
    }
}

/// lab/app's tags, through the API.
fn tag_names(agent: &ureq::Agent, soute: &Soute) -> Vec<String> {
    let r = get(
        agent,
        &soute.url("/v2/lab/app/tags/list"),
        Some(&basic(ADMIN.0, ADMIN.1)),
    );
    r.expect_status(200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

fn grant(soute: &Soute, who: &str, pattern: &str, actions: &str) {
    use soute::auth::{Actions, Pattern, Who};
    soute
        .registry()
        .grant(
            &Who::parse(who).expect("who"),
            &Pattern::parse(pattern).expect("pattern"),
            Actions::parse(actions).expect("actions"),
        )
        .expect("grant");
}

#[test]
fn a_delete_confirmation_counts_only_repositories_the_viewer_can_see() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    soute.registry().add_user(DEE.0, DEE.1, false).expect("dee");
    grant(&soute, DEE.0, "lab/**", "pull,delete");
    let agent = http_agent();
    let dee = Browser::new(&agent, &seeded.base, DEE);
    let admin = Browser::new(&agent, &seeded.base, ADMIN);
    let (alone, html) = dee.frees("lab/app", "keep");
    assert!(alone > 0, "keep's layer and manifest are its own");
    assert_eq!(admin.frees("lab/app", "keep").0, alone);
    assert!(html.contains("up to"), "dee is told it may count less");

    // team/secret (dee may not see it) takes keep's layer.
    let auth = basic(ADMIN.0, ADMIN.1);
    let to = To {
        agent: &agent,
        base: &seeded.base,
        auth: Some(&auth),
    };
    push_image(
        to,
        "team/secret",
        "shares",
        "amd64",
        &[b"layer of keep".to_vec()],
        None,
    );
    let (after, html) = dee.frees("lab/app", "keep");
    assert_eq!(
        after, alone,
        "the figure dee sees does not tell that a hidden repository holds the layer"
    );
    assert!(html.contains("Counted over the repositories you can see"));
    let (exact, html) = admin.frees("lab/app", "keep");
    assert!(
        exact < alone,
        "the admin's figure keeps the shared layer: {exact} vs {alone}"
    );
    assert!(!html.contains("up to"), "the admin's figure is exact");
    assert!(
        tag_names(&agent, &soute).contains(&"keep".to_string()),
        "asking deleted nothing"
    );
}

#[test]
fn a_delete_the_registry_would_refuse_is_refused_at_the_confirmation() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let registry = soute.registry();
    registry
        .protect_tags(&soute::registry::Protection::parse("lab/app:old-*").expect("rule"))
        .expect("protect");
    let agent = http_agent();
    let admin = Browser::new(&agent, &seeded.base, ADMIN);
    let r = admin.post("/ui/delete", "repo=lab/app&tag=old-1&tag=keep");
    r.expect_status(403);
    assert!(
        r.text().contains("protected by rule lab/app:old-*"),
        "{}",
        r.text()
    );
    let repo = admin.get("/ui/r/lab/app").text();
    assert!(
        !repo.contains("value=\"old-1\""),
        "no checkbox for a protected tag"
    );
    assert!(repo.contains("value=\"keep\""), "the others keep theirs");
    assert!(
        repo.contains("protected by rule lab/app:old-*"),
        "the badge names the rule"
    );
    let history = admin.get("/ui/h/lab/app:old-1").text();
    assert!(
        !history.contains("/ui/rollback"),
        "no rollback of a protected tag"
    );

    let r = admin.post("/ui/delete", "repo=lab/app&tag=nope");
    r.expect_status(404);
    assert!(r.text().contains("lab/app has no tag nope"), "{}", r.text());
    let tags = tag_names(&agent, &soute);
    assert!(tags.contains(&"old-1".to_string()) && tags.contains(&"keep".to_string()));

    // Deletes switched off: refused before any confirmation, and the page
    // offers none.
    let off = Soute::start(|c| c.delete_enabled = false);
    let seeded = seed(&off);
    let admin = Browser::new(&agent, &seeded.base, ADMIN);
    let r = admin.post("/ui/delete", "repo=lab/app&tag=keep");
    r.expect_status(405);
    assert!(r.text().contains("deletes are disabled"), "{}", r.text());
    assert!(!admin.get("/ui/r/lab/app").text().contains("/ui/delete"));
}

/// The dashboard's GC plan total (`GC plan (dry run): would free`).
fn planned(admin: &Browser<'_>, untagged: bool) -> (u64, String) {
    let extra = if untagged { "&untagged=yes" } else { "" };
    let r = admin.post("/ui/gc", &format!("mode=dry{extra}"));
    r.expect_status(200);
    let html = r.text();
    let at = html.find("would free ").expect("a plan") + 11;
    let rest = &html[at..];
    let t = rest.find("title=\"").expect("exact bytes") + 7;
    let n = rest[t..t + rest[t..].find(' ').expect("end")]
        .parse()
        .expect("bytes");
    (n, html)
}

#[test]
fn the_dashboard_gc_frees_what_the_confirmation_promised_and_a_reload_runs_nothing() {
    // The server's own policy (grace 0) is what the UI's GC uses.
    let soute = Soute::start(|c| {
        c.gc_policy.grace_secs = 0;
        c.gc_policy.link_grace_secs = 0;
    });
    let seeded = seed(&soute);
    let agent = http_agent();
    let admin = Browser::new(&agent, &seeded.base, ADMIN);
    let (_, kept) = planned(&admin, false);
    assert!(
        kept.contains(&format!(
            "manifest lab/app@{}</code>: untagged, kept without --delete-untagged",
            seeded.moving[0]
        )),
        "the plan says why the tag's old digest stays"
    );
    let (before, _) = planned(&admin, true);
    let (promised, _) = admin.frees("lab/app", "old-1");
    admin
        .post("/ui/delete", "repo=lab/app&tag=old-1&confirm=yes")
        .expect_status(303);
    let (plain, _) = planned(&admin, false);
    let (with_untagged, _) = planned(&admin, true);
    assert_eq!(
        with_untagged - before,
        promised,
        "GC with untagged manifests frees what the confirmation said"
    );
    assert!(plain < with_untagged, "without the box the manifest stays");

    let r = admin.post("/ui/gc", "mode=run&untagged=yes");
    r.expect_status(303);
    assert_eq!(r.header("location"), Some("/ui/dashboard"));
    let flash = flash_cookie(&r).expect("the result rides in a cookie");
    let c = format!("soute_session={}; {flash}", admin.cookie);
    let shown = call(
        &agent,
        "GET",
        &soute.url("/ui/dashboard"),
        None,
        &[("Cookie", &c)],
        None,
    );
    shown.expect_status(200);
    assert!(
        shown.text().contains(&format!("({with_untagged} bytes)")),
        "the dashboard says what GC freed"
    );
    // The page is a GET: loading it again runs nothing.
    admin.get("/ui/dashboard").expect_status(200);
    let runs: Vec<_> = soute
        .registry()
        .audit_events(i64::MIN, 1000)
        .expect("audit")
        .into_iter()
        .filter(|e| e.detail.starts_with("gc"))
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0].detail.contains("--delete-untagged"),
        "{}",
        runs[0].detail
    );
    assert_eq!(planned(&admin, true).0, 0, "nothing left to free");
}

#[test]
fn the_sign_in_form_stays_good_when_opened_in_another_tab() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let first = page(&agent, &soute.url("/ui/login"), None);
    let token = csrf_of(&first.text());
    // A second tab sends the cookie the first one set: the same token.
    let c = format!("soute_csrf={token}");
    let second = call(
        &agent,
        "GET",
        &soute.url("/ui/login"),
        None,
        &[("Cookie", &c)],
        None,
    );
    assert_eq!(csrf_of(&second.text()), token, "one token for every tab");
    assert!(second
        .header("set-cookie")
        .is_some_and(|s| s.contains(&token) && s.contains("Max-Age=43200")));
    // The first tab's form signs in.
    let body = format!("csrf={token}&user={}&secret={}", ADMIN.0, ADMIN.1);
    let r = call(
        &agent,
        "POST",
        &soute.url("/ui/login"),
        None,
        &[
            ("Origin", &seeded.base),
            ("Cookie", &c),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(body.as_bytes()),
    );
    r.expect_status(303);
    assert!(r
        .header_values("set-cookie")
        .iter()
        .any(|s| s.starts_with("soute_session=") && !s.starts_with("soute_session=;")));
}

#[test]
fn a_message_cookie_from_elsewhere_or_another_session_is_not_shown() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let a = Browser::new(&agent, &seeded.base, ADMIN);
    let b = Browser::new(&agent, &seeded.base, ADMIN);
    let shown = |who: &Browser<'_>, flash: &str| {
        let c = format!("soute_session={}; soute_done={flash}", who.cookie);
        call(
            &agent,
            "GET",
            &soute.url("/ui/admin"),
            None,
            &[("Cookie", &c)],
            None,
        )
        .text()
    };
    // Planted by a page on another port of this host: unsigned, or signed
    // with a guess.
    for planted in [
        "Sign%20in%20again%20at%20evil.example",
        "Sign%20in%20again.00ff",
    ] {
        assert!(!shown(&a, planted).contains("Sign in again"), "{planted}");
    }
    // B's real message, presented with A's session: not A's.
    let r = b.post("/ui/admin/group/add", "group=devs");
    r.expect_status(303);
    let flash = flash_cookie(&r).expect("a message");
    let flash = flash.strip_prefix("soute_done=").expect("named");
    assert!(!shown(&a, flash).contains("group devs added"));
    assert!(
        shown(&b, flash).contains("group devs added"),
        "B sees its own"
    );
}
