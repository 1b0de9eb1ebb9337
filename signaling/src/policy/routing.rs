//! Where a call goes: the longest route prefix of the called number among the routes that apply
//! to the trunk it came from; then, of the plan's trunks, those with a target online.

use std::net::SocketAddr;

use xtrunk_config::{Snapshot, TrunkId};

use super::{Reject, RejectReason, RoutePlan};
use crate::transport::Transport;

/// The outbound trunk for `user` arriving from trunk `from`: longest `prefix` among routes whose
/// `from_trunk` is unset or names `from`; None also when that trunk has no targets.
pub fn outbound(cfg: &Snapshot, from: TrunkId, user: &str) -> Option<TrunkId> {
    cfg.route(from, user)
}

/// Keeps the plan's entries whose trunk has a target `online` says is up (OPTIONS health); a
/// plan left with none is refused `TrunkOffline` (503).
pub fn online(
    cfg: &Snapshot,
    mut plan: RoutePlan,
    online: impl Fn((Transport, SocketAddr)) -> bool,
) -> Result<RoutePlan, Reject> {
    plan.entries.retain(|t| cfg.trunk(*t).targets.iter().any(|tg| online((tg.transport.into(), tg.addr))));
    if plan.entries.is_empty() {
        return Err(Reject { why: RejectReason::TrunkOffline, trunk: Some(plan.inbound) });
    }
    Ok(plan)
}
