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
    /// Only calls whose caller (the From user as received: `+` and digits) starts with this;
    /// a longer caller prefix wins over a shorter one among routes of the same called prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_prefix: Option<String>,
    /// Only calls placed inside this weekly window (e.g. office hours to one carrier, the
    /// night to another); a route with a window wins over one without among equals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeWindow>,
}

/// `time = { days = ["mon", "tue"], from = "08:00", to = "18:00", utc_offset_minutes = 60 }`:
/// a weekly window in the local time `utc_offset_minutes` east of UTC. `to` before `from` spans
/// midnight (the night belongs to the day it started on). No `days`: every day.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// `mon` … `sun`; empty = every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// Start, `HH:MM` (inclusive).
    pub from: String,
    /// End, `HH:MM` (exclusive).
    pub to: String,
    /// Minutes east of UTC of the local time the window is written in (-840..=840).
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

/// Day names, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `HH:MM` as minutes of the day.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
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
            caller_prefix: None,
            time: None,
        }
    }
}

/// 408 and the 5xx class.
pub fn default_failover_codes() -> Vec<u16> {
    std::iter::once(408).chain(500..600).collect()
}
