//! Restart: answered calls survive a sidecar crash.
//!
//! The core journals every answered call ([`JournalOp::Add`], an upsert) whenever its dialog
//! state changes (answer, a CSeq sent or received, target refresh, completed re-offer, transfer)
//! and removes it when the call ends. A restarted sidecar gets the journal and the datapath's
//! dump ([`Core::recover`]) and, for each journaled call whose session the datapath still holds,
//! rebuilds both dialogs, the relay ports, the SDP state and the CDR, and keeps the media
//! session untouched: the call goes on, in-dialog requests are served as before. Everything that
//! cannot be resumed is ended: journaled calls without a session or whose trunk is gone from the
//! configuration get a BYE on both legs (+ Delete), sessions without a journaled call (calls
//! not yet answered at the crash) are deleted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use xtrunk_ring::msg::{Command, SessionId, SessionSpec};

use super::{dkey, uri_addr, Call, Leg, Slot, State};
use crate::b2bua::Core;
use crate::cdr::Cdr;
use crate::cdr::EndReason;
use crate::journal::{JournalEntry, JournalLeg, JournalOp};
use crate::sdp::{Origin, Sdp};
use crate::sip::dialog::Dialog;
use crate::sip::msg::{Message, Method, NameAddr};
use crate::sip::transaction::{CallKey, Owner, TxKey};
use crate::transport::{Dest, Transport};

/// Why a journaled call could not be resumed.
#[derive(Debug)]
enum Unrestorable {
    NoSession,
    BadLeg(&'static str),
    UnknownTrunk(String),
    Duplicate,
}

impl std::fmt::Display for Unrestorable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSession => f.write_str("the datapath has no session for it"),
            Self::BadLeg(what) => write!(f, "unusable journaled {what}"),
            Self::UnknownTrunk(t) => write!(f, "trunk {t:?} is no longer configured"),
            Self::Duplicate => f.write_str("its dialog is journaled twice"),
        }
    }
}

impl Core {
    /// Recovery after a restart: `sessions` from the datapath's dump, `journal` the answered calls
    /// that were up. Resumes each journaled call whose session is in the dump (dialogs, ports,
    /// SDP and CDR state rebuilt; the session is left as it is). Journaled calls that cannot be
    /// resumed get a BYE on both legs and a Delete; dumped sessions without a journaled call are
    /// deleted. Every dumped session's ports are marked used until its Delete is confirmed.
    pub fn recover(&mut self, now: Instant, sessions: &[SessionSpec], journal: &[JournalEntry]) {
        self.last_now = now;
        let mut dumped: HashMap<SessionId, SessionSpec> = HashMap::with_capacity(sessions.len());
        for s in sessions {
            for l in &s.legs {
                self.ports.mark_used(l.local.port());
            }
            self.next = self.next.max(s.id.0 + 1);
            dumped.insert(s.id, *s);
        }
        for e in journal {
            self.next = self.next.max(e.id + 1).max(e.session + 1);
        }
        for e in journal {
            let spec = dumped.remove(&SessionId(e.session));
            let result = match spec {
                Some(spec) => self.restore(e, spec),
                None => Err(Unrestorable::NoSession),
            };
            match result {
                Ok(()) => {
                    self.metrics.calls_recovered += 1;
                    log::info!("recovered call {} ({} / {}): resumed", e.id, e.legs[0].call_id, e.legs[1].call_id);
                }
                Err(why) => {
                    self.metrics.calls_released_on_restart += 1;
                    log::warn!(
                        "recovered call {} ({}): cannot resume ({why}); BYE to both legs",
                        e.id,
                        e.legs[0].call_id
                    );
                    self.release(now, e, spec);
                }
            }
        }
        for (id, s) in dumped {
            // A call not yet answered at the crash (or one the journal lost): nothing to resume.
            self.metrics.calls_released_on_restart += 1;
            log::info!("session {}: no journaled call; deleting it", id.0);
            self.pending_delete.insert(id, ([s.legs[0].local.port(), s.legs[1].local.port()], None));
            self.media_out.push_back(Command::Delete(id));
        }
    }

    /// Rebuilds one answered call around its dumped session.
    fn restore(&mut self, e: &JournalEntry, spec: SessionSpec) -> Result<(), Unrestorable> {
        let mut legs = Vec::with_capacity(2);
        for (i, l) in e.legs.iter().enumerate() {
            let mut leg = self.leg_from_journal(l)?;
            leg.trunk = self.cfg.trunk_by_name(&l.trunk).ok_or_else(|| Unrestorable::UnknownTrunk(l.trunk.clone()))?;
            // The dump is the truth about the relay ports.
            leg.port = spec.legs[i].local.port();
            legs.push(leg);
        }
        let [a, b]: [Leg; 2] = legs.try_into().map_err(|_| Unrestorable::BadLeg("legs"))?;
        for l in [&a, &b] {
            if self.dialogs.contains_key(&dkey(&l.dlg.call_id, &l.dlg.local_tag)) {
                return Err(Unrestorable::Duplicate);
            }
        }
        let id = CallKey(e.id);
        let mut cdr = e.cdr.clone().unwrap_or_else(|| Cdr {
            call_id: a.dlg.call_id.clone(),
            b_call_id: b.dlg.call_id.clone(),
            trunk_in: e.legs[0].trunk.clone(),
            trunk_out: e.legs[1].trunk.clone(),
            to: e.user.clone(),
            ..Cdr::default()
        });
        cdr.disposition = 200;
        if cdr.answer_ms == 0 {
            cdr.answer_ms = cdr.start_ms.max(1);
        }
        // Only used before the answer; kept for completeness.
        let a_offer = a.remote_sdp.clone().unwrap_or(Sdp { session: Vec::new(), media: Vec::new() });
        self.dialogs.insert(dkey(&a.dlg.call_id, &a.dlg.local_tag), (id, Slot::Live(0)));
        self.dialogs.insert(dkey(&b.dlg.call_id, &b.dlg.local_tag), (id, Slot::Live(1)));
        // A resumed call holds its channels again (counted, not checked: it exists).
        let hold = self.admission.adopt(&self.cfg, a.trunk, b.trunk, self.last_now);
        let call = Call {
            cfg: std::sync::Arc::clone(&self.cfg),
            // The caller's ACK may still come (it is then absorbed); REFER needs Confirmed.
            state: State::Confirmed,
            legs: [a, b],
            a_invite: Message::request(Method::Invite, String::new()),
            a_stx: TxKey::detached(format!("recovered:{}", id.0)),
            b_ctx: None,
            b_ack: None,
            b_provisional: true,
            b_challenged: 0,
            b_waits_media: false,
            pending_src: None,
            cancel_sent: false,
            targets_tried: 1,
            first_target: 0,
            delayed_offer: false,
            entries: Vec::new(),
            entry: 0,
            reoriginated: false,
            route: None,
            session_expires: 0,
            refreshing: [false; 2],
            refresh_gen: [0; 2],
            refresh_by: [super::session_timer::Refresher::Update; 2],
            user: e.user.clone(),
            session: spec.id,
            spec,
            created: true,
            a_offer,
            early_answer: None,
            reoffer: None,
            transfer: None,
            released: Vec::new(),
            span: super::call_span(&cdr),
            cdr,
            hold,
            numbers: crate::policy::NumberPlan::default(),
        };
        self.calls.insert(id, call);
        Ok(())
    }

    fn leg_from_journal(&self, l: &JournalLeg) -> Result<Leg, Unrestorable> {
        let remote: SocketAddr = l.remote.parse().map_err(|_| Unrestorable::BadLeg("remote"))?;
        let local: SocketAddr = l.local.parse().map_err(|_| Unrestorable::BadLeg("local"))?;
        let transport = Transport::from_token(&l.transport).ok_or(Unrestorable::BadLeg("transport"))?;
        let mut dest = Dest { transport, local, remote };
        if transport.reliable() {
            // The connection died with the old process: reach the peer at its route/target.
            let first = l.routes.first().and_then(|r| NameAddr::parse(r).ok()).map(|n| n.uri);
            let uri = first.as_deref().unwrap_or(&l.target);
            if let Some((addr, _)) = uri_addr(uri) {
                dest.remote = addr;
            }
        }
        let sdp = |s: &Option<String>| -> Result<Option<Sdp>, Unrestorable> {
            s.as_ref().map(|t| Sdp::parse(t.as_bytes()).map_err(|_| Unrestorable::BadLeg("sdp"))).transpose()
        };
        let dlg = Dialog {
            call_id: l.call_id.clone(),
            local_tag: l.local_tag.clone(),
            local_hdr: l.local_hdr.clone(),
            remote_hdr: l.remote_hdr.clone(),
            remote_tag: NameAddr::parse(&l.remote_hdr)
                .ok()
                .and_then(|n| n.tag().map(str::to_string))
                .unwrap_or_default(),
            local_cseq: l.cseq,
            remote_cseq: l.remote_cseq,
            remote_target: l.target.clone(),
            route_set: l.routes.clone(),
            dest,
        };
        Ok(Leg {
            dlg,
            trunk: xtrunk_config::TrunkId(0),
            port: l.port,
            origin: Origin { id: l.origin.0, version: l.origin.1 },
            remote_sdp: sdp(&l.remote_sdp)?,
            local_sdp: sdp(&l.local_sdp)?,
            pending_2xx: None,
        })
    }

    /// Ends a journaled call that cannot be resumed: BYE on both legs (from the journaled dialog
    /// state, so CSeq = last + 1), Delete its session; the CDR is written when the Delete is
    /// answered (at once when the datapath had no session).
    fn release(&mut self, now: Instant, e: &JournalEntry, spec: Option<SessionSpec>) {
        for l in &e.legs {
            let Ok(mut leg) = self.leg_from_journal(l) else { continue };
            let d = leg.dlg.dest;
            let via = self.via(d);
            let m = leg.dlg.request(Method::Bye, via, String::new(), None);
            self.txs.send_request(now, m, d, Owner::Orphan);
        }
        let mut cdr = e.cdr.clone();
        if let Some(c) = &mut cdr {
            c.end_ms = self.unix_ms(now);
            c.disposition = 200;
            c.end_reason = EndReason::SidecarRestart;
        }
        let sid = SessionId(e.session);
        match spec {
            Some(s) => {
                self.pending_delete.insert(sid, ([s.legs[0].local.port(), s.legs[1].local.port()], cdr));
                // Removed from the journal when its CDR is out (on `Deleted`).
                self.remove_on_delete.insert(sid, e.id);
            }
            None => {
                if let Some(c) = cdr {
                    self.cdr_out.push_back(c);
                }
                self.journal_out.push_back(JournalOp::Remove(e.id));
            }
        }
        // Sent even without a dumped session: the dump may have been cut short.
        self.media_out.push_back(Command::Delete(sid));
    }

    /// Turns the calls whose dialog state changed into journal upserts (answered calls only).
    pub(crate) fn flush_journal_dirty(&mut self) {
        if self.journal_dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.journal_dirty);
        for id in dirty {
            let up = self
                .calls
                .get(&id)
                .is_some_and(|c| c.cdr.answer_ms != 0 && matches!(c.state, State::Answered | State::Confirmed));
            if !up {
                continue;
            }
            if let Some(e) = self.journal_entry(id) {
                self.journal_out.push_back(JournalOp::Add(e));
            }
        }
    }

    /// The journal record of a call: everything [`Core::recover`] needs to resume it.
    pub(crate) fn journal_entry(&self, id: CallKey) -> Option<JournalEntry> {
        let c = self.calls.get(&id)?;
        Some(JournalEntry {
            id: id.0,
            session: c.session.0,
            legs: [0, 1].map(|i| {
                let l = &c.legs[i];
                JournalLeg {
                    call_id: l.dlg.call_id.clone(),
                    local_tag: l.dlg.local_tag.clone(),
                    local_hdr: l.dlg.local_hdr.clone(),
                    remote_hdr: l.dlg.remote_hdr.clone(),
                    cseq: l.dlg.local_cseq,
                    remote_cseq: l.dlg.remote_cseq,
                    target: l.dlg.remote_target.clone(),
                    routes: l.dlg.route_set.clone(),
                    transport: l.dlg.dest.transport.via_token().to_string(),
                    local: l.dlg.dest.local.to_string(),
                    remote: l.dlg.dest.remote.to_string(),
                    trunk: c.cfg.trunk(l.trunk).name.clone(),
                    port: l.port,
                    origin: (l.origin.id, l.origin.version),
                    local_sdp: l.local_sdp.as_ref().map(Sdp::to_text),
                    remote_sdp: l.remote_sdp.as_ref().map(Sdp::to_text),
                }
            }),
            user: c.user.clone(),
            cdr: Some(c.cdr.clone()),
        })
    }
}
