//! Call setup: the caller's INVITE is decided by policy, then carried out here — SDP negotiated
//! on each leg, relay ports taken, the datapath session created, both dialogs built and the
//! INVITE sent to the route's first target.

use std::cmp::Reverse;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xtrunk_config::{Snapshot, TrunkId};

use xtrunk_ring::msg::{Command, LegCrypto, LegSpec, SessionId, SessionSpec, SrtpKeys};

use super::{dkey, latch_of, remote_spec, srtp_prefs, uri_host, user_of, Call, CallTimer, Leg, Queued, Slot, State};
use crate::b2bua::Core;
use crate::cdr::{Cdr, EndReason};
use crate::policy::{self, Decision, IncomingCall, RoutePlan};
use crate::sdp::{self, Origin, SdesLine, Sdp};
use crate::sip::dialog::Dialog;
use crate::sip::msg::{HName, Message, Method, NameAddr, Uri};
use crate::sip::status::{response, ALLOW};
use crate::sip::transaction::{CallKey, Owner, Purpose, TxKey};
use crate::transport::{Dest, Transport};

/// The negotiated offer of a new call, before its legs exist.
struct Negotiated {
    offer: Sdp,
    /// The caller's accepted `a=crypto` line and our answer key.
    a_srtp: Option<(SdesLine, SrtpKeys)>,
    b_sdp: Sdp,
    b_origin: Origin,
    ports: [u16; 2],
    /// The callee trunk's target the call tries first (`trunk.distribution`).
    first_target: usize,
}

impl Core {
    /// A new INVITE (no To tag): policy decides, mechanics carry it out.
    pub(crate) fn on_invite(&mut self, now: Instant, k: TxKey, req: Message, src: Dest) {
        if self.draining {
            let tag = self.token();
            let mut r = response(&req, 503, "Shutting Down", Some(&tag));
            r.push(HName::Other("Retry-After".into()), "30");
            return self.txs.respond(now, &k, &r);
        }
        if self.shed_invite(&k, &req, src) {
            return;
        }
        let Some(trunk) = self.gate_invite(now, &k, &req, src) else { return };
        if let Err(min_se) = super::session_timer::interval(&self.cfg.sip, &req) {
            let tag = self.token();
            let mut r = response(&req, 422, "Session Interval Too Small", Some(&tag));
            r.push(HName::Other("Min-SE".into()), min_se.to_string());
            return self.txs.respond(now, &k, &r);
        }
        let mut user = user_of(req.uri().unwrap_or(""));
        // A call to the contact a register trunk registered carries the number in To.
        let known = trunk.or_else(|| policy::identify::by_acl(&self.cfg, src.remote.ip()));
        if let Some(t) = known.map(|t| self.cfg.trunk(t)) {
            if t.kind == xtrunk_config::TrunkKind::Register && t.registrations.iter().any(|r| r.contact() == user) {
                if let Some(n) = req.to().and_then(|to| Uri::parse(&to.uri).ok()).and_then(|u| u.user) {
                    user = n;
                }
            }
        }
        let from_uri = req.from().and_then(|f| Uri::parse(&f.uri).ok());
        let view = IncomingCall {
            source: src.remote,
            local: src.local,
            transport: src.transport,
            user: &user,
            from_user: from_uri.as_ref().and_then(|u| u.user.as_deref()),
            pai: other_header(&req, "P-Asserted-Identity"),
            privacy: other_header(&req, "Privacy"),
            has_offer: !req.body.is_empty(),
            at: Some(self.unix_ms(now) / 1000),
            trunk,
        };
        let cfg = Arc::clone(&self.cfg);
        let decision = match policy::admit(&cfg, &view, now, &mut self.admission) {
            Decision::Route(plan) => {
                let mut hold = plan.hold;
                match policy::routing::online(&cfg, plan, |t, k| self.target_up(t, k)) {
                    Ok(plan) => Decision::Route(plan),
                    Err(r) => {
                        self.admission.release(&mut hold, None);
                        Decision::Reject(r)
                    }
                }
            }
            d => d,
        };
        match decision {
            Decision::Route(plan) => {
                for m in &plan.warnings {
                    self.metrics.fraud_warning(m.as_str(), &cfg.trunk(plan.inbound).name, &user);
                }
                match plan.start_at {
                    Some(at) if at > now => self.queue_call(now, Queued { at, k, req, src, plan, user }),
                    _ => self.start_call(now, k, req, src, plan, user),
                }
            }
            Decision::Reject(r) => {
                if r.why == policy::RejectReason::UnknownSource {
                    self.metrics.bad("Forbidden (no ACL match)", || src.remote.to_string());
                }
                self.policy_reject(now, &k, &req, r, src.local);
            }
            // No policy step challenges yet; refuse rather than guess at a realm.
            Decision::Challenge { .. } => {
                self.reject_invite(now, &k, &req, 403, "Forbidden", None, EndReason::Rejected)
            }
        }
    }

    /// Holds an INVITE for its account's CPS slot: `100 Trying` now (the caller's transaction
    /// stays alive), the call starts at `q.at` (`start_queued`), or ends `487` on CANCEL.
    fn queue_call(&mut self, now: Instant, q: Queued) {
        let trying = response(&q.req, 100, "Trying", None);
        self.txs.respond(now, &q.k, &trying);
        self.metrics.cps_queued += 1;
        let i = self.queued.partition_point(|x| x.at <= q.at);
        self.queued.insert(i, q);
    }

    /// Starts the queued calls whose slot has come.
    pub(crate) fn start_queued(&mut self, now: Instant) {
        while self.queued.front().is_some_and(|q| q.at <= now) {
            let q = self.queued.pop_front().expect("checked");
            if !self.txs.server_alive(&q.k) {
                let mut hold = q.plan.hold;
                self.admission.release(&mut hold, None);
                continue;
            }
            self.start_call(now, q.k, q.req, q.src, q.plan, q.user);
        }
    }

    fn start_call(&mut self, now: Instant, k: TxKey, req: Message, src: Dest, plan: RoutePlan, user: String) {
        let cfg = Arc::clone(&self.cfg);
        let (tin, tout) = (plan.inbound, plan.entries[0]);
        let Some(mut n) = self.negotiate(now, &k, &req, src, &cfg, tin, tout) else {
            let mut hold = plan.hold;
            return self.admission.release(&mut hold, None);
        };
        n.first_target = self.first_target(cfg.trunk(tout));
        let id = self.next_call();
        let session = SessionId(id.0);
        let spec = session_spec(&cfg, session, &n, tin, tout, src.remote.ip());
        self.media_out.push_back(Command::Create(spec));
        let delayed_offer = req.body.is_empty();
        let session_expires = super::session_timer::interval(&cfg.sip, &req).unwrap_or(0);
        let caller_refresher = super::session_timer::Refresher::of_caller(&req);
        let leg_a = self.caller_leg(&req, src, tin, n.ports[0], n.offer.clone());
        let leg_b = self.callee_leg(&req, &cfg, (tout, n.first_target), n.ports[1], n.b_origin, n.b_sdp, &plan.numbers);
        let cdr = Cdr {
            call_id: leg_a.dlg.call_id.clone(),
            b_call_id: leg_b.dlg.call_id.clone(),
            trunk_in: cfg.trunk(tin).name.clone(),
            trunk_out: cfg.trunk(tout).name.clone(),
            from: from_uri_user(&req).unwrap_or_else(|| "anonymous".into()),
            to: user.clone(),
            start_ms: self.unix_ms(now),
            account_in: cfg.trunk(tin).account.map(|a| cfg.account(a).name.clone()).unwrap_or_default(),
            account_out: cfg.trunk(tout).account.map(|a| cfg.account(a).name.clone()).unwrap_or_default(),
            ..Cdr::default()
        };
        self.dialogs.insert(dkey(&leg_a.dlg.call_id, &leg_a.dlg.local_tag), (id, Slot::Live(0)));
        self.dialogs.insert(dkey(&leg_b.dlg.call_id, &leg_b.dlg.local_tag), (id, Slot::Live(1)));
        self.invite_stx.insert(k.clone(), id);
        let trying = response(&req, 100, "Trying", None);
        let na = now + Duration::from_secs(u64::from(cfg.sip.no_answer_timeout_secs));
        let call = Call {
            cfg,
            state: State::Proceeding,
            legs: [leg_a, leg_b],
            a_invite: req,
            a_stx: k.clone(),
            b_ctx: None,
            b_ack: None,
            b_provisional: false,
            b_challenged: 0,
            b_waits_media: true,
            pending_src: Some(src.remote.ip()),
            cancel_sent: false,
            targets_tried: 0,
            first_target: n.first_target,
            entries: plan.entries,
            entry: 0,
            reoriginated: false,
            route: plan.route,
            session_expires,
            refreshing: [session_expires > 0; 2],
            refresh_gen: [0; 2],
            refresh_by: [caller_refresher, super::session_timer::Refresher::Update],
            delayed_offer,
            user: plan.numbers.callee.clone().unwrap_or(user),
            session,
            spec,
            created: true,
            a_offer: n.offer,
            early_answer: None,
            reoffer: None,
            transfer: None,
            released: Vec::new(),
            span: super::call_span(&cdr),
            cdr,
            hold: plan.hold,
            numbers: plan.numbers,
        };
        let _span = call.span.clone().entered();
        log::debug!(
            "call {}: {} -> {} user {} from {} (call-id {}, b-leg {})",
            id.0,
            call.cdr.trunk_in,
            call.cdr.trunk_out,
            call.user,
            src.remote,
            call.cdr.call_id,
            call.cdr.b_call_id
        );
        self.calls.insert(id, call);
        *self.pending.entry(src.remote.ip()).or_insert(0) += 1;
        self.metrics.calls_started += 1;
        if let Some(n) = self.metrics.attempts.get_mut(&self.calls[&id].cdr.trunk_in) {
            *n += 1;
        } else {
            self.metrics.attempts.insert(self.calls[&id].cdr.trunk_in.clone(), 1);
        }
        self.txs.respond(now, &k, &trying);
        self.heap.push(Reverse((na, id, CallTimer::NoAnswer)));
        // The callee-side INVITE goes out on the datapath's `Created` (see `media_event`).
        self.media_wait += 1;
        self.media_wake.get_or_insert(now + super::MEDIA_WAKE);
        self.heap.push(Reverse((now + MEDIA_CONFIRM, id, CallTimer::MediaGuard)));
        self.heap.push(Reverse((now + super::MEDIA_RETRY, id, CallTimer::MediaRetry)));
        let hunt = Duration::from_secs(u64::from(self.cfg.sip.hunt_timeout_secs));
        self.heap.push(Reverse((now + hunt, id, CallTimer::HuntBudget)));
    }

    /// Parses and negotiates the caller's offer for both legs and takes two relay ports; on
    /// failure the INVITE is answered (400/488/503) and None returned.
    #[allow(clippy::too_many_arguments)]
    fn negotiate(
        &mut self,
        now: Instant,
        k: &TxKey,
        req: &Message,
        src: Dest,
        cfg: &Snapshot,
        tin: TrunkId,
        tout: TrunkId,
    ) -> Option<Negotiated> {
        // Delayed offer: stand in for the caller with the offer its trunk could make (our own 2xx
        // then offers the callee's choice to the caller; the caller answers in its ACK).
        let parsed = if req.body.is_empty() {
            Sdp::parse(&super::delayed::stand_in_offer(cfg.trunk(tin)))
        } else {
            Sdp::parse(&req.body)
        };
        let offer = match parsed {
            Ok(o) => o,
            Err(e) => {
                // Malformed: 400 Bad SDP; over the size limits: 488 with a Warning.
                self.metrics.bad(e.status().1, || src.remote.to_string());
                self.reject_offer(now, k, req, e, src.local, tin);
                return None;
            }
        };
        // SDES on the caller's leg (RFC 4568): the line we accept and our own key for the answer.
        let a_srtp = sdp::accept_offer(&offer, &srtp_prefs(cfg.trunk(tin), src.transport == Transport::Tls))
            .and_then(|l| l.map(|l| Ok((l, sdp::fresh_keys(l.keys.suite)?))).transpose());
        let a_srtp = match a_srtp {
            Ok(c) => c,
            Err(e) => {
                self.reject_offer(now, k, req, e, src.local, tin);
                return None;
            }
        };
        let share = self.ports.capacity() * usize::from(cfg.sip.limits.max_pending_share_pct) / 100;
        if 2 * (self.pending.get(&src.remote.ip()).copied().unwrap_or(0) + 1) > share.max(2) {
            self.metrics.bad("Pending Share Exceeded", || src.remote.to_string());
            self.reject_invite(now, k, req, 503, "Too Many Pending Calls", Some(tin), EndReason::Rejected);
            return None;
        }
        let Some(pa) = self.ports.alloc() else {
            self.no_ports(now, k, req, tin);
            return None;
        };
        let Some(pb) = self.ports.alloc() else {
            self.ports.release(pa);
            self.no_ports(now, k, req, tin);
            return None;
        };
        let mut b_origin = Origin { id: self.ids.session_id(), version: 0 };
        let b_sdp =
            super::hunt::callee_offer(cfg, (tin, tout), src.transport == Transport::Tls, &offer, pb, &mut b_origin);
        match b_sdp {
            Ok(b_sdp) => Some(Negotiated { offer, a_srtp, b_sdp, b_origin, ports: [pa, pb], first_target: 0 }),
            Err(e) => {
                self.ports.release(pa);
                self.ports.release(pb);
                self.reject_offer(now, k, req, e, src.local, tin);
                None
            }
        }
    }
}

/// How long the datapath may take to confirm a new session before the call is refused `503`.
const MEDIA_CONFIRM: Duration = Duration::from_secs(2);

/// The datapath session of a new call: the caller's leg from its offer, the callee's empty until
/// it answers.
/// `a_ip`: where the caller's INVITE came from (the callee's signalling IP is its trunk target's).
fn session_spec(
    cfg: &Snapshot,
    id: SessionId,
    n: &Negotiated,
    tin: TrunkId,
    tout: TrunkId,
    a_ip: IpAddr,
) -> SessionSpec {
    let bind = cfg.media.bind_ip;
    let local0 = SocketAddr::new(bind, n.ports[0]);
    let mut leg0 = match n.offer.remote() {
        Ok(r) => {
            let r = sdp::negotiated(&r, &n.b_sdp.remote().unwrap_or(r.clone()));
            remote_spec(&r, local0, latch_of(cfg.trunk(tin)), Some(a_ip))
        }
        Err(_) => {
            let none = sdp::Remote {
                index: 0,
                addr: None,
                rtcp_port: 0,
                rtcp_mux: false,
                payloads: vec![],
                direction: "sendrecv",
                ptime_ms: 0,
            };
            remote_spec(&none, local0, latch_of(cfg.trunk(tin)), Some(a_ip))
        }
    };
    leg0.crypto = LegCrypto { rx: n.a_srtp.map(|(l, _)| l.keys), tx: n.a_srtp.map(|(_, ours)| ours) };
    // Until the answer, the callee sends with our offer's payload types (RFC 3264 §6.1): a
    // carrier's first G.729 packets, which may overtake its answer's Update, are transcoded too.
    let offered = n.b_sdp.remote().map(|r| r.pt_map()).unwrap_or_default();
    let leg1 = LegSpec {
        local: SocketAddr::new(bind, n.ports[1]),
        remote: None,
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: latch_of(cfg.trunk(tout)),
        signal_ip: cfg.trunk(tout).targets.get(n.first_target).map(|t| t.addr.ip()),
        pt_map: offered,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    };
    SessionSpec {
        id,
        legs: [leg0, leg1],
        media_timeout_ms: cfg.media.timeout_secs.saturating_mul(1000),
        leg_timeout_ms: [tin, tout].map(|t| cfg.trunk(t).leg_timeout_secs.saturating_mul(1000)),
        allow_fast_path: true,
    }
}

impl Core {
    /// The caller's leg (we are its UAS).
    fn caller_leg(&mut self, req: &Message, src: Dest, tin: TrunkId, port: u16, offer: Sdp) -> Leg {
        let a_tag = self.token();
        let to_v = req.header(&HName::To).unwrap_or("");
        let contact = req.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri);
        let route_set: Vec<String> = req.headers_of(&HName::RecordRoute).map(str::to_string).collect();
        let dest = self.dialog_dest(src, contact.as_deref(), &route_set);
        let dlg = Dialog {
            call_id: req.call_id().unwrap_or("").to_string(),
            local_hdr: format!("{to_v};tag={a_tag}"),
            local_tag: a_tag,
            remote_tag: req.from_tag().unwrap_or_default().to_string(),
            remote_hdr: req.header(&HName::From).unwrap_or("").to_string(),
            local_cseq: 0,
            remote_cseq: req.cseq().map_or(0, |c| c.seq),
            remote_target: contact.unwrap_or_else(|| format!("sip:{}", src.remote)),
            route_set,
            dest,
        };
        let origin = Origin { id: self.ids.session_id(), version: 0 };
        Leg { dlg, trunk: tin, port, origin, remote_sdp: Some(offer), local_sdp: None, pending_2xx: None }
    }

    /// The callee's leg (we are its UAC); its target is chosen in `send_b_invite`.
    #[allow(clippy::too_many_arguments)]
    fn callee_leg(
        &mut self,
        req: &Message,
        cfg: &Snapshot,
        (tout, first): (TrunkId, usize),
        port: u16,
        origin: Origin,
        sdp: Sdp,
        numbers: &policy::NumberPlan,
    ) -> Leg {
        let b_tag = self.token();
        let b_call_id = self.token();
        let from_user = numbers.caller.clone().or_else(|| from_uri_user(req)).unwrap_or_else(|| "anonymous".into());
        // The caller's display name goes across only without control characters (the parser
        // admits them as quoted-pairs; the carrier's parser may not).
        let display = req.from().and_then(|f| f.display).filter(|d| !d.bytes().any(|b| b < 0x20 || b == 0x7f));
        let display = display.map(|d| format!("{d} ")).unwrap_or_default();
        let t = cfg.trunk(tout).targets[first].clone();
        let local = self.listener_for(cfg.trunk(tout), t.transport.into());
        // Privacy (RFC 3323 §4.1.1.3): the From toward the callee says nothing of the caller.
        let local_hdr = if numbers.privacy {
            format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={b_tag}")
        } else {
            format!("{display}<sip:{from_user}@{}>;tag={b_tag}", self.host_to(local, t.addr))
        };
        let dlg = Dialog {
            call_id: b_call_id,
            local_hdr,
            local_tag: b_tag,
            remote_tag: String::new(),
            remote_hdr: String::new(),
            local_cseq: 0,
            remote_cseq: 0,
            remote_target: String::new(),
            route_set: Vec::new(),
            dest: Dest { transport: t.transport.into(), local, remote: t.addr },
        };
        Leg { dlg, trunk: tout, port, origin, remote_sdp: None, local_sdp: Some(sdp), pending_2xx: None }
    }

    /// Sends the callee-side INVITE to the trunk's next target.
    pub(crate) fn send_b_invite(&mut self, now: Instant, id: CallKey) {
        let Some(call) = self.calls.get(&id) else { return };
        let cfg = Arc::clone(&call.cfg);
        let trunk = cfg.trunk(call.legs[1].trunk);
        // Targets OPTIONS found offline (or whose registration is down) are skipped (counted
        // as tried), and so are targets in back-off after a timeout while a later one is not.
        let usable = |t: &xtrunk_config::Target| {
            self.target_up(trunk, (t.transport.into(), t.addr))
                && !self.health.backed_off((t.transport.into(), t.addr), now)
        };
        let mut tried = call.targets_tried;
        while let Some(t) = call.target(trunk, tried) {
            let key = (t.transport.into(), t.addr);
            if !self.target_up(trunk, key) {
                log::debug!("call {}: target {} is offline, skipped", id.0, t.addr);
            } else if !self.health.backed_off(key, now) {
                break;
            } else if (tried + 1..trunk.targets.len()).filter_map(|i| call.target(trunk, i)).any(usable) {
                log::debug!("call {}: target {} is backed off, skipped", id.0, t.addr);
            } else {
                break;
            }
            tried += 1;
        }
        let picked = call.target(trunk, tried).cloned();
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.targets_tried = tried;
        let Some(t) = picked else {
            if call.has_next_entry() {
                return self.next_entry(now, id);
            }
            call.cdr.end_reason = EndReason::TrunkOffline;
            return self.cancel_to_a_and_finish(now, id, 503);
        };
        self.dial_b(now, id, &t, None);
    }

    /// Sends the callee-side INVITE to target `t`; `auth`: the challenge it answers (the same
    /// target again, CSeq + 1: RFC 3261 §22.2).
    pub(crate) fn dial_b(&mut self, now: Instant, id: CallKey, t: &xtrunk_config::Target, auth: Option<CallAuth>) {
        let Some(call) = self.calls.get(&id) else { return };
        let cfg = Arc::clone(&call.cfg);
        let trunk = cfg.trunk(call.legs[1].trunk);
        let tr: Transport = t.transport.into();
        let local = self.listener_for(trunk, tr);
        let via = self.via(Dest { transport: tr, local, remote: t.addr });
        let contact = self.contact(Dest { transport: tr, local, remote: t.addr });
        let Some(call) = self.calls.get_mut(&id) else { return };
        if auth.is_none() {
            call.targets_tried += 1;
            call.b_challenged = 0;
        }
        call.b_provisional = false;
        call.cdr.attempts.push(crate::cdr::AttemptCdr {
            trunk: trunk.name.clone(),
            target: t.addr.to_string(),
            code: 0,
        });
        let leg = &mut call.legs[1];
        leg.dlg.local_cseq += 1;
        leg.dlg.dest = Dest { transport: tr, local, remote: t.addr };
        let tp = tr.uri_param();
        // A domain trunk is addressed by its domain (RFC 3263: the URI resolved, not rewritten).
        let host = trunk.domain.clone().unwrap_or_else(|| uri_host(t.addr));
        // A registered PBX is called at the Contact it registered (RFC 3261 §10.3, §16.5).
        let ruri = match self.registrar.uri_at(&trunk.name, t.addr) {
            Some(uri) if trunk.kind == xtrunk_config::TrunkKind::AcceptRegister => uri.to_string(),
            _ => format!("sip:{}@{host}{tp}", call.user),
        };
        let mut m = Message::request(Method::Invite, ruri);
        let mf = call.a_invite.header(&HName::MaxForwards).and_then(|v| v.parse::<u32>().ok()).unwrap_or(70);
        m.push(HName::Via, via)
            .push(HName::MaxForwards, mf.min(70).saturating_sub(1).to_string())
            .push(HName::From, leg.dlg.local_hdr.clone())
            .push(HName::To, format!("<sip:{}@{host}>", call.user))
            .push(HName::CallId, leg.dlg.call_id.clone())
            .push(HName::CSeq, format!("{} INVITE", leg.dlg.local_cseq))
            .push(HName::Contact, contact)
            .push(HName::Allow, ALLOW)
            .push(HName::ContentType, "application/sdp");
        if call.session_expires > 0 {
            m.push(HName::Other("Session-Expires".into()), format!("{};refresher=uac", call.session_expires))
                .push(HName::Other("Min-SE".into()), call.cfg.sip.min_se_secs.to_string())
                .push(HName::Supported, "timer");
        }
        // PAI only toward a trusted trunk (policy left it out otherwise; RFC 3325 §5).
        if let Some(p) = &call.numbers.pai {
            m.push(HName::Other("P-Asserted-Identity".into()), format!("<sip:{p}@{host}>"));
        }
        if call.numbers.privacy {
            m.push(HName::Other("Privacy".into()), "id");
        }
        if let Some(a) = auth {
            let creds = crate::auth::client::Creds { username: &a.username, password: &a.password };
            let uri = m.uri().unwrap_or("").to_string();
            m.push(a.header, crate::auth::client::answer(&a.offer, creds, ("INVITE", &uri), 1, &a.cnonce));
        }
        m.body = leg.local_sdp.as_ref().map(Sdp::to_bytes).unwrap_or_default();
        let dest = leg.dlg.dest;
        let k = self.txs.send_request(now, m, dest, Owner::Call(id, Purpose::Invite));
        if let Some(call) = self.calls.get_mut(&id) {
            call.b_ctx = Some(k);
            let wait = Duration::from_millis(u64::from(call.cfg.sip.target_timeout_ms));
            self.heap.push(Reverse((now + wait, id, CallTimer::TargetTimeout(call.cdr.attempts.len()))));
        }
    }
}

/// A challenge to a callee-side INVITE and who answers it.
pub(crate) struct CallAuth {
    /// `Authorization` (a `401`) or `Proxy-Authorization` (a `407`).
    pub(crate) header: HName,
    /// The challenge.
    pub(crate) offer: crate::auth::client::Offer,
    /// Digest user name and password.
    pub(crate) username: String,
    /// Password.
    pub(crate) password: String,
    /// Fresh cnonce.
    pub(crate) cnonce: String,
}

/// The From URI's user of a request.
pub(crate) fn from_uri_user(req: &Message) -> Option<String> {
    req.from().and_then(|f| Uri::parse(&f.uri).ok()).and_then(|u| u.user)
}

/// The first value of a header this parser has no name for (case-insensitive).
fn other_header<'a>(req: &'a Message, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|h| matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case(name)))
        .map(|h| h.value.as_str())
}
