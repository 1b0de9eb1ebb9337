//! #18 acceptance with a real G.729 peer: SIPp as a G.729 carrier plays a G.729 RTP pcap (the
//! test encodes a known speech-like signal with libbcg729 through the datapath's wrapper, 20 ms
//! per packet, PT 18) toward the relay; the call runs through the sidecar and the in-process
//! socket-backend datapath (`ChannelMedia`, real UDP on loopback). The PBX is the test itself
//! (SIP by hand, G.711 A-law only): what it receives is PCMA whose decoded audio correlates with
//! the source (normalised cross-correlation > 0.8 after the codec).

#[macro_use]
mod common;
#[path = "../../datapath/tests/audio/mod.rs"]
mod audio;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use xtrunk_datapath::codec::bcg729::{Encoder, FRAME_BYTES, FRAME_SAMPLES};
use xtrunk_datapath::relay::g711;
use xtrunk_signaling::sdp::Sdp;
use xtrunk_signaling::sip::msg::{parse, HName, Message};

/// Seconds of audio in the pcap.
const SECS: usize = 2;
/// RTP timestamp of the pcap's first packet (the relay keeps timestamps when it transcodes).
const TS0: u32 = 8000;

fn recv_sip(s: &UdpSocket, want: impl Fn(&Message) -> bool) -> Message {
    let mut buf = [0u8; 65_535];
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "timed out waiting for a SIP message");
        let Ok((n, _)) = s.recv_from(&mut buf) else { continue };
        let m = parse(&buf[..n]).expect("sidecar sent parseable SIP");
        if want(&m) {
            return m;
        }
    }
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s
}

/// The G.729 pcap: `src` encoded 20 ms (two frames, 20 bytes) per RTP packet.
fn g729_pcap(path: &std::path::Path, src: &[i16]) {
    let mut enc = Encoder::new(false).unwrap();
    let pkts: Vec<Vec<u8>> = src
        .chunks_exact(2 * FRAME_SAMPLES)
        .enumerate()
        .map(|(i, chunk)| {
            let mut bits = Vec::with_capacity(2 * FRAME_BYTES);
            for f in chunk.chunks_exact(FRAME_SAMPLES) {
                let mut b = [0u8; FRAME_BYTES];
                assert_eq!(enc.encode(f.try_into().unwrap(), &mut b), FRAME_BYTES);
                bits.extend_from_slice(&b);
            }
            pcap::rtp(18, 1000 + i as u16, TS0 + (i * 2 * FRAME_SAMPLES) as u32, 0x0729_0729, &bits)
        })
        .collect();
    pcap::write_udp(path, &pkts, 20_000, (6000, 6000));
}

#[test]
fn sipp_g729_carrier_is_heard_by_a_g711_pbx() {
    need_sipp!();
    let _ = env_logger::builder().is_test(true).try_init();
    let src = audio::speech_like(8000 * SECS);

    let uas_port = free_port();
    let edge = MediaEdge::start("g729-sipp", (24_100, 24_199), &[uas_port], |c| {
        c.trunks[0].codecs = vec!["PCMA".into(), "telephone-event".into()];
        c.trunks[1].codecs = vec!["G729".into(), "PCMA".into(), "telephone-event".into()];
    });
    let sig: SocketAddr = ([127, 0, 0, 1], edge.port).into();
    g729_pcap(&edge.dir.join("g729.pcap"), &src);
    let uas = sipp(&edge.dir, "uas", "uas_g729", uas_port, None, 1, &[]);

    // The PBX: G.711 A-law only.
    let (pbx_sip, pbx_rtp) = (udp(), udp());
    let pa = pbx_sip.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n",
        pbx_rtp.local_addr().unwrap().port()
    );
    let dialog = format!("From: <sip:100@{pa}>;tag=pbx1\r\nTo: <sip:4930123@{sig}>\r\nCall-ID: g729-sipp-1\r\n");
    let invite = format!("INVITE sip:4930123@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP {pa};branch=z9hG4bKg1;rport\r\n{dialog}CSeq: 1 INVITE\r\nContact: <sip:100@{pa}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
    pbx_sip.send_to(invite.as_bytes(), sig).unwrap();
    let fin = recv_sip(&pbx_sip, |m| m.code().is_some_and(|c| c >= 200));
    assert_eq!(fin.code(), Some(200), "{:?}", fin.start);
    let body = String::from_utf8_lossy(&fin.body).into_owned();
    assert!(body.contains(" RTP/AVP 8\r\n") && !body.contains("G729"), "the PBX is answered in its G.711: {body}");
    let relay_a = Sdp::parse(&fin.body).unwrap().remote().unwrap().addr.unwrap();
    let to = fin.header(&HName::To).unwrap().to_string();
    let ack = format!("ACK sip:4930123@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP {pa};branch=z9hG4bKg2;rport\r\nFrom: <sip:100@{pa}>;tag=pbx1\r\nTo: {to}\r\nCall-ID: g729-sipp-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    pbx_sip.send_to(ack.as_bytes(), sig).unwrap();

    // What the PBX hears, placed by RTP timestamp from the pcap's first (a late or missing packet leaves silence).
    let mut heard = vec![0i16; src.len() + 1600];
    let mut pkts = 0usize;
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_secs(SECS as u64 + 3);
    while Instant::now() < end && pkts < src.len() / 160 {
        let Ok((n, from)) = pbx_rtp.recv_from(&mut buf) else { continue };
        assert_eq!(from, relay_a, "RTP from the relay's PBX-leg address");
        assert!(n >= 12, "{n}-byte datagram");
        // Every packet, the first ones too: until the answer's Update reaches the datapath
        // (SIPp starts on the edge's ACK, which may overtake it), the carrier leg is read by our
        // offer's payload types, so its G.729 is transcoded from the first packet on.
        assert_eq!(buf[1] & 0x7f, 8, "PCMA toward the PBX, packet {pkts}");
        assert_eq!(n - 12, 160, "20 ms of G.711 per 20 ms of G.729");
        let ts = u32::from_be_bytes(buf[4..8].try_into().unwrap());
        let at = ts.wrapping_sub(TS0) as usize;
        for (i, &b) in buf[12..n].iter().enumerate() {
            if let Some(s) = heard.get_mut(at + i) {
                *s = g711::alaw_expand(b);
            }
        }
        pkts += 1;
    }
    let bye = format!("BYE sip:xtrunk@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP {pa};branch=z9hG4bKg3;rport\r\nFrom: <sip:100@{pa}>;tag=pbx1\r\nTo: {to}\r\nCall-ID: g729-sipp-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    pbx_sip.send_to(bye.as_bytes(), sig).unwrap();
    let bye_ok =
        recv_sip(&pbx_sip, |m| m.code().is_some() && m.header(&HName::CSeq).is_some_and(|c| c.contains("BYE")));
    assert_eq!(bye_ok.code(), Some(200));
    let b = uas.wait();
    let (summary, cdrs) = edge.stop();
    assert!(b.ok && b.successful == 1, "SIPp carrier: {b:?}");
    assert_clean(&summary);

    let (ncc, lag) = audio::best_ncc(&src, &heard, 400, 1600);
    eprintln!("SIPp G.729 carrier -> G.711 PBX: {pkts} packets, ncc {ncc:.3} (lag {lag})");
    assert!(pkts >= src.len() / 160 * 9 / 10, "{pkts} of {} packets", src.len() / 160);
    assert!(ncc > 0.8, "ncc {ncc:.3}");
    assert_eq!(cdrs.len(), 1);
    assert!(cdrs[0]["legs"][1]["packets"].as_u64().unwrap_or(0) >= pkts as u64, "{}", cdrs[0]);
}
