//! storage::switch: the blob backend a [`crate::registry::Registry`] holds,
//! [`SwitchingStore`]: one backend at a time, replaceable while serving
//! (`soute blobs migrate` beside a running `serve`). After a switch, reads
//! the new store cannot answer fall back to the previous one (so every blob
//! stays readable while the last ones are copied), publishes go to the new
//! store only and removals reach both. A [`PublishPin`], held from a
//! publish's start until its row is written, lets the switch wait until no
//! publish into the old store is left.
//!
//! It must never decide what is copied or recorded (registry::migrate and
//! registry::store_switch do), nor run SQL.

use super::backend::{BlobBackend, BlobBody, StagedUpload};
use super::space::FsSpace;
use super::{BlobFile, BlobStore, Imported};
use crate::oci::Digest;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The most backends one process can switch through (the first included):
/// each switch keeps the stores it replaced, so references stay valid.
pub const MAX_STORES: usize = 8;
/// How often a switch waiting for publishes says how many are left.
pub const TELL_EVERY: Duration = Duration::from_secs(5);

struct Slot {
    store: Box<dyn BlobBackend>,
    /// The store this one replaced (reads fall back to it).
    previous: Option<usize>,
    /// Publishes holding a [`PublishPin`] on this store.
    publishing: AtomicUsize,
}

pub struct SwitchingStore {
    slots: [OnceLock<Slot>; MAX_STORES],
    current: AtomicUsize,
    /// One switch at a time.
    switching: Mutex<()>,
}

/// The store one publish uses, from its start until its row is written.
pub struct PublishPin<'a> {
    slot: &'a Slot,
}

impl Deref for PublishPin<'_> {
    type Target = dyn BlobBackend;
    fn deref(&self) -> &Self::Target {
        self.slot.store.as_ref()
    }
}

impl Drop for PublishPin<'_> {
    fn drop(&mut self) {
        self.slot.publishing.fetch_sub(1, SeqCst);
    }
}

/// Whether an error means "this store does not have it".
fn absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl SwitchingStore {
    pub fn new(store: Box<dyn BlobBackend>) -> SwitchingStore {
        let slots: [OnceLock<Slot>; MAX_STORES] = Default::default();
        let _ = slots[0].set(Slot {
            store,
            previous: None,
            publishing: AtomicUsize::new(0),
        });
        SwitchingStore {
            slots,
            current: AtomicUsize::new(0),
            switching: Mutex::new(()),
        }
    }

    fn slot_at(&self, i: usize) -> &Slot {
        // Every index `current` or a `previous` holds was set before it was stored.
        self.slots[i].get().expect("a switched-to slot is set")
    }

    fn slot(&self) -> &Slot {
        self.slot_at(self.current.load(SeqCst))
    }

    fn fallback(&self) -> Option<&dyn BlobBackend> {
        self.slot().previous.map(|i| self.slot_at(i).store.as_ref())
    }

    /// Whether a switch happened in this process (reads may fall back).
    pub fn switched(&self) -> bool {
        self.slot().previous.is_some()
    }

    /// Pin the current store for one publish (see the module).
    pub fn pin(&self) -> PublishPin<'_> {
        loop {
            let i = self.current.load(SeqCst);
            let slot = self.slot_at(i);
            slot.publishing.fetch_add(1, SeqCst);
            // A switch that stored its new index before our increment may
            // have read a zero count: then we must not use the old store.
            if self.current.load(SeqCst) == i {
                return PublishPin { slot };
            }
            slot.publishing.fetch_sub(1, SeqCst);
        }
    }

    /// Make `store` the one publishes go to, then wait (up to `wait`) until
    /// every publish pinned on the old store has finished. Returns whether
    /// they all did; `waiting` is told how many are left, every few seconds.
    pub fn switch_to(
        &self,
        store: Box<dyn BlobBackend>,
        wait: Duration,
        waiting: &dyn Fn(usize),
    ) -> io::Result<bool> {
        let _one = self.switching.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current.load(SeqCst);
        let next = old + 1;
        if next >= MAX_STORES {
            return Err(io::Error::other(format!(
                "this serve process has switched blob stores {} times; restart it first",
                MAX_STORES - 1
            )));
        }
        let slot = Slot {
            store,
            previous: Some(old),
            publishing: AtomicUsize::new(0),
        };
        if self.slots[next].set(slot).is_err() {
            return Err(io::Error::other("the next store slot is taken"));
        }
        self.current.store(next, SeqCst);
        let old = self.slot_at(old);
        let deadline = Instant::now() + wait;
        let mut told = Instant::now();
        loop {
            let left = old.publishing.load(SeqCst);
            if left == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            if told.elapsed() >= TELL_EVERY {
                waiting(left);
                told = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `read` on the current store, then on the previous one when the
    /// current store does not have the blob.
    fn read_through<T>(
        &self,
        read: impl Fn(&dyn BlobBackend) -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        match read(self.slot().store.as_ref()) {
            Ok(None) => {}
            Err(e) if absent(&e) => {}
            other => return other,
        }
        match self.fallback() {
            Some(prev) => read(prev),
            None => Ok(None),
        }
    }
}

impl BlobBackend for SwitchingStore {
    fn kind(&self) -> &'static str {
        self.slot().store.kind()
    }

    fn describe(&self) -> String {
        self.slot().store.describe()
    }

    fn is_remote(&self) -> bool {
        self.slot().store.is_remote() || self.fallback().is_some_and(|p| p.is_remote())
    }

    fn folder(&self) -> &BlobStore {
        self.slot().store.folder()
    }

    fn open(&self, digest: &Digest) -> io::Result<Option<BlobBody>> {
        self.read_through(|s| s.open(digest))
    }

    fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        self.read_through(|s| s.size(digest))
    }

    fn publish(&self, from: &Path, digest: &Digest, size: u64) -> io::Result<()> {
        self.pin().publish(from, digest, size)
    }

    fn remove(&self, digest: &Digest) -> io::Result<()> {
        self.slot().store.remove(digest)?;
        match self.fallback() {
            Some(prev) => prev.remove(digest),
            None => Ok(()),
        }
    }

    fn list(&self) -> io::Result<Vec<BlobFile>> {
        self.slot().store.list()
    }

    fn remove_listed(&self, file: &BlobFile) -> io::Result<()> {
        self.slot().store.remove_listed(file)
    }

    fn hash(&self, digest: &Digest, progress: &mut dyn FnMut(u64)) -> io::Result<(u64, Digest)> {
        match self.slot().store.hash(digest, progress) {
            Err(e) if absent(&e) => match self.fallback() {
                Some(prev) => prev.hash(digest, progress),
                None => Err(e),
            },
            other => other,
        }
    }

    fn export_to(&self, target: &BlobStore, digest: &Digest) -> io::Result<Imported> {
        match self.slot().store.export_to(target, digest) {
            Err(e) if absent(&e) => match self.fallback() {
                Some(prev) => prev.export_to(target, digest),
                None => Err(e),
            },
            other => other,
        }
    }

    fn space(&self) -> io::Result<FsSpace> {
        self.slot().store.space()
    }

    fn list_staged(&self) -> io::Result<Vec<StagedUpload>> {
        self.slot().store.list_staged()
    }

    fn abort_staged(&self, staged: &StagedUpload) -> io::Result<()> {
        self.slot().store.abort_staged(staged)
    }

    fn redirect_url(&self, digest: &Digest) -> Option<String> {
        if self.switched() {
            // The object may still be only in the previous store.
            return None;
        }
        self.slot().store.redirect_url(digest)
    }

    fn s3_config(&self) -> Option<&crate::storage::s3::S3Config> {
        self.slot().store.s3_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::layout::Layout;

    fn digest_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hex = format!("{:x}", sha2::Sha256::digest(bytes));
        Digest::parse(&format!("sha256:{hex}")).expect("digest")
    }

    fn folder(dir: &Path) -> Box<dyn BlobBackend> {
        std::fs::create_dir_all(dir).expect("mkdir");
        Box::new(BlobStore::open(dir).expect("open"))
    }

    fn put(store: &dyn BlobBackend, dir: &Path, bytes: &[u8]) -> Digest {
        let d = digest_of(bytes);
        let staged = Layout::new(dir).uploads_dir().join("staged");
        std::fs::write(&staged, bytes).expect("stage");
        store
            .publish(&staged, &d, bytes.len() as u64)
            .expect("publish");
        d
    }

    #[test]
    fn a_switch_reads_through_writes_to_the_new_store_and_waits_for_pins() {
        let temp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (temp.path().join("a"), temp.path().join("b"));
        let store = SwitchingStore::new(folder(&a));
        let old = put(&store, &a, b"in the old store");
        let pin = store.pin();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let switch = s.spawn(|| {
                let r = store.switch_to(folder(&b), Duration::from_secs(10), &|_| {});
                done.store(true, SeqCst);
                r
            });
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                !done.load(SeqCst),
                "the switch waits for the pinned publish"
            );
            drop(pin);
            assert!(switch.join().expect("join").expect("switch"));
        });
        assert!(store.switched());
        let new = put(&store, &b, b"in the new store");
        assert!(Layout::new(&b).blob(&new).exists(), "the publish went to b");
        assert!(!Layout::new(&a).blob(&new).exists());
        assert_eq!(store.size(&old).expect("size"), Some(16), "read through");
        assert!(store.open(&old).expect("open").is_some());
        store.remove(&old).expect("remove");
        assert_eq!(store.size(&old).expect("size"), None, "removed from both");
        assert!(store.redirect_url(&new).is_none());
    }

    #[test]
    fn a_switch_gives_up_waiting_after_its_deadline_and_stops_at_the_slot_limit() {
        let temp = tempfile::tempdir().expect("tempdir");
        let store = SwitchingStore::new(folder(&temp.path().join("0")));
        let pin = store.pin();
        let all_done = store
            .switch_to(
                folder(&temp.path().join("1")),
                Duration::from_millis(50),
                &|_| {},
            )
            .expect("switch");
        assert!(!all_done, "a publish still pinned on the old store");
        drop(pin);
        for i in 2..MAX_STORES {
            let f = folder(&temp.path().join(i.to_string()));
            assert!(store.switch_to(f, Duration::ZERO, &|_| {}).expect("switch"));
        }
        let over = store.switch_to(folder(&temp.path().join("x")), Duration::ZERO, &|_| {});
        assert!(over.is_err(), "past the slot limit");
    }
}
