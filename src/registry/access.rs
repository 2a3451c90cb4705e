//! Access: the registry's glue to `auth::access` and `auth::tokens`. Stores
//! and lists admin flags, groups, members, rules and API tokens; loads the
//! resolved [`Policy`] and the generation that says when it changed (another
//! process's `soute access grant` included); checks a token's secret.
//!
//! It must never decide what an identity may do (`Policy::decide` does),
//! nor keep or log a token's secret after `create_token` returned it.

use super::Registry;
use crate::auth::tokens::{self, StoredToken, TokenOutcome};
use crate::auth::{self, Actions, Pattern, Policy, Rule, Scope, Who};
use crate::db::rules::RuleRow;
use crate::db::{self, groups, rules, users};
use crate::error::{Error, Result};

/// A user as `soute user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    pub name: String,
    pub admin: bool,
    pub groups: Vec<String>,
}

/// A token as `soute token list` shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub user: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidParameter(msg.into())
}

fn checked_name(kind: &str, name: &str) -> Result<()> {
    auth::validate_username(name).map_err(|e| match e {
        auth::CredError::InvalidUsername(why) => {
            invalid(format!("invalid {kind} name {name:?}: {why}"))
        }
        other => invalid(format!("{kind} {name:?}: {other}")),
    })
}

fn rule_of(row: RuleRow) -> Option<Rule> {
    let parsed = (|| {
        Some(Rule {
            who: Who::from_parts(&row.who_kind, &row.who_name)?,
            pattern: Pattern::parse(&row.pattern).ok()?,
            actions: Actions::parse(&row.actions).ok()?,
            implicit: false,
        })
    })();
    if parsed.is_none() {
        log::error!(
            "ignoring an unreadable access rule ({} {} {} {})",
            row.who_kind,
            row.who_name,
            row.pattern,
            row.actions
        );
    }
    parsed
}

fn scopes_of(text: &str) -> Vec<Scope> {
    text.lines().filter_map(|l| Scope::parse(l).ok()).collect()
}

impl Registry {
    /// Adds a user. It is an administrator when `admin`, or when the registry
    /// has no administrator yet (the first user of a new registry may do
    /// everything, as before access rules existed). Returns whether it is one.
    pub fn add_user(&self, name: &str, password: &str, admin: bool) -> Result<bool> {
        auth::validate_username(name).map_err(|e| invalid(e.to_string()))?;
        if password.is_empty() {
            return Err(invalid("the password must not be empty"));
        }
        let hash =
            auth::hash_password(password).map_err(|e| Error::internal_from("credentials", e))?;
        self.db.write(|tx| {
            if users::user_hash(tx, name)?.is_some() {
                return Err(invalid(format!("user {name} exists")));
            }
            let admin = admin || !users::has_admin(tx)?;
            users::set_user(tx, name, &hash, admin)?;
            Ok(admin)
        })
    }

    /// Sets a user's admin flag.
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<()> {
        if self.db.write(|tx| users::set_admin(tx, name, admin))? {
            Ok(())
        } else {
            Err(invalid(format!("no user {name}")))
        }
    }

    pub fn users(&self) -> Result<Vec<UserInfo>> {
        self.db.read_consistent(|tx| {
            let pairs = groups::memberships(tx)?;
            Ok(users::users_with_admin(tx)?
                .into_iter()
                .map(|(name, admin)| UserInfo {
                    groups: pairs
                        .iter()
                        .filter(|(_, u)| *u == name)
                        .map(|(g, _)| g.clone())
                        .collect(),
                    name,
                    admin,
                })
                .collect())
        })
    }

    /// Creates a group. False when it exists.
    pub fn add_group(&self, name: &str) -> Result<bool> {
        checked_name("group", name)?;
        self.db.write(|tx| groups::add_group(tx, name))
    }

    /// Deletes a group with its memberships and rules. False when there was none.
    pub fn delete_group(&self, name: &str) -> Result<bool> {
        self.db.write(|tx| groups::delete_group(tx, name))
    }

    pub fn groups(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.db.read_consistent(|tx| groups::groups(tx))
    }

    /// Adds `user` to `group` (both must exist). False when it already was a member.
    pub fn add_member(&self, group: &str, user: &str) -> Result<bool> {
        self.db.write(|tx| {
            if !groups::group_exists(tx, group)? {
                return Err(invalid(format!("no group {group}")));
            }
            if users::user_hash(tx, user)?.is_none() {
                return Err(invalid(format!("no user {user}")));
            }
            groups::add_member(tx, group, user)
        })
    }

    pub fn delete_member(&self, group: &str, user: &str) -> Result<bool> {
        self.db.write(|tx| groups::delete_member(tx, group, user))
    }

    /// Grants `actions` on `pattern` to `who` (replacing the actions of the
    /// same (who, pattern)); a user or group must exist. True when new.
    pub fn grant(&self, who: &Who, pattern: &Pattern, actions: Actions) -> Result<bool> {
        let (kind, name) = who.parts();
        let row = RuleRow {
            who_kind: kind.into(),
            who_name: name.into(),
            pattern: pattern.as_str().into(),
            actions: actions.to_string(),
        };
        self.db.write(|tx| {
            match who {
                Who::User(u) if users::user_hash(tx, u)?.is_none() => {
                    return Err(invalid(format!("no user {u} (soute user add {u})")))
                }
                Who::Group(g) if !groups::group_exists(tx, g)? => {
                    return Err(invalid(format!("no group {g} (soute group add {g})")))
                }
                _ => {}
            }
            rules::grant(tx, &row)
        })
    }

    /// Removes the rule of (who, pattern). False when there was none.
    pub fn revoke(&self, who: &Who, pattern: &Pattern) -> Result<bool> {
        let (kind, name) = who.parts();
        self.db
            .write(|tx| rules::revoke(tx, kind, name, pattern.as_str()))
    }

    /// The stored rules (without the implicit `--anonymous-pull` one).
    pub fn rules(&self) -> Result<Vec<Rule>> {
        Ok(self
            .db
            .read(rules::rules)?
            .into_iter()
            .filter_map(rule_of)
            .collect())
    }

    /// The resolved policy, read in one snapshot.
    pub fn access_policy(&self, anonymous_pull: bool) -> Result<Policy> {
        self.db.read_consistent(|tx| {
            let rules = rules::rules(tx)?.into_iter().filter_map(rule_of).collect();
            let users = users::users_with_admin(tx)?;
            let admins: Vec<String> = users
                .iter()
                .filter(|(_, admin)| *admin)
                .map(|(name, _)| name.clone())
                .collect();
            Ok(
                Policy::new(rules, admins, groups::memberships(tx)?, anonymous_pull)
                    .with_users(users.into_iter().map(|(name, _)| name)),
            )
        })
    }

    /// Whether requests need credentials, and the access generation (it
    /// changes with every user, group, member or rule change): one read.
    pub fn access_state(&self) -> Result<(bool, i64)> {
        self.db.read(rules::closed_and_generation)
    }

    /// [`Registry::access_state`] and the content generation (the manifest
    /// read cache's, see `read_cache`), in the same one read.
    pub fn read_state(&self) -> Result<(bool, i64, i64)> {
        self.db.read(crate::db::content::read_state)
    }

    /// Creates a token for `user`; returns the secret (shown once, never stored).
    pub fn create_token(
        &self,
        name: &str,
        user: &str,
        scopes: &[Scope],
        lifetime_secs: Option<i64>,
    ) -> Result<String> {
        checked_name("token", name)?;
        let (secret, hash) =
            tokens::generate().map_err(|e| Error::internal_from("creating a token", e))?;
        let everything = [Scope::everything()];
        let scopes = if scopes.is_empty() {
            &everything[..]
        } else {
            scopes
        };
        let text: Vec<String> = scopes.iter().map(Scope::to_string).collect();
        let expires_at = lifetime_secs.map(|s| db::now().saturating_add(s));
        self.db.write(|tx| {
            if users::user_hash(tx, user)?.is_none() {
                return Err(invalid(format!("no user {user}")));
            }
            if !db::tokens::create(tx, name, user, &hash, &text.join("\n"), expires_at)? {
                return Err(invalid(format!("a token named {name} exists")));
            }
            Ok(())
        })?;
        Ok(secret)
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        Ok(self
            .db
            .read(db::tokens::list)?
            .into_iter()
            .map(|t| TokenInfo {
                scopes: scopes_of(&t.scopes).iter().map(Scope::to_string).collect(),
                name: t.name,
                user: t.user,
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: t.last_used_at,
            })
            .collect())
    }

    /// Revokes (deletes) a token. False when there was none.
    pub fn revoke_token(&self, name: &str) -> Result<bool> {
        self.db.write(|tx| db::tokens::revoke(tx, name))
    }

    /// The scopes of the API token stored under `hash`, if it still exists,
    /// belongs to `user` and has not expired (a bearer token issued on it
    /// lives only as long, and no wider). Lookup errors count as no.
    pub fn live_token_scopes(&self, hash: &str, user: &str) -> Option<Vec<Scope>> {
        match self.db.read(|c| db::tokens::by_hash(c, hash)) {
            Ok(Some(t)) if t.user == user && t.expires_at.is_none_or(|e| e > db::now()) => {
                Some(scopes_of(&t.scopes))
            }
            Ok(_) => None,
            Err(e) => {
                log::error!("looking up a token failed: {e}");
                None
            }
        }
    }

    /// Checks a token secret presented by `user`. Lookup errors count as unknown.
    pub fn check_token(&self, user: &str, secret: &str) -> TokenOutcome {
        tokens::check(user, secret, db::now(), |hash| {
            match self.db.read(|c| db::tokens::by_hash(c, hash)) {
                Ok(row) => row.map(|t| StoredToken {
                    scopes: scopes_of(&t.scopes),
                    name: t.name,
                    user: t.user,
                    expires_at: t.expires_at,
                }),
                Err(e) => {
                    log::error!("looking up a token failed: {e}");
                    None
                }
            }
        })
    }

    /// Records that a token was used now (a cheap, unsynced write: losing
    /// one on power failure costs nothing).
    pub fn touch_token(&self, name: &str) -> Result<()> {
        let now = db::now();
        self.db
            .write_unsynced(|tx| db::tokens::touch(tx, name, now))
    }
}
