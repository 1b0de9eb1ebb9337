//! `[[route]]`: the static routing table.

use serde::{Deserialize, Serialize};

/// Most entries (the trunk and its failover trunks) one route may list (Infobip's limit).
pub const MAX_ROUTE_ENTRIES: usize = 10;

/// A static route: calls whose Request-URI user matches go to `trunk`, then, when it fails, to
/// each trunk of `then` in order (hunting).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Digits prefix of the called number (`+` and digits; empty = default route). The longest
    /// matching prefix wins.
    #[serde(default)]
    pub prefix: String,
    /// Only calls arriving from this trunk (by name); none = any.
    #[serde(default)]
    pub from_trunk: Option<String>,
    /// Destination trunk name.
    pub trunk: String,
    /// Failover trunks, tried in order after `trunk` (at most 9: ten entries in all). A call
    /// moves on when every target of the current trunk failed with a `failover_codes` answer,
    /// timed out, was unreachable or offline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<String>,
    /// Final answers of a trunk that send the call to the next entry (default 408 and every
    /// 5xx); any other final goes back to the caller.
    #[serde(default = "default_failover_codes")]
    pub failover_codes: Vec<u16>,
    /// The last entry: a phone number (`+` and digits). When every trunk failed, the call is
    /// placed again to this number through the outbound routes of the trunk it came from (once:
    /// the number's own route cannot re-originate it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then_number: Option<String>,
}

impl Route {
    /// A route of `prefix` (from `from_trunk` only, when set) to `trunk`, with no failover
    /// entries and the default failover codes.
    pub fn to(prefix: &str, from_trunk: Option<&str>, trunk: &str) -> Self {
        Self {
            prefix: prefix.into(),
            from_trunk: from_trunk.map(Into::into),
            trunk: trunk.into(),
            then: Vec::new(),
            failover_codes: default_failover_codes(),
            then_number: None,
        }
    }
}

/// 408 and the 5xx class.
pub fn default_failover_codes() -> Vec<u16> {
    std::iter::once(408).chain(500..600).collect()
}
