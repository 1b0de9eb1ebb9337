//! Simulated-time tests of the sans-IO relay core: commands, forwarding, latching, payload
//! mapping and G.711 conversion, stats, media timeouts, bad input, fast-path rules.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::relay::{g711, DropReason, ForwardRule, PortHooks, Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::rtcp::{RtcpRepr, SdesChunk, SdesItem};
use xtrunk_datapath::wire::rtp::{RtpPacket, RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{
    Codec, Command, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
    SrtpKeys, SrtpSuite,
};
use xtrunk_srtp::{SrtpContext, Suite};

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

fn pts(list: &[(u8, Codec)]) -> PtMap {
    let mut m = PtMap::new();
    for &(pt, codec) in list {
        assert!(m.push(PtEntry { pt, codec }));
    }
    m
}

fn leg(port: u16, remote: Option<SocketAddr>, latch: LatchPolicy, map: PtMap) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(RELAY_IP, port),
        remote,
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch,
        signal_ip: None,
        pt_map: map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

fn spec(id: u64, a: LegSpec, b: LegSpec) -> SessionSpec {
    SessionSpec { id: SessionId(id), legs: [a, b], media_timeout_ms: 0, leg_timeout_ms: [0; 2], allow_fast_path: true }
}

fn relay() -> Relay {
    Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 4 })
}

fn apply(r: &mut Relay, now: u64, cmd: Command) -> Vec<Event> {
    let mut ev = vec![];
    r.apply(now, &cmd, &mut |e| ev.push(e));
    ev
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; r.buffer_len(payload.len()) + 64];
    r.emit(&mut b, payload).unwrap();
    b
}

const PEER_A: [u8; 4] = [198, 51, 100, 10];
const PEER_B: [u8; 4] = [203, 0, 113, 20];

/// Session 1: leg 0 on 10000 (peer A 198.51.100.10:4000), leg 1 on 10002 (peer B 203.0.113.20:6000).
fn basic(r: &mut Relay, latch: LatchPolicy, maps: (PtMap, PtMap)) {
    let s = spec(
        1,
        leg(10000, Some(addr(PEER_A, 4000)), latch, maps.0),
        leg(10002, Some(addr(PEER_B, 6000)), latch, maps.1),
    );
    assert_eq!(apply(r, 0, Command::Create(s)), vec![Event::Created(SessionId(1))]);
}

fn send(r: &mut Relay, now: u64, port: u16, src: SocketAddr, mut pkt: Vec<u8>, len: usize) -> (Verdict, Vec<u8>) {
    let v = r.handle_packet(now, port, src, &mut pkt, len);
    (v, pkt)
}

#[test]
fn create_refusals_name_the_port() {
    let mut r = relay();
    let none = PtMap::new();
    let mk = |id, p0, p1| spec(id, leg(p0, None, LatchPolicy::Once, none), leg(p1, None, LatchPolicy::Once, none));
    let err = |id, code, port| vec![Event::Error { id: SessionId(id), code, port }];
    assert_eq!(apply(&mut r, 0, Command::Create(mk(1, 9998, 10000))), err(1, ErrorCode::PortOutOfRange, 9998));
    // RTCP port 10999+1 is out of range even though the RTP port is not... 10998 RTCP = 10999 ok.
    assert_eq!(apply(&mut r, 0, Command::Create(mk(1, 10000, 11000))), err(1, ErrorCode::PortOutOfRange, 11000));
    assert_eq!(apply(&mut r, 0, Command::Create(mk(1, 10001, 10004))), err(1, ErrorCode::InvalidSpec, 10001));
    assert_eq!(apply(&mut r, 0, Command::Create(mk(1, 10000, 10002))), vec![Event::Created(SessionId(1))]);
    assert_eq!(apply(&mut r, 0, Command::Create(mk(1, 10010, 10012))), err(1, ErrorCode::DuplicateSession, 0));
    assert_eq!(apply(&mut r, 0, Command::Create(mk(2, 10004, 10002))), err(2, ErrorCode::PortInUse, 10002));
    // The RTCP port of 10000 (10001) is in use too: a leg on 10000 with mux would still clash on 10000.
    assert_eq!(apply(&mut r, 0, Command::Create(mk(2, 10004, 10004))), err(2, ErrorCode::InvalidSpec, 10004));
    // Nothing of the refused commands stuck.
    let mut ports: Vec<u16> = r.local_ports().collect();
    ports.sort();
    assert_eq!(ports, vec![10000, 10001, 10002, 10003]);
    // Capacity: 4 slots.
    for (i, p) in [(2u64, 10100u16), (3, 10200), (4, 10300)] {
        assert_eq!(apply(&mut r, 0, Command::Create(mk(i, p, p + 2))), vec![Event::Created(SessionId(i))]);
    }
    assert_eq!(apply(&mut r, 0, Command::Create(mk(5, 10400, 10402))), err(5, ErrorCode::CapacityExhausted, 0));
    // Update may not move local ports; unknown sessions are reported.
    assert_eq!(apply(&mut r, 0, Command::Update(mk(1, 10000, 10006))), err(1, ErrorCode::InvalidSpec, 10006));
    assert_eq!(apply(&mut r, 0, Command::Update(mk(9, 10500, 10502))), err(9, ErrorCode::UnknownSession, 0));
    assert_eq!(apply(&mut r, 0, Command::Delete(SessionId(9))), err(9, ErrorCode::UnknownSession, 0));
    // Dump lists all four then DumpDone.
    let ev = apply(&mut r, 0, Command::Dump { token: 77 });
    assert_eq!(ev.len(), 5);
    assert!(ev[..4].iter().all(|e| matches!(e, Event::Session(_))));
    assert_eq!(ev[4], Event::DumpDone { token: 77, count: 4 });
    // Delete frees ports and the slot.
    assert!(matches!(apply(&mut r, 0, Command::Delete(SessionId(1)))[..], [Event::Deleted { .. }]));
    assert_eq!(apply(&mut r, 0, Command::Create(mk(5, 10000, 10002))), vec![Event::Created(SessionId(5))]);
}

#[test]
fn update_toggles_rtcp_port_through_hooks() {
    struct Log(Vec<(bool, u16)>, Option<u16>);
    impl PortHooks for Log {
        fn open(&mut self, port: u16) -> Result<(), ErrorCode> {
            if Some(port) == self.1 {
                return Err(ErrorCode::BindFailed);
            }
            self.0.push((true, port));
            Ok(())
        }
        fn close(&mut self, port: u16) {
            self.0.push((false, port));
        }
    }
    let mut r = relay();
    let mut hooks = Log(vec![], Some(10003));
    let mut s =
        spec(1, leg(10000, None, LatchPolicy::Once, PtMap::new()), leg(10002, None, LatchPolicy::Once, PtMap::new()));
    let mut ev = vec![];
    r.apply_with(0, &Command::Create(s), &mut hooks, &mut |e| ev.push(e));
    // Binding 10003 failed: the ports opened before it are closed again, error names 10003.
    assert_eq!(ev, vec![Event::Error { id: SessionId(1), code: ErrorCode::BindFailed, port: 10003 }]);
    assert_eq!(
        hooks.0,
        vec![(true, 10000), (true, 10001), (true, 10002), (false, 10000), (false, 10001), (false, 10002)]
    );
    hooks = Log(vec![], None);
    ev.clear();
    r.apply_with(0, &Command::Create(s), &mut hooks, &mut |e| ev.push(e));
    s.legs[1].rtcp_mux = true;
    r.apply_with(0, &Command::Update(s), &mut hooks, &mut |e| ev.push(e));
    r.apply_with(0, &Command::Delete(s.id), &mut hooks, &mut |e| ev.push(e));
    assert_eq!(
        hooks.0,
        vec![
            (true, 10000),
            (true, 10001),
            (true, 10002),
            (true, 10003),
            (false, 10003),
            (false, 10000),
            (false, 10001),
            (false, 10002)
        ]
    );
}

#[test]
fn forwards_both_ways_with_other_leg_addresses() {
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (PtMap::new(), PtMap::new()));
    let p = rtp(0, 1, 160, 0x1111, &[0x55; 160]);
    let len = p.len() - 64;
    let (v, out) = send(&mut r, 10, 10000, addr(PEER_A, 4000), p.clone(), len);
    assert_eq!(v, Verdict::Forward { len, from: SocketAddr::new(RELAY_IP, 10002), to: addr(PEER_B, 6000) });
    assert_eq!(&out[..len], &p[..len], "pass-through leaves the packet untouched (SSRC included)");
    let (v, _) = send(&mut r, 10, 10002, addr(PEER_B, 6000), p.clone(), len);
    assert_eq!(v, Verdict::Forward { len, from: SocketAddr::new(RELAY_IP, 10000), to: addr(PEER_A, 4000) });
    // RTCP on the RTCP port goes to the other leg's RTCP port, from our RTCP port.
    let mut c = vec![0u8; 128];
    let n = RtcpRepr::ReceiverReport { ssrc: 5, reports: &[] }.emit(&mut c).unwrap();
    let (v, _) = send(&mut r, 10, 10001, addr(PEER_A, 4001), c.clone(), n);
    assert_eq!(v, Verdict::Forward { len: n, from: SocketAddr::new(RELAY_IP, 10003), to: addr(PEER_B, 6001) });
    let st = r.session_stats(SessionId(1)).unwrap();
    assert_eq!((st[0].packets, st[0].rtcp_packets, st[1].packets), (1, 1, 1));
    // RTCP arriving on the RTP port of a non-mux leg is refused.
    let (v, _) = send(&mut r, 10, 10000, addr(PEER_A, 4000), c, n);
    assert_eq!(v, Verdict::Drop(DropReason::RtcpNotMuxed));
}

#[test]
fn rtcp_mux_demultiplexes_on_the_rtp_port() {
    let mut r = relay();
    let mut s = spec(
        1,
        leg(10000, Some(addr(PEER_A, 4000)), LatchPolicy::Once, PtMap::new()),
        leg(10002, Some(addr(PEER_B, 6000)), LatchPolicy::Once, PtMap::new()),
    );
    s.legs[0].rtcp_mux = true;
    s.legs[1].rtcp_mux = false;
    s.legs[1].remote_rtcp_port = 7777;
    apply(&mut r, 0, Command::Create(s));
    let mut c = vec![0u8; 128];
    let items = [SdesItem { kind: 1, text: b"x" }];
    let n = RtcpRepr::SenderReport { ssrc: 5, info: Default::default(), reports: &[] }.emit(&mut c).unwrap();
    let n =
        n + RtcpRepr::SourceDescription { chunks: &[SdesChunk { ssrc: 5, items: &items }] }.emit(&mut c[n..]).unwrap();
    // PT 200 on the muxed RTP port is RTCP: to leg 1's a=rtcp port.
    let (v, _) = send(&mut r, 1, 10000, addr(PEER_A, 4000), c.clone(), n);
    assert_eq!(v, Verdict::Forward { len: n, from: SocketAddr::new(RELAY_IP, 10003), to: addr(PEER_B, 7777) });
    // And back: RTCP from leg 1's RTCP port goes to leg 0's (muxed) RTP address.
    let (v, _) = send(&mut r, 1, 10003, addr(PEER_B, 7777), c, n);
    assert_eq!(v, Verdict::Forward { len: n, from: SocketAddr::new(RELAY_IP, 10000), to: addr(PEER_A, 4000) });
    assert_eq!(r.session_stats(SessionId(1)).unwrap()[0].rtcp_packets, 1);
    assert_eq!(r.session_stats(SessionId(1)).unwrap()[0].packets, 0);
}

#[test]
fn latching_once_follow_strict() {
    let p = rtp(0, 1, 0, 1, &[0; 20]);
    let len = p.len() - 64;
    let sdp_a = addr(PEER_A, 4000);
    let nat_a = addr(PEER_A, 34567);
    let nat_a2 = addr(PEER_A, 45678);
    let peer_b = addr(PEER_B, 6000);
    let dest_of_b_to_a = |r: &mut Relay| match send(r, 0, 10002, peer_b, p.clone(), len).0 {
        Verdict::Forward { to, .. } => to,
        v => panic!("{v:?}"),
    };

    // Once: latch to the first source (NAT port), keep it when the source moves again.
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (PtMap::new(), PtMap::new()));
    assert_eq!(dest_of_b_to_a(&mut r), sdp_a, "before any packet: the SDP address");
    assert!(matches!(send(&mut r, 0, 10000, nat_a, p.clone(), len).0, Verdict::Forward { .. }));
    assert_eq!(dest_of_b_to_a(&mut r), nat_a);
    assert_eq!(send(&mut r, 0, 10000, nat_a2, p.clone(), len).0, Verdict::Drop(DropReason::SourceMismatch));
    assert_eq!(dest_of_b_to_a(&mut r), nat_a, "Once keeps the first latch");

    // Follow: the most recent source allowed to latch (same IP, within the window).
    let mut r = relay();
    basic(&mut r, LatchPolicy::Follow, (PtMap::new(), PtMap::new()));
    send(&mut r, 0, 10000, nat_a, p.clone(), len);
    assert_eq!(dest_of_b_to_a(&mut r), nat_a);
    send(&mut r, 0, 10000, nat_a2, p.clone(), len);
    assert_eq!(dest_of_b_to_a(&mut r), nat_a2);

    // Strict: only the SDP address is accepted; others dropped and counted.
    let mut r = relay();
    basic(&mut r, LatchPolicy::Strict, (PtMap::new(), PtMap::new()));
    assert_eq!(send(&mut r, 0, 10000, nat_a, p.clone(), len).0, Verdict::Drop(DropReason::SourceMismatch));
    assert_eq!(send(&mut r, 0, 10000, nat_a2, p.clone(), len).0, Verdict::Drop(DropReason::SourceMismatch));
    assert!(matches!(send(&mut r, 0, 10000, sdp_a, p.clone(), len).0, Verdict::Forward { .. }));
    assert_eq!(dest_of_b_to_a(&mut r), sdp_a);
    assert_eq!(r.counters().get(DropReason::SourceMismatch), 2);
    let st = r.session_stats(SessionId(1)).unwrap();
    assert_eq!((st[0].dropped, st[0].packets), (2, 1));

    // Unknown remote + Once: no destination until the peer sends from its signalling IP; then
    // latched.
    let mut r = relay();
    let mut s = spec(
        1,
        leg(10000, None, LatchPolicy::Once, PtMap::new()),
        leg(10002, Some(peer_b), LatchPolicy::Once, PtMap::new()),
    );
    s.legs[0].signal_ip = Some(nat_a.ip());
    apply(&mut r, 0, Command::Create(s));
    assert_eq!(send(&mut r, 0, 10002, peer_b, p.clone(), len).0, Verdict::Drop(DropReason::NoDestination));
    send(&mut r, 0, 10000, nat_a, p.clone(), len);
    assert_eq!(dest_of_b_to_a(&mut r), nat_a);
    assert_eq!(r.leg_destination(SessionId(1), 0), Some(nat_a));
}

#[test]
fn payload_type_mapping_and_g711_conversion() {
    let mut r = relay();
    // Leg 0: PCMA 8, telephone-event 101. Leg 1: PCMU 0, telephone-event 96, G729 18.
    let m0 = pts(&[(8, Codec::Pcma), (101, Codec::TelephoneEvent)]);
    let m1 = pts(&[(0, Codec::Pcmu), (96, Codec::TelephoneEvent), (18, Codec::G729)]);
    basic(&mut r, LatchPolicy::Once, (m0, m1));
    let a = addr(PEER_A, 4000);
    let b = addr(PEER_B, 6000);
    let samples: Vec<u8> = (0..=255).collect();
    let p = rtp(8, 1, 0, 0xabc, &samples);
    let len = p.len() - 64;
    let (v, out) = send(&mut r, 0, 10000, a, p, len);
    assert!(matches!(v, Verdict::Forward { len: l, .. } if l == len));
    let o = RtpPacket::new_checked(&out[..len]).unwrap();
    assert_eq!(o.payload_type(), 0);
    assert_eq!(o.ssrc(), 0xabc);
    for (i, &u) in o.payload().iter().enumerate() {
        assert_eq!(u, g711::ALAW_TO_ULAW[i]);
    }
    // Reverse: µ-law → A-law.
    let p = rtp(0, 1, 0, 0xdef, &samples);
    let (_, out) = send(&mut r, 0, 10002, b, p, len);
    let o = RtpPacket::new_checked(&out[..len]).unwrap();
    assert_eq!(o.payload_type(), 8);
    assert!(o.payload().iter().enumerate().all(|(i, &x)| x == g711::ULAW_TO_ALAW[i]));
    // DTMF: PT 101 → 96, payload untouched.
    let ev = [5u8, 0x8a, 0x03, 0x20];
    let p = rtp(101, 2, 0, 0xabc, &ev);
    let l = p.len() - 64;
    let (_, out) = send(&mut r, 0, 10000, a, p, l);
    let o = RtpPacket::new_checked(&out[..l]).unwrap();
    assert_eq!((o.payload_type(), o.payload()), (96, &ev[..]));
    // Truncated DTMF payload.
    let p = rtp(101, 3, 0, 0xabc, &ev[..3]);
    let l = p.len() - 64;
    assert_eq!(send(&mut r, 0, 10000, a, p, l).0, Verdict::Drop(DropReason::MalformedDtmf));
    // Unmapped PT on leg 0.
    let p = rtp(9, 4, 0, 0xabc, &[0; 10]);
    assert_eq!(send(&mut r, 0, 10000, a, p, 22).0, Verdict::Drop(DropReason::UnmappedPayloadType));
    assert_eq!(r.counters().get(DropReason::UnmappedPayloadType), 1);
    // A codec (G.729) the other leg lacks is transcoded to its G.711 (one 10 ms frame → 80 bytes).
    let mut p = rtp(18, 4, 0, 0xdef, &[0; 10]);
    // Room for the G.711 payload (8× the G.729 one) after the datagram, as the backends give.
    let short = p.clone();
    assert_eq!(send(&mut r, 0, 10002, b, short, 22).0, Verdict::Drop(DropReason::Transcode));
    p.resize(200, 0);
    let (v, out) = send(&mut r, 0, 10002, b, p, 22);
    assert!(matches!(v, Verdict::Forward { len: 92, .. }), "{v:?}");
    assert_eq!(RtpPacket::new_checked(&out[..92]).unwrap().payload_type(), 8);
    // Not whole G.729 frames.
    let p = rtp(18, 5, 0, 0xdef, &[0; 7]);
    assert_eq!(send(&mut r, 0, 10002, b, p, 19).0, Verdict::Drop(DropReason::Transcode));
}

#[test]
fn same_codec_different_pt_is_rewritten() {
    let mut r = relay();
    basic(
        &mut r,
        LatchPolicy::Once,
        (pts(&[(0, Codec::Pcmu)]), pts(&[(0, Codec::Pcmu), (101, Codec::TelephoneEvent)])),
    );
    let p = rtp(0, 1, 0, 1, &[7; 160]);
    let (_, out) = send(&mut r, 0, 10000, addr(PEER_A, 4000), p.clone(), 172);
    assert_eq!(&out[..172], &p[..172]);
    // Leg 0 did not negotiate telephone-event: leg 1's DTMF is played into leg 0's audio
    // (#18, `relay::inband`) instead of being forwarded.
    let p = rtp(101, 1, 0, 1, &[1, 2, 3, 4]);
    assert_eq!(send(&mut r, 0, 10002, addr(PEER_B, 6000), p, 16).0, Verdict::Drop(DropReason::DtmfToInband));
}

/// RFC 3550 A.8 reference (integer form) over (arrival in timestamp units, RTP timestamp).
fn reference_jitter(pkts: &[(u32, u32)]) -> u32 {
    let mut j: i64 = 0;
    let mut last: Option<i64> = None;
    for &(arr, ts) in pkts {
        let transit = i64::from(arr) - i64::from(ts);
        if let Some(l) = last {
            let d = (transit - l).abs();
            j += d - ((j + 8) >> 4);
        }
        last = Some(transit);
    }
    (j >> 4) as u32
}

#[test]
fn stats_loss_reorder_duplicates_jitter() {
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (PtMap::new(), PtMap::new()));
    let a = addr(PEER_A, 4000);
    // Sequence across the 16-bit wrap: 65530..65535, 0..=93 (100 packets), with
    // seq 65533 and 10..=12 lost (4), 20 and 21 swapped, 30 sent twice.
    let base: u16 = 65530;
    let mut order: Vec<u16> = (0..100u16).map(|i| base.wrapping_add(i)).collect();
    order.retain(|&s| s != 65533 && !(10..=12).contains(&s));
    let i20 = order.iter().position(|&s| s == 20).unwrap();
    order.swap(i20, i20 + 1);
    let i30 = order.iter().position(|&s| s == 30).unwrap();
    order.insert(i30 + 1, 30);
    let mut now = 1000u64;
    let mut arrivals = vec![];
    for (k, &seq) in order.iter().enumerate() {
        let idx = u32::from(seq.wrapping_sub(base));
        let ts = idx * 160;
        // 20 ms spacing with a deterministic wobble of 0..7 ms.
        now += 20 + (k as u64 * 7) % 8 - 3;
        let p = rtp(0, seq, ts, 42, &[0; 160]);
        let v = r.handle_packet(now, 10000, a, &mut p.clone(), 172);
        assert!(matches!(v, Verdict::Forward { .. }));
        arrivals.push(((now * 8) as u32, ts));
    }
    let st = r.session_stats(SessionId(1)).unwrap()[0];
    assert_eq!(st.packets, order.len() as u64);
    assert_eq!(st.bytes, 172 * order.len() as u64);
    assert_eq!(st.lost, 4);
    assert_eq!(st.reordered, 1);
    assert_eq!(st.duplicates, 1);
    assert_eq!(st.jitter, reference_jitter(&arrivals));
    assert!(st.jitter > 0);
    assert_eq!(st.last_rx_ms, now);
    let ev = apply(&mut r, now, Command::Delete(SessionId(1)));
    assert!(matches!(ev[0], Event::Deleted { stats, .. } if stats[0] == st));
}

#[test]
fn media_timeout_on_simulated_time() {
    let mut r = relay();
    let mut s = spec(
        1,
        leg(10000, Some(addr(PEER_A, 4000)), LatchPolicy::Once, PtMap::new()),
        leg(10002, Some(addr(PEER_B, 6000)), LatchPolicy::Once, PtMap::new()),
    );
    s.media_timeout_ms = 1000;
    apply(&mut r, 100, Command::Create(s));
    let mut ev = vec![];
    assert_eq!(r.poll_timeouts(1099, &mut |e| ev.push(e)), Some(1100));
    assert!(ev.is_empty());
    // Activity at 600 pushes the deadline to 1600.
    let p = rtp(0, 1, 0, 1, &[0; 10]);
    r.handle_packet(600, 10000, addr(PEER_A, 4000), &mut p.clone(), 22);
    assert_eq!(r.poll_timeouts(1100, &mut |e| ev.push(e)), Some(1600));
    assert!(ev.is_empty());
    assert_eq!(r.poll_timeouts(1650, &mut |e| ev.push(e)), None);
    assert_eq!(ev, vec![Event::MediaTimeout { id: SessionId(1), idle_ms: 1050, leg: None }]);
    // Once per idle period.
    ev.clear();
    r.poll_timeouts(9000, &mut |e| ev.push(e));
    assert!(ev.is_empty());
    // Media resumes (on the other leg, via the fast-path credit this time), then stops again.
    r.credit_fast_path(10002, 3, 300, 10_000);
    assert_eq!(r.session_stats(SessionId(1)).unwrap()[1].packets, 3);
    assert_eq!(r.poll_timeouts(10_999, &mut |e| ev.push(e)), Some(11_000));
    r.poll_timeouts(11_000, &mut |e| ev.push(e));
    assert_eq!(ev, vec![Event::MediaTimeout { id: SessionId(1), idle_ms: 1000, leg: None }]);
    // A deleted session never times out.
    ev.clear();
    r.handle_packet(12_000, 10000, addr(PEER_A, 4000), &mut p.clone(), 22);
    apply(&mut r, 12_000, Command::Delete(SessionId(1)));
    r.poll_timeouts(20_000, &mut |e| ev.push(e));
    assert!(ev.is_empty());
}

#[test]
fn bad_input_is_dropped_and_counted() {
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (pts(&[(0, Codec::Pcmu)]), pts(&[(0, Codec::Pcmu)])));
    let a = addr(PEER_A, 4000);
    let good = rtp(0, 1, 0, 1, &[0; 160]);
    let mut cases: Vec<(Vec<u8>, usize, u16, DropReason)> = vec![
        (good.clone(), 11, 10000, DropReason::MalformedRtp), // truncated fixed header
        (
            {
                let mut g = good.clone();
                g[0] = 0x8f;
                g
            },
            40,
            10000,
            DropReason::MalformedRtp,
        ), // 15 CSRCs claimed
        (
            {
                let mut g = good.clone();
                g[0] = 0x90;
                g[14] = 0xff;
                g[15] = 0xff;
                g
            },
            172,
            10000,
            DropReason::MalformedRtp,
        ), // huge extension
        (
            {
                let mut g = good.clone();
                g[0] = 0xa0;
                g[171] = 200;
                g
            },
            172,
            10000,
            DropReason::MalformedRtp,
        ), // padding > payload
        (vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42], 8, 10000, DropReason::Foreign), // STUN
        (b"GET / HTTP/1.1\r\n".to_vec(), 16, 10000, DropReason::Foreign),
        (vec![0x16, 0xfe, 0xfd, 0, 0], 5, 10000, DropReason::Foreign), // DTLS
        (vec![], 0, 10000, DropReason::BadLength),
        (good.clone(), good.len() + 1, 10000, DropReason::BadLength), // len past the buffer
        (vec![0x81, 201, 0, 7, 0, 0, 0, 1], 8, 10001, DropReason::MalformedRtcp), // RR length past end
        (vec![0x81, 201, 0, 1, 0, 0, 0, 1], 8, 10001, DropReason::MalformedRtcp), // RR 1 block, none
        (good.clone(), 172, 10001, DropReason::MalformedRtcp),        // RTP on the RTCP port
        (vec![0x80, 202, 0, 1, 0, 0, 0, 1], 8, 10001, DropReason::MalformedRtcp), // SDES count 0, chunk present
        (good.clone(), 172, 10500, DropReason::UnknownPort),
    ];
    let total = cases.len() as u64;
    for (pkt, len, port, why) in cases.iter_mut() {
        let v = r.handle_packet(0, *port, a, pkt, *len);
        assert_eq!(v, Verdict::Drop(*why), "packet {pkt:02x?} len {len} port {port}");
    }
    assert_eq!(r.counters().total(), total);
    assert_eq!(r.counters().get(DropReason::MalformedRtp), 4);
    assert_eq!(r.counters().get(DropReason::MalformedRtcp), 4);
    assert_eq!(r.counters().get(DropReason::Foreign), 3);
    let st = r.session_stats(SessionId(1)).unwrap();
    assert_eq!(st[0].dropped, total - 1, "every drop but the unknown port is charged to leg 0");
    assert_eq!(st[0].packets, 0);
    // The session still works.
    assert!(matches!(r.handle_packet(0, 10000, a, &mut good.clone(), 172), Verdict::Forward { .. }));
}

#[test]
fn fast_path_rules() {
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (PtMap::new(), PtMap::new()));
    let p = rtp(0, 1, 0, 1, &[0; 10]);
    assert_eq!(r.fast_path_rule(10000), None, "nothing latched yet");
    r.handle_packet(0, 10000, addr(PEER_A, 4000), &mut p.clone(), 22);
    assert_eq!(r.fast_path_rule(10000), None, "leg 1's peer not latched yet");
    r.handle_packet(0, 10002, addr(PEER_B, 6000), &mut p.clone(), 22);
    assert_eq!(
        r.fast_path_rule(10000),
        Some(ForwardRule { peer: addr(PEER_A, 4000), from: SocketAddr::new(RELAY_IP, 10002), to: addr(PEER_B, 6000) })
    );
    assert_eq!(
        r.fast_path_rule(10002),
        Some(ForwardRule { peer: addr(PEER_B, 6000), from: SocketAddr::new(RELAY_IP, 10000), to: addr(PEER_A, 4000) })
    );
    assert_eq!(r.fast_path_rule(10001), None, "no RTCP latched yet");
    assert_eq!(r.fast_path_rule(10500), None);
    // Transcoding sessions never get a rule.
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (pts(&[(8, Codec::Pcma)]), pts(&[(0, Codec::Pcmu)])));
    r.handle_packet(0, 10000, addr(PEER_A, 4000), &mut rtp(8, 1, 0, 1, &[0; 10]), 22);
    r.handle_packet(0, 10002, addr(PEER_B, 6000), &mut rtp(0, 1, 0, 1, &[0; 10]), 22);
    assert_eq!(r.fast_path_rule(10000), None);
}

#[test]
fn fast_path_needs_only_the_used_payload_types_to_agree() {
    // Same mapping of every used PT, in another order, with entries the other leg lacks.
    let a = pts(&[(0, Codec::Pcmu), (9, Codec::G722), (101, Codec::TelephoneEvent)]);
    let b = pts(&[(101, Codec::TelephoneEvent), (13, Codec::Cn), (0, Codec::Pcmu)]);
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (a, b));
    r.handle_packet(0, 10000, addr(PEER_A, 4000), &mut rtp(0, 1, 0, 1, &[0; 10]), 22);
    r.handle_packet(0, 10002, addr(PEER_B, 6000), &mut rtp(0, 1, 0, 2, &[0; 10]), 22);
    assert!(r.fast_path_rule(10000).is_some() && r.fast_path_rule(10002).is_some());
    // Telephone-event renumbered on one leg: the relay rewrites it, so no fast path.
    let b = pts(&[(0, Codec::Pcmu), (96, Codec::TelephoneEvent)]);
    let mut r = relay();
    basic(&mut r, LatchPolicy::Once, (a, b));
    r.handle_packet(0, 10000, addr(PEER_A, 4000), &mut rtp(0, 1, 0, 1, &[0; 10]), 22);
    r.handle_packet(0, 10002, addr(PEER_B, 6000), &mut rtp(0, 1, 0, 2, &[0; 10]), 22);
    assert_eq!(r.fast_path_rule(10000), None);
}

#[test]
fn srtp_leg_bridged_to_plain_leg() {
    // Leg 0 speaks SRTP: the peer protects with AES_CM_128_HMAC_SHA1_80 (our rx keys) and we
    // protect towards it with AEAD_AES_128_GCM (our tx keys). Leg 1 is plain RTP.
    let peer_keys = SrtpKeys { suite: SrtpSuite::AesCm128HmacSha1_80, key: [0x11; 32], salt: [0x22; 14] };
    let our_keys = SrtpKeys { suite: SrtpSuite::AeadAes128Gcm, key: [0x33; 32], salt: [0x44; 14] };
    let mut r = relay();
    let mut s = spec(
        1,
        leg(10000, Some(addr(PEER_A, 4000)), LatchPolicy::Once, PtMap::new()),
        leg(10002, Some(addr(PEER_B, 6000)), LatchPolicy::Once, PtMap::new()),
    );
    s.legs[0].crypto = LegCrypto { rx: Some(peer_keys), tx: Some(our_keys) };
    assert_eq!(apply(&mut r, 0, Command::Create(s)), vec![Event::Created(SessionId(1))]);
    assert_eq!(r.fast_path_rule(10000), None);
    let mut peer_tx = SrtpContext::new(Suite::AesCm128HmacSha1_80, &[0x11; 16], &[0x22; 14]).unwrap();
    let mut peer_rx = SrtpContext::new(Suite::AeadAes128Gcm, &[0x33; 16], &[0x44; 12]).unwrap();
    let (a, b) = (addr(PEER_A, 4000), addr(PEER_B, 6000));
    let mut last_srtp = vec![];
    for seq in 0..20u16 {
        // A → relay (SRTP) → B (plain, identical to what A protected).
        let mut buf = rtp(0, seq, u32::from(seq) * 160, 0xA, &[seq as u8; 160]);
        let plain = buf[..172].to_vec();
        let n = peer_tx.protect_rtp(&mut buf, 172).unwrap();
        last_srtp = buf[..n].to_vec();
        match r.handle_packet(u64::from(seq), 10000, a, &mut buf, n) {
            Verdict::Forward { len, to, .. } => {
                assert_eq!(to, b);
                assert_eq!(&buf[..len], &plain[..]);
            }
            v => panic!("{v:?}"),
        }
        // B → relay (plain) → A (SRTP the peer can unprotect back to the original).
        let mut buf = rtp(8, seq, u32::from(seq) * 160, 0xB, &[!(seq as u8); 160]);
        let plain = buf[..172].to_vec();
        match r.handle_packet(u64::from(seq), 10002, b, &mut buf, 172) {
            Verdict::Forward { len, to, .. } => {
                assert_eq!(to, a);
                assert!(len > 172, "tag appended");
                assert_ne!(&buf[12..172], &plain[12..], "payload encrypted");
                let m = peer_rx.unprotect_rtp(&mut buf[..len]).unwrap();
                assert_eq!(&buf[..m], &plain[..]);
            }
            v => panic!("{v:?}"),
        }
    }
    // Replay of an accepted packet, and a tampered packet, are dropped and counted.
    let mut replay = last_srtp.clone();
    let n = replay.len();
    replay.resize(n + 64, 0);
    assert_eq!(r.handle_packet(100, 10000, a, &mut replay, n), Verdict::Drop(DropReason::Srtp));
    let mut forged = rtp(0, 500, 0, 0xA, &[1; 160]);
    let n = peer_tx.protect_rtp(&mut forged, 172).unwrap();
    forged[40] ^= 1;
    assert_eq!(r.handle_packet(100, 10000, a, &mut forged, n), Verdict::Drop(DropReason::Srtp));
    assert_eq!(r.counters().get(DropReason::Srtp), 2);
    // SRTCP both ways.
    let mut c = vec![0u8; 256];
    let clen = RtcpRepr::SenderReport { ssrc: 0xA, info: Default::default(), reports: &[] }.emit(&mut c).unwrap();
    let plain_rtcp = c[..clen].to_vec();
    let n = peer_tx.protect_rtcp(&mut c, clen).unwrap();
    match r.handle_packet(101, 10001, addr(PEER_A, 4001), &mut c, n) {
        Verdict::Forward { len, to, .. } => {
            assert_eq!(to, addr(PEER_B, 6001));
            assert_eq!(&c[..len], &plain_rtcp[..]);
        }
        v => panic!("{v:?}"),
    }
    let mut c = vec![0u8; 256];
    c[..clen].copy_from_slice(&plain_rtcp);
    match r.handle_packet(102, 10003, addr(PEER_B, 6001), &mut c, clen) {
        Verdict::Forward { len, to, .. } => {
            assert_eq!(to, addr(PEER_A, 4001));
            let m = peer_rx.unprotect_rtcp(&mut c[..len]).unwrap();
            assert_eq!(&c[..m], &plain_rtcp[..]);
        }
        v => panic!("{v:?}"),
    }
    let st = r.session_stats(SessionId(1)).unwrap();
    assert_eq!((st[0].packets, st[0].rtcp_packets, st[0].dropped, st[0].bytes), (20, 1, 2, 20 * 172));
    // Re-keying on Update replaces the contexts: the old peer keys no longer authenticate.
    let mut s2 = s;
    s2.legs[0].crypto.rx = Some(SrtpKeys { key: [0x55; 32], ..peer_keys });
    assert_eq!(apply(&mut r, 200, Command::Update(s2)), vec![Event::Updated(SessionId(1))]);
    let mut buf = rtp(0, 30, 0, 0xA, &[0; 160]);
    let n = peer_tx.protect_rtp(&mut buf, 172).unwrap();
    assert_eq!(r.handle_packet(201, 10000, a, &mut buf, n), Verdict::Drop(DropReason::Srtp));
}
