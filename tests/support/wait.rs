//! Bounded waiting: every poll loop in the suite goes through here, so each
//! has a deadline and says what it waited for when it runs out.
//! Must NEVER loop without a deadline or sleep longer than its poll step.

use std::time::{Duration, Instant};

/// How often the helpers below poll.
pub const POLL: Duration = Duration::from_millis(50);

/// Polls `f` every 50 ms until it returns `Some`, failing the test after
/// `limit` with `what` in the message.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// [`wait_for`] for a condition.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, limit, || f().then_some(()))
}

/// A deadline to bound a hand-written loop: `while d.left() { ... }`.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    end: Instant,
    limit: Duration,
}

impl Deadline {
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            end: Instant::now() + limit,
            limit,
        }
    }

    /// True while time is left.
    pub fn left(&self) -> bool {
        Instant::now() < self.end
    }

    /// The time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// Fails the test, naming `what`, once the deadline has passed.
    pub fn check(&self, what: &str) {
        assert!(
            self.left(),
            "timed out after {:?} waiting for {what}",
            self.limit
        );
    }
}
