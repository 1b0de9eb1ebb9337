//! The counters admission decides on, behind one trait ([`CounterStore`]): live-call leases
//! (channels), token buckets (CPS) and rolling windows (hour/day/week caps).
//!
//! [`MemoryStore`] is the default, for one host. A shared store (the scale-out issue) implements
//! the same trait; the trait's shape follows the lesson of Kamailio/OpenSIPS clusters: live calls
//! are *leases* (one per call, released by id, idempotently), never bare increments and
//! decrements, so a count cannot go negative or drift when a release is lost or repeated.
//!
//! Every table is bounded: leases by the live calls, buckets and windows by the trunks and
//! accounts of the configuration.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use xtrunk_config::{AccountId, TrunkId};

/// What a counter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A trunk.
    Trunk(TrunkId),
    /// An account (across its trunks).
    Account(AccountId),
}

/// A call's direction relative to a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// The call arrives from the trunk/account.
    Inbound,
    /// The call is sent to the trunk/account.
    Outbound,
}

/// One channel a call wants: in `scope`, in direction `dir`, within the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// Where.
    pub scope: Scope,
    /// Which way.
    pub dir: Dir,
    /// Most live calls in `scope`, both directions together.
    pub total: Option<u32>,
    /// Most live calls in `scope` in `dir`.
    pub in_dir: Option<u32>,
}

/// A live call's hold on its channels; released exactly once by [`CounterStore::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease(pub u64);

/// A token bucket's parameters (GCRA: one call every `interval`, `burst` at once).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Calls per second.
    pub per_sec: f64,
    /// Calls that may pass at once.
    pub burst: u32,
    /// How long a call may wait for its slot (zero: fail fast).
    pub max_wait: Duration,
    /// How many calls may wait at once.
    pub max_queued: u32,
}

/// The outcome of [`CounterStore::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Go now.
    Now,
    /// A slot is reserved at this time (the call waits for it).
    At(Instant),
    /// No slot within the wait bound: retry after this long.
    Refused(Duration),
}

/// The rolling windows of the caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// The last hour.
    Hour,
    /// The last 24 hours.
    Day,
    /// The last 7 × 24 hours.
    Week,
}

impl Period {
    /// All, shortest first.
    pub const ALL: [Period; 3] = [Period::Hour, Period::Day, Period::Week];

    /// The name used in reasons and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }

    /// (window length, bucket length) in seconds.
    pub(crate) fn shape(self) -> (u64, u64) {
        match self {
            Self::Hour => (3600, 60),
            Self::Day => (86_400, 900),
            Self::Week => (7 * 86_400, 3600),
        }
    }
}

/// Counters of admission; see the module docs. Time always comes in (`now`).
pub trait CounterStore {
    /// Takes one channel per `want` if none is full; else the index of the first full one.
    fn try_acquire(&mut self, wants: &[Want], now: Instant) -> Result<Lease, usize>;
    /// Releases a lease; false if it was not held (released already, or never issued).
    fn release(&mut self, lease: Lease) -> bool;
    /// Live calls in `scope`: (inbound, outbound).
    fn channels(&self, scope: Scope) -> (u32, u32);
    /// One call through the bucket of `scope`.
    fn take(&mut self, scope: Scope, rate: Rate, now: Instant) -> Take;
    /// Calls counted in `scope` over the rolling `period`.
    fn count(&mut self, scope: Scope, period: Period, now: Instant) -> u32;
    /// Counts one call in every rolling window of `scope`.
    fn record(&mut self, scope: Scope, now: Instant);
    /// Live leases.
    fn leases(&self) -> usize;
    /// Renames every scope after a reload renumbered trunks/accounts; a scope mapped to None
    /// (removed from the configuration) is dropped, and the leases holding it forget it.
    fn remap(&mut self, f: &dyn Fn(Scope) -> Option<Scope>);
    /// Learns the trunk and account names of a (new) configuration: a shared store keys its
    /// counters by name, the same on every edge. Default: nothing.
    fn rename(&mut self, _cfg: &xtrunk_config::Snapshot) {}
    /// Periodic work at `now` (a shared store refreshes its live leases). Default: nothing.
    fn tick(&mut self, _now: Instant) {}
    /// When [`CounterStore::tick`] wants to run next.
    fn next_tick(&self) -> Option<Instant> {
        None
    }
    /// Answers a whole admission request at once (a shared store: one round trip). None: walk
    /// it step by step ([`super::limits::admit_steps`]), the default.
    fn admit(&mut self, _req: &super::limits::AdmitRequest, _now: Instant) -> Option<super::limits::AdmitOutcome> {
        None
    }
    /// Tells the other edges that this one (`edge`) holds bindings of accept-register trunk
    /// `trunk` until `expires` (Unix seconds; None: none any more). Default: nothing.
    fn publish_bindings(&mut self, _trunk: &str, _edge: std::net::SocketAddr, _expires: Option<u64>, _now: Instant) {}
    /// The edges holding bindings of each of `trunks` now (by their `edge` address), None when
    /// the store has no such view (in memory, or unreachable).
    fn remote_bindings(&mut self, _trunks: &[String], _now: Instant) -> Option<Vec<Vec<std::net::SocketAddr>>> {
        None
    }
    /// Fraud detection of a new call in the shared store (every edge's calls of the account
    /// counted together). None: in this process ([`super::FraudTables`]), the default.
    fn fraud_call(
        &mut self,
        _account: AccountId,
        _f: &xtrunk_config::Fraud,
        _digits: &str,
        _now: Instant,
    ) -> Option<(super::fraud::Verdict, super::fraud::FraudKey)> {
        None
    }
    /// A call whose fraud entry is in the shared store ended; false: not one of those.
    fn fraud_ended(&mut self, _key: super::fraud::FraudKey, _talk_secs: Option<u64>) -> bool {
        false
    }
    /// A shared store's state (None: counters in this process).
    fn shared_status(&self) -> Option<super::SharedStatus> {
        None
    }
}

/// Calls per bucket of a rolling window; the oldest bucket falls off as time moves on.
#[derive(Debug, Clone)]
struct Window {
    /// Counts per bucket, a ring indexed by bucket number modulo its length.
    counts: Vec<u32>,
    /// The newest bucket number written.
    head: u64,
    bucket_secs: u64,
}

impl Window {
    fn new(p: Period) -> Self {
        let (span, bucket) = p.shape();
        // One bucket more than the span: a call is forgotten between span and span + one
        // bucket after it, never before (a cap of N never admits N + 1 within any span).
        Self { counts: vec![0; (span / bucket + 1) as usize], head: 0, bucket_secs: bucket }
    }

    fn advance(&mut self, secs: u64) {
        let b = secs / self.bucket_secs;
        let n = self.counts.len() as u64;
        if b > self.head {
            for i in (self.head + 1)..=b.min(self.head + n) {
                self.counts[(i % n) as usize] = 0;
            }
            self.head = b;
        }
    }

    fn sum(&mut self, secs: u64) -> u32 {
        self.advance(secs);
        self.counts.iter().fold(0u32, |a, c| a.saturating_add(*c))
    }

    fn add(&mut self, secs: u64) {
        self.advance(secs);
        let n = self.counts.len() as u64;
        let c = &mut self.counts[(self.head % n) as usize];
        *c = c.saturating_add(1);
    }
}

/// The in-memory [`CounterStore`].
#[derive(Debug)]
pub struct MemoryStore {
    origin: Option<Instant>,
    next: u64,
    leases: HashMap<Lease, Vec<(Scope, Dir)>>,
    live: HashMap<Scope, (u32, u32)>,
    /// GCRA: the theoretical arrival time of the next call, per scope.
    tat: HashMap<Scope, Instant>,
    windows: HashMap<Scope, [Window; 3]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            origin: None,
            next: 1,
            leases: HashMap::new(),
            live: HashMap::new(),
            tat: HashMap::new(),
            windows: HashMap::new(),
        }
    }

    fn secs(&mut self, now: Instant) -> u64 {
        let o = *self.origin.get_or_insert(now);
        now.saturating_duration_since(o).as_secs()
    }

    fn windows(&mut self, scope: Scope) -> &mut [Window; 3] {
        self.windows.entry(scope).or_insert_with(|| Period::ALL.map(Window::new))
    }
}

fn slot(p: Period) -> usize {
    match p {
        Period::Hour => 0,
        Period::Day => 1,
        Period::Week => 2,
    }
}

impl CounterStore for MemoryStore {
    fn try_acquire(&mut self, wants: &[Want], _now: Instant) -> Result<Lease, usize> {
        for (i, w) in wants.iter().enumerate() {
            // Calls asking twice for one scope (a call within one account) count once each.
            let earlier = wants[..i].iter().filter(|x| x.scope == w.scope);
            let (e_all, e_dir) = earlier.fold((0, 0), |(a, d), x| (a + 1, d + u32::from(x.dir == w.dir)));
            let (i_n, o_n) = self.live.get(&w.scope).copied().unwrap_or((0, 0));
            let here = if w.dir == Dir::Inbound { i_n } else { o_n };
            if w.total.is_some_and(|t| i_n + o_n + e_all >= t) || w.in_dir.is_some_and(|t| here + e_dir >= t) {
                return Err(i);
            }
        }
        let lease = Lease(self.next);
        self.next += 1;
        for w in wants {
            let e = self.live.entry(w.scope).or_insert((0, 0));
            match w.dir {
                Dir::Inbound => e.0 += 1,
                Dir::Outbound => e.1 += 1,
            }
        }
        self.leases.insert(lease, wants.iter().map(|w| (w.scope, w.dir)).collect());
        Ok(lease)
    }

    fn release(&mut self, lease: Lease) -> bool {
        let Some(holds) = self.leases.remove(&lease) else { return false };
        for (scope, dir) in holds {
            if let Some(e) = self.live.get_mut(&scope) {
                let n = if dir == Dir::Inbound { &mut e.0 } else { &mut e.1 };
                *n = n.saturating_sub(1);
                if *e == (0, 0) {
                    self.live.remove(&scope);
                }
            }
        }
        true
    }

    fn channels(&self, scope: Scope) -> (u32, u32) {
        self.live.get(&scope).copied().unwrap_or((0, 0))
    }

    fn take(&mut self, scope: Scope, rate: Rate, now: Instant) -> Take {
        let interval = Duration::from_secs_f64(1.0 / rate.per_sec);
        let tolerance = interval * rate.burst.saturating_sub(1);
        let tat = self.tat.get(&scope).copied().unwrap_or(now).max(now);
        // The earliest this call may start: its theoretical time less the burst tolerance.
        let start = tat.checked_sub(tolerance).unwrap_or(now).max(now);
        let wait = start - now;
        if wait.is_zero() {
            self.tat.insert(scope, tat + interval);
            return Take::Now;
        }
        // Calls ahead of this one in the queue: one per interval of wait.
        let ahead = (wait.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
        if wait <= rate.max_wait && ahead <= u64::from(rate.max_queued) {
            self.tat.insert(scope, tat + interval);
            return Take::At(start);
        }
        Take::Refused(wait.saturating_sub(rate.max_wait).max(interval))
    }

    fn count(&mut self, scope: Scope, period: Period, now: Instant) -> u32 {
        let s = self.secs(now);
        match self.windows.get_mut(&scope) {
            Some(w) => w[slot(period)].sum(s),
            None => 0,
        }
    }

    fn record(&mut self, scope: Scope, now: Instant) {
        let s = self.secs(now);
        for w in self.windows(scope) {
            w.add(s);
        }
    }

    fn leases(&self) -> usize {
        self.leases.len()
    }

    fn remap(&mut self, f: &dyn Fn(Scope) -> Option<Scope>) {
        for holds in self.leases.values_mut() {
            *holds = holds.iter().filter_map(|(s, d)| f(*s).map(|s| (s, *d))).collect();
        }
        self.live = std::mem::take(&mut self.live).into_iter().filter_map(|(s, v)| f(s).map(|s| (s, v))).collect();
        self.tat = std::mem::take(&mut self.tat).into_iter().filter_map(|(s, v)| f(s).map(|s| (s, v))).collect();
        self.windows =
            std::mem::take(&mut self.windows).into_iter().filter_map(|(s, v)| f(s).map(|s| (s, v))).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Scope = Scope::Trunk(TrunkId(0));
    const A: Scope = Scope::Account(AccountId(0));

    fn want(scope: Scope, dir: Dir, total: u32) -> Want {
        Want { scope, dir, total: Some(total), in_dir: None }
    }

    #[test]
    fn leases_count_and_never_go_negative() {
        let mut s = MemoryStore::new();
        let now = Instant::now();
        let a = s.try_acquire(&[want(T, Dir::Inbound, 2)], now).unwrap();
        let b = s.try_acquire(&[want(T, Dir::Outbound, 2)], now).unwrap();
        assert_eq!(s.try_acquire(&[want(T, Dir::Inbound, 2)], now), Err(0));
        assert_eq!(s.channels(T), (1, 1));
        assert!(s.release(a));
        assert!(!s.release(a), "a second release changes nothing");
        assert!(!s.release(Lease(999)));
        assert_eq!(s.channels(T), (0, 1));
        assert!(s.release(b));
        assert_eq!((s.channels(T), s.leases()), ((0, 0), 0));
    }

    #[test]
    fn the_split_bounds_one_direction() {
        let mut s = MemoryStore::new();
        let now = Instant::now();
        let w = Want { scope: A, dir: Dir::Inbound, total: Some(3), in_dir: Some(1) };
        s.try_acquire(&[w], now).unwrap();
        assert_eq!(s.try_acquire(&[w], now), Err(0));
        let out = Want { dir: Dir::Outbound, in_dir: None, ..w };
        s.try_acquire(&[out], now).unwrap();
        s.try_acquire(&[out], now).unwrap();
        assert_eq!(s.try_acquire(&[out], now), Err(0), "total of 3 reached");
    }

    #[test]
    fn a_call_within_one_scope_takes_two_channels() {
        let mut s = MemoryStore::new();
        let now = Instant::now();
        let both = [want(A, Dir::Inbound, 1), want(A, Dir::Outbound, 1)];
        assert_eq!(s.try_acquire(&both, now), Err(1));
        assert_eq!(s.leases(), 0);
    }

    #[test]
    fn bucket_fails_fast_or_queues() {
        let mut s = MemoryStore::new();
        let t0 = Instant::now();
        let fast = Rate { per_sec: 2.0, burst: 1, max_wait: Duration::ZERO, max_queued: 0 };
        assert_eq!(s.take(T, fast, t0), Take::Now);
        assert!(matches!(s.take(T, fast, t0), Take::Refused(_)));
        assert_eq!(s.take(T, fast, t0 + Duration::from_millis(500)), Take::Now);
        let q = Rate { per_sec: 2.0, burst: 1, max_wait: Duration::from_secs(1), max_queued: 10 };
        assert_eq!(s.take(A, q, t0), Take::Now);
        assert_eq!(s.take(A, q, t0), Take::At(t0 + Duration::from_millis(500)));
        assert_eq!(s.take(A, q, t0), Take::At(t0 + Duration::from_millis(1000)));
        assert!(matches!(s.take(A, q, t0), Take::Refused(_)), "1.5 s is over the 1 s bound");
        let short = Rate { max_queued: 1, max_wait: Duration::from_secs(9), ..q };
        let b = Scope::Account(AccountId(1));
        assert_eq!(s.take(b, short, t0), Take::Now);
        assert!(matches!(s.take(b, short, t0), Take::At(_)));
        assert!(matches!(s.take(b, short, t0), Take::Refused(_)), "queue of 1 is full");
    }

    #[test]
    fn remap_follows_renumbered_scopes() {
        let mut s = MemoryStore::new();
        let now = Instant::now();
        let t1 = Scope::Trunk(TrunkId(1));
        let l = s.try_acquire(&[want(T, Dir::Inbound, 5), want(t1, Dir::Outbound, 5)], now).unwrap();
        // Trunk 0 became trunk 1; trunk 1 was removed.
        s.remap(&|x| match x {
            Scope::Trunk(TrunkId(0)) => Some(t1),
            Scope::Trunk(_) => None,
            a => Some(a),
        });
        assert_eq!((s.channels(T), s.channels(t1)), ((0, 0), (1, 0)));
        assert!(s.release(l));
        assert_eq!(s.channels(t1), (0, 0));
    }

    #[test]
    fn windows_roll() {
        let mut s = MemoryStore::new();
        let t0 = Instant::now();
        for _ in 0..5 {
            s.record(T, t0);
        }
        assert_eq!(s.count(T, Period::Hour, t0 + Duration::from_secs(3599)), 5);
        assert_eq!(s.count(T, Period::Hour, t0 + Duration::from_secs(3661)), 0);
        assert_eq!(s.count(T, Period::Day, t0 + Duration::from_secs(3661)), 5);
        assert_eq!(s.count(T, Period::Week, t0 + Duration::from_secs(6 * 86_400)), 5);
        assert_eq!(s.count(T, Period::Week, t0 + Duration::from_secs(8 * 86_400)), 0);
        assert_eq!(s.count(A, Period::Hour, t0), 0);
    }
}
