//! What a webhook subscribes to: the kinds of event (`--events`), the
//! repositories (`--repo`, an access-rule glob), and the receiver's URL as
//! an admin may configure it. Pure parsing and matching.
//!
//! It must never do I/O, resolve a host name or follow anything a client
//! sent: the URL is checked for shape only, and only an admin sets it.

use crate::auth::pattern::Pattern;

/// The events a webhook gets when `--events` is not given: the writes
/// (pulls and failed logins are opt-in: they come at request rate).
pub const DEFAULT_EVENTS: &[EventKind] = &[EventKind::Push, EventKind::Delete, EventKind::Tag];

/// The longest receiver URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A kind of event, as `--events` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A manifest stored (`action: push`).
    Push,
    /// A manifest, tag or blob deleted (`action: delete`).
    Delete,
    /// A manifest fetched with GET (`action: pull`).
    Pull,
    /// A tag set to point at a manifest by a push (`action: tag`).
    Tag,
    /// A failed sign-in (`action: login-failure`).
    LoginFailure,
}

pub const ALL_EVENTS: &[EventKind] = &[
    EventKind::Push,
    EventKind::Delete,
    EventKind::Pull,
    EventKind::Tag,
    EventKind::LoginFailure,
];

impl EventKind {
    /// The name in `--events` and the envelope's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::Delete => "delete",
            EventKind::Pull => "pull",
            EventKind::Tag => "tag",
            EventKind::LoginFailure => "login-failure",
        }
    }

    fn parse(s: &str) -> Option<EventKind> {
        ALL_EVENTS.iter().copied().find(|k| k.as_str() == s)
    }
}

/// `push,delete,...` to the canonical list (known names, each once, in
/// [`ALL_EVENTS`] order, comma separated).
pub fn parse_events(list: &str) -> Result<String, String> {
    let mut kinds: Vec<EventKind> = Vec::new();
    for word in list.split(',').map(str::trim) {
        if word.is_empty() {
            return Err(format!(
                "--events {list:?}: an empty name; give a comma list of {}",
                names()
            ));
        }
        let kind = EventKind::parse(word).ok_or_else(|| {
            format!(
                "--events: unknown event {word:?}; the events are {}",
                names()
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort();
    Ok(canonical(&kinds))
}

fn names() -> String {
    canonical(ALL_EVENTS)
}

/// The stored form of a list of kinds.
pub fn canonical(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a stored `events` list holds `kind`.
pub fn subscribes(events: &str, kind: EventKind) -> bool {
    events.split(',').any(|e| e == kind.as_str())
}

/// Whether a webhook with these stored filters gets an event of `kind`
/// about `repository` (`None` for events about no repository, such as a
/// failed login: the `--repo` filter does not apply to them).
pub fn wants(events: &str, repo_pattern: &str, kind: EventKind, repository: Option<&str>) -> bool {
    if !subscribes(events, kind) {
        return false;
    }
    match repository {
        None => true,
        Some(name) => repo_matches(repo_pattern, name),
    }
}

/// Whether a stored `--repo` pattern matches `repository`.
pub fn repo_matches(repo_pattern: &str, repository: &str) -> bool {
    Pattern::parse(repo_pattern).is_ok_and(|p| p.matches(repository))
}

/// `--repo`: an access-rule glob (`**` when absent).
pub fn parse_repo_pattern(s: &str) -> Result<String, String> {
    Pattern::parse(s)
        .map(|p| p.as_str().to_string())
        .map_err(|e| format!("--repo: {e}"))
}

/// The receiver's URL: `http://` or `https://`, a host, no user or password
/// in it (a secret goes in with `--secret-stdin`), no fragment, printable,
/// at most [`MAX_URL_LEN`] bytes.
pub fn parse_url(s: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("invalid webhook URL {s:?}: {why}"));
    if s.len() > MAX_URL_LEN {
        return bad("it is longer than 2048 bytes");
    }
    if s.bytes().any(|b| b <= b' ' || b == 0x7f) || !s.is_ascii() {
        return bad("it holds spaces, control or non-ASCII characters");
    }
    let rest = match s.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        _ => return bad("it must start with http:// or https://"),
    };
    if s.contains('#') {
        return bad("a fragment (#...) is never sent; leave it out");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return bad("no user or password in the URL; use --secret-stdin to sign deliveries");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, port)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {
                if !(port.is_empty() || port.starts_with(':')) {
                    return bad("junk after the IPv6 address");
                }
                port.strip_prefix(':')
                    .map_or(Ok(addr), |p| check_port(p).map(|_| addr))
            }
            _ => return bad("a bracketed host must be an IPv6 address"),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => check_port(port).map(|_| host),
            None => Ok(authority),
        },
    };
    let host = match host {
        Ok(h) => h,
        Err(why) => return bad(&why),
    };
    if host.is_empty() {
        return bad("it has no host");
    }
    if !authority.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return bad("the host may hold only letters, digits, . - and _");
    }
    if ureq::http::Uri::try_from(s).is_err() {
        return bad("it is not a valid URI");
    }
    Ok(s.to_string())
}

fn check_port(p: &str) -> Result<(), String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(format!("the port {p:?} is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_lists_are_checked_and_made_canonical() {
        assert_eq!(parse_events("tag,push,push").as_deref(), Ok("push,tag"));
        assert_eq!(
            parse_events("login-failure, pull,delete").as_deref(),
            Ok("delete,pull,login-failure")
        );
        for bad in ["", "push,", "pushes", "push,,tag", "PUSH", "login_failure"] {
            assert!(parse_events(bad).is_err(), "{bad:?}");
        }
        assert_eq!(canonical(DEFAULT_EVENTS), "push,delete,tag");
    }

    #[test]
    fn filters_select_by_kind_and_repository() {
        assert!(wants("push,tag", "**", EventKind::Push, Some("lab/app")));
        assert!(!wants("push,tag", "**", EventKind::Delete, Some("lab/app")));
        assert!(wants("push", "lab/*", EventKind::Push, Some("lab/app")));
        assert!(!wants("push", "lab/*", EventKind::Push, Some("lab/x/app")));
        assert!(!wants("push", "lab/*", EventKind::Push, Some("other/app")));
        // No repository: the pattern does not apply.
        assert!(wants(
            "login-failure",
            "lab/*",
            EventKind::LoginFailure,
            None
        ));
        assert!(!wants("push", "**", EventKind::LoginFailure, None));
    }

    #[test]
    fn urls_are_checked_for_shape() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://ci.example.org/registry?token=x",
            "http://[::1]:9000/",
            "http://localhost",
        ] {
            assert_eq!(parse_url(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "ftp://example.org/",
            "example.org/hook",
            "http://",
            "http:///path",
            "http://user:pw@example.org/",
            "http://example.org:0/",
            "http://example.org:99999/",
            "http://exa mple.org/",
            "http://example.org/a b",
            "http://example.org/#frag",
            "http://[not-v6]/",
            "http://ex%61mple.org/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_url(&format!("http://a/{}", "x".repeat(MAX_URL_LEN))).is_err());
    }
}
