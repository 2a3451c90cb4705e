//! tokens: API tokens, usable as the password in Basic auth.
//!
//! A token is `soute_` followed by 64 hex digits (256 random bits), so it
//! needs no slow hash: only its sha256 is stored, and checking one is one
//! hash and one indexed lookup (microseconds, no verifier-pool slot, no
//! throttle). Its rights are its user's rights intersected with its scopes
//! (`access::Policy::decide`). Expired or unknown (revoked) tokens are bad
//! credentials. `last used` is written at most once a minute per token.
//!
//! It must never store, log or print a secret after `generate` returned it,
//! nor look tokens up itself (callers pass a lookup).

use super::access::Scope;
use super::{lock, random_bytes, CredError, Identity};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What every token starts with (recognizable in logs and secret scanners).
pub const TOKEN_PREFIX: &str = "soute_";
const SECRET_HEX: usize = 64;

/// A new secret and the hash to store.
pub fn generate() -> Result<(String, String), CredError> {
    let bytes = random_bytes::<32>()?;
    let mut secret = String::with_capacity(TOKEN_PREFIX.len() + SECRET_HEX);
    secret.push_str(TOKEN_PREFIX);
    for b in bytes {
        secret.push_str(&format!("{b:02x}"));
    }
    let hash = hash_secret(&secret);
    Ok((secret, hash))
}

/// The stored form of a secret: sha256, hex.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a password has the shape of a token (then it is checked as one,
/// never as a password).
pub fn looks_like_token(password: &str) -> bool {
    password.len() == TOKEN_PREFIX.len() + SECRET_HEX
        && password.starts_with(TOKEN_PREFIX)
        && password[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// A token as stored (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub name: String,
    pub user: String,
    pub scopes: Vec<Scope>,
    /// Seconds since the epoch; `None`: never expires.
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOutcome {
    Ok(Identity),
    /// Unknown (or revoked), expired, or another user's token.
    Bad(&'static str),
}

/// Checks `secret` presented by `user` at `now` (seconds since the epoch).
/// `lookup` gets the secret's hash and returns the token stored under it.
pub fn check(
    user: &str,
    secret: &str,
    now: i64,
    lookup: impl FnOnce(&str) -> Option<StoredToken>,
) -> TokenOutcome {
    let Some(token) = lookup(&hash_secret(secret)) else {
        return TokenOutcome::Bad("unknown or revoked token");
    };
    if token.user != user {
        return TokenOutcome::Bad("the token belongs to another user");
    }
    if token.expires_at.is_some_and(|t| t <= now) {
        return TokenOutcome::Bad("the token has expired");
    }
    TokenOutcome::Ok(Identity::Token {
        user: token.user,
        token: token.name,
        scopes: token.scopes,
    })
}

/// Parses a lifetime: `90d`, `12h`, `30m`, `3600s` (or a bare number of
/// seconds), at most 100 years. Returns seconds.
pub fn parse_lifetime(s: &str) -> Result<i64, String> {
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: i64 = digits
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?}: write a positive number with d, h, m or s (90d)"))?;
    let unit_secs = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(format!("{s:?}: the unit is d, h, m or s")),
    };
    n.checked_mul(unit_secs)
        .filter(|secs| *secs <= 100 * 366 * 86_400)
        .ok_or_else(|| format!("{s:?}: at most 100 years"))
}

/// Decides when a token's `last used` is written: at most once per
/// `interval` per token; remembers at most `capacity` tokens (then starts over).
pub struct LastUsed {
    interval: Duration,
    capacity: usize,
    seen: Mutex<HashMap<String, Instant>>,
}

impl LastUsed {
    pub fn new(interval: Duration, capacity: usize) -> LastUsed {
        LastUsed {
            interval,
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// True when the use of `token` at `now` should be written.
    pub fn due(&self, token: &str, now: Instant) -> bool {
        let mut seen = lock(&self.seen);
        if let Some(at) = seen.get(token) {
            if now.saturating_duration_since(*at) < self.interval {
                return false;
            }
        }
        if seen.len() >= self.capacity && !seen.contains_key(token) {
            seen.clear();
        }
        seen.insert(token.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_shape_and_hash_is_stable() {
        let (a, ha) = generate().expect("token");
        let (b, _) = generate().expect("token");
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert_eq!(hash_secret(&a), ha);
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a[6..]));
        for not in [
            "soute_",
            "soute_xyz",
            "password",
            &a.to_uppercase(),
            &a[..69],
        ] {
            assert!(!looks_like_token(not), "{not}");
        }
    }

    #[test]
    fn check_refuses_unknown_expired_and_foreign_tokens() {
        let (secret, hash) = generate().expect("token");
        let stored = |expires_at| {
            let hash = hash.clone();
            move |h: &str| {
                (h == hash).then(|| StoredToken {
                    name: "ci".into(),
                    user: "alice".into(),
                    scopes: vec![Scope::everything()],
                    expires_at,
                })
            }
        };
        assert!(matches!(
            check("alice", &secret, 100, stored(None)),
            TokenOutcome::Ok(Identity::Token { .. })
        ));
        assert!(matches!(
            check("alice", &secret, 100, stored(Some(101))),
            TokenOutcome::Ok(_)
        ));
        assert_eq!(
            check("alice", &secret, 101, stored(Some(101))),
            TokenOutcome::Bad("the token has expired")
        );
        assert!(matches!(
            check("bob", &secret, 1, stored(None)),
            TokenOutcome::Bad(_)
        ));
        let (other, _) = generate().expect("token");
        assert!(matches!(
            check("alice", &other, 1, stored(None)),
            TokenOutcome::Bad(_)
        ));
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Ok(90 * 86_400));
        assert_eq!(parse_lifetime("12h"), Ok(12 * 3_600));
        assert_eq!(parse_lifetime("30m"), Ok(1_800));
        assert_eq!(parse_lifetime("45"), Ok(45));
        for bad in ["", "0d", "-1d", "3w", "d", "999999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn last_used_is_due_once_per_interval() {
        let l = LastUsed::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        assert!(l.due("a", t0));
        assert!(!l.due("a", t0 + Duration::from_secs(59)));
        assert!(l.due("a", t0 + Duration::from_secs(60)));
        assert!(l.due("b", t0));
        assert!(l.due("c", t0), "over capacity starts over");
    }
}
