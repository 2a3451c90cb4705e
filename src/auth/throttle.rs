//! throttle: back-off after repeated failed logins, per (user, client
//! address) and per client address, in bounded memory.
//!
//! A pair (user, address) may fail [`Limits::pair_block_after`] times in a
//! row; from then on each failure blocks that pair for a back-off that
//! doubles from [`Limits::first_backoff`] up to [`Limits::max_backoff`].
//! An address gets the same treatment after [`Limits::address_block_after`]
//! failures over any user names. A success clears its pair (never the
//! address: one valid account must not buy an attacker fresh guesses). A
//! record left alone for [`Limits::forget_after`] starts over. Each of the
//! two maps holds at most [`Limits::capacity`] records; when full, forgotten
//! records go first, then the one whose last failure is oldest.
//!
//! Nothing here is keyed by user name alone: failures from one address can
//! never lock a user out of another address.
//!
//! [`InFlight`] caps the checks one address may have queued or running at
//! once, so that a flood from a few addresses cannot take every place in the
//! verifier queue from the others; it holds an entry only while a check of
//! that address is under way.
//!
//! It must never sleep, count a request it refused (a blocked client does
//! not extend its own block by retrying), or grow past its capacity.

use super::{lock, Key};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tunables; `Limits::default()` is what the server uses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The failure (in a row) of one user from one address that starts the back-off.
    pub pair_block_after: u32,
    /// The failure of any user from one address that starts its back-off.
    pub address_block_after: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// A record with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Records kept per map (pairs, addresses).
    pub capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pair_block_after: 10,
            address_block_after: 30,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            forget_after: Duration::from_secs(15 * 60),
            capacity: 10_000,
        }
    }
}

#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

impl Record {
    fn blocked_for(&self, now: Instant) -> Option<Duration> {
        let left = self.blocked_until?.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }
}

/// One bounded map of records.
struct Records<K> {
    map: HashMap<K, Record>,
}

impl<K: Hash + Eq + Copy> Records<K> {
    fn new() -> Self {
        Records {
            map: HashMap::new(),
        }
    }

    fn blocked_for(&self, key: &K, now: Instant) -> Option<Duration> {
        self.map.get(key)?.blocked_for(now)
    }

    fn fail(&mut self, key: K, block_after: u32, l: &Limits, now: Instant) -> u32 {
        if !self.map.contains_key(&key) && self.map.len() >= l.capacity {
            self.make_room(l, now);
        }
        let record = self.map.entry(key).or_insert(Record {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        });
        if now.saturating_duration_since(record.last_failure) >= l.forget_after {
            record.failures = 0;
            record.blocked_until = None;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        if record.failures >= block_after {
            let doublings = (record.failures - block_after).min(30);
            let backoff = l
                .first_backoff
                .saturating_mul(1u32 << doublings)
                .min(l.max_backoff);
            record.blocked_until = Some(now + backoff);
        }
        record.failures
    }

    fn make_room(&mut self, l: &Limits, now: Instant) {
        self.map
            .retain(|_, r| now.saturating_duration_since(r.last_failure) < l.forget_after);
        if self.map.len() >= l.capacity {
            let stalest = self
                .map
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                self.map.remove(&k);
            }
        }
    }
}

struct Maps {
    pairs: Records<(Key, IpAddr)>,
    addresses: Records<IpAddr>,
}

/// The failure records of the process.
pub struct Throttle {
    limits: Limits,
    maps: Mutex<Maps>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits: Limits {
                capacity: limits.capacity.max(1),
                ..limits
            },
            maps: Mutex::new(Maps {
                pairs: Records::new(),
                addresses: Records::new(),
            }),
        }
    }

    /// Whole seconds (at least 1) `user` (keyed hash) must wait before
    /// trying from `ip`, if its pair or its address is backing off.
    pub fn retry_after(&self, user: &Key, ip: IpAddr, now: Instant) -> Option<u64> {
        let ip = address_key(ip);
        let maps = lock(&self.maps);
        let wait = maps
            .pairs
            .blocked_for(&(*user, ip), now)
            .max(maps.addresses.blocked_for(&ip, now))?;
        Some(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Records a failed check of `user` from `ip`.
    pub fn failed(&self, user: &Key, ip: IpAddr, now: Instant) {
        let ip = address_key(ip);
        let l = &self.limits;
        let mut maps = lock(&self.maps);
        maps.pairs.fail((*user, ip), l.pair_block_after, l, now);
        maps.addresses.fail(ip, l.address_block_after, l, now);
    }

    /// Clears the record of `user` from `ip` after a correct password.
    pub fn succeeded(&self, user: &Key, ip: IpAddr) {
        lock(&self.maps).pairs.map.remove(&(*user, address_key(ip)));
    }

    /// Records held now, as (pairs, addresses).
    pub fn len(&self) -> (usize, usize) {
        let maps = lock(&self.maps);
        (maps.pairs.map.len(), maps.addresses.map.len())
    }
}

/// Checks under way per address, at most `per_address` each.
pub struct InFlight {
    per_address: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// A place taken in [`InFlight`]; given back on drop.
pub struct Place<'a> {
    owner: &'a InFlight,
    ip: IpAddr,
}

impl InFlight {
    pub fn new(per_address: usize) -> InFlight {
        InFlight {
            per_address: per_address.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more check from `ip`, unless it has `per_address` already.
    pub fn enter(&self, ip: IpAddr) -> Option<Place<'_>> {
        let ip = address_key(ip);
        let mut counts = lock(&self.counts);
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        Some(Place { owner: self, ip })
    }

    /// Addresses with a check under way.
    pub fn addresses(&self) -> usize {
        lock(&self.counts).len()
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut counts = lock(&self.owner.counts);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// The unit failures are counted per: an IPv4 address, or an IPv6 /64 (one
/// host usually owns a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    const ALICE: Key = [1; 32];
    const BOB: Key = [2; 32];

    #[test]
    fn a_pair_backs_off_doubling_and_other_addresses_are_untouched() {
        let t = Throttle::new(Limits::default());
        let now = Instant::now();
        let from = ip("192.0.2.2");
        for _ in 0..9 {
            t.failed(&ALICE, from, now);
        }
        assert_eq!(
            t.retry_after(&ALICE, from, now),
            None,
            "9 failures are free"
        );
        let mut at = now;
        for want in [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300] {
            t.failed(&ALICE, from, at);
            assert_eq!(t.retry_after(&ALICE, from, at), Some(want));
            at += Duration::from_secs(want);
            assert_eq!(t.retry_after(&ALICE, from, at), None, "over after {want}s");
        }
        assert_eq!(t.retry_after(&ALICE, ip("192.0.2.3"), at), None);
        assert_eq!(
            t.retry_after(&BOB, from, now),
            None,
            "bob from the same address"
        );
        t.succeeded(&ALICE, from);
        t.failed(&ALICE, from, at);
        assert_eq!(
            t.retry_after(&ALICE, from, at),
            None,
            "a success starts over"
        );
    }

    #[test]
    fn an_address_backs_off_over_any_user_names_and_a_quiet_record_is_forgotten() {
        let t = Throttle::new(Limits::default());
        let now = Instant::now();
        let from = ip("2001:db8:1:2::1");
        for n in 0..30u8 {
            t.failed(&[n; 32], ip(&format!("2001:db8:1:2::{n}")), now);
        }
        assert_eq!(t.retry_after(&BOB, from, now), Some(1), "the whole /64");
        assert_eq!(t.retry_after(&BOB, ip("2001:db8:1:3::1"), now), None);
        let later = now + Limits::default().forget_after;
        t.failed(&BOB, from, later);
        assert_eq!(t.retry_after(&BOB, from, later), None, "forgotten");
        assert_eq!(address_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
    }

    #[test]
    fn in_flight_caps_each_address_and_forgets_it_when_done() {
        let f = InFlight::new(2);
        let a = ip("192.0.2.2");
        let (p1, p2) = (f.enter(a).expect("1"), f.enter(a).expect("2"));
        assert!(f.enter(a).is_none(), "a third from the same address");
        assert!(f.enter(ip("::ffff:192.0.2.2")).is_none(), "mapped IPv4 too");
        let other = f.enter(ip("192.0.2.3")).expect("another address");
        assert_eq!(f.addresses(), 2);
        drop(p1);
        let p3 = f.enter(a).expect("a place freed");
        drop((p2, p3, other));
        assert_eq!(f.addresses(), 0, "no entry outlives its checks");
    }

    #[test]
    fn the_maps_stay_bounded() {
        let t = Throttle::new(Limits {
            capacity: 16,
            ..Limits::default()
        });
        let now = Instant::now();
        for n in 0..100u32 {
            let at = now + Duration::from_millis(n.into());
            t.failed(
                &[n as u8; 32],
                ip(&format!("10.0.{}.{}", n / 256, n % 256)),
                at,
            );
        }
        assert_eq!(t.len(), (16, 16));
        // The newest stay.
        let maps = lock(&t.maps);
        assert!(maps.addresses.map.contains_key(&ip("10.0.0.99")));
        assert!(!maps.addresses.map.contains_key(&ip("10.0.0.0")));
    }
}
