//! Voice quality of a received stream: the ITU-T G.107 E-model, simplified, from loss, jitter,
//! round-trip time and codec.
//!
//! `R = R0 − Is − Id − Ie,eff + A` with G.107's default `R0 − Is = 93.2` (no echo or noise
//! terms are measured here) and `A = 0`:
//! - `Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)` (G.107 §7.5), with random loss
//!   (`BurstR = 1`), `Ppl` the loss percentage, `Ie`/`Bpl` per codec from G.113 Appendix I:
//!   G.711 `Ie = 0`, `Bpl = 25.1` (with packet loss concealment, which every endpoint we carry
//!   calls for does; 4.3 without), G.729A `Ie = 11`, `Bpl = 19`;
//! - `Id` from the one-way delay `d` in ms by the usual simplification of G.107's delay terms
//!   (Cole & Rosenbluth 2001): `Id = 0.024 d + 0.11 (d − 177.3) H(d − 177.3)`, where `d` is
//!   half the round-trip time when the peer reported it (RTCP XR, RFC 3611 §4.7) plus a jitter
//!   buffer of twice the RFC 3550 interarrival jitter;
//! - `MOS = 1 + 0.035 R + 7·10⁻⁶ R (R − 60)(100 − R)` for `0 < R < 100` (G.107 Annex B).
//!
//! Computed when stats are read (never per packet).

use xtrunk_ring::msg::Codec;

/// Codec impairment figures (G.113 Appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Equipment impairment factor `Ie`.
    pub ie: f64,
    /// Packet-loss robustness factor `Bpl`.
    pub bpl: f64,
}

/// G.113 figures for the codecs we can rate; `None` for the others.
pub fn impairment(codec: Codec) -> Option<Impairment> {
    match codec {
        Codec::Pcma | Codec::Pcmu => Some(Impairment { ie: 0.0, bpl: 25.1 }),
        Codec::G729 => Some(Impairment { ie: 11.0, bpl: 19.0 }),
        _ => None,
    }
}

/// The E-model's R-factor for `codec` at `loss_pct` % random loss and `delay_ms` one-way delay.
pub fn r_factor(imp: Impairment, loss_pct: f64, delay_ms: f64) -> f64 {
    let ppl = loss_pct.clamp(0.0, 100.0);
    let ie_eff = imp.ie + (95.0 - imp.ie) * ppl / (ppl + imp.bpl);
    let d = delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    (93.2 - id - ie_eff).clamp(0.0, 100.0)
}

/// MOS (conversational quality, estimated) from an R-factor (G.107 Annex B).
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

/// `(R × 10, MOS × 100)` rounded, for [`StreamStats`](xtrunk_ring::msg::StreamStats); `(0, 0)`
/// when nothing can be rated (no audio received, unknown codec).
pub fn rate(codec: Option<Codec>, received: u64, lost: u64, jitter_ms: f64, rtt_ms: Option<f64>) -> (u16, u16) {
    let Some(imp) = codec.and_then(impairment) else { return (0, 0) };
    let expected = received + lost;
    if received == 0 || expected == 0 {
        return (0, 0);
    }
    let loss_pct = 100.0 * lost as f64 / expected as f64;
    let delay = rtt_ms.unwrap_or(0.0) / 2.0 + 2.0 * jitter_ms;
    let r = r_factor(imp, loss_pct, delay);
    ((r * 10.0).round() as u16, (mos(r) * 100.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_g107() {
        // No loss, no delay: G.107's default R of 93.2, MOS 4.41.
        let g711 = impairment(Codec::Pcma).unwrap();
        assert!((r_factor(g711, 0.0, 0.0) - 93.2).abs() < 1e-9);
        assert!((mos(93.2) - 4.409).abs() < 0.001);
        // G.729A without loss: R = 82.2.
        assert!((r_factor(impairment(Codec::G729).unwrap(), 0.0, 0.0) - 82.2).abs() < 1e-9);
        assert_eq!(mos(-3.0), 1.0);
        assert_eq!(mos(120.0), 4.5);
        // Delay beyond 177.3 ms costs more per ms.
        let a = r_factor(g711, 0.0, 150.0) - r_factor(g711, 0.0, 160.0);
        let b = r_factor(g711, 0.0, 250.0) - r_factor(g711, 0.0, 260.0);
        assert!(b > a * 4.0);
        assert_eq!(rate(Some(Codec::Opus), 100, 0, 0.0, None), (0, 0));
        assert_eq!(rate(Some(Codec::Pcmu), 0, 0, 0.0, None), (0, 0));
    }
}
