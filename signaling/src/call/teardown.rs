//! Ending calls: refused INVITEs, CANCEL, BYE, the callee's late 2xx, and the one place a call
//! ends ([`Core::finish`]: Delete the session, drop the dialogs; ports return on `Deleted`).

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xtrunk_config::TrunkId;
use xtrunk_ring::msg::{Command, SessionId, StreamStats};

use super::{dkey, uri_addr, user_of, CallTimer, State};
use crate::b2bua::Core;
use crate::cdr::{Cdr, EndReason, LegStats};
use crate::journal::JournalOp;
use crate::policy::Reject;
use crate::sdp::SdpError;
use crate::sip::msg::{HName, Message, Method, NameAddr};
use crate::sip::status::{reason, response};
use crate::sip::transaction::{server_key, CallKey, Owner, Purpose, TxKey};
use crate::transport::{Dest, Transmit, Transport};

impl Core {
    pub(crate) fn no_ports(&mut self, now: Instant, k: &TxKey, req: &Message, tin: TrunkId) {
        self.metrics.bad("No Media Ports", String::new);
        self.reject_invite(now, k, req, 503, "No Media Ports", Some(tin), EndReason::Rejected);
    }

    /// Refuses an INVITE whose offer we cannot take: the status of `e` (400/488/500), with a
    /// `Warning: 399` for the SRTP reasons. Logs no SDP (it may carry keys).
    pub(crate) fn reject_offer(
        &mut self,
        now: Instant,
        k: &TxKey,
        req: &Message,
        e: SdpError,
        local: SocketAddr,
        tin: TrunkId,
    ) {
        let (code, phrase) = e.status();
        if e.warning().is_none() {
            return self.reject_invite(now, k, req, code, phrase, Some(tin), EndReason::Rejected);
        }
        let tag = self.token();
        let mut r = response(req, code, phrase, Some(&tag));
        self.push_warning(&mut r, e, local);
        self.txs.respond(now, k, &r);
        self.rejected_cdr(now, req, code, Some(tin), EndReason::Rejected);
    }

    /// Adds `Warning: 399 <our host> "<reason>"` (RFC 3261 §20.43) when `e` has one.
    pub(crate) fn push_warning(&self, r: &mut Message, e: SdpError, local: SocketAddr) {
        if let Some(w) = e.warning() {
            r.push(HName::Other("Warning".into()), format!("399 {} \"{w}\"", self.host_of(local)));
        }
    }

    /// Answers a new INVITE with a final status and writes its CDR.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reject_invite(
        &mut self,
        now: Instant,
        k: &TxKey,
        req: &Message,
        code: u16,
        phrase: &str,
        tin: Option<TrunkId>,
        why: EndReason,
    ) {
        self.reply(now, k, req, code, phrase);
        self.rejected_cdr(now, req, code, tin, why);
    }

    /// Answers an INVITE policy refused: its status, a `Warning: 399` naming the cause and
    /// `Retry-After` for CPS; counted per cause and trunk, the cause in the CDR.
    pub(crate) fn policy_reject(&mut self, now: Instant, k: &TxKey, req: &Message, r: Reject, local: SocketAddr) {
        let (code, cause) = (r.why.code(), r.why.cause());
        if cause.is_empty() {
            return self.reject_invite(now, k, req, code, r.why.phrase(), r.trunk, r.why.end_reason());
        }
        let tag = self.token();
        let mut m = response(req, code, r.why.phrase(), Some(&tag));
        m.push(HName::Other("Warning".into()), format!("399 {} \"{cause}\"", self.host_of(local)));
        if let Some(s) = r.why.retry_after() {
            m.push(HName::Other("Retry-After".into()), s.to_string());
        }
        self.txs.respond(now, k, &m);
        let trunk = r.trunk.map(|t| self.cfg.trunk(t).name.clone()).unwrap_or_default();
        self.metrics.rejected(cause, &trunk);
        self.rejected_cdr(now, req, code, r.trunk, r.why.end_reason());
        if let Some(c) = self.cdr_out.back_mut() {
            c.cause = cause.to_string();
        }
    }

    /// Counts a refused INVITE and writes its CDR.
    fn rejected_cdr(&mut self, now: Instant, req: &Message, code: u16, tin: Option<TrunkId>, why: EndReason) {
        *self.metrics.finals_to_caller.entry(code).or_insert(0) += 1;
        let trunk = tin.map(|t| self.cfg.trunk(t).name.clone()).unwrap_or_default();
        *self.metrics.attempts.entry(trunk).or_insert(0) += 1;
        let t = self.unix_ms(now);
        self.cdr_out.push_back(Cdr {
            call_id: req.call_id().unwrap_or("").to_string(),
            trunk_in: tin.map(|t| self.cfg.trunk(t).name.clone()).unwrap_or_default(),
            from: super::setup::from_uri_user(req).unwrap_or_default(),
            to: user_of(req.uri().unwrap_or("")),
            start_ms: t,
            end_ms: t,
            disposition: code,
            end_reason: why,
            ..Cdr::default()
        });
    }

    /// CANCEL of a caller's INVITE (RFC 3261 §9.2).
    pub(crate) fn on_cancel(&mut self, now: Instant, k: TxKey, req: Message, src: Dest) {
        let ik = server_key(&req, &Method::Invite, src.remote.ip());
        let id = ik.as_ref().and_then(|ik| self.invite_stx.get(ik).copied());
        // Only the caller's side may cancel its INVITE (the branch is no secret on the wire).
        let id = id.filter(|id| self.is_peer(*id, 0, src));
        let Some(id) = id.filter(|_| ik.as_ref().is_some_and(|ik| self.txs.server_alive(ik))) else {
            return self.cancel_queued(now, k, req, src, ik);
        };
        self.reply(now, &k, &req, 200, "OK");
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state != State::Proceeding {
            return;
        }
        call.cdr.end_reason = EndReason::Cancel;
        call.cdr.q850 = q850_of(&req);
        self.cancel_b(now, id, 487);
    }

    /// CANCEL of an INVITE waiting in a CPS queue: `200` to it, `487` to the INVITE, its hold
    /// released; `481` when no such INVITE waits.
    fn cancel_queued(&mut self, now: Instant, k: TxKey, req: Message, src: Dest, ik: Option<TxKey>) {
        let i = ik.and_then(|ik| self.queued.iter().position(|q| q.k == ik && q.src.remote == src.remote));
        let Some(q) = i.and_then(|i| self.queued.remove(i)) else {
            return self.reply(now, &k, &req, 481, reason(481));
        };
        self.reply(now, &k, &req, 200, "OK");
        let mut hold = q.plan.hold;
        self.admission.release(&mut hold, None);
        self.reject_invite(now, &q.k, &q.req, 487, reason(487), Some(q.plan.inbound), EndReason::Cancel);
    }

    /// Gives up on the outbound INVITE: `code` to the caller now, CANCEL to the callee (once it
    /// has sent a provisional response), the call ends when its final response arrives.
    pub(crate) fn cancel_b(&mut self, now: Instant, id: CallKey, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.state = State::Cancelling;
        call.cdr.disposition = code;
        let r = response(&call.a_invite, code, reason(code), Some(&call.legs[0].dlg.local_tag));
        let a_stx = call.a_stx.clone();
        self.txs.respond(now, &a_stx, &r);
        *self.metrics.finals_to_caller.entry(code).or_insert(0) += 1;
        if call.b_waits_media {
            // No INVITE went out: nothing to cancel, nothing to wait for.
            return self.finish(now, id);
        }
        self.heap.push(Reverse((now + self.timers.t1 * 64 + Duration::from_secs(1), id, CallTimer::Guard)));
        self.send_cancel_if_possible(now, id);
    }

    pub(crate) fn send_cancel_if_possible(&mut self, now: Instant, id: CallKey) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.cancel_sent || !call.b_provisional {
            return;
        }
        let Some(k) = call.b_ctx.clone() else { return };
        let Some(inv) = self.txs.client_request(&k).cloned() else { return };
        call.cancel_sent = true;
        let dest = call.legs[1].dlg.dest;
        let mut c = Message::request(Method::Cancel, inv.uri().unwrap_or(""));
        for n in [HName::Via, HName::MaxForwards, HName::From, HName::To, HName::CallId] {
            if let Some(v) = inv.header(&n) {
                c.push(n, v);
            }
        }
        c.push(HName::CSeq, format!("{} CANCEL", inv.cseq().map_or(1, |c| c.seq)));
        self.txs.send_request(now, c, dest, Owner::Call(id, Purpose::Cancel));
    }

    /// Sends `code` to the caller and ends the call.
    pub(crate) fn cancel_to_a_and_finish(&mut self, now: Instant, id: CallKey, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let r = response(&call.a_invite, code, reason(code), Some(&call.legs[0].dlg.local_tag));
        call.cdr.disposition = code;
        let k = call.a_stx.clone();
        self.txs.respond(now, &k, &r);
        *self.metrics.finals_to_caller.entry(code).or_insert(0) += 1;
        self.finish(now, id);
    }

    /// A BYE from leg `s`: 200, BYE to the other leg, the call ends (an early dialog's BYE acts
    /// as a CANCEL).
    pub(crate) fn on_bye(&mut self, now: Instant, id: CallKey, s: usize, k: TxKey, req: Message) {
        self.reply(now, &k, &req, 200, "OK");
        let why = if s == 0 { EndReason::CallerBye } else { EndReason::CalleeBye };
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.cdr.end_reason = why;
        call.cdr.q850 = q850_of(&req);
        if call.state == State::Proceeding {
            return self.cancel_b(now, id, 487);
        }
        self.send_in_dialog(now, id, 1 - s, Method::Bye, None, Purpose::Bye);
        self.finish(now, id);
    }

    /// Ends an established call from our side: BYE on both legs, then [`Core::finish`].
    pub(crate) fn end_call(&mut self, now: Instant, id: CallKey, why: EndReason) {
        if let Some(c) = self.calls.get_mut(&id) {
            c.cdr.end_reason = why;
        }
        self.send_in_dialog(now, id, 0, Method::Bye, None, Purpose::Bye);
        self.send_in_dialog(now, id, 1, Method::Bye, None, Purpose::Bye);
        self.finish(now, id);
    }

    /// The caller never ACKed our 2xx (64·T1).
    pub(crate) fn ack_timeout(&mut self, now: Instant, id: CallKey) {
        if self.calls.contains_key(&id) {
            self.end_call(now, id, EndReason::AckTimeout);
        }
    }

    /// Ends a call: Delete the session, drop the dialogs. Ports return on `Event::Deleted`.
    pub(crate) fn finish(&mut self, now: Instant, id: CallKey) {
        let Some(mut call) = self.calls.remove(&id) else { return };
        self.unpend(call.pending_src.take());
        if call.b_waits_media {
            self.media_wait -= 1;
        }
        for l in &call.legs {
            self.dialogs.remove(&dkey(&l.dlg.call_id, &l.dlg.local_tag));
        }
        if let Some(t) = &call.transfer {
            self.dialogs.remove(&dkey(&t.leg.dlg.call_id, &t.leg.dlg.local_tag));
            if let Some(k) = &t.invite {
                self.txs.forget_client(k);
            }
        }
        for (c, t) in &call.released {
            self.dialogs.remove(&dkey(c, t));
        }
        self.invite_stx.remove(&call.a_stx);
        let journaled = call.cdr_journaled();
        complete_cdr(&mut call);
        let mut cdr = call.cdr;
        cdr.end_ms = self.unix_ms(now);
        if cdr.disposition == 0 {
            cdr.disposition = 500;
        }
        let talk = if cdr.answer_ms > 0 { cdr.end_ms.saturating_sub(cdr.answer_ms) } else { 0 };
        self.admission.release(&mut call.hold, (cdr.answer_ms > 0).then_some(talk / 1000));
        log::debug!(
            "call {}: ended {} ({}), {talk} ms answered (call-id {}, b-leg {})",
            id.0,
            cdr.end_reason,
            cdr.disposition,
            cdr.call_id,
            cdr.b_call_id
        );
        if call.created && !self.media_lost {
            self.media_out.push_back(Command::Delete(call.session));
            self.pending_delete.insert(call.session, ([call.legs[0].port, call.legs[1].port], Some(cdr)));
            // The journal keeps the call until its CDR is out (on `Deleted`): a sidecar killed in
            // between replays it (`sidecar_restart`) instead of losing it.
            if journaled {
                self.remove_on_delete.insert(call.session, id.0);
            }
        } else {
            self.ports.release(call.legs[0].port);
            self.ports.release(call.legs[1].port);
            self.cdr_out.push_back(cdr);
            if journaled {
                self.journal_out.push_back(JournalOp::Remove(id.0));
            }
        }
        self.metrics.calls_ended += 1;
    }

    /// The datapath let a session go: its ports return to the pool, its CDR is written with the
    /// final per-leg stats.
    pub(crate) fn deleted(&mut self, id: SessionId, stats: Option<[StreamStats; 2]>) {
        if let Some((ports, cdr)) = self.pending_delete.remove(&id) {
            for p in ports {
                self.ports.release(p);
            }
            if let Some(mut cdr) = cdr {
                if let Some(s) = stats {
                    cdr.legs = [LegStats::from(s[0]), LegStats::from(s[1])];
                }
                self.cdr_out.push_back(cdr);
            }
        }
        if let Some(j) = self.remove_on_delete.remove(&id) {
            self.journal_out.push_back(JournalOp::Remove(j));
        }
    }

    /// A 2xx for an INVITE nobody wants any more (cancel race, failover race): ACK and BYE it.
    pub(crate) fn orphan_2xx(&mut self, now: Instant, key: &TxKey, resp: &Message) {
        let Some(inv) = self.txs.client_request(key).cloned() else { return };
        let Some(to) = resp.header(&HName::To) else { return };
        let contact = resp.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri);
        let target = contact.unwrap_or_else(|| inv.uri().unwrap_or("").to_string());
        let seq = inv.cseq().map_or(1, |c| c.seq);
        let dest_t = inv.top_via().and_then(|v| Transport::from_token(&v.transport)).unwrap_or(Transport::Udp);
        let local = self.listener(dest_t);
        let remote = uri_addr(&target).map(|(a, _)| a).or_else(|| uri_addr(inv.uri().unwrap_or("")).map(|(a, _)| a));
        let Some(remote) = remote else { return };
        let dest = Dest { transport: dest_t, local, remote };
        for (m, s) in [(Method::Ack, seq), (Method::Bye, seq + 1)] {
            let mut r = Message::request(m.clone(), target.clone());
            let via = self.via(dest);
            r.push(HName::Via, via)
                .push(HName::MaxForwards, "70")
                .push(HName::From, inv.header(&HName::From).unwrap_or(""))
                .push(HName::To, to)
                .push(HName::CallId, inv.call_id().unwrap_or(""))
                .push(HName::CSeq, format!("{s} {m}"));
            if m == Method::Ack {
                self.out.push_back(Transmit { dest, data: r.to_bytes() });
            } else {
                self.txs.send_request(now, r, dest, Owner::Orphan);
            }
        }
    }

    /// Ends every call now, for `why` = [`EndReason::Shutdown`] (the edge stops) or
    /// [`EndReason::MediaLost`] (the datapath died): BYE on both legs of established calls,
    /// `503` and CANCEL for ringing ones; new INVITEs get `503` from now on. With `MediaLost` no
    /// Delete is sent (nothing holds the sessions) and every CDR is written at once.
    pub fn shutdown(&mut self, now: Instant, why: EndReason) {
        self.draining = true;
        if why == EndReason::MediaLost {
            self.media_lost = true;
            self.abandon_media();
        }
        // INVITEs waiting for their CPS slot never start: 503 (their CDR says why).
        for q in std::mem::take(&mut self.queued) {
            let mut hold = q.plan.hold;
            self.admission.release(&mut hold, None);
            self.reject_invite(now, &q.k, &q.req, 503, "Shutting Down", Some(q.plan.inbound), why);
        }
        let ids: Vec<CallKey> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(c) = self.calls.get_mut(&id) else { continue };
            c.cdr.end_reason = why;
            match c.state {
                State::Proceeding => self.cancel_b(now, id, 503),
                State::Cancelling => self.finish(now, id),
                _ => self.end_call(now, id, why),
            }
        }
        self.pump(now);
    }

    /// Gives up on Deletes the datapath has not confirmed: their ports return and their CDRs
    /// are written now (without the final media stats).
    pub fn abandon_media(&mut self) {
        for (_, (ports, cdr)) in std::mem::take(&mut self.pending_delete) {
            for p in ports {
                self.ports.release(p);
            }
            self.cdr_out.extend(cdr);
        }
        for (_, j) in std::mem::take(&mut self.remove_on_delete) {
            self.journal_out.push_back(JournalOp::Remove(j));
        }
    }
}

/// The Q.850 cause of `m`'s `Reason` headers (RFC 3326), 0 when none.
pub(crate) fn q850_of(m: &Message) -> u16 {
    m.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case("reason"))
        .find_map(|h| crate::cdr::q850_cause(&h.value))
        .unwrap_or(0)
}

/// What the CDR takes from the call as it ends: accounts, hunting attempts, codec, SRTP.
fn complete_cdr(call: &mut super::Call) {
    let account = |t: TrunkId| {
        let cfg = &call.cfg;
        cfg.trunk(t).account.map(|a| cfg.account(a).name.clone()).unwrap_or_default()
    };
    let (ain, aout) = (account(call.legs[0].trunk), account(call.legs[1].trunk));
    call.cdr.account_in = ain;
    if !call.cdr.trunk_out.is_empty() {
        call.cdr.account_out = aout;
    }
    let leg = &call.spec.legs[1];
    if let Some(e) = leg.pt_map.iter().next() {
        call.cdr.codec = format!("{:?}", e.codec).to_ascii_lowercase();
    }
    call.cdr.srtp = [0, 1].map(|i| call.spec.legs[i].crypto.rx.is_some() || call.spec.legs[i].crypto.tx.is_some());
}
