//! The B2BUA core, sans-IO: datagrams/frames, datapath events and `now` in; transmissions,
//! datapath commands, CDRs and journal records out. No sockets, no clock.
//!
//! `Core` keeps the `handle_*`/`poll_*` surface and dispatches: a new INVITE is turned into a
//! [`policy::IncomingCall`](crate::policy::IncomingCall) and decided by [`crate::policy`]; the call
//! mechanics in [`crate::call`] carry the decision out (setup, teardown, re-offers, transfers,
//! timers, restart).
//!
//! Every inbound INVITE becomes a call of two dialogs: slot 0 faces the caller (we are its
//! UAS), slot 1 the callee (we are its UAC). Neither side sees the other's Via, Contact, Call-ID,
//! tags, CSeq or Record-Route: each leg carries our own. The session's datapath legs follow the
//! slots (`SessionSpec.legs[0]` is the caller side).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use xtrunk_config::{Snapshot, TrunkId};
use xtrunk_ring::msg::{Command, Event, SessionId};

use crate::call::{Call, CallTimer};
use crate::cdr::Cdr;
use crate::ids::{Ids, Seed};
use crate::journal::JournalOp;
use crate::metrics::Metrics;
use crate::ports::PortPool;
use crate::sip::msg::{self, HName, Message, Method, StartLine};
use crate::sip::transaction::{
    CallKey, Incoming, Limits, Overload, Owner, Purpose, Timers, Transactions, TxEvent, TxKey,
};
use crate::transport::{stamp_via, Dest, Transmit, Transport};

pub use crate::policy::identify::by_acl as trunk_by_acl;
pub use crate::sip::preflight::preflight;
pub use crate::sip::status::{map_final, reason, response, ALLOW};

/// Longest-prefix route for `user` arriving from the trunk named `from`.
pub fn route(cfg: &Snapshot, from: &str, user: &str) -> Option<TrunkId> {
    crate::policy::routing::outbound(cfg, cfg.trunk_by_name(from)?, user)
}

/// The B2BUA.
pub struct Core {
    /// The running configuration: new calls take it, calls in progress keep the one they
    /// started with ([`Core::reload`] swaps it whole).
    pub(crate) cfg: Arc<Snapshot>,
    pub(crate) listeners: Vec<(Transport, SocketAddr)>,
    /// `format_host` of each listener, formatted once.
    pub(crate) hosts: Vec<(SocketAddr, String)>,
    pub(crate) timers: Timers,
    pub(crate) txs: Transactions,
    pub(crate) calls: HashMap<CallKey, Call>,
    /// Dialogs by `dkey(call_id, our tag)`.
    pub(crate) dialogs: HashMap<String, (CallKey, crate::call::Slot)>,
    /// The caller's INVITE server transaction → its call (CANCEL matching).
    pub(crate) invite_stx: HashMap<TxKey, CallKey>,
    pub(crate) ports: PortPool,
    /// Calls not yet confirmed (ringing, or 2xx not ACKed), per caller source IP.
    pub(crate) pending: HashMap<IpAddr, usize>,
    pub(crate) pending_delete: HashMap<SessionId, ([u16; 2], Option<Cdr>)>,
    /// Journaled calls whose `remove` waits for their CDR (written on `Deleted`).
    pub(crate) remove_on_delete: HashMap<SessionId, u64>,
    pub(crate) heap: BinaryHeap<Reverse<(Instant, CallKey, CallTimer)>>,
    pub(crate) out: VecDeque<Transmit>,
    pub(crate) media_out: VecDeque<Command>,
    pub(crate) cdr_out: VecDeque<Cdr>,
    pub(crate) journal_out: VecDeque<JournalOp>,
    /// Answered calls whose dialog state changed since last journaled (see `call/restart.rs`).
    pub(crate) journal_dirty: BTreeSet<CallKey>,
    /// Calls whose callee-side INVITE waits for the datapath's `Created`, and when the shell is
    /// to look for it next (no per-call timer: one deadline while any call waits).
    pub(crate) media_wait: usize,
    pub(crate) media_wake: Option<Instant>,
    /// Set by [`Core::shutdown`]: new INVITEs are refused `503`.
    pub(crate) draining: bool,
    /// The datapath is gone: ended calls send no Delete, their CDRs are written at once.
    pub(crate) media_lost: bool,
    /// Call numbers (internal: journal keys, session ids; never sent).
    pub(crate) next: u64,
    /// Every identifier we send (tags, branches, Call-IDs, SDP session ids).
    pub(crate) ids: Ids,
    epoch: (Instant, SystemTime),
    /// OPTIONS health of trunk targets.
    pub(crate) health: crate::health::Health,
    /// Per trunk (by name) with `distribution` other than priority: the weighted round-robin
    /// state (one entry per configured trunk at most).
    pub(crate) rotation: HashMap<String, Vec<i64>>,
    /// Admission counters and fraud tables (`crate::policy`).
    pub(crate) admission: crate::policy::Admission,
    /// INVITEs queued for their account's CPS slot (answered `100 Trying`), by start time.
    pub(crate) queued: VecDeque<crate::call::Queued>,
    /// The latest `now` seen (for work done outside a `handle_*` call, e.g. recovery).
    pub(crate) last_now: Instant,
    /// Digest authentication and the per-source ban (`crate::auth`).
    pub(crate) auth: crate::auth::Auth,
    /// Counters.
    pub metrics: Metrics,
    /// Accept-register trunks' bindings (`crate::registrar`).
    pub(crate) registrar: crate::registrar::Registrar,
    /// Register trunks' upstream registrations (`crate::upstream`).
    pub(crate) upstream: crate::upstream::Upstream,
    /// When the other edges' bindings are read next (`crate::fleet`; None: at once).
    pub(crate) fleet_next: Option<Instant>,
    /// Load shedding of new calls (`crate::overload`).
    pub(crate) overload: crate::overload::Shedder,
}

impl Core {
    /// A core for `cfg`, serving the (bound) `listeners`. `now`/`wall` anchor CDR times; `seed`
    /// keys the CSPRNG of tags, branches and Call-IDs (the shell passes [`Seed::from_os`]; a
    /// number is for repeatable tests only).
    pub fn new(
        cfg: Arc<Snapshot>,
        listeners: Vec<(Transport, SocketAddr)>,
        now: Instant,
        wall: SystemTime,
        seed: impl Into<Seed>,
    ) -> Self {
        let seed: Seed = seed.into();
        let timers = Timers::from_config(&cfg.sip.timers);
        let mut txs = Transactions::new(timers, Limits::from_config(&cfg.sip.limits));
        txs.set_agent(agent(&cfg));
        let mut health = crate::health::Health::default();
        health.sync(&cfg, now);
        let auth = crate::auth::Auth::new(&cfg, &seed, now);
        let admission = crate::policy::Admission::for_config(&cfg);
        let mut core = Self {
            auth,
            health,
            rotation: HashMap::new(),
            hosts: listeners.iter().map(|(_, a)| (*a, format_host(&cfg, *a))).collect(),
            listeners,
            timers,
            txs,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invite_stx: HashMap::new(),
            ports: PortPool::new(cfg.media.port_min, cfg.media.port_max, seed.derive(1)),
            pending: HashMap::new(),
            cfg,
            pending_delete: HashMap::new(),
            remove_on_delete: HashMap::new(),
            heap: BinaryHeap::new(),
            out: VecDeque::new(),
            media_out: VecDeque::new(),
            cdr_out: VecDeque::new(),
            journal_out: VecDeque::new(),
            journal_dirty: BTreeSet::new(),
            media_wait: 0,
            media_wake: None,
            draining: false,
            media_lost: false,
            next: 1,
            ids: Ids::new(seed),
            epoch: (now, wall),
            admission,
            queued: VecDeque::new(),
            last_now: now,
            metrics: Metrics::default(),
            registrar: crate::registrar::Registrar::default(),
            upstream: crate::upstream::Upstream::default(),
            fleet_next: None,
            overload: crate::overload::Shedder::default(),
        };
        let cfg = Arc::clone(&core.cfg);
        core.sync_upstream(&cfg, now);
        core
    }

    /// Swaps the running configuration: calls set up from now on use `cfg`, calls in progress
    /// keep the snapshot they started with. The listeners, the port pool and the transaction
    /// timers are the ones the core was built with (the caller keeps those keys as they were).
    pub fn reload(&mut self, cfg: Arc<Snapshot>) {
        let cfg = self.registrar.onto(cfg);
        self.txs.set_limits(Limits::from_config(&cfg.sip.limits));
        self.txs.set_agent(agent(&cfg));
        self.auth.reload(&cfg);
        // Probe state by target survives; new targets are due at once (the epoch is past).
        self.health.sync(&cfg, self.epoch.0);
        self.sync_upstream(&cfg, self.last_now);
        self.rotation.retain(|name, _| cfg.trunk_by_name(name).is_some());
        self.admission.reload(&self.cfg, &cfg);
        self.cfg = cfg;
    }

    /// The listeners the core was built with.
    pub fn listeners(&self) -> &[(Transport, SocketAddr)] {
        &self.listeners
    }

    /// The running configuration.
    pub fn config(&self) -> &Arc<Snapshot> {
        &self.cfg
    }

    /// OPTIONS-probed targets: (trunk, target, online), sorted.
    pub fn target_health(&self) -> Vec<(String, String, bool)> {
        let mut v: Vec<_> = self.health.states().map(|(t, (_, a), up, _)| (t.to_string(), a.to_string(), up)).collect();
        v.sort();
        v
    }

    /// Active calls.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The CDRs so far of the calls up now, at most `max` (for the admin API's call list).
    pub fn active_cdrs(&self, max: usize) -> Vec<Cdr> {
        self.calls.values().take(max).map(|c| c.cdr.clone()).collect()
    }

    /// Ends the call whose caller- or callee-side Call-ID is `call_id` (the admin API): BYE
    /// both ways when answered, else 480 to the caller and CANCEL to the callee. False when no
    /// such call is up.
    pub fn end_by_call_id(&mut self, now: Instant, call_id: &str) -> bool {
        let Some((&id, c)) =
            self.calls.iter_mut().find(|(_, c)| c.cdr.call_id == call_id || c.cdr.b_call_id == call_id)
        else {
            return false;
        };
        match c.state {
            crate::call::State::Proceeding => {
                c.cdr.end_reason = crate::cdr::EndReason::Admin;
                self.cancel_b(now, id, 480);
            }
            crate::call::State::Cancelling => {}
            _ => self.end_call(now, id, crate::cdr::EndReason::Admin),
        }
        true
    }

    /// Calls up now, by inbound trunk (for `/metrics`).
    pub fn active_by_trunk(&self) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for c in self.calls.values() {
            if let Some(n) = m.get_mut(&c.cdr.trunk_in) {
                *n += 1;
            } else {
                m.insert(c.cdr.trunk_in.clone(), 1);
            }
        }
        m
    }

    /// The port pool.
    pub fn ports(&self) -> &PortPool {
        &self.ports
    }

    /// Live transactions (server, client).
    pub fn transactions(&self) -> (usize, usize) {
        self.txs.len()
    }

    /// Sessions whose Delete is not yet confirmed.
    pub fn pending_deletes(&self) -> usize {
        self.pending_delete.len()
    }

    /// Nothing left to finish: no call, no Delete unconfirmed, no request of ours unanswered.
    pub fn drained(&self) -> bool {
        self.calls.is_empty() && self.pending_delete.is_empty() && self.txs.len().1 == 0
    }

    pub(crate) fn unix_ms(&self, now: Instant) -> u64 {
        let t = self.epoch.1 + now.saturating_duration_since(self.epoch.0);
        t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    /// A fresh unguessable token (tag, branch suffix, Call-ID).
    pub(crate) fn token(&mut self) -> String {
        self.ids.token()
    }

    pub(crate) fn listener(&self, t: Transport) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(lt, _)| *lt == t)
            .or(self.listeners.first())
            .map_or(SocketAddr::from(([127, 0, 0, 1], 5060)), |(_, a)| *a)
    }

    /// The listener requests to `trunk` leave from over `t`: its `sip_listen` when that is a
    /// listener of `t`, else the first listener of `t` (the SBC realm's SIP interface).
    pub(crate) fn listener_for(&self, trunk: &xtrunk_config::TrunkView, t: Transport) -> SocketAddr {
        trunk
            .sip_listen
            .and_then(|a| {
                self.listeners.iter().find(|(lt, la)| *lt == t && (*la == a || (a.port() == 0 && la.ip() == a.ip())))
            })
            .map_or_else(|| self.listener(t), |(_, a)| *a)
    }

    pub(crate) fn host_of(&self, local: SocketAddr) -> Cow<'_, str> {
        cached_host(&self.hosts, &self.cfg, local)
    }

    /// Our host toward `remote` from listener `local`: [`Core::host_of`], or the listener's own
    /// address when the peer's trunk says `sip_address = "private"` (or `auto` and the peer's
    /// address is not global).
    pub(crate) fn host_to(&self, local: SocketAddr, remote: SocketAddr) -> Cow<'_, str> {
        if self.private_toward(remote) {
            return Cow::Owned(crate::call::uri_host(local));
        }
        self.host_of(local)
    }

    fn private_toward(&self, remote: SocketAddr) -> bool {
        use xtrunk_config::SipAddress;
        if !self.cfg.trunks.iter().any(|t| t.sip_address != SipAddress::Public) {
            return false;
        }
        // The trunk with a target at exactly `remote`, else the one whose ACL holds it.
        let by_target = self.cfg.trunks.iter().find(|t| t.targets.iter().any(|x| x.addr == remote)).map(|t| t.id);
        let Some(t) = by_target.or_else(|| crate::policy::identify::by_acl(&self.cfg, remote.ip())) else {
            return false;
        };
        match self.cfg.trunk(t).sip_address {
            SipAddress::Public => false,
            SipAddress::Private => true,
            SipAddress::Auto => !crate::transport::is_global(remote.ip()),
        }
    }

    pub(crate) fn via(&mut self, d: Dest) -> String {
        let token = self.token();
        let host = self.host_to(d.local, d.remote);
        let mut v = String::with_capacity(40 + host.len() + token.len());
        v.push_str("SIP/2.0/");
        v.push_str(d.transport.via_token());
        v.push(' ');
        v.push_str(&host);
        v.push_str(";branch=z9hG4bK");
        v.push_str(&token);
        v.push_str(";rport");
        v
    }

    /// Our Contact for a flow.
    pub(crate) fn contact(&self, d: Dest) -> String {
        self.contact_as(d, false)
    }

    /// Our Contact toward `d`; `sips`: the peer's dialog began with a `sips:` URI (RFC 3261
    /// §12.1.1, RFC 5630), so over TLS it is `sips:` (without the deprecated
    /// `;transport=tls`).
    pub(crate) fn contact_as(&self, d: Dest, sips: bool) -> String {
        let host = self.host_to(d.local, d.remote);
        let secure = sips && d.transport == Transport::Tls;
        let tp = if secure { "" } else { d.transport.uri_param() };
        let mut c = String::with_capacity(16 + host.len() + tp.len());
        c.push_str(if secure { "<sips:xtrunk@" } else { "<sip:xtrunk@" });
        c.push_str(&host);
        c.push_str(tp);
        c.push('>');
        c
    }

    // ------------------------------------------------------------------ inputs

    /// One datagram (UDP) or frame (TCP) arrived from `src.remote` on listener `src.local`.
    pub fn handle_input(&mut self, now: Instant, src: Dest, data: &[u8]) {
        self.last_now = now;
        self.overload.note_input();
        let max = self.cfg.sip.max_message_bytes;
        let oversize = data.len() > max;
        let msg = match msg::parse(data) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.bad(e.reason, || format!("from {}", src.remote));
                if e.is_request {
                    self.stateless_error(src, &e.headers, e.code, e.reason);
                }
                return;
            }
        };
        if oversize {
            self.metrics.bad("Message Too Large", || format!("{} bytes from {}", data.len(), src.remote));
            if msg.method().is_some() {
                self.stateless_error(src, &msg.headers, 513, "Message Too Large");
            }
            return;
        }
        match msg.start {
            StartLine::Response { .. } => {
                if msg.top_via_ref().is_none() || msg.cseq().is_none() {
                    self.metrics.bad("Malformed Response", || format!("from {}", src.remote));
                    return;
                }
                self.txs.on_response(now, msg);
            }
            StartLine::Request { .. } => self.on_request(now, src, msg),
        }
        self.pump(now);
    }

    fn stateless_error(&mut self, src: Dest, headers: &[msg::Header], code: u16, phrase: &str) {
        if !headers.iter().any(|h| h.name == HName::Via) {
            // Not enough to answer: drop (already counted).
            return;
        }
        let start = StartLine::Request { method: Method::Options, uri: String::new(), version: String::new() };
        let mut req = Message { start, headers: headers.to_vec(), body: Vec::new() };
        let Some(dest) = self.stamp(&mut req, src) else { return };
        let tag = self.token();
        let r = response(&req, code, phrase, Some(&tag));
        let data = r.to_bytes_with(Some(("Server", agent(&self.cfg))).filter(|(_, a)| !a.is_empty()));
        self.out.push_back(Transmit { dest, data });
    }

    /// [`stamp_via`], counting a Via whose transport is not the one the request came on.
    fn stamp(&mut self, req: &mut Message, src: Dest) -> Option<Dest> {
        let (dest, mismatch) = stamp_via(req, src)?;
        if mismatch {
            let t = req.top_via_ref().map(|v| v.transport.to_ascii_uppercase()).unwrap_or_default();
            self.metrics.bad("Via Transport Mismatch", || format!("{t} via {}", src.remote));
        }
        Some(dest)
    }

    fn on_request(&mut self, now: Instant, src: Dest, mut req: Message) {
        if req.header(&HName::Via).is_none() {
            self.metrics.bad("Missing Via", || format!("from {}", src.remote));
            return;
        }
        if self.banned(src.remote.ip(), now) {
            return;
        }
        let Some(reply) = self.stamp(&mut req, src) else { return };
        let method = req.method().cloned().unwrap_or(Method::Options);
        let trunk = crate::policy::identify::by_source(&self.cfg, src.remote.ip()).is_some();
        match self.txs.on_request(now, &req, reply, trunk) {
            Incoming::Absorbed => {}
            Incoming::Ack => self.on_ack(now, &req, src),
            Incoming::Refused(Overload::Source) => {
                self.metrics.bad("Transaction Limit (source)", || format!("{method} from {}", src.remote));
            }
            Incoming::Refused(Overload::Total) => {
                self.metrics.bad("Transaction Limit (total)", || format!("{method} from {}", src.remote));
                let tag = self.token();
                let mut r = response(&req, 503, reason(503), Some(&tag));
                r.push(HName::Other("Retry-After".into()), "5");
                let data = r.to_bytes_with(Some(("Server", agent(&self.cfg))).filter(|(_, a)| !a.is_empty()));
                self.out.push_back(Transmit { dest: reply, data });
            }
            Incoming::New(k) => {
                if let Some((code, phrase, extra)) = preflight(&req) {
                    self.metrics.bad(phrase, || format!("{method} from {}", src.remote));
                    let tag = self.token();
                    let mut r = response(&req, code, phrase, Some(&tag));
                    if let Some((n, v)) = extra {
                        r.push(n, v);
                    }
                    self.txs.respond(now, &k, &r);
                    return;
                }
                if src.transport != Transport::Tls && req.uri().is_some_and(crate::call::is_sips) {
                    // RFC 5630: a SIPS Request-URI asks for TLS on every hop; one that came
                    // over UDP or TCP is refused, never served in the clear.
                    self.metrics
                        .bad("SIPS Without TLS", || format!("{method} over {:?} from {}", src.transport, src.remote));
                    self.reply(now, &k, &req, 480, "SIPS Needs TLS");
                    return;
                }
                if req.to_tag().is_some() {
                    self.in_dialog(now, k, req, src);
                    return;
                }
                match method {
                    Method::Invite => self.on_invite(now, k, req, src),
                    Method::Options => self.on_options(now, k, &req, src, trunk),
                    Method::Register => self.on_register(now, k, &req, src),
                    Method::Cancel => self.on_cancel(now, k, req, src),
                    _ if !trunk => self.unknown_request(now, k, &req, src),
                    Method::Bye | Method::Update | Method::Refer => self.reply(now, &k, &req, 481, reason(481)),
                    _ => self.reply(now, &k, &req, 405, reason(405)),
                }
            }
        }
    }

    /// Out-of-dialog OPTIONS: `200` to trunks (keepalive both ways); outsiders only when
    /// `sip.limits.answer_unknown_options` (else dropped and counted: scanners learn nothing).
    fn on_options(&mut self, now: Instant, k: TxKey, req: &Message, src: Dest, known: bool) {
        if !known && self.cfg.sip.limits.answer_unknown_options {
            self.count_failure(src.remote.ip(), now);
        }
        if known || self.cfg.sip.limits.answer_unknown_options {
            // RFC 3261 §11.2: what we accept and allow, so the peer's keepalive learns it.
            let tag = self.token();
            let mut r = response(req, 200, "OK", Some(&tag));
            r.push(HName::Allow, ALLOW).push(HName::Accept, "application/sdp");
            return self.txs.respond(now, &k, &r);
        }
        self.count_failure(src.remote.ip(), now);
        self.metrics.bad("OPTIONS From Unknown Source", || src.remote.to_string());
        self.txs.forget_server(&k);
    }

    /// The `tracing` span of call `id` (a disabled one when it is gone).
    pub(crate) fn span_of(&self, id: CallKey) -> tracing::Span {
        self.calls.get(&id).map_or_else(tracing::Span::none, |c| c.span.clone())
    }

    /// Answers a server transaction with a fresh To tag.
    pub(crate) fn reply(&mut self, now: Instant, k: &TxKey, req: &Message, code: u16, phrase: &str) {
        let tag = self.token();
        let r = response(req, code, phrase, Some(&tag));
        self.txs.respond(now, k, &r);
    }

    // ------------------------------------------------------------------ transaction events

    pub(crate) fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.txs.poll_event() {
            match ev {
                TxEvent::Response { owner: Owner::Call(id, p), key, msg } => {
                    let _span = self.span_of(id).entered();
                    self.on_response(now, id, p, key, msg)
                }
                TxEvent::Timeout { owner: Owner::Call(id, p), key } => {
                    let _span = self.span_of(id).entered();
                    self.on_tx_timeout(now, id, p, key)
                }
                TxEvent::AckTimeout { owner: Owner::Call(id, _) } => {
                    let _span = self.span_of(id).entered();
                    self.ack_timeout(now, id)
                }
                TxEvent::Response { owner: Owner::Probe, key, msg } => {
                    self.probe_outcome(now, &key, msg.code().unwrap_or(500))
                }
                TxEvent::Timeout { owner: Owner::Probe, key } => self.probe_outcome(now, &key, 408),
                TxEvent::AckTimeout { owner: Owner::Probe | Owner::Registration } => {}
                TxEvent::Response { owner: Owner::Registration, key, msg } => {
                    self.registration_outcome(now, &key, Some(&msg))
                }
                TxEvent::Timeout { owner: Owner::Registration, key } => self.registration_outcome(now, &key, None),
                TxEvent::Response { owner: Owner::Orphan, .. }
                | TxEvent::Timeout { owner: Owner::Orphan, .. }
                | TxEvent::AckTimeout { owner: Owner::Orphan } => {}
            }
        }
    }

    fn on_tx_timeout(&mut self, now: Instant, id: CallKey, p: Purpose, key: TxKey) {
        match p {
            Purpose::Invite => self.b_final(now, id, key, None),
            Purpose::ReOffer => self.reoffer_final(now, id, 408, None),
            Purpose::TransferInvite => self.transfer_final(now, id, 408, None),
            Purpose::Refresh(s) => self.refresh_result(now, id, s, 408),
            Purpose::FaxFallback(g) => self.fax_fallback_final(id, g, 408, None),
            // A BYE that timed out: the call is already finished.
            _ => {}
        }
    }

    fn on_response(&mut self, now: Instant, id: CallKey, p: Purpose, key: TxKey, msg: Message) {
        let code = msg.code().unwrap_or(500);
        match p {
            Purpose::Invite => self.b_response(now, id, key, msg),
            Purpose::ReOffer if code >= 200 => self.reoffer_final(now, id, code, Some(msg)),
            Purpose::Refresh(s) if code >= 200 => self.refresh_result(now, id, s, code),
            Purpose::FaxFallback(g) if code >= 200 => self.fax_fallback_final(id, g, code, Some(msg)),
            Purpose::TransferInvite if code >= 200 => {
                if !self.calls.contains_key(&id) {
                    if code < 300 {
                        self.orphan_2xx(now, &key, &msg);
                    }
                    return;
                }
                self.transfer_final(now, id, code, Some(msg));
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ timers, media

    /// Runs timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.media_wake.is_some_and(|t| t <= now) {
            self.media_wake = (self.media_wait > 0).then(|| now + crate::call::MEDIA_WAKE);
        }
        self.txs.on_timeout(now);
        self.pump(now);
        self.run_probes(now);
        self.run_upstream(now);
        self.admission.store.tick(now);
        self.expire_registrations(now);
        if self.admission.store.shared_status().is_some() {
            self.poll_fleet(now);
        }
        while let Some(Reverse((at, id, kind))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            self.call_timer(now, id, kind);
        }
        self.start_queued(now);
        self.pump(now);
    }

    /// Admission state, for tests and the metrics endpoint: (live channel leases, fraud entries).
    pub fn admission_tables(&self) -> (usize, usize) {
        (self.admission.store.leases(), self.admission.fraud.len())
    }

    /// An event from the datapath.
    pub fn handle_media_event(&mut self, now: Instant, ev: Event) {
        self.media_event(now, ev);
        self.pump(now);
    }

    // ------------------------------------------------------------------ outputs

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front().or_else(|| self.txs.poll_transmit())
    }

    /// Next datapath command.
    pub fn poll_media(&mut self) -> Option<Command> {
        self.media_out.pop_front()
    }

    /// Puts back a command the datapath refused for backpressure (sent first next time).
    pub fn unpoll_media(&mut self, c: Command) {
        self.metrics.media_backpressure += 1;
        self.media_out.push_front(c);
    }

    /// Next finished CDR.
    pub fn poll_cdr(&mut self) -> Option<Cdr> {
        self.cdr_out.pop_front()
    }

    /// Next journal operation.
    pub fn poll_journal(&mut self) -> Option<JournalOp> {
        self.flush_journal_dirty();
        self.journal_out.pop_front()
    }

    /// The earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.txs.poll_timeout();
        let b = self.heap.peek().map(|Reverse((t, _, _))| *t);
        let c = self.media_wake.filter(|_| self.media_wait > 0);
        let d = self.queued.iter().map(|q| q.at).min();
        [
            a,
            b,
            c,
            d,
            self.health.next_deadline(),
            self.upstream.next_deadline(),
            self.admission.store.next_tick(),
            self.fleet_next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Transport failure towards `remote` (TCP connect refused/reset).
    pub fn handle_transport_error(&mut self, now: Instant, remote: SocketAddr) {
        self.txs.on_transport_error(remote);
        self.pump(now);
    }
}

/// `Server`/`User-Agent`: `node.name` with `sip.server_header`, else none (empty).
fn agent(cfg: &Snapshot) -> &str {
    if cfg.sip.server_header {
        &cfg.node.name
    } else {
        ""
    }
}

/// Our `host:port` for a listener address (Via sent-by, Contact): `advertised_host` or the IP.
fn format_host(cfg: &Snapshot, local: SocketAddr) -> String {
    let own = cfg.sip.listen.iter().find(|l| {
        l.addr.ip() == local.ip() && (l.addr.port() == local.port() || l.addr.port() == 0) && l.advertised.is_some()
    });
    match own.and_then(|l| l.advertised.as_ref()).or(cfg.sip.advertised_host.as_ref()) {
        Some(h) => format!("{h}:{}", local.port()),
        None => match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]:{}", local.port()),
            IpAddr::V4(ip) => format!("{ip}:{}", local.port()),
        },
    }
}

/// [`format_host`], from the per-listener strings formatted once at construction.
fn cached_host<'a>(hosts: &'a [(SocketAddr, String)], cfg: &Snapshot, local: SocketAddr) -> Cow<'a, str> {
    match hosts.iter().find(|(a, _)| *a == local) {
        Some((_, h)) => Cow::Borrowed(h.as_str()),
        None => Cow::Owned(format_host(cfg, local)),
    }
}
