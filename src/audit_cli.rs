//! `soute audit`: open the existing data folder (beside a running `serve`:
//! SQLite WAL), read the events the query asks for, print one line per
//! event or a JSON array. Also the operator's own changes (`user`, `group`,
//! `access`, `token`, `webhook add|del`, `gc`, `verify --repair`), recorded as `admin` events by
//! `local:$USER` once the command succeeded ([`operator_event`]).
//!
//! It must never decide what the log holds beyond naming those commands
//! (`Registry::audit` writes), nor record a password or token secret (only
//! names, patterns and actions), nor fail a command because recording failed.

use crate::ops_cli;
use soute::cli::{AccessAction, AuditQuery, Command, GroupAction, TokenAction, UserAction};
use soute::registry::{AuditAction, AuditEvent, AuditRetention, AuditRow};
use std::io::Write;
use std::path::{Path, PathBuf};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

use soute::cli::format_rfc3339 as rfc3339;

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

/// The data folder and the words of a command that changes users, rules,
/// tokens or stored data; `None` for the others (reads, `serve`, help).
pub fn operator_event(cmd: &Command) -> Option<(PathBuf, String)> {
    let words = match cmd {
        Command::User {
            action,
            data_dir,
            admin,
        } => {
            let flag = if *admin { " --admin" } else { "" };
            let words = match action {
                UserAction::Add(n) => format!("user add {n}{flag}"),
                UserAction::Passwd(n) => format!("user passwd {n}"),
                UserAction::Del(n) => format!("user del {n}"),
                UserAction::Admin(n, on) => {
                    format!("user admin {n} {}", if *on { "yes" } else { "no" })
                }
                UserAction::Open => "user open".to_string(),
                UserAction::List => return None,
            };
            (data_dir, words)
        }
        Command::Group { action, data_dir } => {
            let words = match action {
                GroupAction::Add(g) => format!("group add {g}"),
                GroupAction::Del(g) => format!("group del {g}"),
                GroupAction::MemberAdd { group, user } => {
                    format!("group member add {group} {user}")
                }
                GroupAction::MemberDel { group, user } => {
                    format!("group member del {group} {user}")
                }
                GroupAction::List => return None,
            };
            (data_dir, words)
        }
        Command::Access {
            action, data_dir, ..
        } => {
            let words = match action {
                AccessAction::Grant {
                    who,
                    pattern,
                    actions,
                } => format!("access grant {who} {pattern} {actions}"),
                AccessAction::Revoke { who, pattern } => format!("access revoke {who} {pattern}"),
                AccessAction::List | AccessAction::Check { .. } => return None,
            };
            (data_dir, words)
        }
        Command::Token {
            action, data_dir, ..
        } => {
            let words = match action {
                TokenAction::Create {
                    name,
                    user,
                    scopes,
                    lifetime_secs,
                } => {
                    let scopes: String = scopes.iter().map(|s| format!(" --scope {s}")).collect();
                    let expires = lifetime_secs
                        .map(|s| format!(" --expires {s}s"))
                        .unwrap_or_default();
                    format!("token create {name} --user {user}{scopes}{expires}")
                }
                TokenAction::Revoke(n) => format!("token revoke {n}"),
                TokenAction::List => return None,
            };
            (data_dir, words)
        }
        Command::Webhook {
            action, data_dir, ..
        } => match action {
            // The URL may carry a receiver's token in its query: not logged.
            soute::cli::WebhookAction::Add { name, .. } => {
                (data_dir, format!("webhook add {name}"))
            }
            soute::cli::WebhookAction::Del(name) => (data_dir, format!("webhook del {name}")),
            _ => return None,
        },
        Command::Policy {
            action, data_dir, ..
        } => (data_dir, crate::policy_cli::operator_words(action)?),
        Command::Gc {
            data_dir, policy, ..
        } if !policy.dry_run => (data_dir, "gc".to_string()),
        Command::Verify {
            data_dir,
            repair: true,
            ..
        } => (data_dir, "verify --repair".to_string()),
        Command::BlobsMigrate {
            data_dir, target, ..
        } => (
            data_dir,
            format!("blobs migrate --to {}", target.describe()),
        ),
        _ => return None,
    };
    Some((words.0.clone(), words.1))
}

/// Who runs this process: `$USER`, else `uid=N` (the owner of /proc/self).
pub fn local_user() -> String {
    use std::os::unix::fs::MetadataExt;
    match std::env::var("USER") {
        Ok(user) if !user.is_empty() => user,
        _ => std::fs::metadata("/proc/self")
            .map(|m| format!("uid={}", m.uid()))
            .unwrap_or_else(|_| "unknown".to_string()),
    }
}

/// Records a succeeded operator command (see [`operator_event`]) as an
/// `admin` event of `local:$USER`; a failure is a warning, never an error.
pub fn record_operator(data_dir: &Path, words: &str) {
    let user = local_user();
    let event = AuditEvent {
        action: AuditAction::Admin,
        actor: format!("local:{user}"),
        address: "local".to_string(),
        repository: String::new(),
        detail: words.to_string(),
        status: 0,
    };
    // Only the database: the audit row needs no blob store (an S3 one would
    // need credentials this process may have had only in a file).
    match soute::registry::Registry::open(data_dir, true, 2) {
        Ok(mut registry) => {
            // The retention is the server's (`--audit-keep`, `--audit-days`),
            // which this process does not know: it never prunes.
            registry.set_audit_retention(AuditRetention {
                keep: u64::MAX,
                days: None,
            });
            registry.audit(&event)
        }
        Err(e) => eprintln!("soute: warning: recording `{words}` in the audit log failed: {e}"),
    }
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
