//! #18 acceptance on the socket backend: real UDP peers over loopback, a G.729 leg and a G.711
//! leg through `socket::run`. The G.729 peer encodes a speech-like signal with its own libbcg729
//! context; the G.711 peer's decoded audio correlates with it (> 0.8), and the reverse.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use xtrunk_datapath::codec::bcg729::{Decoder, Encoder, Frame, FRAME_BYTES, FRAME_SAMPLES};
use xtrunk_datapath::relay::g711;
use xtrunk_datapath::socket::{self, SocketOptions, Stats};
use xtrunk_datapath::wire::rtp::{RtpPacket, RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
};

mod audio;
use audio::{best_ncc, speech_like};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BASE: u16 = 22000;

fn pts(list: &[(u8, Codec)]) -> PtMap {
    let mut m = PtMap::new();
    for &(pt, codec) in list {
        assert!(m.push(PtEntry { pt, codec }));
    }
    m
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc: 0x729,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; r.buffer_len(payload.len())];
    r.emit(&mut b, payload).unwrap();
    b
}

#[test]
fn g729_and_g711_peers_hear_each_other_through_the_socket_backend() {
    let (cmd, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let opts =
        SocketOptions { bind_ip: LO, port_min: BASE, port_max: BASE + 99, cores: vec![], max_sessions: 4, batch: 32 };
    let (s, st) = (stop.clone(), Arc::new(Stats::default()));
    let join = std::thread::spawn(move || socket::run_with_stats(opts, cmd_rx, ev_tx, s, st));

    let p729 = UdpSocket::bind((LO, 0)).unwrap();
    let p711 = UdpSocket::bind((LO, 0)).unwrap();
    for p in [&p729, &p711] {
        p.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    }
    let leg = |port: u16, remote: SocketAddr, map| LegSpec {
        local: SocketAddr::new(LO, port),
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    };
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [
            leg(BASE, p729.local_addr().unwrap(), pts(&[(18, Codec::G729)])),
            leg(BASE + 2, p711.local_addr().unwrap(), pts(&[(8, Codec::Pcma)])),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    cmd.send(Command::Create(spec)).unwrap();
    assert_eq!(ev.recv_timeout(Duration::from_secs(5)).unwrap(), Event::Created(SessionId(1)));

    let src = speech_like(8000 * 2);
    let (mut enc, mut dec) = (Encoder::new(false).unwrap(), Decoder::new().unwrap());
    let (mut heard_711, mut heard_729) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 2048];
    for (seq, chunk) in src.chunks_exact(2 * FRAME_SAMPLES).enumerate() {
        let ts = (seq * 2 * FRAME_SAMPLES) as u32;
        // G.729 peer → relay → G.711 peer.
        let mut bits = Vec::new();
        for f in chunk.chunks_exact(FRAME_SAMPLES) {
            let mut b = [0u8; FRAME_BYTES];
            enc.encode(f.try_into().unwrap(), &mut b);
            bits.extend_from_slice(&b);
        }
        p729.send_to(&rtp(18, seq as u16, ts, &bits), (LO, BASE)).unwrap();
        let (n, from) = p711.recv_from(&mut buf).expect("the G.711 peer hears the G.729 peer");
        assert_eq!(from, SocketAddr::new(LO, BASE + 2));
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!((p.payload_type(), p.payload().len()), (8, 160));
        heard_711.extend(p.payload().iter().map(|&b| g711::alaw_expand(b)));
        // G.711 peer → relay → G.729 peer.
        let a: Vec<u8> = chunk.iter().map(|&s| g711::alaw_compress(s)).collect();
        p711.send_to(&rtp(8, seq as u16, ts, &a), (LO, BASE + 2)).unwrap();
        let (n, _) = p729.recv_from(&mut buf).expect("the G.729 peer hears the G.711 peer");
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!((p.payload_type(), p.payload().len()), (18, 20));
        for f in p.payload().chunks_exact(FRAME_BYTES) {
            let mut pcm = [0i16; FRAME_SAMPLES];
            dec.decode(Frame::Speech(f.try_into().unwrap()), &mut pcm);
            heard_729.extend_from_slice(&pcm);
        }
    }
    let (ncc_a, lag_a) = best_ncc(&src, &heard_711, 400, 1600);
    let (ncc_b, lag_b) = best_ncc(&src, &heard_729, 400, 1600);
    eprintln!(
        "socket backend: G.729 -> G.711 ncc {ncc_a:.3} (lag {lag_a}), G.711 -> G.729 ncc {ncc_b:.3} (lag {lag_b})"
    );
    assert!(ncc_a > 0.8 && ncc_b > 0.8, "ncc {ncc_a:.3} / {ncc_b:.3}");
    stop.store(true, Ordering::Relaxed);
    join.join().unwrap().unwrap();
}
