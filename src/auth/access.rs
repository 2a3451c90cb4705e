//! access: the one place that decides what an [`Identity`] may do.
//!
//! Today the rule is small: a signed-in user may do everything (every user
//! is an administrator), an anonymous client may pull when the operator
//! allowed anonymous pull, and nothing else. Issue H grows it here:
//! per-repository rules, groups and scoped tokens become more [`Identity`]
//! kinds and more inputs of [`Policy::allows`], and every caller (api, and
//! later ui) keeps asking this one function.
//!
//! It must never look at HTTP requests, passwords or the database: it
//! decides from the identity, the action and the resolved policy only.

use super::Identity;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read images: manifests, blobs, tags, the catalog, search.
    Pull,
    /// Change images: uploads, manifest PUT, deletes.
    Push,
    /// Operator endpoints (`/v2/_soute/*`: gc, du).
    Admin,
}

/// The resolved access rules of a closed registry (an open one, with no
/// users ever or opened by the operator, lets everything through before
/// this is asked).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Anonymous clients may pull (`--anonymous-pull`).
    pub anonymous_pull: bool,
}

impl Policy {
    pub fn allows(&self, who: &Identity, action: Action) -> bool {
        match who {
            Identity::User(_) => true,
            Identity::Anonymous => self.anonymous_pull && action == Action::Pull,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_may_do_everything_anonymous_only_pull_when_allowed() {
        let alice = Identity::User("alice".into());
        let closed = Policy::default();
        let pull_ok = Policy {
            anonymous_pull: true,
        };
        for action in [Action::Pull, Action::Push, Action::Admin] {
            assert!(closed.allows(&alice, action));
            assert!(pull_ok.allows(&alice, action));
            assert!(!closed.allows(&Identity::Anonymous, action));
            assert_eq!(
                pull_ok.allows(&Identity::Anonymous, action),
                action == Action::Pull
            );
        }
    }
}
