//! Call setup: the caller's INVITE is decided by policy, then carried out here — SDP negotiated
//! on each leg, relay ports taken, the datapath session created, both dialogs built and the
//! INVITE sent to the route's first target.

use std::cmp::Reverse;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xtrunk_config::{Snapshot, TrunkId};

use xtrunk_ring::msg::{Command, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec, SrtpKeys};

use super::{
    common_codecs, dkey, latch_of, remote_spec, srtp_prefs, uri_host, user_of, Call, CallTimer, Leg, Slot, State,
};
use crate::b2bua::Core;
use crate::cdr::{Cdr, EndReason};
use crate::policy::{self, Decision, IncomingCall, RoutePlan};
use crate::sdp::{self, Origin, Rewrite, SdesLine, Sdp};
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
        let user = user_of(req.uri().unwrap_or(""));
        let from_uri = req.from().and_then(|f| Uri::parse(&f.uri).ok());
        let view = IncomingCall {
            source: src.remote,
            local: src.local,
            transport: src.transport,
            user: &user,
            from_user: from_uri.as_ref().and_then(|u| u.user.as_deref()),
            pai: other_header(&req, "P-Asserted-Identity"),
            has_offer: !req.body.is_empty(),
        };
        match policy::admit(&self.cfg, &view, now) {
            Decision::Route(plan) => self.start_call(now, k, req, src, plan, user),
            Decision::Reject(r) => {
                if r.why == policy::RejectReason::UnknownSource {
                    self.metrics.bad("Forbidden (no ACL match)", || src.remote.to_string());
                }
                self.reject_invite(now, &k, &req, r.why.code(), r.why.phrase(), r.trunk, r.why.end_reason());
            }
            // No policy step challenges yet; refuse rather than guess at a realm.
            Decision::Challenge { .. } => {
                self.reject_invite(now, &k, &req, 403, "Forbidden", None, EndReason::Rejected)
            }
        }
    }

    fn start_call(&mut self, now: Instant, k: TxKey, req: Message, src: Dest, plan: RoutePlan, user: String) {
        let cfg = Arc::clone(&self.cfg);
        let (tin, tout) = (plan.inbound, plan.entries[0]);
        let Some(n) = self.negotiate(now, &k, &req, src, &cfg, tin, tout) else { return };
        let id = self.next_call();
        let session = SessionId(id.0);
        let spec = session_spec(&cfg, session, &n, tin, tout, src.remote.ip());
        self.media_out.push_back(Command::Create(spec));
        let leg_a = self.caller_leg(&req, src, tin, n.ports[0], n.offer.clone());
        let leg_b = self.callee_leg(&req, &cfg, tout, n.ports[1], n.b_origin, n.b_sdp);
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
            b_waits_media: true,
            pending_src: Some(src.remote.ip()),
            cancel_sent: false,
            targets_tried: 0,
            user,
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
        let offer = match Sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                // Malformed: 400 Bad SDP; over the size limits: 488 with a Warning.
                self.metrics.bad(e.status().1, || src.remote.to_string());
                self.reject_offer(now, k, req, e, src.local, tin);
                return None;
            }
        };
        // SDES on the caller's leg (RFC 4568): the line we accept and our own key for the answer.
        let a_srtp = sdp::accept_offer(&offer, &srtp_prefs(cfg.trunk(tin)))
            .and_then(|l| l.map(|l| Ok((l, sdp::fresh_keys(l.keys.suite)?))).transpose());
        let a_srtp = match a_srtp {
            Ok(c) => c,
            Err(e) => {
                self.reject_offer(now, k, req, e, src.local, tin);
                return None;
            }
        };
        let allowed = common_codecs(cfg.trunk(tout), cfg.trunk(tin));
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
        let srtp_off = cfg.trunk(tin).srtp == xtrunk_config::SrtpPolicy::Off;
        let rw = Rewrite { ip: cfg.trunk(tout).media_ip, port: pb, allowed: &allowed, srtp_off };
        // The callee's leg is keyed on its own: SRTP offered by its trunk's policy, fresh keys.
        let b_prefs = srtp_prefs(cfg.trunk(tout));
        let b_sdp = sdp::rewrite_offer(&offer, &rw, &mut b_origin).and_then(|mut s| {
            if b_prefs.offer_srtp(false) {
                sdp::add_offer_crypto(&mut s, &b_prefs.suites, None)?;
            }
            Ok(s)
        });
        match b_sdp {
            Ok(b_sdp) => Some(Negotiated { offer, a_srtp, b_sdp, b_origin, ports: [pa, pb] }),
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
            };
            remote_spec(&none, local0, latch_of(cfg.trunk(tin)), Some(a_ip))
        }
    };
    leg0.crypto = LegCrypto { rx: n.a_srtp.map(|(l, _)| l.keys), tx: n.a_srtp.map(|(_, ours)| ours) };
    let leg1 = LegSpec {
        local: SocketAddr::new(bind, n.ports[1]),
        remote: None,
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: latch_of(cfg.trunk(tout)),
        signal_ip: cfg.trunk(tout).targets.first().map(|t| t.addr.ip()),
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
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
    fn callee_leg(&mut self, req: &Message, cfg: &Snapshot, tout: TrunkId, port: u16, origin: Origin, sdp: Sdp) -> Leg {
        let b_tag = self.token();
        let b_call_id = self.token();
        let from_user = from_uri_user(req).unwrap_or_else(|| "anonymous".into());
        // The caller's display name goes across only without control characters (the parser
        // admits them as quoted-pairs; the carrier's parser may not).
        let display = req.from().and_then(|f| f.display).filter(|d| !d.bytes().any(|b| b < 0x20 || b == 0x7f));
        let display = display.map(|d| format!("{d} ")).unwrap_or_default();
        let t = cfg.trunk(tout).targets[0].clone();
        let local = self.listener_for(cfg.trunk(tout), t.transport.into());
        let dlg = Dialog {
            call_id: b_call_id,
            local_hdr: format!("{display}<sip:{from_user}@{}>;tag={b_tag}", self.host_of(local)),
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
        let trunk = call.cfg.trunk(call.legs[1].trunk);
        let Some(t) = trunk.targets.get(call.targets_tried).cloned() else { return };
        let tr: Transport = t.transport.into();
        let local = self.listener_for(trunk, tr);
        let via = self.via(tr, local);
        let contact = self.contact(Dest { transport: tr, local, remote: local });
        let call = self.calls.get_mut(&id).expect("checked");
        call.targets_tried += 1;
        call.b_provisional = false;
        let leg = &mut call.legs[1];
        leg.dlg.local_cseq += 1;
        leg.dlg.dest = Dest { transport: tr, local, remote: t.addr };
        let tp = if tr == Transport::Udp { "" } else { ";transport=tcp" };
        let host = uri_host(t.addr);
        let mut m = Message::request(Method::Invite, format!("sip:{}@{host}{tp}", call.user));
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
        m.body = leg.local_sdp.as_ref().map(Sdp::to_bytes).unwrap_or_default();
        let dest = leg.dlg.dest;
        let k = self.txs.send_request(now, m, dest, Owner::Call(id, Purpose::Invite));
        if let Some(call) = self.calls.get_mut(&id) {
            call.b_ctx = Some(k);
            let wait = Duration::from_millis(u64::from(call.cfg.sip.target_timeout_ms));
            self.heap.push(Reverse((now + wait, id, CallTimer::TargetTimeout(call.targets_tried))));
        }
    }
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
