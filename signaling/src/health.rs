//! OPTIONS health of trunk targets, sans-IO: which target is due a probe, and what a probe's
//! outcome does to its state. The core sends the probes (out-of-dialog OPTIONS) and feeds the
//! outcomes back; routing asks [`Health::is_online`].
//!
//! A target starts online. Probes go out every `interval_secs` (the first at once); a probe with
//! no final answer within `timeout_ms`, or answered 5xx/6xx, is a failure; any other final
//! answer (2xx–4xx: the peer's SIP stack is up, even if it does not like OPTIONS) a success.
//! `failures` in a row take the target offline, `successes` in a row bring it back. The table
//! holds the configured targets only (rebuilt on reload, states kept for targets that stay), so
//! nobody outside the config can grow it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xtrunk_config::{OptionsPing, Snapshot};

use crate::sip::transaction::TxKey;
use crate::transport::Transport;

/// A probed target: where and over what.
pub type TargetKey = (Transport, SocketAddr);

/// One target's state.
#[derive(Debug, Clone)]
struct Probe {
    /// The first trunk (in config order) listing the target: its name (for logs) and settings.
    trunk: String,
    ping: OptionsPing,
    online: bool,
    /// Failures (while online) or successes (while offline) in a row.
    streak: u32,
    next_at: Instant,
    /// The probe in flight and when it counts as failed.
    in_flight: Option<(TxKey, Instant)>,
    /// When `online` last changed.
    since: Option<Instant>,
}

/// A target went offline or came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The trunk (by name) whose target it is.
    pub trunk: String,
    /// The target.
    pub target: TargetKey,
    /// Its new state.
    pub online: bool,
    /// Probes in a row that decided it.
    pub streak: u32,
}

/// Every probed target's state.
#[derive(Debug, Default)]
pub struct Health {
    probes: HashMap<TargetKey, Probe>,
    by_tx: HashMap<TxKey, TargetKey>,
    /// Targets that timed out or were unreachable, until when new calls skip them (configured
    /// targets only: [`Health::sync`] drops the rest).
    backoff: HashMap<TargetKey, Instant>,
}

impl Health {
    /// Takes the probed targets from `cfg`: new ones are due at once, removed ones forgotten,
    /// those that stay keep their state (a reload does not bring an offline target back).
    pub fn sync(&mut self, cfg: &Snapshot, now: Instant) {
        let mut next: HashMap<TargetKey, Probe> = HashMap::new();
        for t in cfg.trunks.iter().filter(|t| !t.options.is_off()) {
            for tg in &t.targets {
                let key = (Transport::from(tg.transport), tg.addr);
                if next.contains_key(&key) {
                    continue;
                }
                let p = match self.probes.remove(&key) {
                    Some(mut p) => {
                        p.trunk.clone_from(&t.name);
                        p.ping = t.options;
                        p
                    }
                    None => Probe {
                        trunk: t.name.clone(),
                        ping: t.options,
                        online: true,
                        streak: 0,
                        next_at: now,
                        in_flight: None,
                        since: None,
                    },
                };
                next.insert(key, p);
            }
        }
        self.by_tx.retain(|_, k| next.contains_key(k));
        self.probes = next;
        let configured = |k: &TargetKey| {
            cfg.trunks.iter().any(|t| t.targets.iter().any(|tg| (Transport::from(tg.transport), tg.addr) == *k))
        };
        self.backoff.retain(|k, until| *until > now && configured(k));
    }

    /// `key` timed out or was unreachable: new calls skip it until `until` while another target
    /// is left to them.
    pub fn back_off(&mut self, key: TargetKey, until: Instant) {
        if self.backoff.len() < 4096 || self.backoff.contains_key(&key) {
            self.backoff.insert(key, until);
        }
    }

    /// Whether `key` is in back-off at `now`.
    pub fn backed_off(&self, key: TargetKey, now: Instant) -> bool {
        self.backoff.get(&key).is_some_and(|t| *t > now)
    }

    /// False only for a probed target that is offline (an unprobed target counts as online).
    pub fn is_online(&self, key: TargetKey) -> bool {
        self.probes.get(&key).is_none_or(|p| p.online)
    }

    /// Probed targets and their state: (trunk, target, online, since when).
    pub fn states(&self) -> impl Iterator<Item = (&str, TargetKey, bool, Option<Instant>)> {
        self.probes.iter().map(|(k, p)| (p.trunk.as_str(), *k, p.online, p.since))
    }

    /// A target due a probe at `now` (none in flight): the caller sends it and calls
    /// [`Health::sent`].
    pub fn due(&self, now: Instant) -> Option<TargetKey> {
        self.probes.iter().find(|(_, p)| p.in_flight.is_none() && p.next_at <= now).map(|(k, _)| *k)
    }

    /// The probe for `key` went out as client transaction `tx`.
    pub fn sent(&mut self, key: TargetKey, tx: TxKey, now: Instant) {
        let Some(p) = self.probes.get_mut(&key) else { return };
        p.next_at = now + Duration::from_secs(u64::from(p.ping.interval_secs));
        p.in_flight = Some((tx.clone(), now + Duration::from_millis(u64::from(p.ping.timeout_ms))));
        self.by_tx.insert(tx, key);
    }

    /// Whether `tx` is one of our probes.
    pub fn owns(&self, tx: &TxKey) -> bool {
        self.by_tx.contains_key(tx)
    }

    /// A final answer `code` to probe `tx` (provisionals are not outcomes).
    pub fn answered(&mut self, tx: &TxKey, code: u16, now: Instant) -> Option<Change> {
        let key = self.by_tx.remove(tx)?;
        let p = self.probes.get_mut(&key)?;
        if p.in_flight.as_ref().is_none_or(|(t, _)| t != tx) {
            return None;
        }
        p.in_flight = None;
        outcome(key, p, code < 500, now)
    }

    /// A probe in flight past its timeout, failed at `now`: its transaction (for the caller to
    /// forget) and the change it made, if any.
    pub fn expire(&mut self, now: Instant) -> Option<(TxKey, Option<Change>)> {
        let (key, p) = self.probes.iter_mut().find(|(_, p)| p.in_flight.as_ref().is_some_and(|(_, at)| *at <= now))?;
        let (tx, _) = p.in_flight.take()?;
        self.by_tx.remove(&tx);
        Some((tx, outcome(*key, p, false, now)))
    }

    /// The earliest moment something is due (a probe to send, or one to give up on).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.probes.values().map(|p| p.in_flight.as_ref().map_or(p.next_at, |(_, at)| *at)).min()
    }
}

/// Applies one probe outcome to `p`; `Some` when the target changed state.
fn outcome(key: TargetKey, p: &mut Probe, ok: bool, now: Instant) -> Option<Change> {
    if ok == p.online {
        p.streak = 0;
        return None;
    }
    p.streak += 1;
    let need = if p.online { p.ping.failures } else { p.ping.successes };
    if p.streak < need {
        return None;
    }
    p.online = ok;
    p.since = Some(now);
    let streak = std::mem::take(&mut p.streak);
    Some(Change { trunk: p.trunk.clone(), target: key, online: ok, streak })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtrunk_config::{Config, Target, Trunk, TrunkRole};

    fn cfg(ping: OptionsPing) -> Snapshot {
        let mut c = Config::embedded_default().unwrap();
        let mut t: Trunk = c.trunks.iter().find(|t| t.role == TrunkRole::Carrier).cloned().unwrap();
        t.targets = vec![Target::udp("192.0.2.1:5060".parse().unwrap())];
        t.options = ping;
        c.trunks.retain(|x| x.name != t.name);
        c.trunks.push(t);
        c.resolve_names().unwrap()
    }

    const PING: OptionsPing = OptionsPing { interval_secs: 10, failures: 2, successes: 2, timeout_ms: 2000 };

    #[test]
    fn offline_after_failures_online_after_successes() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.sync(&cfg(PING), t0);
        let key = h.due(t0).expect("first probe at once");
        let tx = |n: u32| TxKey::detached(format!("probe{n}"));
        h.sent(key, tx(1), t0);
        assert_eq!(h.due(t0 + Duration::from_secs(5)), None, "one in flight, next in 10 s");
        // Timeout: first failure, still online.
        let (t, ch) = h.expire(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!((t, ch), (tx(1), None));
        assert!(h.is_online(key));
        assert_eq!(h.next_deadline(), Some(t0 + Duration::from_secs(10)));
        // 503: second failure → offline.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(h.due(t1), Some(key));
        h.sent(key, tx(2), t1);
        let ch = h.answered(&tx(2), 503, t1).unwrap();
        assert!(!ch.online && ch.streak == 2 && !h.is_online(key));
        // A late answer to an expired probe changes nothing.
        assert_eq!(h.answered(&tx(1), 200, t1), None);
        // Two answers (a 404 counts: the stack is up) → online.
        for (n, code) in [(3, 200), (4, 404)] {
            let t = t0 + Duration::from_secs(10 * u64::from(n - 1));
            h.sent(key, tx(n), t);
            let ch = h.answered(&tx(n), code, t);
            assert_eq!(ch.is_some(), n == 4, "probe {n}");
        }
        assert!(h.is_online(key));
    }

    #[test]
    fn reload_keeps_state_and_forgets_removed_targets() {
        let t0 = Instant::now();
        let mut h = Health::default();
        h.sync(&cfg(OptionsPing { failures: 1, ..PING }), t0);
        let key = h.due(t0).unwrap();
        h.sent(key, TxKey::detached("p".to_string()), t0);
        assert!(h.answered(&TxKey::detached("p".to_string()), 500, t0).is_some());
        h.sync(&cfg(OptionsPing { failures: 1, ..PING }), t0);
        assert!(!h.is_online(key), "reload keeps the state");
        h.sync(&cfg(OptionsPing::default()), t0);
        assert!(h.is_online(key) && h.states().count() == 0, "probing off: forgotten, counts as online");
    }
}
