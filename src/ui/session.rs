//! Who is looking at a page ([`Viewer`]: the identity of the session cookie,
//! or anonymous, and the policy in force), the session cookie
//! (`soute_session`: HttpOnly, SameSite=Strict, Path=/ui, Secure under TLS),
//! and the checks every POST passes: same Origin as the Host it was sent to,
//! and the CSRF token of the session (or, on the sign-in form, the
//! double-submit token of the `soute_csrf` cookie). Also the sign-in page.
//!
//! It must never decide access other than through `Policy::decide`, accept a
//! POST without a matching Origin and CSRF token, or log a cookie or token.

use super::{layout, Gate};
use crate::auth::{Action, Identity, Policy};
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};
use crate::oci::RepoName;
use maud::html;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "soute_session";
pub const LOGIN_COOKIE: &str = "soute_csrf";

/// Who is looking, and what they may do.
pub struct Viewer {
    pub who: Identity,
    policy: Option<Arc<Policy>>,
    /// The session's CSRF token (signed in) or the sign-in form's.
    pub csrf: Option<String>,
    /// The session cookie's secret, to end it on sign-out.
    pub secret: Option<String>,
}

impl Viewer {
    pub fn anonymous(policy: Option<Arc<Policy>>) -> Viewer {
        Viewer {
            who: Identity::Anonymous,
            policy,
            csrf: None,
            secret: None,
        }
    }

    /// The viewer of `req`: its session cookie's identity when the session
    /// is live and its user still exists, else anonymous.
    pub fn of(gate: &dyn Gate, req: &Request<'_>) -> Result<Viewer> {
        let policy = gate.current_policy()?;
        let Some(secret) = cookie(req, SESSION_COOKIE).filter(|s| s.len() == 64) else {
            return Ok(Viewer::anonymous(policy));
        };
        let Some((who, csrf)) = gate.registry().ui_session(&secret)? else {
            return Ok(Viewer::anonymous(policy));
        };
        let known = match (&policy, who.user()) {
            (Some(p), Some(user)) => p.has_user(user),
            _ => true,
        };
        if !known {
            return Ok(Viewer::anonymous(policy));
        }
        Ok(Viewer {
            who,
            policy,
            csrf: Some(csrf),
            secret: Some(secret),
        })
    }

    pub fn signed_in(&self) -> bool {
        self.who != Identity::Anonymous
    }

    /// The name shown in the header.
    pub fn name(&self) -> String {
        crate::registry::AuditEvent::actor_of(&self.who)
    }

    /// Whether the viewer may `action` on `repo` (`Policy::decide`).
    pub fn may(&self, repo: &RepoName, action: Action) -> bool {
        match &self.policy {
            None => true,
            Some(p) => p.decide(&self.who, Some(repo), action).allowed,
        }
    }

    /// Whether the viewer may pull the repository named `name` (a name that
    /// is not a repository name: no).
    pub fn may_pull(&self, name: &str) -> bool {
        RepoName::parse(name).is_ok_and(|repo| self.may(&repo, Action::Pull))
    }

    /// Whether anonymous visitors may pull `repo` (the "public" kind).
    pub fn public(&self, repo: &RepoName) -> bool {
        match &self.policy {
            None => true,
            Some(p) => {
                p.decide(&Identity::Anonymous, Some(repo), Action::Pull)
                    .allowed
            }
        }
    }

    /// Whether the viewer may use the operator pages and actions.
    pub fn is_admin(&self) -> bool {
        match &self.policy {
            None => true,
            Some(p) => p.decide(&self.who, None, Action::Admin).allowed,
        }
    }

    /// 403 unless an administrator.
    pub fn require_admin(&self) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::client(
                Code::Denied,
                "this page is for administrators",
            ))
        }
    }
}

/// The value of cookie `name`.
pub fn cookie(req: &Request<'_>, name: &str) -> Option<String> {
    req.header_all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value for the UI's cookies.
pub fn set_cookie(req: &Request<'_>, name: &str, value: &str, max_age: i64) -> String {
    let secure = if req.secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The cookie carrying what an admin form just did to the page it
/// redirects to (post, redirect, get: a reload repeats nothing).
pub const FLASH_COOKIE: &str = "soute_done";

/// HMAC-SHA256 of `message` under the session's CSRF token (a secret only
/// that session's pages hold), hex.
fn flash_tag(viewer: &Viewer, message: &str) -> Option<String> {
    use hmac::{Hmac, Mac};
    let key = viewer.csrf.as_deref().filter(|k| !k.is_empty())?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(message.as_bytes());
    Some(
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// A `Set-Cookie` for the message the viewer's next admin page shows once,
/// signed for its session (a cookie set from elsewhere, another port of the
/// host included, is not shown).
pub fn set_flash(req: &Request<'_>, viewer: &Viewer, message: &str) -> String {
    let short: String = message.chars().take(300).collect();
    let tag = flash_tag(viewer, &short).unwrap_or_default();
    let value = format!("{}.{tag}", crate::api::query::percent_encode(&short));
    set_cookie(req, FLASH_COOKIE, &value, 60)
}

/// The message an admin form of this session left, if any (shown as text
/// once; the page clears the cookie).
pub fn flash(req: &Request<'_>, viewer: &Viewer) -> Option<String> {
    let raw = cookie(req, FLASH_COOKIE)?;
    let (encoded, tag) = raw.rsplit_once('.')?;
    let text = crate::api::query::percent_decode(encoded, false);
    let expected = flash_tag(viewer, &text)?;
    (!text.is_empty() && same_secret(&expected, tag)).then_some(text)
}

/// `resp`, clearing the message cookie when its message was `shown`.
pub fn flash_shown(req: &Request<'_>, resp: Response, shown: bool) -> Response {
    if shown {
        resp.header("Set-Cookie", set_cookie(req, FLASH_COOKIE, "", 0))
    } else {
        resp
    }
}

/// Equal strings, in time that depends only on their length.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn forbidden(why: &str) -> Error {
    Error::client(Code::Denied, format!("refused: {why}"))
}

/// A POST must come from a page of this registry: its Origin is the scheme
/// and Host it was sent to (browsers always send Origin on a form POST).
pub fn check_origin(req: &Request<'_>) -> Result<()> {
    let scheme = if req.secure { "https" } else { "http" };
    let host = req.header("host").unwrap_or("");
    match req.header("origin") {
        Some(origin) if !host.is_empty() && origin == format!("{scheme}://{host}") => Ok(()),
        Some(_) => Err(forbidden("the form was sent from another origin")),
        None => Err(forbidden("a form POST without an Origin header")),
    }
}

/// The form fields of a POST body (`application/x-www-form-urlencoded`, at
/// most 256 KiB).
pub fn read_form(req: &mut Request<'_>) -> Result<Vec<(String, String)>> {
    use std::io::Read;
    const MAX: u64 = 256 * 1024;
    if req.body.declared_len().is_some_and(|n| n > MAX) {
        return Err(Error::FormTooLarge { limit: MAX });
    }
    let mut body = Vec::new();
    req.body
        .take(MAX + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::client(Code::Unsupported, format!("reading the form failed: {e}")))?;
    if body.len() as u64 > MAX {
        return Err(Error::FormTooLarge { limit: MAX });
    }
    let text = String::from_utf8(body)
        .map_err(|_| Error::client(Code::Unsupported, "the form is not UTF-8"))?;
    Ok(crate::api::query::parse_query(&text))
}

/// The first value of field `name`.
pub fn field<'f>(form: &'f [(String, String)], name: &str) -> &'f str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The session's CSRF token must be in the form.
pub fn check_csrf(viewer: &Viewer, form: &[(String, String)]) -> Result<()> {
    match &viewer.csrf {
        Some(token) if same_secret(token, field(form, "csrf")) => Ok(()),
        _ => Err(forbidden(
            "the form's CSRF token is missing or stale; reload the page",
        )),
    }
}

/// How long a sign-in form stays good (its double-submit cookie).
const LOGIN_FORM_SECS: i64 = 12 * 3600;

/// The sign-in page, with a double-submit CSRF token in a cookie: the one
/// the browser already holds, so sign-in forms open in several tabs all
/// stay good, else a fresh one.
pub fn login_page(req: &Request<'_>, viewer: &Viewer, failed: &str) -> Result<Response> {
    let held = cookie(req, LOGIN_COOKIE)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let token: String = match held {
        Some(t) => t,
        None => crate::auth::random_bytes::<16>()
            .map_err(|e| Error::internal(format!("no randomness: {e}")))?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    };
    let message = match failed {
        "1" => Some("Wrong user name, password or token."),
        "later" => Some("Too many attempts: wait a little, then try again."),
        _ => None,
    };
    let body = html! {
        h1 { "Sign in" }
        @if let Some(m) = message { p.notice.bad role="alert" { (m) } }
        @if viewer.signed_in() { p { "You are signed in as " strong { (viewer.name()) } "." } }
        form.card.narrow method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(token);
            label for="user" { "User" }
            input #user type="text" name="user" autocomplete="username" required autofocus;
            label for="secret" { "Password or API token" }
            input #secret type="password" name="secret" autocomplete="current-password" required;
            button.primary type="submit" { "Sign in" }
        }
        p.muted { "The same users and API tokens as " code { "docker login" } "." }
    };
    Ok(
        super::html(200, layout::page(viewer, "Sign in", body)).header(
            "Set-Cookie",
            set_cookie(req, LOGIN_COOKIE, &token, LOGIN_FORM_SECS),
        ),
    )
}
