//! access: the one place that decides what an [`Identity`] may do.
//!
//! The rule (README "Access rules" shows examples):
//! 1. an administrator (user flag) may do everything; a token of an
//!    administrator may do what its scopes allow;
//! 2. otherwise the rules that apply are those whose *who* covers the caller
//!    (the user's own name, a group the user is in, `authenticated` for any
//!    signed-in caller, `anonymous` for every caller, signed in or not) and
//!    whose pattern matches the repository (for an action on no repository,
//!    such as `admin` on `/v2/_soute/*`, only the pattern `**` matches);
//! 3. among them the most specific wins: more literal characters in the
//!    pattern, then fewer `**`, then fewer `*`, then who: user > group >
//!    authenticated > anonymous. Rules equally specific on every count (two
//!    groups of the user with the same pattern) combine their actions;
//! 4. the winning rule's actions decide; no applicable rule means deny;
//! 5. a token may do what its user may do AND one of its scopes allows.
//!
//! `--anonymous-pull` is the implicit rule `anonymous ** pull`, the least
//! specific rule there is.
//!
//! It must never look at HTTP requests, passwords or the database: it
//! decides from the identity, the repository, the action and the resolved
//! policy only.

pub use super::rule::{Action, Actions, Rule, RuleRef, Scope, Who};

use super::pattern::{Pattern, Specificity};
use super::rule::pattern_applies;
use super::Identity;
use crate::oci::RepoName;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Why a [`Decision`] came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The user is an administrator.
    Admin,
    /// The most specific applicable rule (in `Decision::rule`) decided.
    Rule,
    /// No rule applies: deny.
    NoRule,
    /// The user may, but none of the token's scopes allows it.
    TokenScope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The rule that decided (for `Reason::Rule`, and under `TokenScope`).
    pub rule: Option<RuleRef>,
    pub reason: Reason,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.allowed { "allow" } else { "deny" })?;
        match (self.reason, &self.rule) {
            (Reason::Admin, _) => f.write_str(": the user is an administrator"),
            (Reason::Rule, Some(r)) => write!(f, ": rule {r}"),
            (Reason::TokenScope, _) => f.write_str(": outside the token's scopes"),
            _ => f.write_str(": no rule applies"),
        }
    }
}

/// The resolved access rules of a closed registry (an open one, with no
/// users ever or opened by the operator, lets everything through before
/// this is asked).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
    admins: HashSet<String>,
    /// user -> the groups it is in.
    groups: HashMap<String, Vec<String>>,
    /// Every user that exists (a bearer token of a deleted user is refused).
    users: HashSet<String>,
}

impl Policy {
    /// `memberships` are (group, user) pairs; `anonymous_pull` adds the
    /// implicit rule `anonymous ** pull`.
    pub fn new(
        rules: Vec<Rule>,
        admins: impl IntoIterator<Item = String>,
        memberships: impl IntoIterator<Item = (String, String)>,
        anonymous_pull: bool,
    ) -> Policy {
        let mut rules = rules;
        if anonymous_pull {
            rules.push(Rule {
                who: Who::Anonymous,
                pattern: Pattern::everything(),
                actions: Actions::of(&[Action::Pull]),
                implicit: true,
            });
        }
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for (group, user) in memberships {
            groups.entry(user).or_default().push(group);
        }
        Policy {
            rules,
            admins: admins.into_iter().collect(),
            groups,
            users: HashSet::new(),
        }
    }

    /// The same policy knowing which users exist.
    pub fn with_users(mut self, users: impl IntoIterator<Item = String>) -> Policy {
        self.users = users.into_iter().collect();
        self
    }

    /// Whether `user` exists (as of [`Policy::with_users`]).
    pub fn has_user(&self, user: &str) -> bool {
        self.users.contains(user)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_admin_user(&self, user: &str) -> bool {
        self.admins.contains(user)
    }

    /// Whether an anonymous caller may pull at least one repository (then
    /// `/v2/` answers it 200, as `docker pull` of a public image needs).
    pub fn anonymous_may_pull_somewhere(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.who == Who::Anonymous && r.actions.contains(Action::Pull))
    }

    /// The decision for `who` doing `action` on `repo` (`None`: an action on
    /// no repository, such as `/v2/_soute/gc`).
    pub fn decide(&self, who: &Identity, repo: Option<&RepoName>, action: Action) -> Decision {
        match who {
            Identity::Anonymous => self.by_rules(None, repo, action),
            Identity::User(user) => self.for_user(user, repo, action),
            Identity::Token { user, scopes, .. } => self.within(user, &[scopes], repo, action),
            Identity::Bearer {
                user,
                scopes,
                api_token_scopes,
            } => match api_token_scopes {
                Some(limit) => self.within(user, &[scopes, limit], repo, action),
                None => self.within(user, &[scopes], repo, action),
            },
        }
    }

    /// What `user` may do, limited to what one scope of EACH list allows.
    fn within(
        &self,
        user: &str,
        limits: &[&Vec<Scope>],
        repo: Option<&RepoName>,
        action: Action,
    ) -> Decision {
        let base = self.for_user(user, repo, action);
        let inside = limits
            .iter()
            .all(|scopes| scopes.iter().any(|s| s.allows(repo, action)));
        if !base.allowed || inside {
            base
        } else {
            Decision {
                allowed: false,
                rule: base.rule,
                reason: Reason::TokenScope,
            }
        }
    }

    fn for_user(&self, user: &str, repo: Option<&RepoName>, action: Action) -> Decision {
        if self.admins.contains(user) {
            return Decision {
                allowed: true,
                rule: None,
                reason: Reason::Admin,
            };
        }
        self.by_rules(Some(user), repo, action)
    }

    fn by_rules(&self, user: Option<&str>, repo: Option<&RepoName>, action: Action) -> Decision {
        let groups: &[String] = user
            .and_then(|u| self.groups.get(u))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let applies = |r: &Rule| match &r.who {
            Who::Anonymous => true,
            Who::Authenticated => user.is_some(),
            Who::User(n) => user == Some(n.as_str()),
            Who::Group(g) => groups.contains(g),
        };
        let key = |r: &Rule| -> (Specificity, u8) { (r.pattern.specificity(), r.who.rank()) };
        let mut best: Option<((Specificity, u8), &Rule, Actions)> = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| applies(r) && pattern_applies(&r.pattern, repo))
        {
            let k = key(rule);
            best = match best {
                None => Some((k, rule, rule.actions)),
                Some((bk, br, ba)) if k == bk => Some((bk, br, ba.union(rule.actions))),
                Some((bk, _, _)) if k > bk => Some((k, rule, rule.actions)),
                keep => keep,
            };
        }
        match best {
            None => Decision {
                allowed: false,
                rule: None,
                reason: Reason::NoRule,
            },
            Some((_, rule, actions)) => Decision {
                allowed: actions.contains(action),
                rule: Some(rule.clone()),
                reason: Reason::Rule,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn rule(who: &str, pattern: &str, actions: &str) -> Rule {
        Rule {
            who: Who::parse(who).expect(who),
            pattern: Pattern::parse(pattern).expect(pattern),
            actions: Actions::parse(actions).expect(actions),
            implicit: false,
        }
    }

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).expect(s)
    }

    fn user(s: &str) -> Identity {
        Identity::User(s.into())
    }

    /// The README's example policy.
    fn example() -> Policy {
        Policy::new(
            vec![
                rule("authenticated", "**", "pull"),
                rule("anonymous", "public/**", "pull"),
                rule("alice", "alice/**", "pull,push,delete"),
                rule("group:devs", "team/**", "pull,push"),
                rule("group:ops", "team/**", "pull,delete"),
                rule("bob", "team/secret/**", "none"),
                rule("group:devs", "team/*", "pull"),
                rule("carol", "team/**", "pull"),
            ],
            ["root".to_string()],
            [
                ("devs".to_string(), "bob".to_string()),
                ("devs".to_string(), "carol".to_string()),
                ("ops".to_string(), "dave".to_string()),
                ("devs".to_string(), "dave".to_string()),
            ],
            false,
        )
    }

    #[test]
    fn the_most_specific_rule_wins_table() {
        let p = example();
        let anon = Identity::Anonymous;
        let cases: &[(&Identity, &str, Action, bool, &str)] = &[
            // admins may do everything, on no repository too
            (&user("root"), "x/y", Delete, true, "admin"),
            // everyone signed in may pull
            (&user("erin"), "x/y", Pull, true, "authenticated ** pull"),
            (&user("erin"), "x/y", Push, false, "authenticated ** pull"),
            // anonymous: public only
            (&anon, "public/app", Pull, true, "anonymous public/** pull"),
            (&anon, "x/y", Pull, false, "-"),
            (&anon, "public/app", Push, false, "anonymous public/** pull"),
            // a signed-in user on public/**: the anonymous rule is more specific
            (
                &user("erin"),
                "public/app",
                Pull,
                true,
                "anonymous public/** pull",
            ),
            // alice's own namespace
            (
                &user("alice"),
                "alice/app",
                Push,
                true,
                "alice alice/** pull,push,delete",
            ),
            (
                &user("alice"),
                "team/app",
                Push,
                false,
                "authenticated ** pull",
            ),
            // team/* (one segment, 5 literals + 1 star) beats team/** for devs
            (
                &user("carol"),
                "team/app",
                Push,
                false,
                "group:devs team/* pull",
            ),
            // deeper: team/** decides; carol's own rule beats her group's
            (
                &user("carol"),
                "team/a/b",
                Push,
                false,
                "carol team/** pull",
            ),
            (
                &user("bob"),
                "team/a/b",
                Push,
                true,
                "group:devs team/** pull,push",
            ),
            // dave is in devs and ops: equally specific, actions combined
            (
                &user("dave"),
                "team/a/b",
                Delete,
                true,
                "group:devs team/** pull,push",
            ),
            (
                &user("dave"),
                "team/a/b",
                Push,
                true,
                "group:devs team/** pull,push",
            ),
            // bob's `none` takes team/secret away
            (
                &user("bob"),
                "team/secret/x",
                Pull,
                false,
                "bob team/secret/** none",
            ),
            (
                &user("dave"),
                "team/secret/x",
                Pull,
                true,
                "group:devs team/** pull,push",
            ),
        ];
        for (who, name, action, allowed, by) in cases {
            let d = p.decide(who, Some(&repo(name)), *action);
            let decided_by = match (&d.rule, d.reason) {
                (_, Reason::Admin) => "admin".to_string(),
                (Some(r), _) => r.to_string(),
                (None, _) => "-".to_string(),
            };
            assert_eq!(
                (d.allowed, decided_by.as_str()),
                (*allowed, *by),
                "{who:?} {action:?} {name}"
            );
        }
        // Admin on no repository: only admins or a `** admin` rule.
        assert!(p.decide(&user("root"), None, Admin).allowed);
        assert!(!p.decide(&user("alice"), None, Admin).allowed);
        let ops = Policy::new(
            vec![rule("group:ops", "**", "admin")],
            [],
            [("ops".into(), "dave".into())],
            false,
        );
        assert!(ops.decide(&user("dave"), None, Admin).allowed);
        assert!(!ops.decide(&user("erin"), None, Admin).allowed);
    }

    #[test]
    fn no_rule_denies_and_anonymous_pull_is_the_least_specific_rule() {
        let p = Policy::new(vec![], [], [], false);
        for a in Action::ALL {
            let d = p.decide(&user("erin"), Some(&repo("a")), a);
            assert_eq!((d.allowed, d.reason), (false, Reason::NoRule));
            assert!(!p.decide(&Identity::Anonymous, Some(&repo("a")), a).allowed);
        }
        assert!(!p.anonymous_may_pull_somewhere());
        let p = Policy::new(vec![rule("anonymous", "private/**", "none")], [], [], true);
        assert!(p.anonymous_may_pull_somewhere());
        assert!(
            p.decide(&Identity::Anonymous, Some(&repo("a/b")), Pull)
                .allowed
        );
        assert!(
            !p.decide(&Identity::Anonymous, Some(&repo("a/b")), Push)
                .allowed
        );
        assert!(
            !p.decide(&Identity::Anonymous, Some(&repo("private/b")), Pull)
                .allowed
        );
        // signed-in users get what anonymous gets
        assert!(p.decide(&user("erin"), Some(&repo("a/b")), Pull).allowed);
        let implicit = p
            .decide(&user("erin"), Some(&repo("a/b")), Pull)
            .rule
            .expect("rule");
        assert!(implicit.implicit && implicit.to_string().contains("--anonymous-pull"));
    }

    #[test]
    fn tokens_get_the_intersection_of_scopes_and_user_rights() {
        let p = example();
        let scoped = |u: &str, scopes: &[&str]| Identity::Token {
            user: u.into(),
            token: "t".into(),
            scopes: scopes.iter().map(|s| Scope::parse(s).expect(s)).collect(),
        };
        let alice_ro = scoped("alice", &["alice/**:pull"]);
        assert!(p.decide(&alice_ro, Some(&repo("alice/app")), Pull).allowed);
        let d = p.decide(&alice_ro, Some(&repo("alice/app")), Push);
        assert_eq!((d.allowed, d.reason), (false, Reason::TokenScope));
        // the scope does not add rights the user lacks
        let alice_wide = scoped("alice", &["**:all"]);
        assert!(!p.decide(&alice_wide, Some(&repo("team/x")), Push).allowed);
        // an admin's token is limited by its scopes, admin action included
        let root_push = scoped("root", &["team/**:pull,push"]);
        assert!(p.decide(&root_push, Some(&repo("team/x")), Push).allowed);
        assert!(!p.decide(&root_push, Some(&repo("other")), Pull).allowed);
        assert!(!p.decide(&root_push, None, Admin).allowed);
        assert!(
            p.decide(&scoped("root", &["**:admin"]), None, Admin)
                .allowed
        );
    }
}
