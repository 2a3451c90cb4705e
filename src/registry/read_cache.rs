//! The manifest read cache: (repository, tag or digest) -> (digest, media
//! type, exact bytes) of the manifests GET and HEAD served last, so a hot
//! manifest costs one tiny SQLite read (the content generation) instead of
//! three lookups and a copy of the row.
//!
//! Validity: every entry is stamped with the content generation
//! (`db::content`, migration 0014) read in the same read transaction as its
//! rows, and is served only to a lookup that read that same generation after
//! it started. Triggers bump the generation on every write to a tag, a
//! manifest or a repository, by any process (`soute tag rollback`, `soute gc`
//! included), so after a tag moves or is deleted no lookup that starts later
//! can see an entry from before. A newer generation empties the cache.
//!
//! Bounds (fixed): at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] of
//! bodies, keys and media types in all; a manifest over [`MAX_ENTRY_BYTES`]
//! is never cached. Beyond, the oldest entries go first.
//!
//! It must never serve an entry stamped with another generation than the
//! caller read, nor grow past its bounds, nor hold its lock while SQLite runs.

use crate::oci::Digest;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock};

/// The most entries held.
pub const MAX_ENTRIES: usize = 1024;
/// The most bytes held (bodies, keys and media types).
pub const MAX_BYTES: usize = 4 << 20;
/// Larger manifests are read from SQLite every time.
pub const MAX_ENTRY_BYTES: usize = 64 << 10;

/// A cached manifest.
pub struct Entry {
    pub digest: Digest,
    pub media_type: String,
    pub body: Arc<[u8]>,
}

impl Entry {
    fn cost(&self, key: &str) -> usize {
        self.body.len() + self.media_type.len() + 2 * key.len() + 160
    }
}

#[derive(Default)]
struct Inner {
    generation: i64,
    map: HashMap<String, Arc<Entry>>,
    /// Insertion order, for eviction.
    order: VecDeque<String>,
    bytes: usize,
}

#[derive(Default)]
pub struct ReadCache {
    inner: RwLock<Inner>,
}

/// The key of `repo` and a reference (tags and digests cannot collide: a
/// digest has a `:`, a tag never does).
pub fn key(repo: &str, reference: &str) -> String {
    let mut k = String::with_capacity(repo.len() + 1 + reference.len());
    k.push_str(repo);
    k.push('@');
    k.push_str(reference);
    k
}

impl ReadCache {
    /// The entry for `key`, if it was filled at `generation`.
    pub fn get(&self, generation: i64, key: &str) -> Option<Arc<Entry>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if inner.generation != generation {
            return None;
        }
        inner.map.get(key).cloned()
    }

    /// Remembers `entry`, read at `generation`. An entry older than what the
    /// cache holds is dropped; a newer generation empties the cache first.
    pub fn insert(&self, generation: i64, key: String, entry: Arc<Entry>) {
        let cost = entry.cost(&key);
        if entry.body.len() > MAX_ENTRY_BYTES || cost > MAX_BYTES {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if generation < inner.generation {
            return;
        }
        if generation > inner.generation {
            *inner = Inner {
                generation,
                ..Inner::default()
            };
        }
        if let Some(old) = inner.map.remove(&key) {
            inner.bytes -= old.cost(&key);
            inner.order.retain(|k| k != &key);
        }
        while inner.map.len() >= MAX_ENTRIES || inner.bytes + cost > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.cost(&oldest);
            }
        }
        inner.bytes += cost;
        inner.order.push_back(key.clone());
        inner.map.insert(key, entry);
    }

    /// (entries, bytes) held.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        (inner.map.len(), inner.bytes)
    }
}

/// The most users whose stored hash is remembered.
pub const MAX_USERS: usize = 1024;

/// Stored password hashes by user name (`None`: no such user), valid while
/// the access generation they were read at is the request's (triggers bump
/// it on every user change, password changes included). Saves a Basic
/// request its user lookup; the password is still checked (`auth`'s login
/// cache or the verifier pool) every time. At most [`MAX_USERS`] names:
/// when full it is emptied.
#[derive(Default)]
pub struct UserHashes {
    inner: RwLock<(i64, HashMap<String, Option<String>>)>,
}

impl UserHashes {
    /// The hash remembered for `user` at `generation`: `Some(None)` when
    /// the user did not exist then; `None` when not remembered.
    pub fn get(&self, generation: i64, user: &str) -> Option<Option<String>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if inner.0 != generation {
            return None;
        }
        inner.1.get(user).cloned()
    }

    /// Remembers `user`'s hash, read after `generation` was.
    pub fn insert(&self, generation: i64, user: &str, hash: Option<String>) {
        if user.len() > 256 {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if generation < inner.0 {
            return;
        }
        if generation > inner.0 || inner.1.len() >= MAX_USERS {
            *inner = (generation, HashMap::new());
        }
        inner.1.insert(user.to_string(), hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Arc<Entry> {
        Arc::new(Entry {
            digest: Digest::parse(&format!("sha256:{}", "a".repeat(64))).expect("digest"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            body: vec![7u8; n].into(),
        })
    }

    #[test]
    fn serves_only_the_generation_it_was_filled_at() {
        let c = ReadCache::default();
        c.insert(5, key("a/b", "latest"), entry(10));
        assert!(c.get(5, "a/b@latest").is_some());
        assert!(c.get(6, "a/b@latest").is_none());
        assert!(c.get(4, "a/b@latest").is_none());
        // An older fill after a newer one is dropped; a newer one empties.
        c.insert(4, key("a/b", "old"), entry(10));
        assert!(c.get(4, "a/b@old").is_none() && c.get(5, "a/b@old").is_none());
        c.insert(7, key("a/b", "new"), entry(10));
        assert_eq!(c.size().0, 1);
        assert!(c.get(7, "a/b@latest").is_none());
    }

    #[test]
    fn user_hashes_are_kept_per_access_generation_and_bounded() {
        let h = UserHashes::default();
        h.insert(3, "alice", Some("hash-a".into()));
        h.insert(3, "nobody", None);
        assert_eq!(h.get(3, "alice"), Some(Some("hash-a".into())));
        assert_eq!(h.get(3, "nobody"), Some(None));
        assert_eq!(h.get(4, "alice"), None);
        h.insert(2, "bob", Some("old".into()));
        assert_eq!(h.get(2, "bob"), None);
        for i in 0..3 * MAX_USERS {
            h.insert(3, &format!("u{i}"), None);
        }
        assert!(h.inner.read().expect("lock").1.len() <= MAX_USERS);
    }

    #[test]
    fn stays_within_its_bounds() {
        let c = ReadCache::default();
        for i in 0..5000 {
            c.insert(1, key("r", &format!("t{i}")), entry(100));
        }
        let (n, bytes) = c.size();
        assert!(n <= MAX_ENTRIES && bytes <= MAX_BYTES, "{n} {bytes}");
        assert!(c.get(1, "r@t4999").is_some() && c.get(1, "r@t0").is_none());
        for i in 0..200 {
            c.insert(1, key("r", &format!("big{i}")), entry(MAX_ENTRY_BYTES));
        }
        let (n, bytes) = c.size();
        assert!(n <= MAX_ENTRIES && bytes <= MAX_BYTES, "{n} {bytes}");
        c.insert(1, key("r", "huge"), entry(MAX_ENTRY_BYTES + 1));
        assert!(c.get(1, "r@huge").is_none());
    }
}
