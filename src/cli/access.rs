//! cli::access: argv of `soute group`, `soute access` and `soute token` to
//! their actions; WHO, PATTERN, ACTIONS, scopes and lifetimes are parsed
//! here, so a bad one is a usage error naming what is wrong.
//!
//! It must never do I/O nor open a registry.

use super::spec::{usage, Args, UsageError};
use crate::auth::tokens::parse_lifetime;
use crate::auth::{Action, Actions, Pattern, Scope, Who};

#[derive(Debug, PartialEq)]
pub enum GroupAction {
    Add(String),
    Del(String),
    List,
    MemberAdd { group: String, user: String },
    MemberDel { group: String, user: String },
}

#[derive(Debug, PartialEq)]
pub enum AccessAction {
    Grant {
        who: Who,
        pattern: Pattern,
        actions: Actions,
    },
    Revoke {
        who: Who,
        pattern: Pattern,
    },
    List,
    /// `user` is a user name or `anonymous`.
    Check {
        user: String,
        repo: String,
        action: Action,
        anonymous_pull: bool,
    },
}

#[derive(Debug, PartialEq)]
pub enum TokenAction {
    Create {
        name: String,
        user: String,
        scopes: Vec<Scope>,
        lifetime_secs: Option<i64>,
    },
    List,
    Revoke(String),
}

fn take(
    ops: &mut impl Iterator<Item = String>,
    what: &str,
    usage_line: &str,
) -> Result<String, UsageError> {
    ops.next()
        .ok_or_else(|| usage(format!("{what} is required: {usage_line}")))
}

pub fn group_action(ops: &mut impl Iterator<Item = String>) -> Result<GroupAction, UsageError> {
    const USAGE: &str = "soute group add|del|list [GROUP] | member add|del GROUP USER";
    let action = ops.next();
    Ok(match action.as_deref() {
        Some("add") => GroupAction::Add(take(ops, "a group name", USAGE)?),
        Some("del") | Some("rm") => GroupAction::Del(take(ops, "a group name", USAGE)?),
        Some("list") | Some("ls") => GroupAction::List,
        Some("member") => {
            let sub = take(ops, "add or del", USAGE)?;
            let group = take(ops, "a group name", USAGE)?;
            let user = take(ops, "a user name", USAGE)?;
            match sub.as_str() {
                "add" => GroupAction::MemberAdd { group, user },
                "del" | "rm" => GroupAction::MemberDel { group, user },
                other => return Err(usage(format!("unknown member action `{other}`: {USAGE}"))),
            }
        }
        Some(other) => return Err(usage(format!("unknown group action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}

fn who(s: &str) -> Result<Who, UsageError> {
    Who::parse(s).map_err(|e| usage(format!("WHO: {e}")))
}

fn pattern(s: &str) -> Result<Pattern, UsageError> {
    Pattern::parse(s).map_err(|e| usage(e.to_string()))
}

pub fn access_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<AccessAction, UsageError> {
    const USAGE: &str = "soute access grant WHO PATTERN ACTION[,ACTION...] | revoke WHO PATTERN | list | check USER REPO ACTION";
    let action = ops.next();
    Ok(match action.as_deref() {
        Some("grant") => {
            let who = who(&take(ops, "WHO", USAGE)?)?;
            let pattern = pattern(&take(ops, "PATTERN", USAGE)?)?;
            let actions = Actions::parse(&take(ops, "ACTION", USAGE)?)
                .map_err(|e| usage(format!("ACTION: {e}")))?;
            for system in [Action::Admin, Action::Metrics] {
                if actions.contains(system) && !pattern.is_everything() {
                    return Err(usage(format!(
                        "{} is about the server, not repositories: grant it on '**', not {pattern}",
                        system.as_str()
                    )));
                }
            }
            AccessAction::Grant {
                who,
                pattern,
                actions,
            }
        }
        Some("revoke") => AccessAction::Revoke {
            who: who(&take(ops, "WHO", USAGE)?)?,
            pattern: pattern(&take(ops, "PATTERN", USAGE)?)?,
        },
        Some("list") | Some("ls") => AccessAction::List,
        Some("check") => {
            let user = take(ops, "USER", USAGE)?;
            let repo = take(ops, "REPO", USAGE)?;
            crate::oci::RepoName::parse(&repo)
                .map_err(|_| usage(format!("{repo:?} is not a repository name")))?;
            let a = take(ops, "ACTION", USAGE)?;
            let action = Action::parse(&a).ok_or_else(|| {
                usage(format!(
                    "unknown action {a:?}: pull, push, delete, admin or metrics"
                ))
            })?;
            AccessAction::Check {
                user,
                repo,
                action,
                anonymous_pull: args.has("--anonymous-pull"),
            }
        }
        Some(other) => return Err(usage(format!("unknown access action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}

pub fn token_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<TokenAction, UsageError> {
    const USAGE: &str = "soute token create NAME --user USER [--scope PATTERN:ACTIONS]... [--expires 90d] | list | revoke NAME";
    let action = ops.next();
    Ok(match action.as_deref() {
        Some("create") => {
            let name = take(ops, "a token name", USAGE)?;
            let user = args
                .value("--user")
                .ok_or_else(|| usage(format!("--user is required: {USAGE}")))?
                .to_string();
            let mut scopes = Vec::new();
            for s in args.values("--scope") {
                scopes.push(Scope::parse(s).map_err(|e| usage(format!("--scope: {e}")))?);
            }
            let lifetime_secs = args
                .value("--expires")
                .map(|v| parse_lifetime(v).map_err(|e| usage(format!("--expires: {e}"))))
                .transpose()?;
            TokenAction::Create {
                name,
                user,
                scopes,
                lifetime_secs,
            }
        }
        Some("list") | Some("ls") => TokenAction::List,
        Some("revoke") | Some("del") => TokenAction::Revoke(take(ops, "a token name", USAGE)?),
        Some(other) => return Err(usage(format!("unknown token action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}
