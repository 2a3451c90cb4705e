//! cache: the 5-minute memory of successful verifications.
//!
//! Docker resends Basic credentials with every request; a login verified in
//! the last minutes is answered from here without argon2. Entries are keyed
//! by a keyed hash of user and password (the key is per process, see
//! [`Secret`](super::Secret)) and hold a fingerprint of the stored hash they
//! were checked against, so a changed or deleted password stops matching at
//! once. The map is bounded ([`VerifiedCache::new`]'s `capacity`).
//!
//! It must never hold a password or a stored hash (only keyed digests),
//! answer for a stored hash other than the one verified, or grow past its
//! capacity.

use super::{lock, Key};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Entry {
    expires: Instant,
    /// blake3 of the stored hash the password was checked against.
    hash_fp: Key,
    /// Keyed hash of the user name, for [`VerifiedCache::forget_user`].
    user: Key,
}

/// Successful verifications, bounded in number and age.
pub struct VerifiedCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// The fingerprint a cache entry keeps of a stored hash.
pub fn fingerprint(stored: &str) -> Key {
    *blake3::hash(stored.as_bytes()).as_bytes()
}

impl VerifiedCache {
    pub fn new(ttl: Duration, capacity: usize) -> VerifiedCache {
        VerifiedCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// True when `login` (keyed hash of user and password) was verified
    /// against `stored` less than the TTL ago. A stale or mismatched entry
    /// is dropped.
    pub fn hit(&self, login: &Key, stored: &str, now: Instant) -> bool {
        let fp = fingerprint(stored);
        let mut entries = lock(&self.entries);
        match entries.get(login) {
            Some(e) if e.expires > now && e.hash_fp == fp => true,
            Some(_) => {
                entries.remove(login);
                false
            }
            None => false,
        }
    }

    /// Remembers that `login` of `user` matched `stored`. When full, expired
    /// entries go first, then the one closest to expiry (the oldest).
    pub fn remember(&self, login: Key, user: Key, stored: &str, now: Instant) {
        let mut entries = lock(&self.entries);
        if !entries.contains_key(&login) && entries.len() >= self.capacity {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(
            login,
            Entry {
                expires: now + self.ttl,
                hash_fp: fingerprint(stored),
                user,
            },
        );
    }

    /// Drops every entry of `user` (keyed hash of the name).
    pub fn forget_user(&self, user: &Key) {
        lock(&self.entries).retain(|_, e| e.user != *user);
    }

    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn hits_only_for_the_same_stored_hash_and_within_the_ttl() {
        let cache = VerifiedCache::new(Duration::from_secs(300), 10);
        let now = Instant::now();
        cache.remember(key(1), key(100), "hash-a", now);
        assert!(cache.hit(&key(1), "hash-a", now + Duration::from_secs(299)));
        assert!(!cache.hit(&key(2), "hash-a", now), "another login");
        assert!(!cache.hit(&key(1), "hash-b", now), "password changed");
        assert!(cache.is_empty(), "a mismatched entry is dropped");
        cache.remember(key(1), key(100), "hash-a", now);
        assert!(!cache.hit(&key(1), "hash-a", now + Duration::from_secs(300)));
        assert!(cache.is_empty(), "an expired entry is dropped");
    }

    #[test]
    fn bounded_and_forgets_by_user() {
        let cache = VerifiedCache::new(Duration::from_secs(300), 3);
        let now = Instant::now();
        for n in 1..=5u8 {
            cache.remember(
                key(n),
                key(100 + n),
                "h",
                now + Duration::from_millis(n.into()),
            );
        }
        assert_eq!(cache.len(), 3);
        assert!(!cache.hit(&key(1), "h", now) && cache.hit(&key(5), "h", now));
        cache.forget_user(&key(105));
        assert_eq!(cache.len(), 2);
        cache.forget_user(&key(101)); // already evicted: no effect
        assert_eq!(cache.len(), 2);
    }
}
