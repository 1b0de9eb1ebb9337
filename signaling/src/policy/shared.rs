//! [`RedisStore`]: the admission counters of several edges in one Redis-protocol server (#19).
//!
//! - **Channels are leases**: a call's hold is one member per (scope, direction) sorted set,
//!   scored by its expiry on the *server's* clock (`TIME` in the scripts, so edges' clocks do not
//!   matter). Counting first drops the expired members, so a crashed edge's calls stop counting
//!   within `lease_ttl_secs`, and nothing is ever decremented: no counter can go negative or
//!   stick when a release is lost or repeated. Live leases are refreshed every third of the TTL.
//! - **CPS** is the same GCRA as [`MemoryStore`], its theoretical arrival time kept in the server.
//! - **Caps** (hour/day/week) are one hash per scope and period, a field per bucket.
//! - Check-and-take is one script per call (atomic on the server; one round trip).
//! - **Degraded mode**: a round trip that fails or takes longer than `timeout_ms` marks the store
//!   down for `retry_secs`; meanwhile this edge decides alone on `share_pct` % of every limit
//!   (an inner [`MemoryStore`]), and says so in the log and [`SharedStatus`]. When the store
//!   answers again, the calls admitted alone are written into it (their leases), so counts
//!   converge; nothing waits on a dead store for longer than one timeout per `retry_secs`.
//!
//! Synchronous on the SIP loop by design: a round trip to a store on the local network costs
//! tens of microseconds and is bounded by the timeout; no async runtime runs there.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use xtrunk_config::{Shared, Snapshot};

use super::counters::{CounterStore, Dir, Lease, MemoryStore, Period, Rate, Scope, Take, Want};
use super::limits::{AdmitOutcome, AdmitRequest, Passed};
use super::shared_scripts::{S, SOURCES};

/// What [`RedisStore`] reports about itself (for logs, metrics and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SharedStatus {
    /// The store is being used now (false: degraded, deciding alone).
    pub up: bool,
    /// Times the store was found unreachable or too slow.
    pub failures: u64,
    /// Calls admitted alone, on this edge's share, while degraded.
    pub degraded_admits: u64,
    /// Round trips made.
    pub round_trips: u64,
}

/// One lease: its members in the store (key, member), or held by the local fallback.
#[derive(Debug)]
enum Held {
    Shared(Vec<(String, String)>),
    Local(Lease, Vec<(String, String)>),
}

/// Admission counters in a Redis-protocol server; see the module docs.
pub struct RedisStore {
    cfg: Shared,
    client: Option<redis::Client>,
    conn: Option<redis::Connection>,
    down_until: Option<Instant>,
    local: MemoryStore,
    held: HashMap<Lease, Held>,
    names: HashMap<Scope, String>,
    node: String,
    next: u64,
    next_refresh: Option<Instant>,
    scripts: [redis::Script; 6],
    /// Calls with a fraud entry here: (entry hash, concurrent set, member) by number.
    fraud: HashMap<u64, (String, String, String)>,
    /// What the store did so far.
    pub status: SharedStatus,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("status", &self.status).field("leases", &self.held.len()).finish()
    }
}

/// Which sorted set a (scope, direction) is.
fn dir_key(prefix: &str, name: &str, dir: Dir) -> String {
    format!("{prefix}ch:{name}:{}", if dir == Dir::Inbound { "in" } else { "out" })
}

impl RedisStore {
    /// A store for `cfg.shared` (not yet connected: the first call setup connects). `node`
    /// names this edge in lease members (its name, unique in the fleet).
    pub fn new(cfg: &Snapshot, node: &str) -> Self {
        let client = redis::Client::open(cfg.raw.shared.url.as_str())
            .map_err(|e| log::error!("shared.url {:?}: {e}; deciding alone", cfg.raw.shared.url))
            .ok();
        let mut s = Self {
            cfg: cfg.raw.shared.clone(),
            client,
            conn: None,
            down_until: None,
            local: MemoryStore::new(),
            held: HashMap::new(),
            names: HashMap::new(),
            node: format!("{node}-{:x}", std::process::id()),
            next: 1,
            next_refresh: None,
            scripts: SOURCES.map(redis::Script::new),
            fraud: HashMap::new(),
            status: SharedStatus::default(),
        };
        s.rename(cfg);
        s
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.cfg.timeout_ms))
    }

    fn ttl_ms(&self) -> u64 {
        u64::from(self.cfg.lease_ttl_secs) * 1000
    }

    /// The connection, unless the store is marked down at `now` (then None: decide alone).
    fn conn(&mut self, now: Instant) -> Option<&mut redis::Connection> {
        if self.down_until.is_some_and(|t| t > now) {
            return None;
        }
        if self.conn.is_none() {
            let t = self.timeout();
            let c = self.client.as_ref()?.get_connection_with_timeout(t).and_then(|c| {
                c.set_read_timeout(Some(t))?;
                c.set_write_timeout(Some(t))?;
                Ok(c)
            });
            match c {
                Ok(c) => {
                    if self.down_until.take().is_some() || !self.status.up {
                        log::info!("shared store {} answers; counting there again", self.cfg.url);
                    }
                    self.status.up = true;
                    self.conn = Some(c);
                    self.rejoin(now);
                }
                Err(e) => {
                    self.fail(now, &e);
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    fn fail(&mut self, now: Instant, e: &redis::RedisError) {
        self.status.failures += 1;
        if self.status.up || self.down_until.is_none() {
            log::warn!(
                "shared store {} unreachable ({e}); deciding alone on {} % of every limit for {} s",
                self.cfg.url,
                self.cfg.share_pct,
                self.cfg.retry_secs
            );
        }
        self.status.up = false;
        self.conn = None;
        self.down_until = Some(now + Duration::from_secs(u64::from(self.cfg.retry_secs)));
    }

    /// Runs `f` on the connection; an error marks the store down. None: decide alone. A
    /// connection the server dropped (it restarted) is replaced once and `f` tried again, so a
    /// store restart costs no call.
    fn call<T>(
        &mut self,
        now: Instant,
        f: impl Fn(&[redis::Script; 6], &mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        let scripts = self.scripts.clone();
        let had = self.conn.is_some();
        let conn = self.conn(now)?;
        let mut r = f(&scripts, conn);
        self.status.round_trips += 1;
        let dropped = |e: &redis::RedisError| !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error());
        if had && r.as_ref().is_err_and(dropped) {
            self.conn = None;
            let conn = self.conn(now)?;
            r = f(&scripts, conn);
            self.status.round_trips += 1;
        }
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(now, &e);
                None
            }
        }
    }

    /// The store answers again: the leases taken alone go into it (no limit checked: the
    /// calls exist), so every edge counts them from now on.
    fn rejoin(&mut self, _now: Instant) {
        let local: Vec<(Lease, Vec<(String, String)>)> = self
            .held
            .iter()
            .filter_map(|(l, h)| match h {
                Held::Local(_, m) => Some((*l, m.clone())),
                Held::Shared(_) => None,
            })
            .collect();
        if local.is_empty() {
            return;
        }
        let members: Vec<(String, String)> = local.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
        if self.refresh_members(&members).is_ok() {
            for (l, m) in local {
                if let Some(Held::Local(inner, _)) = self.held.insert(l, Held::Shared(m)) {
                    self.local.release(inner);
                }
            }
        }
    }

    fn refresh_members(&mut self, members: &[(String, String)]) -> redis::RedisResult<()> {
        let ttl = self.ttl_ms();
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        for chunk in members.chunks(512) {
            let mut inv = self.scripts[S::Refresh as usize].prepare_invoke();
            inv.arg(ttl);
            for (k, m) in chunk {
                inv.key(k).arg(m);
            }
            inv.invoke::<u64>(conn)?;
        }
        Ok(())
    }

    /// Runs script `i` with `keys` and `args` (None: the store is down; decide alone).
    pub(super) fn run_script<T: redis::FromRedisValue>(
        &mut self,
        now: Instant,
        script: S,
        keys: &[String],
        args: &[String],
    ) -> Option<T> {
        self.call(now, |s, c| {
            let mut inv = s[script as usize].prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            for a in args {
                inv.arg(a);
            }
            inv.invoke(c)
        })
    }

    pub(super) fn scope_name(&self, s: Scope) -> String {
        self.name(s)
    }

    pub(super) fn key_prefix(&self) -> &str {
        &self.cfg.prefix
    }

    pub(super) fn node_name(&self) -> &str {
        &self.node
    }

    pub(super) fn lease_ttl_ms(&self) -> u64 {
        self.ttl_ms()
    }

    /// A fresh number for a lease or a fraud entry.
    pub(super) fn next_seq(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    /// Keeps a call's fraud entry (its concurrent-call member is refreshed with the leases).
    pub(super) fn hold_fraud(&mut self, seq: u64, [entry, set]: [String; 2], member: String, now: Instant) {
        self.fraud.insert(seq, (entry, set, member));
        self.next_refresh.get_or_insert(now + Duration::from_millis(self.ttl_ms() / 3));
    }

    pub(super) fn unhold_fraud(&mut self, seq: u64) -> Option<(String, String, String)> {
        self.fraud.remove(&seq)
    }

    /// `want` scaled to this edge's share (degraded mode).
    fn share(&self, w: &Want) -> Want {
        let f = |n: u32| (u64::from(n) * u64::from(self.cfg.share_pct) / 100) as u32;
        Want { total: w.total.map(f), in_dir: w.in_dir.map(f), ..*w }
    }

    fn name(&self, s: Scope) -> String {
        self.names.get(&s).cloned().unwrap_or_else(|| match s {
            Scope::Trunk(t) => format!("trunk#{}", t.0),
            Scope::Account(a) => format!("account#{}", a.0),
        })
    }

    fn members(&mut self, wants: &[Want]) -> Vec<(String, String)> {
        let id = self.next;
        wants
            .iter()
            .enumerate()
            .map(|(i, w)| {
                (dir_key(&self.cfg.prefix, &self.name(w.scope), w.dir), format!("{}:{id}:{}", self.node, i + 1))
            })
            .collect()
    }
}

impl CounterStore for RedisStore {
    fn try_acquire(&mut self, wants: &[Want], now: Instant) -> Result<Lease, usize> {
        // Channels alone are an admission request with nothing else in it.
        let req = AdmitRequest { wants: wants.to_vec(), ..AdmitRequest::default() };
        match self.admit(&req, now) {
            Some(AdmitOutcome::Passed(p)) => Ok(p.lease.unwrap_or_else(|| {
                let l = Lease(self.next_seq());
                self.held.insert(l, Held::Shared(Vec::new()));
                l
            })),
            Some(AdmitOutcome::ChannelsFull(i)) => Err(i),
            // Neither caps nor buckets were asked for.
            Some(AdmitOutcome::Capped(_) | AdmitOutcome::Cps(..)) => Err(0),
            None => {
                let members = self.members(wants);
                let lease = Lease(self.next_seq());
                let scaled: Vec<Want> = wants.iter().map(|w| self.share(w)).collect();
                let inner = self.local.try_acquire(&scaled, now)?;
                self.status.degraded_admits += 1;
                self.held.insert(lease, Held::Local(inner, members));
                Ok(lease)
            }
        }
    }

    fn release(&mut self, lease: Lease) -> bool {
        match self.held.remove(&lease) {
            None => false,
            Some(Held::Local(inner, _)) => self.local.release(inner),
            Some(Held::Shared(members)) => {
                // Best effort: a release the store misses expires with the lease's TTL.
                if let Some(c) = self.conn.as_mut() {
                    let mut p = redis::pipe();
                    for (k, m) in &members {
                        p.zrem(k, m).ignore();
                    }
                    if let Err(e) = p.query::<()>(c) {
                        self.fail(Instant::now(), &e);
                    }
                }
                true
            }
        }
    }

    fn channels(&self, scope: Scope) -> (u32, u32) {
        // This edge's own calls (the fleet's total is in the store).
        let mut n = self.local.channels(scope);
        let (i, o) = (
            dir_key(&self.cfg.prefix, &self.name(scope), Dir::Inbound),
            dir_key(&self.cfg.prefix, &self.name(scope), Dir::Outbound),
        );
        for h in self.held.values() {
            if let Held::Shared(m) = h {
                n.0 += m.iter().filter(|(k, _)| *k == i).count() as u32;
                n.1 += m.iter().filter(|(k, _)| *k == o).count() as u32;
            }
        }
        n
    }

    fn take(&mut self, scope: Scope, rate: Rate, now: Instant) -> Take {
        let key = format!("{}cps:{}", self.cfg.prefix, self.name(scope));
        let interval = 1000.0 / rate.per_sec;
        let tolerance = interval * f64::from(rate.burst.saturating_sub(1));
        let max_wait = rate.max_wait.as_secs_f64() * 1000.0;
        let r = self.call(now, |s, c| {
            s[S::Take as usize]
                .key(&key)
                .arg(interval)
                .arg(tolerance)
                .arg(max_wait)
                .arg(rate.max_queued)
                .invoke::<(u8, String)>(c)
        });
        match r {
            Some((ok, ms)) => {
                let ms: f64 = ms.parse().unwrap_or(0.0);
                let d = Duration::from_secs_f64((ms.max(0.0)) / 1000.0);
                match ok {
                    1 if d.is_zero() => Take::Now,
                    1 => Take::At(now + d),
                    _ => Take::Refused(d.max(Duration::from_millis(1))),
                }
            }
            None => {
                let per_sec = rate.per_sec * f64::from(self.cfg.share_pct) / 100.0;
                self.local.take(scope, Rate { per_sec: per_sec.max(0.01), ..rate }, now)
            }
        }
    }

    fn count(&mut self, scope: Scope, period: Period, now: Instant) -> u32 {
        self.window(scope, period, now, false).unwrap_or_else(|| self.local.count(scope, period, now))
    }

    fn record(&mut self, scope: Scope, now: Instant) {
        for p in Period::ALL {
            if self.window(scope, p, now, true).is_none() {
                self.local.record(scope, now);
                return;
            }
        }
    }

    fn leases(&self) -> usize {
        self.held.len()
    }

    fn remap(&mut self, f: &dyn Fn(Scope) -> Option<Scope>) {
        self.local.remap(f);
    }

    fn rename(&mut self, cfg: &Snapshot) {
        self.names.clear();
        for t in &cfg.trunks {
            self.names.insert(Scope::Trunk(t.id), format!("t:{}", t.name));
        }
        for a in &cfg.accounts {
            self.names.insert(Scope::Account(a.id), format!("a:{}", a.name));
        }
    }

    fn tick(&mut self, now: Instant) {
        if self.next_refresh.is_none_or(|t| t > now) {
            return;
        }
        let every = Duration::from_millis(self.ttl_ms() / 3);
        self.next_refresh = (!self.held.is_empty() || !self.fraud.is_empty()).then_some(now + every);
        if self.conn(now).is_none() {
            return;
        }
        let members: Vec<(String, String)> = self
            .held
            .values()
            .filter_map(|h| match h {
                Held::Shared(m) => Some(m.iter().cloned()),
                Held::Local(..) => None,
            })
            .flatten()
            .chain(self.fraud.values().map(|(_, set, m)| (set.clone(), m.clone())))
            .collect();
        self.status.round_trips += 1;
        if let Err(e) = self.refresh_members(&members) {
            self.fail(now, &e);
        }
    }

    fn next_tick(&self) -> Option<Instant> {
        self.next_refresh
    }

    fn shared_status(&self) -> Option<SharedStatus> {
        Some(self.status.clone())
    }

    fn fraud_call(
        &mut self,
        account: xtrunk_config::AccountId,
        f: &xtrunk_config::Fraud,
        digits: &str,
        now: Instant,
    ) -> Option<(super::fraud::Verdict, super::fraud::FraudKey)> {
        self.shared_fraud_call(account, f, digits, now)
    }

    fn fraud_ended(&mut self, key: super::fraud::FraudKey, talk_secs: Option<u64>) -> bool {
        self.shared_fraud_ended(key, talk_secs)
    }

    fn publish_bindings(&mut self, trunk: &str, edge: std::net::SocketAddr, expires: Option<u64>, now: Instant) {
        let key = format!("{}reg:{trunk}", self.cfg.prefix);
        let field = edge.to_string();
        // Best effort: a missed update is corrected at the next REGISTER or expiry; stale
        // entries are ignored by their expiry.
        let _ = self.call(now, |_, c| match expires {
            Some(e) => redis::pipe().hset(&key, &field, e).ignore().expire(&key, 86_400).ignore().query::<()>(c),
            None => redis::cmd("HDEL").arg(&key).arg(&field).query::<()>(c),
        });
    }

    fn remote_bindings(&mut self, trunks: &[String], now: Instant) -> Option<Vec<Vec<std::net::SocketAddr>>> {
        let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let keys: Vec<String> = trunks.iter().map(|t| format!("{}reg:{t}", self.cfg.prefix)).collect();
        let maps: Vec<HashMap<String, u64>> = self.call(now, |_, c| {
            let mut p = redis::pipe();
            for k in &keys {
                p.hgetall(k);
            }
            p.query(c)
        })?;
        Some(
            maps.into_iter()
                .map(|m| m.into_iter().filter(|(_, e)| *e > now_unix).filter_map(|(a, _)| a.parse().ok()).collect())
                .collect(),
        )
    }

    fn admit(&mut self, req: &AdmitRequest, now: Instant) -> Option<AdmitOutcome> {
        if self.down_until.is_some_and(|t| t > now) {
            return None;
        }
        let members = self.members(&req.wants);
        let (id, ttl) = (self.next, self.ttl_ms());
        let member = format!("{}:{id}", self.node);
        let mut keys: Vec<String> = Vec::new();
        let mut args: Vec<String> = vec![
            req.caps.len().to_string(),
            req.wants.len().to_string(),
            req.rates.len().to_string(),
            ttl.to_string(),
            member,
        ];
        for (scope, p, cap) in &req.caps {
            let (span, bucket) = p.shape();
            keys.push(format!("{}cap:{}:{}", self.cfg.prefix, self.name(*scope), p.as_str()));
            args.extend([bucket.to_string(), (span / bucket + 1).to_string(), cap.to_string()]);
        }
        for (w, (k, _)) in req.wants.iter().zip(&members) {
            let other = if w.dir == Dir::Inbound { Dir::Outbound } else { Dir::Inbound };
            keys.push(k.clone());
            keys.push(dir_key(&self.cfg.prefix, &self.name(w.scope), other));
            args.extend([w.total.map_or(-1, i64::from).to_string(), w.in_dir.map_or(-1, i64::from).to_string()]);
        }
        for (scope, r) in &req.rates {
            keys.push(format!("{}cps:{}", self.cfg.prefix, self.name(*scope)));
            let interval = 1000.0 / r.per_sec;
            let tolerance = interval * f64::from(r.burst.saturating_sub(1));
            let wait = r.max_wait.as_secs_f64() * 1000.0;
            args.extend([interval.to_string(), tolerance.to_string(), wait.to_string(), r.max_queued.to_string()]);
        }
        let (code, i, ms): (u8, usize, String) = self.run_script(now, S::Admit, &keys, &args)?;
        let ms: f64 = ms.parse().unwrap_or(0.0);
        let d = Duration::from_secs_f64(ms.max(0.0) / 1000.0);
        Some(match code {
            0 => {
                let lease = (!req.wants.is_empty()).then(|| {
                    let l = Lease(id);
                    self.held.insert(l, Held::Shared(members));
                    self.next_refresh.get_or_insert(now + Duration::from_millis(ttl / 3));
                    l
                });
                self.next += 1;
                let start_at = (!d.is_zero()).then(|| now + d);
                AdmitOutcome::Passed(Passed { lease, start_at })
            }
            1 => AdmitOutcome::Capped(i.saturating_sub(1)),
            2 => AdmitOutcome::ChannelsFull(i.saturating_sub(1)),
            _ => AdmitOutcome::Cps(i.saturating_sub(1), d.max(Duration::from_millis(1))),
        })
    }
}

impl RedisStore {
    /// The sum of `period`'s window (and one call added when `add`), None when degraded.
    fn window(&mut self, scope: Scope, period: Period, now: Instant, add: bool) -> Option<u32> {
        let (span, bucket) = period.shape();
        let key = format!("{}cap:{}:{}", self.cfg.prefix, self.name(scope), period.as_str());
        self.call(now, |s, c| {
            s[S::Count as usize].key(&key).arg(bucket).arg(span / bucket + 1).arg(u8::from(add)).invoke::<u32>(c)
        })
    }
}
