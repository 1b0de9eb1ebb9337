//! The sans-IO relay core: sessions, legs, latching, payload mapping, stats. No sockets, no clock.
//!
//! A [`Relay`] holds sessions keyed by their local ports. Backends (the socket backend, the
//! AF_XDP backend) feed it commands ([`Relay::apply`]) and received UDP payloads
//! ([`Relay::handle_packet`]), and send what it returns. Time is always an argument (`now_ms`, the
//! backend's monotonic milliseconds).
//!
//! # Invariants
//! - The packet path ([`Relay::handle_packet`], [`Relay::poll_reframed`],
//!   [`Relay::credit_fast_path`], [`Relay::poll_timeouts`]) does not allocate: sessions live in a
//!   preallocated slot table (codec, interworking and re-framing state made with them), ports are
//!   resolved through a flat 65 536-entry index, the timer heap and report lists are preallocated.
//! - No wire input can make it panic: every packet is parsed with a checked view first, and every
//!   refusal is a [`DropReason`] counted in [`DropCounters`] and in the leg's `dropped` stat.
//!
//! - A packet is relayed only if it comes from its leg's peer (the SDP address, or the source the
//!   leg latched to under the NAT-aware rule of [`latch`]); from any other source it
//!   is dropped ([`DropReason::SourceMismatch`], and the leg's `rejected_sources`) and nothing is
//!   ever sent toward that source.
//!
//! # Sessions and ports
//! Each session joins leg 0 (customer/PBX) and leg 1 (carrier). A leg owns its even RTP port and,
//! unless `rtcp_mux`, the RTCP port RTP+1. A datagram that arrives on a leg's port from that
//! leg's peer is forwarded to the *other* leg's peer, sent from the other leg's local port.
//!
//! # Latching
//! See [`latch`]: a leg's peer is its SDP address; `Once`/`Follow` may latch to
//! another source only from the SDP address's IP or the leg's signalling IP, within
//! [`LATCH_WINDOW_MS`] of its first packet and before any packet from the SDP address, and with
//! the SSRC already seen on the leg.
//!
//! # Media timeouts and the fast path
//! See [`timeout`]: the session's (both legs silent) and each leg's (one-way media; RTCP keeps a
//! leg alive). [`Relay::fast_path_rule`] says when the XDP program may forward a port's packets
//! itself: among other things, payload maps that agree on every payload type in use.

mod crypto;
mod drops;
mod dtmf;
mod fastpath;
pub mod g711;
pub mod inband;
pub mod latch;
mod payload;
mod ports;
pub mod quality;
pub mod reframe;
mod stats;
pub mod timeout;
pub mod transcode;
mod udptl;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;

use xtrunk_ring::msg::{Codec, Command, DeleteReason, ErrorCode, Event, LegSpec, SessionId, SessionSpec, StreamStats};

use crate::wire::{dtmf::DtmfPayload, rtcp, rtcp_xr, rtp};

pub use self::drops::{DropCounters, DropReason};
pub use self::fastpath::pt_maps_allow_fast_path;
use self::inband::Interwork;
use self::latch::LatchState;
pub use self::latch::LATCH_WINDOW_MS;
pub use self::payload::needs_transcoder;
use self::payload::PayloadAction;
pub use self::ports::{spec_ports, NoPortHooks, PortHooks};
use self::reframe::{Audio, Reframer};
use self::stats::StreamTracker;
use self::transcode::Transcoder;

/// Configuration of a relay (or of one shard of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Lowest local media port a session may use.
    pub port_min: u16,
    /// Highest local media port a session may use (RTCP ports included).
    pub port_max: u16,
    /// Most sessions held at once; slots are preallocated.
    pub max_sessions: usize,
}

/// What to do with a datagram handed to [`Relay::handle_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send `buf[..len]` from local address `from` to `to`.
    Forward {
        /// Length of the (possibly rewritten) payload.
        len: usize,
        /// The relay's local address to send from (the other leg's RTP or RTCP port).
        from: SocketAddr,
        /// The other leg's peer.
        to: SocketAddr,
    },
    /// Drop it; already counted.
    Drop(DropReason),
}

/// A forwarding rule the XDP fast path may apply to every packet arriving on one local port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardRule {
    /// The only source a packet may come from to be forwarded (the arriving leg's peer). Packets
    /// from any other source must go to the relay core, which drops and counts them.
    pub peer: SocketAddr,
    /// Source address of forwarded packets (the other leg's local address and port).
    pub from: SocketAddr,
    /// Destination (the other leg's peer).
    pub to: SocketAddr,
}

const NO_SLOT: u32 = u32::MAX;

/// Index entry: slot << 2 | leg << 1 | is_rtcp_port.
fn encode(slot: u32, leg: usize, rtcp: bool) -> u32 {
    (slot << 2) | ((leg as u32) << 1) | u32::from(rtcp)
}

#[derive(Debug, Clone, Default)]
struct LegState {
    rx: StreamTracker,
    latch: LatchState,
    srtp: crypto::LegSrtp,
    /// RFC 4733 events received, for [`Event::Dtmf`] ([`dtmf`]).
    events: dtmf::EventRx,
}

#[derive(Debug)]
struct Session {
    spec: SessionSpec,
    legs: [LegState; 2],
    clock: timeout::MediaClock,
    gen: u32,
    /// Codec state when the legs disagree on G.729 vs G.711 ([`needs_transcoder`]).
    xcode: Option<Box<Transcoder>>,
    /// DTMF interworking when one leg has telephone-event and the other not.
    inband: Option<Box<Interwork>>,
    /// Re-packetising when the legs' ptimes differ ([`reframe`]).
    reframe: Option<Box<Reframer>>,
    /// In `Relay::rule_changes` (its fast-path rules may have changed by latching).
    rule_noted: bool,
}

fn clock_rate(codec: Option<Codec>) -> Option<u32> {
    match codec {
        // Jitter is not computed on telephone-event: its timestamp is the event start, repeated.
        Some(Codec::TelephoneEvent) => None,
        Some(Codec::Opus) => Some(48_000),
        // G.711, G.722 (8000 by RFC 3551 quirk), G.729, CN, and unknown pass-through payloads.
        _ => Some(8_000),
    }
}

/// The media relay core. See the module docs.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    slots: Vec<Option<Session>>,
    free: Vec<u32>,
    by_id: HashMap<SessionId, u32>,
    port_index: Vec<u32>,
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    counters: DropCounters,
    next_gen: u32,
    /// DTMF digits (RFC 4733 events received, in-band digits detected), for [`Event::Dtmf`]
    /// (drained by [`Relay::poll_timeouts`]; preallocated, full = later digits not reported,
    /// still relayed).
    dtmf_out: Vec<(SessionId, u8, inband::Digit)>,
    /// Re-framed directions with another whole packet buffered: (slot, generation, leg), for
    /// [`Relay::poll_reframed`] (preallocated, two per session).
    reframe_due: Vec<(u32, u32, u8)>,
    /// Slots whose fast-path rules latching may have changed, for [`Relay::drain_rule_changes`]
    /// (preallocated; full = `rule_overflow`, every rule to be re-read).
    rule_changes: Vec<u32>,
    rule_overflow: bool,
}

/// Most in-band digit reports held between two [`Relay::poll_timeouts`].
const DTMF_OUT: usize = 1024;

impl Relay {
    /// A relay with `cfg.max_sessions` preallocated slots.
    pub fn new(cfg: RelayConfig) -> Self {
        let n = cfg.max_sessions;
        Self {
            cfg,
            slots: (0..n).map(|_| None).collect(),
            free: (0..n as u32).rev().collect(),
            by_id: HashMap::with_capacity(n),
            port_index: vec![NO_SLOT; 65536],
            timers: BinaryHeap::with_capacity(Self::timer_capacity(n)),
            counters: DropCounters::default(),
            next_gen: 1,
            dtmf_out: Vec::with_capacity(DTMF_OUT),
            reframe_due: Vec::with_capacity(2 * n),
            rule_changes: Vec::with_capacity(2 * n),
            rule_overflow: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// Drop counters, one per reason.
    pub fn counters(&self) -> &DropCounters {
        &self.counters
    }

    /// Number of sessions held.
    pub fn session_count(&self) -> usize {
        self.by_id.len()
    }

    /// Every local port in use (RTP and RTCP), in no particular order.
    pub fn local_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots.iter().flatten().flat_map(|s| spec_ports(&s.spec))
    }

    /// The current spec of a session.
    pub fn session_spec(&self, id: SessionId) -> Option<&SessionSpec> {
        self.session(id).map(|s| &s.spec)
    }

    /// Current per-leg receive stats of a session.
    pub fn session_stats(&self, id: SessionId) -> Option<[StreamStats; 2]> {
        self.session(id).map(|s| [s.legs[0].rx.rated(), s.legs[1].rx.rated()])
    }

    /// The session owning `port`, if any.
    pub fn session_of_port(&self, port: u16) -> Option<SessionId> {
        let (slot, _, _) = self.lookup(port)?;
        self.slots[slot].as_ref().map(|s| s.spec.id)
    }

    /// The peer address the relay currently sends this leg's RTP to (latched or SDP).
    pub fn leg_destination(&self, id: SessionId, leg: usize) -> Option<SocketAddr> {
        let s = self.session(id)?;
        Self::rtp_dest(s, leg.min(1))
    }

    fn session(&self, id: SessionId) -> Option<&Session> {
        let slot = *self.by_id.get(&id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn lookup(&self, port: u16) -> Option<(usize, usize, bool)> {
        let e = self.port_index[usize::from(port)];
        (e != NO_SLOT).then_some(((e >> 2) as usize, ((e >> 1) & 1) as usize, e & 1 == 1))
    }

    /// Applies a ring command; pushes the resulting events. Same as [`Relay::apply_with`] with
    /// [`NoPortHooks`].
    pub fn apply(&mut self, now_ms: u64, cmd: &Command, events: &mut impl FnMut(Event)) {
        self.apply_with(now_ms, cmd, &mut NoPortHooks, events)
    }

    /// Applies a ring command, calling `hooks` for every port opened or closed, and pushes the
    /// resulting events (exactly one answer per Create/Update/Delete; per Dump one
    /// [`Event::Session`] per session then [`Event::DumpDone`]).
    pub fn apply_with(
        &mut self,
        now_ms: u64,
        cmd: &Command,
        hooks: &mut impl PortHooks,
        events: &mut impl FnMut(Event),
    ) {
        match cmd {
            Command::Create(spec) => match self.create(now_ms, spec, hooks) {
                Ok(()) => events(Event::Created(spec.id)),
                Err((code, port)) => events(Event::Error { id: spec.id, code, port }),
            },
            Command::Update(spec) => match self.update(now_ms, spec, hooks) {
                Ok(()) => events(Event::Updated(spec.id)),
                Err((code, port)) => events(Event::Error { id: spec.id, code, port }),
            },
            Command::Delete(id) => match self.delete(*id, hooks) {
                Some(stats) => events(Event::Deleted { id: *id, reason: DeleteReason::Requested, stats }),
                None => events(Event::Error { id: *id, code: ErrorCode::UnknownSession, port: 0 }),
            },
            Command::Dump { token } => {
                let mut count = 0u32;
                for s in self.slots.iter().flatten() {
                    events(Event::Session(s.spec));
                    count += 1;
                }
                events(Event::DumpDone { token: *token, count });
            }
        }
    }

    /// Checks a spec against the configuration and the ports of other sessions (`own` = the slot
    /// being updated, whose ports don't conflict).
    fn validate(&self, spec: &SessionSpec, own: Option<usize>) -> Result<(), (ErrorCode, u16)> {
        if spec.id.0 == 0 {
            return Err((ErrorCode::InvalidSpec, 0));
        }
        for leg in &spec.legs {
            let p = leg.local.port();
            if p % 2 != 0 {
                return Err((ErrorCode::InvalidSpec, p));
            }
            if let Err(e) = crypto::LegSrtp::new(&leg.crypto) {
                log::debug!("session {}: leg on port {p}: unusable SRTP keys: {e}", spec.id.0);
                return Err((ErrorCode::InvalidSpec, p));
            }
        }
        for p in spec_ports(spec) {
            if p < self.cfg.port_min || p > self.cfg.port_max || p == 0 {
                return Err((ErrorCode::PortOutOfRange, p));
            }
        }
        // The two legs must not share a port.
        let ports: [Option<u16>; 4] = {
            let mut a = [None; 4];
            for (i, p) in spec_ports(spec).enumerate() {
                a[i] = Some(p);
            }
            a
        };
        for i in 0..4 {
            for j in i + 1..4 {
                if ports[i].is_some() && ports[i] == ports[j] {
                    return Err((ErrorCode::InvalidSpec, ports[i].unwrap_or(0)));
                }
            }
        }
        for p in spec_ports(spec) {
            if let Some((slot, _, _)) = self.lookup(p) {
                if Some(slot) != own {
                    return Err((ErrorCode::PortInUse, p));
                }
            }
        }
        Ok(())
    }

    fn open_ports(hooks: &mut impl PortHooks, ports: &[u16]) -> Result<(), (ErrorCode, u16)> {
        for (i, &p) in ports.iter().enumerate() {
            if let Err(code) = hooks.open(p) {
                for &q in &ports[..i] {
                    hooks.close(q);
                }
                return Err((code, p));
            }
        }
        Ok(())
    }

    fn index_ports(&mut self, slot: u32, spec: &SessionSpec) {
        for (leg, l) in spec.legs.iter().enumerate() {
            let p = l.local.port();
            self.port_index[usize::from(p)] = encode(slot, leg, false);
            if !l.rtcp_mux {
                self.port_index[usize::from(p.wrapping_add(1))] = encode(slot, leg, true);
            }
        }
    }

    fn create(&mut self, now_ms: u64, spec: &SessionSpec, hooks: &mut impl PortHooks) -> Result<(), (ErrorCode, u16)> {
        if self.by_id.contains_key(&spec.id) {
            return Err((ErrorCode::DuplicateSession, 0));
        }
        self.validate(spec, None)?;
        let Some(&slot) = self.free.last() else {
            return Err((ErrorCode::CapacityExhausted, 0));
        };
        let mut ports = [0u16; 4];
        let mut n = 0;
        for p in spec_ports(spec) {
            ports[n] = p;
            n += 1;
        }
        let xcode = if needs_transcoder(spec) {
            Some(Transcoder::new().map_err(|_| (ErrorCode::CapacityExhausted, 0))?)
        } else {
            None
        };
        Self::open_ports(hooks, &ports[..n])?;
        self.free.pop();
        // Validated above, so building the contexts succeeds.
        let legs = [0, 1].map(|i| LegState {
            srtp: crypto::LegSrtp::new(&spec.legs[i].crypto).unwrap_or_default(),
            ..LegState::default()
        });
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let clock = timeout::MediaClock::new(now_ms);
        self.slots[slot as usize] = Some(Session {
            spec: *spec,
            legs,
            clock,
            gen,
            xcode,
            inband: Interwork::for_spec(spec),
            reframe: Reframer::for_spec(spec),
            rule_noted: false,
        });
        self.arm_new(slot as usize, now_ms);
        self.by_id.insert(spec.id, slot);
        self.index_ports(slot, spec);
        Ok(())
    }

    fn update(&mut self, now_ms: u64, spec: &SessionSpec, hooks: &mut impl PortHooks) -> Result<(), (ErrorCode, u16)> {
        let Some(&slot) = self.by_id.get(&spec.id) else {
            return Err((ErrorCode::UnknownSession, 0));
        };
        let Some(old) = self.slots[slot as usize].as_ref().map(|s| s.spec) else {
            return Err((ErrorCode::UnknownSession, 0));
        };
        for (o, n) in old.legs.iter().zip(&spec.legs) {
            if o.local.port() != n.local.port() {
                return Err((ErrorCode::InvalidSpec, n.local.port()));
            }
        }
        self.validate(spec, Some(slot as usize))?;
        // Codec state is kept across updates that still need it (its history is the stream's).
        let have = self.slots[slot as usize].as_ref().is_some_and(|s| s.xcode.is_some());
        let new_xcode = match (needs_transcoder(spec), have) {
            (true, false) => Some(Some(Transcoder::new().map_err(|_| (ErrorCode::CapacityExhausted, 0))?)),
            (false, true) => Some(None),
            _ => None,
        };
        let mut added = [0u16; 4];
        let mut na = 0;
        for p in spec_ports(spec) {
            if !spec_ports(&old).any(|q| q == p) {
                added[na] = p;
                na += 1;
            }
        }
        Self::open_ports(hooks, &added[..na])?;
        for p in spec_ports(&old) {
            if !spec_ports(spec).any(|q| q == p) {
                hooks.close(p);
                self.port_index[usize::from(p)] = NO_SLOT;
            }
        }
        self.index_ports(slot, spec);
        let Some(s) = self.slots[slot as usize].as_mut() else {
            return Err((ErrorCode::UnknownSession, 0));
        };
        for (leg, (o, n)) in s.legs.iter_mut().zip(old.legs.iter().zip(&spec.legs)) {
            // A new peer address, policy or signalling IP invalidates what was learned.
            if latch::spec_changed(o, n) {
                leg.latch = LatchState::default();
            }
            // New keys (re-keying re-INVITE): fresh contexts; same keys keep ROC and replay state.
            if o.crypto != n.crypto {
                leg.srtp = crypto::LegSrtp::new(&n.crypto).unwrap_or_default();
            }
        }
        s.spec = *spec;
        if let Some(x) = new_xcode {
            s.xcode = x;
        }
        // DTMF interworking: kept while the same leg stays in-band (its detector's history).
        let iw = Interwork::for_spec(spec);
        if iw.as_ref().map(|i| i.inband_leg()) != s.inband.as_ref().map(|i| i.inband_leg()) {
            s.inband = iw;
        }
        // Re-framing: kept while the ptimes stay (what it buffered belongs to the stream).
        let rf = Reframer::for_spec(spec);
        if rf.as_ref().map(|r| r.ptimes()) != s.reframe.as_ref().map(|r| r.ptimes()) {
            s.reframe = rf;
        }
        self.arm_update(slot as usize, now_ms);
        Ok(())
    }

    fn delete(&mut self, id: SessionId, hooks: &mut impl PortHooks) -> Option<[StreamStats; 2]> {
        let slot = self.by_id.remove(&id)?;
        let s = self.slots[slot as usize].take()?;
        for p in spec_ports(&s.spec) {
            hooks.close(p);
            self.port_index[usize::from(p)] = NO_SLOT;
        }
        self.free.push(slot);
        Some([s.legs[0].rx.rated(), s.legs[1].rx.rated()])
    }

    fn rtp_dest(s: &Session, leg: usize) -> Option<SocketAddr> {
        s.legs[leg].latch.rtp_peer(&s.spec.legs[leg])
    }

    fn rtcp_dest(s: &Session, leg: usize) -> Option<SocketAddr> {
        s.legs[leg].latch.rtcp_peer(&s.spec.legs[leg])
    }

    fn local_addr(spec: &LegSpec, rtcp: bool) -> SocketAddr {
        let mut a = spec.local;
        if rtcp && !spec.rtcp_mux {
            a.set_port(a.port().wrapping_add(1));
        }
        a
    }

    fn drop_on(&mut self, slot: usize, leg: usize, reason: DropReason) -> Verdict {
        self.counters.bump(reason);
        if let Some(s) = self.slots[slot].as_mut() {
            s.legs[leg].rx.on_drop();
        }
        Verdict::Drop(reason)
    }

    /// A packet from a source that is not the leg's peer and may not latch: dropped, counted per
    /// relay and per leg.
    fn reject_source(&mut self, slot: usize, leg: usize) -> Verdict {
        if let Some(s) = self.slots[slot].as_mut() {
            s.legs[leg].rx.on_rejected_source();
        }
        self.drop_on(slot, leg, DropReason::SourceMismatch)
    }

    /// Handles one UDP datagram that arrived on `local_port` from `src`; `buf[..len]` is its
    /// payload and `buf[len..]` spare room. Rewrites in place and says where to send it.
    pub fn handle_packet(
        &mut self,
        now_ms: u64,
        local_port: u16,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Verdict {
        let Some((slot, leg, rtcp_port)) = self.lookup(local_port) else {
            self.counters.bump(DropReason::UnknownPort);
            return Verdict::Drop(DropReason::UnknownPort);
        };
        let Some(pkt) = buf.get_mut(..len).filter(|p| !p.is_empty()) else {
            return self.drop_on(slot, leg, DropReason::BadLength);
        };
        let Some(s) = self.slots[slot].as_ref() else {
            self.counters.bump(DropReason::UnknownPort);
            return Verdict::Drop(DropReason::UnknownPort);
        };
        if s.spec.legs[leg].pt_map.by_codec(Codec::T38).is_some() {
            return self.relay_udptl(now_ms, slot, leg, rtcp_port, src, buf, len);
        }
        let mux = s.spec.legs[leg].rtcp_mux;
        let kind = rtp::classify(pkt);
        let is_rtcp = match (kind, rtcp_port) {
            (rtp::MuxKind::Rtcp, true) => true,
            (rtp::MuxKind::Rtcp, false) if mux => true,
            (rtp::MuxKind::Rtcp, false) => return self.drop_on(slot, leg, DropReason::RtcpNotMuxed),
            (rtp::MuxKind::Rtp, false) => false,
            (rtp::MuxKind::Rtp, true) => return self.drop_on(slot, leg, DropReason::MalformedRtcp),
            _ => return self.drop_on(slot, leg, DropReason::Foreign),
        };
        if !s.legs[leg].latch.admits(&s.spec.legs[leg], rtcp_port, src, latch::sender_ssrc(pkt, is_rtcp), now_ms) {
            return self.reject_source(slot, leg);
        }
        let other = 1 - leg;
        // SRTP/SRTCP receive side: authenticate and decrypt in place.
        let mut len = len;
        if let Some(rx) = self.slots[slot].as_mut().and_then(|s| s.legs[leg].srtp.rx.as_mut()) {
            let r = if is_rtcp { rx.unprotect_rtcp(pkt) } else { rx.unprotect_rtp(pkt) };
            match r {
                Ok(n) => len = n,
                Err(e) => {
                    log::trace!("SRTP unprotect on port {local_port}: {e}");
                    return self.drop_on(slot, leg, DropReason::Srtp);
                }
            }
        }
        let Some(pkt) = buf.get_mut(..len) else {
            return self.drop_on(slot, leg, DropReason::BadLength);
        };
        if is_rtcp {
            if rtcp::validate_compound(pkt, false).is_err() {
                return self.drop_on(slot, leg, DropReason::MalformedRtcp);
            }
            let Some(s) = self.slots[slot].as_mut() else {
                return Verdict::Drop(DropReason::UnknownPort);
            };
            if s.legs[leg].latch.commit(&s.spec.legs[leg], rtcp_port, src, None, now_ms) {
                fastpath::note(&mut s.rule_noted, &mut self.rule_changes, &mut self.rule_overflow, slot);
            }
            let Some(to) = Self::rtcp_dest(s, other) else {
                return self.drop_on(slot, leg, DropReason::NoDestination);
            };
            s.legs[leg].rx.on_rtcp(now_ms);
            // The peer's own quality report (RFC 3611 §4.7): its RTT goes into our E-model.
            if let Some(m) = rtcp_xr::find_voip_metrics(pkt) {
                if m.round_trip_delay_ms > 0 {
                    s.legs[leg].rx.peer_rtt_ms = Some(m.round_trip_delay_ms);
                }
            }
            let from = Self::local_addr(&s.spec.legs[other], true);
            if let Some(tx) = s.legs[other].srtp.tx.as_mut() {
                match tx.protect_rtcp(buf, len) {
                    Ok(n) => len = n,
                    Err(_) => return self.drop_on(slot, leg, DropReason::Srtp),
                }
            }
            self.touch(slot, leg, now_ms);
            return Verdict::Forward { len, from, to };
        }

        // RTP.
        let Some(s) = self.slots[slot].as_ref() else {
            return Verdict::Drop(DropReason::UnknownPort);
        };
        let Ok(p) = rtp::RtpPacket::new_checked(&*pkt) else {
            return self.drop_on(slot, leg, DropReason::MalformedRtp);
        };
        let (mine, theirs) = (&s.spec.legs[leg].pt_map, &s.spec.legs[other].pt_map);
        let (action, codec) = match payload::payload_action(mine, theirs, p.payload_type()) {
            Ok(a) => a,
            Err(r) => return self.drop_on(slot, leg, r),
        };
        if codec == Some(Codec::TelephoneEvent) && DtmfPayload::new_checked(p.payload()).is_err() {
            return self.drop_on(slot, leg, DropReason::MalformedDtmf);
        }
        let (hdr, plen, seq, ssrc, ts) =
            (p.header_len(), p.payload().len(), p.sequence_number(), p.ssrc(), p.timestamp());
        if !payload::fits(action, hdr, plen, buf.len()) || (action.transcodes() && s.xcode.is_none()) {
            return self.drop_on(slot, leg, DropReason::Transcode);
        }
        let Some(s) = self.slots[slot].as_mut() else {
            return Verdict::Drop(DropReason::UnknownPort);
        };
        if s.legs[leg].latch.commit(&s.spec.legs[leg], false, src, Some(ssrc), now_ms) {
            fastpath::note(&mut s.rule_noted, &mut self.rule_changes, &mut self.rule_overflow, slot);
        }
        let Some(to) = Self::rtp_dest(s, other) else {
            return self.drop_on(slot, leg, DropReason::NoDestination);
        };
        let arrival = clock_rate(codec).map(|r| (now_ms.wrapping_mul(u64::from(r)) / 1000) as u32);
        s.legs[leg].rx.on_rtp(now_ms, seq, ssrc, ts, arrival, len);
        if codec.is_some_and(|c| quality::impairment(c).is_some()) {
            s.legs[leg].rx.audio = codec;
        }
        let from = Self::local_addr(&s.spec.legs[other], false);
        if codec == Some(Codec::TelephoneEvent) {
            let (id, out) = (s.spec.id, &mut self.dtmf_out);
            s.legs[leg].events.on_payload(ts, &buf[hdr..hdr + plen], &mut |d| {
                if out.len() < out.capacity() {
                    out.push((id, leg as u8, d));
                }
            });
        }
        // DTMF interworking (`inband`) where the payload is G.711, before or after the codec.
        let mut iw = s.inband.as_deref_mut();
        if action == PayloadAction::ToInband {
            if let Some(iw) = iw {
                iw.on_event(ts, &buf[hdr..hdr + plen]);
            }
            self.counters.bump(DropReason::DtmfToInband);
            return Verdict::Drop(DropReason::DtmfToInband);
        }
        let (id, out) = (s.spec.id, &mut self.dtmf_out);
        let mut notify = |d| {
            if out.len() < out.capacity() {
                out.push((id, leg as u8, d));
            }
        };
        if let (Some(iw), Some(law)) = (iw.as_deref_mut(), payload::law_of(codec)) {
            iw.on_g711(leg, ts, &mut buf[hdr..hdr + plen], law, &mut notify);
        }
        match payload::transform(action, buf, hdr, plen, s.xcode.as_deref_mut()) {
            Ok(Some(n)) => len = hdr + n,
            Ok(None) => {}
            Err(r) => return self.drop_on(slot, leg, r),
        }
        if let (Some(iw), PayloadAction::G729ToG711(_, law)) = (iw.as_deref_mut(), action) {
            iw.on_g711(leg, ts, &mut buf[hdr..len], law, &mut notify);
        }
        let mut audio = Audio::of(payload::output_codec(action, codec));
        if let Some(n) = iw.and_then(|iw| iw.replace(leg, buf, hdr)) {
            (len, audio) = (n, None);
        }
        // Re-packetising toward the other leg's ptime (`reframe`).
        len = match self.reframe_out(now_ms, (slot, leg), buf, hdr, len, audio) {
            Ok(n) => n,
            Err(v) => return v,
        };
        // SRTP transmit side: encrypt and append the tag in the room after `len`.
        if let Some(tx) = self.slots[slot].as_mut().and_then(|s| s.legs[other].srtp.tx.as_mut()) {
            match tx.protect_rtp(buf, len) {
                Ok(n) => len = n,
                Err(_) => return self.drop_on(slot, leg, DropReason::Srtp),
            }
        }
        self.touch(slot, leg, now_ms);
        Verdict::Forward { len, from, to }
    }
}
