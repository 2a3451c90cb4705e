//! Admission: the connection caps (in total and per client address), the
//! guard that gives a connection's slot back when it goes away, the few
//! connections admitted over the total cap while the readiness loop evicts
//! an idle one for each, the charge
//! of a connection's buffered head bytes against the global head budget, and
//! the rate-limited warnings for refusals and accept failures.
//!
//! It must never block (the acceptor calls it for every connection), never
//! read request data, and never log more than one line per kind of trouble
//! per window however many clients cause it.

use super::server::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one warning line per kind in this window; the rest are counted.
const WARN_WINDOW: Duration = Duration::from_secs(10);

/// Connections admitted over the total cap at once, each waiting for the
/// readiness loop to evict an idle connection for it (their descriptors come
/// out of the server's reserve); beyond, newcomers are refused at once.
pub(crate) const MAX_OVER_CAP: usize = 32;

#[derive(Default)]
struct Counts {
    total: usize,
    /// Open connections per client address; entries at zero are removed.
    per_ip: HashMap<IpAddr, u32>,
    /// Of `total`, the connections admitted over the cap that wait for an eviction.
    over: usize,
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
    /// Admitted over the total cap: an idle connection must be evicted for it.
    needs_room: bool,
}

impl Slot {
    /// True while this connection was admitted over the total cap and no
    /// connection has been evicted for it yet.
    pub(crate) fn needs_room(&self) -> bool {
        self.needs_room
    }

    /// A connection was evicted for this one: it is within the cap now.
    pub(crate) fn room_made(&mut self) {
        if std::mem::take(&mut self.needs_room) {
            let mut c = lock(&self.admission.counts);
            c.over = c.over.saturating_sub(1);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.admission.counts);
        if self.needs_room {
            c.over = c.over.saturating_sub(1);
        }
        c.total = c.total.saturating_sub(1);
        crate::metrics::get().transport.open.dec();
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

    /// A slot for one more connection from `ip`, or why there is none. At
    /// the total cap, up to [`MAX_OVER_CAP`] slots are given that
    /// [need room](Slot::needs_room): the readiness loop evicts an idle
    /// connection for each, or refuses it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = ip.to_canonical();
        let mut c = lock(&self.counts);
        if c.per_ip
            .get(&ip)
            .is_some_and(|&n| n as usize >= self.max_per_ip)
        {
            return Err(Refusal::PerAddress);
        }
        let needs_room = c.total >= self.max_total;
        if needs_room {
            if c.over >= MAX_OVER_CAP {
                return Err(Refusal::Total);
            }
            c.over += 1;
        }
        *c.per_ip.entry(ip).or_insert(0) += 1;
        c.total += 1;
        crate::metrics::get().transport.open.inc();
        Ok(Slot {
            admission: self.clone(),
            ip,
            needs_room,
        })
    }

    /// Runs `f` with a lookup of how many connections an address has open
    /// (the counts stay locked meanwhile: keep `f` short).
    pub(crate) fn with_counts<R>(&self, f: impl FnOnce(&dyn Fn(IpAddr) -> u32) -> R) -> R {
        let c = lock(&self.counts);
        f(&|ip: IpAddr| c.per_ip.get(&ip.to_canonical()).copied().unwrap_or(0))
    }

    /// Open connections in total (for tests and logs).
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        lock(&self.counts).total
    }
}

/// Connections whose file body the readiness loop sends (each holds the
/// file open too), and their cap (sized from the open-file headroom).
pub(crate) struct Sends {
    open: AtomicUsize,
    cap: usize,
}

/// One connection's place among [`Sends`]; given back on drop.
pub(crate) struct SendPermit(Arc<Sends>);

impl Sends {
    pub(crate) fn new(cap: usize) -> Arc<Sends> {
        Arc::new(Sends {
            open: AtomicUsize::new(0),
            cap,
        })
    }

    /// A place for one more, or None at the cap (the worker sends itself).
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<SendPermit> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            });
        taken.ok().map(|_| SendPermit(self.clone()))
    }
}

impl Drop for SendPermit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The bytes a connection's buffered request head holds, counted in the
/// server-wide total that the head budget bounds; given back on drop.
pub(crate) struct HeadCharge {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl HeadCharge {
    pub(crate) fn new(total: Arc<AtomicUsize>) -> HeadCharge {
        HeadCharge { total, bytes: 0 }
    }

    /// Charges `bytes` instead of what was charged so far; returns the new total.
    pub(crate) fn set(&mut self, bytes: usize) -> usize {
        let total = if bytes >= self.bytes {
            self.total.fetch_add(bytes - self.bytes, Ordering::AcqRel) + (bytes - self.bytes)
        } else {
            self.total.fetch_sub(self.bytes - bytes, Ordering::AcqRel) - (self.bytes - bytes)
        };
        self.bytes = bytes;
        total
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for HeadCharge {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// The kinds of trouble that are logged at most once per window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Trouble {
    OverTotalCap,
    OverAddressCap,
    AcceptFailed,
    OverHeadBudget,
    QueueTimeout,
}

const KINDS: usize = 5;

impl Trouble {
    fn index(self) -> usize {
        match self {
            Trouble::OverTotalCap => 0,
            Trouble::OverAddressCap => 1,
            Trouble::AcceptFailed => 2,
            Trouble::OverHeadBudget => 3,
            Trouble::QueueTimeout => 4,
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
        // At the total cap: admitted, but it needs room (an eviction).
        let mut over = a
            .admit("127.0.0.4".parse().expect("ip"))
            .expect("over the cap");
        assert!(over.needs_room() && !s3.needs_room());
        assert_eq!(a.open(), 4);
        over.room_made();
        assert!(!over.needs_room());
        assert_eq!(lock(&a.counts).over, 0);
        drop(over);
        let over = a
            .admit("127.0.0.4".parse().expect("ip"))
            .expect("over the cap");
        drop(over);
        assert_eq!(lock(&a.counts).over, 0, "given back when dropped unsettled");
        let held: Vec<Slot> = (0..MAX_OVER_CAP)
            .map(|i| a.admit(IpAddr::from([127, 1, 0, i as u8])).expect("over"))
            .collect();
        assert_eq!(
            a.admit("127.0.0.4".parse().expect("ip")).err(),
            Some(Refusal::Total),
            "at most MAX_OVER_CAP wait for room"
        );
        drop(held);
        drop(s1);
        assert_eq!(a.open(), 2);
        let s4 = a.admit(one).expect("slot given back");
        // IPv4-mapped IPv6 counts as the IPv4 address.
        drop(s3);
        let _s5 = a.admit("127.0.0.3".parse().expect("ip")).expect("plain");
        let s6 = a
            .admit("::ffff:127.0.0.3".parse().expect("ip"))
            .expect("mapped");
        assert!(s6.needs_room(), "over the total cap");
        assert_eq!(
            a.admit("127.0.0.3".parse().expect("ip")).err(),
            Some(Refusal::PerAddress),
            "the mapped address counted as 127.0.0.3"
        );
        drop(s6);
        drop((s2, s4));
        assert_eq!(a.open(), 1);
        assert_eq!(lock(&a.counts).per_ip.len(), 1, "empty entries are removed");
    }
}
