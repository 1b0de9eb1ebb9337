//! #18 quality figures: a stream with 5 % random loss gets the G.107 E-model's MOS (within
//! ±0.1) in the session's final stats; the expected value is computed here from the formula,
//! independently of `relay::quality`. A peer's RTCP XR VoIP Metrics RTT lowers it as G.107's
//! delay term says.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::relay::{Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::rtcp_xr::VoipMetricsRepr;
use xtrunk_datapath::wire::rtp::{RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec, StreamStats,
};

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PEER_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)), 4000);
const PEER_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)), 6000);

fn pts(list: &[(u8, Codec)]) -> PtMap {
    let mut m = PtMap::new();
    for &(pt, codec) in list {
        assert!(m.push(PtEntry { pt, codec }));
    }
    m
}

fn leg(port: u16, remote: SocketAddr, map: PtMap) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(RELAY_IP, port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

/// Independent E-model (G.107, G.113 App. I figures): R and MOS for `ie`/`bpl` at `ppl` %
/// random loss and one-way delay `d` ms.
fn expected_mos(ie: f64, bpl: f64, ppl: f64, d: f64) -> f64 {
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl / 1.0 + bpl);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let r = 93.2 - id - ie_eff;
    1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
}

/// Sends `n` 20 ms packets of `pt` from leg 0's peer, dropping each with probability `loss`
/// (a fixed-seed generator), on time (no jitter); optionally an XR with `rtt_ms` first.
/// Returns leg 0's final stats and the measured loss %.
fn run(m0: PtMap, m1: PtMap, pt: u8, payload: &[u8], n: u32, loss: f64, rtt_ms: Option<u16>) -> (StreamStats, f64) {
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 2 });
    let spec = SessionSpec {
        id: SessionId(5),
        legs: [leg(10000, PEER_A, m0), leg(10002, PEER_B, m1)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    r.apply(0, &Command::Create(spec), &mut |_| {});
    if let Some(rtt) = rtt_ms {
        let mut xr = vec![0x80, 207, 0, 10, 0, 0, 0, 0x11];
        let mut blk = [0u8; VoipMetricsRepr::BUFFER_LEN];
        VoipMetricsRepr { ssrc: 0x42, round_trip_delay_ms: rtt, r_factor: 127, ..Default::default() }
            .emit(&mut blk)
            .unwrap();
        xr.extend_from_slice(&blk);
        let len = xr.len();
        xr.resize(len + 64, 0);
        let rtcp_src = SocketAddr::new(PEER_A.ip(), PEER_A.port() + 1);
        assert!(matches!(r.handle_packet(0, 10001, rtcp_src, &mut xr, len), Verdict::Forward { .. }));
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut dropped = 0u32;
    let mut buf = vec![0u8; 2048];
    for i in 0..n {
        // xorshift64*: uniform in [0, 1).
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let u = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        if u < loss {
            dropped += 1;
            continue;
        }
        let rtp = RtpRepr {
            marker: false,
            payload_type: pt,
            sequence_number: i as u16,
            timestamp: i * 160,
            ssrc: 0x42,
            csrc_count: 0,
            csrcs: [0; MAX_CSRC],
            extension: None,
            padding: 0,
        };
        let len = rtp.emit(&mut buf, payload).unwrap();
        let v = r.handle_packet(u64::from(i) * 20 + 1, 10000, PEER_A, &mut buf, len);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    }
    let mut ev = vec![];
    r.apply(u64::from(n) * 20, &Command::Delete(SessionId(5)), &mut |e| ev.push(e));
    let Some(Event::Deleted { stats, .. }) = ev.pop() else { panic!("{ev:?}") };
    (stats[0], 100.0 * f64::from(dropped) / f64::from(n))
}

#[test]
fn five_percent_loss_gives_the_e_model_mos() {
    let g711 = pts(&[(0, Codec::Pcmu)]);
    let (s, measured) = run(g711, g711, 0, &[0xff; 160], 20_000, 0.05, None);
    let want = expected_mos(0.0, 25.1, 5.0, 0.0);
    let got = f64::from(s.mos_x100) / 100.0;
    eprintln!(
        "G.711, 5 % loss (measured {measured:.2} %): MOS {got:.2}, R {:.1}; expected {want:.3}",
        f64::from(s.r_x10) / 10.0
    );
    assert!((got - want).abs() <= 0.1, "MOS {got} vs {want}");
    assert!(s.lost > 0 && s.jitter == 0);
    // Without loss: G.107's default R = 93.2 (MOS 4.41).
    let (s, _) = run(g711, g711, 0, &[0xff; 160], 2_000, 0.0, None);
    assert_eq!((s.r_x10, s.mos_x100), (932, 441));
}

#[test]
fn g729_stream_and_reported_rtt_follow_the_e_model() {
    // A G.729 leg (transcoded to PCMU): Ie 11, Bpl 19.
    let (s, measured) = run(pts(&[(18, Codec::G729)]), pts(&[(0, Codec::Pcmu)]), 18, &[0x5a; 20], 20_000, 0.05, None);
    let want = expected_mos(11.0, 19.0, 5.0, 0.0);
    let got = f64::from(s.mos_x100) / 100.0;
    eprintln!("G.729, 5 % loss (measured {measured:.2} %): MOS {got:.2}; expected {want:.3}");
    assert!((got - want).abs() <= 0.1, "MOS {got} vs {want}");
    // The peer reports 400 ms RTT: 200 ms one way.
    let g711 = pts(&[(0, Codec::Pcmu)]);
    let (s, _) = run(g711, g711, 0, &[0xff; 160], 20_000, 0.05, Some(400));
    let want = expected_mos(0.0, 25.1, 5.0, 200.0);
    let got = f64::from(s.mos_x100) / 100.0;
    eprintln!("G.711, 5 % loss, RTT 400 ms: MOS {got:.2}; expected {want:.3}");
    assert!((got - want).abs() <= 0.1, "MOS {got} vs {want}");
}
