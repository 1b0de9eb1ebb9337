//! Delayed offer (RFC 3261 §13.2.1, RFC 3264): an INVITE without SDP. The callee leg is a
//! normal early-offer call (carriers often require one): we offer it what the caller's trunk
//! allows ([`stand_in_offer`]); the callee's choice, on the relay's address, goes to the caller
//! as the offer in our 2xx; the caller's answer arrives in its ACK ([`Core::delayed_answer`]) and
//! sets the caller leg's media. An ACK without a usable answer ends the call (BYE both legs, CDR
//! `no_answer_sdp`). SDP in the callee's provisionals is kept, not relayed (an offer in an
//! unreliable 1xx is not allowed).

use std::time::Instant;

use xtrunk_ring::msg::Command;

use super::remote_spec;
use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::sdp::{self, Sdp};
use crate::sip::msg::Message;
use crate::sip::transaction::CallKey;

/// The offer a caller that sent none (delayed offer) stands for: every codec its trunk allows,
/// at their static or usual payload types, with no address yet (`c=0.0.0.0`, port 9).
pub(super) fn stand_in_offer(tin: &xtrunk_config::TrunkView) -> Vec<u8> {
    use std::fmt::Write;
    let v6 = tin.media_ip.is_ipv6();
    let (fam, any) = if v6 { ("IP6", "::") } else { ("IP4", "0.0.0.0") };
    let mut pts = String::new();
    let mut attrs = String::new();
    for c in &tin.codecs {
        let Some(pt) = sdp::default_pt(c.name()) else { continue };
        let _ = write!(pts, " {pt}");
        // RTP clock rates (RFC 3551; G.722 keeps 8000 by that RFC's erratum; opus RFC 7587).
        let rate = if *c == xtrunk_config::Codec::Opus { "48000/2" } else { "8000" };
        let _ = write!(attrs, "a=rtpmap:{pt} {}/{rate}\r\n", c.name());
        if c.name().eq_ignore_ascii_case("telephone-event") {
            let _ = write!(attrs, "a=fmtp:{pt} 0-16\r\n");
        }
    }
    format!("v=0\r\no=- 0 0 IN {fam} {any}\r\ns=-\r\nc=IN {fam} {any}\r\nt=0 0\r\nm=audio 9 RTP/AVP{pts}\r\n{attrs}a=sendrecv\r\n")
        .into_bytes()
}

impl Core {
    /// The caller's ACK to our 2xx-with-offer: its body is the answer.
    pub(crate) fn delayed_answer(&mut self, now: Instant, id: CallKey, ack: &Message) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.delayed_offer = false;
        let ours = call.legs[0].local_sdp.as_ref().and_then(|s| s.remote().ok());
        let callee = call.legs[1].remote_sdp.as_ref().and_then(|s| s.remote().ok());
        let answer = Sdp::parse(&ack.body).ok().and_then(|s| s.remote().ok().map(|r| (s, r)));
        let (Some(ours), Some(b), Some((ans, a))) = (ours, callee, answer) else {
            log::info!("call {}: delayed offer, but the caller's ACK carries no usable answer", id.0);
            return self.end_call(now, id, EndReason::NoAnswerSdp);
        };
        // The answer may only pick from what we offered.
        let a = sdp::negotiated(&a, &ours);
        let audio = |n: &str| !n.eq_ignore_ascii_case("telephone-event") && !n.eq_ignore_ascii_case("CN");
        if !a.payloads.iter().any(|(_, n)| audio(n)) {
            log::info!("call {}: the caller answered our offer with no codec of it", id.0);
            return self.end_call(now, id, EndReason::AnswerNotAcceptable);
        }
        let l0 = call.spec.legs[0];
        call.spec.legs[0] = remote_spec(&sdp::negotiated(&a, &b), l0.local, l0.latch, l0.signal_ip);
        call.spec.legs[0].crypto = l0.crypto;
        call.spec.leg_timeout_ms = super::leg_timeouts(call);
        call.legs[0].remote_sdp = Some(ans.clone());
        call.a_offer = ans;
        self.media_out.push_back(Command::Update(call.spec));
        self.journal_dirty.insert(id);
    }
}
