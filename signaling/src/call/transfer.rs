//! REFER (RFC 3515), either leg: the transferor is replaced. 202, NOTIFY `100 Trying`, a new
//! INVITE to the Refer-To user routed from the transferor's trunk, offered only the codecs
//! negotiated with the transferee on the transferor's relay port; on 2xx: ACK, session update,
//! NOTIFY `200 OK`, BYE to the transferor. A failure is NOTIFYed and leaves the call as it was.
//! Only a trunk with `transfer = true` may transfer, only from the dialog's peer, only to where
//! the transferor's own routes lead; every attempt is a [`TransferCdr`] in the call's CDR.

use std::time::Instant;

use xtrunk_ring::msg::{Command, LegCrypto};

use xtrunk_config::TrunkId;

use super::{codecs_of, dkey, remote_spec, srtp_prefs, uri_host, user_of, Leg, Slot, State, Transfer};
use crate::b2bua::Core;
use crate::cdr::TransferCdr;
use crate::policy;
use crate::sdp::{self, Origin, Rewrite, Sdp};
use crate::sip::dialog::Dialog;
use crate::sip::msg::{HName, Message, Method, NameAddr};
use crate::sip::status::{map_final, reason, response, ALLOW};
use crate::sip::transaction::{CallKey, Owner, Purpose, TxKey};
use crate::transport::{Dest, Transport};

impl Core {
    /// A REFER from leg `s`.
    pub(crate) fn on_refer(&mut self, now: Instant, id: CallKey, s: usize, k: TxKey, req: Message) {
        let Some(call) = self.calls.get(&id) else { return };
        if call.state != State::Confirmed || call.transfer.is_some() || call.reoffer.is_some() {
            return self.reply(now, &k, &req, 491, reason(491));
        }
        if !call.cfg.trunk(call.legs[s].trunk).transfer {
            self.metrics.bad("Transfer Not Allowed", || format!("REFER on call {}", id.0));
            return self.reply(now, &k, &req, 403, "Transfer Not Allowed");
        }
        let Some(target) = req.header(&HName::ReferTo).and_then(|v| NameAddr::parse(v).ok()) else {
            return self.reply(now, &k, &req, 400, "Bad Refer-To");
        };
        let user = user_of(&target.uri);
        let from_trunk = call.legs[s].trunk;
        // Routed with the call's own configuration (a reload since the call began does not apply).
        let cfg = std::sync::Arc::clone(&call.cfg);
        let r = response(&req, 202, "Accepted", Some(&call.legs[s].dlg.local_tag));
        self.txs.respond(now, &k, &r);
        self.notify(now, id, s, 100, "Trying", false);
        let decided = policy::admit_transfer(&cfg, from_trunk, &user);
        let tout = decided.ok();
        let record = TransferCdr {
            slot: s as u8,
            by_trunk: cfg.trunk(from_trunk).name.clone(),
            to: user.clone(),
            trunk_out: tout.map(|t| cfg.trunk(t).name.clone()).unwrap_or_default(),
            start_ms: self.unix_ms(now),
            ..TransferCdr::default()
        };
        let leg = tout.and_then(|t| self.transfer_leg(id, s, t));
        let code = match (decided, leg) {
            (Ok(_), Some(leg)) => return self.send_transfer_invite(now, id, s, leg, &user, record),
            (Err(why), _) => {
                if !why.cause().is_empty() {
                    self.metrics.rejected(why.cause(), &cfg.trunk(from_trunk).name);
                }
                why.code()
            }
            (Ok(_), None) => 488,
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.cdr.transfers.push(TransferCdr { code, ..record });
            self.journal_dirty.insert(id);
        }
        self.notify(now, id, s, code, reason(code), true);
    }

    /// The new leg of a transfer: the transferor's slot and relay port, the transferee's SDP
    /// offered with the target trunk's codecs, keyed on its own.
    fn transfer_leg(&mut self, id: CallKey, s: usize, tout: TrunkId) -> Option<Leg> {
        let call = self.calls.get(&id)?;
        let other_sdp = call.legs[1 - s].remote_sdp.clone()?;
        let port = call.legs[s].port;
        let trunk = call.cfg.trunk(tout);
        let t = trunk.targets[0].clone();
        let (allowed, prefs, ip) =
            (codecs_of(trunk), srtp_prefs(trunk, t.transport == xtrunk_config::Transport::Tls), trunk.media_ip);
        let tr: Transport = t.transport.into();
        let local = self.listener_for(trunk, tr);
        let mut origin = Origin { id: self.ids.session_id(), version: 0 };
        // The transferee's SDP was accepted already; the new leg is keyed on its own.
        let rw = Rewrite { ip, port, allowed: &allowed, srtp_off: false };
        let offer = sdp::rewrite_offer(&other_sdp, &rw, &mut origin).and_then(|mut o| {
            if prefs.offer_srtp(false) {
                sdp::add_offer_crypto(&mut o, &prefs.suites, None)?;
            }
            Ok(o)
        });
        let offer = offer.ok()?;
        let c_tag = self.token();
        let c_cid = self.token();
        let host = self.host_to(local, t.addr).into_owned();
        let dlg = Dialog {
            call_id: c_cid,
            local_hdr: format!("<sip:xtrunk@{host}>;tag={c_tag}"),
            local_tag: c_tag,
            remote_tag: String::new(),
            remote_hdr: String::new(),
            local_cseq: 1,
            remote_cseq: 0,
            remote_target: String::new(),
            route_set: Vec::new(),
            dest: Dest { transport: tr, local, remote: t.addr },
        };
        Some(Leg { dlg, trunk: tout, port, origin, remote_sdp: None, local_sdp: Some(offer), pending_2xx: None })
    }

    fn send_transfer_invite(&mut self, now: Instant, id: CallKey, s: usize, leg: Leg, user: &str, rec: TransferCdr) {
        let d = leg.dlg.dest;
        let thost = uri_host(d.remote);
        let mut m = Message::request(Method::Invite, format!("sip:{user}@{thost}"));
        m.push(HName::Via, self.via(d))
            .push(HName::MaxForwards, "70")
            .push(HName::From, leg.dlg.local_hdr.clone())
            .push(HName::To, format!("<sip:{user}@{thost}>"))
            .push(HName::CallId, leg.dlg.call_id.clone())
            .push(HName::CSeq, "1 INVITE")
            .push(HName::Contact, self.contact(Dest { remote: d.local, ..d }))
            .push(HName::Allow, ALLOW)
            .push(HName::ContentType, "application/sdp");
        m.body = leg.local_sdp.as_ref().map(Sdp::to_bytes).unwrap_or_default();
        let key = self.txs.send_request(now, m, d, Owner::Call(id, Purpose::TransferInvite));
        self.dialogs.insert(dkey(&leg.dlg.call_id, &leg.dlg.local_tag), (id, Slot::Transfer));
        if let Some(call) = self.calls.get_mut(&id) {
            call.cdr.transfers.push(TransferCdr { call_id: leg.dlg.call_id.clone(), ..rec });
            call.transfer = Some(Transfer { slot: s, leg, invite: Some(key) });
        }
    }

    /// A NOTIFY of the REFER's progress (sipfrag) on leg `s`; `last` ends the subscription.
    fn notify(&mut self, now: Instant, id: CallKey, s: usize, code: u16, phrase: &str, last: bool) {
        let body = format!("SIP/2.0 {code} {phrase}\r\n").into_bytes();
        let Some(call) = self.calls.get(&id) else { return };
        let (d, sips) = (call.legs[s].dlg.dest, super::sips_leg(call, s));
        let via = self.via(d);
        let contact = self.contact_as(d, sips);
        let call = self.calls.get_mut(&id).expect("present");
        let mut m = call.legs[s].dlg.request(Method::Notify, via, contact, Some(("message/sipfrag;version=2.0", body)));
        m.push(HName::Event, "refer");
        m.push(HName::SubscriptionState, if last { "terminated;reason=noresource" } else { "active;expires=60" });
        self.journal_dirty.insert(id);
        self.txs.send_request(now, m, d, Owner::Call(id, Purpose::Notify));
    }

    /// The transfer target's final (408 with `msg` None on timeout).
    pub(crate) fn transfer_final(&mut self, now: Instant, id: CallKey, code: u16, msg: Option<Message>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(mut tr) = call.transfer.take() else { return };
        if let Some(t) = call.cdr.transfers.iter_mut().rev().find(|t| t.call_id == tr.leg.dlg.call_id) {
            t.code = code;
        }
        let s = tr.slot;
        self.dialogs.remove(&dkey(&tr.leg.dlg.call_id, &tr.leg.dlg.local_tag));
        let ok = (200..300).contains(&code);
        let Some(msg) = msg.filter(|_| ok) else {
            let c = map_final(code);
            return self.notify(now, id, s, c, reason(c), true);
        };
        let answer = Sdp::parse(&msg.body).ok();
        // Establish the new dialog and ACK.
        tr.leg.dlg.confirm(&msg);
        let dlg = &tr.leg.dlg;
        tr.leg.dlg.dest = self.dialog_dest(dlg.dest, Some(&dlg.remote_target), &dlg.route_set);
        self.ack_on(&tr.leg.dlg);
        let crypto = match (&answer, &tr.leg.local_sdp) {
            (Some(a), Some(ours)) => sdp::answer_crypto(ours, a).ok(),
            _ => Some(LegCrypto::default()),
        };
        let (Some(ans), Some(crypto)) = (answer, crypto) else {
            self.bye_detached(now, &mut tr.leg.dlg.clone(), id);
            return self.notify(now, id, s, 488, reason(488), true);
        };
        tr.leg.remote_sdp = Some(ans.clone());
        self.bridge_transfer(now, id, tr, &ans, crypto);
    }

    /// Slot `tr.slot` now faces the new leg: session updated, NOTIFY 200, BYE to the
    /// transferor, whose dialog is kept as released (its BYE is answered 200).
    fn bridge_transfer(&mut self, now: Instant, id: CallKey, tr: Transfer, ans: &Sdp, crypto: LegCrypto) {
        let s = tr.slot;
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Ok(r) = ans.remote() {
            let l = call.spec.legs[s];
            // The slot now faces the transfer target: its SIP's address is the new signalling IP.
            call.spec.legs[s] = remote_spec(&r, l.local, l.latch, Some(tr.leg.dlg.dest.remote.ip()));
            call.spec.legs[s].crypto = crypto;
            self.media_out.push_back(Command::Update(call.spec));
        }
        self.notify(now, id, s, 200, "OK", true);
        self.send_in_dialog(now, id, s, Method::Bye, None, Purpose::Bye);
        let Some(call) = self.calls.get_mut(&id) else { return };
        let old = std::mem::replace(&mut call.legs[s], tr.leg);
        self.dialogs.insert(dkey(&old.dlg.call_id, &old.dlg.local_tag), (id, Slot::Released));
        call.released.push((old.dlg.call_id.clone(), old.dlg.local_tag.clone()));
        let new = &call.legs[s];
        self.dialogs.insert(dkey(&new.dlg.call_id, &new.dlg.local_tag), (id, Slot::Live(s)));
        if s == 1 {
            call.cdr.trunk_out = call.cfg.trunk(new.trunk).name.clone();
        }
        self.journal_dirty.insert(id);
    }

    /// A BYE on a dialog that is not (or no longer) a leg of the call.
    fn bye_detached(&mut self, now: Instant, dlg: &mut Dialog, id: CallKey) {
        let d = dlg.dest;
        let via = self.via(d);
        let m = dlg.request(Method::Bye, via, String::new(), None);
        self.txs.send_request(now, m, d, Owner::Call(id, Purpose::Bye));
    }
}
