//! Acceptance test of the AF_XDP backend and the XDP fast path on a private network-namespace lab
//! (`scripts/lab` with a unique prefix). Needs root; prints a SKIPPED line otherwise.
//!
//! PBX (10.77.1.2) ⇄ relay (rp0 10.77.1.1 | rc0 10.77.2.1) ⇄ carrier (10.77.2.2), 2 queues per veth.
//! - 8 AF_XDP sessions (`allow_fast_path = false`) and 8 fast-path sessions, RTP both directions.
//! - Every relayed frame is captured on a packet socket at the receiver and checked: IPv4 header
//!   checksum, UDP checksum, rewritten addresses and ports, TTL (64 = originated by the AF_XDP
//!   worker, 63 = forwarded and decremented by the XDP program).
//! - SIP (5060) and a media-range port without a session reach UDP sockets of the relay's stack.
//! - Both relay RX queues carry load: senders are pinned to CPU 0 and 1, and the lab's XPS maps
//!   CPU c to TX queue c of the sender's veth, which is RX queue c of the relay's veth.

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::Command as Proc,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xtrunk_datapath::wire::{
    ethernet::{ethertype, EthernetFrame},
    ipv4::Ipv4Packet,
    udp::UdpPacket,
};
use xtrunk_ebpf::Counter;
use xtrunk_ring::msg::{Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

mod common;
use common::{is_root, pin, spawn_in, Lab, RelayCtl};

const PBX_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
const RP_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const RC_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 1);
const CAR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
const SESSIONS: u16 = 16; // 0..8 AF_XDP, 8..16 fast path
/// Sequence number of the third party's packets (never used by the real flows).
const THIRD_PARTY_SEQ: u16 = 65_000;
const PACKETS: u16 = 150; // per flow and direction, after warm-up

/// An AF_PACKET socket receiving every frame that arrives on `ifname` (created in the caller's
/// namespace).
fn packet_socket(ifname: &str) -> OwnedFd {
    // SAFETY: plain socket(2), checked below and owned at once.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32) };
    assert!(raw >= 0, "packet socket: {}", std::io::Error::last_os_error());
    // SAFETY: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let name = std::ffi::CString::new(ifname).unwrap();
    // SAFETY: valid C string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert!(idx != 0, "no {ifname}");
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = idx as i32;
    // SAFETY: sll is a valid sockaddr_ll of the given length.
    let rc = unsafe {
        libc::bind(fd.as_raw_fd(), (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of_val(&sll) as u32)
    };
    assert_eq!(rc, 0);
    let one: libc::c_int = 1;
    let big: libc::c_int = 8 << 20;
    let tv = libc::timeval { tv_sec: 0, tv_usec: 50_000 };
    // SAFETY: option values are live and of the sizes passed.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            23, /* PACKET_IGNORE_OUTGOING */
            (&one as *const i32).cast(),
            4,
        );
        libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&big as *const i32).cast(), 4);
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
    fd
}

/// Captures frames on `ifname` in `ns` until `stop`; returns them.
fn capture(ns: &str, ifname: &'static str, stop: Arc<AtomicBool>, ready: mpsc::Sender<()>) -> JoinHandle<Vec<Vec<u8>>> {
    spawn_in(ns, move || {
        let fd = packet_socket(ifname);
        ready.send(()).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: buf is a live writable buffer of the length passed.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                out.push(buf[..n as usize].to_vec());
            }
        }
        out
    })
}

/// A relayed frame as seen by the receiver.
#[derive(Debug)]
struct Seen {
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    ip_ok: bool,
    udp_ok: bool,
    payload: Vec<u8>,
}

fn inspect(frame: &[u8]) -> Option<Seen> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != 17 {
        return None;
    }
    let l4 = &eth.payload()[ip.header_len()..usize::from(ip.total_len())];
    let udp = UdpPacket::new_checked(l4).ok()?;
    let (s, d) = (ip.src_addr().into(), ip.dst_addr().into());
    Some(Seen {
        src: SocketAddr::new(s, udp.src_port()),
        dst: SocketAddr::new(d, udp.dst_port()),
        ttl: ip.ttl(),
        ip_ok: ip.verify_checksum(),
        udp_ok: udp.checksum() != 0 && udp.verify_checksum(&s, &d),
        payload: udp.payload().to_vec(),
    })
}

fn rtp(k: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172];
    p[0] = 0x80;
    p[1] = 0; // PCMU
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&(0x5EED_0000u32 | u32::from(k)).to_be_bytes());
    for (i, b) in p[12..].iter_mut().enumerate() {
        *b = (i as u8) ^ (k as u8);
    }
    p
}

fn leg(local: SocketAddr, remote: SocketAddr) -> LegSpec {
    LegSpec {
        local,
        remote: Some(remote),
        remote_rtcp_port: 0,
        rtcp_mux: true,
        latch: LatchPolicy::Once,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

fn pbx_addr(k: u16) -> SocketAddr {
    SocketAddr::new(PBX_IP.into(), 40000 + k)
}
fn car_addr(k: u16) -> SocketAddr {
    SocketAddr::new(CAR_IP.into(), 50000 + k)
}
fn rp_addr(k: u16) -> SocketAddr {
    SocketAddr::new(RP_IP.into(), 30000 + 4 * k)
}
fn rc_addr(k: u16) -> SocketAddr {
    SocketAddr::new(RC_IP.into(), 30002 + 4 * k)
}
fn is_fast(k: u16) -> bool {
    k >= SESSIONS / 2
}

fn spec(k: u16) -> SessionSpec {
    SessionSpec {
        id: SessionId(u64::from(k) + 1),
        legs: [leg(rp_addr(k), pbx_addr(k)), leg(rc_addr(k), car_addr(k))],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: is_fast(k),
    }
}

/// Sends `count` RTP packets per flow from sockets bound in `ns`, half the flows from a thread
/// pinned to CPU 0 and half from CPU 1 (so both relay queues get load). `flows`: (k, bind, to).
fn send_flows(ns: &str, flows: Vec<(u16, SocketAddr, SocketAddr)>, seq0: u16, count: u16) {
    let mut joins = Vec::new();
    for cpu in 0..2usize {
        let mine: Vec<_> = flows.iter().copied().filter(|(k, _, _)| usize::from(*k) % 2 == cpu).collect();
        joins.push(spawn_in(ns, move || {
            pin(cpu);
            let socks: Vec<_> = mine
                .iter()
                .map(|(k, bind, to)| {
                    let s = socket2_bind(*bind);
                    (*k, s, *to)
                })
                .collect();
            for seq in seq0..seq0 + count {
                for (k, s, to) in &socks {
                    s.send_to(&rtp(*k, seq), to).expect("send");
                }
                if seq % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }));
    }
    for j in joins {
        j.join().unwrap();
    }
}

fn socket2_bind(a: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind(a).unwrap_or_else(|e| panic!("bind {a}: {e}"));
    s
}

#[test]
fn xdp_lab_af_xdp_and_fast_path() {
    if !is_root() {
        println!("SKIPPED: needs root (AF_XDP/netns)");
        return;
    }
    let prefix = format!("xt{}", std::process::id());
    let lab = Lab::up(&prefix, 2);
    let (pbx, relay_ns, car) = (lab.ns("pbx"), lab.ns("relay"), lab.ns("carrier"));

    // Kernel-stack receivers in the relay namespace: SIP and a media-range port with no session.
    let stack = spawn_in(&relay_ns, || {
        let sip = UdpSocket::bind("10.77.1.1:5060").unwrap();
        let orphan = UdpSocket::bind("10.77.1.1:30900").unwrap();
        (sip, orphan)
    })
    .join()
    .unwrap();

    let ctl = RelayCtl::start(&relay_ns, &[0, 1], true, 64);
    for k in 0..SESSIONS {
        ctl.cmds.send(Command::Create(spec(k))).unwrap();
    }
    let mut created = 0;
    let t = Instant::now();
    while created < SESSIONS {
        match ctl.events.recv_timeout(Duration::from_secs(5)).expect("events") {
            Event::Created(_) => created += 1,
            e => panic!("unexpected event {e:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    let pbx_flows: Vec<_> = (0..SESSIONS).map(|k| (k, pbx_addr(k), rp_addr(k))).collect();
    let car_flows: Vec<_> = (0..SESSIONS).map(|k| (k, car_addr(k), rc_addr(k))).collect();

    // Warm-up: a few packets each way latch both legs; the relay then moves fast-path sessions to
    // the XDP program.
    send_flows(&pbx, pbx_flows.clone(), 0, 4);
    send_flows(&car, car_flows.clone(), 0, 4);
    let warm = ctl.wait_stats("fast-path sessions", |s| s.fast_ports == usize::from(SESSIONS / 2) * 2);
    assert!(warm.counter(Counter::XskRedirect) > 0);

    // Captures at both ends, then the measured streams in both directions at once.
    let stop = Arc::new(AtomicBool::new(false));
    let (rtx, rrx) = mpsc::channel();
    let cap_car = capture(&car, "car0", stop.clone(), rtx.clone());
    let cap_pbx = capture(&pbx, "pbx0", stop.clone(), rtx);
    rrx.recv().unwrap();
    rrx.recv().unwrap();
    let (p2, c2) = (pbx.clone(), car.clone());
    let (pf, cf) = (pbx_flows.clone(), car_flows.clone());
    let a = std::thread::spawn(move || send_flows(&p2, pf, 100, PACKETS));
    let b = std::thread::spawn(move || send_flows(&c2, cf, 100, PACKETS));
    a.join().unwrap();
    b.join().unwrap();

    // Non-media traffic from the PBX: SIP, and a media-range port without a session. And a
    // third party on the PBX's host (another port) sending to every session's port after
    // latching: neither the XDP program nor the worker relays it.
    spawn_in(&pbx, || {
        let s = UdpSocket::bind("10.77.1.2:5060").unwrap();
        s.send_to(b"OPTIONS sip:relay SIP/2.0\r\n\r\n", "10.77.1.1:5060").unwrap();
        s.send_to(b"not media", "10.77.1.1:30900").unwrap();
        let third = UdpSocket::bind("10.77.1.2:45000").unwrap();
        for k in 0..SESSIONS {
            third.send_to(&rtp(k, THIRD_PARTY_SEQ), rp_addr(k)).unwrap();
        }
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let at_car = cap_car.join().unwrap();
    let at_pbx = cap_pbx.join().unwrap();

    // Every relayed frame: checksums valid, addresses rewritten, TTL tells the path.
    let mut got = vec![[0u32; 2]; usize::from(SESSIONS)];
    for (dir, frames) in [(0usize, &at_car), (1, &at_pbx)] {
        for f in frames.iter() {
            let Some(s) = inspect(f) else { continue };
            let k = match dir {
                0 if s.dst.ip() == CAR_IP && (50000..50000 + SESSIONS).contains(&s.dst.port()) => s.dst.port() - 50000,
                1 if s.dst.ip() == PBX_IP && (40000..40000 + SESSIONS).contains(&s.dst.port()) => s.dst.port() - 40000,
                _ => continue,
            };
            let seq = u16::from_be_bytes([s.payload[2], s.payload[3]]);
            assert_ne!(seq, THIRD_PARTY_SEQ, "flow {k}: the third party's packet was relayed");
            if seq < 100 {
                continue; // warm-up
            }
            assert!(s.ip_ok, "bad IPv4 header checksum: {s:?}");
            assert!(s.udp_ok, "bad UDP checksum: {s:?}");
            let want_src = if dir == 0 { rc_addr(k) } else { rp_addr(k) };
            assert_eq!(s.src, want_src, "source not rewritten");
            assert_eq!(s.payload, rtp(k, seq), "payload changed");
            let want_ttl = if is_fast(k) { 63 } else { 64 };
            assert_eq!(s.ttl, want_ttl, "flow {k}: TTL {} says the wrong path", s.ttl);
            got[usize::from(k)][dir] += 1;
        }
    }
    for (k, g) in got.iter().enumerate() {
        for (d, n) in g.iter().enumerate() {
            assert!(*n >= u32::from(PACKETS) * 98 / 100, "flow {k} dir {d}: {n} of {PACKETS} packets arrived");
        }
    }

    // The kernel stack of the relay still gets SIP and session-less media ports.
    let (sip, orphan) = stack;
    sip.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    orphan.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = sip.recv_from(&mut buf).expect("SIP reached the relay's stack");
    assert!(buf[..n].starts_with(b"OPTIONS"));
    let (n, _) = orphan.recv_from(&mut buf).expect("session-less port reached the relay's stack");
    assert_eq!(&buf[..n], b"not media");

    // Fast-path packets were credited back to the relay core: final stats count every packet
    // that arrived on the leg, whichever path carried it.
    for k in [0, SESSIONS - 1] {
        ctl.cmds.send(Command::Delete(spec(k).id)).unwrap();
        match ctl.events.recv_timeout(Duration::from_secs(5)).expect("Deleted") {
            Event::Deleted { stats, .. } => {
                for (l, st) in stats.iter().enumerate() {
                    assert!(
                        st.packets >= u64::from(PACKETS + 4) * 98 / 100,
                        "session {k} leg {l} ({}): {} packets credited",
                        if is_fast(k) { "fast path" } else { "AF_XDP" },
                        st.packets
                    );
                }
            }
            e => panic!("unexpected {e:?}"),
        }
    }

    let s = ctl.finish();
    println!("relay stats: {s:#?}");
    assert!(s.counter(Counter::PassOutOfRange) > 0, "SIP must be counted as out of range");
    assert!(s.counter(Counter::PassNoSession) > 0);
    assert!(s.counter(Counter::FastRedirect) > 0, "fast path must have forwarded");
    assert_eq!(s.counter(Counter::FastForeign), u64::from(SESSIONS / 2), "third party on fast-path ports: to XSK");
    // Both queues of both relay interfaces served, by both pinned workers.
    for (name, q, qs) in &s.queues {
        assert!(qs.xsk + qs.fast > 0, "{name} queue {q} carried nothing: {qs:?}");
    }
    assert_eq!(s.workers.len(), 2);
    for w in &s.workers {
        assert!(w.rx > 0 && w.tx > 0, "worker of queue {} idle: {w:?}", w.queue);
    }

    // Detached on clean exit.
    let out = Proc::new("ip").args(["-n", &relay_ns, "-d", "link", "show"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("prog/xdp"), "XDP still attached after shutdown:\n{text}");
    drop(lab);
}
