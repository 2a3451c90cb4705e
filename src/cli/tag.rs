//! cli::tag: argv of `soute tag ACTION ...` to a `TagAction`, and its row of
//! the command table ([`SPEC`]). One `match` arm per action: `protect`,
//! `unprotect`, `protected` (a new action is one more arm and one more
//! variant). Rules are checked here (`registry::Protection::parse`).
//!
//! It must never do I/O nor open a registry.

use super::spec::{switch, usage, Args, Spec, UsageError, DATA};
use crate::registry::Protection;

/// `soute tag` in the table of commands (`spec::COMMANDS`).
pub(super) const SPEC: Spec = Spec {
    name: "tag",
    operands: "protect|unprotect PATTERN:TAG_GLOB | protected | history REPO:TAG | rollback REPO:TAG DIGEST",
    summary: "immutable tags; what a tag pointed to, by whom, and pointing it back",
    flags: &[DATA, switch("--json", "with protected or history: print a JSON array")],
    about: "PATTERN is a glob over repository names (as for `soute access`), TAG_GLOB a glob
over tag names where * matches any characters: `soute tag protect '**:v*'` makes every
v* tag immutable. Once such a tag exists, a push that would move it to another digest,
a DELETE of the tag, of the manifest it names, and retention are refused (403 DENIED,
naming the rule); pushing the same digest again is fine. Administrators are refused
too: `soute tag unprotect PATTERN:TAG_GLOB` lifts the rule. Applies to the next request.

`history` prints one change per line, newest first: time (RFC 3339, UTC), the
digest the tag pointed to after it (- when deleted), the one before, and who made it
(a user, token:NAME, upstream:NAME, local:$USER). The newest 100 changes of each tag are
kept. `rollback` points the tag at DIGEST again, if the tag pointed to it before, its
manifest is still stored and no protection rule covers the tag; it is recorded in the
history and in the audit log. Both work while `soute serve` runs on the same folder.",
};

const USAGE: &str = "soute tag protect|unprotect PATTERN:TAG_GLOB | protected [--json]";

#[derive(Debug, PartialEq)]
pub enum TagAction {
    Protect(Protection),
    Unprotect(Protection),
    Protected,
}

pub fn tag_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<TagAction, UsageError> {
    let action = ops.next();
    if args.has("--json") && action.as_deref() != Some("protected") {
        return Err(usage("--json goes with `soute tag protected`"));
    }
    let mut rule = || -> Result<Protection, UsageError> {
        let r = ops
            .next()
            .ok_or_else(|| usage(format!("PATTERN:TAG_GLOB is required: {USAGE}")))?;
        Protection::parse(&r).map_err(usage)
    };
    Ok(match action.as_deref() {
        Some("protect") => TagAction::Protect(rule()?),
        Some("unprotect") => TagAction::Unprotect(rule()?),
        Some("protected") => TagAction::Protected,
        Some(other) => return Err(usage(format!("unknown tag action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}
