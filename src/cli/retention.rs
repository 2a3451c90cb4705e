//! cli::retention: argv of `soute retention set|list|del` to a
//! `RetentionAction`, and its row of the command table ([`SPEC`]). The rule
//! is checked here (`registry::RetentionRule::new`: pattern, at least one
//! option, the regex compiles within its bounds), so a bad one is a usage error.
//!
//! It must never do I/O nor open a registry.

use super::spec::{switch, usage, valued, Args, Spec, UsageError, DATA};
use crate::registry::RetentionRule;

/// `soute retention` in the table of commands (`spec::COMMANDS`).
pub(super) const SPEC: Spec = Spec {
    name: "retention",
    operands: "set PATTERN | list | del PATTERN",
    summary: "which tags GC keeps: the N newest, the last D days, names matching a regex",
    flags: &[
        DATA,
        valued(
            "--keep-last",
            "N",
            "with set: keep the N most recently pushed tags",
        ),
        valued(
            "--keep-days",
            "D",
            "with set: keep tags pushed or moved in the last D days",
        ),
        valued(
            "--keep-tags",
            "REGEX",
            "with set: keep tags the regex finds (e.g. ^v; at most 256 characters)",
        ),
        switch("--json", "with list: print a JSON array"),
    ],
    about: "PATTERN is a glob over repository names, as for `soute access` (team/**, **).
GC (online every --gc-interval, or `soute gc`) removes the tags of matching
repositories that none of the rule's options keeps; a protected tag (`soute tag
protect`) is always kept. When several rules match a repository the most specific
pattern wins (as for access rules). The manifests only removed tags kept are deleted
in the same run, their blobs after the grace period. `soute gc --dry-run` says, for
each tag, which rule kept or removed it and why. Removed tags are in `soute audit`.",
};

const USAGE: &str = "soute retention set PATTERN [--keep-last N] [--keep-days D] [--keep-tags REGEX] | list [--json] | del PATTERN";

#[derive(Debug, PartialEq)]
pub enum RetentionAction {
    Set(RetentionRule),
    List,
    Del(String),
}

pub fn retention_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<RetentionAction, UsageError> {
    let action = ops.next();
    if action.as_deref() != Some("set") {
        if let Some(f) = ["--keep-last", "--keep-days", "--keep-tags"]
            .iter()
            .find(|f| args.has(f))
        {
            return Err(usage(format!("{f} goes with `soute retention set`")));
        }
    }
    let mut pattern = || {
        ops.next()
            .ok_or_else(|| usage(format!("a repository pattern is required: {USAGE}")))
    };
    Ok(match action.as_deref() {
        Some("set") => {
            let pattern = pattern()?;
            let rule = RetentionRule::new(
                &pattern,
                args.parsed("--keep-last", "a number of tags")?,
                args.parsed("--keep-days", "a number of days")?,
                args.value("--keep-tags").map(str::to_string),
            )
            .map_err(usage)?;
            RetentionAction::Set(rule)
        }
        Some("list") | Some("ls") => RetentionAction::List,
        Some("del") | Some("rm") => RetentionAction::Del(pattern()?),
        Some(other) => {
            return Err(usage(format!(
                "unknown retention action `{other}`: {USAGE}"
            )))
        }
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}
