//! Acceptance of G.729 ↔ G.711 transcoding through the relay core (#18): a G.729 leg and a
//! G.711 leg, real audio both ways. The sending peer encodes a speech-like signal with its own
//! libbcg729 context; the receiving peer decodes what the relay sent. The decoded audio must
//! correlate with the source (normalised cross-correlation > 0.8, best lag searched).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use xtrunk_datapath::codec::bcg729::{Decoder, Encoder, Frame, FRAME_BYTES, FRAME_SAMPLES, SID_BYTES};
use xtrunk_datapath::relay::{g711, Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::rtp::{RtpPacket, RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
};

mod audio;
use audio::{best_ncc, speech_like};

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The G.729 peer (leg 0) and the G.711 peer (leg 1).
const PEER_729: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)), 4000);
const PEER_711: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)), 6000);
/// The socket backend's buffer size.
const BUF: usize = 2048;

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

/// Leg 0 on 10000 speaks G.729 (18) + telephone-event; leg 1 on 10002 speaks `law` (0 or 8).
fn relay(g711_pt: u8) -> Relay {
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 4 });
    let law = if g711_pt == 0 { Codec::Pcmu } else { Codec::Pcma };
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [
            leg(10000, PEER_729, pts(&[(18, Codec::G729), (101, Codec::TelephoneEvent)])),
            leg(10002, PEER_711, pts(&[(g711_pt, law), (101, Codec::TelephoneEvent)])),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    let mut ev = vec![];
    r.apply(0, &Command::Create(spec), &mut |e| ev.push(e));
    assert_eq!(ev, vec![Event::Created(SessionId(1))]);
    r
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc: 0x7290_0001,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; BUF];
    r.emit(&mut b, payload).unwrap();
    b
}

#[test]
fn g729_leg_to_g711_leg_keeps_the_audio() {
    for (g711_pt, expand) in [(0u8, g711::ulaw_expand as fn(u8) -> i16), (8, g711::alaw_expand)] {
        let mut r = relay(g711_pt);
        let src = speech_like(8000 * 3);
        let mut enc = Encoder::new(false).unwrap();
        let mut out = Vec::new();
        // Packets of 10, 20 and 30 ms in turn: each comes out as G.711 of the same duration.
        let (mut at, mut seq, mut k) = (0usize, 0u16, 0usize);
        while at + 3 * FRAME_SAMPLES <= src.len() {
            let frames = 1 + k % 3;
            let mut payload = Vec::new();
            for f in 0..frames {
                let pcm: &[i16; FRAME_SAMPLES] =
                    src[at + f * FRAME_SAMPLES..at + (f + 1) * FRAME_SAMPLES].try_into().unwrap();
                let mut bits = [0u8; FRAME_BYTES];
                assert_eq!(enc.encode(pcm, &mut bits), FRAME_BYTES);
                payload.extend_from_slice(&bits);
            }
            let mut pkt = rtp(18, seq, at as u32, &payload);
            let len = 12 + payload.len();
            let v = r.handle_packet(at as u64 / 8, 10000, PEER_729, &mut pkt, len);
            let Verdict::Forward { len, from, to } = v else { panic!("packet {seq}: {v:?}") };
            assert_eq!((from.port(), to), (10002, PEER_711));
            let p = RtpPacket::new_checked(&pkt[..len]).unwrap();
            assert_eq!((p.payload_type(), p.sequence_number(), p.timestamp()), (g711_pt, seq, at as u32));
            assert_eq!(p.payload().len(), frames * FRAME_SAMPLES);
            out.extend(p.payload().iter().map(|&b| expand(b)));
            at += frames * FRAME_SAMPLES;
            seq = seq.wrapping_add(1);
            k += 1;
        }
        let (ncc, lag) = best_ncc(&src[..at], &out, 400, 1600);
        eprintln!("G.729 -> G.711 (PT {g711_pt}): ncc {ncc:.3} at lag {lag} samples");
        assert!(ncc > 0.8, "G.729 -> G.711 (PT {g711_pt}): ncc {ncc:.3} at lag {lag}");
    }
}

#[test]
fn g711_leg_to_g729_leg_keeps_the_audio() {
    for (g711_pt, compress) in [(0u8, g711::ulaw_compress as fn(i16) -> u8), (8, g711::alaw_compress)] {
        let mut r = relay(g711_pt);
        let src = speech_like(8000 * 3);
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        for (seq, chunk) in src.chunks_exact(2 * FRAME_SAMPLES).enumerate() {
            let payload: Vec<u8> = chunk.iter().map(|&s| compress(s)).collect();
            let ts = (seq * 2 * FRAME_SAMPLES) as u32;
            let mut pkt = rtp(g711_pt, seq as u16, ts, &payload);
            let v = r.handle_packet(seq as u64 * 20, 10002, PEER_711, &mut pkt, 12 + payload.len());
            let Verdict::Forward { len, to, .. } = v else { panic!("packet {seq}: {v:?}") };
            assert_eq!(to, PEER_729);
            let p = RtpPacket::new_checked(&pkt[..len]).unwrap();
            assert_eq!((p.payload_type(), p.timestamp()), (18, ts));
            assert_eq!(p.payload().len(), 2 * FRAME_BYTES);
            for f in p.payload().chunks_exact(FRAME_BYTES) {
                let mut pcm = [0i16; FRAME_SAMPLES];
                dec.decode(Frame::Speech(f.try_into().unwrap()), &mut pcm);
                out.extend_from_slice(&pcm);
            }
        }
        let (ncc, lag) = best_ncc(&src, &out, 400, 1600);
        eprintln!("G.711 (PT {g711_pt}) -> G.729: ncc {ncc:.3} at lag {lag} samples");
        assert!(ncc > 0.8, "G.711 (PT {g711_pt}) -> G.729: ncc {ncc:.3} at lag {lag}");
    }
}

#[test]
fn annex_b_sid_frames_become_comfort_noise() {
    let mut r = relay(0);
    let mut enc = Encoder::new(true).unwrap();
    // Speech, then near-silence: the VAD encoder sends speech frames, then SID frames or nothing.
    let mut src = speech_like(8000);
    src.extend((0..16000).map(|i| ((i * 7919 % 13) as i16 - 6) * 2));
    let (mut sid_packets, mut speech_packets) = (0, 0);
    for (seq, frame) in src.chunks_exact(FRAME_SAMPLES).enumerate() {
        let mut bits = [0u8; FRAME_BYTES];
        let n = enc.encode(frame.try_into().unwrap(), &mut bits);
        if n == 0 {
            continue; // DTX: nothing sent, as a real peer does.
        }
        let mut pkt = rtp(18, seq as u16, (seq * FRAME_SAMPLES) as u32, &bits[..n]);
        let v = r.handle_packet(seq as u64 * 10, 10000, PEER_729, &mut pkt, 12 + n);
        let Verdict::Forward { len, .. } = v else { panic!("frame {seq} ({n} bytes): {v:?}") };
        assert_eq!(len, 12 + FRAME_SAMPLES, "a {n}-byte frame becomes 10 ms of G.711");
        if n == SID_BYTES {
            sid_packets += 1;
        } else {
            speech_packets += 1;
        }
    }
    assert!(sid_packets > 0 && speech_packets > 0, "sid {sid_packets}, speech {speech_packets}");
    // A speech frame followed by a SID frame in one packet (RFC 3551 §4.5.6): 20 ms out.
    let mut pkt = rtp(18, 9000, 0, &[0x55; FRAME_BYTES + SID_BYTES]);
    let v = r.handle_packet(40_000, 10000, PEER_729, &mut pkt, 12 + FRAME_BYTES + SID_BYTES);
    assert!(matches!(v, Verdict::Forward { len, .. } if len == 12 + 2 * FRAME_SAMPLES), "{v:?}");
}

#[test]
fn legs_that_agree_are_not_transcoded() {
    // Both legs offer G.729: passed unchanged (and the session may use the fast path).
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 4 });
    let m = pts(&[(18, Codec::G729), (0, Codec::Pcmu)]);
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [leg(10000, PEER_729, m), leg(10002, PEER_711, m)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    r.apply(0, &Command::Create(spec), &mut |_| {});
    let payload = [0x3c; 20];
    let mut pkt = rtp(18, 1, 0, &payload);
    let v = r.handle_packet(0, 10000, PEER_729, &mut pkt, 32);
    assert!(matches!(v, Verdict::Forward { len: 32, .. }));
    assert_eq!(RtpPacket::new_checked(&pkt[..32]).unwrap().payload(), &payload);
    assert!(r.fast_path_rule(10000).is_some());
    // A transcoding session never gets a fast-path rule.
    let r = relay(0);
    assert!(r.fast_path_rule(10000).is_none() && r.fast_path_rule(10002).is_none());
}
