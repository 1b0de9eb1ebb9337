//! Which trunk a request comes from. Today: the trunk whose IP ACL holds the source
//! (validation refuses overlapping ACLs, so at most one can).

use std::net::IpAddr;

use xtrunk_config::{Snapshot, TrunkId};

/// The trunk whose ACL holds `ip`.
pub fn by_acl(cfg: &Snapshot, ip: IpAddr) -> Option<TrunkId> {
    cfg.trunk_by_acl(ip)
}

/// The trunk `ip` belongs to: by ACL, else the trunk with a target at that address (a carrier's
/// keepalive OPTIONS comes from the address we send to). None: an outsider.
pub fn by_source(cfg: &Snapshot, ip: IpAddr) -> Option<TrunkId> {
    by_acl(cfg, ip).or_else(|| cfg.trunks.iter().find(|t| t.targets.iter().any(|x| x.addr.ip() == ip)).map(|t| t.id))
}
