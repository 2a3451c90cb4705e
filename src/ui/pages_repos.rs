//! The repositories page (kind, tags, last push, du's unique and shared
//! bytes; search with the `docker search` index; sort, filter, pages) and a
//! repository's page (its tags with each platform's digest and size, who
//! pushed them, when the image was created and last pulled; the
//! multi-select delete form).
//!
//! It must never list a repository the viewer may not pull, nor offer the
//! delete form to a viewer who may not delete, nor name who pushed to a
//! viewer who may not push.

use super::session::Viewer;
use super::{format, html, layout, pullable, Gate};
use crate::auth::Action;
use crate::error::Result;
use crate::http::{Request, Response};
use crate::oci::RepoName;
use crate::registry::RepoSummary;
use maud::{html, Markup};

/// Repositories per page.
pub const REPOS_PER_PAGE: usize = 50;
/// Tags per page of a repository.
pub const TAGS_PER_PAGE: u64 = 100;

/// `private`, `cached` or `public`.
fn kind(viewer: &Viewer, r: &RepoSummary) -> &'static str {
    match (&r.row.upstream, RepoName::parse(&r.row.name)) {
        (Some(_), _) => "cached",
        (None, Ok(name)) if viewer.public(&name) => "public",
        _ => "private",
    }
}

fn page_number(raw: &str) -> usize {
    raw.parse::<usize>().unwrap_or(1).clamp(1, 1_000_000)
}

/// Links to the previous and next pages (`href(n)` gives page n's URL).
pub fn pager(page: usize, pages: usize, href: impl Fn(usize) -> String) -> Markup {
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if page > 1 { a href=(href(page - 1)) rel="prev" { "← Previous" } }
                span.muted { "Page " (page) " of " (pages) }
                @if page < pages { a href=(href(page + 1)) rel="next" { "Next →" } }
            }
        }
    }
}

pub fn repositories(
    gate: &dyn Gate,
    _req: &Request<'_>,
    viewer: &Viewer,
    search: &str,
    sort: &str,
    kind_filter: &str,
    page: &str,
) -> Result<Response> {
    let registry = gate.registry();
    // Space over the repositories the viewer may pull only: "unique" must
    // not reveal that a repository it cannot see shares a layer.
    let mut repos: Vec<RepoSummary> = registry.repo_summaries(&|n| viewer.may_pull(n))?;
    let search = search.trim();
    if !search.is_empty() {
        let hits: std::collections::HashSet<String> = registry
            .search(search, crate::registry::MAX_PAGE)?
            .into_iter()
            .map(|h| h.name)
            .collect();
        repos.retain(|r| hits.contains(&r.row.name));
    }
    if matches!(kind_filter, "private" | "cached" | "public") {
        repos.retain(|r| kind(viewer, r) == kind_filter);
    }
    match sort {
        "size" => repos.sort_by_key(|r| std::cmp::Reverse(r.unique_bytes)),
        "push" => repos.sort_by_key(|r| std::cmp::Reverse(r.row.last_push)),
        "tags" => repos.sort_by_key(|r| std::cmp::Reverse(r.row.tags)),
        _ => {}
    }
    let pages = repos.len().div_ceil(REPOS_PER_PAGE).max(1);
    let page = page_number(page).min(pages);
    let now = crate::db::now();
    let shown = repos
        .iter()
        .skip((page - 1) * REPOS_PER_PAGE)
        .take(REPOS_PER_PAGE);
    let href = |n: usize| {
        let q = crate::api::query::percent_encode(search);
        format!("/ui/?q={q}&sort={sort}&kind={kind_filter}&page={n}")
    };
    let sorts = [
        ("name", "Name"),
        ("size", "Unique size"),
        ("push", "Last push"),
        ("tags", "Tags"),
    ];
    let kinds = [
        ("", "All"),
        ("private", "Private"),
        ("cached", "Cached"),
        ("public", "Public"),
    ];
    let body = html! {
        h1 { "Repositories" }
        form.bar method="get" action="/ui/" role="search" {
            label { "Search" input type="search" name="q" value=(search) placeholder="name or description"; }
            label { "Sort"
                select name="sort" {
                    @for (v, t) in sorts { option value=(v) selected[sort == v] { (t) } }
                }
            }
            label { "Kind"
                select name="kind" {
                    @for (v, t) in kinds { option value=(v) selected[kind_filter == v] { (t) } }
                }
            }
            button type="submit" { "Show" }
        }
        @if repos.is_empty() {
            p.card {
                "No repositories to show."
                @if !viewer.signed_in() { " " a href="/ui/login" { "Sign in" } " to see private ones." }
            }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Repository" }
                        th scope="col" { "Kind" }
                        th.num scope="col" { "Tags" }
                        th scope="col" .hide-narrow { "Last push" }
                        th.num scope="col" { "Unique" }
                        th.num scope="col" .hide-narrow { "Shared" }
                    } }
                    tbody {
                        @for r in shown {
                            @let k = kind(viewer, r);
                            tr {
                                td.name { a href=(format!("/ui/r/{}", r.row.name)) { (r.row.name) } }
                                td { span class=(format!("badge {k}")) { (k) }
                                     @if let Some(u) = &r.row.upstream { " " span.muted { (u) } } }
                                td.num { (r.row.tags) }
                                td.hide-narrow { @if let Some(t) = r.row.last_push { (format::when(t, now)) } }
                                td.num { (format::size(r.unique_bytes)) }
                                td.num.hide-narrow { (format::size(r.shared_bytes)) }
                            }
                        }
                    }
                }
            }
            (pager(page, pages, href))
            p.muted { (repos.len()) @if repos.len() == 1 { " repository. " } @else { " repositories. " }
                @if viewer.is_admin() { "Unique: bytes no other repository uses (what deleting it frees); shared: bytes other repositories use too." }
                @else { "Unique: bytes no other repository you can see uses; shared: bytes another repository you can see uses too." } }
        }
    };
    Ok(html(200, layout::page(viewer, "Repositories", body)))
}

pub fn repository(
    gate: &dyn Gate,
    _req: &Request<'_>,
    viewer: &Viewer,
    raw: &str,
    page: &str,
) -> Result<Response> {
    let repo = pullable(viewer, raw.trim_end_matches('/'))?;
    let mut page = page_number(page) as u64;
    let (mut tags, total) =
        gate.registry()
            .tag_views(&repo, (page - 1) * TAGS_PER_PAGE, TAGS_PER_PAGE)?;
    let pages = total.div_ceil(TAGS_PER_PAGE).max(1);
    if tags.is_empty() && page > pages {
        // Past the end: the last page, as the repositories page does.
        page = pages;
        tags = gate
            .registry()
            .tag_views(&repo, (page - 1) * TAGS_PER_PAGE, TAGS_PER_PAGE)?
            .0;
    }
    let pages = pages as usize;
    let may_delete = viewer.may(&repo, Action::Delete) && gate.registry().delete_enabled();
    // Tags a protection rule covers offer no delete (it would be refused).
    let rules = gate.registry().tag_protections()?;
    let protected_by = |tag: &str| rules.iter().find(|r| r.covers(repo.as_str(), tag));
    // Who pushed (user, token name, the operator's OS account) is shown
    // only to those who may push here; others see when, not who.
    let may_push = viewer.may(&repo, Action::Push);
    let now = crate::db::now();
    let name = repo.as_str();
    // Pull times are recorded for cached repositories only.
    let pulled = tags.iter().any(|t| t.last_pulled.is_some());
    let table = html! {
        div.table-wrap {
            table {
                thead { tr {
                    @if may_delete { th scope="col" {
                        input type="checkbox" data-select-all aria-label="Select every tag on this page";
                    } }
                    th scope="col" { "Tag" }
                    th scope="col" .hide-narrow { "Digest" }
                    th scope="col" { "Platforms" }
                    th.num scope="col" { "Size" }
                    th scope="col" .hide-narrow { "Pushed" }
                    th scope="col" .hide-narrow { "Created" }
                    @if pulled { th scope="col" .hide-narrow { "Last pulled" } }
                } }
                tbody {
                    @for t in &tags {
                        tr {
                            @let rule = protected_by(&t.name);
                            @if may_delete { td {
                                @if rule.is_none() {
                                    input type="checkbox" name="tag" value=(t.name) aria-label=(format!("Select tag {}", t.name));
                                }
                            } }
                            td { a href=(format!("/ui/i/{name}:{}", t.name)) { (t.name) }
                                 @if let Some(r) = rule { " " span.badge.protected title=(format!("protected by rule {r}: not moved or deleted")) { "protected" } }
                                 " " a.muted href=(format!("/ui/h/{name}:{}", t.name)) title="Tag history" { "history" } }
                            td.hide-narrow { (format::digest(&t.digest)) }
                            td {
                                @if t.is_index {
                                    ul.platforms {
                                        @for p in &t.platforms {
                                            li { a href=(format!("/ui/i/{name}@{}", p.digest)) { (p.platform) }
                                                 " " (format::digest(&p.digest)) " " (format::size(p.size)) }
                                        }
                                        @if t.more_platforms > 0 { li.muted.more-platforms data-more=(t.more_platforms) {
                                            "and " (t.more_platforms) " more (not read; the size counts the ones listed)" } }
                                    }
                                } @else { span.muted { "single image" } }
                            }
                            td.num { (format::size(t.size)) }
                            td.hide-narrow { (format::when(t.updated_at, now))
                                @if let (true, Some(by)) = (may_push, &t.pushed_by) { br; span.muted { "by " (by) } } }
                            td.hide-narrow.created { @if let Some(c) = t.created { (format::when(c, now)) } }
                            @if pulled { td.hide-narrow.pulled { @if let Some(p) = t.last_pulled { (format::when(p, now)) } } }
                        }
                    }
                }
            }
        }
    };
    let href = |n: usize| format!("/ui/r/{name}?page={n}");
    let body = html! {
        p.muted { a href="/ui/" { "Repositories" } " /" }
        h1 { (name) }
        p { (total) @if total == 1 { " tag." } @else { " tags." } }
        @if tags.is_empty() { p.card { "No tags on this page." } }
        @else if may_delete {
            form method="post" action="/ui/delete" {
                input type="hidden" name="csrf" value=(viewer.csrf.clone().unwrap_or_default());
                input type="hidden" name="repo" value=(name);
                (table)
                button.danger #delete-selected type="submit" { "Delete selected…" }
                span.muted { " You will see what it frees before anything is deleted." }
            }
        } @else { (table) }
        (pager(page as usize, pages, href))
        @if !pulled && !tags.is_empty() { p.muted #no-pulls { "No pull of these tags has been recorded yet (pull times are written once a minute)." } }
    };
    Ok(html(200, layout::page(viewer, name, body)))
}
