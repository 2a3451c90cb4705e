//! pool: the fixed set of threads that verify passwords, each with its own
//! argon2 [`Memory`] allocated at its first check, fed through a bounded
//! queue; after [`RELEASE_AFTER`] without a check, every thread's memory is
//! given back (a small machine does not keep 7 MiB per thread for a login
//! an hour ago), and allocated again by the next check.
//!
//! Memory for password checking is bounded: `threads` x
//! [`HASH_BLOCK_BYTES`](super::password::HASH_BLOCK_BYTES) (7 MiB each) for
//! the hashes soute writes, at most `threads` x
//! [`BLOCK_BYTES`](super::password::BLOCK_BYTES) (19 MiB) for older ones,
//! whatever the number of clients. A check that finds the queue full is refused at
//! once ([`Submitted::Full`]); the caller answers 429 and its worker is free
//! again, so a flood of bad logins holds at most `queue + threads` workers.
//!
//! It must never start a thread per check, allocate argon2 blocks outside
//! its threads' [`Memory`], let a check wait in an unbounded queue, or let a
//! panic in one check take a thread down.

use super::lock;
use super::password::{self, Memory, Verdict};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Without a check for this long, the verifiers' argon2 memory is released.
pub const RELEASE_AFTER: Duration = Duration::from_secs(30);

/// The verifiers' memories and when the last check ended, shared by the
/// threads: whichever waits long enough releases every idle memory.
struct Shared {
    memories: Vec<Arc<Mutex<Memory>>>,
    /// Milliseconds after `epoch` at which the last check ended.
    last_check_ms: AtomicU64,
    epoch: Instant,
    release_after: Duration,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Releases the memory of every thread not checking now, if the pool
    /// has been quiet for `release_after`.
    fn release_if_idle(&self) {
        let quiet = self
            .now_ms()
            .saturating_sub(self.last_check_ms.load(Ordering::Relaxed));
        if quiet < self.release_after.as_millis() as u64 {
            return;
        }
        let mut released = false;
        for m in &self.memories {
            if let Ok(mut m) = m.try_lock() {
                released |= m.held_bytes() > 0;
                m.release();
            }
        }
        if released {
            give_freed_memory_back();
        }
    }
}

/// glibc keeps freed memory in its arenas once its mmap threshold has grown
/// past the 19 MiB blocks (it grows on the first free of an mmapped chunk),
/// so a release alone would not lower RSS and later bursts could grow it;
/// `malloc_trim` returns every arena's free pages to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn give_freed_memory_back() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks;
    // it has no preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_freed_memory_back() {}

/// Longest a caller waits for a queued check before giving up (a bound for
/// the worst case; a full queue drains in well under a second per thread).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What to check.
pub enum Check {
    /// `password` against a stored hash (argon2 PHC or bcrypt).
    Stored { hash: String, password: String },
    /// The cost of a check for a user who does not exist; never matches.
    /// `like`: a stored hash whose check it costs (a real user's, so both
    /// take as long); without one, soute's own parameters.
    Unknown {
        password: String,
        like: Option<String>,
    },
}

struct Job {
    check: Check,
    reply: SyncSender<Verdict>,
}

/// How a submission went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Done(Verdict),
    /// The queue was full (or the pool stopped): try again later.
    Full,
}

/// The verifier threads and their queue. Dropping it stops the threads once
/// the checks already queued are done.
pub struct VerifyPool {
    queue: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    queue_len: usize,
    shared: Arc<Shared>,
}

impl VerifyPool {
    /// Starts `threads` verifier threads (at least 1) behind a queue of
    /// `queue_len` waiting checks (at least 1). `unknown_salt` is the salt
    /// of the checks for unknown users.
    pub fn start(
        threads: usize,
        queue_len: usize,
        unknown_salt: [u8; 16],
    ) -> std::io::Result<VerifyPool> {
        Self::start_releasing_after(threads, queue_len, unknown_salt, RELEASE_AFTER)
    }

    /// [`VerifyPool::start`] with the quiet time after which memory is released.
    fn start_releasing_after(
        threads: usize,
        queue_len: usize,
        unknown_salt: [u8; 16],
        release_after: Duration,
    ) -> std::io::Result<VerifyPool> {
        let queue_len = queue_len.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job>(queue_len);
        let rx = Arc::new(Mutex::new(rx));
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            memories: (0..threads).map(|_| Arc::default()).collect(),
            last_check_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            release_after,
        });
        let mut handles = Vec::new();
        for i in 0..threads {
            let rx = rx.clone();
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("soute-auth-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || run(&rx, &unknown_salt, &shared, i))?;
            handles.push(handle);
        }
        Ok(VerifyPool {
            queue: Some(tx),
            threads: handles,
            queue_len,
            shared,
        })
    }

    /// Bytes of argon2 memory the verifiers hold now.
    pub fn held_bytes(&self) -> usize {
        self.shared
            .memories
            .iter()
            .map(|m| lock(m).held_bytes())
            .sum()
    }

    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    pub fn queue_len(&self) -> usize {
        self.queue_len
    }

    /// Runs `check` on a pool thread and waits for its verdict, or answers
    /// [`Submitted::Full`] at once when `queue_len` checks are already waiting.
    pub fn check(&self, check: Check) -> Submitted {
        let Some(queue) = &self.queue else {
            return Submitted::Full;
        };
        let (reply, verdict) = mpsc::sync_channel(1);
        let m = &crate::metrics::get().auth;
        match queue.try_send(Job { check, reply }) {
            Ok(()) => m.checks_queued.inc(),
            Err(TrySendError::Full(_)) => {
                m.check_rejections.inc();
                return Submitted::Full;
            }
            Err(TrySendError::Disconnected(_)) => {
                log::error!("the password verifier threads are gone");
                return Submitted::Full;
            }
        }
        match verdict.recv_timeout(REPLY_TIMEOUT) {
            Ok(v) => Submitted::Done(v),
            Err(_) => Submitted::Full,
        }
    }
}

impl Drop for VerifyPool {
    fn drop(&mut self) {
        self.queue = None;
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

fn run(rx: &Mutex<Receiver<Job>>, unknown_salt: &[u8; 16], shared: &Shared, me: usize) {
    // Short waits, so the thread holding the queue's lock looks at the quiet
    // time often (the others wait for that lock, not for a job).
    let wait = (shared.release_after / 4).max(Duration::from_millis(10));
    loop {
        let received = lock(rx).recv_timeout(wait);
        let job = match received {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                shared.release_if_idle();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return, // the pool was dropped
        };
        let mut memory = lock(&shared.memories[me]);
        let m = &crate::metrics::get().auth;
        m.checks_queued.dec();
        m.checks_run.inc();
        let verdict = catch_unwind(AssertUnwindSafe(|| match &job.check {
            Check::Stored { hash, password } => password::verify(hash, password, &mut memory),
            Check::Unknown { password, like } => {
                let costed = like.as_deref().is_some_and(|h| {
                    password::verify(h, password, &mut memory) != Verdict::Unusable
                });
                if !costed {
                    password::burn_like_a_check(password, unknown_salt, &mut memory);
                }
                Verdict::Mismatch
            }
        }))
        .unwrap_or_else(|_| {
            log::error!("a password check panicked; counted as a mismatch");
            Verdict::Mismatch
        });
        drop(memory);
        shared
            .last_check_ms
            .store(shared.now_ms(), Ordering::Relaxed);
        let _ = job.reply.send(verdict);
    }
}

#[cfg(test)]
mod tests {
    use super::super::password::cheap_hash;
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    /// An argon2id hash that takes a few hundred ms to check (1 MiB, 800 passes).
    /// A hash whose check takes seconds even on a fast, idle machine (800
    /// passes once finished in under 0.4 s on an idle CI machine and the
    /// test below saw no full queue), so the checks below overlap for sure.
    fn slow_hash(pw: &str) -> String {
        let params = Params::new(1024, 6000, 1, None).expect("params");
        let salt = SaltString::encode_b64(&[9u8; 16]).expect("salt");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(pw.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    #[test]
    fn argon2_memory_is_released_after_a_quiet_spell_and_comes_back() {
        use super::super::password::HASH_BLOCK_BYTES as BLOCK_BYTES;
        let quiet = Duration::from_millis(400);
        let pool = VerifyPool::start_releasing_after(2, 4, [5; 16], quiet).expect("pool");
        assert_eq!(pool.held_bytes(), 0, "nothing before the first check");
        let hash = cheap_hash("pw");
        let stored = || Check::Stored {
            hash: hash.clone(),
            password: "pw".into(),
        };
        assert_eq!(pool.check(stored()), Submitted::Done(Verdict::Match));
        assert_eq!(
            pool.held_bytes(),
            BLOCK_BYTES,
            "the checking thread's memory"
        );
        let released = Instant::now() + Duration::from_secs(10);
        while pool.held_bytes() > 0 {
            assert!(Instant::now() < released, "memory still held after 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(pool.check(stored()), Submitted::Done(Verdict::Match));
        assert_eq!(pool.held_bytes(), BLOCK_BYTES, "allocated again by a check");
    }

    #[test]
    fn checks_run_on_the_pool_and_a_full_queue_is_refused_at_once() {
        let pool = VerifyPool::start(1, 1, [3; 16]).expect("pool");
        assert_eq!((pool.threads(), pool.queue_len()), (1, 1));
        let hash = cheap_hash("pw");
        let stored = |pw: &str| Check::Stored {
            hash: hash.clone(),
            password: pw.into(),
        };
        assert_eq!(pool.check(stored("pw")), Submitted::Done(Verdict::Match));
        assert_eq!(pool.check(stored("no")), Submitted::Done(Verdict::Mismatch));
        assert_eq!(
            pool.check(Check::Unknown {
                like: None,
                password: "pw".into()
            }),
            Submitted::Done(Verdict::Mismatch)
        );

        // One slow check running, one waiting: the next is refused at once.
        let slow = slow_hash("slow");
        std::thread::scope(|s| {
            let running = s.spawn(|| {
                pool.check(Check::Stored {
                    hash: slow.clone(),
                    password: "slow".into(),
                })
            });
            std::thread::sleep(Duration::from_millis(300));
            let waiting = s.spawn(|| {
                pool.check(Check::Stored {
                    hash: slow.clone(),
                    password: "wrong".into(),
                })
            });
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(pool.check(stored("pw")), Submitted::Full);
            assert_eq!(
                running.join().expect("running"),
                Submitted::Done(Verdict::Match)
            );
            assert_eq!(
                waiting.join().expect("waiting"),
                Submitted::Done(Verdict::Mismatch)
            );
        });
        assert_eq!(pool.check(stored("pw")), Submitted::Done(Verdict::Match));
        drop(pool); // joins the thread
    }
}
