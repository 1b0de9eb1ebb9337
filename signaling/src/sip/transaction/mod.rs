//! RFC 3261 §17 transactions, sans-IO: messages and `now` in, transmissions and events out.
//!
//! * Client INVITE: timers A (retransmit, unreliable only), B (timeout), D (absorb final
//!   retransmissions, then ACK them again). The ACK for a non-2xx final is built here (§17.1.1.3).
//!   A 2xx moves the transaction to RFC 6026 "Accepted" (timer M = 64·T1): 2xx retransmissions are
//!   passed to the TU, which ACKs them from the dialog.
//! * Client non-INVITE: timers E, F, K.
//! * Server INVITE: retransmitted INVITEs answered with the last response; non-2xx finals
//!   retransmitted on timer G until ACK, given up on timer H; timer I absorbs ACK retransmissions.
//!   For a 2xx the transaction enters "Accepted" (timer L) and retransmits the 2xx on the G
//!   schedule until the TU reports the ACK ([`Transactions::ack_2xx`]) or 64·T1 passes
//!   ([`TxEvent::AckTimeout`]) — the UAS-core duty of §13.3.1.4 kept here to share the timer code.
//! * Server non-INVITE: timer J.
//!
//! On reliable transports A, E, G are not run and D, I, J, K are zero.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::msg::{HName, Message, Method};
use crate::transport::{Dest, Transmit};

/// Timer bases (RFC 3261 Table 4).
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    /// T1.
    pub t1: Duration,
    /// T2.
    pub t2: Duration,
    /// T4.
    pub t4: Duration,
}

impl Timers {
    /// From `[sip.timers]`.
    pub fn from_config(t: &xtrunk_config::SipTimers) -> Self {
        Self {
            t1: Duration::from_millis(u64::from(t.t1_ms)),
            t2: Duration::from_millis(u64::from(t.t2_ms)),
            t4: Duration::from_millis(u64::from(t.t4_ms)),
        }
    }
    fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Bounds on the server side (`[sip.limits]`): what any source can make the table hold. Trunks'
/// addresses are bound by `total` only; every other source by `per_source`, and all of them
/// together by a quarter of `total` (an outsiders' flood never fills the table trunks need).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Server transactions, all sources.
    pub total: usize,
    /// Server transactions of one source IP that is no trunk's.
    pub per_source: usize,
    /// Bytes of keys and stored responses.
    pub bytes: usize,
}

impl Limits {
    /// From `[sip.limits]`.
    pub fn from_config(l: &xtrunk_config::SipLimits) -> Self {
        Self {
            total: l.max_server_transactions,
            per_source: l.max_transactions_per_source,
            bytes: l.max_transaction_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&xtrunk_config::SipLimits::default())
    }
}

/// Why a new request got no server transaction.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Overload {
    /// Its source (no trunk's) holds [`Limits::per_source`] transactions already, or all such
    /// sources hold a quarter of [`Limits::total`].
    Source,
    /// The table is full ([`Limits::total`] or [`Limits::bytes`]).
    Total,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum SState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

struct ServerTx {
    invite: bool,
    /// Source IP when it is no trunk's (for the per-source count); bytes held (key + response).
    untrusted: Option<IpAddr>,
    cost: usize,
    state: SState,
    owner: Option<Owner>,
    dest: Dest,
    last: Option<Vec<u8>>,
    /// Next retransmission of the last (final) response (G schedule).
    retx_at: Option<Instant>,
    interval: Duration,
    /// When the current state ends (H, I, J, L).
    end_at: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum CState {
    Calling,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

struct ClientTx {
    invite: bool,
    state: CState,
    owner: Owner,
    dest: Dest,
    request: Message,
    bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    retx_at: Option<Instant>,
    interval: Duration,
    /// B/F while trying; D/K/M after a final.
    end_at: Instant,
}

/// What the transaction layer tells its user.
#[derive(Debug)]
pub enum TxEvent {
    /// A response for a client transaction (first provisional/final, and every 2xx).
    Response {
        /// Owner given in [`Transactions::send_request`].
        owner: Owner,
        /// Transaction.
        key: TxKey,
        /// The response.
        msg: Message,
    },
    /// Timer B/F fired or the transport failed: treat as 408.
    Timeout {
        /// Owner.
        owner: Owner,
        /// Transaction.
        key: TxKey,
    },
    /// A 2xx to an INVITE was never ACKed (64·T1).
    AckTimeout {
        /// Owner set with [`Transactions::set_owner`].
        owner: Owner,
    },
}

/// What became of a received request.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// New server transaction: the TU must answer it via [`Transactions::respond`].
    New(TxKey),
    /// A retransmission, answered (or ignored) here.
    Absorbed,
    /// An ACK that matched no INVITE transaction in Completed state: for the TU (ACK to 2xx).
    Ack,
    /// A new request over a [`Limits`] bound: no transaction; the TU drops it or answers it
    /// statelessly.
    Refused(Overload),
}

/// The transaction table.
pub struct Transactions {
    timers: Timers,
    limits: Limits,
    /// `node.name`: our `User-Agent` (requests) and `Server` (responses).
    agent: Option<String>,
    server: HashMap<TxKey, ServerTx>,
    /// Server transactions per untrusted source IP (no entry at zero), and their sum.
    per_source: HashMap<IpAddr, usize>,
    untrusted: usize,
    /// Sum of the server transactions' costs.
    server_bytes: usize,
    client: HashMap<TxKey, ClientTx>,
    heap: BinaryHeap<Reverse<(Instant, TxKey)>>,
    out: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl Transactions {
    /// An empty table.
    pub fn new(timers: Timers, limits: Limits) -> Self {
        Self {
            timers,
            limits,
            agent: None,
            server: HashMap::new(),
            per_source: HashMap::new(),
            untrusted: 0,
            server_bytes: 0,
            client: HashMap::new(),
            heap: BinaryHeap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Number of live transactions (server, client).
    pub fn len(&self) -> (usize, usize) {
        (self.server.len(), self.client.len())
    }

    /// Bytes the server transactions hold (keys and stored responses) and the sources they are
    /// from.
    pub fn server_footprint(&self) -> (usize, usize) {
        (self.server_bytes, self.per_source.len())
    }

    /// The `User-Agent`/`Server` value stamped on what we send (`node.name`).
    pub fn set_agent(&mut self, name: &str) {
        self.agent = (!name.is_empty()).then(|| name.to_string());
    }

    /// New bounds (a reload); what is held already stays until it ends.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn remove_server(&mut self, k: &TxKey) {
        let Some(tx) = self.server.remove(k) else { return };
        self.server_bytes -= tx.cost;
        let Some(src) = tx.untrusted else { return };
        self.untrusted -= 1;
        if let Some(n) = self.per_source.get_mut(&src) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&src);
            }
        }
    }

    /// Drops a server transaction without answering (a request the TU decided to ignore).
    pub fn forget_server(&mut self, k: &TxKey) {
        self.remove_server(k);
    }

    fn arm(&mut self, at: Instant, k: &TxKey) {
        self.heap.push(Reverse((at, k.clone())));
    }

    /// A request arrived from `dest.remote`. `dest` is where responses go (RFC 3261 §18.2.2).
    /// `trunk`: the source is a trunk's address (only the total bounds it).
    pub fn on_request(&mut self, now: Instant, msg: &Message, dest: Dest, trunk: bool) -> Incoming {
        let Some(method) = msg.method().cloned() else { return Incoming::Absorbed };
        let Some(k) = server_key(msg, &method, dest.remote.ip()) else { return Incoming::Absorbed };
        if let Some(tx) = self.server.get_mut(&k) {
            if method == Method::Ack {
                if tx.invite && tx.state == SState::Completed {
                    tx.state = SState::Confirmed;
                    tx.retx_at = None;
                    let at = now + if dest.transport.reliable() { Duration::ZERO } else { self.timers.t4 };
                    tx.end_at = Some(at);
                    self.arm(at, &k);
                    return Incoming::Absorbed;
                }
                if tx.state == SState::Confirmed {
                    return Incoming::Absorbed;
                }
                return Incoming::Ack;
            }
            // Retransmitted request: resend the last response, if any.
            if let Some(last) = &tx.last {
                if tx.state != SState::Accepted {
                    self.out.push_back(Transmit { dest: tx.dest, data: last.clone() });
                }
            }
            return Incoming::Absorbed;
        }
        if method == Method::Ack {
            return Incoming::Ack;
        }
        let untrusted = (!trunk).then(|| dest.remote.ip());
        if let Some(src) = untrusted {
            let held = self.per_source.get(&src).copied().unwrap_or(0);
            if held >= self.limits.per_source || self.untrusted >= self.limits.total / 4 {
                return Incoming::Refused(Overload::Source);
            }
        }
        if self.server.len() >= self.limits.total || self.server_bytes + k.len() > self.limits.bytes {
            return Incoming::Refused(Overload::Total);
        }
        if let Some(src) = untrusted {
            *self.per_source.entry(src).or_insert(0) += 1;
            self.untrusted += 1;
        }
        self.server_bytes += k.len();
        let invite = method == Method::Invite;
        self.server.insert(
            k.clone(),
            ServerTx {
                invite,
                untrusted,
                cost: k.len(),
                state: SState::Proceeding,
                owner: None,
                dest,
                last: None,
                retx_at: None,
                interval: self.timers.t1,
                end_at: None,
            },
        );
        Incoming::New(k)
    }

    /// Is this server transaction still alive (e.g. an INVITE a CANCEL refers to)?
    pub fn server_alive(&self, k: &TxKey) -> bool {
        self.server.get(k).is_some_and(|t| t.state == SState::Proceeding)
    }

    /// Attaches an owner to a server transaction (INVITE: for [`TxEvent::AckTimeout`]).
    pub fn set_owner(&mut self, k: &TxKey, owner: Owner) {
        if let Some(t) = self.server.get_mut(k) {
            t.owner = Some(owner);
        }
    }

    /// The owner of a server transaction.
    pub fn owner_of(&self, k: &TxKey) -> Option<Owner> {
        self.server.get(k).and_then(|t| t.owner)
    }

    /// Sends a response within a server transaction. Responses after a final are ignored, except
    /// that nothing is sent for a transaction that no longer exists.
    pub fn respond(&mut self, now: Instant, k: &TxKey, resp: &Message) {
        let Some(code) = resp.code() else { return };
        let t = self.timers;
        let Some(tx) = self.server.get_mut(k) else { return };
        if tx.state != SState::Proceeding {
            return;
        }
        let server = self.agent.as_deref().filter(|_| resp.header(&HName::Server).is_none());
        let data = resp.to_bytes_with(server.map(|a| ("Server", a)));
        self.out.push_back(Transmit { dest: tx.dest, data: data.clone() });
        let old = tx.last.as_ref().map_or(0, Vec::len);
        let over = self.server_bytes - old + data.len() > self.limits.bytes;
        if over && !tx.invite && code >= 200 {
            // Sent, not kept: a retransmitted request will be answered afresh.
            return self.remove_server(k);
        }
        if !over {
            tx.cost = tx.cost - old + data.len();
            self.server_bytes = self.server_bytes - old + data.len();
            tx.last = Some(data);
        }
        if code < 200 {
            return;
        }
        let reliable = tx.dest.transport.reliable();
        if tx.invite {
            tx.state = if code < 300 { SState::Accepted } else { SState::Completed };
            // 2xx is retransmitted until ACK even on reliable transports? No: RFC 3261 §13.3.1.4
            // retransmits 2xx only for unreliable transports; the ACK wait (64·T1) applies to both.
            tx.retx_at = (!reliable).then(|| now + t.t1);
            tx.interval = t.t1;
            let end = now + t.t64();
            tx.end_at = Some(end);
            if let Some(r) = tx.retx_at {
                self.heap.push(Reverse((r, k.clone())));
            }
            self.heap.push(Reverse((end, k.clone())));
        } else {
            tx.state = SState::Completed;
            let end = now + if reliable { Duration::ZERO } else { t.t64() };
            tx.end_at = Some(end);
            self.heap.push(Reverse((end, k.clone())));
        }
    }

    /// Sends a final response to a server transaction's request and drops the transaction at
    /// once (RFC 3261 §8.2.7, a stateless UAS: how challenges are commonly sent). Nothing is kept
    /// for retransmission: a retransmitted request is a new one, answered afresh; the ACK to a
    /// non-2xx sent so matches nothing and is absorbed by the TU.
    pub fn respond_stateless(&mut self, k: &TxKey, resp: &Message) {
        let Some(tx) = self.server.get(k) else { return };
        if tx.state != SState::Proceeding {
            return;
        }
        let server = self.agent.as_deref().filter(|_| resp.header(&HName::Server).is_none());
        let data = resp.to_bytes_with(server.map(|a| ("Server", a)));
        self.out.push_back(Transmit { dest: tx.dest, data });
        self.remove_server(k);
    }

    /// The TU got the ACK for a 2xx: stop retransmitting it.
    pub fn ack_2xx(&mut self, now: Instant, k: &TxKey) {
        if let Some(tx) = self.server.get_mut(k) {
            if tx.state == SState::Accepted && tx.retx_at.is_some() {
                tx.retx_at = None;
                tx.owner = None;
                // Stay (absorbing INVITE retransmissions) until timer L, without retransmitting.
                let _ = now;
            }
        }
    }

    /// Starts a client transaction; transmits the request.
    pub fn send_request(&mut self, now: Instant, mut msg: Message, dest: Dest, owner: Owner) -> TxKey {
        if let Some(a) = &self.agent {
            if msg.header(&HName::UserAgent).is_none() {
                // Kept in the message: its retransmissions and the CANCEL built from it carry it.
                msg.push(HName::UserAgent, a.clone());
            }
        }
        let method = msg.method().cloned().unwrap_or(Method::Options);
        let k = key(false, msg.top_via_ref().and_then(|v| v.branch()).unwrap_or_default(), &method);
        let bytes = msg.to_bytes();
        self.out.push_back(Transmit { dest, data: bytes.clone() });
        let reliable = dest.transport.reliable();
        let retx_at = (!reliable).then(|| now + self.timers.t1);
        let end_at = now + self.timers.t64();
        self.client.insert(
            k.clone(),
            ClientTx {
                invite: method == Method::Invite,
                state: CState::Calling,
                owner,
                dest,
                request: msg,
                bytes,
                ack: None,
                retx_at,
                interval: self.timers.t1,
                end_at,
            },
        );
        if let Some(r) = retx_at {
            self.arm(r, &k);
        }
        self.arm(end_at, &k);
        k
    }

    /// The request a client transaction sent (to build CANCEL).
    pub fn client_request(&self, k: &TxKey) -> Option<&Message> {
        self.client.get(k).map(|t| &t.request)
    }

    /// A response arrived; matched by top Via branch and CSeq method (§17.1.3).
    pub fn on_response(&mut self, now: Instant, msg: Message) {
        let Some(via) = msg.top_via_ref() else { return };
        let Some(cseq) = msg.cseq() else { return };
        let Some(branch) = via.branch() else { return };
        let k = key(false, branch, &cseq.method);
        let Some(code) = msg.code() else { return };
        let t = self.timers;
        let Some(tx) = self.client.get_mut(&k) else { return };
        let reliable = tx.dest.transport.reliable();
        match (tx.state, code) {
            (CState::Calling | CState::Proceeding, 100..=199) => {
                tx.state = CState::Proceeding;
                if tx.invite {
                    tx.retx_at = None;
                }
                let owner = tx.owner;
                self.events.push_back(TxEvent::Response { owner, key: k, msg });
            }
            (CState::Calling | CState::Proceeding, 200..=299) => {
                tx.retx_at = None;
                if tx.invite {
                    tx.state = CState::Accepted;
                    tx.end_at = now + t.t64();
                } else {
                    tx.state = CState::Completed;
                    tx.end_at = now + if reliable { Duration::ZERO } else { t.t4 };
                }
                let (owner, end) = (tx.owner, tx.end_at);
                self.arm(end, &k);
                self.events.push_back(TxEvent::Response { owner, key: k, msg });
            }
            (CState::Calling | CState::Proceeding, _) => {
                tx.retx_at = None;
                tx.state = CState::Completed;
                if tx.invite {
                    let ack = build_ack(&tx.request, &msg).to_bytes();
                    self.out.push_back(Transmit { dest: tx.dest, data: ack.clone() });
                    tx.ack = Some(ack);
                    tx.end_at = now + if reliable { Duration::ZERO } else { Duration::from_secs(32) };
                } else {
                    tx.end_at = now + if reliable { Duration::ZERO } else { t.t4 };
                }
                let (owner, end) = (tx.owner, tx.end_at);
                self.arm(end, &k);
                self.events.push_back(TxEvent::Response { owner, key: k, msg });
            }
            (CState::Accepted, 200..=299) => {
                let owner = tx.owner;
                self.events.push_back(TxEvent::Response { owner, key: k, msg });
            }
            (CState::Completed, 300..=699) => {
                if let Some(a) = &tx.ack {
                    self.out.push_back(Transmit { dest: tx.dest, data: a.clone() });
                }
            }
            _ => {}
        }
    }

    /// The transport to `remote` failed (TCP connect/reset): client transactions there time out.
    pub fn on_transport_error(&mut self, remote: SocketAddr) {
        let keys: Vec<TxKey> = self
            .client
            .iter()
            .filter(|(_, t)| t.dest.remote == remote && matches!(t.state, CState::Calling | CState::Proceeding))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(t) = self.client.remove(&k) {
                self.events.push_back(TxEvent::Timeout { owner: t.owner, key: k });
            }
        }
    }

    /// Drops a client transaction without telling anyone (the TU gave up on it).
    pub fn forget_client(&mut self, k: &TxKey) {
        self.client.remove(k);
    }

    /// Runs every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, k))) = self.heap.pop() else { break };
            self.fire(now, &k);
        }
    }

    fn fire(&mut self, now: Instant, k: &TxKey) {
        let t = self.timers;
        if let Some(tx) = self.server.get_mut(k) {
            if let Some(r) = tx.retx_at {
                if r <= now && matches!(tx.state, SState::Completed | SState::Accepted) {
                    if let Some(last) = &tx.last {
                        self.out.push_back(Transmit { dest: tx.dest, data: last.clone() });
                    }
                    tx.interval = (tx.interval * 2).min(t.t2);
                    let next = now + tx.interval;
                    tx.retx_at = Some(next);
                    self.heap.push(Reverse((next, k.clone())));
                }
            }
            if tx.end_at.is_some_and(|e| e <= now) {
                if tx.state == SState::Accepted && tx.retx_at.is_some() {
                    if let Some(o) = tx.owner {
                        self.events.push_back(TxEvent::AckTimeout { owner: o });
                    }
                }
                tx.state = SState::Terminated;
                self.remove_server(k);
            }
            return;
        }
        if let Some(tx) = self.client.get_mut(k) {
            if let Some(r) = tx.retx_at {
                if r <= now && matches!(tx.state, CState::Calling | CState::Proceeding) {
                    self.out.push_back(Transmit { dest: tx.dest, data: tx.bytes.clone() });
                    tx.interval = if tx.invite {
                        tx.interval * 2
                    } else if tx.state == CState::Proceeding {
                        t.t2
                    } else {
                        (tx.interval * 2).min(t.t2)
                    };
                    let next = now + tx.interval;
                    tx.retx_at = Some(next);
                    self.heap.push(Reverse((next, k.clone())));
                }
            }
            if tx.end_at <= now {
                if matches!(tx.state, CState::Calling | CState::Proceeding) {
                    // Timer B / F. A proceeding INVITE has no timer B (§17.1.1.2): it rings until
                    // the TU cancels it.
                    if tx.invite && tx.state == CState::Proceeding {
                        tx.end_at = now + Duration::from_secs(3600);
                        let e = tx.end_at;
                        self.heap.push(Reverse((e, k.clone())));
                        return;
                    }
                    let owner = tx.owner;
                    self.events.push_back(TxEvent::Timeout { owner, key: k.clone() });
                }
                tx.state = CState::Terminated;
                self.client.remove(k);
            }
        }
    }

    /// The earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Next datagram/segment to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// Next event for the TU.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same R-URI, top Via, From,
/// Call-ID, CSeq number and Route as the INVITE; To from the response.
pub fn build_ack(invite: &Message, resp: &Message) -> Message {
    let mut a = Message::request(Method::Ack, invite.uri().unwrap_or("sip:invalid"));
    if let Some(v) = invite.header(&HName::Via) {
        a.push(HName::Via, v);
    }
    a.push(HName::MaxForwards, "70");
    for n in [HName::From] {
        if let Some(v) = invite.header(&n) {
            a.push(n, v);
        }
    }
    if let Some(v) = resp.header(&HName::To) {
        a.push(HName::To, v);
    }
    if let Some(v) = invite.call_id() {
        a.push(HName::CallId, v);
    }
    let seq = invite.cseq().map_or(1, |c| c.seq);
    a.push(HName::CSeq, format!("{seq} ACK"));
    for r in invite.headers_of(&HName::Route) {
        a.push(HName::Route, r);
    }
    a
}

mod key;
use key::key;
pub use key::{server_key, CallKey, Owner, Purpose, TxKey};

#[cfg(test)]
mod tests;
