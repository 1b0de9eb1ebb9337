//! Where a call goes: the longest route prefix of the called number among the routes that apply
//! to the trunk it came from; then, of the plan's trunks, those with a target online.

use std::net::SocketAddr;

use xtrunk_config::{RouteQuery, Snapshot, TrunkId};

use super::{Reject, RejectReason, RoutePlan};
use crate::transport::Transport;

/// The outbound trunk for `user` arriving from trunk `from`: longest `prefix` among routes whose
/// `from_trunk` is unset or names `from`; None also when that trunk has no targets.
pub fn outbound(cfg: &Snapshot, from: TrunkId, user: &str) -> Option<TrunkId> {
    cfg.route(from, user)
}

/// Every route matching `q` with targets, best first: the most specific (called prefix, caller
/// prefix, window: [`xtrunk_config::RouteView::rank`]; among equal, the last listed first).
/// A trunk appears once. Admission fails over along this list when a trunk's channels are full.
pub fn candidates(cfg: &Snapshot, q: &RouteQuery<'_>) -> Vec<TrunkId> {
    let mut m: Vec<((usize, usize, bool), usize, TrunkId)> = cfg
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.matches(q))
        .filter(|(_, r)| !cfg.trunk(r.trunk).targets.is_empty())
        .map(|(i, r)| (r.rank(), i, r.trunk))
        .collect();
    m.sort_unstable_by_key(|x| std::cmp::Reverse((x.0, x.1)));
    let mut out: Vec<TrunkId> = Vec::with_capacity(m.len());
    for (_, _, t) in m {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Keeps the plan's entries whose trunk has a target `online` says is up (OPTIONS health, a
/// register trunk's registrations); a
/// plan left with none is refused `TrunkOffline` (503).
pub fn online(
    cfg: &Snapshot,
    mut plan: RoutePlan,
    online: impl Fn(&xtrunk_config::TrunkView, (Transport, SocketAddr)) -> bool,
) -> Result<RoutePlan, Reject> {
    plan.entries.retain(|t| {
        let t = cfg.trunk(*t);
        t.targets.iter().any(|tg| online(t, (tg.transport.into(), tg.addr)))
    });
    if plan.entries.is_empty() {
        return Err(Reject { why: RejectReason::TrunkOffline, trunk: Some(plan.inbound) });
    }
    Ok(plan)
}

/// Smooth weighted round-robin (nginx's): every target gains its weight, the richest is picked
/// and pays the total. Shares are exact over any `sum(weights)` picks and evenly interleaved;
/// equal weights are plain round-robin. `current` is the per-target state (same length).
pub fn pick_weighted(weights: &[u32], current: &mut [i64]) -> usize {
    let mut total = 0i64;
    for (w, c) in weights.iter().zip(current.iter_mut()) {
        *c += i64::from(*w);
        total += i64::from(*w);
    }
    let mut best = 0;
    for (i, c) in current.iter().enumerate() {
        if *c > current[best] {
            best = i;
        }
    }
    if let Some(c) = current.get_mut(best) {
        *c -= total;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::pick_weighted;

    #[test]
    fn weighted_shares_are_exact_and_interleaved() {
        let mut cur = [0i64; 3];
        let picks: Vec<usize> = (0..7).map(|_| pick_weighted(&[5, 1, 1], &mut cur)).collect();
        assert_eq!(picks.iter().filter(|p| **p == 0).count(), 5);
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0], "nginx's interleaving");
        let mut cur = [0i64; 3];
        let rr: Vec<usize> = (0..6).map(|_| pick_weighted(&[1, 1, 1], &mut cur)).collect();
        assert_eq!(rr, [0, 1, 2, 0, 1, 2], "equal weights: round-robin");
    }
}
