//! Simulated-time tests of the relay core's media timeouts: the session's (both legs silent) and
//! each leg's (one-way media), RTCP keeping a leg on hold alive, re-arming by media and Update.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::relay::{Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::rtcp::RtcpRepr;
use xtrunk_datapath::wire::rtp::{RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const ID: SessionId = SessionId(1);

fn a() -> SocketAddr {
    "198.51.100.10:4000".parse().unwrap()
}

fn b() -> SocketAddr {
    "203.0.113.20:6000".parse().unwrap()
}

fn leg(port: u16, remote: SocketAddr) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(RELAY_IP, port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

/// Leg 0 on 10000 (peer A), leg 1 on 10002 (peer B); RTCP on 10001 / 10003.
fn spec(session_ms: u32, leg_ms: [u32; 2]) -> SessionSpec {
    SessionSpec {
        id: ID,
        legs: [leg(10000, a()), leg(10002, b())],
        media_timeout_ms: session_ms,
        leg_timeout_ms: leg_ms,
        allow_fast_path: false,
    }
}

struct Rig {
    r: Relay,
    seq: u16,
}

impl Rig {
    fn new(now: u64, s: SessionSpec) -> Self {
        let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 4 });
        let mut ev = vec![];
        r.apply(now, &Command::Create(s), &mut |e| ev.push(e));
        assert_eq!(ev, vec![Event::Created(ID)]);
        Self { r, seq: 0 }
    }

    /// RTP from the peer of `leg`.
    fn rtp(&mut self, now: u64, leg: usize) {
        self.seq = self.seq.wrapping_add(1);
        let r = RtpRepr {
            marker: false,
            payload_type: 0,
            sequence_number: self.seq,
            timestamp: u32::from(self.seq) * 160,
            ssrc: 0x1000 + leg as u32,
            csrc_count: 0,
            csrcs: [0; MAX_CSRC],
            extension: None,
            padding: 0,
        };
        let mut buf = vec![0u8; 256];
        let len = r.emit(&mut buf, &[0xFF; 160]).unwrap();
        let (port, src) = if leg == 0 { (10000, a()) } else { (10002, b()) };
        let v = self.r.handle_packet(now, port, src, &mut buf, len);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    }

    /// An RTCP receiver report (no RTP) from the peer of `leg`, on its RTCP port.
    fn rtcp(&mut self, now: u64, leg: usize) {
        let mut buf = vec![0u8; 256];
        let len = RtcpRepr::ReceiverReport { ssrc: 0x2000 + leg as u32, reports: &[] }.emit(&mut buf).unwrap();
        let (port, mut src) = if leg == 0 { (10001, a()) } else { (10003, b()) };
        src.set_port(src.port() + 1);
        let v = self.r.handle_packet(now, port, src, &mut buf, len);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    }

    fn poll(&mut self, now: u64) -> Vec<Event> {
        let mut ev = vec![];
        self.r.poll_timeouts(now, &mut |e| ev.push(e));
        ev
    }
}

fn timeout(idle_ms: u64, leg: Option<u8>) -> Event {
    Event::MediaTimeout { id: ID, idle_ms, leg }
}

#[test]
fn silent_leg_times_out_while_the_other_sends() {
    // Session timeout 60 s, leg timeouts 10 s; A sends every 20 ms, B never does.
    let mut t = Rig::new(0, spec(60_000, [10_000, 10_000]));
    let mut ev = vec![];
    for now in (20..=12_000).step_by(20) {
        t.rtp(now, 0);
        ev.extend(t.poll(now));
    }
    assert_eq!(ev, vec![timeout(10_000, Some(1))], "leg 1 alone, once, at its timeout");
    // B starts sending: re-armed; it goes silent again and is reported again 10 s later.
    t.rtp(12_000, 1);
    let mut ev = vec![];
    for now in (12_020..=23_000).step_by(20) {
        t.rtp(now, 0);
        ev.extend(t.poll(now));
    }
    assert_eq!(ev, vec![timeout(10_000, Some(1))]);
}

#[test]
fn rtcp_only_leg_on_hold_is_alive() {
    // B is on hold: no RTP, a receiver report every 5 s. A plays music on hold.
    let mut t = Rig::new(0, spec(60_000, [10_000, 10_000]));
    let mut ev = vec![];
    for now in (20..=120_000).step_by(20) {
        t.rtp(now, 0);
        if now % 5_000 == 0 {
            t.rtcp(now, 1);
        }
        ev.extend(t.poll(now));
    }
    assert!(ev.is_empty(), "{ev:?}");
    // B's reports stop: now it is silent in both RTP and RTCP.
    for now in (120_020..=131_000).step_by(20) {
        t.rtp(now, 0);
        ev.extend(t.poll(now));
    }
    assert_eq!(ev, vec![timeout(10_000, Some(1))]);
    assert_eq!(t.r.session_stats(ID).unwrap()[1].rtcp_packets, 24);
}

#[test]
fn both_legs_silent_is_the_session_timeout() {
    let mut t = Rig::new(100, spec(30_000, [10_000, 10_000]));
    t.rtp(1_000, 0);
    t.rtp(1_000, 1);
    let mut ev = vec![];
    for now in (1_000..=40_000).step_by(100) {
        ev.extend(t.poll(now));
    }
    assert_eq!(ev, vec![timeout(30_000, None)], "no leg timeout while both legs are silent");
    // A resumes alone: B has been silent for 39 s while A sends, reported at once.
    t.rtp(40_000, 0);
    assert_eq!(t.poll(40_000), vec![timeout(39_000, Some(1))]);
}

#[test]
fn leg_timeouts_are_per_leg_and_zero_is_off() {
    // Leg 0 never times out; leg 1 after 15 s.
    let mut t = Rig::new(0, spec(0, [0, 15_000]));
    let mut ev = vec![];
    for now in (20..=40_000).step_by(20) {
        t.rtp(now, if now < 20_000 { 1 } else { 0 });
        ev.extend(t.poll(now));
    }
    assert_eq!(ev, vec![timeout(15_000, Some(1))], "leg 0 silent for 20 s is not reported");
}

#[test]
fn an_update_restarts_the_leg_counts() {
    let mut t = Rig::new(0, spec(0, [10_000, 10_000]));
    for now in (20..=9_000).step_by(20) {
        t.rtp(now, 0);
        assert!(t.poll(now).is_empty());
    }
    // A re-INVITE at 9 s (e.g. the callee answered): leg 1 gets a full 10 s from here.
    let mut u = vec![];
    t.r.apply(9_000, &Command::Update(spec(0, [10_000, 10_000])), &mut |e| u.push(e));
    assert_eq!(u, vec![Event::Updated(ID)]);
    let mut ev = vec![];
    for now in (9_020..=20_000).step_by(20) {
        t.rtp(now, 0);
        ev.extend(t.poll(now).into_iter().map(|e| (now, e)));
    }
    assert_eq!(ev, vec![(19_000, timeout(10_000, Some(1)))], "10 s after the Update, not after creation");
}

#[test]
fn fast_path_credit_keeps_a_leg_alive() {
    let mut t = Rig::new(0, spec(0, [10_000, 10_000]));
    let mut ev = vec![];
    for now in (1_000..=30_000).step_by(1_000) {
        t.r.credit_fast_path(10000, 50, 8_000, now);
        t.r.credit_fast_path(10003, 1, 60, now); // leg 1: RTCP only, forwarded in the kernel
        ev.extend(t.poll(now));
    }
    assert!(ev.is_empty(), "{ev:?}");
}
