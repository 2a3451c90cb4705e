//! Single-flight: at most one fetch of a digest at a time. A request for a
//! blob that another request is fetching waits for it, then finds the blob
//! in the store (one upstream GET for 8 concurrent cold pulls).
//!
//! It must never hold its map's lock while a fetch runs (only the digest's
//! own lock is held), nor keep entries nobody waits on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Past this many entries, the ones no fetch holds any more are dropped.
const PRUNE_AT: usize = 1024;

#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<String, Weak<Mutex<()>>>>,
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
