//! cli::webhook: argv of `soute webhook add|list|del|test` to a
//! [`WebhookAction`], and its row of the command table ([`SPEC`]). The
//! name, URL, `--events` list and `--repo` glob are checked here
//! (`webhook::filter`), so a bad one is a usage error saying what is wrong.
//!
//! It must never do I/O (the secret is read from stdin by the binary) nor
//! open a registry.

use super::spec::{switch, usage, valued, Args, Spec, UsageError, DATA};
use crate::webhook::filter::{self, DEFAULT_EVENTS};

/// `soute webhook` in the table of commands (`spec::COMMANDS`).
pub(super) const SPEC: Spec = Spec {
    name: "webhook",
    operands: "add NAME URL | list | del NAME | test NAME",
    summary: "send push, delete, tag, pull and failed-login events to a URL",
    flags: &[
        DATA,
        valued(
            "--events",
            "LIST",
            "with add: push,delete,tag,pull,login-failure (default push,delete,tag)",
        ),
        valued(
            "--repo",
            "PATTERN",
            "with add: only repositories matching this glob, as in access rules (default **)",
        ),
        switch(
            "--secret-stdin",
            "with add: read a secret from stdin; deliveries are signed with it",
        ),
        switch("--json", "with list: print a JSON array"),
    ],
    about: "Events are POSTed in distribution's notification envelope
(application/vnd.docker.distribution.events.v2+json, {\"events\":[...]}), up to 100 per
request, in order, to receivers that worked with registry:2 as they are. With a
secret each request carries X-Soute-Signature-256: sha256=HMAC-SHA256(secret, body)
in hex. Pushes, tags and deletes are stored with the change they describe and kept
until the receiver answers 2xx (retried with back-off from 0.5 s to 5 min, across
restarts; at least once: de-duplicate by the event id); at most 10000 wait per
webhook, newer ones are dropped and logged. `test` sends one test event now and
prints the answer. The secret is kept in soute.db (0600) and never shown. Changes
apply within a second while `soute serve` runs.",
};

/// The longest webhook name.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAction {
    Add {
        name: String,
        url: String,
        /// The canonical comma list (`webhook::filter::parse_events`).
        events: String,
        repo_pattern: String,
        /// `--secret-stdin`: read one line of stdin as the secret.
        secret_stdin: bool,
    },
    List,
    Del(String),
    Test(String),
}

const USAGE: &str = "soute webhook add NAME URL [--events LIST] [--repo PATTERN] [--secret-stdin] | list [--json] | del NAME | test NAME";

/// A webhook name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn parse_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "invalid webhook name {name:?}: 1 to {MAX_NAME_LEN} of a-z 0-9 . _ -, starting with a letter or digit"
        ))
    }
}

pub(super) fn webhook_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<WebhookAction, UsageError> {
    let action = ops.next();
    if action.as_deref() != Some("add") {
        if let Some(f) = ["--events", "--repo", "--secret-stdin"]
            .iter()
            .find(|f| args.has(f))
        {
            return Err(usage(format!("{f} goes with `soute webhook add`")));
        }
    }
    let mut name = || -> Result<String, UsageError> {
        let n = ops
            .next()
            .ok_or_else(|| usage(format!("a webhook name is required: {USAGE}")))?;
        parse_name(&n).map_err(usage)
    };
    Ok(match action.as_deref() {
        Some("add") => {
            let name = name()?;
            let url = ops
                .next()
                .ok_or_else(|| usage(format!("the receiver's URL is required: {USAGE}")))?;
            WebhookAction::Add {
                name,
                url: filter::parse_url(&url).map_err(usage)?,
                events: match args.value("--events") {
                    Some(list) => filter::parse_events(list).map_err(usage)?,
                    None => filter::canonical(DEFAULT_EVENTS),
                },
                repo_pattern: filter::parse_repo_pattern(args.value("--repo").unwrap_or("**"))
                    .map_err(usage)?,
                secret_stdin: args.has("--secret-stdin"),
            }
        }
        Some("list") | Some("ls") => WebhookAction::List,
        Some("del") | Some("rm") => WebhookAction::Del(name()?),
        Some("test") => WebhookAction::Test(name()?),
        Some(other) => return Err(usage(format!("unknown webhook action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<WebhookAction, UsageError> {
        let rest: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let args = Args::scan(&SPEC, &rest)?;
        webhook_action(&args, &mut args.positionals.clone().into_iter())
    }

    #[test]
    fn actions_are_parsed_and_checked() {
        let add = parse(&[
            "add",
            "ci",
            "http://127.0.0.1:9000/hook",
            "--events",
            "tag,push",
            "--repo",
            "lab/**",
        ]);
        assert_eq!(
            add,
            Ok(WebhookAction::Add {
                name: "ci".into(),
                url: "http://127.0.0.1:9000/hook".into(),
                events: "push,tag".into(),
                repo_pattern: "lab/**".into(),
                secret_stdin: false,
            })
        );
        match parse(&["add", "ci", "https://h/x", "--secret-stdin"]) {
            Ok(WebhookAction::Add {
                events,
                repo_pattern,
                secret_stdin,
                ..
            }) => assert_eq!(
                (events.as_str(), repo_pattern.as_str(), secret_stdin),
                ("push,delete,tag", "**", true)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse(&["list", "--json"]), Ok(WebhookAction::List));
        assert_eq!(parse(&["del", "ci"]), Ok(WebhookAction::Del("ci".into())));
        assert_eq!(parse(&["test", "ci"]), Ok(WebhookAction::Test("ci".into())));
        for (argv, says) in [
            (&["add", "ci", "ftp://h/"][..], "http:// or https://"),
            (
                &["add", "ci", "http://h/", "--events", "push,bogus"],
                "unknown event",
            ),
            (&["add", "ci", "http://h/", "--events", ""], "empty name"),
            (&["add", "ci", "http://h/", "--repo", "Lab/App"], "--repo"),
            (&["add", "ci"], "URL is required"),
            (&["add", "Bad Name", "http://h/"], "invalid webhook name"),
            (&["del"], "name is required"),
            (
                &["list", "--events", "push"],
                "goes with `soute webhook add`",
            ),
            (&["frob"], "unknown webhook action"),
            (&[], "usage"),
        ] {
            match parse(argv) {
                Err(UsageError(m)) => assert!(m.contains(says), "{argv:?}: {m}"),
                Ok(a) => panic!("{argv:?} was accepted: {a:?}"),
            }
        }
    }
}
