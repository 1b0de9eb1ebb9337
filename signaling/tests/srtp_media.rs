//! SRTP media end to end: the sidecar with the in-process socket datapath (`ChannelMedia`),
//! SIP driven by hand over loopback UDP. The test plays a PBX on an SRTP-mandatory trunk whose
//! RTP is protected by **libsrtp2** with the key of its own offer, and a plain carrier. Checked:
//! the carrier receives plain RTP with the PBX's payload, and the carrier's plain RTP reaches the
//! PBX as SRTP that libsrtp2 unprotects with the key of the sidecar's answer.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use xtrunk_config::{Config, Listen, Route, SrtpPolicy, Transport, Trunk, TrunkRole};
use xtrunk_datapath::socket::{run_with_stats, SocketOptions, Stats};
use xtrunk_signaling::media::ChannelMedia;
use xtrunk_signaling::sdp::{crypto_lines, sdes_suite, Sdp};
use xtrunk_signaling::sip::msg::{parse, HName, Message};
use xtrunk_signaling::Server;
use xtrunk_srtp::libsrtp2::{Direction, Session, HEADROOM};
use xtrunk_srtp::{format_sdes_inline, Suite};

const PBX_KEY: [u8; 16] = *b"0123456789abcdef";
const PBX_SALT: [u8; 14] = *b"saltsaltsalt14";

/// The shared test trunk ([`common::trunk`]) with an SRTP policy and one suite.
fn trunk(name: &str, role: TrunkRole, acl: &[&str], target: Option<u16>, srtp: SrtpPolicy) -> Trunk {
    let targets: Vec<u16> = target.into_iter().collect();
    Trunk { srtp, srtp_suites: vec!["AES_CM_128_HMAC_SHA1_80".into()], ..common::trunk(name, role, acl, &targets) }
}

fn recv_sip(s: &UdpSocket, want: impl Fn(&Message) -> bool) -> (Message, SocketAddr) {
    let mut buf = [0u8; 65_535];
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < end, "timed out waiting for a SIP message");
        let Ok((n, from)) = s.recv_from(&mut buf) else { continue };
        let m = parse(&buf[..n]).expect("sidecar sent parseable SIP");
        if want(&m) {
            return (m, from);
        }
    }
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s
}

#[test]
fn srtp_pbx_to_plain_carrier_media_with_libsrtp2() {
    let _ = env_logger::builder().is_test(true).try_init();
    let dir = std::env::temp_dir().join(format!("xtrunk-sig-srtp-media-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Below the ephemeral range (32768-60999): no SIPp media socket can hold one of these ports.
    let (port_min, port_max) = (23_000, 23_099);
    let (cmd_tx, cmd_rx) = mpsc::sync_channel(1024);
    let (ev_tx, ev_rx) = mpsc::sync_channel(1024);
    let dp_stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let opts = SocketOptions {
        bind_ip: "127.0.0.1".parse().unwrap(),
        port_min,
        port_max,
        cores: vec![],
        max_sessions: 10,
        batch: 32,
    };
    let (s2, st2) = (dp_stop.clone(), stats.clone());
    let dp = std::thread::spawn(move || run_with_stats(opts, cmd_rx, ev_tx, s2, st2));

    let pbx_sip = udp();
    let pbx_rtp = udp();
    let car_sip = udp();
    let car_rtp = udp();
    let sig_port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let sig: SocketAddr = ([127, 0, 0, 1], sig_port).into();
    let mut cfg = Config::embedded_default().unwrap();
    cfg.node.shm_path = dir.join("shm");
    cfg.node.cdr_path = Some(dir.join("cdr.jsonl"));
    cfg.sip.listen = vec![Listen { transport: Transport::Udp, addr: sig, tls: None, advertised: None }];
    cfg.media.port_min = port_min;
    cfg.media.port_max = port_max;
    cfg.trunks = vec![
        trunk("pbx", TrunkRole::Customer, &["127.0.0.0/8"], None, SrtpPolicy::Mandatory),
        trunk("carrier", TrunkRole::Carrier, &[], Some(car_sip.local_addr().unwrap().port()), SrtpPolicy::Off),
    ];
    cfg.routes = vec![Route::to("", Some("pbx"), "carrier")];
    let server = Server::bind(&cfg, ChannelMedia { tx: cmd_tx, rx: ev_rx }).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s3 = stop.clone();
    let sig_thread = std::thread::spawn(move || server.run(s3).unwrap());

    // PBX → sidecar: INVITE with RTP/SAVP and our key.
    let pa = pbx_sip.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 {}\r\n",
        pbx_rtp.local_addr().unwrap().port(),
        format_sdes_inline(&PBX_KEY, &PBX_SALT)
    );
    let dialog = format!("From: <sip:100@{pa}>;tag=pbx1\r\nTo: <sip:4930123@{sig}>\r\nCall-ID: srtp-media-1\r\n");
    let invite = format!("INVITE sip:4930123@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP {pa};branch=z9hG4bKsm1;rport\r\n{dialog}CSeq: 1 INVITE\r\nContact: <sip:100@{pa}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
    pbx_sip.send_to(invite.as_bytes(), sig).unwrap();

    // Carrier: a plain offer; answer 200 with plain RTP/AVP.
    let (inv, from) = recv_sip(&car_sip, |m| m.method().is_some());
    let body = String::from_utf8(inv.body.clone()).unwrap();
    assert!(body.contains(" RTP/AVP ") && !body.contains("crypto"), "{body}");
    let relay_b = Sdp::parse(&inv.body).unwrap().remote().unwrap().addr.unwrap();
    let asdp = format!("v=0\r\no=car 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n", car_rtp.local_addr().unwrap().port());
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=car1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:c@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{asdp}",
        inv.header(&HName::Via).unwrap(),
        inv.header(&HName::From).unwrap(),
        inv.header(&HName::To).unwrap(),
        inv.call_id().unwrap(),
        inv.header(&HName::CSeq).unwrap(),
        car_sip.local_addr().unwrap(),
        asdp.len()
    );
    car_sip.send_to(ok.as_bytes(), from).unwrap();

    // PBX: the final response. 503 here means the datapath refused the keyed session.
    let (fin, _) = recv_sip(&pbx_sip, |m| m.code().is_some_and(|c| c >= 200));
    assert_eq!(fin.code(), Some(200), "call failed; the datapath must accept SRTP legs: {:?}", fin.start);
    let ans = Sdp::parse(&fin.body).unwrap();
    let relay_a = ans.remote().unwrap().addr.unwrap();
    let lines = crypto_lines(&ans, 0);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].tag, 7);
    let suite = sdes_suite(lines[0].keys.suite);
    assert_eq!(suite, Suite::AesCm128HmacSha1_80);
    let (their_key, their_salt) = (&lines[0].keys.key[..16], &lines[0].keys.salt[..14]);
    assert_ne!(their_key, &PBX_KEY[..]);
    let to = fin.header(&HName::To).unwrap().to_string();
    let ack = format!("ACK sip:4930123@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP {pa};branch=z9hG4bKsm2;rport\r\nFrom: <sip:100@{pa}>;tag=pbx1\r\nTo: {to}\r\nCall-ID: srtp-media-1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    pbx_sip.send_to(ack.as_bytes(), sig).unwrap();

    let mut pbx_tx = Session::new(Suite::AesCm128HmacSha1_80, &PBX_KEY, &PBX_SALT, Direction::Outbound).unwrap();
    let mut pbx_rx = Session::new(suite, their_key, their_salt, Direction::Inbound).unwrap();
    let mut buf = [0u8; 2048];
    let n_pkts = 50u16;
    let (mut got_b, mut got_a) = (0, 0);
    for seq in 1..=n_pkts {
        // PBX → carrier: SRTP in, plain out.
        let payload: Vec<u8> = (0..160).map(|i| (i as u16 + seq) as u8).collect();
        let mut p = rtp(seq, 0xa1a1_a1a1, &payload);
        let len = p.len();
        p.resize(len + HEADROOM, 0);
        let n = pbx_tx.protect_rtp(&mut p, len).unwrap();
        pbx_rtp.send_to(&p[..n], relay_a).unwrap();
        if let Ok((n, _)) = car_rtp.recv_from(&mut buf) {
            assert_eq!(n, 12 + 160, "the carrier gets plain RTP");
            assert_eq!(&buf[12..n], &payload[..], "payload intact");
            got_b += 1;
        }
        // Carrier → PBX: plain in, SRTP out.
        let back: Vec<u8> = (0..160).map(|i| (i as u16 * 3 + seq) as u8).collect();
        car_rtp.send_to(&rtp(seq, 0xb2b2_b2b2, &back), relay_b).unwrap();
        if let Ok((n, _)) = pbx_rtp.recv_from(&mut buf) {
            assert_eq!(n, 12 + 160 + 10, "SRTP with an 80-bit tag");
            let m = pbx_rx.unprotect_rtp(&mut buf[..n]).expect("libsrtp2 unprotects the relay's SRTP");
            assert_eq!(&buf[12..m], &back[..], "payload intact");
            got_a += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let bye = format!("BYE sip:xtrunk@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP {pa};branch=z9hG4bKsm3;rport\r\nFrom: <sip:100@{pa}>;tag=pbx1\r\nTo: {to}\r\nCall-ID: srtp-media-1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    pbx_sip.send_to(bye.as_bytes(), sig).unwrap();
    let (bye_ok, _) =
        recv_sip(&pbx_sip, |m| m.code() == Some(200) && m.header(&HName::CSeq).is_some_and(|c| c.contains("BYE")));
    assert_eq!(bye_ok.code(), Some(200));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let summary = sig_thread.join().unwrap();
    dp_stop.store(true, Ordering::Relaxed);
    let _ = dp.join();
    assert_eq!(summary.active_calls, 0);
    assert!(
        got_b >= usize::from(n_pkts) * 9 / 10 && got_a >= usize::from(n_pkts) * 9 / 10,
        "PBX→carrier {got_b}, carrier→PBX {got_a} of {n_pkts}"
    );
    // Passed: the scratch directory goes (a failure above keeps it for its logs).
    let _ = std::fs::remove_dir_all(&dir);
}
