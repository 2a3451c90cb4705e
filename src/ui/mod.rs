//! ui: the web UI under `/ui/`, served by the API's own handler on the same
//! listeners and TLS. Server-rendered HTML (maud: compile-time templates that
//! escape every interpolated string), one stylesheet and one small script
//! embedded in the binary (`static/`), sessions and CSRF (`session`).
//! Pages: repositories, repository, image, tag history, dashboard, admin
//! (`pages_*`); the POST actions: delete tags, roll back, GC, sign in/out
//! (`actions`); the admin page's forms (`admin_actions`).
//!
//! Every decision about what a visitor may see or do is
//! `auth::access::Policy::decide` on the visitor's identity (the same policy
//! object and identities as the API, through [`Gate`]); passwords go through
//! the API's throttled, pooled verifier (`Gate::sign_in`).
//!
//! It must never write SQL, decide access without `Policy::decide`, verify a
//! password itself, render a stored string unescaped, or serve inline script
//! or style (the Content-Security-Policy forbids both).

mod actions;
mod admin_actions;
mod format;
mod layout;
mod pages_admin;
mod pages_image;
mod pages_repos;
mod session;

use crate::auth::{Action, Identity, Policy};
use crate::error::{Error, Result};
use crate::http::{Body, Request, Response};
use crate::oci::RepoName;
use crate::registry::Registry;
use maud::Markup;
use std::sync::Arc;

pub use session::Viewer;

/// What the UI needs from the API: the registry, the access policy in force
/// and the API's own credential check.
pub trait Gate {
    fn registry(&self) -> &Arc<Registry>;
    /// The server's GC policy (grace periods; whether untagged manifests go).
    fn gc_policy(&self) -> crate::registry::GcPolicy;
    /// The policy in force (`None`: the registry is open to anyone).
    fn current_policy(&self) -> Result<Option<Arc<Policy>>>;
    /// Check a user name and password or API token exactly as the API does
    /// (throttle, verifier pool, audit log).
    fn sign_in(&self, req: &Request<'_>, user: &str, secret: &str) -> SignIn;
}

/// What a sign-in attempt decided.
#[derive(Debug)]
pub enum SignIn {
    Ok(Identity),
    Refused,
    /// Throttled or the verifiers are busy: try again after this many seconds.
    Later(u64),
}

const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
const CSS: &str = include_str!("static/ui.css");
const JS: &str = include_str!("static/ui.js");
const ICON: &str = include_str!("static/favicon.svg");

/// The answer to a UI request, or `None` when the path is not the UI's.
/// `/` redirects to `/ui/` when the client prefers HTML (a browser).
pub fn serve(gate: &dyn Gate, req: &mut Request<'_>) -> Option<Response> {
    if req.path == "/" {
        let html = req
            .header("accept")
            .is_some_and(|a| a.contains("text/html"));
        return html.then(|| secured(redirect("/ui/")));
    }
    let rest = if req.path == "/ui" {
        ""
    } else {
        req.path.strip_prefix("/ui/")?
    };
    let rest = rest.to_string();
    let resp = match route(gate, req, &rest) {
        Ok(resp) => resp,
        Err(e) => error_page(gate, req, &e),
    };
    Some(secured(resp))
}

fn route(gate: &dyn Gate, req: &mut Request<'_>, rest: &str) -> Result<Response> {
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    match (rest, get) {
        ("static/ui.css", true) => return Ok(asset("text/css; charset=utf-8", CSS)),
        ("static/ui.js", true) => return Ok(asset("text/javascript; charset=utf-8", JS)),
        ("static/favicon.svg", true) => return Ok(asset("image/svg+xml", ICON)),
        _ => {}
    }
    let viewer = Viewer::of(gate, req)?;
    if !get {
        if req.method != "POST" {
            return Err(Error::client(
                crate::error::Code::Unsupported,
                "method not allowed",
            ));
        }
        return actions::post(gate, req, &viewer, rest);
    }
    let query = crate::api::query::parse_query(&req.query);
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let page = match rest {
        "" => {
            pages_repos::repositories(gate, req, &viewer, q("q"), q("sort"), q("kind"), q("page"))?
        }
        "login" => session::login_page(req, &viewer, q("failed"))?,
        "dashboard" => pages_admin::dashboard(gate, req, &viewer)?,
        "admin" => pages_admin::admin(gate, req, &viewer, q("page"))?,
        _ => {
            let (kind, target) = rest.split_once('/').unwrap_or((rest, ""));
            let target = crate::api::query::percent_decode(target, false);
            // The pages whose cost grows with what is stored: a few at once.
            let _slot = match kind {
                "r" | "i" => Some(gate.registry().heavy_ui_page(viewer.signed_in())?),
                _ => None,
            };
            match kind {
                "r" => pages_repos::repository(gate, req, &viewer, &target, q("page"))?,
                "i" => pages_image::image(gate, req, &viewer, &target)?,
                "h" => pages_image::history(gate, req, &viewer, &target)?,
                _ => return Err(Error::NoEndpoint(format!("no page at /ui/{rest}"))),
            }
        }
    };
    Ok(page)
}

/// `repo` parsed from a page's path, and whether the viewer may pull it: an
/// unknown repository and a forbidden one look the same (404).
fn pullable(viewer: &Viewer, raw: &str) -> Result<RepoName> {
    let repo = RepoName::parse(raw)?;
    if !viewer.may(&repo, Action::Pull) {
        return Err(Error::client(
            crate::error::Code::NameUnknown,
            format!("repository {repo} is not known"),
        ));
    }
    Ok(repo)
}

fn asset(content_type: &str, text: &'static str) -> Response {
    Response::new(200)
        .header("Content-Type", content_type)
        .header("Cache-Control", "public, max-age=3600")
        .body(Body::Bytes(text.as_bytes().to_vec()))
}

/// An HTML page.
fn html(status: u16, page: Markup) -> Response {
    Response::new(status)
        .header("Content-Type", "text/html; charset=utf-8")
        .header("Cache-Control", "no-store")
        .body(Body::Bytes(page.into_string().into_bytes()))
}

fn redirect(to: &str) -> Response {
    Response::new(303)
        .header("Location", to)
        .header("Cache-Control", "no-store")
}

/// The headers every UI answer carries.
fn secured(resp: Response) -> Response {
    resp.header("Content-Security-Policy", CSP)
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "same-origin")
}

fn error_page(gate: &dyn Gate, req: &Request<'_>, e: &Error) -> Response {
    let status = e.status();
    if status >= 500 {
        log::error!("web UI request {} failed: {e}", req.id);
    }
    let viewer = Viewer::of(gate, req).unwrap_or_else(|_| Viewer::anonymous(None));
    let message = if status >= 500 {
        format!("internal error (request id {})", req.id)
    } else {
        let text = e.to_string();
        let code = format!("{}: ", e.code().as_str());
        text.strip_prefix(&code).map(str::to_string).unwrap_or(text)
    };
    let page = html(status, layout::error(&viewer, status, &message));
    if status == 429 {
        return page.header("Retry-After", "1");
    }
    page
}
