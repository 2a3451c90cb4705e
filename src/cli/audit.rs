//! cli::audit: argv of `soute audit` to what to list: `--since` as a
//! duration before now (`1h`, `7d`, the syntax of `token create --expires`)
//! or an RFC 3339 time (`2026-12-01T08:00:00Z`), `--limit`, `--json`.
//!
//! Also its row of the command table ([`SPEC`]) and RFC 3339 times both
//! ways ([`parse_rfc3339`], [`format_rfc3339`]; a crate for them added
//! ~180 KB to the binary).
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
        return parse_rfc3339(v).map(Since::At).ok_or_else(|| {
            usage(format!(
                "--since: {v:?} is not an RFC 3339 time like 2026-12-01T08:00:00Z"
            ))
        });
    }
    parse_lifetime(v)
        .map(Since::Ago)
        .map_err(|e| usage(format!("--since: {e}, or an RFC 3339 time")))
}

/// Seconds since the epoch as RFC 3339 UTC: `2026-12-01T23:25:05Z`.
pub fn format_rfc3339(secs: i64) -> String {
    crate::clock::rfc3339(secs)
}

/// An RFC 3339 time (`2026-12-01T08:00:00Z`, `...T09:00:00.5+01:00`; `t` or
/// a space for `T`) as seconds since the epoch; fractions are dropped.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(13, b':') && at(16, b':')) {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        i += digits;
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && at(i + 3, b':') => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let local = crate::clock::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec.min(59);
    Some(local - offset)
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
    }

    #[test]
    fn rfc3339_round_trips_and_refuses_what_is_not_one() {
        let cases: &[(&str, i64)] = &[
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T00:01:01Z", 951_782_461),
            ("2026-12-01T23:25:05Z", 1_796_167_505),
            ("1969-12-31T23:59:59Z", -1),
            ("2400-12-31T23:59:59Z", 13_601_087_999),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_rfc3339(text), Some(*secs), "{text}");
            assert_eq!(format_rfc3339(*secs), *text);
        }
        let same: &[&str] = &[
            "2026-12-02T00:25:05+01:00",
            "2026-12-01T18:25:05-05:00",
            "2026-12-01t23:25:05.999z",
            "2026-12-01 23:25:05Z",
        ];
        for text in same {
            assert_eq!(parse_rfc3339(text), Some(1_796_167_505), "{text}");
        }
        let bad: &[&str] = &[
            "",
            "2026-12-01",
            "2026-12-01T23:25:05",
            "2026-12-01T23:25Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T23:60:00Z",
            "2026-12-01T23:25:05.Z",
            "2026-12-01T23:25:05+1:00",
            "2026-12-01T23:25:05+01:00x",
            "+2026-12-01T23:25:05Z",
            "2026-12-01T23:25:05Zé",
        ];
        for text in bad {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
        assert_eq!(Since::At(5).resolve(1000), 5);
    }
}
