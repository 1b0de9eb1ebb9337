//! Fast-path accounting on the namespace lab (root; prints SKIPPED otherwise): the control loop
//! reads fast-path counters only for port groups that moved (`fast_groups`), so this checks that
//! media timeouts and final stats stay right through it.
//!
//! Two sessions with strict latching to their SDP peers, on the fast path from their creation:
//! session 1 carries RTP PBX → carrier for 1.5 s (three times its media timeout), session 2 none.
//! Session 2 times out, session 1 does not while its packets flow (they never reach the relay
//! core, only the XDP program's counters) and does once they stop; its final stats count every
//! packet sent.

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use xtrunk_ebpf::Counter;
use xtrunk_ring::msg::{Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

mod common;
use common::{is_root, spawn_in, Lab, RelayCtl};

const PBX_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
const RP_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const RC_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 1);
const CAR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
const TIMEOUT_MS: u32 = 500;

fn leg(local: SocketAddr, remote: SocketAddr) -> LegSpec {
    LegSpec {
        local,
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: true,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

fn spec(k: u16) -> SessionSpec {
    SessionSpec {
        id: SessionId(u64::from(k)),
        legs: [
            leg(SocketAddr::new(RP_IP.into(), 30000 + 4 * k), SocketAddr::new(PBX_IP.into(), 40000 + k)),
            leg(SocketAddr::new(RC_IP.into(), 30002 + 4 * k), SocketAddr::new(CAR_IP.into(), 50000 + k)),
        ],
        media_timeout_ms: TIMEOUT_MS,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    }
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&0x5EED_0001u32.to_be_bytes());
    p
}

#[test]
fn fast_path_keeps_timeouts_and_final_stats_exact() {
    if !is_root() {
        println!("SKIPPED: needs root (AF_XDP/netns)");
        return;
    }
    let prefix = format!("xf{}", std::process::id());
    let lab = Lab::up(&prefix, 1);
    let ctl = RelayCtl::start(&lab.ns("relay"), &[0], true, 8);
    let t0 = Instant::now();
    for k in [1, 2] {
        ctl.cmds.send(Command::Create(spec(k))).unwrap();
    }
    for _ in 0..2 {
        match ctl.events.recv_timeout(Duration::from_secs(5)).expect("Created") {
            Event::Created(_) => {}
            e => panic!("unexpected event {e:?}"),
        }
    }
    // Strict latching to the SDP peers: every port is on the fast path without a packet.
    ctl.wait_stats("4 fast-path ports", |s| s.fast_ports == 4);

    // 1.5 s of RTP on session 1, 50 packets/s.
    let sent = 75u16;
    spawn_in(&lab.ns("pbx"), move || {
        let s = UdpSocket::bind(SocketAddr::new(PBX_IP.into(), 40001)).unwrap();
        let start = Instant::now();
        for seq in 0..sent {
            s.send_to(&rtp(seq), SocketAddr::new(RP_IP.into(), 30004)).unwrap();
            let due = Duration::from_millis(20 * u64::from(seq + 1));
            std::thread::sleep(due.saturating_sub(start.elapsed()));
        }
    })
    .join()
    .unwrap();
    let stopped = Instant::now();

    // Only session 2 timed out while session 1's packets flowed.
    let mut timeouts = Vec::new();
    while let Ok(e) = ctl.events.try_recv() {
        timeouts.push((e, t0.elapsed()));
    }
    assert!(
        matches!(timeouts.as_slice(), [(Event::MediaTimeout { id: SessionId(2), leg: None, .. }, _)]),
        "during the stream: {timeouts:?}"
    );
    // Session 1 times out once its packets stop (within its timeout plus the 20 ms tick).
    match ctl.events.recv_timeout(Duration::from_millis(u64::from(TIMEOUT_MS) + 500)).expect("timeout of session 1") {
        Event::MediaTimeout { id: SessionId(1), leg: None, idle_ms } => {
            assert!(idle_ms >= u64::from(TIMEOUT_MS), "idle {idle_ms} ms");
            let after = stopped.elapsed();
            assert!(
                after >= Duration::from_millis(u64::from(TIMEOUT_MS) - 100),
                "fired {after:?} after the last packet"
            );
        }
        e => panic!("unexpected event {e:?}"),
    }

    let s = ctl.stats();
    assert!(s.counter(Counter::FastRedirect) >= u64::from(sent), "the XDP program forwarded: {s:#?}");
    ctl.cmds.send(Command::Delete(SessionId(1))).unwrap();
    match ctl.events.recv_timeout(Duration::from_secs(5)).expect("Deleted") {
        Event::Deleted { stats, .. } => {
            assert_eq!(stats[0].packets, u64::from(sent), "leg 0 final stats: {stats:?}");
            assert_eq!(stats[0].bytes, u64::from(sent) * 172, "leg 0 final stats: {stats:?}");
            assert_eq!(stats[1].packets, 0);
        }
        e => panic!("unexpected event {e:?}"),
    }
    ctl.finish();
}
