//! `[sip.overload]`: when the edge sheds new calls (`503` with `Retry-After`) because the SIP
//! loop or the session ring is behind. Calls already admitted are never refused.

use serde::{Deserialize, Serialize};

use crate::validate::Validator;

/// `[sip.overload]`: load shedding of new calls. The SIP loop measures how long it has been
/// behind (its UDP/TCP input not drained) and how full the session ring is; above either
/// threshold a share of new INVITEs (initial, out of dialog) is answered `503 Service
/// Unavailable` with `Retry-After` before any state is kept, the share growing while the load
/// stays over and shrinking once it falls below half of both thresholds. In-dialog requests,
/// ACK, BYE, CANCEL, retransmissions, responses and OPTIONS keepalives always flow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overload {
    /// Shed new calls over the thresholds (default true).
    pub enabled: bool,
    /// Milliseconds the loop may stay behind its input before new calls are shed (default 100:
    /// well below T1, 500 ms, so admitted calls' messages are answered before they are
    /// retransmitted).
    pub max_loop_lag_ms: u32,
    /// Percent of either session ring (commands to the datapath, events from it) that may be
    /// used before new calls are shed (default 50); a command waiting for room counts as 100.
    pub max_ring_fill_pct: u8,
    /// The `Retry-After` of a shed call's `503`, in seconds (default 5; RFC 3261 §21.5.4).
    pub retry_after_secs: u32,
}

impl Default for Overload {
    fn default() -> Self {
        Self { enabled: true, max_loop_lag_ms: 100, max_ring_fill_pct: 50, retry_after_secs: 5 }
    }
}

/// `[sip.overload]` (`p` is its key path).
pub(crate) fn validate_overload(v: &mut Validator, p: &str, o: &Overload) {
    if !(1..=10_000).contains(&o.max_loop_lag_ms) {
        v.add(format!("{p}.max_loop_lag_ms"), format!("must be 1..=10000, got {}", o.max_loop_lag_ms));
    }
    if !(1..=100).contains(&o.max_ring_fill_pct) {
        v.add(format!("{p}.max_ring_fill_pct"), format!("must be 1..=100, got {}", o.max_ring_fill_pct));
    }
    if !(1..=3600).contains(&o.retry_after_secs) {
        v.add(format!("{p}.retry_after_secs"), format!("must be 1..=3600, got {}", o.retry_after_secs));
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Host};

    fn problems(toml: &str) -> Vec<String> {
        let c = Config::parse(toml, "test").unwrap();
        c.validate(Host { cores: 64, check_paths: false }).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_on_and_valid() {
        let c = Config::embedded_default().unwrap();
        assert!(c.sip.overload.enabled);
        assert_eq!(c.sip.overload.max_loop_lag_ms, 100);
        assert!(problems("").is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        let p = problems("[sip.overload]\nmax_loop_lag_ms = 0\nmax_ring_fill_pct = 101\nretry_after_secs = 0\n");
        assert!(p.contains(&"sip.overload.max_loop_lag_ms: must be 1..=10000, got 0".to_string()), "{p:?}");
        assert!(p.contains(&"sip.overload.max_ring_fill_pct: must be 1..=100, got 101".to_string()), "{p:?}");
        assert!(p.contains(&"sip.overload.retry_after_secs: must be 1..=3600, got 0".to_string()), "{p:?}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::parse("[sip.overload]\nmax_lag_ms = 5\n", "test").is_err());
    }
}
