//! Which trunk a request comes from. Today: the trunk whose IP ACL holds the source
//! (validation refuses overlapping ACLs, so at most one can).

use std::net::IpAddr;

use xtrunk_config::{Snapshot, TrunkId};

/// The trunk whose ACL holds `ip`.
pub fn by_acl(cfg: &Snapshot, ip: IpAddr) -> Option<TrunkId> {
    cfg.trunk_by_acl(ip)
}
