//! Call-setup policy, pure: a borrowed view of a new call in, a [`Decision`] out.
//!
//! The core turns each new INVITE into an [`IncomingCall`] (quinn's `Incoming` pattern) and asks
//! [`admit`]; call mechanics (`crate::call`) only carry the decision out. Policy builds no SIP,
//! reads no clock (time comes in) and does no I/O; each step is a module with unit tests on plain
//! values: [`identify`] (which trunk a request comes from) and [`routing`] (where it goes).
//! Later steps (digest authentication, limits, caller-ID rules) slot in between.
//!
//! The SDP offer is summarised here only as present/absent: it is parsed by the mechanics after
//! admission, so an unidentified source's SDP costs no parsing.

pub mod dids;
pub mod identify;
pub mod routing;

use std::net::SocketAddr;
use std::time::Instant;

use xtrunk_config::{Snapshot, TrunkId};

use crate::transport::Transport;

/// A new call as policy sees it: everything borrowed from the request.
#[derive(Clone, Copy, Debug)]
pub struct IncomingCall<'a> {
    /// Where the INVITE came from (the flow's remote address).
    pub source: SocketAddr,
    /// The listener it arrived on.
    pub local: SocketAddr,
    /// Its transport.
    pub transport: Transport,
    /// Request-URI user (the called number as dialled); empty when none.
    pub user: &'a str,
    /// From user, when the From URI has one.
    pub from_user: Option<&'a str>,
    /// P-Asserted-Identity, raw.
    pub pai: Option<&'a str>,
    /// True when the INVITE carries an offer (a body).
    pub has_offer: bool,
}

/// What to do with a new call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Place it: the plan's entries in order.
    Route(RoutePlan),
    /// Refuse it.
    Reject(Reject),
    /// Ask for credentials (401/407). Built by the digest step when it exists.
    Challenge {
        /// Realm to challenge with.
        realm: String,
        /// The client's nonce was stale (RFC 3261 §22.4 `stale=true`).
        stale: bool,
    },
}

/// Where an admitted call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePlan {
    /// The trunk the call came from.
    pub inbound: TrunkId,
    /// Outbound trunks, tried in order (the route's `trunk`, then its `then`); each one's
    /// targets fail over in order before the next entry.
    pub entries: Vec<TrunkId>,
    /// The route (index in [`Snapshot::routes`]) the plan came from: its `failover_codes`.
    pub route: Option<usize>,
}

/// A refusal: status, the reason it names and where it is counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub why: RejectReason,
    /// The trunk the call was identified as coming from, when known.
    pub trunk: Option<TrunkId>,
}

/// Why policy refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No trunk's ACL holds the source address.
    UnknownSource,
    /// No route matches the called number from this trunk.
    NoRoute,
    /// The route's trunk has no targets.
    NoTargets,
    /// The INVITE carries no offer and the caller's trunk requires SRTP (a delayed offer is
    /// served otherwise).
    OfferRequired,
    /// The trunk accepts requests on other transports only (`trunk.transports`).
    TransportNotAllowed,
    /// Every target of every trunk the route offers is offline (OPTIONS health).
    TrunkOffline,
    /// A call from a carrier to a number in no account's DID pool.
    Unprovisioned,
}

impl RejectReason {
    /// The SIP status.
    pub fn code(self) -> u16 {
        match self {
            Self::UnknownSource | Self::TransportNotAllowed => 403,
            Self::NoRoute | Self::NoTargets => 404,
            Self::OfferRequired => 488,
            Self::TrunkOffline => 503,
            Self::Unprovisioned => 404,
        }
    }

    /// The reason phrase sent.
    pub fn phrase(self) -> &'static str {
        match self {
            Self::UnknownSource => "Forbidden",
            Self::NoRoute | Self::NoTargets => "No Route",
            Self::OfferRequired => "Offer Required",
            Self::TransportNotAllowed => "Transport Not Allowed",
            Self::TrunkOffline => "Trunk Offline",
            Self::Unprovisioned => "Not Found",
        }
    }

    /// The CDR's end reason.
    pub fn end_reason(self) -> crate::cdr::EndReason {
        use crate::cdr::EndReason;
        match self {
            Self::NoRoute | Self::NoTargets | Self::Unprovisioned => EndReason::NoRoute,
            Self::UnknownSource | Self::OfferRequired | Self::TransportNotAllowed => EndReason::Rejected,
            Self::TrunkOffline => EndReason::TrunkOffline,
        }
    }
}

/// Decides a new call: identify the trunk, require an offer... in the order the edge has always
/// answered (403 before 404 before 488). `now` is for the time-based steps to come.
pub fn admit(cfg: &Snapshot, call: &IncomingCall<'_>, now: Instant) -> Decision {
    let _ = now;
    let reject = |why, trunk| Decision::Reject(Reject { why, trunk });
    let Some(tin) = identify::by_acl(cfg, call.source.ip()) else {
        return reject(RejectReason::UnknownSource, None);
    };
    let allowed = &cfg.trunk(tin).transports;
    if !allowed.is_empty() && !allowed.iter().any(|t| crate::transport::Transport::from(*t) == call.transport) {
        return reject(RejectReason::TransportNotAllowed, Some(tin));
    }
    match dids::inbound(cfg, tin, call.user) {
        dids::Inbound::ByPrefix => {}
        dids::Inbound::Unprovisioned => return reject(RejectReason::Unprovisioned, Some(tin)),
        dids::Inbound::To(entries) if entries.is_empty() => return reject(RejectReason::NoRoute, Some(tin)),
        dids::Inbound::To(entries) => {
            if !call.has_offer && cfg.trunk(tin).srtp == xtrunk_config::SrtpPolicy::Mandatory {
                return reject(RejectReason::OfferRequired, Some(tin));
            }
            let route = cfg.route_for(tin, call.user).map(|(i, _)| i);
            return Decision::Route(RoutePlan { inbound: tin, entries, route });
        }
    }
    let Some((route, r)) = cfg.route_for(tin, call.user) else {
        return reject(RejectReason::NoRoute, Some(tin));
    };
    let tout = r.trunk;
    if cfg.trunk(tout).targets.is_empty() {
        return reject(RejectReason::NoTargets, Some(tin));
    }
    // Delayed offer (no SDP in the INVITE) is served: we offer in our 2xx and take the answer
    // from the ACK. Not toward a caller whose trunk requires SRTP (our offer would need keys the
    // callee's answer cannot give): that caller must offer.
    if !call.has_offer && cfg.trunk(tin).srtp == xtrunk_config::SrtpPolicy::Mandatory {
        return reject(RejectReason::OfferRequired, Some(tin));
    }
    let entries = std::iter::once(tout).chain(r.then.iter().copied()).collect();
    Decision::Route(RoutePlan { inbound: tin, entries, route: Some(route) })
}

#[cfg(test)]
mod tests;
