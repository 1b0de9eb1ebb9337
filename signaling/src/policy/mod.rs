//! Call-setup policy, pure: a borrowed view of a new call in, a [`Decision`] out.
//!
//! The core turns each new INVITE into an [`IncomingCall`] (quinn's `Incoming` pattern) and asks
//! [`admit`]; call mechanics (`crate::call`) only carry the decision out. Policy builds no SIP,
//! reads no clock (time comes in) and does no I/O; each step is a module with unit tests on plain
//! values: [`identify`] (which trunk a request comes from), [`routing`] (where it goes),
//! [`callerid`] (destinations, caller ID, number formats; E.164 in [`numbers`]), [`fraud`]
//! (thresholds per account and prefix) and [`limits`] (caps, channels, CPS on a
//! [`counters::CounterStore`]). Digest authentication (`crate::auth`) runs before: a trunk it
//! identified comes in as [`IncomingCall::trunk`].
//!
//! Every refusal names its cause ([`RejectReason::cause`]): the core sends it in a `Warning`,
//! writes it in the CDR (`cause`) and counts it per cause and trunk.
//!
//! The SDP offer is summarised here only as present/absent: it is parsed by the mechanics after
//! admission, so an unidentified source's SDP costs no parsing.

pub mod callerid;
pub mod counters;
pub mod dids;
pub mod fraud;
pub mod identify;
pub mod limits;
pub mod numbers;
pub mod routing;
pub mod shared;
mod shared_fraud;
mod shared_scripts;

use std::net::SocketAddr;
use std::time::Instant;

use xtrunk_config::{Snapshot, TrunkId};

pub use callerid::NumberPlan;
pub use counters::{CounterStore, MemoryStore, Period};
pub use fraud::{FraudKey, FraudTables, Measure};
pub use shared::{RedisStore, SharedStatus};

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
    /// Privacy (RFC 3323), raw.
    pub privacy: Option<&'a str>,
    /// True when the INVITE carries an offer (a body).
    pub has_offer: bool,
    /// When it arrived, seconds since 1970 (UTC): for routes with a `time` window.
    pub at: Option<u64>,
    /// The trunk its digest credentials identified (`crate::auth`); None: by ACL.
    pub trunk: Option<TrunkId>,
}

impl IncomingCall<'_> {
    /// The route query of this call arriving from `tin`.
    pub fn route_query(&self, tin: TrunkId) -> xtrunk_config::RouteQuery<'_> {
        xtrunk_config::RouteQuery { from: tin, user: self.user, caller: self.from_user, at: self.at }
    }
}

/// What to do with a new call.
#[derive(Clone, Debug, PartialEq, Eq)]
// One per new INVITE, moved once: boxing the plan would only add an allocation per call.
#[allow(clippy::large_enum_variant)]
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
    /// The numbers as they go out.
    pub numbers: NumberPlan,
    /// What the call holds in the admission tables; released when it ends, by any path.
    pub hold: Hold,
    /// Queued for its account's CPS: start it then (the caller has `100 Trying`).
    pub start_at: Option<Instant>,
    /// Fraud measures at their warning level (logged and counted by the core).
    pub warnings: Vec<Measure>,
}

impl RoutePlan {
    /// A plan with no numbers rewritten and nothing held.
    pub fn new(inbound: TrunkId, entries: Vec<TrunkId>) -> Self {
        Self {
            inbound,
            entries,
            route: None,
            numbers: NumberPlan::default(),
            hold: Hold::default(),
            start_at: None,
            warnings: Vec::new(),
        }
    }
}

/// A call's entries in the admission tables (channels, fraud concurrency).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    /// Channels.
    pub lease: Option<counters::Lease>,
    /// The fraud entry it counts in.
    pub fraud: Option<FraudKey>,
}

/// The admission state policy reads and writes: the counters and the fraud tables. Owned by
/// the core, passed in; holds no clock and does no I/O.
pub struct Admission {
    /// Channels, buckets, rolling windows.
    pub store: Box<dyn CounterStore + Send>,
    /// Fraud detection.
    pub fraud: FraudTables,
}

impl Default for Admission {
    fn default() -> Self {
        Self { store: Box::new(MemoryStore::new()), fraud: FraudTables::default() }
    }
}

impl Admission {
    /// The admission state `cfg` asks for: counters in memory, or in the `[shared]` store.
    pub fn for_config(cfg: &Snapshot) -> Self {
        match cfg.raw.shared.kind {
            xtrunk_config::SharedKind::None => Self::default(),
            xtrunk_config::SharedKind::Redis => {
                Self { store: Box::new(RedisStore::new(cfg, &cfg.node.name)), fraud: FraudTables::default() }
            }
        }
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("leases", &self.store.leases()).field("fraud", &self.fraud.len()).finish()
    }
}

impl Admission {
    /// Releases what a call holds (idempotent: the hold is emptied). `talk_secs`: how long it
    /// was answered, None if never.
    pub fn release(&mut self, hold: &mut Hold, talk_secs: Option<u64>) {
        if let Some(l) = hold.lease.take() {
            self.store.release(l);
        }
        if let Some(k) = hold.fraud.take() {
            if !self.store.fraud_ended(k, talk_secs) {
                self.fraud.ended(k, talk_secs);
            }
        }
    }

    /// Follows a reload: trunks and accounts are matched by name between `old` and `new` (ids
    /// are positions and may change); those gone are dropped from the tables.
    pub fn reload(&mut self, old: &Snapshot, new: &Snapshot) {
        self.store.rename(new);
        let same = old.trunks.iter().map(|t| &t.name).eq(new.trunks.iter().map(|t| &t.name))
            && old.accounts.iter().map(|a| &a.name).eq(new.accounts.iter().map(|a| &a.name));
        if same {
            return;
        }
        let trunk = |t: TrunkId| new.trunk_by_name(&old.trunks.get(t.index())?.name);
        let account = |a: xtrunk_config::AccountId| new.account_by_name(&old.accounts.get(a.index())?.name);
        self.store.remap(&|s| match s {
            counters::Scope::Trunk(t) => trunk(t).map(counters::Scope::Trunk),
            counters::Scope::Account(a) => account(a).map(counters::Scope::Account),
        });
        self.fraud.remap(&account);
    }

    /// Re-takes the channels of a call resumed after a restart (no limit checked: it exists).
    pub fn adopt(&mut self, cfg: &Snapshot, tin: TrunkId, tout: TrunkId, now: Instant) -> Hold {
        let wants: Vec<counters::Want> = limits::channel_wants(cfg, tin, tout)
            .into_iter()
            .map(|w| counters::Want { total: None, in_dir: None, ..w })
            .collect();
        let lease = (!wants.is_empty()).then(|| self.store.try_acquire(&wants, now).ok()).flatten();
        Hold { lease, fraud: None }
    }
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
    /// The destination is an accept-register trunk with no registered contact (`480`).
    NotRegistered,
    /// The INVITE carries no offer and the caller's trunk requires SRTP (a delayed offer is
    /// served otherwise).
    OfferRequired,
    /// The trunk accepts requests on other transports only (`trunk.transports`).
    TransportNotAllowed,
    /// Every target of every trunk the route offers is offline (OPTIONS health).
    TrunkOffline,
    /// A call from a carrier to a number in no account's DID pool.
    Unprovisioned,
    /// Concurrent calls of a trunk (or account) at its limit; `code` is its `channels_full_code`.
    ChannelsFull {
        /// The account's limit (else the trunk's).
        account: bool,
        /// The callee side's (the outbound trunk or its account): another route may be tried.
        outbound: bool,
        /// The status to answer.
        code: u16,
    },
    /// Over a trunk's CPS (at once), or an account's with its queue full or too long.
    Cps {
        /// The account's bucket (else the trunk's).
        account: bool,
        /// `Retry-After` seconds.
        retry_secs: u32,
    },
    /// A rolling cap reached.
    Cap {
        /// The account's cap (else the trunk's).
        account: bool,
        /// Which window.
        period: Period,
    },
    /// The called number is not a telephone number (an account's calls must dial one).
    InvalidNumber,
    /// The destination country is not allowed for the account.
    DeniedCountry,
    /// The called number matches a denied prefix.
    DeniedPrefix,
    /// A premium-rate number (blocked unless the account allows them).
    PremiumRate,
    /// A shared-cost number (blocked unless the account allows them).
    SharedCost,
    /// The caller ID is not a number of the account (Plivo's `unknown_caller_id`).
    UnknownCallerId,
    /// The caller ID matches a trunk's CLI block prefix.
    BlockedCli,
    /// Fraud detection blocked the account's calls to the prefix (critical `measure`).
    Fraud(Measure),
}

impl RejectReason {
    /// The SIP status.
    pub fn code(self) -> u16 {
        match self {
            Self::NoRoute | Self::NoTargets => 404,
            Self::NotRegistered => 480,
            Self::OfferRequired => 488,
            Self::TrunkOffline => 503,
            Self::Unprovisioned => 404,
            Self::ChannelsFull { code, .. } => code,
            Self::Cps { .. } => 503,
            Self::InvalidNumber => 484,
            _ => 403,
        }
    }

    /// The reason phrase sent.
    pub fn phrase(self) -> &'static str {
        match self {
            Self::UnknownSource => "Forbidden",
            Self::NoRoute | Self::NoTargets => "No Route",
            Self::NotRegistered => "Not Registered",
            Self::OfferRequired => "Offer Required",
            Self::TransportNotAllowed => "Transport Not Allowed",
            Self::TrunkOffline => "Trunk Offline",
            Self::Unprovisioned => "Not Found",
            Self::ChannelsFull { .. } => "Channels Full",
            Self::Cps { .. } => "CPS Limit Exceeded",
            Self::Cap { .. } => "Call Cap Reached",
            Self::InvalidNumber => "Address Incomplete",
            Self::DeniedCountry | Self::DeniedPrefix => "Destination Not Allowed",
            Self::PremiumRate | Self::SharedCost => "Premium Number Blocked",
            Self::UnknownCallerId => "Unknown Caller ID",
            Self::BlockedCli => "Caller ID Blocked",
            Self::Fraud(_) => "Blocked By Fraud Control",
        }
    }

    /// The cause: CDR field `cause`, the `Warning` text and the metric label. Empty for the
    /// refusals the edge answered before admission control (they keep their old CDRs).
    pub fn cause(self) -> &'static str {
        match self {
            Self::UnknownSource | Self::NoRoute | Self::NoTargets | Self::OfferRequired | Self::TransportNotAllowed => {
                ""
            }
            Self::TrunkOffline => "trunk_offline",
            Self::NotRegistered => "not_registered",
            Self::Unprovisioned => "unprovisioned",
            Self::ChannelsFull { account: false, .. } => "channels_full_trunk",
            Self::ChannelsFull { account: true, .. } => "channels_full_account",
            Self::Cps { account: false, .. } => "cps_trunk",
            Self::Cps { account: true, .. } => "cps_account",
            Self::Cap { account, period } => match (account, period) {
                (false, Period::Hour) => "calls_per_hour_trunk",
                (false, Period::Day) => "calls_per_day_trunk",
                (false, Period::Week) => "calls_per_week_trunk",
                (true, Period::Hour) => "calls_per_hour_account",
                (true, Period::Day) => "calls_per_day_account",
                (true, Period::Week) => "calls_per_week_account",
            },
            Self::InvalidNumber => "invalid_number",
            Self::DeniedCountry => "denied_country",
            Self::DeniedPrefix => "denied_prefix",
            Self::PremiumRate => "premium_rate",
            Self::SharedCost => "shared_cost",
            Self::UnknownCallerId => "unknown_caller_id",
            Self::BlockedCli => "blocked_cli",
            Self::Fraud(Measure::CallsPerMinute) => "fraud_calls_per_minute",
            Self::Fraud(Measure::Concurrent) => "fraud_concurrent",
            Self::Fraud(Measure::SameNumber) => "fraud_same_number",
            Self::Fraud(Measure::CallsPerDay) => "fraud_calls_per_day",
            Self::Fraud(Measure::AvgDuration) => "fraud_min_avg_duration",
        }
    }

    /// `Retry-After` seconds to send, for the CPS refusals.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            Self::Cps { retry_secs, .. } => Some(retry_secs),
            _ => None,
        }
    }

    /// The CDR's end reason.
    pub fn end_reason(self) -> crate::cdr::EndReason {
        use crate::cdr::EndReason;
        match self {
            Self::NoRoute | Self::NoTargets | Self::NotRegistered | Self::Unprovisioned => EndReason::NoRoute,
            Self::UnknownSource | Self::OfferRequired | Self::TransportNotAllowed => EndReason::Rejected,
            Self::TrunkOffline => EndReason::TrunkOffline,
            _ => EndReason::Rejected,
        }
    }
}

/// Decides where a transfer (REFER from a leg of trunk `from` to Refer-To user `user`) may go:
/// the transferor's routes, then its account's destination rules (a transfer is a call the edge
/// places: premium-rate, denied countries and prefixes are refused as for a new call). The
/// new leg is not counted against channels, CPS or caps (the call already is).
pub fn admit_transfer(cfg: &Snapshot, from: TrunkId, user: &str) -> Result<TrunkId, RejectReason> {
    let tout = routing::outbound(cfg, from, user).filter(|t| !cfg.trunk(*t).targets.is_empty());
    let tout = tout.ok_or(RejectReason::NoRoute)?;
    if let Some(a) = cfg.trunk(from).account.map(|a| cfg.account(a)) {
        let n = numbers::normalise(user, cfg.trunk(from).numbers.country).ok_or(RejectReason::InvalidNumber)?;
        numbers::destination(&a.destinations, &n)?;
    }
    Ok(tout)
}

/// Decides a new call: identify the trunk, require an offer... in the order the edge has always
/// answered (403 before 404 before 488), then the numbers (destinations, caller ID), fraud
/// detection and the limits, which take what the call holds (see [`Admission::release`]).
pub fn admit(cfg: &Snapshot, call: &IncomingCall<'_>, now: Instant, adm: &mut Admission) -> Decision {
    let reject = |why, trunk| Decision::Reject(Reject { why, trunk });
    let Some(tin) = call.trunk.or_else(|| identify::by_acl(cfg, call.source.ip())) else {
        return reject(RejectReason::UnknownSource, None);
    };
    // PortSIP's "verify port": the address in the ACL is not enough, the port must be a target's.
    if cfg.trunk(tin).verify_port && !cfg.trunk(tin).targets.iter().any(|t| t.addr == call.source) {
        return reject(RejectReason::UnknownSource, None);
    }
    let allowed = &cfg.trunk(tin).transports;
    if !allowed.is_empty() && !allowed.iter().any(|t| crate::transport::Transport::from(*t) == call.transport) {
        return reject(RejectReason::TransportNotAllowed, Some(tin));
    }
    // A carrier's call to a DID goes only to the owning account's trunks.
    let q = call.route_query(tin);
    let did_entries = match dids::inbound(cfg, &q) {
        dids::Inbound::ByPrefix => None,
        dids::Inbound::Unprovisioned => return reject(RejectReason::Unprovisioned, Some(tin)),
        dids::Inbound::To(e) if e.is_empty() => return reject(RejectReason::NoRoute, Some(tin)),
        dids::Inbound::To(e) => Some(e),
    };
    let route = cfg.route_matching(&q);
    let tout = match (&did_entries, route) {
        (Some(e), _) => e[0],
        (None, Some((_, r))) => r.trunk,
        (None, None) => return reject(RejectReason::NoRoute, Some(tin)),
    };
    if cfg.trunk(tout).targets.is_empty() {
        let why = if cfg.trunk(tout).kind == xtrunk_config::TrunkKind::AcceptRegister {
            RejectReason::NotRegistered
        } else {
            RejectReason::NoTargets
        };
        return reject(why, Some(tin));
    }
    // Delayed offer (no SDP in the INVITE) is served: we offer in our 2xx and take the answer
    // from the ACK; not for a caller whose trunk requires SRTP (it must offer).
    let t = cfg.trunk(tin);
    let srtp_required =
        t.srtp == xtrunk_config::SrtpPolicy::Mandatory || (t.srtp_with_tls && call.transport == Transport::Tls);
    if !call.has_offer && srtp_required {
        return reject(RejectReason::OfferRequired, Some(tin));
    }
    let numbers = match callerid::plan(cfg, call, tin, tout) {
        Ok(n) => n,
        Err(why) => return reject(why, Some(tin)),
    };
    let mut hold = Hold::default();
    let mut warnings = Vec::new();
    let account = cfg.trunk(tin).account.map(|a| cfg.account(a)).filter(|a| a.fraud.any());
    if let (Some(a), Some(digits)) = (account, numbers.e164.as_deref()) {
        let shared = adm.store.fraud_call(a.id, &a.fraud, digits, now);
        let (v, key) = shared.unwrap_or_else(|| adm.fraud.call(a.id, &a.fraud, digits, now));
        if let Some(m) = v.blocked {
            return reject(RejectReason::Fraud(m), Some(tin));
        }
        hold.fraud = Some(key);
        warnings = v.warnings;
    }
    // The limits; when the chosen trunk's channels are full, the next candidate is tried (the
    // DID's next trunk, or the next route that matches with a shorter prefix), with its own
    // number plan. The plan's entries are the rest of the route (`then`) from there.
    let candidates = did_entries.clone().unwrap_or_else(|| routing::candidates(cfg, &q));
    let mut plan = Some(numbers);
    let mut last = RejectReason::NoRoute;
    for (i, tout) in candidates.iter().copied().enumerate() {
        let numbers = match plan.take() {
            Some(n) => n,
            None => match callerid::plan(cfg, call, tin, tout) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        match limits::admit(cfg, adm.store.as_mut(), tin, tout, now) {
            Ok(p) => {
                hold.lease = p.lease;
                let (entries, route) = plan_entries(cfg, &did_entries, route, i, tout);
                let start_at = p.start_at;
                return Decision::Route(RoutePlan { inbound: tin, entries, route, numbers, hold, start_at, warnings });
            }
            Err(why @ RejectReason::ChannelsFull { outbound: true, .. }) => last = why,
            Err(why) => {
                last = why;
                break;
            }
        }
    }
    adm.release(&mut hold, None);
    reject(last, Some(tin))
}

/// The entries from candidate `i` (`tout`) on: the DID's trunks from there; the route's `trunk`
/// and its `then`; or a shorter route's trunk alone.
fn plan_entries(
    cfg: &Snapshot,
    dids: &Option<Vec<TrunkId>>,
    route: Option<(usize, &xtrunk_config::RouteView)>,
    i: usize,
    tout: TrunkId,
) -> (Vec<TrunkId>, Option<usize>) {
    let (entries, route) = route_entries(dids, route, i, tout);
    (with_failover(cfg, &entries), route)
}

/// `entries` with each trunk's `failover` trunks after it (each trunk once, at most
/// [`xtrunk_config::MAX_ROUTE_ENTRIES`] in all; a failover trunk's own failover is not followed).
pub fn with_failover(cfg: &Snapshot, entries: &[TrunkId]) -> Vec<TrunkId> {
    let mut out: Vec<TrunkId> = Vec::with_capacity(entries.len());
    for (k, e) in entries.iter().enumerate() {
        if !out.contains(e) {
            out.push(*e);
        }
        for f in &cfg.trunk(*e).failover {
            if !out.contains(f) && !entries[k + 1..].contains(f) {
                out.push(*f);
            }
        }
    }
    out.truncate(xtrunk_config::MAX_ROUTE_ENTRIES);
    out
}

fn route_entries(
    dids: &Option<Vec<TrunkId>>,
    route: Option<(usize, &xtrunk_config::RouteView)>,
    i: usize,
    tout: TrunkId,
) -> (Vec<TrunkId>, Option<usize>) {
    match (dids, route) {
        (Some(e), r) => (e[i..].to_vec(), r.map(|(ix, _)| ix)),
        (None, Some((ix, r))) if r.trunk == tout => {
            (std::iter::once(tout).chain(r.then.iter().copied()).collect(), Some(ix))
        }
        (None, _) => (vec![tout], None),
    }
}

#[cfg(test)]
mod tests;
