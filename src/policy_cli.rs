//! The policy commands of the binary: `soute retention`, `soute tag`,
//! `soute quota`. Open the existing data folder (also beside a running
//! `serve`), change or list the rules, print a line or a JSON array; and the
//! words the audit log records for the ones that change something.
//!
//! It must never decide anything the registry decides (which rule wins,
//! what a quota counts): it calls `Registry` and prints.

use crate::ops_cli::{self, human};
use soute::cli::{PolicyAction, QuotaAction, RetentionAction, TagAction};
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub fn policy(action: PolicyAction, data_dir: &Path, json: bool) -> Res<()> {
    let registry = ops_cli::open_existing(data_dir, 2, false)?;
    match action {
        PolicyAction::Retention(RetentionAction::Set(rule)) => {
            let new = registry.set_retention(&rule)?;
            println!(
                "retention rule {} {}: {} (GC applies it; `soute gc --dry-run` shows each tag's verdict)",
                rule.pattern,
                if new { "set" } else { "replaced" },
                rule.options()
            );
        }
        PolicyAction::Retention(RetentionAction::Del(pattern)) => {
            if !registry.delete_retention(&pattern)? {
                return Err(format!("no retention rule for {pattern}").into());
            }
            println!("retention rule {pattern} deleted");
        }
        PolicyAction::Retention(RetentionAction::List) => {
            let rules = registry.retention_rules()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
                return Ok(());
            }
            let w = rules
                .iter()
                .map(|r| r.pattern.len())
                .max()
                .unwrap_or(7)
                .max(7);
            println!("{:<w$}  KEEP", "PATTERN");
            for r in &rules {
                println!("{:<w$}  {}", r.pattern, r.options());
            }
        }
        PolicyAction::Tag(TagAction::Protect(rule)) => {
            if registry.protect_tags(&rule)? {
                println!("tags {rule} are protected: moving or deleting them is refused");
            } else {
                println!("tags {rule} were protected already");
            }
        }
        PolicyAction::Tag(TagAction::Unprotect(rule)) => {
            if !registry.unprotect_tags(&rule)? {
                return Err(format!("no protection {rule}").into());
            }
            println!("tags {rule} are no longer protected");
        }
        PolicyAction::Tag(TagAction::Protected) => {
            let rules = registry.tag_protections()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
                return Ok(());
            }
            for r in &rules {
                println!("{r}");
            }
        }
        PolicyAction::Quota(QuotaAction::Set {
            pattern,
            limit_bytes,
        }) => {
            let q = registry.set_quota(&pattern, limit_bytes)?;
            println!(
                "quota {} set: {} ({} bytes); used now {} ({} bytes)",
                q.pattern,
                human(q.limit_bytes),
                q.limit_bytes,
                human(q.used_bytes),
                q.used_bytes
            );
        }
        PolicyAction::Quota(QuotaAction::Del(pattern)) => {
            if !registry.delete_quota(&pattern)? {
                return Err(format!("no quota for {pattern}").into());
            }
            println!("quota {pattern} deleted");
        }
        PolicyAction::Quota(QuotaAction::List) => {
            let quotas = registry.quotas()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&quotas)?);
                return Ok(());
            }
            let w = quotas
                .iter()
                .map(|q| q.pattern.len())
                .max()
                .unwrap_or(7)
                .max(7);
            println!(
                "{:<w$}  {:>14}  {:>14}  {:>5}",
                "PATTERN", "LIMIT", "USED", "USE%"
            );
            for q in &quotas {
                let pct = (q.used_bytes as f64) * 100.0 / (q.limit_bytes.max(1) as f64);
                println!(
                    "{:<w$}  {:>14}  {:>14}  {:>4.0}%",
                    q.pattern, q.limit_bytes, q.used_bytes, pct
                );
            }
        }
    }
    Ok(())
}

/// The words an `admin` audit event records for a policy change; `None`
/// for the listings.
pub fn operator_words(action: &PolicyAction) -> Option<String> {
    Some(match action {
        PolicyAction::Retention(RetentionAction::Set(r)) => {
            format!("retention set {} {}", r.pattern, r.options())
        }
        PolicyAction::Retention(RetentionAction::Del(p)) => format!("retention del {p}"),
        PolicyAction::Tag(TagAction::Protect(r)) => format!("tag protect {r}"),
        PolicyAction::Tag(TagAction::Unprotect(r)) => format!("tag unprotect {r}"),
        PolicyAction::Quota(QuotaAction::Set {
            pattern,
            limit_bytes,
        }) => format!("quota set {pattern} {limit_bytes}"),
        PolicyAction::Quota(QuotaAction::Del(p)) => format!("quota del {p}"),
        PolicyAction::Retention(RetentionAction::List)
        | PolicyAction::Tag(TagAction::Protected)
        | PolicyAction::Quota(QuotaAction::List) => return None,
    })
}
