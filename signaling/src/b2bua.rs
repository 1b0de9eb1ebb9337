//! The B2BUA core, sans-IO: datagrams/frames, datapath events and `now` in; transmissions,
//! datapath commands, CDRs and journal records out. No sockets, no clock.
//!
//! Every inbound INVITE becomes a [`Call`] of two dialogs: slot 0 faces the caller (we are its
//! UAS), slot 1 the callee (we are its UAC). Neither side sees the other's Via, Contact, Call-ID,
//! tags, CSeq or Record-Route: each leg carries our own. The session's datapath legs follow the
//! slots (`SessionSpec.legs[0]` is the caller side).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xtrunk_config::Config;
use xtrunk_ring::msg::{
    Command, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec,
};

use crate::cdr::{Cdr, LegStats};
use crate::journal::JournalOp;
use crate::metrics::Metrics;
use crate::ports::PortPool;
use crate::sdp::{self, Origin, Rewrite, Sdp, SdpError};
use crate::sip::msg::{self, HName, Message, Method, NameAddr, StartLine, Uri};
use crate::sip::transaction::{server_key, Incoming, Owner, Timers, Transactions, TxEvent, TxKey};
use crate::transport::{Dest, Transmit, Transport};

mod restart;

/// Methods we answer (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, REFER";

// Owner purposes of client transactions.
const P_INVITE: u32 = 1;
const P_CANCEL: u32 = 2;
const P_BYE: u32 = 3;
const P_REOFFER: u32 = 4;
const P_NOTIFY: u32 = 5;
const P_XFER_INVITE: u32 = 6;
const P_A_2XX: u32 = 7;
const P_REOFFER_2XX: u32 = 8;

/// One dialog of a call.
#[derive(Clone, Debug)]
struct Leg {
    call_id: String,
    local_tag: String,
    /// Our From (UAC) / To (UAS) header value, tag included.
    local_hdr: String,
    /// The peer's header value, tag included once known.
    remote_hdr: String,
    remote_tag: String,
    local_cseq: u32,
    /// The peer's last CSeq (journaled; not yet checked, RFC 3261 §12.2.2).
    remote_cseq: u32,
    remote_target: String,
    route_set: Vec<String>,
    /// Where in-dialog requests go.
    dest: Dest,
    trunk: usize,
    /// Relay port facing this leg.
    port: u16,
    origin: Origin,
    /// The last SDP this leg sent us.
    remote_sdp: Option<Sdp>,
    /// The last SDP we sent this leg.
    local_sdp: Option<Sdp>,
    /// A 2xx to this leg's (re-)INVITE awaiting its ACK.
    pending_2xx: Option<TxKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outbound INVITE in progress.
    Proceeding,
    /// 2xx sent to the caller, waiting for its ACK.
    Answered,
    /// Both dialogs confirmed.
    Confirmed,
    /// The caller cancelled (or no answer); waiting for the callee's final.
    Cancelling,
}

struct ReOffer {
    req: Message,
    from: usize,
    stx: TxKey,
    method: Method,
    offer: Sdp,
}

struct Transfer {
    /// The slot being replaced (the transferor).
    slot: usize,
    leg: Leg,
    invite: Option<TxKey>,
    ack: Option<Transmit>,
}

struct Call {
    state: State,
    legs: [Leg; 2],
    /// The caller's INVITE.
    a_invite: Message,
    a_stx: TxKey,
    b_ctx: Option<TxKey>,
    b_ack: Option<Transmit>,
    b_provisional: bool,
    cancel_sent: bool,
    targets_tried: usize,
    user: String,
    session: SessionId,
    spec: SessionSpec,
    created: bool,
    a_offer: Sdp,
    early_answer: Option<Sdp>,
    reoffer: Option<ReOffer>,
    transfer: Option<Transfer>,
    /// Dialogs of released legs (a transferor), answered 200 to BYE.
    released: Vec<(String, String)>,
    cdr: Cdr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Live(usize),
    Transfer,
    Released,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum CallTimer {
    NoAnswer,
    Guard,
}

/// The B2BUA.
pub struct Core {
    cfg: Config,
    listeners: Vec<(Transport, SocketAddr)>,
    /// `format_host` of each listener, formatted once.
    hosts: Vec<(SocketAddr, String)>,
    timers: Timers,
    txs: Transactions,
    calls: HashMap<u64, Call>,
    dialogs: HashMap<String, (u64, Slot)>,
    invite_stx: HashMap<TxKey, u64>,
    ports: PortPool,
    pending_delete: HashMap<SessionId, ([u16; 2], Option<Cdr>)>,
    heap: BinaryHeap<Reverse<(Instant, u64, CallTimer)>>,
    out: VecDeque<Transmit>,
    media_out: VecDeque<Command>,
    cdr_out: VecDeque<Cdr>,
    journal_out: VecDeque<JournalOp>,
    /// Answered calls whose dialog state changed since last journaled (see `restart.rs`).
    journal_dirty: BTreeSet<u64>,
    next: u64,
    seed: u64,
    epoch: (Instant, SystemTime),
    /// Counters.
    pub metrics: Metrics,
}

fn dkey(call_id: &str, local_tag: &str) -> String {
    let mut k = String::with_capacity(call_id.len() + local_tag.len() + 1);
    k.push_str(call_id);
    k.push('|');
    k.push_str(local_tag);
    k
}

/// Longest-prefix route for `user` arriving from trunk `from`.
pub fn route(cfg: &Config, from: &str, user: &str) -> Option<usize> {
    let r = cfg
        .routes
        .iter()
        .filter(|r| r.from_trunk.as_deref().map_or(true, |t| t == from))
        .filter(|r| user.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len())?;
    cfg.trunks.iter().position(|t| t.name == r.trunk)
}

/// The trunk whose ACL holds `ip`.
pub fn trunk_by_acl(cfg: &Config, ip: IpAddr) -> Option<usize> {
    cfg.trunks.iter().position(|t| t.acl.iter().any(|n| n.contains(&ip)))
}

/// The caller-facing code for a callee's final response.
pub fn map_final(code: u16) -> u16 {
    match code {
        300..=399 => 480,
        401 | 407 => 403,
        400..=699 => {
            const KNOWN: &[u16] = &[
                400, 403, 404, 405, 406, 408, 410, 413, 414, 415, 416, 420, 421, 423, 480, 481, 482,
                483, 484, 485, 486, 487, 488, 491, 493, 500, 501, 502, 503, 504, 505, 513, 600, 603,
                604, 606,
            ];
            if KNOWN.contains(&code) {
                code
            } else {
                code / 100 * 100
            }
        }
        _ => 500,
    }
}

/// The standard reason phrase.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Status",
    }
}

/// Builds a response to `req` (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied; To copied with
/// `to_tag` added when it has none.
pub fn response(req: &Message, code: u16, phrase: &str, to_tag: Option<&str>) -> Message {
    let mut r = Message {
        start: StartLine::Response { code, reason: phrase.to_string() },
        headers: Vec::new(),
        body: Vec::new(),
    };
    for h in &req.headers {
        match h.name {
            HName::Via | HName::From | HName::CallId | HName::CSeq => r.headers.push(h.clone()),
            HName::To => {
                let mut v = h.value.clone();
                if let Some(t) = to_tag {
                    if code > 100 && NameAddr::parse(&v).map_or(false, |n| n.tag().is_none()) {
                        v.push_str(";tag=");
                        v.push_str(t);
                    }
                }
                r.headers.push(msg::Header { name: HName::To, value: v });
            }
            _ => {}
        }
    }
    if code == 405 || (code == 200 && req.method() == Some(&Method::Options)) {
        r.push(HName::Allow, ALLOW);
    }
    r
}

/// Application-level checks of a request before any processing: the status to refuse it with.
/// Also used by the RFC 4475 tests.
pub fn preflight(req: &Message) -> Option<(u16, &'static str, Option<(HName, String)>)> {
    for n in [HName::From, HName::To, HName::CallId, HName::CSeq] {
        if req.header(&n).is_none() {
            return Some((
                400,
                match n {
                    HName::From => "Missing From",
                    HName::To => "Missing To",
                    HName::CallId => "Missing Call-ID",
                    _ => "Missing CSeq",
                },
                None,
            ));
        }
    }
    if req.header(&HName::MaxForwards) == Some("0") || req.header(&HName::MaxForwards).map_or(false, |v| v.trim_start_matches('0').is_empty()) {
        if req.method() != Some(&Method::Ack) {
            return Some((483, "Too Many Hops", None));
        }
    }
    let uri = req.uri().unwrap_or("");
    let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Some((416, "Unsupported URI Scheme", None));
    }
    let m = req.method()?;
    if !matches!(m, Method::Ack | Method::Cancel) {
        let unknown: Vec<&str> = req
            .headers_of(&HName::Require)
            .chain(req.headers_of(&HName::ProxyRequire))
            .filter(|t| !t.is_empty())
            .collect();
        if !unknown.is_empty() {
            return Some((420, "Bad Extension", Some((HName::Unsupported, unknown.join(", ")))));
        }
    }
    if matches!(m, Method::Invite | Method::Update) {
        if !req.body.is_empty() {
            let ct = req.header(&HName::ContentType).unwrap_or("");
            let ct = ct.split(';').next().unwrap_or("").trim();
            if !ct.eq_ignore_ascii_case("application/sdp") {
                return Some((415, "Unsupported Media Type", Some((HName::Accept, "application/sdp".into()))));
            }
        }
        let accepts: Vec<&str> = req.headers_of(&HName::Accept).collect();
        if !accepts.is_empty()
            && !accepts.iter().any(|a| {
                let a = a.split(';').next().unwrap_or("").trim();
                a.eq_ignore_ascii_case("application/sdp") || a == "*/*" || a.eq_ignore_ascii_case("application/*")
            })
        {
            return Some((406, "Not Acceptable", Some((HName::Accept, "application/sdp".into()))));
        }
    }
    None
}

fn user_of(uri: &str) -> String {
    if let Ok(u) = Uri::parse(uri) {
        return u.user.unwrap_or_default();
    }
    if let Some(t) = uri.strip_prefix("tel:") {
        return t.split(';').next().unwrap_or("").to_string();
    }
    String::new()
}

/// Resolves a URI to a socket address when its host is an IP literal.
fn uri_addr(uri: &str) -> Option<(SocketAddr, Option<Transport>)> {
    let u = Uri::parse(uri).ok()?;
    let ip: IpAddr = u.host.parse().ok()?;
    let t = u.transport().and_then(|t| Transport::from_token(&t));
    let port = u.port.unwrap_or(if u.scheme == "sips" { 5061 } else { 5060 });
    Some((SocketAddr::new(ip, port), t))
}

fn remote_spec(r: &sdp::Remote, local: SocketAddr, latch: LatchPolicy) -> LegSpec {
    LegSpec {
        local,
        remote: r.addr,
        remote_rtcp_port: r.rtcp_port,
        rtcp_mux: r.rtcp_mux,
        latch,
        pt_map: r.pt_map(),
        crypto: LegCrypto::default(),
    }
}

impl Core {
    /// A core for `cfg`, serving the (bound) `listeners`. `now`/`wall` anchor CDR times; `seed`
    /// makes tags, branches and Call-IDs unpredictable.
    pub fn new(cfg: &Config, listeners: Vec<(Transport, SocketAddr)>, now: Instant, wall: SystemTime, seed: u64) -> Self {
        let timers = Timers::from_config(&cfg.sip.timers);
        Self {
            cfg: cfg.clone(),
            hosts: listeners.iter().map(|(_, a)| (*a, format_host(cfg, *a))).collect(),
            listeners,
            timers,
            txs: Transactions::new(timers),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            invite_stx: HashMap::new(),
            ports: PortPool::new(cfg.media.port_min, cfg.media.port_max),
            pending_delete: HashMap::new(),
            heap: BinaryHeap::new(),
            out: VecDeque::new(),
            media_out: VecDeque::new(),
            cdr_out: VecDeque::new(),
            journal_out: VecDeque::new(),
            journal_dirty: BTreeSet::new(),
            next: 1,
            seed,
            epoch: (now, wall),
            metrics: Metrics::default(),
        }
    }

    /// Active calls.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
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

    fn unix_ms(&self, now: Instant) -> u64 {
        let t = self.epoch.1 + now.saturating_duration_since(self.epoch.0);
        t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    fn token(&mut self) -> String {
        self.next += 1;
        let x = self.seed ^ self.next.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{:x}{:x}", x & 0xffff_ffff_ffff, self.next)
    }

    fn listener(&self, t: Transport) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(lt, _)| *lt == t)
            .or(self.listeners.first())
            .map_or(SocketAddr::from(([127, 0, 0, 1], 5060)), |(_, a)| *a)
    }

    fn host_of(&self, local: SocketAddr) -> Cow<'_, str> {
        cached_host(&self.hosts, &self.cfg, local)
    }

    fn via(&mut self, t: Transport, local: SocketAddr) -> String {
        let token = self.token();
        let host = self.host_of(local);
        let mut v = String::with_capacity(40 + host.len() + token.len());
        v.push_str("SIP/2.0/");
        v.push_str(t.via_token());
        v.push(' ');
        v.push_str(&host);
        v.push_str(";branch=z9hG4bK");
        v.push_str(&token);
        v.push_str(";rport");
        v
    }

    fn contact(&self, t: Transport, local: SocketAddr) -> String {
        self_contact(&self.cfg, Dest { transport: t, local, remote: local }, &self.hosts)
    }

    // ------------------------------------------------------------------ inputs

    /// One datagram (UDP) or frame (TCP) arrived from `src.remote` on listener `src.local`.
    pub fn handle_input(&mut self, now: Instant, src: Dest, data: &[u8]) {
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
        let has = |n: HName| headers.iter().any(|h| h.name == n);
        if !(has(HName::Via) && has(HName::From) && has(HName::To) && has(HName::CallId) && has(HName::CSeq)) {
            // Not enough to answer: drop (already counted).
            if !has(HName::Via) {
                return;
            }
        }
        let req = Message { start: StartLine::Request { method: Method::Options, uri: String::new(), version: String::new() }, headers: headers.to_vec(), body: Vec::new() };
        let mut req = req;
        let Some(dest) = self.stamp_via(&mut req, src) else { return };
        let tag = self.token();
        let r = response(&req, code, phrase, Some(&tag));
        self.out.push_back(Transmit { dest, data: r.to_bytes() });
    }

    /// RFC 3261 §18.2.1: adds `received`/`rport` to the top Via; returns where responses go
    /// (§18.2.2, RFC 3581).
    fn stamp_via(&mut self, req: &mut Message, src: Dest) -> Option<Dest> {
        let i = req.headers.iter().position(|h| h.name == HName::Via)?;
        let Ok(via) = msg::ViaRef::parse(&req.headers[i].value) else {
            return Some(src);
        };
        if Transport::from_token(via.transport) != Some(src.transport) {
            let t = via.transport.to_ascii_uppercase();
            self.metrics.bad("Via Transport Mismatch", || format!("{t} via {}", src.remote));
        }
        let mut port = via.port.unwrap_or(5060);
        let ip_s = src.remote.ip().to_string();
        let add_received = via.host != ip_s;
        // Rebuilt as `Via::parse` + edit + render would give it: transport upper case, params
        // trimmed, `received` (when added) last, the first `rport` filled in.
        let mut v = String::with_capacity(req.headers[i].value.len() + 32);
        v.push_str("SIP/2.0/");
        v.extend(via.transport.chars().map(|c| c.to_ascii_uppercase()));
        v.push(' ');
        if via.host.contains(':') {
            v.push('[');
            v.push_str(via.host);
            v.push(']');
        } else {
            v.push_str(via.host);
        }
        if let Some(p) = via.port {
            v.push(':');
            v.push_str(&p.to_string());
        }
        let mut rport_seen = false;
        for (n, val) in via.param_iter() {
            if add_received && n.eq_ignore_ascii_case("received") {
                continue;
            }
            v.push(';');
            v.push_str(n);
            if !rport_seen && n.eq_ignore_ascii_case("rport") {
                rport_seen = true;
                port = src.remote.port();
                v.push('=');
                v.push_str(&port.to_string());
                continue;
            }
            if let Some(val) = val {
                v.push('=');
                v.push_str(val);
            }
        }
        if add_received {
            v.push_str(";received=");
            v.push_str(&ip_s);
        }
        req.headers[i].value = v;
        if src.transport.reliable() {
            return Some(src);
        }
        Some(Dest { transport: src.transport, local: src.local, remote: SocketAddr::new(src.remote.ip(), port) })
    }

    fn on_request(&mut self, now: Instant, src: Dest, mut req: Message) {
        if req.header(&HName::Via).is_none() {
            self.metrics.bad("Missing Via", || format!("from {}", src.remote));
            return;
        }
        let Some(reply) = self.stamp_via(&mut req, src) else { return };
        let method = req.method().cloned().unwrap_or(Method::Options);
        match self.txs.on_request(now, &req, reply) {
            Incoming::Absorbed => {}
            Incoming::Ack => self.on_ack(now, &req),
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
                if req.to_tag().is_some() {
                    self.in_dialog(now, k, req, src);
                    return;
                }
                match method {
                    Method::Invite => self.on_invite(now, k, req, src),
                    Method::Options => self.reply(now, &k, &req, 200, "OK"),
                    Method::Cancel => self.on_cancel(now, k, req),
                    Method::Bye | Method::Update | Method::Refer => {
                        self.reply(now, &k, &req, 481, reason(481))
                    }
                    _ => self.reply(now, &k, &req, 405, reason(405)),
                }
            }
        }
    }

    fn reply(&mut self, now: Instant, k: &str, req: &Message, code: u16, phrase: &str) {
        let tag = self.token();
        let r = response(req, code, phrase, Some(&tag));
        self.txs.respond(now, k, &r);
    }

    fn on_invite(&mut self, now: Instant, k: TxKey, req: Message, src: Dest) {
        let cfg = &self.cfg;
        let Some(tin) = trunk_by_acl(cfg, src.remote.ip()) else {
            self.metrics.bad("Forbidden (no ACL match)", || src.remote.to_string());
            return self.reject_invite(now, &k, &req, 403, "Forbidden", None, "rejected");
        };
        let user = user_of(req.uri().unwrap_or(""));
        let Some(tout) = route(cfg, &cfg.trunks[tin].name, &user) else {
            return self.reject_invite(now, &k, &req, 404, "No Route", Some(tin), "no_route");
        };
        if cfg.trunks[tout].targets.is_empty() {
            return self.reject_invite(now, &k, &req, 404, "No Route", Some(tin), "no_route");
        }
        if req.body.is_empty() {
            // Delayed offer is not supported yet (see DESIGN_NOTES.md).
            return self.reject_invite(now, &k, &req, 488, "Offer Required", Some(tin), "rejected");
        }
        let Ok(offer) = Sdp::parse(&req.body) else {
            self.metrics.bad("Bad SDP", || src.remote.to_string());
            return self.reject_invite(now, &k, &req, 400, "Bad SDP", Some(tin), "rejected");
        };
        // SDES on the caller's leg (RFC 4568): the line we accept and our own key for the answer.
        let a_srtp = sdp::accept_offer(&offer, &sdp::SrtpPrefs::of(&cfg.trunks[tin]))
            .and_then(|l| l.map(|l| Ok((l, sdp::fresh_keys(l.keys.suite)?))).transpose());
        let a_srtp = match a_srtp {
            Ok(c) => c,
            Err(e) => return self.reject_offer(now, &k, &req, e, src.local, tin),
        };
        let allowed: Vec<String> = cfg.trunks[tout]
            .codecs
            .iter()
            .filter(|c| cfg.trunks[tin].codecs.iter().any(|d| d.eq_ignore_ascii_case(c)))
            .cloned()
            .collect();
        let Some(pa) = self.ports.alloc() else { return self.no_ports(now, &k, &req, tin) };
        let Some(pb) = self.ports.alloc() else {
            self.ports.release(pa);
            return self.no_ports(now, &k, &req, tin);
        };
        let ip = self.cfg.media.sdp_ip();
        let mut b_origin = Origin { id: self.next ^ 0x5eed, version: 0 };
        let rw = Rewrite { ip, port: pb, allowed: &allowed, srtp_off: self.cfg.trunks[tin].srtp == xtrunk_config::SrtpPolicy::Off };
        // The callee's leg is keyed on its own: SRTP offered by its trunk's policy, fresh keys.
        let b_prefs = sdp::SrtpPrefs::of(&self.cfg.trunks[tout]);
        let b_sdp = sdp::rewrite_offer(&offer, &rw, &mut b_origin).and_then(|mut s| {
            if b_prefs.offer_srtp(false) {
                sdp::add_offer_crypto(&mut s, &b_prefs.suites, None)?;
            }
            Ok(s)
        });
        let b_sdp = match b_sdp {
            Ok(s) => s,
            Err(e) => {
                self.ports.release(pa);
                self.ports.release(pb);
                return self.reject_offer(now, &k, &req, e, src.local, tin);
            }
        };
        let a_remote = offer.remote().ok();
        let id = self.next;
        self.next += 1;
        let session = SessionId(id);
        let bind = self.cfg.media.bind_ip;
        let latch_of = |t: usize, cfg: &Config| match cfg.trunks[t].latch.unwrap_or(cfg.media.latch) {
            xtrunk_config::Latch::Once => LatchPolicy::Once,
            xtrunk_config::Latch::Follow => LatchPolicy::Follow,
            xtrunk_config::Latch::Strict => LatchPolicy::Strict,
        };
        let mut leg0 = match &a_remote {
            Some(r) => remote_spec(&sdp::negotiated(r, &b_sdp.remote().unwrap_or(r.clone())), SocketAddr::new(bind, pa), latch_of(tin, &self.cfg)),
            None => remote_spec(&sdp::Remote { index: 0, addr: None, rtcp_port: 0, rtcp_mux: false, payloads: vec![], direction: "sendrecv" }, SocketAddr::new(bind, pa), latch_of(tin, &self.cfg)),
        };
        leg0.latch = latch_of(tin, &self.cfg);
        leg0.crypto = LegCrypto { rx: a_srtp.map(|(l, _)| l.keys), tx: a_srtp.map(|(_, ours)| ours) };
        let leg1 = LegSpec {
            local: SocketAddr::new(bind, pb),
            remote: None,
            remote_rtcp_port: 0,
            rtcp_mux: false,
            latch: latch_of(tout, &self.cfg),
            pt_map: PtMap::new(),
            crypto: LegCrypto::default(),
        };
        let spec = SessionSpec {
            id: session,
            legs: [leg0, leg1],
            media_timeout_ms: self.cfg.media.timeout_secs.saturating_mul(1000),
            allow_fast_path: true,
        };
        self.media_out.push_back(Command::Create(spec));

        // Caller leg (we are UAS).
        let a_tag = self.token();
        let to_v = req.header(&HName::To).unwrap_or("").to_string();
        let from_v = req.header(&HName::From).unwrap_or("").to_string();
        let contact = req.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri);
        let route_set: Vec<String> = req.headers_of(&HName::RecordRoute).map(str::to_string).collect();
        let a_dest = self.dialog_dest(src, contact.as_deref(), &route_set);
        let leg_a = Leg {
            call_id: req.call_id().unwrap_or("").to_string(),
            local_tag: a_tag.clone(),
            local_hdr: format!("{to_v};tag={a_tag}"),
            remote_tag: req.from_tag().unwrap_or_default().to_string(),
            remote_hdr: from_v.clone(),
            local_cseq: 0,
            remote_cseq: req.cseq().map_or(0, |c| c.seq),
            remote_target: contact.unwrap_or_else(|| format!("sip:{}", src.remote)),
            route_set,
            dest: a_dest,
            trunk: tin,
            port: pa,
            origin: Origin { id: id ^ 0xa11ce, version: 0 },
            remote_sdp: Some(offer.clone()),
            local_sdp: None,
            pending_2xx: None,
        };
        // Callee leg (we are UAC); target chosen in send_b_invite.
        let b_tag = self.token();
        let b_call_id = self.token();
        let from_user = req.from().and_then(|f| Uri::parse(&f.uri).ok()).and_then(|u| u.user).unwrap_or_else(|| "anonymous".into());
        let display = req.from().and_then(|f| f.display).map(|d| format!("{d} ")).unwrap_or_default();
        let t = self.cfg.trunks[tout].targets[0].clone();
        let local = self.listener(t.transport.into());
        let leg_b = Leg {
            call_id: b_call_id.clone(),
            local_tag: b_tag.clone(),
            local_hdr: format!("{display}<sip:{from_user}@{}>;tag={b_tag}", self.host_of(local)),
            remote_tag: String::new(),
            remote_hdr: String::new(),
            local_cseq: 0,
            remote_cseq: 0,
            remote_target: String::new(),
            route_set: Vec::new(),
            dest: Dest { transport: t.transport.into(), local, remote: t.addr },
            trunk: tout,
            port: pb,
            origin: b_origin,
            remote_sdp: None,
            local_sdp: Some(b_sdp),
            pending_2xx: None,
        };
        let cdr = Cdr {
            call_id: leg_a.call_id.clone(),
            b_call_id: b_call_id.clone(),
            trunk_in: self.cfg.trunks[tin].name.clone(),
            trunk_out: self.cfg.trunks[tout].name.clone(),
            from: from_user,
            to: user.clone(),
            start_ms: self.unix_ms(now),
            ..Cdr::default()
        };
        self.dialogs.insert(dkey(&leg_a.call_id, &a_tag), (id, Slot::Live(0)));
        self.dialogs.insert(dkey(&b_call_id, &b_tag), (id, Slot::Live(1)));
        self.invite_stx.insert(k.clone(), id);
        let call = Call {
            state: State::Proceeding,
            legs: [leg_a, leg_b],
            a_invite: req.clone(),
            a_stx: k.clone(),
            b_ctx: None,
            b_ack: None,
            b_provisional: false,
            cancel_sent: false,
            targets_tried: 0,
            user,
            session,
            spec,
            created: true,
            a_offer: offer,
            early_answer: None,
            reoffer: None,
            transfer: None,
            released: Vec::new(),
            cdr,
        };
        self.calls.insert(id, call);
        self.metrics.calls_started += 1;
        let trying = response(&req, 100, "Trying", None);
        self.txs.respond(now, &k, &trying);
        let na = now + Duration::from_secs(u64::from(self.cfg.sip.no_answer_timeout_secs));
        self.heap.push(Reverse((na, id, CallTimer::NoAnswer)));
        self.send_b_invite(now, id);
    }

    fn no_ports(&mut self, now: Instant, k: &str, req: &Message, tin: usize) {
        self.metrics.bad("No Media Ports", String::new);
        self.reject_invite(now, k, req, 503, "No Media Ports", Some(tin), "rejected");
    }

    /// Refuses an INVITE whose offer we cannot take: the status of `e` (400/488/500), with a
    /// `Warning: 399` for the SRTP reasons. Logs no SDP (it may carry keys).
    fn reject_offer(&mut self, now: Instant, k: &str, req: &Message, e: SdpError, local: SocketAddr, tin: usize) {
        let (code, phrase) = e.status();
        if e.warning().is_none() {
            return self.reject_invite(now, k, req, code, phrase, Some(tin), "rejected");
        }
        let tag = self.token();
        let mut r = response(req, code, phrase, Some(&tag));
        self.push_warning(&mut r, e, local);
        self.txs.respond(now, k, &r);
        self.rejected_cdr(now, req, code, Some(tin), "rejected");
    }

    /// Adds `Warning: 399 <our host> "<reason>"` (RFC 3261 §20.43) when `e` has one.
    fn push_warning(&self, r: &mut Message, e: SdpError, local: SocketAddr) {
        if let Some(w) = e.warning() {
            r.push(HName::Other("Warning".into()), format!("399 {} \"{w}\"", self.host_of(local)));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reject_invite(&mut self, now: Instant, k: &str, req: &Message, code: u16, phrase: &str, tin: Option<usize>, why: &str) {
        self.reply(now, k, req, code, phrase);
        self.rejected_cdr(now, req, code, tin, why);
    }

    /// Counts a refused INVITE and writes its CDR.
    fn rejected_cdr(&mut self, now: Instant, req: &Message, code: u16, tin: Option<usize>, why: &str) {
        *self.metrics.finals_to_caller.entry(code).or_insert(0) += 1;
        let t = self.unix_ms(now);
        self.cdr_out.push_back(Cdr {
            call_id: req.call_id().unwrap_or("").to_string(),
            trunk_in: tin.map(|t| self.cfg.trunks[t].name.clone()).unwrap_or_default(),
            from: req.from().and_then(|f| Uri::parse(&f.uri).ok()).and_then(|u| u.user).unwrap_or_default(),
            to: user_of(req.uri().unwrap_or("")),
            start_ms: t,
            end_ms: t,
            disposition: code,
            end_reason: why.to_string(),
            ..Cdr::default()
        });
    }

    /// Where in-dialog requests to a peer go: the flow for reliable transports, else the first
    /// route or the remote target when they name an IP literal, else the flow.
    fn dialog_dest(&self, flow: Dest, target: Option<&str>, route_set: &[String]) -> Dest {
        if flow.transport.reliable() {
            return flow;
        }
        let first = route_set.first().and_then(|r| NameAddr::parse(r).ok()).map(|n| n.uri);
        let uri = first.as_deref().or(target);
        match uri.and_then(uri_addr) {
            Some((addr, t)) if t.map_or(true, |t| t == flow.transport) => Dest { remote: addr, ..flow },
            _ => flow,
        }
    }

    fn send_b_invite(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get(&id) else { return };
        let trunk = &self.cfg.trunks[call.legs[1].trunk];
        let Some(t) = trunk.targets.get(call.targets_tried).cloned() else { return };
        let tr: Transport = t.transport.into();
        let local = self.listener(tr);
        let via = self.via(tr, local);
        let contact = self.contact(tr, local);
        let call = self.calls.get_mut(&id).expect("checked");
        call.targets_tried += 1;
        call.b_provisional = false;
        let leg = &mut call.legs[1];
        leg.local_cseq += 1;
        leg.dest = Dest { transport: tr, local, remote: t.addr };
        let tp = if tr == Transport::Udp { "" } else { ";transport=tcp" };
        let host = match t.addr { SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()), a => a.to_string() };
        let ruri = format!("sip:{}@{host}{tp}", call.user);
        let mut m = Message::request(Method::Invite, ruri.clone());
        let mf = call.a_invite.header(&HName::MaxForwards).and_then(|v| v.parse::<u32>().ok()).unwrap_or(70).min(70).saturating_sub(1);
        m.push(HName::Via, via)
            .push(HName::MaxForwards, mf.to_string())
            .push(HName::From, leg.local_hdr.clone())
            .push(HName::To, format!("<sip:{}@{host}>", call.user))
            .push(HName::CallId, leg.call_id.clone())
            .push(HName::CSeq, format!("{} INVITE", leg.local_cseq))
            .push(HName::Contact, contact)
            .push(HName::Allow, ALLOW)
            .push(HName::ContentType, "application/sdp");
        m.body = leg.local_sdp.as_ref().map(Sdp::to_bytes).unwrap_or_default();
        let dest = leg.dest;
        let k = self.txs.send_request(now, m, dest, Owner(id, P_INVITE));
        if let Some(call) = self.calls.get_mut(&id) {
            call.b_ctx = Some(k);
        }
    }

    fn on_cancel(&mut self, now: Instant, k: TxKey, req: Message) {
        let ik = server_key(&req, &Method::Invite);
        let id = ik.as_ref().and_then(|ik| self.invite_stx.get(ik).copied());
        let Some(id) = id.filter(|_| ik.as_deref().map_or(false, |ik| self.txs.server_alive(ik))) else {
            return self.reply(now, &k, &req, 481, reason(481));
        };
        self.reply(now, &k, &req, 200, "OK");
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state != State::Proceeding {
            return;
        }
        call.cdr.end_reason = "cancel".into();
        self.cancel_b(now, id, 487);
    }

    /// Gives up on the outbound INVITE: `code` to the caller now, CANCEL to the callee (once it
    /// has sent a provisional response), the call ends when its final response arrives.
    fn cancel_b(&mut self, now: Instant, id: u64, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.state = State::Cancelling;
        let a_stx = call.a_stx.clone();
        let a_invite = call.a_invite.clone();
        let tag = call.legs[0].local_tag.clone();
        call.cdr.disposition = code;
        let r = response(&a_invite, code, reason(code), Some(&tag));
        self.txs.respond(now, &a_stx, &r);
        *self.metrics.finals_to_caller.entry(code).or_insert(0) += 1;
        self.heap.push(Reverse((now + self.timers.t1 * 64 + Duration::from_secs(1), id, CallTimer::Guard)));
        self.send_cancel_if_possible(now, id);
    }

    fn send_cancel_if_possible(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.cancel_sent || !call.b_provisional {
            return;
        }
        let Some(k) = call.b_ctx.clone() else { return };
        let Some(inv) = self.txs.client_request(&k).cloned() else { return };
        call.cancel_sent = true;
        let dest = call.legs[1].dest;
        let mut c = Message::request(Method::Cancel, inv.uri().unwrap_or(""));
        for n in [HName::Via, HName::MaxForwards, HName::From, HName::To, HName::CallId] {
            if let Some(v) = inv.header(&n) {
                c.push(n, v);
            }
        }
        c.push(HName::CSeq, format!("{} CANCEL", inv.cseq().map_or(1, |c| c.seq)));
        self.txs.send_request(now, c, dest, Owner(id, P_CANCEL));
    }

    fn on_ack(&mut self, now: Instant, req: &Message) {
        let Some((id, slot)) = self.lookup(req) else { return };
        let Slot::Live(s) = slot else { return };
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(k) = call.legs[s].pending_2xx.take() {
            self.txs.ack_2xx(now, &k);
        }
        if s == 0 && call.state == State::Answered {
            call.state = State::Confirmed;
        }
    }

    fn lookup(&self, req: &Message) -> Option<(u64, Slot)> {
        let cid = req.call_id()?;
        let tag = req.to_tag()?;
        self.dialogs.get(&dkey(cid, tag)).copied()
    }

    fn in_dialog(&mut self, now: Instant, k: TxKey, req: Message, src: Dest) {
        let method = req.method().cloned().unwrap_or(Method::Options);
        let Some((id, slot)) = self.lookup(&req) else {
            return self.reply(now, &k, &req, 481, reason(481));
        };
        let s = match slot {
            Slot::Live(s) => s,
            Slot::Released | Slot::Transfer => {
                let code = if method == Method::Bye { 200 } else { 481 };
                return self.reply(now, &k, &req, code, reason(code));
            }
        };
        if let (Some(c), Some(seq)) = (self.calls.get_mut(&id), req.cseq().map(|c| c.seq)) {
            c.legs[s].remote_cseq = c.legs[s].remote_cseq.max(seq);
            self.journal_dirty.insert(id);
        }
        match method {
            Method::Bye => {
                self.reply(now, &k, &req, 200, "OK");
                let why = if s == 0 { "caller_bye" } else { "callee_bye" };
                let Some(call) = self.calls.get_mut(&id) else { return };
                if call.state == State::Proceeding {
                    // BYE on an early dialog: treat like CANCEL.
                    call.cdr.end_reason = why.into();
                    return self.cancel_b(now, id, 487);
                }
                call.cdr.end_reason = why.into();
                self.send_in_dialog(now, id, 1 - s, Method::Bye, None, P_BYE);
                self.finish(now, id);
            }
            Method::Options => self.reply(now, &k, &req, 200, "OK"),
            Method::Invite | Method::Update => self.on_reoffer(now, id, s, k, req),
            Method::Refer => self.on_refer(now, id, s, k, req),
            Method::Cancel => self.reply(now, &k, &req, 481, reason(481)),
            _ => {
                let _ = src;
                self.reply(now, &k, &req, 405, reason(405))
            }
        }
    }

    /// Sends an in-dialog request on slot `s`; returns the transaction key.
    fn send_in_dialog(&mut self, now: Instant, id: u64, s: usize, method: Method, body: Option<(&str, Vec<u8>)>, purpose: u32) -> Option<TxKey> {
        let call = self.calls.get(&id)?;
        let leg = &call.legs[s];
        let leg_dest = leg.dest;
        let via = self.via(leg_dest.transport, leg_dest.local);
        let contact = self.contact(leg_dest.transport, leg_dest.local);
        let call = self.calls.get_mut(&id)?;
        let leg = &mut call.legs[s];
        let m = build_in_dialog(leg, method, via, contact, body);
        self.journal_dirty.insert(id);
        Some(self.txs.send_request(now, m, leg_dest, Owner(id, purpose)))
    }

    /// Ends a call: Delete the session, drop the dialogs. Ports return on `Event::Deleted`.
    fn finish(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.remove(&id) else { return };
        for (i, l) in call.legs.iter().enumerate() {
            let _ = i;
            self.dialogs.remove(&dkey(&l.call_id, &l.local_tag));
        }
        if let Some(t) = &call.transfer {
            self.dialogs.remove(&dkey(&t.leg.call_id, &t.leg.local_tag));
            if let Some(k) = &t.invite {
                self.txs.forget_client(k);
            }
        }
        for (c, t) in &call.released {
            self.dialogs.remove(&dkey(c, t));
        }
        self.invite_stx.remove(&call.a_stx);
        let journaled = call.cdr_journaled();
        let mut cdr = call.cdr;
        cdr.end_ms = self.unix_ms(now);
        if cdr.disposition == 0 {
            cdr.disposition = 500;
        }
        if call.created {
            self.media_out.push_back(Command::Delete(call.session));
            self.pending_delete.insert(call.session, ([call.legs[0].port, call.legs[1].port], Some(cdr)));
        } else {
            self.ports.release(call.legs[0].port);
            self.ports.release(call.legs[1].port);
            self.cdr_out.push_back(cdr);
        }
        if journaled {
            self.journal_out.push_back(JournalOp::Remove(id));
        }
        self.metrics.calls_ended += 1;
    }

    // ------------------------------------------------------------------ B-side responses

    fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.txs.poll_event() {
            match ev {
                TxEvent::Response { owner, key, msg } => self.on_response(now, owner, key, msg),
                TxEvent::Timeout { owner, key } => self.on_tx_timeout(now, owner, key),
                TxEvent::AckTimeout { owner } => {
                    let Owner(id, _) = owner;
                    if self.calls.contains_key(&id) {
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.cdr.end_reason = "ack_timeout".into();
                        }
                        self.send_in_dialog(now, id, 0, Method::Bye, None, P_BYE);
                        self.send_in_dialog(now, id, 1, Method::Bye, None, P_BYE);
                        self.finish(now, id);
                    }
                }
            }
        }
    }

    fn on_tx_timeout(&mut self, now: Instant, owner: Owner, key: TxKey) {
        let Owner(id, p) = owner;
        match p {
            P_INVITE => self.b_final(now, id, key, None),
            P_REOFFER => self.reoffer_final(now, id, 408, None),
            P_XFER_INVITE => self.transfer_final(now, id, 408, None),
            P_BYE if self.calls.get(&id).is_some() => {
                // In-dialog BYE timed out (call already finished normally).
            }
            _ => {}
        }
    }

    fn on_response(&mut self, now: Instant, owner: Owner, key: TxKey, msg: Message) {
        let Owner(id, p) = owner;
        let code = msg.code().unwrap_or(500);
        match p {
            P_INVITE => {
                if !self.calls.contains_key(&id) || self.calls.get(&id).and_then(|c| c.b_ctx.as_ref()) != Some(&key) {
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
            P_REOFFER if code >= 200 => self.reoffer_final(now, id, code, Some(msg)),
            P_XFER_INVITE => {
                if code >= 200 {
                    if !self.calls.contains_key(&id) {
                        if code < 300 {
                            self.orphan_2xx(now, &key, &msg);
                        }
                        return;
                    }
                    self.transfer_final(now, id, code, Some(msg));
                }
            }
            _ => {}
        }
    }

    /// A 2xx for an INVITE nobody wants any more (cancel race, failover race): ACK and BYE it.
    fn orphan_2xx(&mut self, now: Instant, key: &str, resp: &Message) {
        let Some(inv) = self.txs.client_request(key).cloned() else { return };
        let Some(to) = resp.header(&HName::To) else { return };
        let target = resp.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri).unwrap_or_else(|| inv.uri().unwrap_or("").to_string());
        let seq = inv.cseq().map_or(1, |c| c.seq);
        let dest_t = inv.top_via().and_then(|v| Transport::from_token(&v.transport)).unwrap_or(Transport::Udp);
        let local = self.listener(dest_t);
        let remote = uri_addr(&target).map(|(a, _)| a).or_else(|| uri_addr(inv.uri().unwrap_or("")).map(|(a, _)| a));
        let Some(remote) = remote else { return };
        let dest = Dest { transport: dest_t, local, remote };
        for (m, s) in [(Method::Ack, seq), (Method::Bye, seq + 1)] {
            let mut r = Message::request(m.clone(), target.clone());
            let via = self.via(dest_t, local);
            r.push(HName::Via, via)
                .push(HName::MaxForwards, "70")
                .push(HName::From, inv.header(&HName::From).unwrap_or(""))
                .push(HName::To, to)
                .push(HName::CallId, inv.call_id().unwrap_or(""))
                .push(HName::CSeq, format!("{s} {m}"));
            if m == Method::Ack {
                self.out.push_back(Transmit { dest, data: r.to_bytes() });
            } else {
                self.txs.send_request(now, r, dest, Owner(0, 0));
            }
        }
    }

    fn b_provisional(&mut self, now: Instant, id: u64, msg: Message) {
        let code = msg.code().unwrap_or(100);
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.b_provisional = true;
        if call.state == State::Cancelling {
            return self.send_cancel_if_possible(now, id);
        }
        if code == 100 {
            return;
        }
        let mut r = response(&call.a_invite, code, reason(code), Some(&call.legs[0].local_tag));
        r.push(HName::Contact, self_contact(&self.cfg, call.legs[0].dest, &self.hosts));
        if !msg.body.is_empty() {
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
    fn answer_for_a(&mut self, id: u64, ans: &Sdp) -> Option<Vec<u8>> {
        let ip = self.cfg.media.sdp_ip();
        let call = self.calls.get_mut(&id)?;
        let tin = call.legs[0].trunk;
        let codecs = self.cfg.trunks[tin].codecs.clone();
        let rw = Rewrite { ip, port: call.legs[0].port, allowed: &codecs, srtp_off: true };
        // SDES: the callee leg's keys from its answer to our offer (none usable = unusable answer).
        let b_crypto = match &call.legs[1].local_sdp {
            Some(ours) => sdp::answer_crypto(ours, ans).ok()?,
            None => LegCrypto::default(),
        };
        let mut out = sdp::rewrite_answer(ans, &call.a_offer, &rw, &mut call.legs[0].origin).ok()?;
        // The caller's leg: echo the tag/suite of the line we accepted, with our key.
        if let Some(ours) = call.spec.legs[0].crypto.tx {
            let line = sdp::accept_offer(&call.a_offer, &sdp::SrtpPrefs::of(&self.cfg.trunks[tin])).ok().flatten()?;
            sdp::add_answer_crypto(&mut out, line.tag, &ours);
        }
        call.spec.legs[1].crypto = b_crypto;
        call.early_answer = Some(ans.clone());
        call.legs[1].remote_sdp = Some(ans.clone());
        let b = out.to_bytes();
        call.legs[0].local_sdp = Some(out);
        Some(b)
    }

    fn update_media_from_answer(&mut self, id: u64, ans: &Sdp) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let (Ok(a), Ok(b)) = (call.a_offer.remote(), ans.remote()) else { return };
        let latch0 = call.spec.legs[0].latch;
        let latch1 = call.spec.legs[1].latch;
        let l0 = call.spec.legs[0].local;
        let l1 = call.spec.legs[1].local;
        let (c0, c1) = (call.spec.legs[0].crypto, call.spec.legs[1].crypto);
        call.spec.legs[0] = remote_spec(&sdp::negotiated(&a, &b), l0, latch0);
        call.spec.legs[1] = remote_spec(&b, l1, latch1);
        (call.spec.legs[0].crypto, call.spec.legs[1].crypto) = (c0, c1);
        self.media_out.push_back(Command::Update(call.spec));
    }

    fn b_answer(&mut self, now: Instant, id: u64, msg: Message) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let to_tag = msg.to_tag().unwrap_or_default().to_string();
        if call.state != State::Proceeding {
            if call.state == State::Cancelling {
                // Answered after we gave up: ACK and BYE it, then end.
                let k = call.b_ctx.clone().unwrap_or_default();
                self.orphan_2xx(now, &k, &msg);
                return self.finish(now, id);
            }
            // A retransmitted 2xx: ACK again.
            if call.legs[1].remote_tag == to_tag {
                if let Some(a) = call.b_ack.clone() {
                    self.out.push_back(a);
                }
            }
            return;
        }
        // Establish the callee dialog.
        let leg = &mut call.legs[1];
        leg.remote_tag = to_tag;
        leg.remote_hdr = msg.header(&HName::To).unwrap_or("").to_string();
        leg.remote_target = msg.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri).unwrap_or_else(|| format!("sip:{}", leg.dest.remote));
        let mut rs: Vec<String> = msg.headers_of(&HName::RecordRoute).map(str::to_string).collect();
        rs.reverse();
        leg.route_set = rs;
        let flow = leg.dest;
        let target = leg.remote_target.clone();
        let routes = leg.route_set.clone();
        let d = self.dialog_dest(flow, Some(&target), &routes);
        let call = self.calls.get_mut(&id).expect("present");
        call.legs[1].dest = d;
        // ACK (a new transaction-less request, CSeq of the INVITE).
        let via = self.via(d.transport, d.local);
        let call = self.calls.get_mut(&id).expect("present");
        let leg = &mut call.legs[1];
        let mut ack = build_in_dialog(leg, Method::Ack, via, String::new(), None);
        ack.remove(&HName::Contact);
        let seq = leg.local_cseq;
        ack.set(HName::CSeq, format!("{seq} ACK"));
        let t = Transmit { dest: d, data: ack.to_bytes() };
        self.out.push_back(t.clone());
        call.b_ack = Some(t);
        // The answer.
        let ans = if msg.body.is_empty() { call.early_answer.clone() } else { Sdp::parse(&msg.body).ok() };
        let Some(ans) = ans else {
            call.cdr.end_reason = "no_answer_sdp".into();
            self.send_in_dialog(now, id, 1, Method::Bye, None, P_BYE);
            return self.cancel_to_a_and_finish(now, id, 502);
        };
        let Some(body) = self.answer_for_a(id, &ans) else {
            if let Some(c) = self.calls.get_mut(&id) {
                c.cdr.end_reason = "answer_not_acceptable".into();
            }
            self.send_in_dialog(now, id, 1, Method::Bye, None, P_BYE);
            return self.cancel_to_a_and_finish(now, id, 488);
        };
        self.update_media_from_answer(id, &ans);
        let unix = self.unix_ms(now);
        let call = self.calls.get_mut(&id).expect("present");
        let mut r = response(&call.a_invite, 200, "OK", Some(&call.legs[0].local_tag));
        r.push(HName::Contact, self_contact(&self.cfg, call.legs[0].dest, &self.hosts));
        r.push(HName::Allow, ALLOW);
        r.push(HName::ContentType, "application/sdp");
        r.body = body;
        call.state = State::Answered;
        call.cdr.answer_ms = unix;
        call.cdr.disposition = 200;
        let k = call.a_stx.clone();
        call.legs[0].pending_2xx = Some(k.clone());
        self.txs.respond(now, &k, &r);
        self.txs.set_owner(&k, Owner(id, P_A_2XX));
        *self.metrics.finals_to_caller.entry(200).or_insert(0) += 1;
        self.metrics.calls_answered += 1;
        self.journal_dirty.insert(id);
    }

    fn cancel_to_a_and_finish(&mut self, now: Instant, id: u64, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let r = response(&call.a_invite, code, reason(code), Some(&call.legs[0].local_tag));
        call.cdr.disposition = code;
        let k = call.a_stx.clone();
        self.txs.respond(now, &k, &r);
        *self.metrics.finals_to_caller.entry(code).or_insert(0) += 1;
        self.finish(now, id);
    }

    /// A non-2xx final (or timeout when `msg` is None) from the callee.
    fn b_final(&mut self, now: Instant, id: u64, key: TxKey, msg: Option<Message>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.b_ctx.as_ref() != Some(&key) {
            return;
        }
        let code = msg.as_ref().and_then(Message::code).unwrap_or(408);
        if call.state == State::Cancelling {
            return self.finish(now, id);
        }
        if call.state != State::Proceeding {
            return;
        }
        let more = call.targets_tried < self.cfg.trunks[call.legs[1].trunk].targets.len();
        if more && (code == 503 || code == 408) {
            log::info!("call {id}: target {} answered {code}, failing over", call.targets_tried);
            // Forget the early dialog (if any).
            call.legs[1].remote_tag.clear();
            return self.send_b_invite(now, id);
        }
        let mapped = map_final(code);
        call.cdr.end_reason = match code {
            408 if msg.is_none() => "timeout".into(),
            _ => "callee_rejected".into(),
        };
        self.cancel_to_a_and_finish(now, id, mapped);
    }

    // ------------------------------------------------------------------ re-INVITE / UPDATE

    fn on_reoffer(&mut self, now: Instant, id: u64, s: usize, k: TxKey, req: Message) {
        let method = req.method().cloned().unwrap_or(Method::Invite);
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.state != State::Confirmed && call.state != State::Answered {
            return self.reply(now, &k, &req, 491, reason(491));
        }
        if call.reoffer.is_some() || call.transfer.is_some() {
            return self.reply(now, &k, &req, 491, reason(491));
        }
        // Target refresh.
        if let Some(c) = req.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()) {
            call.legs[s].remote_target = c.uri;
        }
        if req.body.is_empty() {
            // No offer (session refresh or offer solicitation): answer with our current SDP.
            let tag = call.legs[s].local_tag.clone();
            let sdp = call.legs[s].local_sdp.as_ref().map(Sdp::to_bytes);
            let mut r = response(&req, 200, "OK", Some(&tag));
            r.push(HName::Contact, self_contact(&self.cfg, call.legs[s].dest, &self.hosts));
            if let Some(b) = sdp {
                if method == Method::Invite {
                    r.push(HName::ContentType, "application/sdp");
                    r.body = b;
                }
            }
            if method == Method::Invite {
                call.legs[s].pending_2xx = Some(k.clone());
            }
            self.txs.respond(now, &k, &r);
            if method == Method::Invite {
                self.txs.set_owner(&k, Owner(id, P_REOFFER_2XX));
            }
            return;
        }
        let Ok(offer) = Sdp::parse(&req.body) else {
            return self.reply(now, &k, &req, 400, "Bad SDP");
        };
        let o = 1 - s;
        let allowed: Vec<String> = {
            let (ts, to) = (&self.cfg.trunks[call.legs[s].trunk], &self.cfg.trunks[call.legs[o].trunk]);
            to.codecs.iter().filter(|c| ts.codecs.iter().any(|d| d.eq_ignore_ascii_case(c))).cloned().collect()
        };
        let ip = self.cfg.media.sdp_ip();
        let s_prefs = sdp::SrtpPrefs::of(&self.cfg.trunks[call.legs[s].trunk]);
        if let Err(e) = sdp::accept_offer(&offer, &s_prefs) {
            let (tag, local) = (call.legs[s].local_tag.clone(), call.legs[s].dest.local);
            let mut r = response(&req, 488, reason(488), Some(&tag));
            self.push_warning(&mut r, e, local);
            return self.txs.respond(now, &k, &r);
        }
        let rw = Rewrite { ip, port: call.legs[o].port, allowed: &allowed, srtp_off: s_prefs.policy == xtrunk_config::SrtpPolicy::Off };
        // The other leg keeps SRTP if it has it (our key reused) or its trunk requires it.
        let o_prefs = sdp::SrtpPrefs::of(&self.cfg.trunks[call.legs[o].trunk]);
        let o_tx = call.spec.legs[o].crypto.tx;
        let new = sdp::rewrite_offer(&offer, &rw, &mut call.legs[o].origin).and_then(|mut n| {
            if o_prefs.offer_srtp(o_tx.is_some()) {
                sdp::add_offer_crypto(&mut n, &o_prefs.suites, o_tx.as_ref())?;
            }
            Ok(n)
        });
        let new = match new {
            Ok(n) => n,
            Err(_) => return self.reply(now, &k, &req, 488, reason(488)),
        };
        call.legs[o].local_sdp = Some(new.clone());
        call.reoffer = Some(ReOffer { req: req.clone(), from: s, stx: k, method: method.clone(), offer });
        self.send_in_dialog(now, id, o, method, Some(("application/sdp", new.to_bytes())), P_REOFFER);
    }

    fn reoffer_final(&mut self, now: Instant, id: u64, code: u16, msg: Option<Message>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(ro) = call.reoffer.take() else { return };
        self.journal_dirty.insert(id);
        let s = ro.from;
        let o = 1 - s;
        // ACK a 2xx to our re-INVITE.
        if (200..300).contains(&code) && ro.method == Method::Invite {
            let d = call.legs[o].dest;
            let via = self.via(d.transport, d.local);
            let call = self.calls.get_mut(&id).expect("present");
            let leg = &mut call.legs[o];
            let mut ack = build_in_dialog(leg, Method::Ack, via, String::new(), None);
            ack.remove(&HName::Contact);
            let seq = leg.local_cseq;
            ack.set(HName::CSeq, format!("{seq} ACK"));
            self.out.push_back(Transmit { dest: d, data: ack.to_bytes() });
        }
        let call = self.calls.get_mut(&id).expect("present");
        let Some(req_msg) = Some(()) else { return };
        let _ = req_msg;
        // Rebuild a response to the original request from the stored transaction.
        let tag = call.legs[s].local_tag.clone();
        let stx = ro.stx.clone();
        let fake_req = self.pending_request(id, s, &ro);
        let answer = msg.as_ref().filter(|_| (200..300).contains(&code)).and_then(|m| Sdp::parse(&m.body).ok());
        let Some(fake_req) = fake_req else { return };
        match answer {
            Some(ans) => {
                let ip = self.cfg.media.sdp_ip();
                let call = self.calls.get_mut(&id).expect("present");
                let codecs = self.cfg.trunks[call.legs[s].trunk].codecs.clone();
                let rw = Rewrite { ip, port: call.legs[s].port, allowed: &codecs, srtp_off: true };
                // SDES: the answering leg's keys from its answer to our re-offer, the re-offerer's
                // from its offer (our key kept unless it re-keyed or changed suite).
                let o_crypto = match &call.legs[o].local_sdp {
                    Some(ours) => sdp::answer_crypto(ours, &ans),
                    None => Ok(LegCrypto::default()),
                };
                let s_prefs = sdp::SrtpPrefs::of(&self.cfg.trunks[call.legs[s].trunk]);
                let s_srtp = sdp::answer_offer_crypto(&ro.offer, &s_prefs, &call.spec.legs[s].crypto);
                let out = sdp::rewrite_answer(&ans, &ro.offer, &rw, &mut call.legs[s].origin);
                let (Ok(mut out), Ok(o_crypto), Ok(s_srtp)) = (out, o_crypto, s_srtp) else {
                    let r = response(&fake_req, 488, reason(488), Some(&tag));
                    return self.txs.respond(now, &stx, &r);
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
                    call.spec.legs[s] = remote_spec(&sdp::negotiated(&rs, &ro_), ls.local, ls.latch);
                    call.spec.legs[o] = remote_spec(&ro_, lo.local, lo.latch);
                    (call.spec.legs[s].crypto, call.spec.legs[o].crypto) = (s_crypto, o_crypto);
                    self.media_out.push_back(Command::Update(call.spec));
                }
                let mut r = response(&fake_req, 200, "OK", Some(&tag));
                r.push(HName::Contact, self_contact(&self.cfg, call.legs[s].dest, &self.hosts));
                r.push(HName::ContentType, "application/sdp");
                r.body = out.to_bytes();
                if ro.method == Method::Invite {
                    call.legs[s].pending_2xx = Some(stx.clone());
                }
                self.txs.respond(now, &stx, &r);
                if ro.method == Method::Invite {
                    self.txs.set_owner(&stx, Owner(id, P_REOFFER_2XX));
                }
            }
            None => {
                let c = if (200..300).contains(&code) { 488 } else { map_final(code) };
                let r = response(&fake_req, c, reason(c), Some(&tag));
                self.txs.respond(now, &stx, &r);
            }
        }
    }

    /// The headers needed to answer a pending re-offer request (kept in the call).
    fn pending_request(&self, id: u64, _s: usize, ro: &ReOffer) -> Option<Message> {
        let _ = id;
        Some(ro.req.clone())
    }

    // ------------------------------------------------------------------ REFER

    fn on_refer(&mut self, now: Instant, id: u64, s: usize, k: TxKey, req: Message) {
        let Some(call) = self.calls.get(&id) else { return };
        if call.state != State::Confirmed || call.transfer.is_some() || call.reoffer.is_some() {
            return self.reply(now, &k, &req, 491, reason(491));
        }
        let Some(target) = req.header(&HName::ReferTo).and_then(|v| NameAddr::parse(v).ok()) else {
            return self.reply(now, &k, &req, 400, "Bad Refer-To");
        };
        let user = user_of(&target.uri);
        let from_trunk = self.cfg.trunks[call.legs[s].trunk].name.clone();
        let tag = call.legs[s].local_tag.clone();
        let r = response(&req, 202, "Accepted", Some(&tag));
        self.txs.respond(now, &k, &r);
        self.notify(now, id, s, 100, "Trying", false);
        let Some(tout) = route(&self.cfg, &from_trunk, &user).filter(|t| !self.cfg.trunks[*t].targets.is_empty()) else {
            return self.notify(now, id, s, 404, "Not Found", true);
        };
        // The new leg takes the transferor's slot and relay port; it is offered the codecs
        // negotiated with the transferee, so the relay never needs to transcode.
        let call = self.calls.get(&id).expect("present");
        let o = 1 - s;
        let other_sdp = call.legs[o].remote_sdp.clone();
        let port = call.legs[s].port;
        let t = self.cfg.trunks[tout].targets[0].clone();
        let tr: Transport = t.transport.into();
        let local = self.listener(tr);
        let Some(other_sdp) = other_sdp else { return self.notify(now, id, s, 488, "Not Acceptable Here", true) };
        let allowed: Vec<String> = self.cfg.trunks[tout].codecs.clone();
        let mut origin = Origin { id: self.next ^ 0x7f3, version: 0 };
        // The transferee's SDP was accepted already; the new leg is keyed on its own.
        let rw = Rewrite { ip: self.cfg.media.sdp_ip(), port, allowed: &allowed, srtp_off: false };
        let prefs = sdp::SrtpPrefs::of(&self.cfg.trunks[tout]);
        let offer = sdp::rewrite_offer(&other_sdp, &rw, &mut origin).and_then(|mut o| {
            if prefs.offer_srtp(false) {
                sdp::add_offer_crypto(&mut o, &prefs.suites, None)?;
            }
            Ok(o)
        });
        let offer = match offer {
            Ok(o) => o,
            Err(_) => return self.notify(now, id, s, 488, "Not Acceptable Here", true),
        };
        let c_tag = self.token();
        let c_cid = self.token();
        let host = self.host_of(local).into_owned();
        let leg = Leg {
            call_id: c_cid.clone(),
            local_tag: c_tag.clone(),
            local_hdr: format!("<sip:xtrunk@{host}>;tag={c_tag}"),
            remote_tag: String::new(),
            remote_hdr: String::new(),
            local_cseq: 1,
            remote_cseq: 0,
            remote_target: String::new(),
            route_set: Vec::new(),
            dest: Dest { transport: tr, local, remote: t.addr },
            trunk: tout,
            port,
            origin,
            remote_sdp: None,
            local_sdp: Some(offer.clone()),
            pending_2xx: None,
        };
        let thost = match t.addr { SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()), a => a.to_string() };
        let mut m = Message::request(Method::Invite, format!("sip:{user}@{thost}"));
        m.push(HName::Via, self.via(tr, local))
            .push(HName::MaxForwards, "70")
            .push(HName::From, leg.local_hdr.clone())
            .push(HName::To, format!("<sip:{user}@{thost}>"))
            .push(HName::CallId, c_cid.clone())
            .push(HName::CSeq, "1 INVITE")
            .push(HName::Contact, self.contact(tr, local))
            .push(HName::Allow, ALLOW)
            .push(HName::ContentType, "application/sdp");
        m.body = offer.to_bytes();
        let dest = leg.dest;
        let key = self.txs.send_request(now, m, dest, Owner(id, P_XFER_INVITE));
        self.dialogs.insert(dkey(&c_cid, &c_tag), (id, Slot::Transfer));
        let call = self.calls.get_mut(&id).expect("present");
        call.transfer = Some(Transfer { slot: s, leg, invite: Some(key), ack: None });
    }

    fn notify(&mut self, now: Instant, id: u64, s: usize, code: u16, phrase: &str, last: bool) {
        let body = format!("SIP/2.0 {code} {phrase}\r\n").into_bytes();
        let Some(call) = self.calls.get(&id) else { return };
        let d = call.legs[s].dest;
        let via = self.via(d.transport, d.local);
        let contact = self.contact(d.transport, d.local);
        let call = self.calls.get_mut(&id).expect("present");
        let leg = &mut call.legs[s];
        let mut m = build_in_dialog(leg, Method::Notify, via, contact, Some(("message/sipfrag;version=2.0", body)));
        m.push(HName::Event, "refer");
        m.push(HName::SubscriptionState, if last { "terminated;reason=noresource" } else { "active;expires=60" });
        self.journal_dirty.insert(id);
        self.txs.send_request(now, m, d, Owner(id, P_NOTIFY));
    }

    fn transfer_final(&mut self, now: Instant, id: u64, code: u16, msg: Option<Message>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(mut tr) = call.transfer.take() else { return };
        let s = tr.slot;
        self.dialogs.remove(&dkey(&tr.leg.call_id, &tr.leg.local_tag));
        let ok = (200..300).contains(&code);
        let answer = msg.as_ref().filter(|_| ok).and_then(|m| Sdp::parse(&m.body).ok());
        let Some(msg) = msg.filter(|_| ok) else {
            let c = map_final(code);
            return self.notify(now, id, s, c, reason(c), true);
        };
        // Establish the new dialog and ACK.
        tr.leg.remote_tag = msg.to().and_then(|t| t.tag().map(str::to_string)).unwrap_or_default();
        tr.leg.remote_hdr = msg.header(&HName::To).unwrap_or("").to_string();
        tr.leg.remote_target = msg.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri).unwrap_or_else(|| format!("sip:{}", tr.leg.dest.remote));
        let mut rs: Vec<String> = msg.headers_of(&HName::RecordRoute).map(str::to_string).collect();
        rs.reverse();
        tr.leg.route_set = rs;
        let d = self.dialog_dest(tr.leg.dest, Some(&tr.leg.remote_target.clone()), &tr.leg.route_set.clone());
        tr.leg.dest = d;
        let via = self.via(d.transport, d.local);
        let mut ack = build_in_dialog(&mut tr.leg, Method::Ack, via, String::new(), None);
        ack.remove(&HName::Contact);
        ack.set(HName::CSeq, format!("{} ACK", tr.leg.local_cseq));
        self.out.push_back(Transmit { dest: d, data: ack.to_bytes() });
        tr.ack = None;
        let crypto = match (&answer, &tr.leg.local_sdp) {
            (Some(a), Some(ours)) => sdp::answer_crypto(ours, a).ok(),
            _ => Some(LegCrypto::default()),
        };
        let (Some(ans), Some(crypto)) = (answer, crypto) else {
            self.send_bye_leg(now, &mut tr.leg.clone(), id);
            return self.notify(now, id, s, 488, reason(488), true);
        };
        tr.leg.remote_sdp = Some(ans.clone());
        // Bridge: slot s now faces the new leg.
        let call = self.calls.get_mut(&id).expect("present");
        if let Ok(r) = ans.remote() {
            let l = call.spec.legs[s];
            call.spec.legs[s] = remote_spec(&r, l.local, l.latch);
            call.spec.legs[s].crypto = crypto;
            self.media_out.push_back(Command::Update(call.spec));
        }
        self.notify(now, id, s, 200, "OK", true);
        self.send_in_dialog(now, id, s, Method::Bye, None, P_BYE);
        let call = self.calls.get_mut(&id).expect("present");
        let old = std::mem::replace(&mut call.legs[s], tr.leg);
        self.dialogs.insert(dkey(&old.call_id, &old.local_tag), (id, Slot::Released));
        call.released.push((old.call_id.clone(), old.local_tag.clone()));
        let new = &call.legs[s];
        self.dialogs.insert(dkey(&new.call_id, &new.local_tag), (id, Slot::Live(s)));
        if s == 1 {
            call.cdr.trunk_out = self.cfg.trunks[new.trunk].name.clone();
        }
        self.journal_dirty.insert(id);
    }

    fn send_bye_leg(&mut self, now: Instant, leg: &mut Leg, id: u64) {
        let d = leg.dest;
        let via = self.via(d.transport, d.local);
        let m = build_in_dialog(leg, Method::Bye, via, String::new(), None);
        self.txs.send_request(now, m, d, Owner(id, P_BYE));
    }

    // ------------------------------------------------------------------ timers, media

    /// Runs timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.txs.on_timeout(now);
        self.pump(now);
        while let Some(Reverse((at, id, kind))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(call) = self.calls.get_mut(&id) else { continue };
            match kind {
                CallTimer::NoAnswer if call.state == State::Proceeding => {
                    call.cdr.end_reason = "no_answer".into();
                    self.cancel_b(now, id, 408);
                }
                CallTimer::Guard if call.state == State::Cancelling => self.finish(now, id),
                _ => {}
            }
        }
        self.pump(now);
    }

    /// An event from the datapath.
    pub fn handle_media_event(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::Deleted { id, stats, .. } => self.deleted(id, Some(stats)),
            Event::Error { id, code, port } => {
                self.metrics.media_errors += 1;
                log::warn!("datapath refused a command for session {}: {code:?} (port {port})", id.0);
                if code == ErrorCode::UnknownSession {
                    self.deleted(id, None);
                } else if let Some((&cid, _)) = self.calls.iter().find(|(_, c)| c.session == id) {
                    // Create/Update refused: the call cannot carry media.
                    let st = self.calls[&cid].state;
                    // Its Delete will be answered UnknownSession, which returns the ports.
                    if let Some(c) = self.calls.get_mut(&cid) {
                        c.cdr.end_reason = "media_error".into();
                    }
                    match st {
                        State::Proceeding => self.cancel_b(now, cid, 503),
                        State::Cancelling => {}
                        _ => {
                            self.send_in_dialog(now, cid, 0, Method::Bye, None, P_BYE);
                            self.send_in_dialog(now, cid, 1, Method::Bye, None, P_BYE);
                            self.finish(now, cid);
                        }
                    }
                }
            }
            Event::MediaTimeout { id, idle_ms } => {
                if let Some((&cid, _)) = self.calls.iter().find(|(_, c)| c.session == id) {
                    if matches!(self.calls[&cid].state, State::Confirmed | State::Answered) {
                        log::info!("call {cid}: no media for {idle_ms} ms, ending");
                        if let Some(c) = self.calls.get_mut(&cid) {
                            c.cdr.end_reason = "media_timeout".into();
                        }
                        self.send_in_dialog(now, cid, 0, Method::Bye, None, P_BYE);
                        self.send_in_dialog(now, cid, 1, Method::Bye, None, P_BYE);
                        self.finish(now, cid);
                    }
                }
            }
            Event::Created(_) | Event::Updated(_) | Event::Session(_) | Event::DumpDone { .. } => {}
        }
        self.pump(now);
    }

    fn deleted(&mut self, id: SessionId, stats: Option<[xtrunk_ring::msg::StreamStats; 2]>) {
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
    }

    // ------------------------------------------------------------------ restart
    // `recover()` and the journal records live in `b2bua/restart.rs`.

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
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Transport failure towards `remote` (TCP connect refused/reset).
    pub fn handle_transport_error(&mut self, now: Instant, remote: SocketAddr) {
        self.txs.on_transport_error(remote);
        self.pump(now);
    }
}

/// Our `host:port` for a listener address (Via sent-by, Contact): `advertised_host` or the IP.
fn format_host(cfg: &Config, local: SocketAddr) -> String {
    match &cfg.sip.advertised_host {
        Some(h) => format!("{h}:{}", local.port()),
        None => match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]:{}", local.port()),
            IpAddr::V4(ip) => format!("{ip}:{}", local.port()),
        },
    }
}

/// [`format_host`], from the per-listener strings formatted once at construction.
fn cached_host<'a>(hosts: &'a [(SocketAddr, String)], cfg: &Config, local: SocketAddr) -> Cow<'a, str> {
    match hosts.iter().find(|(a, _)| *a == local) {
        Some((_, h)) => Cow::Borrowed(h.as_str()),
        None => Cow::Owned(format_host(cfg, local)),
    }
}

fn self_contact(cfg: &Config, d: Dest, hosts: &[(SocketAddr, String)]) -> String {
    let host = cached_host(hosts, cfg, d.local);
    let tp = if d.transport == Transport::Udp { "" } else { ";transport=tcp" };
    let mut c = String::with_capacity(16 + host.len() + tp.len());
    c.push_str("<sip:xtrunk@");
    c.push_str(&host);
    c.push_str(tp);
    c.push('>');
    c
}

/// An in-dialog request from the dialog state (RFC 3261 §12.2.1.1). Increments the local CSeq
/// (except for ACK, whose CSeq the caller sets).
fn build_in_dialog(leg: &mut Leg, method: Method, via: String, contact: String, body: Option<(&str, Vec<u8>)>) -> Message {
    if method != Method::Ack {
        leg.local_cseq += 1;
    }
    let mut m = Message::request(method.clone(), leg.remote_target.clone());
    m.push(HName::Via, via)
        .push(HName::MaxForwards, "70")
        .push(HName::From, leg.local_hdr.clone())
        .push(HName::To, leg.remote_hdr.clone())
        .push(HName::CallId, leg.call_id.clone())
        .push(HName::CSeq, format!("{} {}", leg.local_cseq, method));
    for r in &leg.route_set {
        m.push(HName::Route, r.clone());
    }
    if !contact.is_empty() {
        m.push(HName::Contact, contact);
    }
    if let Some((ct, b)) = body {
        m.push(HName::ContentType, ct);
        m.body = b;
    }
    m
}

impl Call {
    fn cdr_journaled(&self) -> bool {
        self.cdr.answer_ms != 0
    }
}
