//! Scanner resistance: failures per source address (digest failures, requests from sources in
//! no trunk's ACL) and a temporary ban once a source reaches `ban_failures` within
//! `ban_window_secs`. Sans-IO: `now` comes in.
//!
//! The table holds at most `capacity` sources; when full the oldest entry (first inserted) is
//! evicted, and entries idle for a window (and not banned) age out as new ones arrive. The
//! insertion order is a queue of (address, sequence) pairs; a pair whose entry was removed or
//! re-inserted is skipped, and the queue is compacted when it holds twice the capacity.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failures within `window` that ban a source (0: never ban).
    pub failures: u32,
    /// The counting window.
    pub window: Duration,
    /// How long a ban lasts.
    pub ban: Duration,
    /// Most sources tracked.
    pub capacity: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    since: Instant,
    last: Instant,
    banned_until: Option<Instant>,
    seq: u64,
}

/// The per-source failure table.
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    map: HashMap<IpAddr, Entry>,
    order: VecDeque<(IpAddr, u64)>,
    seq: u64,
}

impl Guard {
    /// An empty table.
    pub fn new(cfg: GuardConfig) -> Self {
        Self {
            cfg: GuardConfig { capacity: cfg.capacity.max(1), ..cfg },
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
        }
    }

    /// New thresholds (reload); entries are kept, the table shrinks to the new capacity.
    pub fn set_config(&mut self, cfg: GuardConfig) {
        self.cfg = GuardConfig { capacity: cfg.capacity.max(1), ..cfg };
        while self.map.len() > self.cfg.capacity {
            self.evict_oldest();
        }
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True while `ip` is banned; an expired ban is lifted (and its count cleared).
    pub fn is_banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        let Some(e) = self.map.get_mut(&ip) else { return false };
        match e.banned_until {
            Some(t) if now < t => true,
            Some(_) => {
                e.banned_until = None;
                e.failures = 0;
                e.since = now;
                false
            }
            None => false,
        }
    }

    /// Counts one failure of `ip`; true when it bans the source now.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.age(now);
        let cfg = self.cfg;
        if !self.map.contains_key(&ip) {
            if self.map.len() >= cfg.capacity {
                self.evict_oldest();
            }
            self.seq += 1;
            let e = Entry { failures: 0, since: now, last: now, banned_until: None, seq: self.seq };
            self.map.insert(ip, e);
            self.order.push_back((ip, self.seq));
            if self.order.len() > 2 * cfg.capacity {
                self.compact();
            }
        }
        let Some(e) = self.map.get_mut(&ip) else { return false };
        if now.saturating_duration_since(e.since) > cfg.window {
            e.failures = 0;
            e.since = now;
        }
        e.last = now;
        e.failures = e.failures.saturating_add(1);
        if cfg.failures > 0 && e.failures >= cfg.failures && e.banned_until.is_none() {
            e.banned_until = Some(now + cfg.ban);
            return true;
        }
        false
    }

    /// Forgets `ip`'s failures (it authenticated).
    pub fn forgive(&mut self, ip: IpAddr) {
        if self.map.get(&ip).is_some_and(|e| e.banned_until.is_none()) {
            self.map.remove(&ip);
        }
    }

    /// Drops entries at the front that are idle for a window and not banned.
    fn age(&mut self, now: Instant) {
        while let Some(&(ip, seq)) = self.order.front() {
            match self.map.get(&ip) {
                Some(e) if e.seq == seq => {
                    let idle = now.saturating_duration_since(e.last) > self.cfg.window;
                    let ban_over = e.banned_until.is_none_or(|t| now >= t);
                    if !(idle && ban_over) {
                        return;
                    }
                    self.map.remove(&ip);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((ip, seq)) = self.order.pop_front() {
            if self.map.get(&ip).is_some_and(|e| e.seq == seq) {
                self.map.remove(&ip);
                return;
            }
        }
    }

    fn compact(&mut self) {
        let map = &self.map;
        self.order.retain(|(ip, seq)| map.get(ip).is_some_and(|e| e.seq == *seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GuardConfig {
        GuardConfig { failures: 3, window: Duration::from_secs(10), ban: Duration::from_secs(30), capacity: 4 }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, n])
    }

    #[test]
    fn bans_after_failures_and_unbans_after_ban_time() {
        let t0 = Instant::now();
        let mut g = Guard::new(cfg());
        assert!(!g.fail(ip(1), t0));
        assert!(!g.fail(ip(1), t0));
        assert!(g.fail(ip(1), t0));
        assert!(!g.fail(ip(1), t0), "a ban is reported once");
        assert!(g.is_banned(ip(1), t0 + Duration::from_secs(29)));
        assert!(!g.is_banned(ip(1), t0 + Duration::from_secs(30)));
        assert!(!g.fail(ip(1), t0 + Duration::from_secs(31)), "the count starts over");
    }

    #[test]
    fn window_resets_and_forgive() {
        let t0 = Instant::now();
        let mut g = Guard::new(cfg());
        g.fail(ip(1), t0);
        g.fail(ip(1), t0);
        assert!(!g.fail(ip(1), t0 + Duration::from_secs(11)));
        g.forgive(ip(1));
        assert!(g.is_empty());
    }

    #[test]
    fn bounded_oldest_evicted_and_ages_out() {
        let t0 = Instant::now();
        let mut g = Guard::new(cfg());
        for n in 0..200u8 {
            g.fail(ip(n), t0);
            assert!(g.len() <= 4);
            assert!(g.order.len() <= 8);
        }
        assert!(g.map.contains_key(&ip(199)) && !g.map.contains_key(&ip(0)));
        g.fail(ip(250), t0 + Duration::from_secs(60));
        assert_eq!(g.len(), 1, "idle entries aged out");
    }

    #[test]
    fn churn_keeps_the_queue_bounded() {
        let t0 = Instant::now();
        let mut g = Guard::new(cfg());
        for _ in 0..1000 {
            g.fail(ip(1), t0);
            g.forgive(ip(1));
            assert!(g.order.len() <= 8);
        }
    }
}
