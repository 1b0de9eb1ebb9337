//! Counters of everything refused or dropped, per reason, and the once-per-reason log limiter.

use std::collections::BTreeMap;

/// Per-reason counters (reason = the 4xx reason phrase or a drop cause) and call counters.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Metrics {
    /// Bad input, by reason (`Bad Via`, `Message Too Large`, `Malformed Response` ...).
    pub bad_input: BTreeMap<String, u64>,
    /// Final responses sent to callers, by code.
    pub finals_to_caller: BTreeMap<u16, u64>,
    /// Calls accepted for routing.
    pub calls_started: u64,
    /// New calls (accepted for routing or refused), by inbound trunk.
    pub attempts: BTreeMap<String, u64>,
    /// Calls answered (2xx relayed).
    pub calls_answered: u64,
    /// Calls fully torn down.
    pub calls_ended: u64,
    /// Answered calls resumed from the journal after a restart.
    pub calls_recovered: u64,
    /// Calls or sessions that could not be resumed after a restart and were ended.
    pub calls_released_on_restart: u64,
    /// Commands that waited because the datapath queue was full.
    pub media_backpressure: u64,
    /// Datapath errors received.
    pub media_errors: u64,
    /// TCP connections refused or closed by the shell's limits.
    pub tcp: TcpMetrics,
    /// OPTIONS health probes.
    pub probes: crate::probe::ProbeMetrics,
    /// Upstream registrations of register trunks.
    pub registrations: crate::upstream::core::RegistrationMetrics,
    /// Calls refused by admission control, by cause, then by inbound trunk.
    pub admission_rejects: BTreeMap<String, BTreeMap<String, u64>>,
    /// Fraud measures at their warning level, by measure, then by inbound trunk.
    pub fraud_warnings: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls that waited in an account's CPS queue.
    pub cps_queued: u64,
    /// Digest authentication and the per-source ban (`crate::auth`).
    pub auth: AuthMetrics,
    /// New calls shed under load, and the load (`crate::overload`).
    pub overload: crate::overload::OverloadMetrics,
}

/// Digest challenges, their outcomes and the scanner ban.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthMetrics {
    /// `407` challenges sent (stale ones included).
    pub challenges: u64,
    /// Challenges with `stale=true`.
    pub stale: u64,
    /// Requests authenticated, by the trunk of the user.
    pub ok: BTreeMap<String, u64>,
    /// Credentials refused, by reason (`unknown_user`, `bad_password`, `replay`, `bad_nonce`...).
    pub failed: BTreeMap<String, u64>,
    /// Sources banned.
    pub bans: u64,
    /// Requests from banned sources, dropped.
    pub banned_drops: u64,
    /// Requests from sources in no ACL dropped (`sip.unknown_source = "drop"`).
    pub unknown_dropped: u64,
}

/// TCP connections refused at accept or closed by a limit (`[sip]` `tcp_*` keys), per reason.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TcpMetrics {
    /// Refused: `tcp_max_connections` open already (outbound connects included).
    pub refused_cap_total: u64,
    /// Refused: `tcp_max_per_source` open already from (or to) that address.
    pub refused_cap_source: u64,
    /// Refused at accept: no trunk's acl or targets allow the address.
    pub refused_acl: u64,
    /// Closed: no byte either way for `tcp_idle_timeout_s`.
    pub closed_idle: u64,
    /// Closed: more than `max_message_bytes` without a complete frame.
    pub closed_oversize_read: u64,
    /// Closed: more than `tcp_max_write_buffer` queued toward a peer that does not read.
    pub closed_write_overflow: u64,
    /// Closed: a TLS handshake failed (certificate, name, CA, protocol) or a bad record.
    pub tls_failed: u64,
    /// Closed: a TLS client of a trunk with `tls.peer_name` presented no certificate, or one
    /// that does not carry the name.
    pub tls_peer_refused: u64,
}

/// Counts one event of `what`; logs the first (and every 10 000th after).
pub(crate) fn count(n: &mut u64, what: &str, detail: impl FnOnce() -> String) {
    *n += 1;
    if *n == 1 || (*n).is_multiple_of(10_000) {
        log::warn!("tcp {what}, {} so far: {}", *n, detail());
    }
}

impl Metrics {
    /// Counts one admission refusal of `cause` for calls from `trunk`.
    pub fn rejected(&mut self, cause: &str, trunk: &str) {
        *self.admission_rejects.entry(cause.into()).or_default().entry(trunk.into()).or_insert(0) += 1;
    }

    /// Counts one fraud warning; logs the first (and every 1 000th) per measure and trunk.
    pub fn fraud_warning(&mut self, measure: &str, trunk: &str, to: &str) {
        let n = self.fraud_warnings.entry(measure.into()).or_default().entry(trunk.into()).or_insert(0);
        *n += 1;
        if *n == 1 || (*n).is_multiple_of(1000) {
            log::warn!("fraud warning {measure} from trunk {trunk} (to {to}), {} so far", *n);
        }
    }

    /// Counts one bad input; logs the first of each reason (and every 10 000th after).
    pub fn bad(&mut self, reason: &str, detail: impl FnOnce() -> String) {
        let n = self.bad_input.entry(reason.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 || (*n).is_multiple_of(10_000) {
            log::warn!("bad input ({reason}), {} so far: {}", *n, detail());
        }
    }
}
