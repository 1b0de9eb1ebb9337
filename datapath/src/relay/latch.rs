//! Source check and NAT-aware latching: who may send on a leg, and where the leg's media goes.
//!
//! A leg's *peer* is its SDP address ([`LegSpec::remote`]; for a non-muxed RTCP port, that
//! address with the RTCP port) until the leg latches. A packet whose source is not the peer is
//! accepted only if it may *latch* (the peer becomes its source); otherwise it is dropped, counted
//! as [`DropReason::SourceMismatch`](super::DropReason::SourceMismatch) and in the leg's
//! `rejected_sources`, and nothing is ever sent toward its source.
//!
//! # The latching rule
//! A packet from a source other than the peer latches only if all of these hold:
//! 1. the policy is [`LatchPolicy::Once`] or [`LatchPolicy::Follow`] (`Strict` never latches);
//! 2. its source IP is the SDP address's IP or the leg's signalling source
//!    ([`LegSpec::signal_ip`]): a peer behind a NAT sends from the NAT's address, which is the one
//!    its SIP came from, with whatever port the NAT chose;
//! 3. the leg's latch window is open: it opens when the leg is created (or an Update changes its
//!    SDP address, policy, RTCP port or signalling IP), runs [`LATCH_WINDOW_MS`] from the leg's
//!    first accepted packet, and closes for good at the first packet accepted from the SDP address
//!    itself (the peer is then known not to be behind a NAT);
//! 4. `Once` has not latched this port yet (it latches at most once; `Follow` may re-latch to
//!    each newer such source while the window is open);
//! 5. the sender SSRC (RTP header, or the first RTCP packet's sender SSRC) is the RTP SSRC last
//!    accepted on the leg, if one was: a new source cannot bring a new stream. The peer itself
//!    may change SSRC (a re-INVITE, a restarted phone).
//!
//! Latching is committed only once the packet has passed every other check (SRTP
//! authentication, RTP/RTCP validation, payload mapping), so a packet that is dropped for any
//! reason latches nothing. The window, the SSRC and what was latched reset when an Update
//! changes the leg's SDP address, policy, RTCP port or signalling IP.
//!
//! The check itself costs two address compares for the common case (the packet comes from the
//! peer); nothing here allocates.

use std::net::SocketAddr;

use xtrunk_ring::msg::{LatchPolicy, LegSpec};

/// How long after a leg's first accepted packet it may still (re-)latch.
pub const LATCH_WINDOW_MS: u64 = 2_000;

/// What a leg learned about its peer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LatchState {
    /// Latched RTP source (RTP and, with rtcp-mux, RTCP).
    pub(crate) rtp: Option<SocketAddr>,
    /// Latched RTCP source of a non-muxed RTCP port.
    pub(crate) rtcp: Option<SocketAddr>,
    /// Time of the leg's first accepted packet: the window runs from here.
    window_start_ms: Option<u64>,
    /// A packet came from the SDP address: no more latching.
    closed: bool,
    /// SSRC of the last RTP packet accepted on the leg.
    ssrc: Option<u32>,
}

/// The leg's SDP address with its RTCP port.
pub(crate) fn rtcp_addr(leg: &LegSpec, peer: SocketAddr) -> SocketAddr {
    let mut a = peer;
    a.set_port(if leg.remote_rtcp_port != 0 { leg.remote_rtcp_port } else { peer.port().wrapping_add(1) });
    a
}

/// The sender SSRC of an RTP packet (header bytes 8..12) or of an RTCP compound (its first
/// packet's bytes 4..8); `None` if too short (such a packet fails validation later).
pub(crate) fn sender_ssrc(pkt: &[u8], rtcp: bool) -> Option<u32> {
    let at = if rtcp { 4 } else { 8 };
    let b = pkt.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Did an Update change what the leg's latching depends on?
pub(crate) fn spec_changed(old: &LegSpec, new: &LegSpec) -> bool {
    old.remote != new.remote
        || old.latch != new.latch
        || old.remote_rtcp_port != new.remote_rtcp_port
        || old.signal_ip != new.signal_ip
}

impl LatchState {
    /// Where this leg's RTP goes, and whom it is accepted from: the latched source, else the SDP
    /// address (`Strict`: always the SDP address).
    pub(crate) fn rtp_peer(&self, spec: &LegSpec) -> Option<SocketAddr> {
        match spec.latch {
            LatchPolicy::Strict => spec.remote,
            _ => self.rtp.or(spec.remote),
        }
    }

    /// The same for RTCP: with rtcp-mux the RTP peer; else the latched RTCP source, else the SDP
    /// RTCP address, else the latched RTP source's IP with the RTCP port.
    pub(crate) fn rtcp_peer(&self, spec: &LegSpec) -> Option<SocketAddr> {
        if spec.rtcp_mux {
            return self.rtp_peer(spec);
        }
        let latched = if spec.latch == LatchPolicy::Strict { None } else { self.rtcp };
        latched.or_else(|| spec.remote.map(|r| rtcp_addr(spec, r))).or_else(|| self.rtp.map(|r| rtcp_addr(spec, r)))
    }

    /// The peer of the port a packet arrived on (`rtcp_port`: the non-muxed RTCP port).
    pub(crate) fn peer(&self, spec: &LegSpec, rtcp_port: bool) -> Option<SocketAddr> {
        if rtcp_port {
            self.rtcp_peer(spec)
        } else {
            self.rtp_peer(spec)
        }
    }

    /// May a packet from `src` with sender SSRC `ssrc` be accepted on this leg (see the module
    /// docs)? Changes nothing; [`LatchState::commit`] does once the packet is accepted.
    pub(crate) fn admits(
        &self,
        spec: &LegSpec,
        rtcp_port: bool,
        src: SocketAddr,
        ssrc: Option<u32>,
        now_ms: u64,
    ) -> bool {
        if self.peer(spec, rtcp_port) == Some(src) {
            return true;
        }
        if spec.latch == LatchPolicy::Strict {
            return false;
        }
        let ip = src.ip();
        if spec.remote.map(|r| r.ip()) != Some(ip) && spec.signal_ip != Some(ip) {
            return false;
        }
        if self.closed || self.window_start_ms.is_some_and(|t| now_ms.saturating_sub(t) >= LATCH_WINDOW_MS) {
            return false;
        }
        let latched = if rtcp_port { self.rtcp } else { self.rtp };
        if spec.latch == LatchPolicy::Once && latched.is_some() {
            return false;
        }
        match (self.ssrc, ssrc) {
            (Some(known), Some(s)) => known == s,
            _ => true,
        }
    }

    /// Records an accepted packet from `src` (admitted by [`LatchState::admits`]): latches to
    /// it, starts the window, closes it if `src` is the SDP address, and keeps `rtp_ssrc` (the
    /// SSRC of an accepted RTP packet; `None` for RTCP). Returns whether the latched source
    /// changed (the port's peer, and so the session's fast-path rules, may have).
    #[must_use]
    pub(crate) fn commit(
        &mut self,
        spec: &LegSpec,
        rtcp_port: bool,
        src: SocketAddr,
        rtp_ssrc: Option<u32>,
        now_ms: u64,
    ) -> bool {
        let mut changed = false;
        if spec.latch != LatchPolicy::Strict {
            let latched = if rtcp_port { &mut self.rtcp } else { &mut self.rtp };
            changed = *latched != Some(src);
            *latched = Some(src);
        }
        self.window_start_ms.get_or_insert(now_ms);
        let sdp = if rtcp_port { spec.remote.map(|r| rtcp_addr(spec, r)) } else { spec.remote };
        if sdp == Some(src) {
            self.closed = true;
        }
        if rtp_ssrc.is_some() {
            self.ssrc = rtp_ssrc;
        }
        changed
    }

    /// Is the port's source fixed for good (the XDP fast path may forward without the window
    /// and SSRC rules)? `Strict` with an SDP address, or `Once` once latched.
    pub(crate) fn source_fixed(&self, spec: &LegSpec, rtcp_port: bool) -> bool {
        match spec.latch {
            LatchPolicy::Strict => spec.remote.is_some(),
            LatchPolicy::Once => if rtcp_port { self.rtcp } else { self.rtp }.is_some(),
            LatchPolicy::Follow => false,
        }
    }
}
