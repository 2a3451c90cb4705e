//! The thread of one download (`download::start` spawns it): receive the
//! body into the partial file, resuming a broken transfer with `Range:
//! bytes=N-` (at most `MAX_RESUMES` times), while a scoped second thread
//! hashes the file from its first byte behind the writer (a kept partial
//! file's bytes included); then the digest check (the readers may have the
//! last byte), fsync and the commit.
//!
//! It must never mark a download verified whose digest did not match, never
//! keep the file of a mismatch or of a local failure, and never wait
//! without a bound (30 s idle per read, the hash thread checks its stop
//! flag every 100 ms).

use super::download::{Download, Job, BUF, MAX_RESUMES};
use crate::oci::{Digest, Hasher};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A buffer is written (and shown to readers) once it is full or after this.
const FILL_FOR: Duration = Duration::from_millis(20);

/// Read into `buf` until it is full, [`FILL_FOR`] passed, the body ends or a
/// read fails (the reason, after the bytes that came): one write and one
/// wake-up of the readers and the hasher per buffer, not per network read,
/// and a slow upstream's bytes still reach the readers soon.
fn fill(src: &mut impl Read, buf: &mut [u8]) -> (usize, Option<String>) {
    let mut n = 0;
    let started = Instant::now();
    while n < buf.len() && (n == 0 || started.elapsed() < FILL_FOR) {
        match src.read(&mut buf[n..]) {
            Ok(0) => return (n, (n > 0).then(|| "the connection ended early".into())),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e.to_string())),
        }
    }
    (n, None)
}

/// Hash the file from its first byte to the end with `hasher`, each part
/// once the writer published it; `None` when `stop` is set (the transfer
/// failed) or the file cannot be read.
fn hash_behind(d: &Download, mut hasher: Hasher, stop: &AtomicBool) -> Option<Digest> {
    let mut buf = vec![0u8; BUF];
    let mut pos = 0;
    while pos < d.size {
        let written = {
            let mut st = d.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if st.written > pos {
                    break st.written;
                }
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
                st = d
                    .grew
                    .wait_timeout(st, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        while pos < written {
            let want = (written - pos).min(BUF as u64) as usize;
            match d.file.read_at(&mut buf[..want], pos) {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    pos += n as u64;
                }
            }
        }
    }
    Some(hasher.finish())
}

/// Sets the hasher's stop flag and wakes it when dropped.
struct StopOnDrop<'a>(&'a AtomicBool, &'a Download);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        self.1.grew.notify_all();
    }
}

/// The thread's state: how far the file is written, and from where this
/// download received (what a previous one kept is hashed, not fetched).
pub(super) struct Fetch {
    pub(super) path: PathBuf,
    pub(super) pos: u64,
    pub(super) started_at: u64,
}

impl Fetch {
    pub(super) fn run(
        mut self,
        job: &Job,
        d: &Download,
        first: (ureq::BodyReader<'static>, u64),
    ) -> Result<(), String> {
        let what = format!("blob {} of {}", job.digest, job.m.local);
        let (received, actual) = self.receive_and_hash(job, d, first, &what);
        let resumes = received?;
        let actual = actual.ok_or_else(|| {
            self.local_failure(&what, "hashing", io::Error::other("the hash stopped"))
        })?;
        let fetched = d.size - self.started_at;
        let _ = job.registry.count_fetched(&job.m.upstream, fetched);
        if actual != job.digest {
            let _ = std::fs::remove_file(&self.path);
            return Err(format!(
                "{what}: the upstream sent other bytes (their digest is {actual}); nothing was stored"
            ));
        }
        // The clients may finish now; the fsync and the commit are the cache's.
        d.verified();
        d.file
            .sync_all()
            .map_err(|e| self.local_failure(&what, "syncing", e))?;
        job.registry
            .commit_cached_file(
                &job.m.upstream,
                &job.m.local,
                &job.digest,
                &self.path,
                d.size,
            )
            .map_err(|e| {
                let _ = std::fs::remove_file(&self.path);
                format!("{what}: storing it failed ({e}); nothing was stored")
            })?;
        log::info!(
            "upstream {}: cached {what} ({} bytes{})",
            job.m.upstream,
            d.size,
            if resumes > 0 {
                format!(", resumed {resumes} times")
            } else {
                String::new()
            }
        );
        Ok(())
    }

    /// Receive the body while a second thread hashes the file from its first
    /// byte behind the writer (from the page cache; a download resumed from a
    /// kept file re-reads the kept bytes first, from the disk if need be).
    /// Hashing overlaps with receiving: measured on a 2-core machine, a cold
    /// 1 GiB pull through the cache took 1.16-1.40 s against 1.48-1.67 s
    /// with the hash in the receiving thread (`docs/benchmarks.md`, session
    /// 10). No thread for the hash: the download fails before receiving
    /// (what a previous one kept stays for the next pull).
    fn receive_and_hash(
        &mut self,
        job: &Job,
        d: &Download,
        first: (ureq::BodyReader<'static>, u64),
        what: &str,
    ) -> (Result<u32, String>, Option<Digest>) {
        let hasher = Hasher::new(job.digest.algorithm());
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let hashing = match std::thread::Builder::new()
                .name("soute-pull-hash".into())
                .spawn_scoped(scope, || hash_behind(d, hasher, &stop))
            {
                Ok(h) => h,
                Err(e) => {
                    log::warn!("no thread to hash a download: {e}");
                    return (Err(format!("{what}: no thread to hash it ({e})")), None);
                }
            };
            let received = {
                // Once the receiving ends (or panics), the hasher stops
                // waiting for bytes that will not come; after a complete
                // body it has every byte and never waits again.
                let _stop = StopOnDrop(&stop, d);
                self.receive(job, d, first, what)
            };
            (received, hashing.join().ok().flatten())
        })
    }

    /// Receive the body into the file, resuming a broken transfer; the
    /// number of resumes.
    fn receive(
        &mut self,
        job: &Job,
        d: &Download,
        first: (ureq::BodyReader<'static>, u64),
        what: &str,
    ) -> Result<u32, String> {
        let mut body = Some(first);
        let mut resumes = 0;
        let mut last_break = String::new();
        let mut buf = vec![0u8; BUF];
        while self.pos < d.size {
            let (reader, skip) = match body.take() {
                Some(b) => b,
                None => {
                    if resumes == MAX_RESUMES {
                        return Err(format!(
                            "{what}: the transfer broke {} times, last at {} of {} bytes ({last_break}); \
                             the {} bytes downloaded are kept for the next pull",
                            resumes + 1,
                            self.pos,
                            d.size,
                            self.pos
                        ));
                    }
                    resumes += 1;
                    std::thread::sleep(Duration::from_millis(200 * u64::from(resumes)));
                    log::warn!(
                        "upstream {}: {what} broke at {} of {} bytes ({last_break}); resuming with Range: bytes={}- ({resumes}/{MAX_RESUMES})",
                        job.m.upstream, self.pos, d.size, self.pos
                    );
                    match job.open_from(self.pos) {
                        Ok((b, skip, size)) if size == d.size => (b.into_reader(), skip),
                        Ok((_, _, size)) => {
                            return Err(format!(
                            "{what}: its size changed from {} to {size} bytes while downloading",
                            d.size
                        ))
                        }
                        Err(f) => {
                            last_break = f.to_string();
                            continue;
                        }
                    }
                }
            };
            last_break = self.copy(job, d, (reader, skip), &mut buf)?;
        }
        Ok(resumes)
    }

    /// Copy one response body into the file; returns why it stopped short
    /// (the caller resumes), or an error that ends the download.
    fn copy(
        &mut self,
        job: &Job,
        d: &Download,
        (reader, mut skip): (ureq::BodyReader<'static>, u64),
        buf: &mut [u8],
    ) -> Result<String, String> {
        let what = format!("blob {}", job.digest);
        let mut src = reader.take(d.size - self.pos + skip);
        loop {
            let (n, broke) = fill(&mut src, buf);
            if n == 0 {
                return Ok(broke.unwrap_or_else(|| "the connection ended early".into()));
            }
            job.client.pace(n);
            let mut chunk = &buf[..n];
            if skip > 0 {
                let k = (skip.min(n as u64)) as usize;
                skip -= k as u64;
                chunk = &chunk[k..];
            }
            if chunk.is_empty() {
                continue;
            }
            d.file
                .write_all_at(chunk, self.pos)
                .map_err(|e| self.local_failure(&what, "writing", e))?;
            self.pos += chunk.len() as u64;
            // The readers may send these bytes while they are hashed.
            d.publish(self.pos);
            if self.pos == d.size {
                return Ok(String::new());
            }
            if let Some(why) = broke {
                return Ok(why);
            }
        }
    }

    /// This side failed (a full disk): the partial file goes.
    fn local_failure(&self, what: &str, doing: &str, e: io::Error) -> String {
        let _ = std::fs::remove_file(&self.path);
        format!("{what}: {doing} the download failed ({e}); nothing was stored")
    }
}
