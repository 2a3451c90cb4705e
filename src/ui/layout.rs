//! The page shell every UI page shares: document head (the one stylesheet
//! and script, both from `/ui/static/`), the header with navigation and the
//! sign-in state, and the error page.
//!
//! It must never inline script or style, nor show an admin link to a viewer
//! `Policy::decide` does not let administer.

use super::session::Viewer;
use maud::{html, Markup, DOCTYPE};

/// A whole page titled `title` around `body`.
pub fn page(viewer: &Viewer, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · soute" }
                link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/ui/static/ui.css";
                script src="/ui/static/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "soute" }
                    nav aria-label="Main" {
                        a href="/ui/" { "Repositories" }
                        @if viewer.is_admin() {
                            a href="/ui/dashboard" { "Dashboard" }
                            a href="/ui/admin" { "Admin" }
                        }
                    }
                    div.who {
                        @if viewer.signed_in() {
                            span.muted { (viewer.name()) }
                            form.inline method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf.clone().unwrap_or_default());
                                button.link type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/ui/login" { "Sign in" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The page of an error: its status and message (as text).
pub fn error(viewer: &Viewer, status: u16, message: &str) -> Markup {
    let title = match status {
        401 | 403 => "Not allowed",
        404 => "Not found",
        429 => "Too many requests",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    };
    page(
        viewer,
        title,
        html! {
            h1 { (title) }
            p.notice.bad role="alert" { (message) }
            @if !viewer.signed_in() && matches!(status, 401 | 403 | 404) {
                p { "Signed in, you may see more: " a href="/ui/login" { "sign in" } "." }
            }
            p { a href="/ui/" { "Back to the repositories" } }
        },
    )
}
