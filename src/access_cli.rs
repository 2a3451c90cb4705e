//! The `soute group`, `soute access` and `soute token` commands and the
//! access parts of `soute user` (admin flag, list with groups): open the
//! existing data folder, call the registry, print for a person (or JSON).
//!
//! It must never decide access itself (`auth::access::Policy::decide` does,
//! also for `access check`), nor print a token's secret except once, on
//! `token create`.

use crate::ops_cli;
use soute::auth::{Identity, Policy};
use soute::cli::{AccessAction, GroupAction, TokenAction};
use soute::oci::RepoName;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn open(data_dir: &Path) -> Res<soute::registry::Registry> {
    ops_cli::open_existing(data_dir, 2, false)
}

/// `soute user list`: name, admin flag, groups.
pub fn user_list(registry: &soute::registry::Registry) -> Res<()> {
    let users = registry.users()?;
    let width = users.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
    println!("{:<width$}  {:<5}  GROUPS", "NAME", "ADMIN");
    for u in users {
        let admin = if u.admin { "yes" } else { "no" };
        let groups = if u.groups.is_empty() {
            "-".to_string()
        } else {
            u.groups.join(",")
        };
        println!("{:<width$}  {admin:<5}  {groups}", u.name);
    }
    Ok(())
}

pub fn group(action: GroupAction, data_dir: &Path) -> Res<()> {
    let registry = open(data_dir)?;
    match action {
        GroupAction::Add(g) => {
            if !registry.add_group(&g)? {
                return Err(format!("group {g} exists").into());
            }
            println!("group {g} added");
        }
        GroupAction::Del(g) => {
            if !registry.delete_group(&g)? {
                return Err(format!("no group {g}").into());
            }
            println!("group {g} deleted, with its members and rules");
        }
        GroupAction::List => {
            for (g, members) in registry.groups()? {
                println!("{g}: {}", members.join(" "));
            }
        }
        GroupAction::MemberAdd { group, user } => {
            if registry.add_member(&group, &user)? {
                println!("{user} is now in group {group}");
            } else {
                println!("{user} already was in group {group}");
            }
        }
        GroupAction::MemberDel { group, user } => {
            if !registry.delete_member(&group, &user)? {
                return Err(format!("{user} is not in group {group}").into());
            }
            println!("{user} left group {group}");
        }
    }
    Ok(())
}

pub fn access(action: AccessAction, data_dir: &Path, json: bool) -> Res<()> {
    let registry = open(data_dir)?;
    match action {
        AccessAction::Grant {
            who,
            pattern,
            actions,
        } => {
            let new = registry.grant(&who, &pattern, actions)?;
            let verb = if new { "granted" } else { "changed" };
            println!("{verb}: {who} {pattern} {actions}");
        }
        AccessAction::Revoke { who, pattern } => {
            if !registry.revoke(&who, &pattern)? {
                return Err(format!("no rule for {who} on {pattern}").into());
            }
            println!("revoked: {who} {pattern}");
        }
        AccessAction::List => {
            let rules = registry.rules()?;
            if json {
                let rows: Vec<serde_json::Value> = rules
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "who": r.who.to_string(),
                            "pattern": r.pattern.as_str(),
                            "actions": r.actions.to_string(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let w = rules
                    .iter()
                    .map(|r| r.who.to_string().len())
                    .max()
                    .unwrap_or(3)
                    .max(3);
                let p = rules
                    .iter()
                    .map(|r| r.pattern.as_str().len())
                    .max()
                    .unwrap_or(7)
                    .max(7);
                println!("{:<w$}  {:<p$}  ACTIONS", "WHO", "PATTERN");
                for r in rules {
                    println!(
                        "{:<w$}  {:<p$}  {}",
                        r.who.to_string(),
                        r.pattern.as_str(),
                        r.actions
                    );
                }
            }
        }
        AccessAction::Check {
            user,
            repo,
            action,
            anonymous_pull,
        } => {
            let who = if user == "anonymous" {
                Identity::Anonymous
            } else if registry.users()?.iter().any(|u| u.name == user) {
                Identity::User(user.clone())
            } else {
                return Err(format!("no user {user}").into());
            };
            let repo = RepoName::parse(&repo)?;
            let policy: Policy = registry.access_policy(anonymous_pull)?;
            let decision = policy.decide(&who, Some(&repo), action);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "allowed": decision.allowed,
                        "rule": decision.rule.as_ref().map(|r| r.to_string()),
                        "decision": decision.to_string(),
                    })
                );
            } else {
                println!("{decision}");
            }
        }
    }
    Ok(())
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM` UTC.
fn utc(secs: i64) -> String {
    soute::clock::minutes(secs)
}

pub fn token(action: TokenAction, data_dir: &Path, json: bool) -> Res<()> {
    let registry = open(data_dir)?;
    match action {
        TokenAction::Create {
            name,
            user,
            scopes,
            lifetime_secs,
        } => {
            let secret = registry.create_token(&name, &user, &scopes, lifetime_secs)?;
            println!("{secret}");
            eprintln!(
                "token {name} of {user} created; this is the only time its secret is shown. \
                 Use it as the password: docker login -u {user} --password-stdin"
            );
        }
        TokenAction::List => {
            let tokens = registry.tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(());
            }
            let never = || "never".to_string();
            println!("NAME\tUSER\tSCOPES\tCREATED\tEXPIRES\tLAST USED");
            for t in tokens {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.name,
                    t.user,
                    t.scopes.join(" "),
                    utc(t.created_at),
                    t.expires_at.map(utc).unwrap_or_else(never),
                    t.last_used_at.map(utc).unwrap_or_else(never),
                );
            }
        }
        TokenAction::Revoke(name) => {
            if !registry.revoke_token(&name)? {
                return Err(format!("no token {name}").into());
            }
            println!("token {name} revoked");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(super::utc(1_764_633_600 + 3_660), "2025-12-02 01:01");
    }
}
