//! Re-packetising across ptimes through the relay core (#18): legs whose `ptime_ms` differ get
//! audio in the packet duration they asked for, G.711 ↔ G.711 and G.729 ↔ G.711, growing
//! (held until whole) and shrinking (extra packets from `Relay::poll_reframed`), with
//! contiguous timestamps and sequence numbers; agreeing legs are not re-framed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::codec::bcg729::{Decoder, Encoder, Frame, FRAME_BYTES, FRAME_SAMPLES};
use xtrunk_datapath::relay::{g711, DropReason, Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::rtp::RtpPacket;
use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
};

mod audio;

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PEER_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)), 4000);
const PEER_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)), 6000);

fn leg(port: u16, remote: SocketAddr, pt: u8, codec: Codec, ptime_ms: u8) -> LegSpec {
    let mut pt_map = PtMap::new();
    assert!(pt_map.push(PtEntry { pt, codec }));
    assert!(pt_map.push(PtEntry { pt: 101, codec: Codec::TelephoneEvent }));
    LegSpec {
        local: SocketAddr::new(RELAY_IP, port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map,
        crypto: LegCrypto::default(),
        ptime_ms,
    }
}

fn relay(a: LegSpec, b: LegSpec) -> Relay {
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 4 });
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [a, b],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    let mut ev = vec![];
    r.apply(0, &Command::Create(spec), &mut |e| ev.push(e));
    assert_eq!(ev, vec![Event::Created(SessionId(1))]);
    r
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> [u8; 2048] {
    let mut b = [0u8; 2048];
    b[..2].copy_from_slice(&[0x80, pt]);
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b[4..8].copy_from_slice(&ts.to_be_bytes());
    b[8..12].copy_from_slice(&0xabcd_0001u32.to_be_bytes());
    b[12..12 + payload.len()].copy_from_slice(payload);
    b
}

/// Every packet the relay sends for one input: (pt, seq, ts, payload).
fn send(
    r: &mut Relay,
    port: u16,
    src: SocketAddr,
    pt: u8,
    seq: u16,
    ts: u32,
    payload: &[u8],
) -> Vec<(u8, u16, u32, Vec<u8>)> {
    let mut out = vec![];
    let mut b = rtp(pt, seq, ts, payload);
    let mut take = |b: &[u8], len: usize| {
        let p = RtpPacket::new_checked(&b[..len]).unwrap();
        out.push((p.payload_type(), p.sequence_number(), p.timestamp(), p.payload().to_vec()));
    };
    match r.handle_packet(1000, port, src, &mut b, 12 + payload.len()) {
        Verdict::Forward { len, .. } => take(&b, len),
        Verdict::Drop(DropReason::Reframing) => {}
        v => panic!("{v:?}"),
    }
    let mut x = [0u8; 2048];
    while let Some(v) = r.poll_reframed(&mut x) {
        let Verdict::Forward { len, to, .. } = v else { panic!("{v:?}") };
        assert_eq!(to, if port == 10000 { PEER_B } else { PEER_A });
        take(&x, len);
    }
    out
}

/// Checks that `pkts` are back-to-back: sequence +1, timestamp + the previous duration.
fn contiguous(pkts: &[(u8, u16, u32, Vec<u8>)], samples_per_byte: u32) {
    for w in pkts.windows(2) {
        assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence");
        assert_eq!(w[1].2, w[0].2 + w[0].3.len() as u32 * samples_per_byte, "timestamp");
    }
}

#[test]
fn g711_20_ms_toward_a_30_ms_leg_and_back() {
    let mut r = relay(leg(10000, PEER_A, 8, Codec::Pcma, 20), leg(10002, PEER_B, 8, Codec::Pcma, 30));
    // A → B: 12 packets of 20 ms make 8 of 30 ms, the bytes in order.
    let src: Vec<u8> = (0..12 * 160).map(|i| (i % 251) as u8).collect();
    let mut got = vec![];
    for (k, chunk) in src.chunks(160).enumerate() {
        got.extend(send(&mut r, 10000, PEER_A, 8, 500 + k as u16, 1000 + 160 * k as u32, chunk));
    }
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|p| p.0 == 8 && p.3.len() == 240));
    assert_eq!(got[0].2, 1000);
    contiguous(&got, 1);
    assert_eq!(got.iter().flat_map(|p| p.3.clone()).collect::<Vec<_>>(), src);
    // B → A: 30 ms packets become 20 ms ones (the second of each pair of inputs makes two).
    let mut back = vec![];
    for k in 0..4u32 {
        back.extend(send(&mut r, 10002, PEER_B, 8, k as u16, 240 * k, &[k as u8; 240]));
    }
    assert_eq!(back.len(), 6);
    assert!(back.iter().all(|p| p.3.len() == 160));
    contiguous(&back, 1);
}

#[test]
fn g729_20_ms_toward_a_10_ms_g711_leg_and_back() {
    let mut r = relay(leg(10000, PEER_A, 18, Codec::G729, 20), leg(10002, PEER_B, 0, Codec::Pcmu, 10));
    let src = audio::speech_like(8000);
    let mut enc = Encoder::new(false).unwrap();
    let mut heard = vec![];
    let mut out = vec![];
    for (k, chunk) in src.chunks_exact(2 * FRAME_SAMPLES).enumerate() {
        let mut bits = vec![];
        for f in chunk.chunks_exact(FRAME_SAMPLES) {
            let mut b = [0u8; FRAME_BYTES];
            enc.encode(f.try_into().unwrap(), &mut b);
            bits.extend_from_slice(&b);
        }
        let pkts = send(&mut r, 10000, PEER_A, 18, k as u16, 160 * k as u32, &bits);
        assert_eq!(pkts.len(), 2, "one 20 ms G.729 packet makes two 10 ms PCMU packets");
        out.extend(pkts);
    }
    assert!(out.iter().all(|p| p.0 == 0 && p.3.len() == 80));
    contiguous(&out, 1);
    for p in &out {
        heard.extend(p.3.iter().map(|&b| g711::ulaw_expand(b)));
    }
    let (ncc, _) = audio::best_ncc(&src, &heard, 400, 1600);
    assert!(ncc > 0.8, "ncc {ncc:.3}");
    // PCMU 10 ms → G.729 20 ms: every second input sends one 20-byte packet that decodes.
    let mut dec = Decoder::new().unwrap();
    let mut back = vec![];
    for (k, chunk) in src.chunks_exact(FRAME_SAMPLES).enumerate() {
        let u: Vec<u8> = chunk.iter().map(|&s| g711::ulaw_compress(s)).collect();
        let pkts = send(&mut r, 10002, PEER_B, 0, k as u16, 80 * k as u32, &u);
        assert_eq!(pkts.len(), k % 2, "input {k}");
        back.extend(pkts);
    }
    assert!(back.iter().all(|p| p.0 == 18 && p.3.len() == 20));
    contiguous(&back, 8);
    let mut pcm = vec![];
    for p in &back {
        for f in p.3.chunks_exact(FRAME_BYTES) {
            let mut o = [0i16; FRAME_SAMPLES];
            dec.decode(Frame::Speech(f.try_into().unwrap()), &mut o);
            pcm.extend_from_slice(&o);
        }
    }
    let (ncc, _) = audio::best_ncc(&src, &pcm, 400, 1600);
    assert!(ncc > 0.8, "ncc {ncc:.3}");
}

#[test]
fn agreeing_or_unstated_ptimes_are_not_reframed() {
    for (a, b) in [(20, 20), (0, 30), (20, 0)] {
        let mut r = relay(leg(10000, PEER_A, 8, Codec::Pcma, a), leg(10002, PEER_B, 8, Codec::Pcma, b));
        let pkts = send(&mut r, 10000, PEER_A, 8, 7, 70, &[1; 80]);
        assert_eq!(pkts, vec![(8, 7, 70, vec![1; 80])], "ptimes {a}/{b}");
        assert!(r.fast_path_rule(10000).is_some() || a == 0 || b == 0 || a == b);
    }
    let r = relay(leg(10000, PEER_A, 8, Codec::Pcma, 20), leg(10002, PEER_B, 8, Codec::Pcma, 30));
    assert!(r.fast_path_rule(10000).is_none(), "a re-framed session never takes the fast path");
}
