//! Where a call goes: the longest route prefix of the called number among the routes that apply
//! to the trunk it came from.

use xtrunk_config::{Snapshot, TrunkId};

/// The outbound trunk for `user` arriving from trunk `from`: longest `prefix` among routes whose
/// `from_trunk` is unset or names `from`; None also when that trunk has no targets.
pub fn outbound(cfg: &Snapshot, from: TrunkId, user: &str) -> Option<TrunkId> {
    cfg.route(from, user)
}
