//! The web UI (issue J) and tag history: real soute on loopback with real
//! data. `history` drives `soute tag history|rollback` beside a running
//! serve; `pages` checks the HTML, headers, sessions, CSRF and permissions
//! over HTTP; `admin` the admin page's forms; `repo_page` the repository page's
//! times and per-tag delete figures; `confirm` what a confirmation or
//! the GC button promises and does; `browser` runs the headless Chromium script of `tests/ui/`
//! (playwright-core, axe-core) and asserts on what it reports; `bounds`
//! checks what one page may cost (size, time, memory, 429) on the real binary.
//! Helpers: `tests/support` (shared) and `ui/fixtures.rs` (images to push).

#[path = "ui/admin.rs"]
mod admin;

#[path = "ui/bounds.rs"]
mod bounds;
#[path = "ui/browser.rs"]
mod browser;
#[path = "ui/confirm.rs"]
mod confirm;
#[path = "ui/fixtures.rs"]
mod fixtures;
#[path = "ui/history.rs"]
mod history;
#[path = "ui/pages.rs"]
mod pages;
#[path = "ui/repo_page.rs"]
mod repo_page;
#[path = "support/mod.rs"]
mod support;
