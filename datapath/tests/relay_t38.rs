//! #18 T.38 pass-through in the relay core: legs whose maps list `Codec::T38` carry UDPTL,
//! relayed unchanged both ways; anything that is not UDPTL, or UDPTL toward a leg that is not
//! T.38, is dropped and counted; such sessions never take the XDP fast path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::relay::{DropReason, Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::udptl::{emit_redundant, Udptl};
use xtrunk_ring::msg::{Codec, Command, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec};

const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)), 4000);
const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)), 6000);

fn map(codec: Codec, pt: u8) -> PtMap {
    let mut m = PtMap::new();
    assert!(m.push(PtEntry { pt, codec }));
    m
}

fn relay(m0: PtMap, m1: PtMap) -> Relay {
    let leg = |port, remote, pt_map| LegSpec {
        local: SocketAddr::new(IP, port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    };
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 2 });
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [leg(10000, A, m0), leg(10002, B, m1)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    r.apply(0, &Command::Create(spec), &mut |_| {});
    r
}

#[test]
fn udptl_is_relayed_both_ways_unchanged() {
    let mut r = relay(map(Codec::T38, 0), map(Codec::T38, 0));
    for (seq, (port, src, dest)) in [(10000, A, B), (10002, B, A), (10000, A, B)].into_iter().enumerate() {
        let mut buf = [0u8; 256];
        let n = emit_redundant(&mut buf, seq as u16, &[0x06, 0x80, seq as u8], &[&[0x06, 0x80]]).unwrap();
        let sent = buf;
        let v = r.handle_packet(seq as u64 * 20, port, src, &mut buf, n);
        let Verdict::Forward { len, to, .. } = v else { panic!("{v:?}") };
        assert_eq!((len, to), (n, dest));
        assert_eq!(&buf[..n], &sent[..n]);
        assert_eq!(Udptl::new_checked(&buf[..n]).unwrap().seq(), seq as u16);
    }
    assert_eq!(r.session_stats(SessionId(1)).unwrap()[0].packets, 2);
    // RTP (or garbage) on a T.38 leg is not UDPTL.
    let mut junk = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xd5];
    assert_eq!(r.handle_packet(100, 10000, A, &mut junk, 13), Verdict::Drop(DropReason::Udptl));
    // A stranger's UDPTL is not relayed.
    let mut buf = [0u8; 64];
    let n = emit_redundant(&mut buf, 9, &[1], &[]).unwrap();
    let stranger = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)), 4000);
    assert_eq!(r.handle_packet(100, 10000, stranger, &mut buf, n), Verdict::Drop(DropReason::SourceMismatch));
    assert!(r.fast_path_rule(10000).is_none() && r.fast_path_rule(10002).is_none());
}

#[test]
fn udptl_toward_an_audio_leg_is_dropped() {
    let mut r = relay(map(Codec::T38, 0), map(Codec::Pcma, 8));
    let mut buf = [0u8; 64];
    let n = emit_redundant(&mut buf, 1, &[1, 2], &[]).unwrap();
    assert_eq!(r.handle_packet(0, 10000, A, &mut buf, n), Verdict::Drop(DropReason::Udptl));
    assert_eq!(r.counters().get(DropReason::Udptl), 1);
}
