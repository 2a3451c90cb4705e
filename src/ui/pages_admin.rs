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
use crate::registry::GcReport;
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

pub fn dashboard(gate: &dyn Gate, req: &Request<'_>, viewer: &Viewer) -> Result<Response> {
    let done = super::session::flash(req, viewer);
    let resp = dashboard_with(gate, viewer, None, true, done.as_deref())?;
    Ok(super::session::flash_shown(req, resp, done.is_some()))
}

/// The dashboard, with the report of a GC plan just made; `untagged`: the
/// GC form's box for untagged manifests is ticked; `done`: what the last GC
/// run did (once).
pub fn dashboard_with(
    gate: &dyn Gate,
    viewer: &Viewer,
    report: Option<&GcReport>,
    untagged: bool,
    done: Option<&str>,
) -> Result<Response> {
    viewer.require_admin()?;
    let registry = gate.registry();
    let server = gate.gc_policy();
    // What the GC form does with its box as it is first shown (ticked).
    let usage = registry.du(
        None,
        None,
        &crate::registry::GcPolicy {
            delete_untagged: true,
            ..server.clone()
        },
    )?;
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
        @if let Some(m) = done { p.notice #done role="status" { (m) } }
        div.grid {
            (stat("Stored (blobs + manifests)", format::size(total.blob_bytes + total.manifest_bytes)))
            @if let Some(d) = &disk {
                (stat("Disk free", html! { (format::size(d.available)) span.muted { " of " (format::size(d.total)) } }))
            }
            (stat("Private repositories", format::size(total.private_bytes)))
            (stat("Cached from upstreams only", format::size(total.cached_bytes)))
            (stat("Reclaimable by GC now (untagged included)", format::size(total.reclaimable_bytes)))
            (stat("Uploads in progress", format::size(total.upload_bytes)))
        }
        p.muted { "As " code { "soute du" } " counts: each blob once; a blob a private and a cached repository share counts as private." }
        h2 { "Garbage collection" }
        div.card {
            p { "Last GC: " @match last_gc { Some(e) => { (format::when(e.at, now)) " by " (e.actor) }, None => span.muted { "none recorded" } } }
            p { "Last verify: " @match last_verify { Some(e) => { (format::when(e.at, now)) " (" (e.detail) ")" }, None => span.muted { "none recorded (run " code { "soute verify" } ")" } } }
            form method="post" action="/ui/gc" {
                input type="hidden" name="csrf" value=(csrf);
                @if server.delete_untagged {
                    p.muted { "This server removes manifests no tag reaches (--gc-delete-untagged); grace " (server.grace_secs) " s; layers linked in the last " (server.link_grace_secs) " s stay (a push may still need them)." }
                } @else {
                    label { input type="checkbox" name="untagged" value="yes" checked[untagged]; " Also remove manifests no tag reaches (as a tag delete's figure assumes)" }
                    p.muted { "Grace " (server.grace_secs) " s (--gc-grace); layers linked in the last " (server.link_grace_secs) " s stay (a push may still need them)." }
                }
                button type="submit" name="mode" value="dry" { "Explain (dry run)" }
                " "
                button.danger type="submit" name="mode" value="run" data-confirm="Run GC now? What it removes cannot be brought back." { "Run GC now" }
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
                td { (e.actor) br; span.muted.addr { (e.address) } }
                td { (e.action) @if e.status > 0 { " " span.muted { (e.status) } } }
                td.name { (e.repository) }
                td.hide-narrow.name { (e.detail) }
            } } }
        } }
    }
}

/// The admin lists and their forms, with what the last form did (once).
pub fn admin(gate: &dyn Gate, req: &Request<'_>, viewer: &Viewer, page: &str) -> Result<Response> {
    let done = super::session::flash(req, viewer);
    let resp = admin_with(gate, viewer, None, done.as_deref(), page)?;
    Ok(super::session::flash_shown(req, resp, done.is_some()))
}

/// A one-button form posting `fields` to `/ui/admin/ACTION`; `confirm`: the
/// question `ui.js` asks before it is sent (a destructive action).
fn button_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    // Red for what removes something; a confirmed grant stays plain.
    let danger = confirm.is_some() && matches!(label, "Delete" | "Revoke");
    html! {
        form.inline method="post" action=(format!("/ui/admin/{action}")) data-confirm=[confirm] {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button type="submit" class=[danger.then_some("danger")] { (label) }
        }
    }
}

/// Users listed per page of the admin page.
pub const USERS_PER_PAGE: usize = 50;

/// The admin page; `new_token` is a token just created (its only showing),
/// `done` what the form just posted did, `page` the page of the users list.
pub fn admin_with(
    gate: &dyn Gate,
    viewer: &Viewer,
    new_token: Option<(&str, &str)>,
    done: Option<&str>,
    page: &str,
) -> Result<Response> {
    viewer.require_admin()?;
    let registry = gate.registry();
    let all_users = registry.users()?;
    let pages = all_users.len().div_ceil(USERS_PER_PAGE).max(1);
    let page = page.parse::<usize>().unwrap_or(1).clamp(1, pages);
    let users: Vec<_> = all_users
        .iter()
        .skip((page - 1) * USERS_PER_PAGE)
        .take(USERS_PER_PAGE)
        .collect();
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
        h2 #users { "Users (" (all_users.len()) ")" }
        div.table-wrap { table {
            thead { tr { th scope="col" { "User" } th scope="col" { "Admin" } th scope="col" .hide-narrow { "Groups" } th scope="col" { "Password" } th scope="col" { span.offscreen { "Actions" } } } }
            tbody { @for u in users.iter().copied() { tr {
                td { (u.name) }
                td { @if u.admin { "yes" } @else { "no" } }
                td.hide-narrow { (u.groups.join(", ")) }
                td { form.inline method="post" action="/ui/admin/user/passwd" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="name" value=(u.name);
                    input type="password" name="password" required autocomplete="new-password" aria-label=(format!("New password for {}", u.name));
                    button type="submit" { "Set" }
                } }
                td.actions { @if u.name != me {
                    @if u.admin { (button_form(csrf, "user/admin", &[("name", &u.name), ("admin", "no")], "Remove admin", Some(&format!("Remove {}'s administrator rights?", u.name)))) }
                    @else { (button_form(csrf, "user/admin", &[("name", &u.name), ("admin", "yes")], "Make admin", Some(&format!("Make {} an administrator? They may then do everything.", u.name)))) }
                    " " (button_form(csrf, "user/del", &[("name", &u.name)], "Delete", Some(&format!("Delete user {}? Their sessions and tokens end.", u.name))))
                } @else { span.muted { "you" } } }
            } } }
        } }
        (super::pages_repos::pager(page, pages, |n| format!("/ui/admin?page={n}#users")))
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
                td { @for m in members { (m) " " (button_form(csrf, "group/member", &[("group", g), ("user", m), ("op", "del")], &format!("Remove {m}"), Some(&format!("Remove {m} from group {g}?")))) " " } }
                td { form.inline method="post" action="/ui/admin/group/member" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="group" value=(g);
                    input type="hidden" name="op" value="add";
                    input type="text" name="user" required autocomplete="off" aria-label=(format!("User to add to {g}")) placeholder="user name";
                    button type="submit" { "Add" }
                } }
                td.actions { (button_form(csrf, "group/del", &[("group", g)], "Delete", Some(&format!("Delete group {g}, with its members and rules?")))) }
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
                    td.actions { (button_form(csrf, "rule/del", &[("who", &who), ("pattern", &pattern)], "Revoke", Some(&format!("Revoke {who}'s rights on {pattern}?")))) }
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
            thead { tr { th scope="col" { "Name" } th scope="col" { "User" } th scope="col" { "Scopes" } th scope="col" { "Expires" } th scope="col" .hide-narrow { "Last used" } th scope="col" { span.offscreen { "Revoke" } } } }
            tbody { @for t in &tokens { tr {
                td { (t.name) } td { (t.user) } td { (t.scopes.join(" ")) }
                td { @match t.expires_at { Some(e) => { code { (crate::cli::format_rfc3339(e)) } @if e <= now { " " span.badge { "expired" } } }, None => "never" } }
                td.hide-narrow { @if let Some(u) = t.last_used_at { (format::when(u, now)) } @else { span.muted { "never" } } }
                td.actions { (button_form(csrf, "token/del", &[("name", &t.name)], "Revoke", Some(&format!("Revoke token {}? Whatever uses it stops working.", t.name)))) }
            } } }
        } }
        form.card.narrow method="post" action="/ui/admin/token" {
            h3 { "Create a token" }
            input type="hidden" name="csrf" value=(csrf);
            label for="token-name" { "Name" }
            input #token-name type="text" name="name" required pattern="[A-Za-z0-9._@-]+";
            label for="token-user" { "User" }
            input #token-user type="text" name="user" required autocomplete="off" value=(me);
            label for="token-scope" { "Scopes (PATTERN:ACTIONS, several separated by spaces; empty: everything its user may do)" }
            input #token-scope type="text" name="scope" placeholder="team/**:pull,push ci/**:pull";
            label for="token-expires" { "Expires after (90d, 12h, 30m; empty: never)" }
            input #token-expires type="text" name="expires" placeholder="90d" autocomplete="off";
            button.primary type="submit" { "Create token" }
        }
        h2 { "Upstreams" }
        @if upstreams.is_empty() { p.muted { "No upstreams." } }
        @else { div.table-wrap { table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "URL" } th scope="col" { "Signs in as" } th.num scope="col" { "Tag TTL" } th scope="col" { span.offscreen { "Delete" } } } }
            tbody { @for u in &upstreams { tr {
                td { (u.name) } td { code { (u.url) } } td { (u.username.clone().unwrap_or_default()) } td.num { (u.tag_ttl_secs) " s" }
                td.actions { (button_form(csrf, "upstream/del", &[("name", &u.name)], "Delete", Some(&format!("Delete upstream {}? Clients can no longer pull through it.", u.name)))) }
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
