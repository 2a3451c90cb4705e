//! cli::audit: argv of `soute audit` to what to list: `--since` as a
//! duration before now (`1h`, `7d`, the syntax of `token create --expires`)
//! or an RFC 3339 time (`2026-12-01T08:00:00Z`), `--limit`, `--json`.
//!
//! Also its row of the command table ([`SPEC`]).
//!
//! It must never do I/O nor read the clock (`Since::resolve` is given the time).

use super::spec::{switch, usage, valued, Args, Spec, UsageError, DATA};
use crate::auth::tokens::parse_lifetime;

/// `soute audit` in the table of commands (`spec::COMMANDS`).
pub(super) const SPEC: Spec = Spec {
    name: "audit",
    operands: "",
    summary: "who pushed, deleted, signed in, failed or was refused, when and from where",
    flags: &[
        DATA,
        valued(
            "--since",
            "1h|7d|RFC3339",
            "events since this long ago or this time (default: all kept)",
        ),
        valued(
            "--limit",
            "N",
            "print the newest N events at most (default 1000)",
        ),
        switch("--json", "print a JSON array of events"),
    ],
    about: "Prints one event per line, oldest first: time (RFC 3339, UTC), actor (a user,
token:NAME or anonymous; for a failed login the name given), client address, action
(login, login_failed, push, delete, denied, admin, token_issued, suppressed), HTTP
status, repository (- for none) and detail (reference, digest or reason). Pulls are
not recorded; the soute commands that change users, rules, tokens or data are, as
admin events of local:$USER. The log keeps --audit-keep events for --audit-days days
(serve flags). Works while `soute serve` runs on the same folder.",
};

/// Events `soute audit` prints when `--limit` is not given (the newest).
pub const DEFAULT_AUDIT_LIMIT: u64 = 1000;

/// Where the listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Every event the log holds.
    Start,
    /// This many seconds before now.
    Ago(i64),
    /// This time, seconds since the epoch.
    At(i64),
}

impl Since {
    /// Seconds since the epoch, with `now` the current time.
    pub fn resolve(self, now: i64) -> i64 {
        match self {
            Since::Start => i64::MIN,
            Since::Ago(secs) => now.saturating_sub(secs),
            Since::At(at) => at,
        }
    }
}

/// `soute audit` once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Since,
    pub limit: u64,
}

/// `--since` and `--limit` of `soute audit`.
pub fn audit_query(args: &Args) -> Result<AuditQuery, UsageError> {
    let since = match args.value("--since") {
        None => Since::Start,
        Some(v) => parse_since(v)?,
    };
    let limit = args
        .parsed::<u64>("--limit", "a number of events")?
        .unwrap_or(DEFAULT_AUDIT_LIMIT);
    if limit == 0 {
        return Err(usage("--limit: expected at least 1 event"));
    }
    Ok(AuditQuery { since, limit })
}

fn parse_since(v: &str) -> Result<Since, UsageError> {
    if v.contains('T') || v.contains('-') {
        return v
            .parse::<jiff::Timestamp>()
            .map(|t| Since::At(t.as_second()))
            .map_err(|e| {
                usage(format!(
                    "--since: {v:?} is not an RFC 3339 time like 2026-12-01T08:00:00Z ({e})"
                ))
            });
    }
    parse_lifetime(v)
        .map(Since::Ago)
        .map_err(|e| usage(format!("--since: {e}, or an RFC 3339 time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_values() {
        let ok: &[(&str, Since)] = &[
            ("1h", Since::Ago(3600)),
            ("7d", Since::Ago(7 * 86_400)),
            ("90", Since::Ago(90)),
            ("1970-01-02T00:00:00Z", Since::At(86_400)),
            ("1970-01-01T01:00:00+01:00", Since::At(0)),
        ];
        for (v, want) in ok {
            assert_eq!(parse_since(v).as_ref(), Ok(want), "{v}");
        }
        for bad in [
            "",
            "yesterday",
            "-1h",
            "2026-12-01",
            "2026-13-01T00:00:00Z",
            "0h",
        ] {
            let e = parse_since(bad).expect_err(bad);
            assert!(e.0.starts_with("--since:"), "{bad}: {e}");
        }
        assert_eq!(Since::Ago(60).resolve(1000), 940);
        assert_eq!(Since::At(5).resolve(1000), 5);
    }
}
