//! Fax fallback (#18): when a leg refuses a T.38 re-offer, the fax goes on as audio, and audio
//! through G.729 would ruin it. So if the call transcodes (one leg on G.729, the other on
//! G.711), the edge re-offers the G.729 leg the other leg's G.711 only (and telephone-event when
//! both trunks allow it): a re-INVITE of our own, `Purpose::FaxFallback`. Once it answers, the
//! session's legs agree on G.711 and the datapath drops the codec (no transcoding, no VAD).
//! A refusal of that re-offer leaves the call as it was.

use std::time::Instant;

use xtrunk_config::Codec;
use xtrunk_ring::msg::{Codec as Wire, Command, LegSpec};

use super::{common_codecs, remote_spec, srtp_prefs};
use crate::b2bua::Core;
use crate::sdp::{self, Rewrite, Sdp};
use crate::sip::msg::{Message, Method};
use crate::sip::transaction::{CallKey, Purpose};

/// Whether a leg negotiated G.729 and no G.711.
fn lossy_only(l: &LegSpec) -> bool {
    let m = &l.pt_map;
    m.by_codec(Wire::G729).is_some() && m.by_codec(Wire::Pcma).is_none() && m.by_codec(Wire::Pcmu).is_none()
}

/// The G.711 laws a leg negotiated, as trunk codecs, in its map's order.
fn g711_of(l: &LegSpec) -> Vec<Codec> {
    l.pt_map
        .iter()
        .filter_map(|e| match e.codec {
            Wire::Pcma => Some(Codec::Pcma),
            Wire::Pcmu => Some(Codec::Pcmu),
            _ => None,
        })
        .collect()
}

impl Core {
    /// A T.38 re-offer was refused: re-offer G.711 to the call's G.729 leg, if it has one.
    pub(crate) fn fax_fallback(&mut self, now: Instant, id: CallKey) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(g) = (0..2).find(|&i| lossy_only(&call.spec.legs[i]) && !g711_of(&call.spec.legs[1 - i]).is_empty())
        else {
            return;
        };
        let h = 1 - g;
        let Some(src) = call.legs[h].remote_sdp.clone() else { return };
        let (tg, th) = (call.cfg.trunk(call.legs[g].trunk), call.cfg.trunk(call.legs[h].trunk));
        let common = common_codecs(tg, th);
        let mut allowed = g711_of(&call.spec.legs[h]);
        if common.contains(&Codec::TelephoneEvent) && call.spec.legs[h].pt_map.by_codec(Wire::TelephoneEvent).is_some()
        {
            allowed.push(Codec::TelephoneEvent);
        }
        let (g_tls, h_tls) = (super::leg_tls(&call.legs[g]), super::leg_tls(&call.legs[h]));
        let (g_prefs, h_off) = (srtp_prefs(tg, g_tls), srtp_prefs(th, h_tls).policy == xtrunk_config::SrtpPolicy::Off);
        let rw = Rewrite { ip: tg.media_ip, port: call.legs[g].port, allowed: &allowed, srtp_off: h_off };
        let g_tx = call.spec.legs[g].crypto.tx;
        let offer = sdp::rewrite_offer(&src, &rw, &mut call.legs[g].origin).and_then(|mut o| {
            if g_prefs.offer_srtp(g_tx.is_some()) {
                sdp::add_offer_crypto(&mut o, &g_prefs.suites, g_tx.as_ref())?;
            }
            Ok(o)
        });
        let Ok(offer) = offer else {
            log::info!("call {}: T.38 refused; no G.711 offer for leg {g}, the call keeps transcoding", id.0);
            return;
        };
        log::info!("call {}: T.38 refused; re-offering leg {g} G.711 only (fax over audio, no transcoding)", id.0);
        call.legs[g].local_sdp = Some(offer.clone());
        let body = Some(("application/sdp", offer.to_bytes()));
        let leg = u8::try_from(g).unwrap_or(1);
        self.send_in_dialog(now, id, g, Method::Invite, body, Purpose::FaxFallback(leg));
    }

    /// The G.729 leg `g`'s final to our G.711 re-offer (`msg` None: timed out).
    pub(crate) fn fax_fallback_final(&mut self, id: CallKey, g: u8, code: u16, msg: Option<Message>) {
        let g = usize::from(g.min(1));
        let Some(call) = self.calls.get_mut(&id) else { return };
        if (200..300).contains(&code) {
            let dlg = call.legs[g].dlg.clone();
            self.ack_on(&dlg);
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        let ans = msg.filter(|_| (200..300).contains(&code)).and_then(|m| Sdp::parse(&m.body).ok());
        let remote = ans.as_ref().and_then(|a| a.remote().ok().map(|r| (a, r)));
        let crypto = match (&remote, &call.legs[g].local_sdp) {
            (Some((a, _)), Some(ours)) => sdp::answer_crypto(ours, a).ok(),
            _ => None,
        };
        let (Some((ans, r)), Some(crypto)) = (remote, crypto) else {
            log::info!("call {}: leg {g} answered {code} to the G.711 re-offer; the call keeps transcoding", id.0);
            return;
        };
        let l = call.spec.legs[g];
        let mut spec = remote_spec(&r, l.local, l.latch, l.signal_ip);
        spec.crypto = crypto;
        if lossy_only(&spec) || g711_of(&spec).is_empty() {
            log::info!("call {}: leg {g} did not take G.711 in its answer; the call keeps transcoding", id.0);
            return;
        }
        call.spec.legs[g] = spec;
        call.legs[g].remote_sdp = Some(ans.clone());
        call.spec.leg_timeout_ms = super::leg_timeouts(call);
        self.journal_dirty.insert(id);
        self.media_out.push_back(Command::Update(call.spec));
    }
}
