//! The administrators' pages: the dashboard (disk used and free, private vs
//! cached bytes, reclaimable bytes, the GC dry-run explanation and the GC
//! buttons, the last GC and verify from the audit log, upstreams with hit
//! rates, recent audit events) and the admin lists (users, groups, rules,
//! tokens, upstreams, with the forms of `admin_actions`; a token created
//! here is shown once).
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

/// The admin lists and their forms.
pub fn admin(gate: &dyn Gate, _req: &Request<'_>, viewer: &Viewer) -> Result<Response> {
    admin_with(gate, viewer, None, None)
}

/// A one-button form posting `fields` to `/ui/admin/ACTION`.
fn button_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    danger: bool,
) -> Markup {
    html! {
        form.inline method="post" action=(format!("/ui/admin/{action}")) {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button type="submit" class=[danger.then_some("danger")] { (label) }
        }
    }
}

/// The admin page; `new_token` is a token just created (its only showing),
/// `done` what the form just posted did.
pub fn admin_with(
    gate: &dyn Gate,
    viewer: &Viewer,
    new_token: Option<(&str, &str)>,
    done: Option<&str>,
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
    let csrf = csrf.as_str();
    let me = viewer.who.user().unwrap_or("");
    let body = html! {
        h1 { "Admin" }
        @if let Some(m) = done { p.notice #done role="status" { (m) } }
        @if let Some((name, secret)) = new_token {
            div.notice role="status" {
                p { "Token " strong { (name) } " created. Copy its secret now: it is not shown again." }
                div.pull { code #new-token { (secret) } button.copy type="button" data-copy=(secret) { "Copy" } }
            }
        }
        h2 { "Users" }
        div.table-wrap { table {
            thead { tr { th scope="col" { "User" } th scope="col" { "Admin" } th scope="col" { "Groups" } th scope="col" { "Password" } th scope="col" { span.offscreen { "Actions" } } } }
            tbody { @for u in &users { tr {
                td { (u.name) }
                td { @if u.admin { "yes" } @else { "no" } }
                td { (u.groups.join(", ")) }
                td { form.inline method="post" action="/ui/admin/user/passwd" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="name" value=(u.name);
                    input type="password" name="password" required autocomplete="new-password" aria-label=(format!("New password for {}", u.name));
                    button type="submit" { "Set" }
                } }
                td { @if u.name != me {
                    @if u.admin { (button_form(csrf, "user/admin", &[("name", &u.name), ("admin", "no")], "Remove admin", false)) }
                    @else { (button_form(csrf, "user/admin", &[("name", &u.name), ("admin", "yes")], "Make admin", false)) }
                    " " (button_form(csrf, "user/del", &[("name", &u.name)], "Delete", true))
                } @else { span.muted { "you" } } }
            } } }
        } }
        form.card.narrow method="post" action="/ui/admin/user/add" {
            h3 { "Add a user" }
            input type="hidden" name="csrf" value=(csrf);
            label for="user-name" { "Name" }
            input #user-name type="text" name="name" required autocomplete="off";
            label for="user-password" { "Password" }
            input #user-password type="password" name="password" required autocomplete="new-password";
            label { input type="checkbox" name="admin" value="yes"; " Administrator" }
            button.primary type="submit" { "Add user" }
        }
        h2 { "Groups" }
        @if groups.is_empty() { p.muted { "No groups." } }
        @else { div.table-wrap { table {
            thead { tr { th scope="col" { "Group" } th scope="col" { "Members" } th scope="col" { "Add a member" } th scope="col" { span.offscreen { "Actions" } } } }
            tbody { @for (g, members) in &groups { tr {
                td { (g) }
                td { @for m in members { (m) " " (button_form(csrf, "group/member", &[("group", g), ("user", m), ("op", "del")], &format!("Remove {m}"), false)) " " } }
                td { form.inline method="post" action="/ui/admin/group/member" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="group" value=(g);
                    input type="hidden" name="op" value="add";
                    select name="user" aria-label=(format!("User to add to {g}")) { @for u in &users { option value=(u.name) { (u.name) } } }
                    button type="submit" { "Add" }
                } }
                td { (button_form(csrf, "group/del", &[("group", g)], "Delete", true)) }
            } } }
        } } }
        form.card.narrow method="post" action="/ui/admin/group/add" {
            h3 { "Add a group" }
            input type="hidden" name="csrf" value=(csrf);
            label for="group-name" { "Name" }
            input #group-name type="text" name="group" required autocomplete="off";
            button.primary type="submit" { "Add group" }
        }
        h2 { "Rules" }
        @if rules.is_empty() { p.muted { "No rules: administrators may do everything, others nothing." } }
        @else { div.table-wrap { table {
            thead { tr { th scope="col" { "Who" } th scope="col" { "Repositories" } th scope="col" { "Actions" } th scope="col" { span.offscreen { "Revoke" } } } }
            tbody { @for r in &rules {
                @let (who, pattern) = (r.who.to_string(), r.pattern.as_str().to_string());
                tr {
                    td { code { (who) } } td { code { (pattern) } } td { (r.actions.to_string()) }
                    td { (button_form(csrf, "rule/del", &[("who", &who), ("pattern", &pattern)], "Revoke", true)) }
                }
            } }
        } } }
        form.card.narrow method="post" action="/ui/admin/rule/add" {
            h3 { "Grant (as " code { "soute access grant WHO PATTERN ACTIONS" } ")" }
            input type="hidden" name="csrf" value=(csrf);
            label for="rule-who" { "Who (a user, group:NAME, authenticated or anonymous)" }
            input #rule-who type="text" name="who" required;
            label for="rule-pattern" { "Repositories (a glob: team/**)" }
            input #rule-pattern type="text" name="pattern" required;
            label for="rule-actions" { "Actions (pull,push,delete; admin or metrics on **)" }
            input #rule-actions type="text" name="actions" required;
            button.primary type="submit" { "Grant" }
        }
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
            thead { tr { th scope="col" { "Name" } th scope="col" { "URL" } th scope="col" { "Signs in as" } th.num scope="col" { "Tag TTL" } th scope="col" { span.offscreen { "Delete" } } } }
            tbody { @for u in &upstreams { tr {
                td { (u.name) } td { code { (u.url) } } td { (u.username.clone().unwrap_or_default()) } td.num { (u.tag_ttl_secs) " s" }
                td { (button_form(csrf, "upstream/del", &[("name", &u.name)], "Delete", true)) }
            } } }
        } } }
        form.card.narrow method="post" action="/ui/admin/upstream/add" {
            h3 { "Add an upstream (as " code { "soute upstream add" } ")" }
            input type="hidden" name="csrf" value=(csrf);
            label for="up-name" { "Name (the namespace clients pull through: docker.io)" }
            input #up-name type="text" name="name" required;
            label for="up-url" { "URL (https://host[:port])" }
            input #up-url type="url" name="url" required;
            label for="up-user" { "User name at the upstream (optional)" }
            input #up-user type="text" name="username" autocomplete="off";
            label for="up-password" { "Its password" }
            input #up-password type="password" name="password" autocomplete="new-password";
            label for="up-ttl" { "Tag TTL in seconds (empty: " (crate::cli::DEFAULT_TAG_TTL_SECS) ")" }
            input #up-ttl type="text" name="tag_ttl" inputmode="numeric" pattern="[0-9]*";
            label { input type="checkbox" name="mirror" value="yes"; " Mirror (serves names this registry lacks)" }
            button.primary type="submit" { "Add upstream" }
        }
    };
    Ok(html(200, layout::page(viewer, "Admin", body)))
}
