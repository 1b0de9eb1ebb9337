//! The callee's responses to our INVITE: provisionals relayed with their early answer, the 2xx
//! (dialog established, ACK, answer relayed to the caller), non-2xx finals (failover or the
//! caller-facing final).

use std::time::Instant;

use xtrunk_ring::msg::{Command, LegCrypto};

use super::{codecs_of, remote_spec, srtp_prefs, State};
use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::sdp::{self, Rewrite, Sdp};
use crate::sip::msg::{HName, Message};
use crate::sip::status::{map_final, reason, response, ALLOW};
use crate::sip::transaction::{CallKey, Owner, Purpose, TxKey};

impl Core {
    /// Any response to the callee-side INVITE.
    pub(crate) fn b_response(&mut self, now: Instant, id: CallKey, key: TxKey, msg: Message) {
        let code = msg.code().unwrap_or(500);
        if self.calls.get(&id).and_then(|c| c.b_ctx.as_ref()) != Some(&key) {
            if (200..300).contains(&code) {
                self.orphan_2xx(now, &key, &msg);
            }
            return;
        }
        if code < 200 {
            self.b_provisional(now, id, msg);
        } else if code < 300 {
            self.b_answer(now, id, msg);
        } else {
            self.b_final(now, id, key, Some(msg));
        }
    }

    fn b_provisional(&mut self, now: Instant, id: CallKey, msg: Message) {
        let code = msg.code().unwrap_or(100);
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.b_provisional = true;
        if call.state == State::Cancelling {
            return self.send_cancel_if_possible(now, id);
        }
        if code == 100 {
            return;
        }
        let mut r = response(&call.a_invite, code, reason(code), Some(&call.legs[0].dlg.local_tag));
        let a_dest = call.legs[0].dlg.dest;
        if !msg.body.is_empty() && call.delayed_offer {
            // The caller sent no offer: nothing to answer it with in a 1xx; the 2xx offers.
            if let Ok(ans) = Sdp::parse(&msg.body) {
                call.early_answer = Some(ans);
            }
        }
        let delayed = call.delayed_offer;
        let sips = super::sips_leg(call, 0);
        r.push(HName::Contact, self.contact_as(a_dest, sips));
        if !delayed && !msg.body.is_empty() {
            if let Ok(ans) = Sdp::parse(&msg.body) {
                if let Some(body) = self.answer_for_a(id, &ans) {
                    r.push(HName::ContentType, "application/sdp");
                    r.body = body;
                    self.update_media_from_answer(id, &ans);
                }
            }
        }
        let Some(call) = self.calls.get(&id) else { return };
        let k = call.a_stx.clone();
        self.txs.respond(now, &k, &r);
    }

    /// Rewrites the callee's answer for the caller; remembers it. None when unusable.
    fn answer_for_a(&mut self, id: CallKey, ans: &Sdp) -> Option<Vec<u8>> {
        let call = self.calls.get_mut(&id)?;
        let tin = call.cfg.trunk(call.legs[0].trunk);
        let ip = tin.media_ip;
        let (codecs, prefs) = (codecs_of(tin), srtp_prefs(tin, super::leg_tls(&call.legs[0])));
        let rw = Rewrite { ip, port: call.legs[0].port, allowed: &codecs, srtp_off: true };
        // SDES: the callee leg's keys from its answer to our offer (none usable = unusable answer).
        let b_crypto = match &call.legs[1].local_sdp {
            Some(ours) => sdp::answer_crypto(ours, ans).ok()?,
            None => LegCrypto::default(),
        };
        // A callee that answers the other G.711 law is bridged (the relay converts) when its
        // trunk allows that law.
        let tout = call.cfg.trunk(call.legs[1].trunk);
        let bridge = tout.g711_transcode;
        let mut out = sdp::rewrite_answer_bridging(ans, &call.a_offer, &rw, &mut call.legs[0].origin, bridge).ok()?;
        // An in-band callee: the caller keeps its telephone-event (the relay interworks).
        if tout.dtmf == xtrunk_config::Dtmf::Inband && codecs.contains(&xtrunk_config::Codec::TelephoneEvent) {
            if let Ok(r) = call.a_offer.remote() {
                if let Some((pt, _)) = r.payloads.iter().find(|(_, n)| n.eq_ignore_ascii_case("telephone-event")) {
                    let fmtp = call.a_offer.media.get(r.index).and_then(|m| sdp::fmtp_of(m, *pt));
                    sdp::add_telephone_event(&mut out, Some(*pt), fmtp.as_deref());
                }
            }
        }
        // The caller's leg: echo the tag/suite of the line we accepted, with our key.
        if let Some(ours) = call.spec.legs[0].crypto.tx {
            let line = sdp::accept_offer(&call.a_offer, &prefs).ok().flatten()?;
            sdp::add_answer_crypto(&mut out, line.tag, &ours);
        }
        call.spec.legs[1].crypto = b_crypto;
        call.early_answer = Some(ans.clone());
        call.legs[1].remote_sdp = Some(ans.clone());
        let b = out.to_bytes();
        call.legs[0].local_sdp = Some(out);
        Some(b)
    }

    fn update_media_from_answer(&mut self, id: CallKey, ans: &Sdp) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let (Ok(a), Ok(mut b)) = (call.a_offer.remote(), ans.remote()) else { return };
        let [l0, l1] = call.spec.legs;
        // The callee's signalling IP is the target that answered (failover may have moved it).
        let b_ip = Some(call.legs[1].dlg.dest.remote.ip());
        let mut a_neg = sdp::negotiated(&a, &b);
        let (tin, tout) = (call.cfg.trunk(call.legs[0].trunk), call.cfg.trunk(call.legs[1].trunk));
        super::dtmf_payloads(&mut a_neg, &mut b, &a, tin, tout);
        call.spec.legs[0] = remote_spec(&a_neg, l0.local, l0.latch, l0.signal_ip);
        call.spec.legs[1] = remote_spec(&b, l1.local, l1.latch, b_ip);
        (call.spec.legs[0].crypto, call.spec.legs[1].crypto) = (l0.crypto, l1.crypto);
        call.spec.leg_timeout_ms = super::leg_timeouts(call);
        self.media_out.push_back(Command::Update(call.spec));
    }

    fn b_answer(&mut self, now: Instant, id: CallKey, msg: Message) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state != State::Proceeding {
            if call.state == State::Cancelling {
                // Answered after we gave up: ACK and BYE it, then end.
                let k = call.b_ctx.clone().unwrap_or_default();
                self.orphan_2xx(now, &k, &msg);
                return self.finish(now, id);
            }
            // A retransmitted 2xx: ACK again.
            if call.legs[1].dlg.remote_tag == msg.to_tag().unwrap_or_default() {
                if let Some(a) = call.b_ack.clone() {
                    self.out.push_back(a);
                }
            }
            return;
        }
        // Establish the callee dialog and ACK.
        call.attempt_ended(200);
        call.legs[1].dlg.confirm(&msg);
        let mut dlg = call.legs[1].dlg.clone();
        dlg.dest = self.dialog_dest(dlg.dest, Some(&dlg.remote_target), &dlg.route_set);
        let call = self.calls.get_mut(&id).expect("present");
        call.legs[1].dlg.dest = dlg.dest;
        let ack = self.ack_on(&dlg);
        let call = self.calls.get_mut(&id).expect("present");
        call.b_ack = Some(ack);
        let ans = if msg.body.is_empty() { call.early_answer.clone() } else { Sdp::parse(&msg.body).ok() };
        let Some(ans) = ans else {
            call.cdr.end_reason = EndReason::NoAnswerSdp;
            self.send_in_dialog(now, id, 1, crate::sip::msg::Method::Bye, None, Purpose::Bye);
            return self.cancel_to_a_and_finish(now, id, 502);
        };
        let Some(body) = self.answer_for_a(id, &ans) else {
            if let Some(c) = self.calls.get_mut(&id) {
                c.cdr.end_reason = EndReason::AnswerNotAcceptable;
            }
            self.send_in_dialog(now, id, 1, crate::sip::msg::Method::Bye, None, Purpose::Bye);
            return self.cancel_to_a_and_finish(now, id, 488);
        };
        self.update_media_from_answer(id, &ans);
        self.answer_caller(now, id, body);
    }

    /// Our 2xx to the caller, carrying the rewritten answer.
    fn answer_caller(&mut self, now: Instant, id: CallKey, body: Vec<u8>) {
        let unix = self.unix_ms(now);
        let Some(call) = self.calls.get(&id) else { return };
        let contact = self.contact_as(call.legs[0].dlg.dest, super::sips_leg(call, 0));
        let call = self.calls.get_mut(&id).expect("present");
        let mut r = response(&call.a_invite, 200, "OK", Some(&call.legs[0].dlg.local_tag));
        r.push(HName::Contact, contact);
        r.push(HName::Allow, ALLOW);
        r.push(HName::ContentType, "application/sdp");
        if call.session_expires > 0 {
            let who = if call.refresh_by[0] == super::session_timer::Refresher::Peer { "uac" } else { "uas" };
            r.push(HName::Other("Session-Expires".into()), format!("{};refresher={who}", call.session_expires));
            if super::session_timer::supports_timer(&call.a_invite) {
                r.push(HName::Require, "timer");
            }
        }
        r.body = body;
        call.state = State::Answered;
        call.cdr.answer_ms = unix;
        call.cdr.disposition = 200;
        log::debug!("call {}: answered (call-id {})", id.0, call.cdr.call_id);
        let k = call.a_stx.clone();
        call.legs[0].pending_2xx = Some(k.clone());
        self.txs.respond(now, &k, &r);
        self.txs.set_owner(&k, Owner::Call(id, Purpose::Answer2xx));
        *self.metrics.finals_to_caller.entry(200).or_insert(0) += 1;
        self.metrics.calls_answered += 1;
        self.journal_dirty.insert(id);
        self.start_session_timers(now, id);
    }

    /// A non-2xx final (or timeout when `msg` is None) from the callee.
    pub(crate) fn b_final(&mut self, now: Instant, id: CallKey, key: TxKey, msg: Option<Message>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.b_ctx.as_ref() != Some(&key) {
            return;
        }
        let code = msg.as_ref().and_then(Message::code).unwrap_or(408);
        call.attempt_ended(if call.state == State::Cancelling { 487 } else { code });
        if call.state == State::Cancelling {
            return self.finish(now, id);
        }
        if call.state != State::Proceeding {
            return;
        }
        if msg.is_none() {
            self.back_off_current(now, id);
        }
        if let Some(m) = msg.as_ref().filter(|_| code == 401 || code == 407) {
            if self.answer_challenge(now, id, m) {
                return;
            }
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        let more = call.targets_tried < call.cfg.trunk(call.legs[1].trunk).targets.len();
        if more && (code == 503 || code == 408) {
            log::info!("call {}: target {} answered {code}, failing over", id.0, call.targets_tried);
            return self.next_target(now, id);
        }
        if self.entry_fails_over(id, msg.as_ref().map(|_| code)) {
            log::info!("call {}: trunk answered {code}, trying the route's next entry", id.0);
            if let Some(k) = self.calls.get_mut(&id).and_then(|c| c.b_ctx.take()) {
                self.txs.forget_client(&k);
            }
            return self.next_entry(now, id);
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.cdr.q850 = msg.as_ref().map_or(0, super::teardown::q850_of);
        call.cdr.end_reason = match code {
            408 if msg.is_none() => EndReason::Timeout,
            _ => EndReason::CalleeRejected,
        };
        self.cancel_to_a_and_finish(now, id, map_final(code));
    }

    /// Gives up on the current target (no CANCEL: it sent nothing, or a final) and tries the
    /// trunk's next one; `408` to the caller when there is none.
    pub(crate) fn next_target(&mut self, now: Instant, id: CallKey) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(k) = call.b_ctx.take() {
            self.txs.forget_client(&k);
        }
        call.attempt_ended(408);
        // Forget the early dialog (if any).
        call.legs[1].dlg.remote_tag.clear();
        if call.targets_tried < call.cfg.trunk(call.legs[1].trunk).targets.len() {
            return self.send_b_invite(now, id);
        }
        if call.has_next_entry() {
            return self.next_entry(now, id);
        }
        call.cdr.end_reason = EndReason::Timeout;
        self.cancel_to_a_and_finish(now, id, 408);
    }
}
