//! Re-packetising on the AF_XDP backend (#18), on a private network-namespace lab (needs root;
//! prints a SKIPPED line otherwise). One session, PCMU both legs: the PBX asked for 30 ms, the
//! carrier for 10 ms. Each 30 ms packet from the PBX reaches the carrier as three 10 ms packets,
//! back to back, from the relay's carrier-side address: the first from the AF_XDP worker, the
//! two extra ones through the kernel's stack (`xsk::worker::send_extras`). Three 10 ms packets
//! from the carrier reach the PBX as one 30 ms packet.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
};

mod common;
use common::{is_root, spawn_in, Lab, RelayCtl};

const PBX: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 1, 2)), 40000);
const RP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 1, 1)), 30000);
const RC: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 2, 1)), 30002);
const CAR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 77, 2, 2)), 50000);
const IN: u32 = 40; // 30 ms packets from the PBX

fn rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x3010_0001u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn leg(local: SocketAddr, remote: SocketAddr, ptime_ms: u8) -> LegSpec {
    let mut pt_map = PtMap::new();
    pt_map.push(PtEntry { pt: 0, codec: Codec::Pcmu });
    LegSpec {
        local,
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: true,
        latch: LatchPolicy::Once,
        signal_ip: None,
        pt_map,
        crypto: LegCrypto::default(),
        ptime_ms,
    }
}

/// Receives up to `n` datagrams (2 s quiet ends it): (source, RTP seq, ts, payload length).
fn receive(s: &UdpSocket, n: usize) -> Vec<(SocketAddr, u16, u32, usize)> {
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 2048];
    let mut got = vec![];
    while got.len() < n {
        let Ok((len, from)) = s.recv_from(&mut buf) else { break };
        if len >= 12 {
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            got.push((from, seq, ts, len - 12));
        }
    }
    got
}

#[test]
fn xdp_thirty_ms_pbx_ten_ms_carrier() {
    if !is_root() {
        println!("SKIPPED: needs root (AF_XDP/netns)");
        return;
    }
    let prefix = format!("xr{}", std::process::id());
    let lab = Lab::up(&prefix, 2);
    let (pbx, relay_ns, car) = (lab.ns("pbx"), lab.ns("relay"), lab.ns("carrier"));
    let ctl = RelayCtl::start(&relay_ns, &[0, 1], false, 8);
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [leg(RP, PBX, 30), leg(RC, CAR, 10)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    ctl.cmds.send(Command::Create(spec)).unwrap();
    assert_eq!(ctl.events.recv_timeout(Duration::from_secs(5)).unwrap(), Event::Created(SessionId(1)));

    // The carrier: takes three 10 ms packets per 30 ms one, then sends 10 ms packets back.
    let (ready_tx, ready) = mpsc::channel();
    let carrier = spawn_in(&car, move || {
        let s = UdpSocket::bind(CAR).unwrap();
        ready_tx.send(()).unwrap();
        let got = receive(&s, 3 * IN as usize);
        for k in 0..3 * 10u32 {
            s.send_to(&rtp(k as u16, 80 * k, &[k as u8; 80]), RC).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        got
    });
    ready.recv().unwrap();
    let pbx_side = spawn_in(&pbx, move || {
        let s = UdpSocket::bind(PBX).unwrap();
        for k in 0..IN {
            s.send_to(&rtp(k as u16, 240 * k, &[k as u8; 240]), RP).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        receive(&s, 10)
    });
    let at_car = carrier.join().unwrap();
    let at_pbx = pbx_side.join().unwrap();
    let s = ctl.finish();
    drop(lab);
    println!("carrier got {} packets, PBX {}; workers {:?}", at_car.len(), at_pbx.len(), s.workers);

    assert_eq!(at_car.len(), 3 * IN as usize, "three 10 ms packets per 30 ms one");
    assert!(at_car.iter().all(|p| p.0 == RC && p.3 == 80), "{at_car:?}");
    let mut sorted = at_car.clone();
    sorted.sort_by_key(|p| p.2);
    for w in sorted.windows(2) {
        assert_eq!(w[1].2, w[0].2 + 80, "timestamps back to back");
        assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence back to back");
    }
    assert_eq!(at_pbx.len(), 10, "one 30 ms packet per three 10 ms ones");
    assert!(at_pbx.iter().all(|p| p.0 == RP && p.3 == 240), "{at_pbx:?}");
    assert!(s.workers.iter().map(|w| w.tx_kernel).sum::<u64>() >= 2 * u64::from(IN), "extras through the kernel");
}
