//! SRTP ⇄ plain RTP through the AF_XDP backend, with libsrtp2 as the independent SRTP peer, on a
//! private network-namespace lab (`scripts/lab up --queues 1 --prefix xts<pid>`, removed on drop).
//! Needs root; prints a SKIPPED line otherwise.
//!
//! PBX (10.77.1.2:40000, SRTP AES_CM_128_HMAC_SHA1_80) ⇄ relay (rp0 10.77.1.1:30000 |
//! rc0 10.77.2.1:30002) ⇄ carrier (10.77.2.2:50000, plain RTP). One session, leg 0 keyed
//! (`rx` = the PBX's key, `tx` = the relay's key), leg 1 plain, `allow_fast_path = true` and the
//! XDP fast path enabled — SRTP must keep the session off the fast path anyway.
//! - PBX → carrier: libsrtp2 protects; the carrier receives the plaintext packet byte for byte.
//! - Carrier → PBX: plain; the PBX receives SRTP that libsrtp2 unprotects to the carrier's packet.
//! - Off the fast path: no session port in the XDP program's table, no fast-path redirect, and
//!   every relayed packet went through the AF_XDP socket (XSK redirect count).

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use xtrunk_ebpf::Counter;
use xtrunk_ring::msg::{
    Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec, SrtpKeys, SrtpSuite,
};
use xtrunk_srtp::libsrtp2::{Direction, Session, HEADROOM};
use xtrunk_srtp::Suite;

mod common;
use common::{is_root, spawn_in, Lab, RelayCtl};

const PBX: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 1, 2)), 40000);
const RP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 1, 1)), 30000);
const RC: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 2, 1)), 30002);
const CAR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 2, 2)), 50000);
const PBX_KEY: [u8; 16] = *b"pbx-master-key16";
const PBX_SALT: [u8; 14] = *b"pbx-salt-14byt";
const RELAY_KEY: [u8; 16] = *b"relay-master-k16";
const RELAY_SALT: [u8; 14] = *b"relay-salt-14b";
const PACKETS: u16 = 200;

/// A UDP socket bound in `ns` (a socket stays in the namespace it was created in).
fn udp_in(ns: &str, addr: SocketAddr) -> UdpSocket {
    let s = spawn_in(ns, move || UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))).join().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s
}

fn keys(key: &[u8; 16], salt: &[u8; 14]) -> SrtpKeys {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(key);
    SrtpKeys { suite: SrtpSuite::AesCm128HmacSha1_80, key: k, salt: *salt }
}

fn spec() -> SessionSpec {
    let leg = |local, remote, crypto| LegSpec {
        local,
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: true,
        latch: LatchPolicy::Once,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto,
        ptime_ms: 0,
    };
    SessionSpec {
        id: SessionId(1),
        legs: [
            leg(RP, PBX, LegCrypto { rx: Some(keys(&PBX_KEY, &PBX_SALT)), tx: Some(keys(&RELAY_KEY, &RELAY_SALT)) }),
            leg(RC, CAR, LegCrypto::default()),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    }
}

/// A plain RTP packet (PCMA) with a payload that depends on the direction and the sequence.
fn rtp(seq: u16, ssrc: u32, dir: u8) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160u16).map(|i| (i.wrapping_mul(7) ^ seq) as u8 ^ dir));
    p
}

/// Receives from `s` until a datagram of `want`'s sequence number arrives (earlier ones from the
/// warm-up are skipped) or the timeout; returns it.
fn recv_seq(s: &UdpSocket, seq: u16, from: SocketAddr) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        let Ok((n, src)) = s.recv_from(&mut buf) else { continue };
        assert_eq!(src, from, "relayed packet from the wrong source");
        if n >= 12 && u16::from_be_bytes([buf[2], buf[3]]) == seq {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

#[test]
fn xdp_srtp_pbx_to_plain_carrier_with_libsrtp2() {
    if !is_root() {
        println!("SKIPPED: needs root (AF_XDP/netns)");
        return;
    }
    let lab = Lab::up(&format!("xts{}", std::process::id()), 1);
    let (pbx_ns, relay_ns, car_ns) = (lab.ns("pbx"), lab.ns("relay"), lab.ns("carrier"));
    let ctl = RelayCtl::start(&relay_ns, &[0], true, 16);
    ctl.cmds.send(Command::Create(spec())).unwrap();
    match ctl.events.recv_timeout(Duration::from_secs(5)).expect("an answer to Create") {
        Event::Created(SessionId(1)) => {}
        e => panic!("the relay refused the keyed session: {e:?}"),
    }

    let pbx = udp_in(&pbx_ns, PBX);
    let car = udp_in(&car_ns, CAR);
    let mut pbx_tx = Session::new(Suite::AesCm128HmacSha1_80, &PBX_KEY, &PBX_SALT, Direction::Outbound).unwrap();
    let mut pbx_rx = Session::new(Suite::AesCm128HmacSha1_80, &RELAY_KEY, &RELAY_SALT, Direction::Inbound).unwrap();
    let protect = |s: &mut Session, plain: &[u8]| {
        let mut p = plain.to_vec();
        p.resize(plain.len() + HEADROOM, 0);
        let n = s.protect_rtp(&mut p, plain.len()).expect("libsrtp2 protects");
        p.truncate(n);
        p
    };

    // Warm-up: until one packet made it each way (the relay resolves the peers' neighbours).
    let t = Instant::now();
    let mut seq = 1u16;
    let (mut warm_b, mut warm_a) = (false, false);
    while !(warm_a && warm_b) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no packet crossed the relay (to carrier: {warm_b}, to PBX: {warm_a}): {:#?}",
            ctl.stats()
        );
        if !warm_b {
            pbx.send_to(&protect(&mut pbx_tx, &rtp(seq, 0xa1a1_a1a1, 0)), RP).unwrap();
            warm_b = recv_seq(&car, seq, RC).is_some();
        }
        if !warm_a {
            car.send_to(&rtp(seq, 0xb2b2_b2b2, 0x55), RC).unwrap();
            if let Some(mut p) = recv_seq(&pbx, seq, RP) {
                pbx_rx.unprotect_rtp(&mut p).expect("libsrtp2 unprotects the relay's SRTP (warm-up)");
                warm_a = true;
            }
        }
        seq += 1;
    }

    // The measured packets, both directions interleaved.
    let first = seq;
    let (mut got_b, mut got_a) = (0u16, 0u16);
    for seq in first..first + PACKETS {
        // PBX → carrier: SRTP in, the plaintext out, byte for byte.
        let plain = rtp(seq, 0xa1a1_a1a1, 0);
        let srtp = protect(&mut pbx_tx, &plain);
        assert_eq!(srtp.len(), plain.len() + 10, "80-bit tag");
        pbx.send_to(&srtp, RP).unwrap();
        if let Some(p) = recv_seq(&car, seq, RC) {
            assert_eq!(p, plain, "seq {seq}: the carrier must get the PBX's plaintext RTP");
            got_b += 1;
        }
        // Carrier → PBX: plain in, SRTP out that libsrtp2 unprotects.
        let back = rtp(seq, 0xb2b2_b2b2, 0x55);
        car.send_to(&back, RC).unwrap();
        if let Some(mut p) = recv_seq(&pbx, seq, RP) {
            assert_eq!(p.len(), back.len() + 10, "seq {seq}: SRTP with an 80-bit tag");
            assert_ne!(&p[12..back.len()], &back[12..], "seq {seq}: the payload must be encrypted");
            let n = pbx_rx.unprotect_rtp(&mut p).expect("libsrtp2 unprotects the relay's SRTP");
            assert_eq!(&p[..n], &back[..], "seq {seq}: unprotected packet differs from the carrier's");
            got_a += 1;
        }
    }
    assert!(got_b >= PACKETS * 98 / 100, "PBX → carrier: {got_b} of {PACKETS}");
    assert!(got_a >= PACKETS * 98 / 100, "carrier → PBX: {got_a} of {PACKETS}");

    // Not on the fast path: the session's packets all went through the AF_XDP worker.
    std::thread::sleep(Duration::from_millis(120));
    let live = ctl.stats();
    assert_eq!(live.fast_ports, 0, "an SRTP session must not be on the fast path: {live:#?}");
    ctl.cmds.send(Command::Delete(SessionId(1))).unwrap();
    match ctl.events.recv_timeout(Duration::from_secs(5)).expect("Deleted") {
        Event::Deleted { stats, .. } => {
            let total = u64::from(seq) - 1 + u64::from(PACKETS);
            for (l, st) in stats.iter().enumerate() {
                assert!(st.packets >= u64::from(PACKETS), "leg {l}: {} packets accepted", st.packets);
                assert!(st.packets <= total, "leg {l}: {} packets accepted of {total} sent", st.packets);
            }
        }
        e => panic!("unexpected {e:?}"),
    }
    let s = ctl.finish();
    println!("relay stats: {s:#?}");
    assert_eq!(s.counter(Counter::FastRedirect), 0, "nothing may be forwarded by the XDP program");
    let relayed = u64::from(got_a) + u64::from(got_b);
    assert!(
        s.counter(Counter::XskRedirect) >= relayed,
        "every relayed packet passes the AF_XDP socket: {} redirects, {relayed} relayed",
        s.counter(Counter::XskRedirect)
    );
    let (rx, tx): (u64, u64) = s.workers.iter().fold((0, 0), |(r, t), w| (r + w.rx, t + w.tx));
    assert!(rx >= relayed && tx >= relayed, "workers rx {rx} tx {tx}, {relayed} relayed");
    drop(lab);
}
