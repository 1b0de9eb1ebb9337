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
    /// Packets from sources that were not the leg's peer and could not latch (dropped; a third
    /// party aiming media at the call's port). Omitted when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejected_sources: u64,
    /// RTCP packets received.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rtcp_packets: u64,
    /// Packets dropped on this leg for any reason (malformed, wrong source, SRTP failure,
    /// unmapped payload type); the per-reason split is in the datapath's counters. Omitted when
    /// zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// The E-model (ITU-T G.107) R-factor of what the leg received, × 10; omitted when the
    /// datapath could not rate it (no audio, or a codec without impairment figures).
    #[serde(default, skip_serializing_if = "is_zero16")]
    pub r_x10: u16,
    /// MOS from that R-factor, × 100; omitted likewise.
    #[serde(default, skip_serializing_if = "is_zero16")]
    pub mos_x100: u16,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero16(n: &u16) -> bool {
    *n == 0
}

impl From<StreamStats> for LegStats {
    fn from(s: StreamStats) -> Self {
        Self {
            packets: s.packets,
            lost: s.lost,
            jitter: s.jitter,
            rejected_sources: s.rejected_sources,
            rtcp_packets: s.rtcp_packets,
            dropped: s.dropped,
            r_x10: s.r_x10,
            mos_x100: s.mos_x100,
        }
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
    pub end_reason: EndReason,
    /// Per-leg stats: [caller leg, callee leg].
    pub legs: [LegStats; 2],
    /// Why admission control refused the call (`channels_full_trunk`, `cps_account`,
    /// `calls_per_hour_account`, `premium_rate`, `unknown_caller_id`, `blocked_cli`, ...);
    /// omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    /// Every leg a REFER created (or tried to), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfers: Vec<TransferCdr>,
    /// The inbound trunk's account (`trunk.account`; empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account_in: String,
    /// The outbound trunk's account (empty: none, or not routed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account_out: String,
    /// The Q.850 cause of the `Reason: Q.850;cause=N` header on the BYE, CANCEL or final
    /// response that ended the call (0 = none given).
    #[serde(default)]
    pub q850: u16,
    /// The codec of the first payload type negotiated on the callee leg (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub codec: String,
    /// SRTP per leg: [caller leg, callee leg].
    #[serde(default)]
    pub srtp: [bool; 2],
    /// Every target the call was sent to, in order (hunting over targets and route entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptCdr>,
    /// DTMF digits sent during the call, in order, on either leg: RFC 4733 events and in-band
    /// tones, as the datapath reported their starts (`Event::Dtmf`); `0`–`9`, `*`, `#`, `A`–`D`.
    /// At most [`MAX_DTMF`] kept (`dtmf_count` counts them all); omitted when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dtmf: String,
    /// How many digits were sent (also past [`MAX_DTMF`]); omitted when none.
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub dtmf_count: u32,
}

/// Most digits a CDR's `dtmf` keeps.
pub const MAX_DTMF: usize = 64;

fn is_zero32(n: &u32) -> bool {
    *n == 0
}

impl Cdr {
    /// Records one digit (RFC 4733 event code 0–15; others are not digits and not recorded).
    pub fn push_dtmf(&mut self, event: u8) {
        let Some(&c) = b"0123456789*#ABCD".get(usize::from(event)) else { return };
        self.dtmf_count = self.dtmf_count.saturating_add(1);
        if self.dtmf.len() < MAX_DTMF {
            self.dtmf.push(char::from(c));
        }
    }
}

/// One attempt of a call: a target of a trunk, and its answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttemptCdr {
    /// The trunk.
    pub trunk: String,
    /// The target (`ip:port`).
    pub target: String,
    /// Its final answer: 200 (answered), a failure code, 408 for no answer in time or an
    /// unreachable target, 487 for one we cancelled; 0 while pending.
    pub code: u16,
}

impl Cdr {
    /// Who hung up, from [`Cdr::end_reason`]: `caller`, `callee` or `system` (refusals,
    /// timeouts, restarts, shutdown).
    pub fn hangup_by(&self) -> &'static str {
        match self.end_reason {
            EndReason::CallerBye | EndReason::Cancel => "caller",
            EndReason::CalleeBye | EndReason::CalleeRejected => "callee",
            _ => "system",
        }
    }

    /// The time billed: answer to end, ms (0 for unanswered calls).
    pub fn duration_ms(&self) -> u64 {
        if self.answer_ms == 0 {
            0
        } else {
            self.end_ms.saturating_sub(self.answer_ms)
        }
    }
}

/// The cause of a `Reason: Q.850;cause=16;text="..."` header value (RFC 3326); None for other
/// protocols or a malformed value.
pub fn q850_cause(reason: &str) -> Option<u16> {
    let mut parts = reason.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case("q.850") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("cause").then(|| v.trim().parse().ok()).flatten()
    })
}

/// One transfer (REFER) of a call: who asked, where to, and what became of the new leg.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TransferCdr {
    /// The transferor's slot: 0 = caller side, 1 = callee side.
    pub slot: u8,
    /// The transferor's trunk.
    pub by_trunk: String,
    /// Refer-To user (the number dialled).
    pub to: String,
    /// The trunk the new leg went to (empty: no route).
    pub trunk_out: String,
    /// The new leg's Call-ID (ours; empty when no leg was created).
    pub call_id: String,
    /// REFER accepted, Unix ms.
    pub start_ms: u64,
    /// The new leg's final status (404/488 when no leg could be created; 0 while pending).
    pub code: u16,
}

/// Who or what ended a call (the CDR's `end_reason`, in snake case on the wire).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Not known yet (a call in progress).
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Refused at setup (ACL, offer, SRTP, media ports).
    Rejected,
    /// No route for the called number.
    NoRoute,
    /// The caller cancelled.
    Cancel,
    /// The caller hung up.
    CallerBye,
    /// The callee hung up.
    CalleeBye,
    /// The caller never ACKed our 2xx.
    AckTimeout,
    /// The callee's targets did not answer (timer B / transport failure).
    Timeout,
    /// The callee refused (non-2xx final).
    CalleeRejected,
    /// The callee's 2xx had no usable SDP answer.
    NoAnswerSdp,
    /// The callee's answer could not be relayed to the caller.
    AnswerNotAcceptable,
    /// No answer within `sip.no_answer_timeout_secs`.
    NoAnswer,
    /// The datapath refused the session.
    MediaError,
    /// No media within `media.timeout_secs`.
    MediaTimeout,
    /// Ended because a restarted sidecar could not resume it.
    SidecarRestart,
    /// The edge was stopped (SIGTERM): we sent BYE (or 503 to a ringing caller).
    Shutdown,
    /// The datapath died: the call's media was gone, we sent BYE both ways.
    MediaLost,
    /// Every target of the route's trunks was offline (OPTIONS health).
    TrunkOffline,
    /// A leg's session timer ran out (RFC 4028): no successful refresh in time.
    SessionExpired,
    /// Ended through the admin API (`DELETE /api/v1/calls/{call-id}`).
    Admin,
    /// A value this version does not know (read from an older or newer journal).
    #[serde(other)]
    Other,
}

impl EndReason {
    /// The wire form (`caller_bye`, ...; empty for [`EndReason::Unset`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "",
            Self::Rejected => "rejected",
            Self::NoRoute => "no_route",
            Self::Cancel => "cancel",
            Self::CallerBye => "caller_bye",
            Self::CalleeBye => "callee_bye",
            Self::AckTimeout => "ack_timeout",
            Self::Timeout => "timeout",
            Self::CalleeRejected => "callee_rejected",
            Self::NoAnswerSdp => "no_answer_sdp",
            Self::AnswerNotAcceptable => "answer_not_acceptable",
            Self::NoAnswer => "no_answer",
            Self::MediaError => "media_error",
            Self::MediaTimeout => "media_timeout",
            Self::SidecarRestart => "sidecar_restart",
            Self::Shutdown => "shutdown",
            Self::MediaLost => "media_lost",
            Self::TrunkOffline => "trunk_offline",
            Self::SessionExpired => "session_expired",
            Self::Admin => "admin",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for EndReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_drop_counts_reach_the_cdr_and_zeros_stay_out() {
        let s = StreamStats {
            packets: 500,
            dropped: 7,
            rejected_sources: 5,
            rtcp_packets: 3,
            r_x10: 774,
            mos_x100: 392,
            ..StreamStats::default()
        };
        let j = serde_json::to_string(&LegStats::from(s)).unwrap();
        assert!(
            j.contains("\"dropped\":7") && j.contains("\"rejected_sources\":5") && j.contains("\"rtcp_packets\":3"),
            "{j}"
        );
        assert!(j.contains("\"r_x10\":774") && j.contains("\"mos_x100\":392"), "{j}");
        let j = serde_json::to_string(&LegStats::from(StreamStats::default())).unwrap();
        assert_eq!(j, r#"{"packets":0,"lost":0,"jitter":0}"#);
    }

    #[test]
    fn dtmf_digits_and_count() {
        let mut c = Cdr::default();
        assert!(!serde_json::to_string(&c).unwrap().contains("dtmf"));
        for e in [1, 2, 10, 11, 15, 16] {
            c.push_dtmf(e);
        }
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.contains(r#""dtmf":"12*#D","dtmf_count":5"#), "{j}");
        for _ in 0..100 {
            c.push_dtmf(0);
        }
        assert_eq!((c.dtmf.len(), c.dtmf_count), (MAX_DTMF, 105));
    }

    #[test]
    fn q850_causes_are_read_from_reason_headers() {
        assert_eq!(q850_cause("Q.850;cause=16;text=\"Normal call clearing\""), Some(16));
        assert_eq!(q850_cause("q.850 ; cause = 17"), Some(17));
        assert_eq!(q850_cause("SIP;cause=200"), None);
        assert_eq!(q850_cause("Q.850;text=x"), None);
    }

    #[test]
    fn end_reason_wire_form_round_trips() {
        for r in [EndReason::Unset, EndReason::CallerBye, EndReason::NoRoute, EndReason::SidecarRestart] {
            let j = serde_json::to_string(&r).unwrap();
            assert_eq!(j, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<EndReason>(&j).unwrap(), r);
        }
        assert_eq!(serde_json::from_str::<EndReason>("\"from_the_future\"").unwrap(), EndReason::Other);
    }
}
