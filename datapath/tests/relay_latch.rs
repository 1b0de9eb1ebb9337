//! The relay core's source check and NAT-aware latching (`relay::latch`): a third party's media
//! is never relayed and never answered, before or after latching; a NATed peer latches from its
//! signalling IP within the window; late re-latching and new SSRCs from new sources are refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::relay::{DropReason, ForwardRule, Relay, RelayConfig, Verdict, LATCH_WINDOW_MS};
use xtrunk_datapath::wire::rtcp::RtcpRepr;
use xtrunk_datapath::wire::rtp::{RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
};

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// Leg 0's peer: SDP address (a private one in the NAT tests), public IP its SIP came from.
const PRIVATE_A: [u8; 4] = [10, 0, 0, 5];
const PUBLIC_A: [u8; 4] = [198, 51, 100, 10];
const PEER_B: [u8; 4] = [203, 0, 113, 20];
const ATTACKER: [u8; 4] = [192, 0, 2, 66];

fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

fn leg(port: u16, remote: SocketAddr, signal: [u8; 4], latch: LatchPolicy) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(RELAY_IP, port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch,
        signal_ip: Some(IpAddr::V4(Ipv4Addr::from(signal))),
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

/// Session 1: leg 0 on 10000 toward `a_sdp` (signalling IP PUBLIC_A), leg 1 on 10002 toward
/// PEER_B:6000 (signalling IP PEER_B), both with `latch`.
fn relay_with(a_sdp: SocketAddr, latch: LatchPolicy) -> Relay {
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 4 });
    let s = SessionSpec {
        id: SessionId(1),
        legs: [leg(10000, a_sdp, PUBLIC_A, latch), leg(10002, addr(PEER_B, 6000), PEER_B, latch)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    let mut ev = vec![];
    r.apply(0, &Command::Create(s), &mut |e| ev.push(e));
    assert_eq!(ev, vec![Event::Created(SessionId(1))]);
    r
}

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: 0,
        sequence_number: seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; r.buffer_len(160) + 64];
    r.emit(&mut b, &[0x55; 160]).unwrap();
    b
}

/// Sends RTP (SSRC `ssrc`) from `src` to `port`; asserts nothing is ever sent toward ATTACKER.
fn send(r: &mut Relay, now: u64, port: u16, src: SocketAddr, ssrc: u32) -> Verdict {
    let mut p = rtp(ssrc, (now % 60_000) as u16);
    let len = p.len() - 64;
    let v = r.handle_packet(now, port, src, &mut p, len);
    if let Verdict::Forward { to, .. } = v {
        assert_ne!(to.ip(), IpAddr::from(ATTACKER), "sent toward the third party");
    }
    v
}

fn dest(v: Verdict) -> SocketAddr {
    match v {
        Verdict::Forward { to, .. } => to,
        v => panic!("not forwarded: {v:?}"),
    }
}

const REJECTED: Verdict = Verdict::Drop(DropReason::SourceMismatch);

#[test]
fn third_party_before_latching_is_neither_relayed_nor_answered() {
    for latch in [LatchPolicy::Once, LatchPolicy::Follow, LatchPolicy::Strict] {
        let sdp_a = addr(PUBLIC_A, 4000);
        let mut r = relay_with(sdp_a, latch);
        // The attacker guesses the ports and sends first, on both legs and the RTCP ports.
        assert_eq!(send(&mut r, 0, 10000, addr(ATTACKER, 4000), 7), REJECTED, "{latch:?}");
        assert_eq!(send(&mut r, 1, 10002, addr(ATTACKER, 6000), 7), REJECTED, "{latch:?}");
        let mut c = vec![0u8; 64];
        let n = RtcpRepr::ReceiverReport { ssrc: 7, reports: &[] }.emit(&mut c).unwrap();
        assert_eq!(r.handle_packet(2, 10001, addr(ATTACKER, 4001), &mut c, n), REJECTED);
        // The return stream still goes to the SDP addresses.
        assert_eq!(dest(send(&mut r, 3, 10002, addr(PEER_B, 6000), 2)), sdp_a, "{latch:?}");
        assert_eq!(dest(send(&mut r, 4, 10000, sdp_a, 1)), addr(PEER_B, 6000), "{latch:?}");
        assert_eq!(r.leg_destination(SessionId(1), 0), Some(sdp_a));
        assert_eq!(r.counters().get(DropReason::SourceMismatch), 3);
        let st = r.session_stats(SessionId(1)).unwrap();
        assert_eq!((st[0].rejected_sources, st[0].dropped, st[0].packets), (2, 2, 1), "{latch:?}");
        assert_eq!((st[1].rejected_sources, st[1].dropped, st[1].packets), (1, 1, 1), "{latch:?}");
    }
}

#[test]
fn third_party_after_latching_is_dropped_and_counted() {
    for latch in [LatchPolicy::Once, LatchPolicy::Follow, LatchPolicy::Strict] {
        let sdp_a = addr(PUBLIC_A, 4000);
        let mut r = relay_with(sdp_a, latch);
        for t in 0..10 {
            assert_eq!(dest(send(&mut r, t * 20, 10000, sdp_a, 1)), addr(PEER_B, 6000));
            assert_eq!(dest(send(&mut r, t * 20, 10002, addr(PEER_B, 6000), 2)), sdp_a);
        }
        // Same SSRC, a port the attacker can see: still not the peer.
        for (i, t) in [200u64, 1000, 5000].into_iter().enumerate() {
            assert_eq!(send(&mut r, t, 10000, addr(ATTACKER, 4000 + i as u16), 1), REJECTED, "{latch:?} {t}");
            assert_eq!(send(&mut r, t, 10002, addr(ATTACKER, 6000), 2), REJECTED, "{latch:?} {t}");
        }
        assert_eq!(dest(send(&mut r, 6000, 10002, addr(PEER_B, 6000), 2)), sdp_a);
        assert_eq!(r.counters().get(DropReason::SourceMismatch), 6);
        let st = r.session_stats(SessionId(1)).unwrap();
        assert_eq!((st[0].rejected_sources, st[1].rejected_sources), (3, 3));
        // The counts reach signaling with the final stats.
        let mut ev = vec![];
        r.apply(7000, &Command::Delete(SessionId(1)), &mut |e| ev.push(e));
        let [Event::Deleted { stats, .. }] = ev[..] else { panic!("{ev:?}") };
        assert_eq!((stats[0].rejected_sources, stats[1].rejected_sources), (3, 3));
    }
}

#[test]
fn nat_peer_latches_from_its_signalling_ip_within_the_window() {
    for latch in [LatchPolicy::Once, LatchPolicy::Follow] {
        // The PBX's SDP says 10.0.0.5:4000; its NAT sends from 198.51.100.10 (its SIP's source).
        let mut r = relay_with(addr(PRIVATE_A, 4000), latch);
        let nat = addr(PUBLIC_A, 34567);
        assert_eq!(dest(send(&mut r, 500, 10002, addr(PEER_B, 6000), 2)), addr(PRIVATE_A, 4000));
        assert_eq!(dest(send(&mut r, 1000, 10000, nat, 1)), addr(PEER_B, 6000), "{latch:?}");
        assert_eq!(dest(send(&mut r, 1020, 10002, addr(PEER_B, 6000), 2)), nat, "{latch:?}");
        // RTCP latches on its own port the same way.
        let mut c = vec![0u8; 64];
        let n = RtcpRepr::ReceiverReport { ssrc: 1, reports: &[] }.emit(&mut c).unwrap();
        let v = r.handle_packet(1040, 10001, addr(PUBLIC_A, 34568), &mut c, n);
        assert_eq!(dest(v), addr(PEER_B, 6001));
        let v = r.handle_packet(1060, 10003, addr(PEER_B, 6001), &mut c, n);
        assert_eq!(dest(v), addr(PUBLIC_A, 34568));
        // An IP that is neither the SDP's nor the signalling one may not latch, even at once.
        assert_eq!(send(&mut r, 1080, 10000, addr(ATTACKER, 34567), 1), REJECTED);
        assert_eq!(r.leg_destination(SessionId(1), 0), Some(nat));
    }
    // Strict never latches, not even from the signalling IP.
    let mut r = relay_with(addr(PRIVATE_A, 4000), LatchPolicy::Strict);
    assert_eq!(send(&mut r, 0, 10000, addr(PUBLIC_A, 34567), 1), REJECTED);
}

#[test]
fn late_relatch_is_refused() {
    let nat = addr(PUBLIC_A, 34567);
    let moved = addr(PUBLIC_A, 45678);
    // Follow re-latches within the window, not after it.
    let mut r = relay_with(addr(PRIVATE_A, 4000), LatchPolicy::Follow);
    assert_eq!(dest(send(&mut r, 100, 10000, nat, 1)), addr(PEER_B, 6000));
    assert_eq!(dest(send(&mut r, 100 + LATCH_WINDOW_MS - 1, 10000, moved, 1)), addr(PEER_B, 6000));
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(moved));
    assert_eq!(send(&mut r, 100 + LATCH_WINDOW_MS, 10000, nat, 1), REJECTED);
    assert_eq!(send(&mut r, 60_000, 10000, addr(PUBLIC_A, 50000), 1), REJECTED);
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(moved));
    assert!(matches!(send(&mut r, 60_020, 10000, moved, 1), Verdict::Forward { .. }), "the peer still is");

    // Once latches once, even within the window.
    let mut r = relay_with(addr(PRIVATE_A, 4000), LatchPolicy::Once);
    assert_eq!(dest(send(&mut r, 0, 10000, nat, 1)), addr(PEER_B, 6000));
    assert_eq!(send(&mut r, 20, 10000, moved, 1), REJECTED);
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(nat));

    // A packet from the SDP address itself closes the window at once.
    let sdp_a = addr(PUBLIC_A, 4000);
    let mut r = relay_with(sdp_a, LatchPolicy::Follow);
    assert!(matches!(send(&mut r, 0, 10000, sdp_a, 1), Verdict::Forward { .. }));
    assert_eq!(send(&mut r, 20, 10000, nat, 1), REJECTED);
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(sdp_a));

    // A re-INVITE with a new SDP address opens a new window.
    let mut s = *r.session_spec(SessionId(1)).unwrap();
    s.legs[0].remote = Some(addr(PRIVATE_A, 4100));
    let mut ev = vec![];
    r.apply(60_000, &Command::Update(s), &mut |e| ev.push(e));
    assert_eq!(ev, vec![Event::Updated(SessionId(1))]);
    assert_eq!(dest(send(&mut r, 60_100, 10000, nat, 1)), addr(PEER_B, 6000));
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(nat));
}

#[test]
fn ssrc_change_from_a_new_source_is_refused() {
    let nat = addr(PUBLIC_A, 34567);
    let other = addr(PUBLIC_A, 45678);
    let mut r = relay_with(addr(PRIVATE_A, 4000), LatchPolicy::Follow);
    assert_eq!(dest(send(&mut r, 0, 10000, nat, 0x1111)), addr(PEER_B, 6000));
    // Same signalling IP, within the window, but another stream: refused.
    assert_eq!(send(&mut r, 20, 10000, other, 0x2222), REJECTED);
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(nat));
    // The latched source may change SSRC (re-INVITE, restarted phone)...
    assert!(matches!(send(&mut r, 40, 10000, nat, 0x3333), Verdict::Forward { .. }));
    // ...and then only that SSRC may move to a new source.
    assert_eq!(send(&mut r, 60, 10000, other, 0x1111), REJECTED);
    assert!(matches!(send(&mut r, 80, 10000, other, 0x3333), Verdict::Forward { .. }));
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(other));
    let st = r.session_stats(SessionId(1)).unwrap();
    assert_eq!(st[0].rejected_sources, 2);
}

#[test]
fn a_candidate_that_fails_later_checks_latches_nothing() {
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 1 });
    let mut m = PtMap::new();
    assert!(m.push(PtEntry { pt: 0, codec: Codec::Pcmu }));
    let mut s = SessionSpec {
        id: SessionId(1),
        legs: [
            leg(10000, addr(PRIVATE_A, 4000), PUBLIC_A, LatchPolicy::Follow),
            leg(10002, addr(PEER_B, 6000), PEER_B, LatchPolicy::Follow),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    s.legs[0].pt_map = m;
    s.legs[1].pt_map = m;
    r.apply(0, &Command::Create(s), &mut |_| {});
    let mut p = rtp(1, 1);
    p[1] = 99; // unmapped payload type
    let len = p.len() - 64;
    let v = r.handle_packet(0, 10000, addr(PUBLIC_A, 34567), &mut p, len);
    assert_eq!(v, Verdict::Drop(DropReason::UnmappedPayloadType));
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(addr(PRIVATE_A, 4000)));
}

#[test]
fn fast_path_rules_carry_the_peer_and_skip_follow() {
    let sdp_a = addr(PUBLIC_A, 4000);
    // Strict: the source is fixed from the start; the XDP program checks it is the SDP address.
    let r = relay_with(sdp_a, LatchPolicy::Strict);
    assert_eq!(
        r.fast_path_rule(10000),
        Some(ForwardRule { peer: sdp_a, from: SocketAddr::new(RELAY_IP, 10002), to: addr(PEER_B, 6000) })
    );
    // Once: fixed once latched (here: the NAT source).
    let mut r = relay_with(addr(PRIVATE_A, 4000), LatchPolicy::Once);
    let nat = addr(PUBLIC_A, 34567);
    send(&mut r, 0, 10000, nat, 1);
    send(&mut r, 0, 10002, addr(PEER_B, 6000), 2);
    assert_eq!(r.fast_path_rule(10000).map(|f| f.peer), Some(nat));
    assert_eq!(r.fast_path_rule(10002).map(|f| (f.peer, f.to)), Some((addr(PEER_B, 6000), nat)));
    // Follow may still re-latch: never on the fast path.
    let mut r = relay_with(sdp_a, LatchPolicy::Follow);
    send(&mut r, 0, 10000, sdp_a, 1);
    send(&mut r, 0, 10002, addr(PEER_B, 6000), 2);
    assert_eq!(r.fast_path_rule(10000), None);
}

/// The ports latching touched, as `drain_rule_changes` reports them (sorted).
fn rule_changes(r: &mut Relay) -> Vec<u16> {
    let mut v = vec![];
    assert!(!r.drain_rule_changes(|p| v.push(p)), "no overflow");
    v.sort_unstable();
    v
}

#[test]
fn latching_reports_the_sessions_ports_once_per_change() {
    let nat = addr(PUBLIC_A, 34567);
    let mut r = relay_with(addr(PRIVATE_A, 4000), LatchPolicy::Once);
    assert_eq!(rule_changes(&mut r), Vec::<u16>::new(), "Create is the caller's to re-query");
    // Leg 0 latches to the NAT source: every port of the session may have a new rule (leg 1's
    // destination is leg 0's peer).
    send(&mut r, 0, 10000, nat, 1);
    send(&mut r, 20, 10000, nat, 1);
    assert_eq!(rule_changes(&mut r), vec![10000, 10001, 10002, 10003]);
    // The same source again, or a packet refused: nothing changed.
    send(&mut r, 40, 10000, nat, 1);
    assert_eq!(send(&mut r, 60, 10000, addr(ATTACKER, 5000), 9), REJECTED);
    assert_eq!(rule_changes(&mut r), Vec::<u16>::new());
    // Leg 1 latches (to its SDP address): reported, and the rules now exist.
    send(&mut r, 80, 10002, addr(PEER_B, 6000), 2);
    assert_eq!(rule_changes(&mut r), vec![10000, 10001, 10002, 10003]);
    assert!(r.fast_path_rule(10000).is_some() && r.fast_path_rule(10002).is_some());
    // Strict never latches: nothing to report, ever.
    let mut r = relay_with(addr(PUBLIC_A, 4000), LatchPolicy::Strict);
    send(&mut r, 0, 10000, addr(PUBLIC_A, 4000), 1);
    assert_eq!(rule_changes(&mut r), Vec::<u16>::new());
}
