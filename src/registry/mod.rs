//! registry: the rules of the registry. Upload lifecycle, manifest validation
//! and storage, tags, referrers, deletes, the audit log. Owns every transaction and the order
//! in which files and rows change (DESIGN.md §5).
//!
//! It must never see HTTP requests or responses, nor choose status codes
//! beyond the `Error` it returns.

mod access;
mod audit;
mod backup;
mod blob_commit;
mod browse;
mod browse_delete;
mod browse_limits;
mod browse_tags;
mod cache_space;
mod cached;
mod cached_blob;
mod gc;
mod gc_evict;
mod gc_plan;
mod gc_usage;
mod manifests;
mod migrate;
pub mod protect;
mod pull_log;
mod quota;
pub mod read_cache;
mod retention;
mod sessions;
mod stats;
mod store_switch;
mod tag_history;
mod ui_sessions;
mod upload_body;
mod uploads;
mod users;
mod verify;

pub use access::{TokenInfo, UserInfo};
pub use audit::{AuditAction, AuditEvent, AuditRetention, DEFAULT_AUDIT_DAYS, DEFAULT_AUDIT_KEEP};
pub use backup::{BackupProgress, BackupReport};
pub use browse::{
    ConfigView, ImageView, LayerView, PlatformImage, PlatformSize, ReferrerView, RepoSummary,
    TagView,
};
pub use browse_delete::DeleteFrees;
pub use browse_limits::{PageSlot, MAX_PLATFORMS_SHOWN, MAX_TEXT_BYTES_PER_PAGE};
pub use cached::CachedTag;
pub use db::audit::AuditRow;
pub use gc::{Evicted, GcPolicy, GcReport, Kept, Removed};
pub use gc_evict::ORPHAN_EVICT_AFTER_SECS;
pub use gc_usage::{RepoUsage, TotalUsage, UpstreamUsage, Usage};
pub use manifests::PutOutcome;
pub use migrate::{MigrateProgress, MigrateReport};
pub use protect::Protection;
pub use quota::Quota;
pub use retention::{RetentionRule, TagVerdict};
pub use sessions::{
    DEFAULT_MAX_UPLOAD_SESSIONS, DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT, MAX_CONCURRENT_SEARCHES,
};
pub use stats::{Disk, Job, UpstreamCounters};
pub use store_switch::SwitchOutcome;
pub use tag_history::Rollback;
pub use ui_sessions::{NewSession, MAX_UI_SESSIONS_PER_USER, UI_SESSION_SECS};
pub use uploads::{UploadLimits, UploadStatus};
pub use verify::{VerifyProgress, VerifyReport};

use crate::db::{self, Db};
use crate::error::{Code, Error, Result};
use crate::oci::{Digest, RepoName, UploadId};
use crate::storage::backend::{BlobBackend, BlobBody};
use crate::storage::BlobStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct Registry {
    data_dir: PathBuf,
    pub(crate) db: Db,
    /// Where blob bytes live: the data folder's `blobs/` or an object store.
    pub(crate) store: crate::storage::switch::SwitchingStore,
    /// In-memory state (running hash) of upload sessions, one lock per session.
    sessions: Mutex<HashMap<String, Arc<Mutex<Option<uploads::Session>>>>>,
    delete_enabled: bool,
    /// The largest blob and the disk reserve uploads must respect.
    limits: uploads::UploadLimits,
    /// Bytes uploads announced and have not written yet (see `upload_body`).
    claimed: Mutex<u64>,
    /// Which client opened each session (the per-client cap).
    owners: sessions::SessionOwners,
    /// The few searches that may run at once.
    search_slots: sessions::SearchSlots,
    /// The web UI's heavy pages being built (`browse_limits`).
    ui_page_slots: browse_limits::PageSlots,
    /// The audit log's retention and rate limits.
    audit: audit::AuditLog,
    /// Pull times of cached content, written in batches.
    pull_log: pull_log::PullLog,
    /// Webhook events: recorded in the transactions below, sent by `webhook::deliver`.
    pub(crate) webhooks: crate::webhook::Outbox,
    /// The web UI's last space figures (`browse::repo_summaries`).
    space_cache: Mutex<Option<browse::SpaceCache>>,
    /// Hot manifests by tag and digest (`read_cache`: bounded, generation-checked).
    read_cache: read_cache::ReadCache,
    user_hashes: read_cache::UserHashes,
}

/// One page of a tags list: the tags as a JSON array, the last one, and
/// whether more remain (the list is serialized as it is read, no per-tag allocation).
pub struct TagPage {
    pub json: Vec<u8>,
    pub last: Option<String>,
    pub more: bool,
}

/// The most entries a single tags or catalog page returns.
pub const MAX_PAGE: usize = 100_000;

impl Registry {
    /// Open the registry stored in `data_dir` (which must exist).
    pub fn open(data_dir: &Path, delete_enabled: bool, db_connections: u32) -> Result<Registry> {
        let store =
            BlobStore::open(data_dir).map_err(|e| Error::io("opening the blob store", e))?;
        Self::open_with(data_dir, delete_enabled, db_connections, Box::new(store))
    }

    /// [`Registry::open`] with blobs in `store` (made on `data_dir`'s folder).
    /// Every commit syncs itself (`db::Db::open`): for every process but `serve`.
    pub fn open_with(
        data_dir: &Path,
        delete_enabled: bool,
        db_connections: u32,
        store: Box<dyn BlobBackend>,
    ) -> Result<Registry> {
        Self::open_as(data_dir, delete_enabled, db_connections, store, None)
    }

    /// [`Registry::open_with`] for `serve`, holding the folder's `lock`
    /// (`app::lock_data_dir`): commits share their flushes
    /// (`db::Db::open_serving`, group commit).
    pub fn open_serving(
        data_dir: &Path,
        delete_enabled: bool,
        db_connections: u32,
        store: Box<dyn BlobBackend>,
        lock: &std::fs::File,
    ) -> Result<Registry> {
        Self::open_as(data_dir, delete_enabled, db_connections, store, Some(lock))
    }

    fn open_as(
        data_dir: &Path,
        delete_enabled: bool,
        db_connections: u32,
        store: Box<dyn BlobBackend>,
        serve_lock: Option<&std::fs::File>,
    ) -> Result<Registry> {
        let db_path = store.folder().layout().db();
        // Created 0600 before SQLite sees it, which gives -wal and -shm the same mode.
        crate::storage::create_private_file(&db_path)
            .map_err(|e| Error::io(format!("creating {}", db_path.display()), e))?;
        let db = match serve_lock {
            Some(lock) => Db::open_serving(&db_path, db_connections, lock)?,
            None => Db::open(&db_path, db_connections)?,
        };
        let registry = Registry {
            data_dir: data_dir.to_path_buf(),
            db,
            store: crate::storage::switch::SwitchingStore::new(store),
            sessions: Mutex::new(HashMap::new()),
            delete_enabled,
            limits: uploads::UploadLimits::default(),
            claimed: Mutex::new(0),
            owners: sessions::SessionOwners::default(),
            search_slots: sessions::SearchSlots::default(),
            ui_page_slots: browse_limits::PageSlots::default(),
            audit: audit::AuditLog::default(),
            pull_log: pull_log::PullLog::default(),
            webhooks: crate::webhook::Outbox::default(),
            space_cache: Mutex::new(None),
            read_cache: read_cache::ReadCache::default(),
            user_hashes: read_cache::UserHashes::default(),
        };
        Ok(registry)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Replace the default upload limits (before the registry is shared).
    pub fn set_upload_limits(&mut self, limits: uploads::UploadLimits) {
        self.limits = limits;
    }

    pub fn delete_enabled(&self) -> bool {
        self.delete_enabled
    }

    pub fn require_delete(&self) -> Result<()> {
        if self.delete_enabled {
            Ok(())
        } else {
            Err(Error::client(
                Code::Unsupported,
                "deletes are disabled on this registry",
            ))
        }
    }

    /// Remove files in `uploads/` that belong to no session (leftovers of a
    /// crash). Only `serve` calls this, before it accepts connections: a
    /// concurrent upload's new file would look like an orphan.
    pub fn clean_upload_folder(&self) -> Result<()> {
        let live: std::collections::HashSet<String> =
            self.db.read(db::uploads::upload_ids)?.into_iter().collect();
        let files = self
            .store
            .folder()
            .upload_files()
            .map_err(|e| Error::io("listing uploads", e))?;
        for name in files.into_iter().filter(|f| !live.contains(f)) {
            log::info!("removing orphan upload file uploads/{name}");
            if let Err(e) = self.store.folder().remove_upload_file(&name) {
                log::warn!("could not remove uploads/{name}: {e}");
            }
        }
        Ok(())
    }

    /// Size of a blob `repo` may serve, or BLOB_UNKNOWN.
    pub fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        let unknown =
            || Error::client(Code::BlobUnknown, format!("blob {digest} is not in {repo}"));
        let size = self
            .db
            .read(|c| match db::repos::repo_id(c, repo.as_str())? {
                Some(id) => db::blobs::repo_blob_size(c, id, &digest.to_string()),
                None => Ok(None),
            })?;
        size.ok_or_else(unknown)
    }

    /// Where this registry's blobs are (for `check-config` and the log).
    pub fn blob_store(&self) -> &dyn BlobBackend {
        &self.store
    }

    /// Open a blob `repo` may serve: its bytes and its size.
    pub fn open_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(BlobBody, u64)> {
        let size = self.blob_size(repo, digest)?;
        match self.store.open(digest) {
            Ok(Some(body)) => Ok((body, size)),
            Ok(None) => {
                log::error!(
                    "blob {digest} is recorded but its file is missing; run `soute verify`"
                );
                Err(Error::client(
                    Code::BlobUnknown,
                    format!("blob {digest} is missing from storage"),
                ))
            }
            Err(e) => Err(self.store_error(&format!("opening blob {digest}"), e)),
        }
    }

    /// Unlink a blob from a repository (the bytes go at the next GC).
    pub fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.require_delete()?;
        let removed = self
            .db
            .write(|tx| match db::repos::repo_id(tx, repo.as_str())? {
                Some(id) => {
                    let key = digest.to_string();
                    protect::check_blob_delete(tx, repo.as_str(), id, &key)?;
                    let removed = db::blobs::unlink_blob(tx, id, &key)?;
                    if removed {
                        self.webhooks.blob_deleted(tx, repo.as_str(), &key)?;
                    }
                    Ok(removed)
                }
                None => Ok(false),
            })?;
        if removed {
            self.webhooks.wake();
            Ok(())
        } else {
            Err(Error::client(
                Code::BlobUnknown,
                format!("blob {digest} is not in {repo}"),
            ))
        }
    }

    /// Tags of `repo`, sorted, after `last`; `limit` entries at most. The flag
    /// says whether more remain.
    pub fn tags(&self, repo: &RepoName, last: &str, limit: usize) -> Result<TagPage> {
        let limit = limit.min(MAX_PAGE);
        let mut page = TagPage {
            json: Vec::with_capacity(64 + limit.min(4096) * 12),
            last: None,
            more: false,
        };
        page.json.push(b'[');
        let mut written = 0usize;
        let mut last_owned = String::new();
        self.db.read(|c| {
            let id = db::repos::repo_id(c, repo.as_str())?.ok_or_else(|| {
                Error::client(Code::NameUnknown, format!("repository {repo} is not known"))
            })?;
            db::tags::visit_tags(c, id, last, limit + 1, |name| {
                if written == limit {
                    page.more = true;
                    return;
                }
                if written > 0 {
                    page.json.push(b',');
                }
                // Writing a &str into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut page.json, name);
                written += 1;
                last_owned.clear();
                last_owned.push_str(name);
            })?;
            Ok(())
        })?;
        page.json.push(b']');
        page.last = (written > 0).then_some(last_owned);
        Ok(page)
    }

    /// Repository names, sorted, after `last`.
    pub fn catalog(&self, last: &str, limit: usize) -> Result<(Vec<String>, bool)> {
        let limit = limit.min(MAX_PAGE);
        let page = self.db.read(|c| db::repos::catalog(c, last, limit + 1))?;
        Ok(split_page(page, limit))
    }

    /// Repositories whose name, title or description contains `term` (for
    /// `docker search`). At most `MAX_CONCURRENT_SEARCHES` run at once (429
    /// beyond), so searches cannot take the read pool from other requests.
    pub fn search(&self, term: &str, limit: usize) -> Result<Vec<db::search::SearchHit>> {
        let _slot = self.search_slots.try_take()?;
        self.db.read(|c| db::search::search(c, term, limit))
    }

    /// The lock of a session that has a row in `repo` (created on first use).
    /// The row is checked first, so an unknown id never gets a map entry;
    /// returns the row's acknowledged length with the lock.
    fn session_lock(
        &self,
        repo: &RepoName,
        id: &UploadId,
    ) -> Result<(Arc<Mutex<Option<uploads::Session>>>, u64)> {
        let length = self.upload_status(repo, id)?.length;
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        Ok((
            map.entry(id.as_str().to_string()).or_default().clone(),
            length,
        ))
    }

    /// Drop a session's in-memory state and owner (it finished, was
    /// cancelled, expired, or never existed).
    fn forget_session(&self, id: &UploadId) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id.as_str());
        drop(map);
        self.owners.release(id.as_str());
    }

    /// How many sessions have in-memory state (the leak check of the tests).
    #[doc(hidden)]
    pub fn session_states(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

fn split_page(mut page: Vec<String>, limit: usize) -> (Vec<String>, bool) {
    let more = page.len() > limit;
    page.truncate(limit);
    (page, more)
}
