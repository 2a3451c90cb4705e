//! cli::quota: argv of `soute quota set|list|del` to a `QuotaAction`, and
//! its row of the command table ([`SPEC`]). BYTES has the syntax of
//! `--max-blob-size` (`10GB`, `500MiB`, `1000`).
//!
//! It must never do I/O nor open a registry.

use super::spec::{switch, usage, Args, Spec, UsageError, DATA};
use crate::auth::pattern::Pattern;

/// `soute quota` in the table of commands (`spec::COMMANDS`).
pub(super) const SPEC: Spec = Spec {
    name: "quota",
    operands: "set PATTERN BYTES | list | del PATTERN",
    summary: "at most BYTES for the repositories a pattern matches",
    flags: &[DATA, switch("--json", "with list: print a JSON array")],
    about: "PATTERN is a glob over repository names (as for `soute access`); BYTES a size
like 10GB, 500MiB or 1000. What counts is du's accounting of those repositories
together: the distinct blobs their manifests reference (a layer they share counts
once) plus their manifests. A push that would pass a quota is refused at the
manifest PUT (or at the blob upload when its size is known) with 403 DENIED
\"quota exceeded: N of M bytes\", and the manifest is not stored. Every quota whose
pattern matches applies. `list` shows the usage of each. Applies to the next push.",
};

const USAGE: &str = "soute quota set PATTERN BYTES | list [--json] | del PATTERN";

#[derive(Debug, PartialEq)]
pub enum QuotaAction {
    Set { pattern: Pattern, limit_bytes: u64 },
    List,
    Del(String),
}

pub fn quota_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<QuotaAction, UsageError> {
    let action = ops.next();
    if args.has("--json") && !matches!(action.as_deref(), Some("list") | Some("ls")) {
        return Err(usage("--json goes with `soute quota list`"));
    }
    let mut pattern = || -> Result<String, UsageError> {
        ops.next()
            .ok_or_else(|| usage(format!("a repository pattern is required: {USAGE}")))
    };
    Ok(match action.as_deref() {
        Some("set") => {
            let pattern = Pattern::parse(&pattern()?).map_err(|e| usage(e.to_string()))?;
            let bytes = ops
                .next()
                .ok_or_else(|| usage(format!("BYTES is required: {USAGE}")))?;
            let limit_bytes = crate::storage::space::parse_size(&bytes)
                .map_err(|e| usage(format!("BYTES: {e}")))?;
            QuotaAction::Set {
                pattern,
                limit_bytes,
            }
        }
        Some("list") | Some("ls") => QuotaAction::List,
        Some("del") | Some("rm") => QuotaAction::Del(pattern()?),
        Some(other) => return Err(usage(format!("unknown quota action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}
