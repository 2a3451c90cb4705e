//! bearer_cache: bearer tokens this process already verified, so a client
//! presenting the same token on every request (as Docker clients do for
//! the token's 5 minutes) costs one map look-up instead of two base64
//! decodes, a MAC, a JSON parse and building its scopes each time.
//!
//! An entry is made only from a token that passed `bearer::verify` under
//! this process's key (the key is new for each process, so is this cache);
//! a look-up must match the whole token, byte for byte; an entry is never
//! used at or after the token's expiry. What the token's user may do now is
//! still decided on every request (the user must exist, an API token it was
//! issued on must be live, the rules apply): only the token's own content
//! is remembered. Bounded: at most [`MAX_ENTRIES`] tokens of at most
//! [`MAX_TOKEN_BYTES`] each (longer ones are verified every time), about
//! 3 MiB at worst with their scopes (a token's scopes are no longer than
//! its payload); when full, expired entries go, and
//! if none had expired, all of them.
//!
//! It must never hold an entry that did not verify, answer for a token that
//! differs from the one verified, or outlive a token's expiry.

use crate::auth::bearer::Claims;
use crate::auth::Scope;
use std::collections::HashMap;
use std::sync::Mutex;

/// Tokens remembered at most.
pub const MAX_ENTRIES: usize = 1024;
/// Longer tokens are not remembered.
pub const MAX_TOKEN_BYTES: usize = 1024;

/// What a verified token says, as the request path uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub sub: Option<String>,
    pub via: Option<String>,
    pub scopes: Vec<Scope>,
    pub exp: i64,
}

impl Verified {
    pub fn of(claims: &Claims) -> Verified {
        Verified {
            sub: claims.sub.clone(),
            via: claims.via.clone(),
            scopes: claims.scopes(),
            exp: claims.exp,
        }
    }
}

#[derive(Default)]
pub struct BearerCache {
    map: Mutex<HashMap<Box<str>, Verified>>,
}

impl BearerCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Verified>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The remembered content of `token`, if it verified before and has not
    /// expired at `now`.
    pub fn get(&self, token: &str, now: i64) -> Option<Verified> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut map = self.lock();
        match map.get(token) {
            Some(v) if v.exp > now => Some(v.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers `token`, which `bearer::verify` just accepted as `verified`.
    pub fn put(&self, token: &str, verified: &Verified, now: i64) {
        if token.len() > MAX_TOKEN_BYTES || verified.exp <= now {
            return;
        }
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(token) {
            map.retain(|_, v| v.exp > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(token.into(), verified.clone());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(exp: i64) -> Verified {
        Verified {
            sub: Some("alice".into()),
            via: None,
            scopes: Vec::new(),
            exp,
        }
    }

    #[test]
    fn only_the_same_token_and_only_until_it_expires() {
        let cache = BearerCache::default();
        cache.put("payload.tag", &verified(100), 10);
        assert_eq!(cache.get("payload.tag", 99), Some(verified(100)));
        assert_eq!(cache.get("payload.tag2", 50), None, "another token");
        assert_eq!(cache.get("payload.ta", 50), None, "a prefix");
        assert_eq!(cache.get("payload.tag", 100), None, "expired");
        assert_eq!(cache.len(), 0, "the expired entry went");
        cache.put("old.tag", &verified(5), 10);
        assert_eq!(cache.len(), 0, "an expired token is not remembered");
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        cache.put(&long, &verified(100), 10);
        assert_eq!(cache.get(&long, 10), None, "too long to remember");
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = BearerCache::default();
        for i in 0..MAX_ENTRIES {
            cache.put(
                &format!("t{i}"),
                &verified(if i % 2 == 0 { 20 } else { 100 }),
                10,
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        // Full at 30: the expired half goes to make room.
        cache.put("new", &verified(100), 30);
        assert_eq!(cache.len(), MAX_ENTRIES / 2 + 1);
        for i in 0..MAX_ENTRIES {
            cache.put(&format!("u{i}"), &verified(100), 30);
        }
        assert!(cache.len() <= MAX_ENTRIES);
        let last = format!("u{}", MAX_ENTRIES - 1);
        assert_eq!(
            cache.get(&last, 30),
            Some(verified(100)),
            "the newest is kept"
        );
    }
}
