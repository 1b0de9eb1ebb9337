//! Inbound calls by DID (PortSIP's DID pools): a call from a carrier to a number must be in an
//! account's pool once any account has one (else `404`: unprovisioned), and it goes only to
//! that account's trunks: the matching route's entries that belong to the account, or, with no
//! route, the account's trunks that have targets, in config order (the later ones are the
//! failover). An edge without DID pools routes by prefix alone, as before.

use xtrunk_config::{Snapshot, TrunkId, TrunkRole};

/// What the DID step says of an inbound call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Not a DID call (from a customer trunk, or no pools configured): route by prefix.
    ByPrefix,
    /// The number is in no pool.
    Unprovisioned,
    /// The owning account's trunks to try, in order (empty: the account has none to take it).
    To(Vec<TrunkId>),
}

/// Applies the DID pools to a call from `from` to `user` (`+` and digits as dialled).
pub fn inbound(cfg: &Snapshot, q: &xtrunk_config::RouteQuery<'_>) -> Inbound {
    let (from, user) = (q.from, q.user);
    if cfg.trunk(from).role != TrunkRole::Carrier || cfg.accounts.iter().all(|a| a.dids.is_empty()) {
        return Inbound::ByPrefix;
    }
    let digits = user.strip_prefix('+').unwrap_or(user);
    let Some(owner) = cfg.did_owner(digits) else { return Inbound::Unprovisioned };
    let mine = |t: &TrunkId| cfg.trunk(*t).account == Some(owner) && !cfg.trunk(*t).targets.is_empty();
    let entries = match cfg.route_matching(q) {
        Some((_, r)) if !r.prefix.is_empty() => {
            std::iter::once(r.trunk).chain(r.then.iter().copied()).filter(mine).collect()
        }
        _ => cfg.account(owner).trunks.iter().copied().filter(mine).collect(),
    };
    Inbound::To(entries)
}
