//! The image page (per platform: layers with size, media type and how many
//! other manifests share each; the config's run settings and history;
//! annotations; referrers by artifact type; pull commands with copy buttons)
//! and a tag's history page (with a rollback button per earlier digest).
//!
//! It must never render a string from a manifest, config or annotation other
//! than as escaped text, nor offer rollback to, nor name who changed a tag
//! (user, token, OS account) for, a viewer who may not push.

use super::session::Viewer;
use super::{format, html, layout, pullable, Gate};
use crate::auth::Action;
use crate::error::{Code, Error, Result};
use crate::http::{Request, Response};
use crate::oci::{Digest, Reference, RepoName, Tag};
use crate::registry::{ConfigView, PlatformImage};
use maud::{html, Markup};

/// `lab/app:v1` or `lab/app@sha256:...` from a page's path.
fn target(raw: &str) -> Result<(String, Reference)> {
    if let Some((repo, d)) = raw.split_once('@') {
        return Ok((repo.to_string(), Reference::Digest(Digest::parse(d)?)));
    }
    let (repo, tag) = raw
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .ok_or_else(|| {
            Error::NoEndpoint(format!("expected REPO:TAG or REPO@DIGEST, got {raw:?}"))
        })?;
    Ok((repo.to_string(), Reference::Tag(Tag::parse(tag)?)))
}

/// The registry's address as clients name it: the request's Host.
fn host(req: &Request<'_>) -> String {
    req.header("host").unwrap_or("localhost").to_string()
}

fn pairs(title: &str, items: &[(String, String)]) -> Markup {
    html! {
        @if !items.is_empty() {
            h3 { (title) }
            dl.kv { @for (k, v) in items { dt { code { (k) } } dd { (v) } } }
        }
    }
}

fn config(c: &ConfigView) -> Markup {
    let join = |v: &[String]| v.join(" ");
    html! {
        h3 { "Config" }
        dl.kv {
            dt { "Entrypoint" } dd { code { (join(&c.entrypoint)) } }
            dt { "Cmd" } dd { code { (join(&c.cmd)) } }
            dt { "User" } dd { (c.user) }
            dt { "Working dir" } dd { (c.workdir) }
            dt { "Ports" } dd { (c.ports.join(", ")) }
        }
        @if !c.env.is_empty() {
            h3 { "Environment" }
            pre { @for e in &c.env { (e) "\n" } }
        }
        (pairs("Labels", &c.labels))
        @if !c.history.is_empty() {
            h3 { "History" }
            ol { @for h in &c.history { li { code { (h) } } } }
        }
    }
}

/// `admin`: the viewer sees every repository, so the counts are complete.
fn platform(p: &PlatformImage, repo: &str, admin: bool) -> Markup {
    html! {
        section.card {
            h2 { (p.size.platform) " " span.muted { (format::size(p.size.size)) } }
            p { a href=(format!("/ui/i/{repo}@{}", p.size.digest)) { (format::digest(&p.size.digest)) } " " span.muted { (p.media_type) } }
            h3 { "Layers" }
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { "Digest" }
                        th scope="col" .hide-narrow { "Media type" }
                        th.num scope="col" { "Size" }
                        th.num scope="col" { "Shared with" @if !admin { " (images you can see)" } }
                    } }
                    tbody {
                        @for (i, l) in p.layers.iter().enumerate() {
                            tr.layer data-digest=(l.digest) data-size=(l.size) data-others=(l.others) {
                                td { (i + 1) }
                                td { (format::digest(&l.digest)) }
                                td.hide-narrow { code { (l.media_type) } }
                                td.num { (format::size(l.size)) }
                                td.num { @if l.others == 0 { span.muted { "only this" } }
                                         @else { (l.others) " other" @if l.others > 1 { "s" } } }
                            }
                        }
                    }
                }
            }
            @if p.more_layers > 0 { p.muted.more-layers data-more=(p.more_layers) { "and " (p.more_layers) " more layers, not listed" } }
            @if let Some(c) = &p.config { (config(c)) }
            (pairs("Annotations", &p.annotations))
        }
    }
}

fn pull_commands(host: &str, repo: &str, by_tag: Option<&str>, digest: &str) -> Markup {
    let mut refs = Vec::new();
    if let Some(t) = by_tag {
        refs.push(format!("{host}/{repo}:{t}"));
    }
    refs.push(format!("{host}/{repo}@{digest}"));
    html! {
        h2 { "Pull" }
        div.card.pull {
            @for r in &refs {
                @for (tool, cmd) in [("docker", format!("docker pull {r}")), ("podman", format!("podman pull {r}")), ("ctr", format!("ctr image pull {r}"))] {
                    span.tool { (tool) }
                    code { (cmd) }
                    button.copy type="button" data-copy=(cmd) aria-label=(format!("Copy the {tool} command")) { "Copy" }
                }
            }
        }
    }
}

pub fn image(gate: &dyn Gate, req: &Request<'_>, viewer: &Viewer, raw: &str) -> Result<Response> {
    let (repo_raw, reference) = target(raw)?;
    let repo = pullable(viewer, &repo_raw)?;
    let view = gate
        .registry()
        .image_view(&repo, &reference, &|n| viewer.may_pull(n))?;
    let name = repo.as_str();
    let by_tag = match &reference {
        Reference::Tag(t) => Some(t.as_str().to_string()),
        Reference::Digest(_) => None,
    };
    let title = format!(
        "{name}{}",
        match &by_tag {
            Some(t) => format!(":{t}"),
            None => format!("@{}", view.digest),
        }
    );
    let now = crate::db::now();
    let mut kinds: Vec<&str> = view
        .referrers
        .iter()
        .map(|r| r.artifact_type.as_str())
        .collect();
    kinds.sort();
    kinds.dedup();
    let body = html! {
        p.muted { a href="/ui/" { "Repositories" } " / " a href=(format!("/ui/r/{name}")) { (name) } " /" }
        h1 { (title) }
        div.grid {
            div.card { div.muted { "Digest" } div { (format::digest(&view.digest)) } }
            div.card { div.muted { "Size (distinct bytes)" } div.stat { (format::size(view.size)) } }
            div.card { div.muted { "Platforms" } div.stat #platforms data-shown=(view.platforms.len()) data-more=(view.more_platforms) { (view.platforms.len() + view.more_platforms) } }
            @if let Some(t) = view.created_at { div.card { div.muted { "Pushed" } div { (format::when(t, now)) } } }
        }
        @if !view.tags.is_empty() {
            p { "Tags: " @for t in &view.tags { a href=(format!("/ui/i/{name}:{t}")) { (t) } " (" a.muted href=(format!("/ui/h/{name}:{t}")) title=(format!("History of {t}")) { "history" } ") " }
                @if view.more_tags > 0 { span.muted { "and " (view.more_tags) " more" } } }
        }
        p.muted { code { (view.media_type) } }
        (pairs("Annotations", &view.annotations))
        (pull_commands(&host(req), name, by_tag.as_deref(), &view.digest))
        @if view.entries > view.platforms.len() + view.more_platforms {
            p.muted.entries data-entries=(view.entries) { "The index has " (view.entries) " entries; each distinct manifest is shown once." }
        }
        @for p in &view.platforms { (platform(p, name, viewer.is_admin())) }
        @if view.more_platforms > 0 {
            p.card.more-platforms data-more=(view.more_platforms) { "And " (view.more_platforms) " more platforms, not shown (a page shows at most "
                (crate::registry::MAX_PLATFORMS_SHOWN) "; open one by its digest)." }
        }
        @if view.text_cut { p.muted.text-cut { "Some config and annotation text was cut: a page shows at most "
            (format::size(crate::registry::MAX_TEXT_BYTES_PER_PAGE as u64)) " of it." } }
        h2 { "Referrers" }
        @if view.referrers.is_empty() { p.muted { "No signatures, SBOMs or attestations refer to this manifest." } }
        @for k in &kinds {
            h3 { code { (k) } }
            ul { @for r in view.referrers.iter().filter(|r| r.artifact_type == *k) {
                li { a href=(format!("/ui/i/{name}@{}", r.digest)) { (format::digest(&r.digest)) } " " (format::size(r.size)) }
            } }
        }
    };
    Ok(html(200, layout::page(viewer, &title, body)))
}

pub fn history(
    gate: &dyn Gate,
    _req: &Request<'_>,
    viewer: &Viewer,
    raw: &str,
) -> Result<Response> {
    let (repo_raw, reference) = target(raw)?;
    let Reference::Tag(tag) = reference else {
        return Err(Error::client(Code::TagInvalid, "a history is a tag's"));
    };
    let repo: RepoName = pullable(viewer, &repo_raw)?;
    let changes = gate.registry().tag_history(&repo, &tag, i64::MAX)?;
    let name = repo.as_str();
    let protected = gate
        .registry()
        .tag_protections()?
        .into_iter()
        .find(|r| r.covers(name, tag.as_str()));
    let may_push = viewer.may(&repo, Action::Push);
    let may_move = may_push && protected.is_none();
    let current = changes.first().and_then(|c| c.digest.clone());
    let now = crate::db::now();
    let body = html! {
        p.muted { a href="/ui/" { "Repositories" } " / " a href=(format!("/ui/r/{name}")) { (name) } " /" }
        h1 { "History of " (name) ":" (tag.as_str()) }
        @if let Some(r) = &protected { p.notice { "This tag is protected by rule " code { (r.to_string()) } ": it is not moved or deleted (an administrator lifts it with " code { "soute tag unprotect" } ")." } }
        @if changes.is_empty() { p.card { "No recorded changes (history is kept from the upgrade that added it on)." } }
        @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Points to" } th scope="col" .hide-narrow { "Before" } @if may_push { th scope="col" { "By" } } th scope="col" { span.offscreen { "Action" } } } }
                tbody { @for (i, c) in changes.iter().enumerate() { tr {
                    td { (format::when(c.at, now)) }
                    td { @match &c.digest { Some(d) => a href=(format!("/ui/i/{name}@{d}")) { (format::digest(d)) }, None => span.muted { "deleted" } } }
                    td.hide-narrow { @if let Some(p) = &c.previous { (format::digest(p)) } }
                    @if may_push { td { (c.actor) } }
                    td.actions { @if let Some(d) = &c.digest { @if i == 0 { span.muted { "current" } } @else if may_move && current.as_deref() != Some(d.as_str()) {
                        form.inline method="post" action="/ui/rollback" {
                            input type="hidden" name="csrf" value=(viewer.csrf.clone().unwrap_or_default());
                            input type="hidden" name="repo" value=(name);
                            input type="hidden" name="tag" value=(tag.as_str());
                            input type="hidden" name="digest" value=(d);
                            button type="submit" title="Point the tag back at this digest" { "Roll back" }
                        }
                    } } }
                } } }
            } }
        }
    };
    Ok(html(
        200,
        layout::page(viewer, &format!("History of {name}:{}", tag.as_str()), body),
    ))
}
