//! rule: the words of access rules and token scopes: [`Action`], the set
//! [`Actions`] (`pull,push`, `all`, `none`), [`Who`] (`alice`,
//! `group:devs`, `anonymous`, `authenticated`), [`Rule`] and [`Scope`]
//! (`PATTERN:ACTIONS`), parsed and printed in the one spelling the CLI,
//! the database and the messages share.
//!
//! It must never decide anything (`access` does) nor do I/O.

use super::pattern::{Pattern, PatternError};
use crate::oci::RepoName;
use std::fmt;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Read images: manifests, blobs, tags, referrers; be listed in the
    /// catalog and in search.
    Pull,
    /// Write images: uploads, mounts, manifest PUT (a tag overwrite too).
    Push,
    /// DELETE of manifests, tags and blobs.
    Delete,
    /// Operator endpoints (`/v2/_soute/*`: gc, du).
    Admin,
    /// Reading `/metrics` (counts only: no repository or user names).
    Metrics,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::Admin,
        Action::Metrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Admin => "admin",
            Action::Metrics => "metrics",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of actions. Written `pull,push`; `all` is every action, `none` the
/// empty set (a rule granting `none` takes rights away from less specific ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Actions(u8);

impl Actions {
    pub const NONE: Actions = Actions(0);
    pub const ALL: Actions = Actions(0b1_1111);

    pub fn of(actions: &[Action]) -> Actions {
        Actions(actions.iter().fold(0, |m, a| m | a.bit()))
    }

    pub fn contains(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }

    pub fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }

    pub fn parse(s: &str) -> Result<Actions, String> {
        match s {
            "none" => return Ok(Actions::NONE),
            "all" => return Ok(Actions::ALL),
            "" => {
                return Err(
                    "no action given (pull, push, delete, admin, metrics, all or none)".into(),
                )
            }
            _ => {}
        }
        let mut set = Actions::NONE;
        for word in s.split(',') {
            let a = Action::parse(word.trim()).ok_or_else(|| {
                format!(
                    "unknown action {word:?}: use pull, push, delete, admin, metrics, all or none"
                )
            })?;
            set = set.union(Actions::of(&[a]));
        }
        Ok(set)
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let names: Vec<&str> = Action::ALL
            .into_iter()
            .filter(|a| self.contains(*a))
            .map(Action::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Whom a rule is about. Written `alice` (or `user:alice`), `group:devs`,
/// `anonymous`, `authenticated`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    User(String),
    Group(String),
    Authenticated,
    Anonymous,
}

impl Who {
    pub fn parse(s: &str) -> Result<Who, String> {
        let named = |kind: &str, name: &str, f: fn(String) -> Who| {
            super::validate_username(name)
                .map(|_| f(name.to_string()))
                .map_err(|e| match e {
                    super::CredError::InvalidUsername(why) => {
                        format!("invalid {kind} name {name:?}: {why}")
                    }
                    other => format!("{kind} {name:?}: {other}"),
                })
        };
        match s {
            "anonymous" => Ok(Who::Anonymous),
            "authenticated" => Ok(Who::Authenticated),
            _ => match s.split_once(':') {
                Some(("group", name)) => named("group", name, Who::Group),
                Some(("user", name)) => named("user", name, Who::User),
                Some((kind, _)) => Err(format!(
                    "{s:?}: unknown kind {kind:?} (write NAME, user:NAME, group:NAME, anonymous or authenticated)"
                )),
                None => named("user", s, Who::User),
            },
        }
    }

    /// (kind, name) as stored: `user`/`group` with a name, or the keyword and "".
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Who::User(n) => ("user", n),
            Who::Group(n) => ("group", n),
            Who::Authenticated => ("authenticated", ""),
            Who::Anonymous => ("anonymous", ""),
        }
    }

    pub fn from_parts(kind: &str, name: &str) -> Option<Who> {
        match kind {
            "user" => Some(Who::User(name.to_string())),
            "group" => Some(Who::Group(name.to_string())),
            "authenticated" => Some(Who::Authenticated),
            "anonymous" => Some(Who::Anonymous),
            _ => None,
        }
    }

    /// user > group > authenticated > anonymous.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Who::User(_) => 3,
            Who::Group(_) => 2,
            Who::Authenticated => 1,
            Who::Anonymous => 0,
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::User(n) if n == "anonymous" || n == "authenticated" => write!(f, "user:{n}"),
            Who::User(n) => f.write_str(n),
            Who::Group(n) => write!(f, "group:{n}"),
            Who::Authenticated => f.write_str("authenticated"),
            Who::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    pub pattern: Pattern,
    pub actions: Actions,
    /// Made by `--anonymous-pull`, not stored.
    pub implicit: bool,
}

/// The rule that decided a [`Decision`].
pub type RuleRef = Rule;

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.who, self.pattern, self.actions)?;
        if self.implicit {
            f.write_str(" (--anonymous-pull)")?;
        }
        Ok(())
    }
}

/// What a token is limited to: `PATTERN:ACTIONS`, e.g. `team/**:pull,push`;
/// `metrics` alone is `**:metrics` (a scraper's token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub pattern: Pattern,
    pub actions: Actions,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, String> {
        if s == "metrics" {
            return Ok(Scope {
                pattern: Pattern::everything(),
                actions: Actions::of(&[Action::Metrics]),
            });
        }
        let (pattern, actions) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("scope {s:?}: write PATTERN:ACTIONS, e.g. team/**:pull,push"))?;
        Ok(Scope {
            pattern: Pattern::parse(pattern).map_err(|e: PatternError| e.0)?,
            actions: Actions::parse(actions).map_err(|e| format!("scope {s:?}: {e}"))?,
        })
    }

    /// Every action on every repository (a token made without `--scope`).
    pub fn everything() -> Scope {
        Scope {
            pattern: Pattern::everything(),
            actions: Actions::ALL,
        }
    }

    pub(super) fn allows(&self, repo: Option<&RepoName>, action: Action) -> bool {
        self.actions.contains(action) && pattern_applies(&self.pattern, repo)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pattern, self.actions)
    }
}

/// A pattern applies to an action on `repo`, or, with no repository, only `**`.
pub(super) fn pattern_applies(pattern: &Pattern, repo: Option<&RepoName>) -> bool {
    match repo {
        Some(r) => pattern.matches(r.as_str()),
        None => pattern.is_everything(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_and_printing() {
        assert_eq!(Who::parse("alice"), Ok(Who::User("alice".into())));
        assert_eq!(
            Who::parse("user:anonymous"),
            Ok(Who::User("anonymous".into()))
        );
        assert_eq!(Who::User("anonymous".into()).to_string(), "user:anonymous");
        assert_eq!(Who::parse("group:devs"), Ok(Who::Group("devs".into())));
        assert_eq!(Who::parse("anonymous"), Ok(Who::Anonymous));
        assert!(Who::parse("team:devs").is_err());
        assert!(Who::parse("group:").is_err());
        assert!(Who::parse("al ice").is_err());
        assert_eq!(
            Actions::parse("push,pull").expect("a").to_string(),
            "pull,push"
        );
        assert_eq!(
            Actions::parse("all").expect("a").to_string(),
            "pull,push,delete,admin,metrics"
        );
        assert_eq!(
            Scope::parse("metrics").expect("scope").to_string(),
            "**:metrics"
        );
        assert_eq!(Actions::parse("none").expect("a"), Actions::NONE);
        assert!(Actions::parse("pull,write").is_err());
        assert!(Actions::parse("").is_err());
        let s = Scope::parse("team/**:pull,push").expect("scope");
        assert_eq!(s.to_string(), "team/**:pull,push");
        assert!(Scope::parse("team/**").is_err());
        assert!(Scope::parse("Team:pull").is_err());
    }
}
