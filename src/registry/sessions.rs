//! sessions: the bounds on open upload sessions and on concurrent searches.
//! Who opened which session (per client address, in memory), the total and
//! per-client caps checked before a session is made, and the few slots
//! `docker search` may hold on the read pool.
//!
//! It must never create or delete a session row or file (uploads.rs does),
//! nor block: a cap reached is answered at once with 429.

use crate::error::{Code, Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Default `--max-upload-sessions`: open sessions in the whole registry.
pub const DEFAULT_MAX_UPLOAD_SESSIONS: u64 = 10_000;
/// Default `--max-upload-sessions-per-client`: open sessions per client address.
pub const DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT: u64 = 100;
/// How many searches may run at once (each holds one read connection).
pub const MAX_CONCURRENT_SEARCHES: usize = 2;

/// The 429 a reached cap answers (the api adds `Retry-After`).
pub fn too_many(message: &str) -> Error {
    Error::client(Code::TooManyRequests, message)
}

/// Which client opened each session this process knows of. Sessions made
/// before a restart count toward the total cap (it counts rows), not toward
/// any client's.
#[derive(Default)]
pub(crate) struct SessionOwners {
    by_id: Mutex<HashMap<String, String>>,
}

impl SessionOwners {
    /// Record `id` as opened by `client` unless `client` already has
    /// `per_client` sessions open (429, nothing recorded).
    pub fn reserve(&self, id: &str, client: &str, per_client: u64) -> Result<()> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let open = map.values().filter(|c| c.as_str() == client).count() as u64;
        if open >= per_client {
            return Err(too_many(&format!(
                "this client has {open} upload sessions open (the most is {per_client}); \
                 finish or cancel one first"
            )));
        }
        map.insert(id.to_string(), client.to_string());
        Ok(())
    }

    pub fn release(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// A small counting semaphore that refuses instead of waiting.
#[derive(Default)]
pub(crate) struct SearchSlots {
    busy: AtomicUsize,
}

/// A held search slot, given back on drop.
pub(crate) struct SearchSlot<'a>(&'a AtomicUsize);

impl SearchSlots {
    pub fn try_take(&self) -> Result<SearchSlot<'_>> {
        let taken = self
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CONCURRENT_SEARCHES).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(SearchSlot(&self.busy)),
            Err(_) => Err(too_many("too many searches at once; try again")),
        }
    }
}

impl Drop for SearchSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `text` cut to at most `max_chars` characters (on a char boundary).
pub fn truncate_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_at_its_cap_is_refused_and_a_release_frees_a_place() {
        let owners = SessionOwners::default();
        owners.reserve("a", "10.0.0.1", 2).expect("first");
        owners.reserve("b", "10.0.0.1", 2).expect("second");
        let err = owners.reserve("c", "10.0.0.1", 2).expect_err("third");
        assert_eq!(err.code(), Code::TooManyRequests);
        owners.reserve("c", "10.0.0.2", 2).expect("other client");
        owners.release("a");
        owners.reserve("d", "10.0.0.1", 2).expect("after release");
    }

    #[test]
    fn search_slots_refuse_past_the_limit_and_come_back() {
        let slots = SearchSlots::default();
        let held: Vec<_> = (0..MAX_CONCURRENT_SEARCHES)
            .map(|_| slots.try_take().expect("slot"))
            .collect();
        assert!(slots.try_take().is_err());
        drop(held);
        assert!(slots.try_take().is_ok());
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("abc", 10), "abc");
    }
}
