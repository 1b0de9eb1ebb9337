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
}

impl Metrics {
    /// Counts one bad input; logs the first of each reason (and every 10 000th after).
    pub fn bad(&mut self, reason: &str, detail: impl FnOnce() -> String) {
        let n = self.bad_input.entry(reason.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 || *n % 10_000 == 0 {
            log::warn!("bad input ({reason}), {} so far: {}", *n, detail());
        }
    }
}
