//! Re-packetising on the socket backend (#18): real UDP peers over loopback, a 30 ms leg and a
//! 10 ms leg (G.711 A-law both). Each 30 ms packet the first sends reaches the second as three
//! 10 ms packets (the relay's extra packets go out after each batch), back to back; three 10 ms
//! packets the other way make one 30 ms packet.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use xtrunk_datapath::socket::{self, SocketOptions, Stats};
use xtrunk_datapath::wire::rtp::RtpPacket;
use xtrunk_ring::msg::{
    Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BASE: u16 = 22600;

fn rtp(seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, 8];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&0x3010u32.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

#[test]
fn thirty_ms_and_ten_ms_peers_through_the_socket_backend() {
    let (cmd, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let opts =
        SocketOptions { bind_ip: LO, port_min: BASE, port_max: BASE + 99, cores: vec![], max_sessions: 4, batch: 32 };
    let (s, st) = (stop.clone(), Arc::new(Stats::default()));
    let join = std::thread::spawn(move || socket::run_with_stats(opts, cmd_rx, ev_tx, s, st));
    let (p30, p10) = (UdpSocket::bind((LO, 0)).unwrap(), UdpSocket::bind((LO, 0)).unwrap());
    for p in [&p30, &p10] {
        p.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    }
    let leg = |port: u16, remote: SocketAddr, ptime_ms| {
        let mut pt_map = PtMap::new();
        pt_map.push(PtEntry { pt: 8, codec: Codec::Pcma });
        LegSpec {
            local: SocketAddr::new(LO, port),
            remote: Some(remote),
            remote_rtcp_port: 0,
            rtcp_mux: false,
            latch: LatchPolicy::Strict,
            signal_ip: None,
            pt_map,
            crypto: LegCrypto::default(),
            ptime_ms,
        }
    };
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [leg(BASE, p30.local_addr().unwrap(), 30), leg(BASE + 2, p10.local_addr().unwrap(), 10)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    cmd.send(Command::Create(spec)).unwrap();
    assert_eq!(ev.recv_timeout(Duration::from_secs(5)).unwrap(), Event::Created(SessionId(1)));

    let mut buf = [0u8; 2048];
    let mut next = None::<(u16, u32)>;
    for k in 0..20u32 {
        let payload: Vec<u8> = (0..240).map(|i| (k * 240 + i) as u8).collect();
        p30.send_to(&rtp(k as u16, 240 * k, &payload), (LO, BASE)).unwrap();
        for part in 0..3 {
            let (n, from) = p10.recv_from(&mut buf).expect("the 10 ms peer gets three packets per 30 ms");
            assert_eq!(from, SocketAddr::new(LO, BASE + 2));
            let p = RtpPacket::new_checked(&buf[..n]).unwrap();
            assert_eq!(p.payload(), &payload[part * 80..(part + 1) * 80], "packet {k}.{part}");
            if let Some((seq, ts)) = next {
                assert_eq!((p.sequence_number(), p.timestamp()), (seq, ts));
            }
            next = Some((p.sequence_number().wrapping_add(1), p.timestamp() + 80));
        }
    }
    for k in 0..30u32 {
        p10.send_to(&rtp(k as u16, 80 * k, &[k as u8; 80]), (LO, BASE + 2)).unwrap();
        if k % 3 == 2 {
            let (n, _) = p30.recv_from(&mut buf).expect("the 30 ms peer gets one packet per three");
            let p = RtpPacket::new_checked(&buf[..n]).unwrap();
            assert_eq!(p.payload().len(), 240);
            assert_eq!(p.timestamp(), 80 * (k - 2));
        }
    }
    stop.store(true, Ordering::Relaxed);
    join.join().unwrap().unwrap();
}
