//! The per-leg (one-way media) timeout end to end through the socket backend over loopback: a leg
//! that sends only RTCP stays up; once it stops, it is reported while the other leg still sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use xtrunk_datapath::socket::{self, SocketOptions, Stats};
use xtrunk_datapath::wire::rtcp::RtcpRepr;
use xtrunk_datapath::wire::rtp::{RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BASE: u16 = 21800;

fn peer() -> UdpSocket {
    UdpSocket::bind((LO, 0)).unwrap()
}

fn leg(port: u16, rtp: &UdpSocket, rtcp: &UdpSocket) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(LO, port),
        remote: Some(rtp.local_addr().unwrap()),
        remote_rtcp_port: rtcp.local_addr().unwrap().port(),
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

fn rtp(seq: u16) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: 0,
        sequence_number: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 0xA,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; r.buffer_len(160)];
    r.emit(&mut b, &[0xFF; 160]).unwrap();
    b
}

#[test]
fn rtcp_only_leg_lives_and_a_silent_leg_is_reported() {
    let (cmd, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let opts =
        SocketOptions { bind_ip: LO, port_min: BASE, port_max: BASE + 99, cores: vec![], max_sessions: 4, batch: 32 };
    let st = stop.clone();
    let join = std::thread::spawn(move || socket::run_with_stats(opts, cmd_rx, ev_tx, st, Arc::new(Stats::default())));
    let (a, a_rtcp, b, b_rtcp) = (peer(), peer(), peer(), peer());
    let spec = SessionSpec {
        id: SessionId(9),
        legs: [leg(BASE, &a, &a_rtcp), leg(BASE + 2, &b, &b_rtcp)],
        media_timeout_ms: 0,
        leg_timeout_ms: [300, 300],
        allow_fast_path: false,
    };
    cmd.send(Command::Create(spec)).unwrap();
    assert_eq!(ev.recv_timeout(Duration::from_secs(5)), Ok(Event::Created(SessionId(9))));
    let mut rr = [0u8; 64];
    let rr_len = RtcpRepr::ReceiverReport { ssrc: 0xB, reports: &[] }.emit(&mut rr).unwrap();
    // A sends RTP every 20 ms for 1.5 s; B (on hold) sends only RTCP, every 100 ms for 0.8 s.
    let t0 = Instant::now();
    let mut got = vec![];
    for k in 0..75u16 {
        a.send_to(&rtp(k), SocketAddr::new(LO, BASE)).unwrap();
        if k % 5 == 0 && k < 40 {
            b_rtcp.send_to(&rr[..rr_len], SocketAddr::new(LO, BASE + 3)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        got.extend(ev.try_iter().map(|e| (t0.elapsed(), e)));
    }
    stop.store(true, Ordering::Relaxed);
    join.join().unwrap().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let (at, e) = got[0];
    let Event::MediaTimeout { id, idle_ms, leg } = e else { panic!("expected MediaTimeout, got {e:?}") };
    assert_eq!((id, leg), (SessionId(9), Some(1)), "leg 1 (B), never leg 0 (A sends)");
    // B's last report went out at ~0.7 s: not reported before ~1.0 s.
    assert!(idle_ms >= 300 && at >= Duration::from_millis(950), "idle {idle_ms} ms at {at:?}");
}
