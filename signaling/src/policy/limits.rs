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

/// Everything admission asks the counters for one call, in the order it is checked: caps
/// (scope, period, cap), channels (wants), CPS buckets (scope, rate; trunks fail fast, accounts
/// may queue) and the scopes whose caps count the call. A shared store answers it in one
/// round trip ([`CounterStore::admit`]); otherwise [`admit`] walks it step by step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdmitRequest {
    /// Rolling caps: a count at or over the cap refuses the call.
    pub caps: Vec<(Scope, Period, u32)>,
    /// Channels to take (one lease for all).
    pub wants: Vec<Want>,
    /// Buckets to take from.
    pub rates: Vec<(Scope, Rate)>,
    /// Scopes the call is counted in for their caps.
    pub record: Vec<Scope>,
}

/// Where an [`AdmitRequest`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmitOutcome {
    /// Passed: the lease (when channels were wanted) and when the call may start.
    Passed(Passed),
    /// `caps[i]` is full.
    Capped(usize),
    /// `wants[i]` is full.
    ChannelsFull(usize),
    /// `rates[i]` has no slot within its wait: retry after this long.
    Cps(usize, Duration),
}

/// The request for a call from `tin` to `tout`.
pub fn request(cfg: &Snapshot, tin: TrunkId, tout: TrunkId) -> AdmitRequest {
    let mut r = AdmitRequest::default();
    for (scope, _, l) in scopes(cfg, tin, tout) {
        if r.record.contains(&scope) || r.caps.iter().any(|c| c.0 == scope) {
            continue;
        }
        for p in Period::ALL {
            if let Some(cap) = period_cap(l, p) {
                r.caps.push((scope, p, cap));
            }
        }
        if r.caps.iter().any(|c| c.0 == scope) {
            r.record.push(scope);
        }
    }
    r.wants = channel_wants(cfg, tin, tout);
    for (scope, _, l) in scopes(cfg, tin, tout) {
        let Some(per_sec) = l.cps else { continue };
        if r.rates.iter().any(|x| x.0 == scope) {
            continue;
        }
        let account = matches!(scope, Scope::Account(_));
        r.rates.push((
            scope,
            Rate {
                per_sec,
                burst: l.cps_burst,
                max_wait: if account { Duration::from_millis(u64::from(l.cps_queue_ms)) } else { Duration::ZERO },
                max_queued: if account { l.cps_queue_len } else { 0 },
            },
        ));
    }
    r
}

/// Walks `req` on `store` one step at a time (the in-memory store; a shared store that cannot
/// take the whole request at once).
pub fn admit_steps(store: &mut dyn CounterStore, req: &AdmitRequest, now: Instant) -> AdmitOutcome {
    for (i, (scope, p, cap)) in req.caps.iter().enumerate() {
        if store.count(*scope, *p, now) >= *cap {
            return AdmitOutcome::Capped(i);
        }
    }
    let lease = if req.wants.is_empty() {
        None
    } else {
        match store.try_acquire(&req.wants, now) {
            Ok(l) => Some(l),
            Err(i) => return AdmitOutcome::ChannelsFull(i),
        }
    };
    let mut start_at = None;
    for (i, (scope, rate)) in req.rates.iter().enumerate() {
        match store.take(*scope, *rate, now) {
            Take::Now => {}
            Take::At(t) => start_at = start_at.max(Some(t)),
            Take::Refused(after) => {
                if let Some(l) = lease {
                    store.release(l);
                }
                return AdmitOutcome::Cps(i, after);
            }
        }
    }
    for scope in &req.record {
        store.record(*scope, now);
    }
    AdmitOutcome::Passed(Passed { lease, start_at })
}

/// Checks and takes every limit of a call from `tin` to `tout`.
pub fn admit(
    cfg: &Snapshot,
    store: &mut dyn CounterStore,
    tin: TrunkId,
    tout: TrunkId,
    now: Instant,
) -> Result<Passed, RejectReason> {
    let req = request(cfg, tin, tout);
    let outcome = store.admit(&req, now).unwrap_or_else(|| admit_steps(store, &req, now));
    match outcome {
        AdmitOutcome::Passed(p) => Ok(p),
        AdmitOutcome::Capped(i) => {
            let (scope, period, _) = req.caps[i];
            Err(RejectReason::Cap { account: matches!(scope, Scope::Account(_)), period })
        }
        AdmitOutcome::ChannelsFull(i) => {
            let w = req.wants[i];
            let l = scopes(cfg, tin, tout).find(|(s, d, _)| *s == w.scope && *d == w.dir);
            let code = l.map_or(503, |(_, _, l)| l.channels_full_code);
            Err(RejectReason::ChannelsFull {
                account: matches!(w.scope, Scope::Account(_)),
                outbound: w.dir == Dir::Outbound,
                code,
            })
        }
        AdmitOutcome::Cps(i, after) => {
            let retry_secs = after.as_secs_f64().ceil().clamp(1.0, 3600.0) as u32;
            Err(RejectReason::Cps { account: matches!(req.rates[i].0, Scope::Account(_)), retry_secs })
        }
    }
}
