//! The web UI over plain HTTP: the `/` redirect for browsers only, the
//! security headers, escaping of stored strings, sign in and out with the
//! API's users and tokens, CSRF and Origin checks, and permissions (a
//! reader sees only the repositories it may pull and no admin page or
//! action).

use crate::fixtures::{seed, ADMIN, READER, XSS};
use crate::support::*;

pub fn page(agent: &ureq::Agent, url: &str, cookie: Option<&str>) -> Resp {
    let c = cookie.map(|c| format!("soute_session={c}"));
    let mut headers = vec![("Accept", "text/html")];
    if let Some(c) = &c {
        headers.push(("Cookie", c.as_str()));
    }
    call(agent, "GET", url, None, &headers, None)
}

/// Signs in through the form; returns the session cookie's value.
pub fn sign_in(agent: &ureq::Agent, base: &str, user: &str, secret: &str) -> Option<String> {
    let r = page(agent, &format!("{base}/ui/login"), None);
    r.expect_status(200);
    let set = r.header("set-cookie").expect("login cookie").to_string();
    let token = set
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("token");
    let body = format!(
        "csrf={token}&user={user}&secret={}",
        soute::api::query::percent_encode(secret)
    );
    let cookie = format!("soute_csrf={token}");
    let r = call(
        agent,
        "POST",
        &format!("{base}/ui/login"),
        None,
        &[
            ("Origin", base),
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(body.as_bytes()),
    );
    r.expect_status(303);
    r.header_values("set-cookie")
        .iter()
        .find_map(|c| {
            c.strip_prefix("soute_session=")
                .map(|v| v.split(';').next().unwrap_or("").to_string())
        })
        .filter(|v| !v.is_empty())
}

/// `soute_done=VALUE`, the one-time message cookie a 303 sets.
pub fn flash_cookie(r: &Resp) -> Option<String> {
    r.header_values("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("soute_done="))
        .and_then(|c| c.split(';').next().map(str::to_string))
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a csrf field");
    let rest = &html[at + 19..];
    rest[..rest.find('"').expect("end")].to_string()
}

#[test]
fn browsers_are_redirected_and_pages_carry_the_security_headers() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let r = page(&agent, &soute.url("/"), None);
    r.expect_status(303);
    assert_eq!(r.header("location"), Some("/ui/"));
    // A registry client (no text/html) gets the API's answer, not the UI.
    call(
        &agent,
        "GET",
        &soute.url("/"),
        None,
        &[("Accept", "application/json")],
        None,
    )
    .expect_status(404);
    let r = page(&agent, &soute.url("/ui/"), None);
    r.expect_status(200);
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let html = r.text();
    assert!(
        !html.contains("<style") && !html.contains("style=") && !html.contains("<script>"),
        "no inline style or script"
    );
    let css = page(&agent, &soute.url("/ui/static/ui.css"), None);
    css.expect_status(200);
    assert!(css
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/css")));

    let cookie = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("admin signs in");
    let r = page(&agent, &soute.url("/ui/i/lab/app:xss"), Some(&cookie));
    r.expect_status(200);
    let html = r.text();
    assert!(!html.contains(XSS), "the annotation is escaped");
    assert!(
        html.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
        "shown as text"
    );
}

#[test]
fn sign_in_uses_the_api_users_and_tokens_and_sign_out_ends_the_session() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    assert!(
        sign_in(&agent, &seeded.base, ADMIN.0, "wrong").is_none(),
        "a wrong password"
    );
    let cookie = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("signed in");
    let stored: i64 = rusqlite::Connection::open(soute.data().join("soute.db"))
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM ui_session WHERE hash = ?1",
                [sha256_hex(cookie.as_bytes())],
                |r| r.get(0),
            )
        })
        .expect("query");
    assert_eq!(stored, 1, "stored as the sha256 of the cookie");
    let r = page(&agent, &soute.url("/ui/dashboard"), Some(&cookie));
    r.expect_status(200);
    let csrf = csrf_of(&r.text());
    let c = format!("soute_session={cookie}");
    let post = |origin: &str, body: String| {
        call(
            &agent,
            "POST",
            &soute.url("/ui/logout"),
            None,
            &[
                ("Origin", origin),
                ("Cookie", &c),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    };
    post("http://evil.example", format!("csrf={csrf}")).expect_status(403);
    post(&seeded.base, "csrf=0000".to_string()).expect_status(403);
    page(&agent, &soute.url("/ui/dashboard"), Some(&cookie)).expect_status(200);
    post(&seeded.base, format!("csrf={csrf}")).expect_status(303);
    page(&agent, &soute.url("/ui/dashboard"), Some(&cookie)).expect_status(403);

    // An API token signs in too, and revoking it ends the session.
    let secret = soute
        .registry()
        .create_token("ui", READER.0, &[], None)
        .expect("token");
    let cookie = sign_in(&agent, &seeded.base, READER.0, &secret).expect("token sign-in");
    assert!(page(&agent, &soute.url("/ui/"), Some(&cookie))
        .text()
        .contains("lab/app"));
    soute.registry().revoke_token("ui").expect("revoke");
    assert!(!page(&agent, &soute.url("/ui/"), Some(&cookie))
        .text()
        .contains("lab/app"));

    // A new password ends the sessions signed in with the old one; so does
    // deleting the user, and a new user of the same name does not inherit them.
    let cookie = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("signed in again");
    page(&agent, &soute.url("/ui/dashboard"), Some(&cookie)).expect_status(200);
    soute
        .registry()
        .set_user(ADMIN.0, "a-new-password")
        .expect("passwd");
    page(&agent, &soute.url("/ui/dashboard"), Some(&cookie)).expect_status(403);
    let cookie = sign_in(&agent, &seeded.base, READER.0, READER.1).expect("reader");
    assert!(page(&agent, &soute.url("/ui/"), Some(&cookie))
        .text()
        .contains("lab/app"));
    soute.registry().delete_user(READER.0).expect("del");
    soute
        .registry()
        .set_user(READER.0, READER.1)
        .expect("re-add");
    {
        use soute::auth::{Actions, Pattern, Who};
        soute
            .registry()
            .grant(
                &Who::parse(READER.0).expect("who"),
                &Pattern::parse("lab/**").expect("pattern"),
                Actions::parse("pull").expect("actions"),
            )
            .expect("grant");
    }
    let fresh = sign_in(&agent, &seeded.base, READER.0, READER.1).expect("the new reader");
    assert!(page(&agent, &soute.url("/ui/"), Some(&fresh))
        .text()
        .contains("lab/app"));
    assert!(
        !page(&agent, &soute.url("/ui/"), Some(&cookie))
            .text()
            .contains("lab/app"),
        "the deleted user's session is not the new user's"
    );
}

#[test]
fn a_reader_sees_only_what_it_may_pull_and_no_admin_page_or_action() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    // Anonymous: nothing (no anonymous rule), admin pages refused.
    let anon = page(&agent, &soute.url("/ui/"), None).text();
    assert!(!anon.contains("lab/app") && !anon.contains("team/secret"));
    page(&agent, &soute.url("/ui/dashboard"), None).expect_status(403);
    page(&agent, &soute.url("/ui/r/lab/app"), None).expect_status(404);

    let cookie = sign_in(&agent, &seeded.base, READER.0, READER.1).expect("reader");
    let list = page(&agent, &soute.url("/ui/"), Some(&cookie)).text();
    assert!(
        list.contains("lab/app") && list.contains("lab/base"),
        "{list}"
    );
    assert!(
        !list.contains("team/secret"),
        "a repository it may not pull is not listed"
    );
    assert!(!list.contains("/ui/dashboard"), "no admin link");
    page(&agent, &soute.url("/ui/r/team/secret"), Some(&cookie)).expect_status(404);
    page(&agent, &soute.url("/ui/i/team/secret:v1"), Some(&cookie)).expect_status(404);
    page(&agent, &soute.url("/ui/dashboard"), Some(&cookie)).expect_status(403);
    page(&agent, &soute.url("/ui/admin"), Some(&cookie)).expect_status(403);
    let repo = page(&agent, &soute.url("/ui/r/lab/app"), Some(&cookie)).text();
    assert!(!repo.contains("/ui/delete"), "no delete form for a reader");
    let history = page(&agent, &soute.url("/ui/h/lab/app:moving"), Some(&cookie)).text();
    assert!(
        !history.contains("/ui/rollback"),
        "no rollback button for a reader"
    );

    // Actions posted anyway are refused and change nothing.
    let csrf = csrf_of(&repo);
    let c = format!("soute_session={cookie}");
    let post = |path: &str, body: String| {
        call(
            &agent,
            "POST",
            &soute.url(path),
            None,
            &[
                ("Origin", &seeded.base),
                ("Cookie", &c),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(body.as_bytes()),
        )
    };
    post(
        "/ui/delete",
        format!("csrf={csrf}&repo=lab/app&tag=keep&confirm=yes"),
    )
    .expect_status(403);
    post(
        "/ui/rollback",
        format!(
            "csrf={csrf}&repo=lab/app&tag=moving&digest={}",
            seeded.moving[0]
        ),
    )
    .expect_status(403);
    post("/ui/gc", format!("csrf={csrf}&mode=run")).expect_status(403);
    post(
        "/ui/admin/token",
        format!("csrf={csrf}&name=mine&user={}", READER.0),
    )
    .expect_status(403);
    let auth = basic(ADMIN.0, ADMIN.1);
    get(
        &agent,
        &soute.url("/v2/lab/app/manifests/keep"),
        Some(&auth),
    )
    .expect_status(200);
    let r = get(
        &agent,
        &soute.url("/v2/lab/app/manifests/moving"),
        Some(&auth),
    );
    assert_eq!(
        r.header("docker-content-digest"),
        Some(seeded.moving[1].as_str())
    );
    assert!(soute.registry().tokens().expect("tokens").is_empty());
}

#[test]
fn a_token_created_in_the_admin_page_is_shown_once_and_works() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let cookie = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("admin");
    let csrf = csrf_of(&page(&agent, &soute.url("/ui/admin"), Some(&cookie)).text());
    let c = format!("soute_session={cookie}");
    let body = format!(
        "csrf={csrf}&name=ci&user={}&scope=lab/**:pull+lab/base:push&scope=&expires=2d",
        READER.0
    );
    let r = call(
        &agent,
        "POST",
        &soute.url("/ui/admin/token"),
        None,
        &[
            ("Origin", &seeded.base),
            ("Cookie", &c),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(body.as_bytes()),
    );
    r.expect_status(200);
    let html = r.text();
    let at = html.find("id=\"new-token\">").expect("the secret is shown") + 15;
    let secret = html[at..at + html[at..].find('<').expect("end")].to_string();
    assert!(secret.starts_with("soute_"), "{secret}");
    let again = page(&agent, &soute.url("/ui/admin"), Some(&cookie)).text();
    assert!(!again.contains(&secret), "shown once");
    let auth = basic(READER.0, &secret);
    get(
        &agent,
        &soute.url("/v2/lab/app/manifests/keep"),
        Some(&auth),
    )
    .expect_status(200);
    get(
        &agent,
        &soute.url("/v2/team/secret/manifests/v1"),
        Some(&auth),
    )
    .expect_status(403);
    let audit = soute
        .registry()
        .audit_events(i64::MIN, 1000)
        .expect("audit");
    let created = audit
        .iter()
        .find(|e| e.detail.starts_with("token create ci"))
        .expect("audited");
    assert!(
        created
            .detail
            .contains("--scope lab/**:pull --scope lab/base:push --expires 2d"),
        "{}",
        created.detail
    );
    assert!(
        !created.detail.contains(&secret),
        "no secret in the audit log"
    );
    let tokens = soute.registry().tokens().expect("tokens");
    assert_eq!(
        tokens[0].scopes.len(),
        2,
        "both scopes kept: {:?}",
        tokens[0].scopes
    );
    let expires = tokens[0].expires_at.expect("an expiry");
    let in_2d = soute::db::now() + 2 * 86_400;
    assert!(
        (in_2d - 60..=in_2d).contains(&expires),
        "{expires} vs {in_2d}"
    );

    // Revoked from the admin page (with the question ui.js asks first): the
    // token stops working at once.
    let admin_page = page(&agent, &soute.url("/ui/admin"), Some(&cookie)).text();
    assert!(
        admin_page.contains("data-confirm=\"Revoke token ci?"),
        "asks first"
    );
    let r = call(
        &agent,
        "POST",
        &soute.url("/ui/admin/token/del"),
        None,
        &[
            ("Origin", &seeded.base),
            ("Cookie", &c),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(format!("csrf={csrf}&name=ci").as_bytes()),
    );
    r.expect_status(303);
    assert_eq!(r.header("location"), Some("/ui/admin"));
    assert!(soute.registry().tokens().expect("tokens").is_empty());
    get(
        &agent,
        &soute.url("/v2/lab/app/manifests/keep"),
        Some(&auth),
    )
    .expect_status(401);
}

/// The `N bytes` figures of the repositories page's row of `repo`.
fn row_bytes(list: &str, repo: &str) -> Vec<String> {
    let at = list
        .find(&format!("href=\"/ui/r/{repo}\""))
        .unwrap_or_else(|| panic!("{repo} listed"));
    let row = &list[at..at + list[at..].find("</tr>").expect("row end")];
    row.split("title=\"")
        .skip(1)
        .filter_map(|t| t.split_once(" bytes\"").map(|(n, _)| n.to_string()))
        .collect()
}

/// The `data-others` of each layer of an image page.
fn layer_others(html: &str) -> Vec<u64> {
    html.split("data-others=\"")
        .skip(1)
        .map(|t| t[..t.find('"').expect("end")].parse().expect("a count"))
        .collect()
}

#[test]
fn sharing_counts_say_nothing_about_repositories_the_viewer_cannot_read() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let reader = sign_in(&agent, &seeded.base, READER.0, READER.1).expect("reader");
    let admin = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("admin");
    let look = |cookie: &str| {
        let list = page(&agent, &soute.url("/ui/"), Some(cookie)).text();
        let keep = page(&agent, &soute.url("/ui/i/lab/app:keep"), Some(cookie)).text();
        let base = page(&agent, &soute.url("/ui/i/lab/base:latest"), Some(cookie)).text();
        (
            row_bytes(&list, "lab/app"),
            row_bytes(&list, "lab/base"),
            layer_others(&keep),
            layer_others(&base),
        )
    };
    let before = look(&reader);
    assert_eq!(before.2, vec![0], "keep's layer is its own");
    assert_eq!(
        before.3,
        vec![2],
        "the base layer: both platforms of lab/app:multi"
    );
    assert_eq!(before, look(&admin), "nothing else shares them yet");

    // team/secret (the reader may not pull it) takes both layers.
    let auth = basic(ADMIN.0, ADMIN.1);
    let to = crate::fixtures::To {
        agent: &agent,
        base: &seeded.base,
        auth: Some(&auth),
    };
    let base_layer = pseudo_random_bytes(7, 40_000);
    crate::fixtures::push_image(
        to,
        "team/secret",
        "shares",
        "amd64",
        &[base_layer, b"layer of keep".to_vec()],
        None,
    );
    let seen_by_admin = look(&admin);
    assert_eq!(
        seen_by_admin.2,
        vec![1],
        "the admin sees team/secret share it"
    );
    assert_eq!(seen_by_admin.3, vec![3]);
    assert_ne!(seen_by_admin.0, before.0, "lab/app's unique bytes fell");
    assert_eq!(
        look(&reader),
        before,
        "the reader's counts and sizes do not reveal team/secret"
    );
    let note = page(&agent, &soute.url("/ui/"), Some(&reader)).text();
    assert!(
        note.contains("you can see"),
        "the reader is told what counts"
    );

    // A blob linked without any manifest (no tag or manifest moved) changes
    // the figures on the next view: the space generation moved.
    push_blob(
        &agent,
        &seeded.base,
        "lab/base",
        &pseudo_random_bytes(8, 30_000),
        Some(&auth),
    );
    assert_ne!(
        look(&admin).1,
        seen_by_admin.1,
        "lab/base's bytes grew with the linked blob"
    );
}

#[test]
fn sessions_are_capped_per_user_and_expired_ones_removed_at_sign_in() {
    let soute = Soute::plain();
    let seeded = seed(&soute);
    let agent = http_agent();
    let db = rusqlite::Connection::open(soute.data().join("soute.db")).expect("db");
    db.execute(
        "INSERT INTO ui_session (hash, user, token_hash, csrf, created_at, expires_at)
         VALUES ('expired-row', ?1, NULL, 'x', 1, 2)",
        [READER.0],
    )
    .expect("an expired row");
    let first = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("first");
    let gone: i64 = db
        .query_row(
            "SELECT count(*) FROM ui_session WHERE hash = 'expired-row'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(gone, 0, "the expired row went at sign-in");
    // The first session is strictly the oldest (created_at is in seconds).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let cap = soute::registry::MAX_UI_SESSIONS_PER_USER;
    let mut last = String::new();
    for _ in 0..cap + 4 {
        last = sign_in(&agent, &seeded.base, ADMIN.0, ADMIN.1).expect("again");
    }
    let rows: i64 = db
        .query_row(
            "SELECT count(*) FROM ui_session WHERE user = ?1",
            [ADMIN.0],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(rows as u64, cap, "at most {cap} sessions per user");
    page(&agent, &soute.url("/ui/dashboard"), Some(&first)).expect_status(403);
    page(&agent, &soute.url("/ui/dashboard"), Some(&last)).expect_status(200);
    let reader = sign_in(&agent, &seeded.base, READER.0, READER.1).expect("reader");
    assert!(page(&agent, &soute.url("/ui/"), Some(&reader))
        .text()
        .contains("lab/app"));
}
