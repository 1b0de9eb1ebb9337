//! Admission limits of a routed call: rolling caps, channels and CPS of the trunks and accounts
//! it touches (the inbound trunk and its account as `Inbound`, the outbound trunk and its
//! account as `Outbound`), on a [`CounterStore`].
//!
//! Order: caps (nothing is taken when one is full), channels (a lease), the trunks' buckets
//! (fail fast), the accounts' buckets (may queue). A refusal after the lease releases it.

use std::time::{Duration, Instant};

use xtrunk_config::{Limits, Snapshot, TrunkId};

use super::counters::{CounterStore, Dir, Lease, Period, Rate, Scope, Take, Want};
use super::RejectReason;

/// The limits a call passed: its lease (None when no channel limit applies) and the time its
/// account's CPS slot comes (None: now).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// Channels held.
    pub lease: Option<Lease>,
    /// When the call may start (queued for the account's CPS).
    pub start_at: Option<Instant>,
}

/// The scopes of a call from `tin` to `tout`, each with its limits and direction; a trunk or
/// account on both sides appears twice (inbound and outbound).
fn scopes(cfg: &Snapshot, tin: TrunkId, tout: TrunkId) -> impl Iterator<Item = (Scope, Dir, &Limits)> {
    let t = |id: TrunkId, dir| (Scope::Trunk(id), dir, &cfg.trunk(id).limits);
    let a = move |id: TrunkId, dir| cfg.trunk(id).account.map(|a| (Scope::Account(a), dir, &cfg.account(a).limits));
    [Some(t(tin, Dir::Inbound)), Some(t(tout, Dir::Outbound)), a(tin, Dir::Inbound), a(tout, Dir::Outbound)]
        .into_iter()
        .flatten()
        .filter(|(_, _, l)| l.any())
}

fn period_cap(l: &Limits, p: Period) -> Option<u32> {
    match p {
        Period::Hour => l.calls_per_hour,
        Period::Day => l.calls_per_day,
        Period::Week => l.calls_per_week,
    }
}

/// The channels a call from `tin` to `tout` takes: one per scope with a channel limit.
pub fn channel_wants(cfg: &Snapshot, tin: TrunkId, tout: TrunkId) -> Vec<Want> {
    scopes(cfg, tin, tout)
        .filter(|(_, _, l)| l.channels.is_some() || l.channels_inbound.is_some() || l.channels_outbound.is_some())
        .map(|(scope, dir, l)| Want {
            scope,
            dir,
            total: l.channels,
            in_dir: if dir == Dir::Inbound { l.channels_inbound } else { l.channels_outbound },
        })
        .collect()
}

/// Checks and takes every limit of a call from `tin` to `tout`.
pub fn admit(
    cfg: &Snapshot,
    store: &mut dyn CounterStore,
    tin: TrunkId,
    tout: TrunkId,
    now: Instant,
) -> Result<Passed, RejectReason> {
    let mut capped: Vec<Scope> = Vec::new();
    for (scope, _, l) in scopes(cfg, tin, tout) {
        if capped.contains(&scope) {
            continue;
        }
        for p in Period::ALL {
            if let Some(cap) = period_cap(l, p) {
                if store.count(scope, p, now) >= cap {
                    return Err(RejectReason::Cap { account: matches!(scope, Scope::Account(_)), period: p });
                }
                if !capped.contains(&scope) {
                    capped.push(scope);
                }
            }
        }
    }
    let wants = channel_wants(cfg, tin, tout);
    let lease = if wants.is_empty() {
        None
    } else {
        match store.try_acquire(&wants, now) {
            Ok(l) => Some(l),
            Err(i) => {
                let account = matches!(wants[i].scope, Scope::Account(_));
                let l = scopes(cfg, tin, tout).find(|(s, d, _)| *s == wants[i].scope && *d == wants[i].dir);
                let code = l.map_or(503, |(_, _, l)| l.channels_full_code);
                let outbound = wants[i].dir == Dir::Outbound;
                return Err(RejectReason::ChannelsFull { account, outbound, code });
            }
        }
    };
    let refuse = |store: &mut dyn CounterStore, why| {
        if let Some(l) = lease {
            store.release(l);
        }
        Err(why)
    };
    let mut start_at = None;
    let mut seen: Vec<Scope> = Vec::new();
    for (scope, _, l) in scopes(cfg, tin, tout) {
        let Some(per_sec) = l.cps else { continue };
        if seen.contains(&scope) {
            continue;
        }
        seen.push(scope);
        let account = matches!(scope, Scope::Account(_));
        let rate = Rate {
            per_sec,
            burst: l.cps_burst,
            max_wait: if account { Duration::from_millis(u64::from(l.cps_queue_ms)) } else { Duration::ZERO },
            max_queued: if account { l.cps_queue_len } else { 0 },
        };
        match store.take(scope, rate, now) {
            Take::Now => {}
            Take::At(t) => start_at = start_at.max(Some(t)),
            Take::Refused(after) => {
                let retry_secs = after.as_secs_f64().ceil().clamp(1.0, 3600.0) as u32;
                return refuse(store, RejectReason::Cps { account, retry_secs });
            }
        }
    }
    for scope in capped {
        store.record(scope, now);
    }
    Ok(Passed { lease, start_at })
}
