//! credentials: passwords and HTTP Basic authentication, independent of storage.
//!
//! Owns password hashing (argon2id), verification of argon2 and bcrypt hashes,
//! parsing of htpasswd files and `Authorization: Basic` values, user name
//! rules, and the [`Authenticator`]: the cache of recent successful logins,
//! the dummy hash for unknown users, the cap on concurrent argon2 runs, and
//! the throttling of repeated failures.
//!
//! It must never store or look up users itself (the caller passes a lookup),
//! see HTTP types or choose status codes, sleep to slow an attacker down, or
//! log, print or put into an error message any password or hash.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

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
}

impl fmt::Display for CredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredError::Hash(e) => write!(f, "cannot hash password: {e}"),
            CredError::Random(e) => write!(f, "random number generator: {e}"),
            CredError::InvalidUsername(reason) => write!(f, "invalid user name: {reason}"),
            CredError::Htpasswd { line, reason } => write!(f, "htpasswd line {line}: {reason}"),
        }
    }
}

impl std::error::Error for CredError {}

fn random_bytes<const N: usize>() -> Result<[u8; N], CredError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CredError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Hashes `pw` with argon2id and the argon2 crate's default parameters
/// (m=19 MiB, t=2, p=1, the OWASP minimum) and a random 16-byte salt.
/// Returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash_password(pw: &str) -> Result<String, CredError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| CredError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredError::Hash(e.to_string()))
}

/// True when `pw` matches `hash`: an argon2 PHC string, or a bcrypt hash
/// (`$2y$`, `$2b$`, `$2a$`, as written by `htpasswd -B`). Any other or
/// malformed hash never matches.
pub fn verify_password(hash: &str, pw: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt::verify(pw, hash).unwrap_or(false);
    }
    if hash.starts_with("$argon2") {
        return match PasswordHash::new(hash) {
            Ok(parsed) => Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
    }
    false
}

/// A bcrypt hash in modular crypt format: `$2a$`, `$2b$` or `$2y$`, a
/// two-digit cost, then 53 characters of salt and hash.
fn is_bcrypt(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// Parses an htpasswd file into `(user, hash)` pairs, in file order.
/// Blank lines and lines starting with `#` are skipped. Only bcrypt hashes
/// are accepted (`htpasswd -B`); any other line is an error naming its line
/// number (and never quoting the hash).
pub fn parse_htpasswd(text: &str) -> Result<Vec<(String, String)>, CredError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |reason: String| CredError::Htpasswd { line, reason };
        let Some((user, hash)) = trimmed.split_once(':') else {
            return Err(err("expected user:hash".into()));
        };
        validate_username(user).map_err(|e| err(e.to_string()))?;
        if !is_bcrypt(hash.trim()) {
            return Err(err(format!(
                "the hash of user {user:?} is not bcrypt; only bcrypt hashes \
                 (created with `htpasswd -B`) can be imported"
            )));
        }
        if out.iter().any(|(u, _)| u == user) {
            return Err(err(format!("user {user:?} appears twice")));
        }
        out.push((user.to_string(), hash.trim().to_string()));
    }
    Ok(out)
}

/// Decodes an `Authorization` value `Basic <base64(user:password)>`.
/// The scheme is case-insensitive; padding is optional; the user name ends at
/// the first `:`. `None` when the value is not Basic, not base64, not UTF-8,
/// has no `:`, or has an empty user name (no user, no credentials).
pub fn parse_basic(header_value: &str) -> Option<(String, String)> {
    const B64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let (scheme, rest) = header_value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pw) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_string(), pw.to_string()))
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password is right.
    Ok,
    /// Unknown user or wrong password (indistinguishable on purpose).
    Bad,
    /// Too many recent failures for this user or address; try again later.
    Throttled { retry_after_secs: u64 },
    /// All argon2 slots stayed busy for too long; try again later.
    Busy,
}

/// Tunables of the [`Authenticator`]; `Limits::default()` is what `new` uses.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub cache_ttl: Duration,
    pub cache_entries: usize,
    pub failure_window: Duration,
    pub user_failures: usize,
    pub ip_failures: usize,
    /// Bound on the number of users and on the number of addresses tracked.
    pub failure_entries: usize,
    pub argon2_slots: usize,
    pub busy_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cache_ttl: Duration::from_secs(5 * 60),
            cache_entries: 4096,
            failure_window: Duration::from_secs(60),
            user_failures: 10,
            ip_failures: 30,
            failure_entries: 10_000,
            argon2_slots: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            busy_wait: Duration::from_secs(2),
        }
    }
}

type Key = [u8; 32];

struct CacheEntry {
    expires: Instant,
    /// blake3 of the stored hash the password was checked against.
    hash_fp: Key,
    /// Keyed hash of the user name, for [`Authenticator::forget`].
    user: Key,
}

/// Recent failure times of one user or address (at most `limit` kept).
#[derive(Default)]
struct Window(VecDeque<Instant>);

impl Window {
    fn prune(&mut self, now: Instant, window: Duration) {
        while self
            .0
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.0.pop_front();
        }
    }

    /// Seconds until the window holds fewer than `limit` failures, if it is full now.
    fn retry_after(&mut self, now: Instant, window: Duration, limit: usize) -> Option<u64> {
        self.prune(now, window);
        if self.0.len() < limit {
            return None;
        }
        let oldest = *self.0.front()?;
        let wait = window.saturating_sub(now.saturating_duration_since(oldest));
        Some(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    fn record(&mut self, now: Instant, limit: usize) {
        self.0.push_back(now);
        while self.0.len() > limit {
            self.0.pop_front();
        }
    }

    fn newest(&self) -> Option<Instant> {
        self.0.back().copied()
    }
}

/// Failure windows by key, bounded: when full, empty windows go first, then
/// the one whose newest failure is oldest.
struct FailureMap<K> {
    map: HashMap<K, Window>,
}

impl<K: std::hash::Hash + Eq + Clone> FailureMap<K> {
    fn new() -> Self {
        FailureMap {
            map: HashMap::new(),
        }
    }

    fn retry_after(
        &mut self,
        key: &K,
        now: Instant,
        window: Duration,
        limit: usize,
    ) -> Option<u64> {
        self.map.get_mut(key)?.retry_after(now, window, limit)
    }

    fn record(&mut self, key: K, now: Instant, window: Duration, limit: usize, cap: usize) {
        if !self.map.contains_key(&key) && self.map.len() >= cap {
            self.map.retain(|_, w| {
                w.prune(now, window);
                !w.0.is_empty()
            });
            if self.map.len() >= cap {
                let stalest = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.newest())
                    .map(|(k, _)| k.clone());
                if let Some(k) = stalest {
                    self.map.remove(&k);
                }
            }
        }
        self.map.entry(key).or_default().record(now, limit);
    }

    fn reset(&mut self, key: &K) {
        self.map.remove(key);
    }
}

struct Failures {
    users: FailureMap<Key>,
    ips: FailureMap<IpAddr>,
}

/// A counting semaphore: at most `n` argon2 runs at a time.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self, wait: Duration) -> Option<Slot<'_>> {
        let deadline = Instant::now() + wait;
        let mut free = lock(&self.free);
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *free -= 1;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks Basic credentials for every request, cheaply.
///
/// * A successful check is remembered for 5 minutes under a keyed blake3
///   hash of user and password (per-process random key), together with a
///   fingerprint of the stored hash: Docker resends credentials with every
///   request and pays argon2 only once; a changed or deleted password
///   invalidates the entry at once, since the caller's lookup is consulted
///   every time.
/// * Unknown users are checked against a dummy argon2 hash, so they cost the
///   same time as a wrong password.
/// * At most one argon2 run per CPU at a time; a caller that waits more than
///   2 s gets [`AuthOutcome::Busy`].
/// * 10 failures in 60 s for a user, or 30 for an address (IPv6: its /64),
///   give [`AuthOutcome::Throttled`] without running argon2 and without
///   sleeping. A success resets the user's count. Both limits are checked
///   only after the cache, so that someone failing from the same address
///   (a NAT, the same host) or hammering an account does not lock out a
///   session verified in the last minutes.
pub struct Authenticator {
    key: Key,
    /// Computed on first use, so start-up pays no argon2 run.
    dummy_hash: std::sync::OnceLock<String>,
    limits: Limits,
    cache: Mutex<HashMap<Key, CacheEntry>>,
    failures: Mutex<Failures>,
    slots: Slots,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The argon2 hash unknown users are checked against (made once, lazily).
    fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            let pw: String = random_bytes::<16>()
                .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
                .unwrap_or_else(|_| "soute-dummy-password".into());
            hash_password(&pw).unwrap_or_default()
        })
    }

    /// Draws the per-process key (the dummy hash is made on first use).
    pub fn new() -> Result<Authenticator, CredError> {
        Authenticator::with_limits(Limits::default())
    }

    pub(crate) fn with_limits(limits: Limits) -> Result<Authenticator, CredError> {
        let key = random_bytes::<32>()?;
        Ok(Authenticator {
            key,
            dummy_hash: std::sync::OnceLock::new(),
            slots: Slots::new(limits.argon2_slots),
            limits,
            cache: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failures {
                users: FailureMap::new(),
                ips: FailureMap::new(),
            }),
        })
    }

    fn user_key(&self, user: &str) -> Key {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"user\0");
        h.update(user.as_bytes());
        *h.finalize().as_bytes()
    }

    /// Keyed hash of user and password. The user's length goes first so that
    /// no two (user, password) pairs share an input, whatever bytes they hold.
    fn cache_key(&self, user: &str, pw: &str) -> Key {
        let mut h = blake3::Hasher::new_keyed(&self.key);
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
        let now = Instant::now();
        let ip = address_key(remote_ip);
        let user_key = self.user_key(user);
        let l = &self.limits;

        let stored = lookup(user);
        let cache_key = self.cache_key(user, pw);
        if let Some(stored) = &stored {
            let fp = *blake3::hash(stored.as_bytes()).as_bytes();
            let mut cache = lock(&self.cache);
            match cache.get(&cache_key) {
                Some(e) if e.expires > now && e.hash_fp == fp => return AuthOutcome::Ok,
                Some(_) => {
                    cache.remove(&cache_key);
                }
                None => {}
            }
        }

        // Limits apply only to checks the cache cannot answer: a login verified in
        // the last minutes stays valid even while others fail from its address.
        if let Some(secs) =
            lock(&self.failures)
                .ips
                .retry_after(&ip, now, l.failure_window, l.ip_failures)
        {
            return AuthOutcome::Throttled {
                retry_after_secs: secs,
            };
        }

        if let Some(secs) = lock(&self.failures).users.retry_after(
            &user_key,
            now,
            l.failure_window,
            l.user_failures,
        ) {
            return AuthOutcome::Throttled {
                retry_after_secs: secs,
            };
        }

        let ok = {
            let Some(_slot) = self.slots.acquire(l.busy_wait) else {
                return AuthOutcome::Busy;
            };
            match &stored {
                Some(hash) => verify_password(hash, pw),
                None => {
                    // Same work as for a real user, result ignored.
                    let _ = verify_password(self.dummy_hash(), pw);
                    false
                }
            }
        };

        let now = Instant::now();
        match (&stored, ok) {
            (Some(stored), true) => {
                lock(&self.failures).users.reset(&user_key);
                self.remember(cache_key, user_key, stored, now);
                AuthOutcome::Ok
            }
            _ => {
                let mut failures = lock(&self.failures);
                let cap = l.failure_entries;
                failures
                    .users
                    .record(user_key, now, l.failure_window, l.user_failures, cap);
                failures
                    .ips
                    .record(ip, now, l.failure_window, l.ip_failures, cap);
                AuthOutcome::Bad
            }
        }
    }

    fn remember(&self, cache_key: Key, user: Key, stored: &str, now: Instant) {
        let mut cache = lock(&self.cache);
        if !cache.contains_key(&cache_key) && cache.len() >= self.limits.cache_entries {
            cache.retain(|_, e| e.expires > now);
            if cache.len() >= self.limits.cache_entries {
                // Same TTL for all: the soonest to expire is the oldest.
                let oldest = cache.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(
            cache_key,
            CacheEntry {
                expires: now + self.limits.cache_ttl,
                hash_fp: *blake3::hash(stored.as_bytes()).as_bytes(),
                user,
            },
        );
    }

    /// Drops every cached success of `user` (after `user passwd` or `user
    /// del`; the stored-hash fingerprint already guards against both, this
    /// only frees the memory at once).
    pub fn forget(&self, user: &str) {
        let user = self.user_key(user);
        lock(&self.cache).retain(|_, e| e.user != user);
    }
}

/// The unit failures are counted per: an IPv4 address, or an IPv6 /64 (one
/// host usually owns a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Params, Version};
    use std::net::Ipv4Addr;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

    /// A valid argon2id PHC string with tiny parameters, for tests that only
    /// care about outcomes, not cost.
    fn cheap_hash(pw: &str) -> String {
        let params = Params::new(8, 1, 1, None).expect("params");
        let salt = SaltString::encode_b64(&random_bytes::<16>().expect("rand")).expect("salt");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(pw.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    fn auth(limits: Limits) -> Authenticator {
        Authenticator::with_limits(limits).expect("authenticator")
    }

    fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
        let start = Instant::now();
        let out = f();
        (out, start.elapsed())
    }

    #[test]
    fn argon2_round_trip_uses_defaults() {
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cret "));
        assert_ne!(h, hash_password("s3cret").expect("hash"), "salt is random");
        for garbage in ["", "$argon2id$nope", "plain", "$1$abc$def", "{SHA}abc="] {
            assert!(!verify_password(garbage, "s3cret"), "{garbage}");
        }
    }

    #[test]
    fn htpasswd_bcrypt_lines_import_and_verify() {
        let hash = bcrypt::hash("hunter2", 4).expect("bcrypt");
        let hash_2y = format!("$2y${}", &hash[4..]);
        let text =
            format!("# made by htpasswd -B\n\nalice:{hash}\r\n  \nbob@example.org:{hash_2y}\n");
        let users = parse_htpasswd(&text).expect("parse");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0], ("alice".to_string(), hash.clone()));
        assert_eq!(users[1].0, "bob@example.org");
        for (_, h) in &users {
            assert!(verify_password(h, "hunter2"));
            assert!(!verify_password(h, "hunter3"));
        }
        let hash_2a = format!("$2a${}", &hash[4..]);
        assert!(verify_password(&hash_2a, "hunter2"));
    }

    #[test]
    fn htpasswd_rejects_what_it_cannot_import_by_line_without_quoting_hashes() {
        let good = bcrypt::hash("x", 4).expect("bcrypt");
        let cases: &[(&str, usize, &str)] = &[
            ("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", 1, "not bcrypt"),
            (
                "#c\ndave:$apr1$abcdefgh$0123456789abcdefghijkl",
                2,
                "not bcrypt",
            ),
            ("erin:plaintextpassword", 1, "not bcrypt"),
            ("no colon here", 1, "expected user:hash"),
            ("-frank:GOOD", 1, "starts with '-'"),
            ("gr ace:GOOD", 1, "only letters"),
            ("alice:GOOD\nalice:GOOD", 2, "appears twice"),
        ];
        for (text, line, needle) in cases {
            let text = text.replace("GOOD", &good);
            let err = parse_htpasswd(&text).expect_err(&text);
            let msg = err.to_string();
            assert!(
                matches!(err, CredError::Htpasswd { line: l, .. } if l == *line),
                "{text}: {msg}"
            );
            assert!(msg.contains(needle), "{text}: {msg}");
            assert!(!msg.contains(&good) && !msg.contains("W6ph5") && !msg.contains("apr1"));
            assert!(!msg.contains("plaintextpassword"));
        }
        assert_eq!(
            parse_htpasswd("# only comments\n\n").expect("empty"),
            vec![]
        );
    }

    #[test]
    fn parse_basic_cases() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("Basic YWxpY2U6czNjcmV0", Some(("alice", "s3cret"))),
            ("basic YWxpY2U6czNjcmV0", Some(("alice", "s3cret"))),
            ("BASIC   YWxpY2U6czNjcmV0  ", Some(("alice", "s3cret"))),
            // password containing ':' splits at the first one
            ("Basic YWxpY2U6YTpiOmM=", Some(("alice", "a:b:c"))),
            // missing padding is tolerated
            ("Basic YWxpY2U6YTpiOmM", Some(("alice", "a:b:c"))),
            // empty password is a (wrong) credential, empty user is none
            ("Basic YWxpY2U6", Some(("alice", ""))),
            ("Basic Og==", None),
            ("Basic bm9jb2xvbg==", None), // "nocolon"
            ("Basic !!!notbase64", None),
            ("Basic /w==", None), // 0xff: not UTF-8
            ("Basic gDpw", None), // 0x80 ':' 'p': not UTF-8
            ("Bearer YWxpY2U6czNjcmV0", None),
            ("BasicYWxpY2U6czNjcmV0", None),
            ("Basic", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = parse_basic(input);
            let want = want.map(|(u, p)| (u.to_string(), p.to_string()));
            assert_eq!(got, want, "{input:?}");
        }
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
    fn cache_hit_skips_argon2_and_a_changed_hash_invalidates_it() {
        let a = auth(Limits::default());
        let stored = hash_password("pw").expect("hash");
        let (first, slow) = timed(|| a.verify("alice", "pw", IP, |_| Some(stored.clone())));
        let (second, fast) = timed(|| a.verify("alice", "pw", IP, |_| Some(stored.clone())));
        assert_eq!((first, second), (AuthOutcome::Ok, AuthOutcome::Ok));
        assert!(
            fast * 50 < slow,
            "cache hit {fast:?} not 50x faster than {slow:?}"
        );
        // Wrong password is never served from the cache.
        assert_eq!(
            a.verify("alice", "nope", IP, |_| Some(stored.clone())),
            AuthOutcome::Bad
        );
        // Password changed: the old password fails at once.
        let changed = cheap_hash("new");
        assert_eq!(
            a.verify("alice", "pw", IP, |_| Some(changed.clone())),
            AuthOutcome::Bad
        );
        assert_eq!(
            a.verify("alice", "new", IP, |_| Some(changed.clone())),
            AuthOutcome::Ok
        );
        // User deleted: fails at once.
        assert_eq!(a.verify("alice", "new", IP, |_| None), AuthOutcome::Bad);
        // Another user with the same password does not share the entry.
        assert_eq!(
            a.verify("bob", "new", IP, |_| Some(stored.clone())),
            AuthOutcome::Bad
        );
    }

    #[test]
    fn forget_and_the_cache_bound() {
        let a = auth(Limits {
            cache_entries: 3,
            ..Limits::default()
        });
        let stored = cheap_hash("pw");
        for user in ["u1", "u2", "u3", "u4", "u5"] {
            assert_eq!(
                a.verify(user, "pw", IP, |_| Some(stored.clone())),
                AuthOutcome::Ok
            );
        }
        assert_eq!(lock(&a.cache).len(), 3);
        a.forget("u5");
        assert_eq!(lock(&a.cache).len(), 2);
        a.forget("u1"); // already evicted: no effect
        assert_eq!(lock(&a.cache).len(), 2);
    }

    #[test]
    fn unknown_user_costs_about_as_much_as_a_wrong_password() {
        let a = auth(Limits::default());
        let stored = hash_password("right").expect("hash");
        let mut known = Duration::MAX;
        let mut unknown = Duration::MAX;
        for _ in 0..3 {
            let (r, t) = timed(|| a.verify("alice", "wrong", IP, |_| Some(stored.clone())));
            assert_eq!(r, AuthOutcome::Bad);
            known = known.min(t);
            let (r, t) = timed(|| a.verify("mallory", "wrong", IP, |_| None));
            assert_eq!(r, AuthOutcome::Bad);
            unknown = unknown.min(t);
        }
        assert!(
            unknown * 3 > known && known * 3 > unknown,
            "known {known:?} vs unknown {unknown:?}"
        );
    }

    #[test]
    fn user_throttling_counts_failures_and_a_success_resets_it() {
        let a = auth(Limits::default());
        let stored = cheap_hash("pw");
        let look = |_: &str| Some(stored.clone());
        // A success in between resets the count.
        for _ in 0..9 {
            assert_eq!(a.verify("alice", "x", IP, look), AuthOutcome::Bad);
        }
        assert_eq!(a.verify("alice", "pw", IP, look), AuthOutcome::Ok);
        a.forget("alice");
        for _ in 0..9 {
            assert_eq!(a.verify("alice", "x", IP, look), AuthOutcome::Bad);
        }
        // The tenth failure in a row throttles, even the right password
        // (once it is no longer cached).
        assert_eq!(a.verify("alice", "x", IP, look), AuthOutcome::Bad);
        for pw in ["x", "pw"] {
            match a.verify("alice", pw, IP, look) {
                AuthOutcome::Throttled { retry_after_secs } => {
                    assert!((1..=60).contains(&retry_after_secs))
                }
                other => panic!("expected Throttled, got {other:?}"),
            }
        }
        // Another user from the same address is not affected.
        assert_eq!(a.verify("bob", "pw", IP, look), AuthOutcome::Ok);
    }

    #[test]
    fn a_cached_session_survives_someone_else_hammering_the_account() {
        let a = auth(Limits::default());
        let stored = cheap_hash("pw");
        let look = |_: &str| Some(stored.clone());
        let home = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(a.verify("alice", "pw", home, look), AuthOutcome::Ok);
        for _ in 0..10 {
            a.verify("alice", "guess", IP, look);
        }
        assert!(matches!(
            a.verify("alice", "guess", IP, look),
            AuthOutcome::Throttled { .. }
        ));
        assert_eq!(a.verify("alice", "pw", home, look), AuthOutcome::Ok);
    }

    #[test]
    fn address_throttling_groups_ipv6_by_64() {
        let a = auth(Limits {
            ip_failures: 5,
            ..Limits::default()
        });
        let stored = cheap_hash("pw");
        let look = |_: &str| Some(stored.clone());
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for i in 0..5 {
            let from = ip(&format!("2001:db8:1:2::{i}"));
            assert_eq!(
                a.verify(&format!("u{i}"), "x", from, look),
                AuthOutcome::Bad
            );
        }
        assert!(matches!(
            a.verify("fresh", "pw", ip("2001:db8:1:2:ffff::1"), look),
            AuthOutcome::Throttled { .. }
        ));
        assert_eq!(
            a.verify("fresh", "pw", ip("2001:db8:1:3::1"), look),
            AuthOutcome::Ok
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
    }

    #[test]
    fn failure_maps_stay_bounded() {
        let mut m: FailureMap<u32> = FailureMap::new();
        let now = Instant::now();
        let w = Duration::from_secs(60);
        for k in 0..100 {
            m.record(k, now + Duration::from_millis(k.into()), w, 10, 16);
        }
        assert_eq!(m.map.len(), 16);
        assert!(m.map.contains_key(&99) && !m.map.contains_key(&0));
    }

    #[test]
    fn busy_when_all_argon2_slots_stay_taken() {
        let a = auth(Limits {
            argon2_slots: 1,
            busy_wait: Duration::from_millis(50),
            ..Limits::default()
        });
        let stored = cheap_hash("pw");
        let held = a.slots.acquire(Duration::ZERO).expect("slot");
        assert_eq!(
            a.verify("alice", "pw", IP, |_| Some(stored.clone())),
            AuthOutcome::Busy
        );
        drop(held);
        assert_eq!(
            a.verify("alice", "pw", IP, |_| Some(stored.clone())),
            AuthOutcome::Ok
        );
    }

    #[test]
    fn authenticator_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Authenticator>();
    }
}
