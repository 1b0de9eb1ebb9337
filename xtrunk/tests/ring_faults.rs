//! Issue #11, end to end with the real binary: a corrupt position in the session ring of a running
//! edge (written with `pwrite`, as a stray process would) recovers within a second with a bounded
//! log, and a deleted ring file is re-created by the datapath, after which the restarted sidecar
//! serves calls again.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{
    arrivals, free_port, free_range, is_req, is_resp, recv_msg, rtp_counter, rtp_sender, sdp, sdp_port, udp,
    wait_ready, write_config, Guard, TestConfig,
};

use xtrunk_ring::shm::HEADER_REGION;
use xtrunk_ring::spsc::TAIL_OFFSET;
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, NameAddr};

/// One edge at a time: `free_range` probes from a per-process seed, so two edges started at once
/// by this binary could be handed the same media range.
static ONE_EDGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Edge {
    g: Guard,
    shm: PathBuf,
    xt: SocketAddr,
    pbx_sip: UdpSocket,
    carrier_sip: UdpSocket,
    tag: String,
    /// Last: released after the guard has stopped the edge.
    _one: std::sync::MutexGuard<'static, ()>,
}

fn start(name: &str) -> Edge {
    let one = ONE_EDGE.lock().unwrap_or_else(|p| p.into_inner());
    let tag = format!("{name}-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("xtrunk-ringfaults-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-ringfaults-{tag}"));
    let (pbx_sip, carrier_sip) = (udp(), udp());
    let sip_port = free_port(&[]);
    let media = free_range(40, &[]);
    let cfg = write_config(
        &dir,
        &shm,
        &TestConfig {
            name: "xtrunk-ringfaults-test",
            sip: sip_port,
            carrier: carrier_sip.local_addr().unwrap().port(),
            media,
            media_ports: 40,
            max_sessions: 8,
            t1_ms: 200,
        },
    );
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&cfg);
    let xt: SocketAddr = ([127, 0, 0, 1], sip_port).into();
    wait_ready(&mut g, &pbx_sip, xt, &tag);
    Edge { g, shm, xt, pbx_sip, carrier_sip, tag, _one: one }
}

/// Sets a call up (INVITE, 200, ACK) and checks RTP is relayed PBX → carrier; `None` if the call
/// did not get through within `within`.
fn call(e: &Edge, n: u32, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let (pbx_rtp, carrier_rtp) = (udp(), udp());
    let (xt, pbx_addr, carrier_addr) = (e.xt, e.pbx_sip.local_addr().unwrap(), e.carrier_sip.local_addr().unwrap());
    let call_id = format!("rf{n}-{}", e.tag);
    let offer = sdp("pbx", pbx_rtp.local_addr().unwrap().port());
    let invite = format!("INVITE sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKrf{n};rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa{n}\r\nTo: <sip:4930123@{xt}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx_addr}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len());
    e.pbx_sip.send_to(invite.as_bytes(), xt).unwrap();
    let (b_inv, from) = recv_msg(&e.carrier_sip, within, is_req("INVITE"))?;
    let mut ok = response(&b_inv, 200, "OK", Some(&format!("cb{n}")));
    ok.push(HName::Contact, format!("<sip:c@{carrier_addr}>"));
    ok.push(HName::ContentType, "application/sdp");
    ok.body = sdp("carrier", carrier_rtp.local_addr().unwrap().port()).into_bytes();
    e.carrier_sip.send_to(&ok.to_bytes(), from).unwrap();
    // Only this call's 200 (an earlier call's may be retransmitted until its ACK arrives).
    let (ok_a, _) = recv_msg(&e.pbx_sip, Duration::from_secs(3), |m| {
        is_resp(200, "INVITE")(m) && m.call_id() == Some(call_id.as_str())
    })?;
    let took = t0.elapsed();
    let to_a = ok_a.header(&HName::To).unwrap().to_string();
    let target = ok_a.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri).unwrap();
    let ack = format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKrfack{n};rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa{n}\r\nTo: {to_a}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    e.pbx_sip.send_to(ack.as_bytes(), xt).unwrap();
    let relay_a: SocketAddr = ([127, 0, 0, 1], sdp_port(&ok_a.body)).into();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let counter = rtp_counter(carrier_rtp, Arc::clone(&count), Arc::clone(&stop));
    let sender = rtp_sender(pbx_rtp, relay_a, Arc::clone(&stop));
    let got = arrivals(&count, Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    counter.join().unwrap();
    assert!(got >= 10, "call {n}: RTP relayed: {got} packets in 500 ms; log:\n{}", e.g.log_tail());
    Some(took)
}

fn poke(path: &Path, off: usize, v: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&v.to_le_bytes(), off as u64).unwrap();
}

fn peek(path: &Path, off: usize) -> u64 {
    let mut b = [0u8; 8];
    fs::File::open(path).unwrap().read_exact_at(&mut b, off as u64).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn a_corrupt_ring_position_recovers_within_a_second_with_a_bounded_log() {
    let e = start("pos");
    assert!(call(&e, 1, Duration::from_secs(5)).is_some(), "first call; log:\n{}", e.g.log_tail());
    // The commands ring's tail, written by the sidecar and read by the datapath: far ahead, then
    // one ahead.
    let tail_at = HEADER_REGION + TAIL_OFFSET;
    let lines_before = e.g.log().lines().count();
    for (n, bad) in [(2, (1u64 << 40) + 777), (3, 1)] {
        let tail = peek(&e.shm, tail_at);
        poke(&e.shm, tail_at, tail + bad);
        let took = call(&e, n, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("call {n} after corrupting the tail; log:\n{}", e.g.log_tail()));
        assert!(took < Duration::from_secs(1), "call {n} took {took:?}; log:\n{}", e.g.log_tail());
    }
    let log = e.g.log();
    let new: Vec<&str> = log.lines().skip(lines_before).collect();
    let faults = new.iter().filter(|l| l.contains("session ring")).count();
    assert!((1..=20).contains(&faults), "{faults} ring lines:\n{}", new.join("\n"));
    assert!(!log.contains("sidecar exited"), "no restart needed; log:\n{}", e.g.log_tail());
}

#[test]
fn a_deleted_ring_file_is_re_created_and_sip_comes_back() {
    let e = start("del");
    fs::remove_file(&e.shm).unwrap();
    assert!(e.g.wait_log("session ring re-created", 1, Duration::from_secs(5)), "log:\n{}", e.g.log_tail());
    assert!(e.g.wait_log("sidecar restarted (pid ", 1, Duration::from_secs(10)), "log:\n{}", e.g.log_tail());
    let t = Instant::now() + Duration::from_secs(10);
    let mut n = 10;
    while call(&e, n, Duration::from_secs(1)).is_none() {
        assert!(Instant::now() < t, "no call after the ring was re-created; log:\n{}", e.g.log_tail());
        n += 1;
    }
    // A bad magic is handled the same way.
    poke(&e.shm, 0, u64::from_le_bytes(*b"NOTARING"));
    assert!(e.g.wait_log("session ring re-created", 2, Duration::from_secs(5)), "log:\n{}", e.g.log_tail());
    assert!(e.g.wait_log("sidecar restarted (pid ", 2, Duration::from_secs(10)), "log:\n{}", e.g.log_tail());
    let t = Instant::now() + Duration::from_secs(10);
    n = 100;
    while call(&e, n, Duration::from_secs(1)).is_none() {
        assert!(Instant::now() < t, "no call after the bad magic; log:\n{}", e.g.log_tail());
        n += 1;
    }
}
