//! `options` of a `[[trunk]]`: OPTIONS health probing of its targets.

use serde::{Deserialize, Serialize};

/// Fewest seconds between two probes of one carrier target (Plivo asks for at most one OPTIONS
/// per 10 s toward its edge; other carriers rate-limit or ban faster pollers).
pub const MIN_CARRIER_INTERVAL_SECS: u32 = 10;

/// OPTIONS keepalive toward a trunk's targets: a target is probed every `interval_secs`; it goes
/// offline after `failures` probes in a row got no answer within `timeout_ms` (or a 5xx/6xx),
/// and back online after `successes` answered in a row. Routing skips offline targets, and a
/// trunk whose targets are all offline. TOML: `options = { interval_secs = 30 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptionsPing {
    /// Seconds between probes of each target; 0 = no probing (the default: every target counts
    /// as online). At least [`MIN_CARRIER_INTERVAL_SECS`] toward a carrier.
    pub interval_secs: u32,
    /// Failed probes in a row that take a target offline.
    pub failures: u32,
    /// Answered probes in a row that bring an offline target back.
    pub successes: u32,
    /// How long a probe waits for an answer before it counts as failed.
    pub timeout_ms: u32,
}

impl Default for OptionsPing {
    fn default() -> Self {
        Self { interval_secs: 0, failures: 3, successes: 2, timeout_ms: 2_000 }
    }
}

impl OptionsPing {
    /// Probing is off.
    pub fn is_off(&self) -> bool {
        self.interval_secs == 0
    }
}
