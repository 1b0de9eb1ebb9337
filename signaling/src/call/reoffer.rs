//! re-INVITE and UPDATE: an offer from one leg is rewritten onto the other (same relay ports,
//! `o=` version bumped), its answer rewritten back, and the datapath session updated. Offerless
//! requests (session refresh, offer solicitation) are answered locally with our last SDP.

use std::time::Instant;

use xtrunk_ring::msg::{Command, LegCrypto};

use super::{codecs_of, common_codecs, remote_spec, srtp_prefs, ReOffer, State};
use crate::b2bua::Core;
use crate::sdp::{self, Rewrite, Sdp};
use crate::sip::msg::{HName, Message, Method, NameAddr};
use crate::sip::status::{map_final, reason, response};
use crate::sip::transaction::{CallKey, Owner, Purpose, TxKey};

impl Core {
    /// A re-INVITE/UPDATE from leg `s`.
    pub(crate) fn on_reoffer(&mut self, now: Instant, id: CallKey, s: usize, k: TxKey, req: Message) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state != State::Confirmed && call.state != State::Answered {
            return self.reply(now, &k, &req, 491, reason(491));
        }
        if call.reoffer.is_some() || call.transfer.is_some() {
            return self.reply(now, &k, &req, 491, reason(491));
        }
        // Target refresh.
        if let Some(c) = req.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()) {
            call.legs[s].dlg.remote_target = c.uri;
        }
        // A session refresh from a leg whose peer is the refresher (RFC 4028 §10).
        if call.refresh_by[s] == super::session_timer::Refresher::Peer && call.session_expires > 0 {
            self.arm_session_timer(now, id, u8::try_from(s).unwrap_or(0));
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        if req.body.is_empty() {
            return self.answer_locally(now, id, s, k, &req);
        }
        let offer = match Sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                let (code, phrase) = e.status();
                let (tag, local) = (call.legs[s].dlg.local_tag.clone(), call.legs[s].dlg.dest.local);
                let mut r = response(&req, code, phrase, Some(&tag));
                self.push_warning(&mut r, e, local);
                return self.txs.respond(now, &k, &r);
            }
        };
        let o = 1 - s;
        let (ts, to) = (call.cfg.trunk(call.legs[s].trunk), call.cfg.trunk(call.legs[o].trunk));
        let allowed = common_codecs(to, ts);
        let (s_prefs, o_prefs) =
            (srtp_prefs(ts, super::leg_tls(&call.legs[s])), srtp_prefs(to, super::leg_tls(&call.legs[o])));
        let ip = to.media_ip;
        let t38 = sdp::t38_index(&offer);
        // SDES applies to audio; a T.38 offer carries none.
        let srtp_check = if t38.is_some() { Ok(()) } else { sdp::accept_offer(&offer, &s_prefs).map(|_| ()) };
        if let Err(e) = srtp_check {
            let (tag, local) = (call.legs[s].dlg.local_tag.clone(), call.legs[s].dlg.dest.local);
            let mut r = response(&req, 488, reason(488), Some(&tag));
            self.push_warning(&mut r, e, local);
            return self.txs.respond(now, &k, &r);
        }
        let srtp_off = s_prefs.policy == xtrunk_config::SrtpPolicy::Off;
        let rw = Rewrite { ip, port: call.legs[o].port, allowed: &allowed, srtp_off };
        // The other leg keeps SRTP if it has it (our key reused) or its trunk requires it.
        let o_tx = call.spec.legs[o].crypto.tx;
        let new = if let Some(i) = t38 {
            // T.38 fax: relayed as UDPTL, no SRTP (sdp::t38).
            sdp::rewrite_t38(&offer, i, &offer, i, ip, call.legs[o].port, &mut call.legs[o].origin)
        } else {
            sdp::rewrite_offer(&offer, &rw, &mut call.legs[o].origin).and_then(|mut n| {
                if o_prefs.offer_srtp(o_tx.is_some()) {
                    sdp::add_offer_crypto(&mut n, &o_prefs.suites, o_tx.as_ref())?;
                }
                Ok(n)
            })
        };
        let Ok(new) = new else {
            return self.reply(now, &k, &req, 488, reason(488));
        };
        call.legs[o].local_sdp = Some(new.clone());
        let method = req.method().cloned().unwrap_or(Method::Invite);
        call.reoffer = Some(ReOffer { req, from: s, stx: k, method: method.clone(), offer });
        self.send_in_dialog(now, id, o, method, Some(("application/sdp", new.to_bytes())), Purpose::ReOffer);
    }

    /// No offer: answer with our current SDP (re-INVITE) or without a body (UPDATE).
    fn answer_locally(&mut self, now: Instant, id: CallKey, s: usize, k: TxKey, req: &Message) {
        let Some(call) = self.calls.get(&id) else { return };
        let invite = req.method() == Some(&Method::Invite);
        let contact = self.contact_as(call.legs[s].dlg.dest, super::sips_leg(call, s));
        let mut r = response(req, 200, "OK", Some(&call.legs[s].dlg.local_tag));
        r.push(HName::Contact, contact);
        if let (true, Some(sdp)) = (invite, &call.legs[s].local_sdp) {
            r.push(HName::ContentType, "application/sdp");
            r.body = sdp.to_bytes();
        }
        if invite {
            if let Some(call) = self.calls.get_mut(&id) {
                call.legs[s].pending_2xx = Some(k.clone());
            }
        }
        self.txs.respond(now, &k, &r);
        if invite {
            self.txs.set_owner(&k, Owner::Call(id, Purpose::ReOffer2xx));
        }
    }

    /// The other leg's final to a relayed re-offer (408 with `msg` None on timeout).
    pub(crate) fn reoffer_final(&mut self, now: Instant, id: CallKey, code: u16, msg: Option<Message>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(ro) = call.reoffer.take() else { return };
        self.journal_dirty.insert(id);
        let o = 1 - ro.from;
        // ACK a 2xx to our re-INVITE.
        if (200..300).contains(&code) && ro.method == Method::Invite {
            let dlg = call.legs[o].dlg.clone();
            self.ack_on(&dlg);
        }
        let answer = msg.as_ref().filter(|_| (200..300).contains(&code)).and_then(|m| Sdp::parse(&m.body).ok());
        match answer {
            Some(ans) => self.relay_reanswer(now, id, &ro, ans),
            None => {
                let Some(call) = self.calls.get(&id) else { return };
                let c = if (200..300).contains(&code) { 488 } else { map_final(code) };
                let r = response(&ro.req, c, reason(c), Some(&call.legs[ro.from].dlg.local_tag));
                self.txs.respond(now, &ro.stx, &r);
                // A refused fax stays on audio: never through G.729 (`call::fax`).
                if ro.method == Method::Invite && sdp::t38_index(&ro.offer).is_some() {
                    self.fax_fallback(now, id);
                }
            }
        }
    }

    /// Rewrites the other leg's answer back to the re-offerer and updates the session.
    fn relay_reanswer(&mut self, now: Instant, id: CallKey, ro: &ReOffer, ans: Sdp) {
        let (s, o) = (ro.from, 1 - ro.from);
        let Some(call) = self.calls.get(&id) else { return };
        let ts = call.cfg.trunk(call.legs[s].trunk);
        let ip = ts.media_ip;
        let (codecs, s_prefs) = (codecs_of(ts), srtp_prefs(ts, super::leg_tls(&call.legs[s])));
        let contact = self.contact_as(call.legs[s].dlg.dest, super::sips_leg(call, s));
        let call = self.calls.get_mut(&id).expect("present");
        let tag = call.legs[s].dlg.local_tag.clone();
        let rw = Rewrite { ip, port: call.legs[s].port, allowed: &codecs, srtp_off: true };
        // SDES: the answering leg's keys from its answer to our re-offer, the re-offerer's
        // from its offer (our key kept unless it re-keyed or changed suite).
        let o_crypto = match &call.legs[o].local_sdp {
            Some(ours) => sdp::answer_crypto(ours, &ans),
            None => Ok(LegCrypto::default()),
        };
        if let (Some(oi), Some(ai)) = (sdp::t38_index(&ro.offer), sdp::t38_index(&ans)) {
            return self.relay_t38_answer(now, id, ro, &ans, (oi, ai), contact);
        }
        let s_srtp = sdp::answer_offer_crypto(&ro.offer, &s_prefs, &call.spec.legs[s].crypto);
        let out = sdp::rewrite_answer(&ans, &ro.offer, &rw, &mut call.legs[s].origin);
        let (Ok(mut out), Ok(o_crypto), Ok(s_srtp)) = (out, o_crypto, s_srtp) else {
            let r = response(&ro.req, 488, reason(488), Some(&tag));
            return self.txs.respond(now, &ro.stx, &r);
        };
        let s_crypto = match s_srtp {
            Some((tag, c)) => {
                if let Some(tx) = &c.tx {
                    sdp::add_answer_crypto(&mut out, tag, tx);
                }
                c
            }
            None => LegCrypto::default(),
        };
        call.legs[s].local_sdp = Some(out.clone());
        call.legs[s].remote_sdp = Some(ro.offer.clone());
        call.legs[o].remote_sdp = Some(ans.clone());
        if let (Ok(rs), Ok(ro_)) = (ro.offer.remote(), ans.remote()) {
            let (ls, lo) = (call.spec.legs[s], call.spec.legs[o]);
            call.spec.legs[s] = remote_spec(&sdp::negotiated(&rs, &ro_), ls.local, ls.latch, ls.signal_ip);
            call.spec.legs[o] = remote_spec(&ro_, lo.local, lo.latch, lo.signal_ip);
            (call.spec.legs[s].crypto, call.spec.legs[o].crypto) = (s_crypto, o_crypto);
            call.spec.leg_timeout_ms = super::leg_timeouts(call);
            self.media_out.push_back(Command::Update(call.spec));
        }
        let mut r = response(&ro.req, 200, "OK", Some(&tag));
        r.push(HName::Contact, contact);
        r.push(HName::ContentType, "application/sdp");
        r.body = out.to_bytes();
        let invite = ro.method == Method::Invite;
        if invite {
            call.legs[s].pending_2xx = Some(ro.stx.clone());
        }
        self.txs.respond(now, &ro.stx, &r);
        if invite {
            self.txs.set_owner(&ro.stx, Owner::Call(id, Purpose::ReOffer2xx));
        }
    }

    /// The other leg accepted a T.38 re-offer: our answer to the re-offerer on the relay, and
    /// both legs' specs to UDPTL (`Codec::T38`).
    fn relay_t38_answer(
        &mut self,
        now: Instant,
        id: CallKey,
        ro: &ReOffer,
        ans: &Sdp,
        (oi, ai): (usize, usize),
        contact: String,
    ) {
        let (s, o) = (ro.from, 1 - ro.from);
        let Some(call) = self.calls.get_mut(&id) else { return };
        let ip = call.cfg.trunk(call.legs[s].trunk).media_ip;
        let tag = call.legs[s].dlg.local_tag.clone();
        let out = sdp::rewrite_t38(ans, ai, &ro.offer, oi, ip, call.legs[s].port, &mut call.legs[s].origin);
        let (ls, lo) = (call.spec.legs[s], call.spec.legs[o]);
        let legs = (
            sdp::t38_leg(&ro.offer, oi, ls.local, ls.latch, ls.signal_ip),
            sdp::t38_leg(ans, ai, lo.local, lo.latch, lo.signal_ip),
        );
        let (Ok(out), (Some(new_s), Some(new_o))) = (out, legs) else {
            let r = response(&ro.req, 488, reason(488), Some(&tag));
            return self.txs.respond(now, &ro.stx, &r);
        };
        (call.spec.legs[s], call.spec.legs[o]) = (new_s, new_o);
        call.spec.leg_timeout_ms = super::leg_timeouts(call);
        call.legs[s].local_sdp = Some(out.clone());
        call.legs[s].remote_sdp = Some(ro.offer.clone());
        call.legs[o].remote_sdp = Some(ans.clone());
        self.media_out.push_back(Command::Update(call.spec));
        let mut r = response(&ro.req, 200, "OK", Some(&tag));
        r.push(HName::Contact, contact);
        r.push(HName::ContentType, "application/sdp");
        r.body = out.to_bytes();
        let invite = ro.method == Method::Invite;
        if invite {
            call.legs[s].pending_2xx = Some(ro.stx.clone());
        }
        self.txs.respond(now, &ro.stx, &r);
        if invite {
            self.txs.set_owner(&ro.stx, Owner::Call(id, Purpose::ReOffer2xx));
        }
    }
}
