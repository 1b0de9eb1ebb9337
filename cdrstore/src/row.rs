//! The stored form of a CDR: one flat row, the same columns in SQLite and PostgreSQL, in CSV
//! and in JSON exports.

use serde::{Deserialize, Serialize};
use xtrunk_signaling::cdr::Cdr;

/// One call, as stored. The key is (`call_id`, `b_call_id`, `setup_ms`): a CDR replayed after a
/// crash (the journal's `sidecar_restart` copy of one already written) is dropped by it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Caller-side Call-ID.
    pub call_id: String,
    /// Callee-side Call-ID (ours; empty when no INVITE went out).
    pub b_call_id: String,
    /// Inbound trunk.
    pub trunk_in: String,
    /// Outbound trunk (empty when not routed).
    pub trunk_out: String,
    /// Inbound trunk's account.
    pub account_in: String,
    /// Outbound trunk's account.
    pub account_out: String,
    /// Caller as dialled (From user).
    pub from_dialled: String,
    /// Caller normalised ([`normalise`]).
    pub from_norm: String,
    /// Called number as dialled (Request-URI user).
    pub to_dialled: String,
    /// Called number normalised ([`normalise`]).
    pub to_norm: String,
    /// Targets tried (hunting).
    pub attempts: u32,
    /// INVITE received, Unix ms.
    pub setup_ms: u64,
    /// Answered, Unix ms (0 = never).
    pub answer_ms: u64,
    /// Ended, Unix ms.
    pub end_ms: u64,
    /// Answer to end, ms.
    pub duration_ms: u64,
    /// Final SIP status sent to the caller.
    pub sip_code: u16,
    /// Q.850 cause from a `Reason` header (0 = none).
    pub q850: u16,
    /// `caller_bye`, `callee_bye`, `cancel`, ... (`signaling::cdr::EndReason`).
    pub end_reason: String,
    /// `caller`, `callee` or `system`.
    pub hangup_by: String,
    /// Codec on the callee leg.
    pub codec: String,
    /// SRTP on the caller leg.
    pub srtp_a: bool,
    /// SRTP on the callee leg.
    pub srtp_b: bool,
    /// Caller leg: RTP packets received.
    pub a_packets: u64,
    /// Caller leg: packets lost.
    pub a_lost: u64,
    /// Caller leg: jitter (RTP timestamp units).
    pub a_jitter: u32,
    /// Callee leg: RTP packets received.
    pub b_packets: u64,
    /// Callee leg: packets lost.
    pub b_lost: u64,
    /// Callee leg: jitter.
    pub b_jitter: u32,
    /// The transfers, as a JSON array (empty string: none).
    pub transfers: String,
}

/// The column names, in order (DDL, INSERT, SELECT, CSV header).
pub const COLUMNS: [&str; 29] = [
    "call_id",
    "b_call_id",
    "trunk_in",
    "trunk_out",
    "account_in",
    "account_out",
    "from_dialled",
    "from_norm",
    "to_dialled",
    "to_norm",
    "attempts",
    "setup_ms",
    "answer_ms",
    "end_ms",
    "duration_ms",
    "sip_code",
    "q850",
    "end_reason",
    "hangup_by",
    "codec",
    "srtp_a",
    "srtp_b",
    "a_packets",
    "a_lost",
    "a_jitter",
    "b_packets",
    "b_lost",
    "b_jitter",
    "transfers",
];

/// A number reduced to what routing and reports compare: visual separators (` -.()`) dropped,
/// a `tel:`/`sip:` scheme and a `;param` tail cut, the international prefix (`+` or `00`)
/// removed, so an international number is its E.164 digits (`+91 98...` → `9198...`). Anything
/// else is kept as dialled.
pub fn normalise(n: &str) -> String {
    let n = n.split(';').next().unwrap_or("");
    let n = n.strip_prefix("tel:").or_else(|| n.strip_prefix("sip:")).unwrap_or(n);
    let kept: String = n.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    if let Some(rest) = kept.strip_prefix('+').or_else(|| kept.strip_prefix("00")) {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return rest.to_string();
        }
    }
    kept
}

impl From<&Cdr> for Row {
    fn from(c: &Cdr) -> Self {
        Self {
            call_id: c.call_id.clone(),
            b_call_id: c.b_call_id.clone(),
            trunk_in: c.trunk_in.clone(),
            trunk_out: c.trunk_out.clone(),
            account_in: c.account_in.clone(),
            account_out: c.account_out.clone(),
            from_dialled: c.from.clone(),
            from_norm: normalise(&c.from),
            to_dialled: c.to.clone(),
            to_norm: normalise(&c.to),
            // The count; the per-attempt list (trunk, target, code) stays in the CDR file.
            attempts: u32::try_from(c.attempts.len()).unwrap_or(u32::MAX),
            setup_ms: c.start_ms,
            answer_ms: c.answer_ms,
            end_ms: c.end_ms,
            duration_ms: c.duration_ms(),
            sip_code: c.disposition,
            q850: c.q850,
            end_reason: c.end_reason.as_str().to_string(),
            hangup_by: c.hangup_by().to_string(),
            codec: c.codec.clone(),
            srtp_a: c.srtp[0],
            srtp_b: c.srtp[1],
            a_packets: c.legs[0].packets,
            a_lost: c.legs[0].lost,
            a_jitter: c.legs[0].jitter,
            b_packets: c.legs[1].packets,
            b_lost: c.legs[1].lost,
            b_jitter: c.legs[1].jitter,
            transfers: if c.transfers.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&c.transfers).unwrap_or_default()
            },
        }
    }
}

/// A column's value, typed for the databases.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Text.
    Text(&'a str),
    /// An integer (every count, time and code; booleans as 0/1).
    Int(i64),
}

impl Row {
    /// The values in [`COLUMNS`] order.
    pub fn values(&self) -> [Value<'_>; 29] {
        let i = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        use Value::Text as T;
        [
            T(&self.call_id),
            T(&self.b_call_id),
            T(&self.trunk_in),
            T(&self.trunk_out),
            T(&self.account_in),
            T(&self.account_out),
            T(&self.from_dialled),
            T(&self.from_norm),
            T(&self.to_dialled),
            T(&self.to_norm),
            i(self.attempts.into()),
            i(self.setup_ms),
            i(self.answer_ms),
            i(self.end_ms),
            i(self.duration_ms),
            i(self.sip_code.into()),
            i(self.q850.into()),
            T(&self.end_reason),
            T(&self.hangup_by),
            T(&self.codec),
            i(self.srtp_a.into()),
            i(self.srtp_b.into()),
            i(self.a_packets),
            i(self.a_lost),
            i(self.a_jitter.into()),
            i(self.b_packets),
            i(self.b_lost),
            i(self.b_jitter.into()),
            T(&self.transfers),
        ]
    }

    /// Builds a row from values in [`COLUMNS`] order (text columns as strings, the rest as
    /// integers); None when one is missing or of the wrong kind.
    pub fn from_values(v: &[Value<'_>]) -> Option<Self> {
        let t = |k: usize| match v.get(k)? {
            Value::Text(s) => Some((*s).to_string()),
            Value::Int(_) => None,
        };
        let n = |k: usize| match v.get(k)? {
            Value::Int(n) => u64::try_from(*n).ok(),
            Value::Text(_) => None,
        };
        Some(Self {
            call_id: t(0)?,
            b_call_id: t(1)?,
            trunk_in: t(2)?,
            trunk_out: t(3)?,
            account_in: t(4)?,
            account_out: t(5)?,
            from_dialled: t(6)?,
            from_norm: t(7)?,
            to_dialled: t(8)?,
            to_norm: t(9)?,
            attempts: n(10)?.try_into().ok()?,
            setup_ms: n(11)?,
            answer_ms: n(12)?,
            end_ms: n(13)?,
            duration_ms: n(14)?,
            sip_code: n(15)?.try_into().ok()?,
            q850: n(16)?.try_into().ok()?,
            end_reason: t(17)?,
            hangup_by: t(18)?,
            codec: t(19)?,
            srtp_a: n(20)? != 0,
            srtp_b: n(21)? != 0,
            a_packets: n(22)?,
            a_lost: n(23)?,
            a_jitter: n(24)?.try_into().ok()?,
            b_packets: n(25)?,
            b_lost: n(26)?,
            b_jitter: n(27)?.try_into().ok()?,
            transfers: t(28)?,
        })
    }

    /// Is column `k` text (else an integer)?
    pub fn is_text(k: usize) -> bool {
        matches!(k, 0..=9 | 17..=19 | 28)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_e164_digits() {
        assert_eq!(normalise("+91 98765-43210"), "919876543210");
        assert_eq!(normalise("0049301234"), "49301234");
        assert_eq!(normalise("tel:+1(555)0100;phone-context=x"), "15550100");
        assert_eq!(normalise("4930123"), "4930123");
        assert_eq!(normalise("alice"), "alice");
    }

    #[test]
    fn values_round_trip() {
        let r = Row { call_id: "a".into(), setup_ms: 5, srtp_b: true, q850: 16, ..Row::default() };
        let v = r.values();
        assert_eq!(Row::from_values(&v).as_ref(), Some(&r));
        for (k, x) in v.iter().enumerate() {
            assert_eq!(Row::is_text(k), matches!(x, Value::Text(_)), "column {}", COLUMNS[k]);
        }
    }
}
