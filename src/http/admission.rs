//! Admission: the connection caps (in total and per client address), the
//! guard that gives a connection's slot back when it goes away, and the
//! rate-limited warnings for refusals and accept failures.
//!
//! It must never block (the acceptor calls it for every connection), never
//! read request data, and never log more than one line per kind of trouble
//! per window however many clients cause it.

use super::server::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one warning line per kind in this window; the rest are counted.
const WARN_WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Counts {
    total: usize,
    /// Open connections per client address; entries at zero are removed.
    per_ip: HashMap<IpAddr, u32>,
}

/// The open-connection counts and their caps.
pub(crate) struct Admission {
    counts: Mutex<Counts>,
    max_total: usize,
    max_per_ip: usize,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Refusal {
    Total,
    PerAddress,
}

/// One open connection's place in the counts; given back on drop.
pub(crate) struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.admission.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission {
            counts: Mutex::new(Counts::default()),
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
        })
    }

    pub(crate) fn max_total(&self) -> usize {
        self.max_total
    }

    pub(crate) fn max_per_ip(&self) -> usize {
        self.max_per_ip
    }

    /// A slot for one more connection from `ip`, or why there is none.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = ip.to_canonical();
        let mut c = lock(&self.counts);
        if c.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n as usize >= self.max_per_ip {
            return Err(Refusal::PerAddress);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }

    /// Open connections in total (for tests and logs).
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        lock(&self.counts).total
    }
}

/// The kinds of trouble that are logged at most once per window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Trouble {
    OverTotalCap,
    OverAddressCap,
    AcceptFailed,
}

const KINDS: usize = 3;

impl Trouble {
    fn index(self) -> usize {
        match self {
            Trouble::OverTotalCap => 0,
            Trouble::OverAddressCap => 1,
            Trouble::AcceptFailed => 2,
        }
    }
}

#[derive(Default, Clone)]
struct Window {
    /// When the last line of this kind was logged.
    last: Option<Instant>,
    /// Events since then that were not logged.
    suppressed: u64,
    /// What the summary line says about them.
    summary: String,
}

/// Warnings limited to one line per kind per [`WARN_WINDOW`], with a count of
/// what was left out.
pub(crate) struct Warnings {
    windows: Mutex<[Window; KINDS]>,
}

impl Warnings {
    pub(crate) fn new() -> Warnings {
        Warnings {
            windows: Mutex::new(Default::default()),
        }
    }

    /// Logs `line()` unless a line of this kind went out in the current
    /// window; then it is only counted, and summarised by [`Warnings::flush`]
    /// as "`n` `summary` in the last 10 s".
    pub(crate) fn warn(&self, kind: Trouble, summary: &str, line: impl FnOnce() -> String) {
        let now = Instant::now();
        let mut w = lock(&self.windows);
        let slot = &mut w[kind.index()];
        match slot.last {
            Some(t) if now.duration_since(t) < WARN_WINDOW => {
                slot.suppressed += 1;
                if slot.summary != summary {
                    slot.summary = summary.to_string();
                }
            }
            _ => {
                if slot.suppressed > 0 {
                    log::warn!(
                        "{} {} in the last {} s",
                        slot.suppressed,
                        slot.summary,
                        WARN_WINDOW.as_secs()
                    );
                    slot.suppressed = 0;
                }
                slot.last = Some(now);
                drop(w);
                log::warn!(
                    "{} (more like this are summarised every {} s)",
                    line(),
                    WARN_WINDOW.as_secs()
                );
            }
        }
    }

    /// Logs the summary of every kind whose window has ended with events left out.
    pub(crate) fn flush(&self) {
        let now = Instant::now();
        let mut w = lock(&self.windows);
        for slot in w.iter_mut() {
            let ended = slot
                .last
                .is_none_or(|t| now.duration_since(t) >= WARN_WINDOW);
            if slot.suppressed > 0 && ended {
                log::warn!(
                    "{} {} in the last {} s",
                    slot.suppressed,
                    slot.summary,
                    WARN_WINDOW.as_secs()
                );
                slot.suppressed = 0;
                slot.last = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let a = Admission::new(3, 2);
        let one: IpAddr = "127.0.0.2".parse().expect("ip");
        let two: IpAddr = "::ffff:127.0.0.3".parse().expect("ip");
        let s1 = a.admit(one).expect("first");
        let s2 = a.admit(one).expect("second");
        assert_eq!(a.admit(one).err(), Some(Refusal::PerAddress));
        let s3 = a.admit(two).expect("other address");
        assert_eq!(
            a.admit("127.0.0.4".parse().expect("ip")).err(),
            Some(Refusal::Total)
        );
        drop(s1);
        assert_eq!(a.open(), 2);
        let s4 = a.admit(one).expect("slot given back");
        // IPv4-mapped IPv6 counts as the IPv4 address.
        drop(s3);
        let _s5 = a.admit("127.0.0.3".parse().expect("ip")).expect("mapped");
        assert_eq!(
            a.admit("::ffff:127.0.0.3".parse().expect("ip")).err(),
            Some(Refusal::Total)
        );
        drop((s2, s4));
        assert_eq!(a.open(), 1);
        assert_eq!(lock(&a.counts).per_ip.len(), 1, "empty entries are removed");
    }
}
