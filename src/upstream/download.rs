//! One streamed download of a blob from an upstream. The request that finds
//! the blob cold sends the GET (so its status and length are known before
//! any client is answered), then a thread of its own copies the body into
//! the blob's partial file (`upstream-partial/`, kept across restarts) and
//! publishes how far it got, hashed behind it by a second thread; every client of
//! that blob (the first and the ones that joined) reads the file behind the
//! writer ([`Tail`], a `http::Growing` body). A broken
//! transfer is resumed with `Range: bytes=N-`; a partial file found at start
//! (a restart) is re-hashed and resumed the same way. At the end: digest
//! check, then fsync and commit.
//!
//! It must never let a reader have the last byte before the digest matched
//! (so a mismatch cuts every streaming client short of its Content-Length),
//! never keep a file whose digest did not match, never hold more than two
//! buffers per download (receive, hash), and never wait without a bound.

use super::client::{Call, Client, Failure};
use super::flight::Flights;
use super::names::Mapped;
use crate::error::Error;
use crate::http::Growing;
use crate::oci::Digest;
use crate::registry::Registry;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Copy buffer of one download.
pub(super) const BUF: usize = 256 * 1024;
/// A broken transfer is resumed at most this many times.
pub const MAX_RESUMES: u32 = 5;
/// A reader waits at most this long for the next bytes (the download itself
/// gives up sooner: 30 s idle per read, [`MAX_RESUMES`] resumes).
pub const READ_STALL: Duration = Duration::from_secs(360);

/// Why a download could not start.
pub enum StartError {
    /// The upstream's answer (or no answer).
    Upstream(Failure),
    /// This side: the disk reserve, the largest blob, I/O.
    Local(Error),
}

impl From<Error> for StartError {
    fn from(e: Error) -> StartError {
        StartError::Local(e)
    }
}

/// A download, shared by its thread and its readers.
pub struct Download {
    /// The blob's size (the upstream's Content-Length or Content-Range).
    pub size: u64,
    /// The local repository it is cached for.
    pub local: crate::oci::RepoName,
    pub(super) file: File,
    /// Where the blob is once committed.
    blob_path: PathBuf,
    pub(super) state: Mutex<Progress>,
    pub(super) grew: Condvar,
}

pub(super) struct Progress {
    /// Bytes in the file, from 0.
    pub(super) written: u64,
    /// Every byte is written and the digest matched: readers may have all
    /// of them (before the fsync and the commit, which are the cache's).
    verified: bool,
    /// `None` while running; `Ok` once verified and committed.
    outcome: Option<Result<(), String>>,
}

impl Download {
    pub(super) fn publish(&self, written: u64) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).written = written;
        self.grew.notify_all();
    }

    pub(super) fn verified(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .verified = true;
        self.grew.notify_all();
    }

    pub(super) fn finish(&self, outcome: Result<(), String>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).outcome = Some(outcome);
        self.grew.notify_all();
    }

    /// Whether it ended (verified and stored, or failed).
    pub fn ended(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.outcome.is_some()
    }

    /// Wait (at most `limit`) until it ended; `None` when it still runs.
    pub fn wait_outcome(&self, limit: Duration) -> Option<Result<(), String>> {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(o) = &st.outcome {
                return Some(o.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self
                .grew
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A reader of a download: the bytes written so far, all but the last one
/// until the digest matched. Holds one of the [`StreamSlots`] while it
/// lives (a client reading a growing file keeps its worker).
pub struct Tail(pub Arc<Download>, #[allow(dead_code)] StreamSlot);

/// The default of [`StreamSlots`]' bound: half of the default 128 workers.
pub const STREAMING_CLIENTS: usize = 64;

/// How many clients read downloads as they grow, and the bound: each keeps
/// a worker until the digest matched, so slow readers of cold blobs could
/// otherwise take every worker. The bound is half the server's workers
/// (`PullThrough::set_workers`); the next client gets 429 and retries (the
/// blob is then stored, or further along).
#[derive(Debug)]
pub struct StreamSlots {
    used: std::sync::atomic::AtomicUsize,
    cap: std::sync::atomic::AtomicUsize,
}

impl Default for StreamSlots {
    fn default() -> Self {
        StreamSlots {
            used: Default::default(),
            cap: STREAMING_CLIENTS.into(),
        }
    }
}

impl StreamSlots {
    pub fn set_cap(&self, cap: usize) {
        self.cap
            .store(cap.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn cap(&self) -> usize {
        self.cap.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A slot, or `None` when the bound is reached.
    pub fn take(self: &Arc<Self>) -> Option<StreamSlot> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let cap = self.cap();
        self.used
            .fetch_update(AcqRel, Acquire, |n| (n < cap).then_some(n + 1))
            .ok()
            .map(|_| StreamSlot(self.clone()))
    }
}

/// One client's share of [`StreamSlots`]; released on drop.
pub struct StreamSlot(Arc<StreamSlots>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0
            .used
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Tail {
    pub fn new(d: Arc<Download>, slot: StreamSlot) -> Tail {
        Tail(d, slot)
    }
}

impl Growing for Tail {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let d = &self.0;
        let deadline = Instant::now() + READ_STALL;
        let mut st = d.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let readable = match &st.outcome {
                _ if st.verified => d.size,
                Some(Err(e)) => return Err(io::Error::other(e.clone())),
                Some(Ok(())) => d.size,
                None => st.written.min(d.size.saturating_sub(1)),
            };
            if pos < readable {
                drop(st);
                let n = buf.len().min((readable - pos) as usize);
                return d.file.read_at(&mut buf[..n], pos);
            }
            if pos >= d.size && (st.verified || matches!(st.outcome, Some(Ok(())))) {
                return Ok(0);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the upstream download stalled",
                ));
            }
            st = d
                .grew
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn complete(&self) -> Option<File> {
        let st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        match st.outcome {
            // A file description of its own: the sender seeks it.
            Some(Ok(())) => File::open(&self.0.blob_path).ok(),
            _ => None,
        }
    }
}

/// What a download's thread needs.
pub struct Job {
    pub registry: Arc<Registry>,
    pub client: Arc<Client>,
    pub m: Mapped,
    pub digest: Digest,
    pub flights: Arc<Flights>,
}

impl Job {
    pub(super) fn path(&self) -> String {
        format!("/v2/{}/blobs/{}", self.m.remote, self.digest)
    }

    /// GET the blob from byte `from` on: the body, the bytes of it to skip
    /// (an upstream that ignored the Range) and the blob's size.
    pub(super) fn open_from(&self, from: u64) -> Result<(ureq::Body, u64, u64), Failure> {
        let resp = self.client.send_from(
            "GET",
            &self.path(),
            &self.m.remote,
            None,
            (Call::Blob, from),
        )?;
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (skip, size) = match resp.status().as_u16() {
            200 => {
                let len = header("content-length").and_then(|v| v.parse::<u64>().ok());
                (from, len.ok_or_else(no_length)?)
            }
            206 if from > 0 => {
                let range = header("content-range").unwrap_or_default();
                match parse_content_range(&range) {
                    Some((start, size)) if start == from => (0, size),
                    _ => {
                        return Err(Failure::Invalid(format!(
                            "answered Range: bytes={from}- with Content-Range {range:?}"
                        )))
                    }
                }
            }
            s => return Err(Failure::Status(s)),
        };
        Ok((resp.into_body(), skip, size))
    }
}

pub(super) fn no_length() -> Failure {
    Failure::Invalid("sent a blob without its Content-Length".into())
}

/// `bytes START-END/SIZE` → (START, SIZE).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, size) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, size) = (
        start.parse().ok()?,
        end.parse::<u64>().ok()?,
        size.parse().ok()?,
    );
    (start <= end && end < size).then_some((start, size))
}

/// Start the download of `job.digest`: the partial file (resumed from its
/// length, re-hashed, when a previous download left one), the GET, the
/// thread. Registered in `job.flights` before the thread runs.
pub fn start(job: Job) -> Result<Arc<Download>, StartError> {
    let path = job.registry.partial_download_path(&job.digest)?;
    // What a previous download left (the file is made only once the
    // upstream answered: a 404 leaves nothing behind).
    let mut have = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut opened = job.open_from(have);
    let stale = have > 0
        && match &opened {
            Err(Failure::Status(416)) => true,
            Ok((_, _, size)) => have > *size,
            Err(_) => false,
        };
    if stale {
        // Longer than the blob: not this blob's bytes. Start over.
        log::warn!(
            "upstream {}: the {have} bytes kept for blob {} are more than it has; downloading it again",
            job.m.upstream,
            job.digest
        );
        have = 0;
        opened = job.open_from(0);
    }
    let (body, skip, size) = opened.map_err(StartError::Upstream)?;
    job.registry.admit_upload(Some(size), Some(&job.digest))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(stale)
        .mode(crate::storage::layout::FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io("opening a partial download", e))?;
    // The bytes a previous download left are re-hashed by the hashing thread.
    if have > 0 {
        log::info!(
            "upstream {}: resuming blob {} of {} at {have} of {size} bytes (Range: bytes={have}-)",
            job.m.upstream,
            job.digest,
            job.m.local
        );
    }
    let download = Arc::new(Download {
        size,
        local: job.m.local.clone(),
        file: file
            .try_clone()
            .map_err(|e| Error::io("sharing a partial download", e))?,
        blob_path: job.registry.blob_file_path(&job.digest),
        state: Mutex::new(Progress {
            written: have,
            verified: false,
            outcome: None,
        }),
        grew: Condvar::new(),
    });
    let key = job.digest.to_string();
    let flights = job.flights.clone();
    flights.add_running(&key, download.clone());
    let d = download.clone();
    let spawned = std::thread::Builder::new()
        .name("soute-pull".into())
        .spawn(move || {
            let fetch = super::fetch::Fetch {
                path,
                pos: have,
                started_at: have,
            };
            let outcome = fetch.run(&job, &d, (body.into_reader(), skip));
            if let Err(msg) = &outcome {
                log::warn!("upstream {}: {msg}", job.m.upstream);
                if let Err(e) = job.registry.upstream_failed(&job.m.upstream, msg) {
                    log::warn!("recording upstream {}'s error: {e}", job.m.upstream);
                }
            }
            d.finish(outcome);
            job.flights.remove_running(&job.digest.to_string(), &d);
        });
    if let Err(e) = spawned {
        download.finish(Err("no thread for the download".into()));
        flights.remove_running(&key, &download);
        return Err(StartError::Local(Error::internal(format!(
            "starting a download thread: {e}"
        ))));
    }
    Ok(download)
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 10-99/100"), Some((10, 100)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 1)));
        assert_eq!(parse_content_range("bytes 10-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
