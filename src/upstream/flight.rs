//! Single-flight: at most one fetch of a digest at a time. Starting a fetch
//! (the upstream's answer to the GET) happens under the digest's own lock;
//! the running download is then listed here, and every request for that
//! blob reads it as it grows (one upstream GET for 8 concurrent cold pulls).
//!
//! It must never hold its maps' locks while a fetch runs (only the digest's
//! own lock is held, and only while a download starts), nor keep entries
//! nobody waits on or downloads that ended.

use super::download::Download;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Past this many entries, the ones no fetch holds any more are dropped.
const PRUNE_AT: usize = 1024;

#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<String, Weak<Mutex<()>>>>,
    /// The downloads running now, by digest.
    running: Mutex<HashMap<String, Arc<Download>>>,
}

impl Flights {
    /// The lock of `key`'s fetch, shared with every request for that key
    /// while any of them holds it.
    pub fn join(&self, key: &str) -> Arc<Mutex<()>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = map.get(key).and_then(Weak::upgrade) {
            return live;
        }
        if map.len() >= PRUNE_AT {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let lock = Arc::new(Mutex::new(()));
        map.insert(key.to_string(), Arc::downgrade(&lock));
        lock
    }

    /// The running download of `key`, if any.
    pub fn running(&self, key: &str) -> Option<Arc<Download>> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(key).cloned()
    }

    /// How many downloads run now.
    pub fn running_count(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn add_running(&self, key: &str, d: Arc<Download>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(key.to_string(), d);
    }

    /// `d` of `key` ended (a newer download of that key stays).
    pub fn remove_running(&self, key: &str, d: &Arc<Download>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.get(key).is_some_and(|r| Arc::ptr_eq(r, d)) {
            running.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_key_while_held_and_entries_are_pruned() {
        let f = Flights::default();
        let a = f.join("a");
        let again = f.join("a");
        assert!(Arc::ptr_eq(&a, &again), "the same key shares one lock");
        assert!(!Arc::ptr_eq(&a, &f.join("b")));
        drop((a, again));
        for i in 0..PRUNE_AT + 10 {
            drop(f.join(&i.to_string()));
        }
        assert!(
            f.len() <= PRUNE_AT + 1,
            "dead entries were kept: {}",
            f.len()
        );
    }
}
