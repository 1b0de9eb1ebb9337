//! Call detail records, shaped for billing: one JSON object per line.

use serde::{Deserialize, Serialize};
use xtrunk_ring::msg::StreamStats;

/// Media statistics of one leg (what the relay received from that leg's peer).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets received.
    pub packets: u64,
    /// Packets lost.
    pub lost: u64,
    /// Interarrival jitter, RTP timestamp units.
    pub jitter: u32,
}

impl From<StreamStats> for LegStats {
    fn from(s: StreamStats) -> Self {
        Self { packets: s.packets, lost: s.lost, jitter: s.jitter }
    }
}

/// One call.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cdr {
    /// Caller-side Call-ID.
    pub call_id: String,
    /// Callee-side Call-ID (ours).
    pub b_call_id: String,
    /// Inbound trunk.
    pub trunk_in: String,
    /// Outbound trunk (empty when not routed).
    pub trunk_out: String,
    /// Caller (From user).
    pub from: String,
    /// Called number (Request-URI user).
    pub to: String,
    /// INVITE received, Unix ms.
    pub start_ms: u64,
    /// Answered, Unix ms (0 = never).
    pub answer_ms: u64,
    /// Ended, Unix ms.
    pub end_ms: u64,
    /// Final status sent to the caller (200 for answered calls).
    pub disposition: u16,
    /// Who/what ended it: `caller_bye`, `callee_bye`, `cancel`, `rejected`, `no_answer`, ...
    pub end_reason: String,
    /// Per-leg stats: [caller leg, callee leg].
    pub legs: [LegStats; 2],
}
