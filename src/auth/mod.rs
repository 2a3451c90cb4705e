//! auth: who is asking, and whether their password is right, at a bounded
//! cost.
//!
//! Owns identities ([`Identity`]), user name rules, password hashing and
//! verification ([`password`], [`htpasswd`]), the [`Authenticator`] (the
//! 5-minute [`cache`] of verified logins, the back-off of [`throttle`], and
//! the fixed [`pool`] of verifier threads with preallocated argon2 memory),
//! API [`tokens`] (checked with one sha256, never argon2), repository globs
//! ([`pattern`]), the words of rules and scopes ([`rule`]), the one place
//! permissions are decided ([`access`]) and the log line when the registry
//! changes between open and closed.
//!
//! Memory for password checking is constant: `threads` x 7 MiB of argon2
//! blocks (19 MiB for hashes older soutes wrote), a queue of `queue` waiting checks, a cache of 4,096 logins and
//! two throttle maps of 10,000 records each.
//!
//! It must never store or look users up itself (callers pass a lookup), see
//! HTTP types or choose status codes, sleep to slow a client down, run
//! argon2 or bcrypt outside its pool in the server, or log, print or put
//! into an error any password, hash or token secret.

pub mod access;
pub mod bearer;
pub mod cache;
pub mod htpasswd;
pub mod password;
pub mod pattern;
pub mod pool;
pub mod rule;
pub mod throttle;
pub mod tokens;

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cache::VerifiedCache;
use password::Verdict;
use pool::{Check, Submitted, VerifyPool};
use throttle::{InFlight, Throttle};

pub use access::{Action, Actions, Decision, Policy, Reason, Rule, Scope, Who};
pub use htpasswd::parse_htpasswd;
pub use password::hash_password;
pub use pattern::Pattern;

/// Who a request comes from, once its credentials were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No credentials.
    Anonymous,
    /// A user whose password was verified (now or in the last minutes).
    User(String),
    /// A user signed in with one of its API tokens (`token` is its name):
    /// limited to the token's scopes.
    Token {
        user: String,
        token: String,
        scopes: Vec<Scope>,
    },
    /// A user signed in with a bearer token of the token service
    /// (`--auth token`): limited to the access the token was granted and,
    /// when it was issued on an API token, to that token's scopes too.
    Bearer {
        user: String,
        scopes: Vec<Scope>,
        api_token_scopes: Option<Vec<Scope>>,
    },
}

impl Identity {
    /// The user behind the identity (`None` for anonymous).
    pub fn user(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User(u)
            | Identity::Token { user: u, .. }
            | Identity::Bearer { user: u, .. } => Some(u),
        }
    }
}

/// What can go wrong with credentials. Messages never contain a password or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredError {
    /// Hashing a password failed.
    Hash(String),
    /// The operating system's random number generator failed.
    Random(String),
    /// A user name breaks the rules of [`validate_username`].
    InvalidUsername(String),
    /// An htpasswd file line cannot be imported (1-based line number).
    Htpasswd { line: usize, reason: String },
    /// The verifier threads could not start.
    Pool(String),
}

impl fmt::Display for CredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredError::Hash(e) => write!(f, "cannot hash password: {e}"),
            CredError::Random(e) => write!(f, "random number generator: {e}"),
            CredError::InvalidUsername(reason) => write!(f, "invalid user name: {reason}"),
            CredError::Htpasswd { line, reason } => write!(f, "htpasswd line {line}: {reason}"),
            CredError::Pool(e) => write!(f, "starting the password verifier threads: {e}"),
        }
    }
}

impl std::error::Error for CredError {}

/// A 32-byte digest or key.
pub type Key = [u8; 32];

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], CredError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CredError::Random(e.to_string()))?;
    Ok(bytes)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// User names: 1 to 64 characters from `A-Z a-z 0-9 . _ @ -`, not starting with `-`.
pub fn validate_username(name: &str) -> Result<(), CredError> {
    let bad = |reason: &str| Err(CredError::InvalidUsername(reason.to_string()));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if name.starts_with('-') {
        return bad("it starts with '-'");
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'@' | b'-'))
    {
        return bad("only letters, digits and . _ @ - are allowed");
    }
    Ok(())
}

/// The result of [`Authenticator::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password is right (a login verified in the last minutes: from the cache).
    Ok(Identity),
    /// The password is right, verified now by argon2 or bcrypt (what the
    /// audit log records as a login).
    Verified(Identity),
    /// Unknown user or wrong password (indistinguishable on purpose).
    Bad,
    /// Too many recent failures for this user from this address, or from
    /// this address; try again later.
    Throttled { retry_after_secs: u64 },
    /// The verifier queue is full; try again later.
    Busy { retry_after_secs: u64 },
}

/// Tunables of the [`Authenticator`]; `Limits::default()` is what the server
/// uses, with `threads` and `queue` from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub cache_ttl: Duration,
    pub cache_entries: usize,
    pub throttle: throttle::Limits,
    /// Verifier threads, each holding 7 MiB of argon2 blocks (19 MiB once
    /// it checked an older hash).
    pub threads: usize,
    /// Checks that may wait for a verifier thread; more are refused.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cache_ttl: Duration::from_secs(5 * 60),
            cache_entries: 4096,
            throttle: throttle::Limits::default(),
            threads: default_threads(),
            queue: 32,
        }
    }
}

/// Checks one address may have queued or running at once: a quarter of the
/// queue (8 of 32), so that at least four addresses share it.
pub fn per_address(queue: usize) -> usize {
    (queue / 4).max(1)
}

/// The number of CPUs, at least 1.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Closed/open as last seen by [`Authenticator::observe_closed`].
const STATE_UNKNOWN: u8 = 0;
const STATE_OPEN: u8 = 1;
const STATE_CLOSED: u8 = 2;

/// Checks Basic credentials for every request, cheaply and in bounded memory.
///
/// In order: the stored hash is looked up (every time, so `soute user
/// passwd|del` from another process apply at once); a login verified
/// against that same hash in the last 5 minutes is accepted from the cache
/// and is never throttled; otherwise a (user, address) pair or an address
/// backing off is refused without any hashing; otherwise the check runs on
/// the verifier pool (unknown users cost the same argon2 run), or is
/// refused when its address already has a quarter of the queue or the
/// queue is full.
pub struct Authenticator {
    secret: Key,
    limits: Limits,
    cache: VerifiedCache,
    throttle: Throttle,
    in_flight: InFlight,
    pool: VerifyPool,
    state: AtomicU8,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Draws the per-process secret and starts the verifier threads.
    pub fn new(limits: Limits) -> Result<Authenticator, CredError> {
        let secret = random_bytes::<32>()?;
        let pool = VerifyPool::start(limits.threads, limits.queue, random_bytes::<16>()?)
            .map_err(|e| CredError::Pool(e.to_string()))?;
        Ok(Authenticator {
            secret,
            cache: VerifiedCache::new(limits.cache_ttl, limits.cache_entries),
            throttle: Throttle::new(limits.throttle.clone()),
            in_flight: InFlight::new(per_address(limits.queue)),
            pool,
            limits,
            state: AtomicU8::new(STATE_UNKNOWN),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn user_key(&self, user: &str) -> Key {
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        h.update(b"user\0");
        h.update(user.as_bytes());
        *h.finalize().as_bytes()
    }

    /// Keyed hash of user and password. The user's length goes first so that
    /// no two (user, password) pairs share an input, whatever bytes they hold.
    fn login_key(&self, user: &str, pw: &str) -> Key {
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        h.update(&(user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(b"\0");
        h.update(pw.as_bytes());
        *h.finalize().as_bytes()
    }

    /// Checks `pw` for `user` connecting from `remote_ip`. `lookup` returns
    /// the user's stored hash, or `None` for an unknown user; it is called
    /// once per verification (also on cache hits), so it must be cheap.
    pub fn verify(
        &self,
        user: &str,
        pw: &str,
        remote_ip: IpAddr,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> AuthOutcome {
        self.verify_with_decoy(user, pw, remote_ip, lookup, || None)
    }

    /// [`Authenticator::verify`]; for an unknown user the check costs what
    /// checking `decoy()` (a real user's stored hash) costs, so a failed
    /// login does not tell whether the name exists, whichever argon2
    /// parameters the users' hashes have.
    pub fn verify_with_decoy(
        &self,
        user: &str,
        pw: &str,
        remote_ip: IpAddr,
        lookup: impl FnOnce(&str) -> Option<String>,
        decoy: impl FnOnce() -> Option<String>,
    ) -> AuthOutcome {
        let now = Instant::now();
        let stored = lookup(user);
        let login = self.login_key(user, pw);
        if let Some(stored) = &stored {
            if self.cache.hit(&login, stored, now) {
                return AuthOutcome::Ok(Identity::User(user.to_string()));
            }
        }
        let user_key = self.user_key(user);
        if let Some(secs) = self.throttle.retry_after(&user_key, remote_ip, now) {
            return AuthOutcome::Throttled {
                retry_after_secs: secs,
            };
        }
        let check = match &stored {
            Some(hash) => Check::Stored {
                hash: hash.clone(),
                password: pw.to_string(),
            },
            None => Check::Unknown {
                password: pw.to_string(),
                like: decoy(),
            },
        };
        let Some(_place) = self.in_flight.enter(remote_ip) else {
            return AuthOutcome::Busy {
                retry_after_secs: 1,
            };
        };
        let verdict = match self.pool.check(check) {
            Submitted::Done(verdict) => verdict,
            Submitted::Full => {
                return AuthOutcome::Busy {
                    retry_after_secs: 1,
                }
            }
        };
        let now = Instant::now();
        match (&stored, verdict) {
            (Some(stored), Verdict::Match) => {
                self.throttle.succeeded(&user_key, remote_ip);
                self.cache.remember(login, user_key, stored, now);
                AuthOutcome::Verified(Identity::User(user.to_string()))
            }
            (Some(_), Verdict::Unusable) => {
                let shown: String = user.chars().take(64).collect();
                log::error!(
                    "the stored password hash of user {shown:?} cannot be checked \
                     (unknown scheme, or argon2 parameters above m=19456,t=*,p=*); \
                     set it again with `soute user passwd`"
                );
                self.throttle.failed(&user_key, remote_ip, now);
                AuthOutcome::Bad
            }
            _ => {
                self.throttle.failed(&user_key, remote_ip, now);
                AuthOutcome::Bad
            }
        }
    }

    /// Drops every cached success of `user` (after `user passwd` or `user
    /// del`; the stored-hash fingerprint already guards against both, this
    /// only frees the memory at once).
    pub fn forget(&self, user: &str) {
        self.cache.forget_user(&self.user_key(user));
    }

    /// Takes note of whether the registry needs credentials (`closed`) and
    /// logs when that changed since the last call. Returns `closed`.
    pub fn observe_closed(&self, closed: bool) -> bool {
        let now = if closed { STATE_CLOSED } else { STATE_OPEN };
        let before = self.state.swap(now, Ordering::AcqRel);
        match (before, now) {
            (STATE_OPEN, STATE_CLOSED) => {
                log::warn!("the registry is now CLOSED: every request needs credentials")
            }
            (STATE_CLOSED, STATE_OPEN) => log::warn!(
                "the registry is now OPEN: anyone who can reach it may read, push and delete"
            ),
            _ => {}
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::password::cheap_hash;
    use super::*;
    use std::net::Ipv4Addr;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const OTHER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

    fn auth(limits: Limits) -> Authenticator {
        Authenticator::new(limits).expect("authenticator")
    }

    /// alice signed in from the login cache.
    fn alice() -> AuthOutcome {
        AuthOutcome::Ok(Identity::User("alice".into()))
    }

    /// alice's password verified by the pool.
    fn alice_verified() -> AuthOutcome {
        AuthOutcome::Verified(Identity::User("alice".into()))
    }

    #[test]
    fn a_cached_login_skips_the_pool_and_a_changed_hash_invalidates_it() {
        let a = auth(Limits::default());
        let stored = cheap_hash("pw");
        assert_eq!(
            a.verify("alice", "pw", IP, |_| Some(stored.clone())),
            alice_verified()
        );
        assert_eq!(a.cache.len(), 1);
        assert_eq!(
            a.verify("alice", "pw", IP, |_| Some(stored.clone())),
            alice()
        );
        // Wrong password is never served from the cache.
        let look = |_: &str| Some(stored.clone());
        assert_eq!(a.verify("alice", "nope", IP, look), AuthOutcome::Bad);
        // Password changed: the old password fails at once.
        let changed = cheap_hash("new");
        assert_eq!(
            a.verify("alice", "pw", IP, |_| Some(changed.clone())),
            AuthOutcome::Bad
        );
        assert_eq!(
            a.verify("alice", "new", IP, |_| Some(changed.clone())),
            alice_verified()
        );
        // User deleted: fails at once.
        assert_eq!(a.verify("alice", "new", IP, |_| None), AuthOutcome::Bad);
        // Another user with the same password does not share the entry.
        assert_eq!(
            a.verify("bob", "new", IP, |_| Some(stored.clone())),
            AuthOutcome::Bad
        );
        a.forget("alice");
        assert_eq!(a.cache.len(), 0);
    }

    #[test]
    fn unknown_user_costs_about_as_much_as_a_wrong_password() {
        let a = auth(Limits::default());
        let stored = hash_password("right").expect("hash");
        let timed = |f: &dyn Fn() -> AuthOutcome| {
            let start = Instant::now();
            let out = f();
            (out, start.elapsed())
        };
        let mut known = Duration::MAX;
        let mut unknown = Duration::MAX;
        for _ in 0..3 {
            let (r, t) = timed(&|| a.verify("alice", "wrong", IP, |_| Some(stored.clone())));
            assert_eq!(r, AuthOutcome::Bad);
            known = known.min(t);
            let (r, t) = timed(&|| a.verify("mallory", "wrong", IP, |_| None));
            assert_eq!(r, AuthOutcome::Bad);
            unknown = unknown.min(t);
        }
        assert!(
            unknown * 3 > known && known * 3 > unknown,
            "known {known:?} vs unknown {unknown:?}"
        );
    }

    #[test]
    fn failures_throttle_the_pair_not_the_user_and_cached_logins_pass() {
        let a = auth(Limits::default());
        let stored = cheap_hash("pw");
        let look = |_: &str| Some(stored.clone());
        let home = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(a.verify("alice", "pw", home, look), alice_verified());
        for _ in 0..10 {
            assert_eq!(a.verify("alice", "guess", IP, look), AuthOutcome::Bad);
        }
        let throttled = AuthOutcome::Throttled {
            retry_after_secs: 1,
        };
        assert_eq!(a.verify("alice", "guess", IP, look), throttled);
        // The cached login passes, from anywhere, the attacking address too.
        assert_eq!(a.verify("alice", "pw", home, look), alice());
        assert_eq!(a.verify("alice", "pw", IP, look), alice());
        // Uncached, the right password is refused from the attacking
        // address only; from another address it signs in.
        a.forget("alice");
        assert_eq!(a.verify("alice", "pw", IP, look), throttled);
        assert_eq!(a.verify("alice", "pw", OTHER_IP, look), alice_verified());
        // Another user from the attacking address is not affected.
        assert_eq!(
            a.verify("bob", "pw", IP, look),
            AuthOutcome::Verified(Identity::User("bob".into()))
        );
    }

    #[test]
    fn state_changes_are_noted() {
        let a = auth(Limits::default());
        assert!(!a.observe_closed(false));
        assert!(a.observe_closed(true));
        assert_eq!(a.state.load(Ordering::Acquire), STATE_CLOSED);
        assert!(!a.observe_closed(false));
        assert_eq!(a.state.load(Ordering::Acquire), STATE_OPEN);
    }

    #[test]
    fn username_rules() {
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        let cases: &[(&str, bool)] = &[
            ("alice", true),
            ("a", true),
            (&long, true),
            ("bob.smith_2@example-corp.org", true),
            ("x-", true),
            ("", false),
            (&too_long, false),
            ("-alice", false),
            ("al ice", false),
            ("al:ice", false),
            ("álice", false),
            ("alice\0", false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_username(name).is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn authenticator_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Authenticator>();
    }
}
