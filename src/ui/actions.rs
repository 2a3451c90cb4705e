//! The UI's POST actions: sign in and out, delete several tags (a
//! confirmation page listing what it frees first, from du's plan), roll a tag
//! back, run or explain GC (admin forms: `admin_actions`). Every one checks the Origin
//! and the CSRF token first, then asks `Policy::decide` (through [`Viewer`])
//! for the same action the API would need (`delete`, `push`, `admin`), and
//! records what it changed in the audit log as the API does.
//!
//! It must never change anything before those checks passed, nor check a
//! password other than through `Gate::sign_in`.

use super::pages_admin::dashboard_with;
use super::session::{self, check_csrf, check_origin, field, read_form, Viewer};
use super::{format, html, layout, redirect, Gate, SignIn};
use crate::auth::tokens::looks_like_token;
use crate::auth::Action;
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};
use crate::oci::{Digest, RepoName, Tag};
use crate::registry::{AuditAction, AuditEvent, GcPolicy, UI_SESSION_SECS};
use maud::html;

/// The most tags one delete form may name (a page lists 100); more is refused.
pub const MAX_TAGS_PER_DELETE: usize = 100;

fn denied(what: &str) -> Error {
    Error::client(Code::Denied, format!("you may not {what}"))
}

fn event(req: &Request<'_>, viewer: &Viewer, action: AuditAction) -> AuditEvent {
    AuditEvent::new(action, viewer.name(), req.remote.ip())
}

pub fn post(
    gate: &dyn Gate,
    req: &mut Request<'_>,
    viewer: &Viewer,
    rest: &str,
) -> Result<Response> {
    check_origin(req)?;
    let form = read_form(req)?;
    if rest == "login" {
        return login(gate, req, &form);
    }
    check_csrf(viewer, &form)?;
    match rest {
        "logout" => {
            if let Some(secret) = &viewer.secret {
                gate.registry().end_ui_session(secret)?;
            }
            Ok(redirect("/ui/").header(
                "Set-Cookie",
                session::set_cookie(req, session::SESSION_COOKIE, "", 0),
            ))
        }
        "delete" => delete(gate, req, viewer, &form),
        "rollback" => rollback(gate, req, viewer, &form),
        "gc" => gc(gate, req, viewer, &form),
        _ => match rest.strip_prefix("admin/") {
            Some(what) => super::admin_actions::post(gate, req, viewer, what, &form)?
                .ok_or_else(|| Error::NoEndpoint(format!("no action at /ui/{rest}"))),
            None => Err(Error::NoEndpoint(format!("no action at /ui/{rest}"))),
        },
    }
}

fn login(gate: &dyn Gate, req: &Request<'_>, form: &[(String, String)]) -> Result<Response> {
    let expected = session::cookie(req, session::LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same_secret(&expected, field(form, "csrf")) {
        return Err(Error::client(
            Code::Denied,
            "refused: the sign-in form is stale; reload it",
        ));
    }
    let (user, secret) = (field(form, "user").trim(), field(form, "secret"));
    if user.is_empty() || secret.is_empty() {
        return Ok(redirect("/ui/login?failed=1"));
    }
    match gate.sign_in(req, user, secret) {
        SignIn::Ok(who) => {
            let token = looks_like_token(secret).then_some(secret);
            let started = gate.registry().start_ui_session(&who, token)?;
            Ok(redirect("/ui/")
                .header(
                    "Set-Cookie",
                    session::set_cookie(
                        req,
                        session::SESSION_COOKIE,
                        &started.secret,
                        UI_SESSION_SECS,
                    ),
                )
                .header(
                    "Set-Cookie",
                    session::set_cookie(req, session::LOGIN_COOKIE, "", 0),
                ))
        }
        SignIn::Refused => Ok(redirect("/ui/login?failed=1")),
        SignIn::Later(_) => Ok(redirect("/ui/login?failed=later")),
    }
}

fn repo_of(
    viewer: &Viewer,
    form: &[(String, String)],
    action: Action,
    what: &str,
) -> Result<RepoName> {
    let repo = RepoName::parse(field(form, "repo"))?;
    if !viewer.may(&repo, action) {
        return Err(denied(&format!("{what} in {repo}")));
    }
    Ok(repo)
}

fn delete(
    gate: &dyn Gate,
    req: &Request<'_>,
    viewer: &Viewer,
    form: &[(String, String)],
) -> Result<Response> {
    let repo = repo_of(viewer, form, Action::Delete, "delete")?;
    let named = form.iter().filter(|(k, _)| k == "tag").count();
    if named > MAX_TAGS_PER_DELETE {
        return Err(Error::client(
            Code::TagInvalid,
            format!(
                "{named} tags in one delete; at most {MAX_TAGS_PER_DELETE} at once (a page lists {})",
                super::pages_repos::TAGS_PER_PAGE
            ),
        ));
    }
    let mut tags: Vec<Tag> = form
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| Tag::parse(v))
        .collect::<Result<_>>()?;
    tags.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    tags.dedup_by(|a, b| a.as_str() == b.as_str());
    if tags.is_empty() {
        return Err(Error::client(
            Code::TagInvalid,
            "select at least one tag to delete",
        ));
    }
    let registry = gate.registry();
    let name = repo.as_str();
    if field(form, "confirm") != "yes" {
        // Refuse at once what the delete itself would refuse.
        registry.require_delete()?;
        let asked: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        registry.check_tags_deletable(name, &asked)?;
        let names: Vec<String> = tags.iter().map(|t| t.as_str().to_string()).collect();
        let frees = registry.tags_delete_frees(&repo, &names, &|n| viewer.may_pull(n))?;
        if !frees.missing.is_empty() {
            return Err(Error::client(
                Code::NameUnknown,
                format!("{name} has no tag {}", frees.missing.join(", ")),
            ));
        }
        let each: std::collections::HashMap<&str, u64> =
            frees.each.iter().map(|(t, b)| (t.as_str(), *b)).collect();
        let total = frees.total;
        let csrf = viewer.csrf.clone().unwrap_or_default();
        let body = html! {
            h1 { "Delete " (tags.len()) " tag" @if tags.len() > 1 { "s" } " from " (name) "?" }
            p.card { "Once GC runs (with untagged manifests collected), this frees "
                @if !viewer.is_admin() { "up to " }
                strong #frees data-bytes=(total) { (format::size(total)) } " (" (total) " bytes): "
                "the layers and manifests no other tag or repository still uses."
                @if !viewer.is_admin() { " Counted over the repositories you can see: a layer another repository also uses is not freed." }
                " Layers linked to the repository in the last " (gate.gc_policy().link_grace_secs) " s stay until a later GC (a push may still need them)." }
            ul.frees { @for t in &tags { li data-tag=(t.as_str()) data-bytes=[each.get(t.as_str())] {
                code { (t.as_str()) }
                @if let Some(b) = each.get(t.as_str()) { " alone frees " (format::size(*b)) }
            } } }
            @if tags.len() > 1 && !each.is_empty() {
                p.muted { "Each tag's own figure is what deleting only that tag frees; together they can free more (layers only these tags share)." }
            }
            form method="post" action="/ui/delete" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="repo" value=(name);
                input type="hidden" name="confirm" value="yes";
                @for t in &tags { input type="hidden" name="tag" value=(t.as_str()); }
                button.danger type="submit" { "Delete them" }
                " " a href=(format!("/ui/r/{name}")) { "Cancel" }
            }
        };
        return Ok(html(200, layout::page(viewer, "Confirm delete", body)));
    }
    let deleted = registry.delete_tags(&repo, &tags, &viewer.name())?;
    // One row for the request, naming only the tags that existed.
    if !deleted.is_empty() {
        registry.audit(
            &event(req, viewer, AuditAction::Delete)
                .repository(name)
                .detail(format!("tags {} (web UI)", deleted.join(", ")))
                .status(202),
        );
    }
    log::info!(
        "web UI: {} deleted {} of {} named tags of {name}",
        viewer.name(),
        deleted.len(),
        tags.len()
    );
    Ok(redirect(&format!("/ui/r/{name}")))
}

fn rollback(
    gate: &dyn Gate,
    req: &Request<'_>,
    viewer: &Viewer,
    form: &[(String, String)],
) -> Result<Response> {
    let repo = repo_of(viewer, form, Action::Push, "move tags")?;
    let tag = Tag::parse(field(form, "tag"))?;
    let digest = Digest::parse(field(form, "digest"))?;
    let address = req.remote.ip().to_string();
    gate.registry()
        .rollback_tag(&repo, &tag, &digest, &viewer.name(), &address)?;
    Ok(redirect(&format!(
        "/ui/h/{}:{}",
        repo.as_str(),
        tag.as_str()
    )))
}

fn gc(
    gate: &dyn Gate,
    req: &Request<'_>,
    viewer: &Viewer,
    form: &[(String, String)],
) -> Result<Response> {
    if !viewer.is_admin() {
        return Err(denied("run GC"));
    }
    let dry_run = match field(form, "mode") {
        "dry" => true,
        "run" => false,
        other => {
            return Err(Error::InvalidParameter(format!(
                "mode must be dry or run, not {other:?}"
            )))
        }
    };
    // The server's policy (grace periods), untagged manifests collected when
    // the server does or the form asks (as a tag delete's confirmation counts).
    let server = gate.gc_policy();
    let policy = GcPolicy {
        dry_run,
        delete_untagged: server.delete_untagged || field(form, "untagged") == "yes",
        ..server
    };
    let report = gate.registry().gc_recorded(&policy)?;
    if dry_run {
        return dashboard_with(gate, viewer, Some(&report), policy.delete_untagged, None);
    }
    let untagged = if policy.delete_untagged {
        " --delete-untagged"
    } else {
        ""
    };
    gate.registry()
        .audit(&event(req, viewer, AuditAction::Admin).detail(format!(
            "gc{untagged} (web UI): freed {} bytes",
            report.freed_bytes
        )));
    // Post, redirect, get: a reload does not run GC again.
    let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    let size = crate::storage::space::format_size(report.freed_bytes);
    let exact = if size == format!("{} bytes", report.freed_bytes) {
        String::new()
    } else {
        format!(" ({} bytes)", report.freed_bytes)
    };
    let message = format!(
        "GC freed {size}{exact}: {}, {}, {}.",
        n(report.manifests_deleted.len(), "manifest", "manifests"),
        n(report.blobs_deleted.len(), "blob", "blobs"),
        n(
            report.uploads_expired.len(),
            "upload session",
            "upload sessions"
        )
    );
    Ok(redirect("/ui/dashboard").header("Set-Cookie", session::set_flash(req, viewer, &message)))
}
