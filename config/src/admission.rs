//! Admission and fraud control: the `limits` of trunks and accounts (channels, CPS, rolling
//! caps), an account's `destinations` and `fraud` thresholds, and a trunk's `numbers` (how caller
//! and called numbers are written, trust for P-Asserted-Identity, CLI prefix blocks).
//!
//! Every table is optional and off by default except the premium-rate/shared-cost block, which
//! is on for every account unless it sets `allow_premium`/`allow_shared_cost`.

use serde::{Deserialize, Serialize};

/// `[trunk.limits]` / `[account.limits]`: admission limits. Unset = unlimited.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Concurrent calls, inbound and outbound together, from admission until the call ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// Of `channels`, at most this many calls arriving from the trunk/account (the split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels_inbound: Option<u32>,
    /// Of `channels`, at most this many calls sent to the trunk/account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels_outbound: Option<u32>,
    /// Status when channels are full (503 by default; 486 and 480 are common too).
    #[serde(default = "default_full_code")]
    pub channels_full_code: u16,
    /// New calls per second (token bucket). A trunk fails fast (`503` + `Retry-After`); an
    /// account queues the excess up to `cps_queue_ms` / `cps_queue_len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cps: Option<f64>,
    /// Bucket depth in calls (default 1: calls are spaced at the rate).
    #[serde(default = "one")]
    pub cps_burst: u32,
    /// Accounts only: how long a call over the account's CPS may wait for its slot (ms).
    #[serde(default = "default_queue_ms")]
    pub cps_queue_ms: u32,
    /// Accounts only: how many calls may wait at once.
    #[serde(default = "default_queue_len")]
    pub cps_queue_len: u32,
    /// Calls per rolling hour; over → `403`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_hour: Option<u32>,
    /// Calls per rolling day (24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_day: Option<u32>,
    /// Calls per rolling week (7 × 24 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_week: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            channels: None,
            channels_inbound: None,
            channels_outbound: None,
            channels_full_code: default_full_code(),
            cps: None,
            cps_burst: one(),
            cps_queue_ms: default_queue_ms(),
            cps_queue_len: default_queue_len(),
            calls_per_hour: None,
            calls_per_day: None,
            calls_per_week: None,
        }
    }
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.channels.is_some()
            || self.channels_inbound.is_some()
            || self.channels_outbound.is_some()
            || self.cps.is_some()
            || self.calls_per_hour.is_some()
            || self.calls_per_day.is_some()
            || self.calls_per_week.is_some()
    }
}

fn default_full_code() -> u16 {
    503
}
fn one() -> u32 {
    1
}
fn default_queue_ms() -> u32 {
    2000
}
fn default_queue_len() -> u32 {
    10
}

/// `[account.destinations]`: where an account's calls may go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Destinations {
    /// ISO 3166 alpha-2 countries allowed (empty = every country not denied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_countries: Vec<String>,
    /// Countries refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_countries: Vec<String>,
    /// E.164 digit prefixes allowed even when their country is not (longest match wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_prefixes: Vec<String>,
    /// E.164 digit prefixes refused (revenue-share ranges the number library misses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_prefixes: Vec<String>,
    /// Allow premium-rate numbers (off: blocked, Plivo's default).
    #[serde(default)]
    pub allow_premium: bool,
    /// Allow shared-cost numbers (off: blocked).
    #[serde(default)]
    pub allow_shared_cost: bool,
    /// Caller ID (From, or PAI from a trusted trunk) must be one of the account's DIDs
    /// (`unknown_caller_id` otherwise). Default: on when the account has DIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_owned_caller_id: Option<bool>,
}

/// A warning and a critical level; either may be unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Reached: logged and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<u32>,
    /// Reached: the account's calls to the prefix are blocked for `cooldown_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<u32>,
}

impl Threshold {
    /// Whether either level is set.
    pub fn any(&self) -> bool {
        self.warning.is_some() || self.critical.is_some()
    }
}

/// `[account.fraud]`: per account and dialled prefix (OpenSIPS `fraud_detection`'s measures).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fraud {
    /// Digits of the E.164 number (country code included) that make the "prefix" (default 6).
    #[serde(default = "default_prefix_digits")]
    pub prefix_digits: u8,
    /// How long a critical block lasts.
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u32,
    /// Calls to the prefix in the last minute.
    #[serde(default)]
    pub calls_per_minute: Threshold,
    /// Concurrent calls to the prefix.
    #[serde(default)]
    pub concurrent: Threshold,
    /// Consecutive calls of the account to one number.
    #[serde(default)]
    pub same_number: Threshold,
    /// Calls to the prefix in the current day (rolling 24 h, hourly buckets).
    #[serde(default)]
    pub calls_per_day: Threshold,
    /// Average answered duration below this many seconds (after 10 calls): short-call fraud.
    #[serde(default)]
    pub min_avg_duration_secs: Threshold,
    /// Most (account, prefix) entries kept; older ones age out (default 65 536).
    #[serde(default = "default_max_entries")]
    pub max_entries: u32,
}

impl Default for Fraud {
    fn default() -> Self {
        Self {
            prefix_digits: default_prefix_digits(),
            cooldown_secs: default_cooldown(),
            calls_per_minute: Threshold::default(),
            concurrent: Threshold::default(),
            same_number: Threshold::default(),
            calls_per_day: Threshold::default(),
            min_avg_duration_secs: Threshold::default(),
            max_entries: default_max_entries(),
        }
    }
}

impl Fraud {
    /// Whether any threshold is set.
    pub fn any(&self) -> bool {
        self.calls_per_minute.any()
            || self.concurrent.any()
            || self.same_number.any()
            || self.calls_per_day.any()
            || self.min_avg_duration_secs.any()
    }
}

fn default_prefix_digits() -> u8 {
    6
}
fn default_cooldown() -> u32 {
    600
}
fn default_max_entries() -> u32 {
    65_536
}

/// How numbers are written toward a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NumberFormat {
    /// As received (no rewriting).
    #[default]
    AsIs,
    /// `+E.164` (Kwebbl, Plivo).
    PlusE164,
    /// E.164 digits without `+`.
    E164,
    /// `00` + E.164 digits.
    International00,
    /// National format of the trunk's `country` (`0` + national number), international
    /// (`00` + E.164) for other countries.
    National,
}

/// `[trunk.numbers]`: caller and called number handling of one trunk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Numbers {
    /// ISO 3166 alpha-2 country of national numbers received from this trunk (`0207…`);
    /// without one, numbers without `+`/`00` are read as E.164 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// How R-URI, To, From and PAI numbers are written toward this trunk.
    #[serde(default)]
    pub format: NumberFormat,
    /// In the trust domain (RFC 3325): its P-Asserted-Identity is believed, and PAI is sent to
    /// it. Untrusted trunks' PAI is stripped and none is sent to them.
    #[serde(default)]
    pub trusted: bool,
    /// Caller IDs (E.164 prefixes, `+` optional) refused on calls from or to this trunk
    /// (Plivo refuses `+6113`, `+611300`, `+611800`, `+611900`: list them on that carrier).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cli_block_prefixes: Vec<String>,
}
