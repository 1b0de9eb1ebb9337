//! Where a call goes: the longest route prefix of the called number among the routes that apply
//! to the trunk it came from.

use xtrunk_config::{Snapshot, TrunkId};

/// The outbound trunk for `user` arriving from trunk `from`: longest `prefix` among routes whose
/// `from_trunk` is unset or names `from`; None also when that trunk has no targets.
pub fn outbound(cfg: &Snapshot, from: TrunkId, user: &str) -> Option<TrunkId> {
    cfg.route(from, user)
}

/// Every route for `user` from `from` with targets, best first: [`outbound`]'s choice, then the
/// other matching routes by prefix length (longest first; among equal, the last listed first).
/// A trunk appears once. Admission fails over along this list when a trunk's channels are full.
pub fn candidates(cfg: &Snapshot, from: TrunkId, user: &str) -> Vec<TrunkId> {
    let mut m: Vec<(usize, usize, TrunkId)> = cfg
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.from_trunk.map_or(true, |t| t == from) && user.starts_with(&r.prefix))
        .filter(|(_, r)| !cfg.trunk(r.trunk).targets.is_empty())
        .map(|(i, r)| (r.prefix.len(), i, r.trunk))
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
