//! The TCP limits on real sockets (issue #11): connection caps and the idle timeout, the ACL at
//! accept, one pipelining connection against a UDP call's setup delay, a peer that never reads,
//! and a SIPp call over TCP. The sidecar runs in-process (common::Sidecar) with a TCP listener
//! on its UDP port.

#[macro_use]
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use xtrunk_config::{Config, Listen, Transport};
use xtrunk_signaling::sip::msg::{parse, HName, Message};
use xtrunk_signaling::sip::status::response;

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

fn with_tcp(c: &mut Config) {
    let addr = c.sip.listen[0].addr;
    c.sip.listen.push(Listen { transport: Transport::Tcp, addr, tls: None, advertised: None });
}

/// A blocking TCP connection to `to` from `src` (port chosen by the kernel).
fn connect_from(src: IpAddr, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(src, 0).into()).unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5)).unwrap();
    s.into()
}

/// Whether the sidecar still holds `s` open: a read that would block (EOF or reset: closed).
fn still_open(mut s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_thousand_idle_connections_are_capped_then_closed() {
    const CONNS: usize = 2000;
    const SOURCES: u8 = 10;
    const CAP: usize = 256;
    const IDLE: Duration = Duration::from_secs(3);
    let side = Sidecar::start("tcp-idle", &[free_port()], |c| {
        with_tcp(c);
        c.sip.tcp_max_connections = CAP;
        c.sip.tcp_max_per_source = 32;
        c.sip.tcp_idle_timeout_s = IDLE.as_secs() as u32;
    });
    let to = SocketAddr::from(([127, 0, 0, 1], side.port));
    let base = open_fds();
    let t0 = Instant::now();
    let clients: Vec<TcpStream> = (0..CONNS)
        .map(|i| connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % SOURCES as usize) as u8)), to))
        .collect();
    let connected = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let open = clients.iter().filter(|s| still_open(s)).count();
    let sidecar_fds = open_fds() - base - CONNS;
    println!("{CONNS} connections from {SOURCES} sources in {connected:?}: {open} kept open, sidecar holds {sidecar_fds} more fds");
    // 10 sources × 32 would allow 320: the total cap binds. (On a loaded machine connecting can
    // take longer than the idle timeout; then some of the first ones are closed already.)
    assert!(open <= CAP);
    if connected < IDLE / 2 {
        assert_eq!(open, CAP);
    }
    assert!(sidecar_fds <= CAP + 8, "{sidecar_fds} fds");
    // The idle timeout (swept every 0.75 s) closes the rest.
    let deadline = Instant::now() + IDLE * 2;
    let mut left = open;
    while Instant::now() < deadline && left > 0 {
        std::thread::sleep(Duration::from_millis(100));
        left = clients.iter().filter(|s| still_open(s)).count();
    }
    println!("after the idle timeout: {left} open, {:?} after the last connect", t0.elapsed() - connected);
    assert_eq!(left, 0);
    drop(clients);
    let s = side.stop();
    let m = &s.metrics.tcp;
    println!("{m:?}");
    assert_eq!(s.tcp_open, 0);
    assert_eq!(m.refused_cap_total + m.refused_cap_source + m.closed_idle, CONNS as u64);
    assert!(m.closed_idle >= CAP as u64);
    assert_eq!(m.refused_acl, 0);
}

#[test]
fn acl_and_per_source_cap_at_accept() {
    let carrier = free_port();
    let side = Sidecar::start("tcp-acl", &[carrier], |c| {
        with_tcp(c);
        c.trunks[0].acl = vec!["127.0.0.1/32".parse().unwrap()];
        c.sip.tcp_max_per_source = 3;
    });
    let to = SocketAddr::from(([127, 0, 0, 1], side.port));
    // 127.0.0.2 is in no trunk's acl; the carrier's targets are 127.0.0.1 only.
    let stranger = connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), to);
    let pbx: Vec<TcpStream> = (0..5).map(|_| connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST), to)).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!still_open(&stranger));
    assert_eq!(pbx.iter().filter(|s| still_open(s)).count(), 3);
    let s = side.stop();
    assert_eq!((s.metrics.tcp.refused_acl, s.metrics.tcp.refused_cap_source), (1, 2));
}

/// The carrier side of a UDP call: answers INVITE 200 (with SDP) and BYE 200, until `stop`.
fn carrier_uas(sock: UdpSocket, stop: Arc<AtomicBool>) {
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let Ok(m) = parse(&buf[..n]) else { continue };
        let r = match m.method().map(|x| x.as_str().to_string()).as_deref() {
            Some("INVITE") => {
                let mut ok = response(&m, 200, "OK", Some("cb"));
                ok.push(HName::Contact, format!("<sip:c@{}>", sock.local_addr().unwrap()));
                ok.push(HName::ContentType, "application/sdp");
                ok.body = SDP.as_bytes().to_vec();
                ok
            }
            Some("BYE") => response(&m, 200, "OK", None),
            _ => continue,
        };
        let _ = sock.send_to(&r.to_bytes(), from);
    }
}

/// Waits on `sock` for the final response to `call_id`'s `method`.
fn final_for(sock: &UdpSocket, call_id: &str, method: &str) -> Message {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("no final response within 5 s");
        let Ok(m) = parse(&buf[..n]) else { continue };
        let cseq_ok = m.cseq().is_some_and(|c| c.method.as_str() == method);
        if m.code().is_some_and(|c| c >= 200) && m.call_id() == Some(call_id) && cseq_ok {
            return m;
        }
    }
}

/// One call from `pbx` through the sidecar at `side`: INVITE → 200 (timed), ACK, BYE → 200.
fn udp_call(pbx: &UdpSocket, side: SocketAddr, n: usize) -> Duration {
    let me = pbx.local_addr().unwrap();
    let cid = format!("udp-call-{n}");
    let inv = format!("INVITE sip:4930@{side} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKi{n};rport\r\nFrom: <sip:1@p>;tag=a{n}\r\nTo: <sip:4930@x>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:1@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
    let t0 = Instant::now();
    pbx.send_to(inv.as_bytes(), side).unwrap();
    let ok = final_for(pbx, &cid, "INVITE");
    let delay = t0.elapsed();
    assert_eq!(ok.code(), Some(200));
    let to = ok.header(&HName::To).unwrap().to_string();
    let common = format!(
        "From: <sip:1@p>;tag=a{n}\r\nTo: {to}\r\nCall-ID: {cid}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let ack =
        format!("ACK sip:{side} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKa{n};rport\r\nCSeq: 1 ACK\r\n{common}");
    pbx.send_to(ack.as_bytes(), side).unwrap();
    let bye =
        format!("BYE sip:{side} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKb{n};rport\r\nCSeq: 2 BYE\r\n{common}");
    pbx.send_to(bye.as_bytes(), side).unwrap();
    assert_eq!(final_for(pbx, &cid, "BYE").code(), Some(200));
    delay
}

fn options(i: usize, me: SocketAddr) -> String {
    format!("OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKo{i}\r\nFrom: <sip:f@h>;tag=o\r\nTo: <sip:x@h>\r\nCall-ID: flood{i}\r\nCSeq: {i} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
}

#[test]
fn a_pipelining_connection_does_not_delay_udp_calls() {
    const FLOOD: usize = 50 << 20;
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let side = Sidecar::start("tcp-flood", &[carrier.local_addr().unwrap().port()], with_tcp);
    let stop = Arc::new(AtomicBool::new(false));
    let uas = {
        let stop = stop.clone();
        std::thread::spawn(move || carrier_uas(carrier, stop))
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], side.port));
    let pbx = UdpSocket::bind("127.0.0.1:0").unwrap();
    pbx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let idle: Vec<Duration> = (0..5).map(|n| udp_call(&pbx, addr, n)).collect();

    // The flood: one connection writing 50 MB of OPTIONS as fast as it can, reading the 200s.
    let mut w = TcpStream::connect(addr).unwrap();
    let me = w.local_addr().unwrap();
    let mut r = w.try_clone().unwrap();
    let (got, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let reader = {
        let got = got.clone();
        std::thread::spawn(move || {
            let mut b = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = r.read(&mut b) {
                got.fetch_add(n as u64, Ordering::Relaxed);
            }
        })
    };
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut sent, mut i, t0) = (0, 0, Instant::now());
            let mut chunk = String::new();
            while sent < FLOOD {
                chunk.clear();
                while chunk.len() < 1 << 16 {
                    chunk.push_str(&options(i, me));
                    i += 1;
                }
                w.write_all(chunk.as_bytes()).unwrap();
                sent += chunk.len();
            }
            done.store(true, Ordering::Relaxed);
            (sent, i, t0.elapsed(), w)
        })
    };
    while got.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut during = Vec::new();
    let mut n = 100;
    while !done.load(Ordering::Relaxed) || during.len() < 5 {
        during.push(udp_call(&pbx, addr, n));
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let (sent, msgs, took, w) = writer.join().unwrap();
    // Let the responses to the last requests arrive, then close.
    std::thread::sleep(Duration::from_millis(500));
    w.shutdown(std::net::Shutdown::Both).unwrap();
    reader.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    uas.join().unwrap();
    let s = side.stop();
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    let mut sorted = during.clone();
    sorted.sort();
    println!(
        "flood: {} MB ({msgs} OPTIONS) written in {took:?}, {} MB of responses read; UDP INVITE→200: idle max {:?}; \
         during the flood {} calls, median {:?}, max {:?}",
        sent >> 20,
        got.load(Ordering::Relaxed) >> 20,
        max(&idle),
        during.len(),
        sorted[sorted.len() / 2],
        max(&during),
    );
    // Starvation would hold a UDP call until the flood is read (seconds: the 50 MB take ~14 s
    // here); fair turns keep it to milliseconds. Judged by the median, with a loose ceiling on
    // the worst: a shared 2-core machine descheduling the sidecar for 200 ms once is not what
    // this test is about (a 100 ms ceiling on the max failed that way once).
    assert!(sorted[sorted.len() / 2] <= Duration::from_millis(50), "median: {during:?}");
    assert!(max(&during) <= Duration::from_secs(1), "{during:?}");
    assert_eq!(s.metrics.calls_answered, (5 + during.len()) as u64);
    assert_eq!(s.metrics.finals_to_caller.get(&200).copied().unwrap_or(0), (5 + during.len()) as u64);
    assert_eq!(s.active_calls, 0);
}

#[test]
fn a_peer_that_never_reads_is_closed_at_the_write_cap() {
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cport = carrier.local_addr().unwrap().port();
    let side = Sidecar::start("tcp-noread", &[cport], |c| {
        with_tcp(c);
        c.sip.tcp_max_write_buffer = 256 << 10;
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], side.port));
    // The caller: a small receive window, an INVITE whose From (copied into every response) is
    // 20 kB, then it never reads.
    let pbx: TcpStream = {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&addr.into()).unwrap();
        s.into()
    };
    let me = pbx.local_addr().unwrap();
    let name = "n".repeat(20_000);
    let inv = format!("INVITE sip:4930@{addr} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKnr\r\nFrom: \"{name}\" <sip:1@p>;tag=a\r\nTo: <sip:4930@x>\r\nCall-ID: noread\r\nCSeq: 1 INVITE\r\nContact: <sip:1@{me};transport=tcp>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
    (&pbx).write_all(inv.as_bytes()).unwrap();
    carrier.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, from) = carrier.recv_from(&mut buf).unwrap();
    let b_inv = parse(&buf[..n]).unwrap();
    // The callee rings 2,000 times: 40 MB toward a caller that reads nothing.
    let rss0 = rss_kib();
    let ringing = response(&b_inv, 180, "Ringing", Some("cb")).to_bytes();
    for i in 0..2000 {
        carrier.send_to(&ringing, from).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Time for the sidecar to work through 40 MB on a busy 2-core box (measured: 500 ms is not
    // always enough while other builds run).
    std::thread::sleep(Duration::from_millis(2_000));
    let grew = rss_kib().saturating_sub(rss0);
    let s = side.stop();
    println!("after 2000 × 180 of 20 kB toward a caller that never reads: {:?}; RSS grew {grew} KiB", s.metrics.tcp);
    assert_eq!(s.metrics.tcp.closed_write_overflow, 1);
    assert_eq!(s.tcp_open, 0);
    assert!(grew < 32 << 10, "RSS grew {grew} KiB");
    drop(pbx);
}

#[test]
fn sipp_calls_over_tcp() {
    need_sipp!();
    let (a, b, s, _) = pair("tcp-sipp", "uac_basic", "uas_basic", 20, 20, &["-t", "t1"], with_tcp);
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_eq!((a.successful, a.failed), (20, 0));
    assert_clean(&s);
    assert_eq!(s.metrics.tcp, Default::default());
}

#[test]
fn sipp_calls_to_a_carrier_over_tcp() {
    need_sipp!();
    let uas_port = free_port();
    let side = Sidecar::start("tcp-out", &[uas_port], |c| {
        with_tcp(c);
        c.trunks[1].targets[0].transport = Transport::Tcp;
    });
    let carrier = sipp(&side.dir, "uas", "uas_basic", uas_port, None, 20, &["-t", "t1"]);
    std::thread::sleep(Duration::from_millis(200));
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 20, &["-r", "20"]);
    let (a, b) = (pbx.wait(), carrier.wait());
    let s = side.stop();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_eq!((a.successful, b.successful), (20, 20));
    assert_clean(&s);
    assert_eq!(s.metrics.tcp, Default::default());
}

#[test]
fn a_flooder_that_never_reads_is_not_read_then_closed_idle() {
    let side = Sidecar::start("tcp-stall", &[free_port()], |c| {
        with_tcp(c);
        c.sip.tcp_idle_timeout_s = 1;
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], side.port));
    let s: TcpStream = {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&addr.into()).unwrap();
        s.into()
    };
    let me = s.local_addr().unwrap();
    s.set_nonblocking(true).unwrap();
    // Requests until the sidecar stops taking them (blocked for 300 ms): it answers until its
    // responses back up, then reads no more.
    let (mut written, mut i, mut blocked_since) = (0usize, 0, None::<Instant>);
    let mut pending = Vec::new();
    while !matches!(blocked_since, Some(t) if t.elapsed() >= Duration::from_millis(300)) {
        if pending.is_empty() {
            pending = options(i, me).into_bytes();
            i += 1;
        }
        match (&s).write(&pending) {
            Ok(n) => {
                written += n;
                pending.drain(..n);
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                blocked_since.get_or_insert_with(Instant::now);
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("write: {e}"),
        }
        assert!(written < 256 << 20, "the sidecar kept reading: {written} B taken");
    }
    println!(
        "a caller that never reads: {} kB of requests taken ({i} OPTIONS) before the sidecar stopped reading",
        written >> 10
    );
    std::thread::sleep(Duration::from_millis(1800));
    let st = side.stop();
    println!("{:?}", st.metrics.tcp);
    assert_eq!((st.metrics.tcp.closed_idle, st.metrics.tcp.closed_write_overflow), (1, 0));
    assert_eq!(st.tcp_open, 0);
}
