//! `soute audit`: open the existing data folder (beside a running `serve`:
//! SQLite WAL), read the events the query asks for, print one line per
//! event or a JSON array.
//!
//! It must never write to the log nor decide what it holds: it renders what
//! `Registry::audit_events` returns.

use crate::ops_cli;
use soute::cli::AuditQuery;
use soute::registry::AuditRow;
use std::io::Write;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Seconds since the epoch as RFC 3339 UTC (`2026-12-01T23:25:05Z`).
fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// A field of a plain line: `-` when empty, quoted when it holds spaces.
fn field(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else if s.contains(char::is_whitespace) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    #[serde(flatten)]
    row: &'a AuditRow,
    /// `at` as RFC 3339 UTC.
    time: String,
}

pub fn audit(data_dir: &Path, query: &AuditQuery, json: bool) -> Res<()> {
    let registry = ops_cli::open_existing(data_dir, 2, false)?;
    let since = query.since.resolve(soute::db::now());
    let rows = registry.audit_events(since, query.limit)?;
    let mut out = std::io::stdout().lock();
    if json {
        let events: Vec<JsonEvent> = rows
            .iter()
            .map(|row| JsonEvent {
                row,
                time: rfc3339(row.at),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?;
        return Ok(());
    }
    for r in &rows {
        writeln!(
            out,
            "{} {} {} {} {} {} {}",
            rfc3339(r.at),
            field(&r.actor),
            field(&r.address),
            r.action,
            r.status,
            field(&r.repository),
            if r.detail.is_empty() { "-" } else { &r.detail },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_fields() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 61), "2000-02-29T00:01:01Z");
        assert_eq!(field(""), "-");
        assert_eq!(field("alice"), "alice");
        assert_eq!(field("a b"), "\"a b\"");
    }
}
