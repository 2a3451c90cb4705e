//! The administrators' pages: the dashboard (disk used and free, private vs
//! cached bytes, reclaimable bytes, the GC dry-run explanation and the GC
//! buttons, the last GC and verify from the audit log, upstreams with hit
//! rates, recent audit events) and the admin lists (users, groups, rules,
//! tokens, upstreams; a token created here is shown once).
//!
//! It must never render a page to a viewer `Policy::decide` does not let
//! administer, nor show a token's secret after its creation page, nor an
//! upstream's password.

use super::session::Viewer;
use super::{format, html, layout, Gate};
use crate::error::Result;
use crate::http::{Request, Response};
use crate::registry::{GcPolicy, GcReport};
use maud::{html, Markup};

/// Recent audit events shown on the dashboard.
const RECENT_EVENTS: u64 = 20;

fn stat(label: &str, value: Markup) -> Markup {
    html! { div.card { div.muted { (label) } div.stat { (value) } } }
}

/// The explanation of a GC run or plan.
pub fn gc_report(r: &GcReport) -> Markup {
    let sections = [
        ("Manifests", &r.manifests_deleted),
        ("Repository links", &r.links_removed),
        ("Blobs", &r.blobs_deleted),
        ("Upload sessions", &r.uploads_expired),
    ];
    html! {
        section.card #gc-report {
            h2 { @if r.dry_run { "GC plan (dry run): would free " } @else { "GC freed " } (format::size(r.freed_bytes)) }
            @for (what, list) in sections {
                @if !list.is_empty() {
                    h3 { (what) " (" (list.len()) ")" }
                    ul { @for x in list.iter().take(200) { li { code { (x.what) } " " (format::size(x.bytes)) } } }
                }
            }
            @if !r.kept.is_empty() {
                details {
                    summary { "Kept, and why (" (r.kept.len()) ")" }
                    ul { @for k in r.kept.iter().take(200) { li { code { (k.what) } ": " (k.reason) } } }
                }
            }
        }
    }
}

pub fn dashboard(gate: &dyn Gate, _req: &Request<'_>, viewer: &Viewer) -> Result<Response> {
    dashboard_with(gate, viewer, None)
}

/// The dashboard, with the report of a GC run or plan just made.
pub fn dashboard_with(
    gate: &dyn Gate,
    viewer: &Viewer,
    report: Option<&GcReport>,
) -> Result<Response> {
    viewer.require_admin()?;
    let registry = gate.registry();
    let usage = registry.du(None, None, &GcPolicy::default())?;
    let repos = registry.repo_summaries(&|_| true)?;
    let (mut cached, mut private) = (0u64, 0u64);
    for r in &repos {
        match r.row.upstream {
            Some(_) => cached += r.logical_bytes,
            None => private += r.logical_bytes,
        }
    }
    let disk = crate::storage::space::filesystem_space(registry.data_dir()).ok();
    let events = registry.audit_events(i64::MIN, 2000)?;
    let last = |word: &str| {
        events.iter().rev().find(|e| {
            e.action == "admin"
                && e.detail
                    .split_whitespace()
                    .any(|w| w == word || w.ends_with(&format!("/{word}")))
        })
    };
    let (last_gc, last_verify) = (last("gc"), last("verify"));
    let upstreams = registry.upstreams()?;
    let now = crate::db::now();
    let csrf = viewer.csrf.clone().unwrap_or_default();
    let total = &usage.total;
    let body = html! {
        h1 { "Dashboard" }
        div.grid {
            (stat("Stored (blobs + manifests)", format::size(total.blob_bytes + total.manifest_bytes)))
            @if let Some(d) = &disk {
                (stat("Disk free", html! { (format::size(d.available)) span.muted { " of " (format::size(d.total)) } }))
            }
            (stat("Private repositories", format::size(private)))
            (stat("Cached from upstreams", format::size(cached)))
            (stat("Reclaimable by GC now", format::size(total.reclaimable_bytes)))
            (stat("Uploads in progress", format::size(total.upload_bytes)))
        }
        p.muted { "Private and cached are logical bytes (a blob two repositories share counts in both)." }
        h2 { "Garbage collection" }
        div.card {
            p { "Last GC: " @match last_gc { Some(e) => { (format::when(e.at, now)) " by " (e.actor) }, None => span.muted { "none recorded" } } }
            p { "Last verify: " @match last_verify { Some(e) => { (format::when(e.at, now)) " (" (e.detail) ")" }, None => span.muted { "none recorded (run " code { "soute verify" } ")" } } }
            form.inline method="post" action="/ui/gc" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="mode" value="dry";
                button type="submit" { "Explain (dry run)" }
            }
            " "
            form.inline method="post" action="/ui/gc" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="mode" value="run";
                button.danger type="submit" { "Run GC now" }
            }
        }
        @if let Some(r) = report { (gc_report(r)) }
        h2 { "Upstreams" }
        @if upstreams.is_empty() { p.muted { "No upstreams (soute upstream add)." } }
        @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Name" } th scope="col" .hide-narrow { "URL" } th.num scope="col" { "Hit rate" } th.num scope="col" { "Served" } th.num scope="col" { "Fetched" } th scope="col" { "Last error" } } }
                tbody { @for u in &upstreams {
                    @let asked = u.hits + u.misses;
                    tr {
                        td { (u.name) @if u.mirror { " " span.badge { "mirror" } } }
                        td.hide-narrow { code { (u.url) } }
                        td.num { @if asked == 0 { span.muted { "–" } } @else { (u.hits * 100 / asked) "% of " (asked) } }
                        td.num { (format::size(u.bytes_served)) }
                        td.num { (format::size(u.bytes_fetched)) }
                        td { @if let (Some(e), Some(at)) = (&u.last_error, u.last_error_at) { (e) " " (format::when(at, now)) } }
                    }
                } }
            } }
        }
        h2 { "Recent events" }
        (audit_table(events.iter().rev().take(RECENT_EVENTS as usize), now))
    };
    Ok(html(200, layout::page(viewer, "Dashboard", body)))
}

fn audit_table<'a>(rows: impl Iterator<Item = &'a crate::registry::AuditRow>, now: i64) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Repository" } th scope="col" .hide-narrow { "Detail" } } }
            tbody { @for e in rows { tr {
                td { (format::when(e.at, now)) }
                td { (e.actor) br; span.muted { (e.address) } }
                td { (e.action) @if e.status > 0 { " " span.muted { (e.status) } } }
                td { (e.repository) }
                td.hide-narrow { (e.detail) }
            } } }
        } }
    }
}

/// The admin lists; `new_token` is a token just created (its only showing).
pub fn admin(gate: &dyn Gate, _req: &Request<'_>, viewer: &Viewer) -> Result<Response> {
    admin_with(gate, viewer, None)
}

pub fn admin_with(
    gate: &dyn Gate,
    viewer: &Viewer,
    new_token: Option<(&str, &str)>,
) -> Result<Response> {
    viewer.require_admin()?;
    let registry = gate.registry();
    let users = registry.users()?;
    let groups = registry.groups()?;
    let rules = registry.rules()?;
    let tokens = registry.tokens()?;
    let upstreams = registry.upstreams()?;
    let now = crate::db::now();
    let csrf = viewer.csrf.clone().unwrap_or_default();
    let body = html! {
        h1 { "Admin" }
        @if let Some((name, secret)) = new_token {
            div.notice role="status" {
                p { "Token " strong { (name) } " created. Copy its secret now: it is not shown again." }
                div.pull { code #new-token { (secret) } button.copy type="button" data-copy=(secret) { "Copy" } }
            }
        }
        h2 { "Users" }
        div.table-wrap { table {
            thead { tr { th scope="col" { "User" } th scope="col" { "Admin" } th scope="col" { "Groups" } } }
            tbody { @for u in &users { tr { td { (u.name) } td { @if u.admin { "yes" } @else { "no" } } td { (u.groups.join(", ")) } } } }
        } }
        h2 { "Groups" }
        @if groups.is_empty() { p.muted { "No groups." } }
        @else { div.table-wrap { table {
            thead { tr { th scope="col" { "Group" } th scope="col" { "Members" } } }
            tbody { @for (g, members) in &groups { tr { td { (g) } td { (members.join(", ")) } } } }
        } } }
        h2 { "Rules" }
        @if rules.is_empty() { p.muted { "No rules: administrators may do everything, others nothing." } }
        @else { ul.card { @for r in &rules { li { code { (r.to_string()) } } } } }
        h2 { "API tokens" }
        div.table-wrap { table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "User" } th scope="col" { "Scopes" } th scope="col" { "Expires" } th scope="col" .hide-narrow { "Last used" } } }
            tbody { @for t in &tokens { tr {
                td { (t.name) } td { (t.user) } td { (t.scopes.join(" ")) }
                td { @match t.expires_at { Some(e) => code { (crate::cli::format_rfc3339(e)) }, None => "never" } }
                td.hide-narrow { @if let Some(u) = t.last_used_at { (format::when(u, now)) } @else { span.muted { "never" } } }
            } } }
        } }
        form.card.narrow method="post" action="/ui/admin/token" {
            h3 { "Create a token" }
            input type="hidden" name="csrf" value=(csrf);
            label for="token-name" { "Name" }
            input #token-name type="text" name="name" required pattern="[A-Za-z0-9._@-]+";
            label for="token-user" { "User" }
            select #token-user name="user" { @for u in &users { option value=(u.name) { (u.name) } } }
            label for="token-scope" { "Scope (PATTERN:ACTIONS, empty: everything its user may do)" }
            input #token-scope type="text" name="scope" placeholder="team/**:pull,push";
            button.primary type="submit" { "Create token" }
        }
        h2 { "Upstreams" }
        @if upstreams.is_empty() { p.muted { "No upstreams." } }
        @else { div.table-wrap { table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "URL" } th scope="col" { "Signs in as" } th.num scope="col" { "Tag TTL" } } }
            tbody { @for u in &upstreams { tr {
                td { (u.name) } td { code { (u.url) } } td { (u.username.clone().unwrap_or_default()) } td.num { (u.tag_ttl_secs) " s" }
            } } }
        } } }
    };
    Ok(html(200, layout::page(viewer, "Admin", body)))
}
