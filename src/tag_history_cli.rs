//! `soute tag history|rollback`: open the existing data folder (beside a
//! running `serve`: SQLite WAL), print a tag's history as lines or JSON, or
//! roll the tag back (recorded by the registry in the tag's history and the
//! audit log as `local:$USER`).
//!
//! It must never decide whether a rollback is allowed (`Registry::rollback_tag`
//! does), nor prune the audit log (the server's retention is not known here).

use crate::{audit_cli, ops_cli};
use soute::cli::{format_rfc3339, TagHistoryAction};
use soute::registry::AuditRetention;
use std::io::Write;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(serde::Serialize)]
struct JsonChange<'a> {
    #[serde(flatten)]
    change: &'a soute::db::tag_history::TagChange,
    /// `at` as RFC 3339 UTC.
    time: String,
}

pub fn tag(action: TagHistoryAction, data_dir: &Path, json: bool) -> Res<()> {
    let mut registry = ops_cli::open_existing(data_dir, 2, false)?;
    let mut out = std::io::stdout().lock();
    match action {
        TagHistoryAction::History { repo, tag } => {
            let changes = registry.tag_history(&repo, &tag, i64::MAX)?;
            if json {
                let rows: Vec<JsonChange> = changes
                    .iter()
                    .map(|change| JsonChange {
                        change,
                        time: format_rfc3339(change.at),
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                return Ok(());
            }
            if changes.is_empty() {
                writeln!(out, "no recorded changes of {repo}:{tag}")?;
            }
            for c in &changes {
                writeln!(
                    out,
                    "{} {} {} {}",
                    format_rfc3339(c.at),
                    c.digest.as_deref().unwrap_or("-"),
                    c.previous.as_deref().unwrap_or("-"),
                    c.actor
                )?;
            }
        }
        TagHistoryAction::Rollback { repo, tag, digest } => {
            registry.set_audit_retention(AuditRetention {
                keep: u64::MAX,
                days: None,
            });
            let actor = format!("local:{}", audit_cli::local_user());
            let done = registry.rollback_tag(&repo, &tag, &digest, &actor, "local")?;
            let was = done.previous.as_deref().unwrap_or("nothing (deleted)");
            writeln!(out, "{repo}:{tag} now points to {digest} (was {was})")?;
        }
    }
    Ok(())
}
