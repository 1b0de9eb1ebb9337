//! The product promise, end to end with the real binary: a sidecar crash does not cut the media
//! of a call in progress, and the restarted sidecar ends that call cleanly later.
//!
//! The test plays the PBX and the carrier itself (SIP and RTP over loopback UDP), starts
//! `xtrunk run --config <temp file>` (unique shm path, SIP port and media range), sets a call up,
//! streams RTP from the PBX side and counts what reaches the carrier side, `kill -9`s the signaling
//! child (its pid is in the supervisor's log), checks that RTP keeps arriving during and after the
//! crash and that the supervisor restarts the sidecar, which resumes the call; then the PBX hangs
//! up: the BYE is answered 200, a BYE reaches the carrier, the relay stops, a CDR is written.
//! SIGTERM to the supervisor must remove the shm file and exit 0. Every process is killed on
//! the way out (`Guard`), whatever happens.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{
    arrivals, free_port, free_range, is_req, is_resp, recv_msg, rtp_counter, rtp_sender, sdp, sdp_port, udp,
    wait_ready, write_config, Guard, TestConfig,
};

use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, NameAddr};

#[test]
fn media_survives_a_sidecar_crash_and_the_call_ends_cleanly() {
    let started = Instant::now();
    let tag = format!("{}-{}", std::process::id(), started.elapsed().as_nanos() % 1_000_000);
    let dir = std::env::temp_dir().join(format!("xtrunk-restart-e2e-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-restart-{tag}"));
    let pbx_sip = udp();
    let carrier_sip = udp();
    let pbx_rtp = udp();
    let carrier_rtp = udp();
    let sip_port = free_port(&[]);
    let media = free_range(40, &[]);
    let cfg = write_config(
        &dir,
        &shm,
        &TestConfig {
            name: "xtrunk-restart-test",
            sip: sip_port,
            carrier: carrier_sip.local_addr().unwrap().port(),
            media,
            media_ports: 40,
            max_sessions: 8,
            t1_ms: 200,
        },
    );
    let log = dir.join("xtrunk.log");
    let mut g = Guard::new(&log, &dir, &shm);
    g.start(&cfg);
    let xt: SocketAddr = ([127, 0, 0, 1], sip_port).into();
    let carrier_addr = carrier_sip.local_addr().unwrap();
    let pbx_addr = pbx_sip.local_addr().unwrap();

    wait_ready(&mut g, &pbx_sip, xt, &tag);

    // The call.
    let call_id = format!("e2e-{tag}");
    let offer = sdp("pbx", pbx_rtp.local_addr().unwrap().port());
    let invite = format!("INVITE sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKinv1;rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa\r\nTo: <sip:4930123@{xt}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx_addr}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len());
    pbx_sip.send_to(invite.as_bytes(), xt).unwrap();
    let (b_inv, from) =
        recv_msg(&carrier_sip, Duration::from_secs(5), is_req("INVITE")).expect("INVITE at the carrier");
    let mut ok = response(&b_inv, 200, "OK", Some("cb1"));
    ok.push(HName::Contact, format!("<sip:c@{carrier_addr}>"));
    ok.push(HName::ContentType, "application/sdp");
    ok.body = sdp("carrier", carrier_rtp.local_addr().unwrap().port()).into_bytes();
    carrier_sip.send_to(&ok.to_bytes(), from).unwrap();
    let (ok_a, _) = recv_msg(&pbx_sip, Duration::from_secs(5), is_resp(200, "INVITE")).expect("200 at the PBX");
    let relay_a: SocketAddr = ([127, 0, 0, 1], sdp_port(&ok_a.body)).into();
    let to_a = ok_a.header(&HName::To).unwrap().to_string();
    let target = ok_a.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri).unwrap();
    let ack = format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKack1;rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa\r\nTo: {to_a}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    pbx_sip.send_to(ack.as_bytes(), xt).unwrap();
    assert!(recv_msg(&carrier_sip, Duration::from_secs(2), is_req("ACK")).is_some(), "ACK at the carrier");

    // Media: PBX → relay → carrier.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let counter = rtp_counter(carrier_rtp, Arc::clone(&count), Arc::clone(&stop));
    let sender = rtp_sender(pbx_rtp, relay_a, Arc::clone(&stop));
    let before = arrivals(&count, Duration::from_millis(600));
    assert!(before >= 15, "RTP relayed before the crash: {before} packets in 600 ms");

    // The crash.
    assert!(g.wait_log("sidecar started (pid ", 1, Duration::from_secs(1)));
    let pids = g.child_pids();
    let log = g.log();
    let sidecar: i32 = log
        .split("sidecar started (pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .expect("sidecar pid in the log");
    assert!(pids.contains(&sidecar));
    // SAFETY: kill(2) on the sidecar pid our supervisor logged; no memory involved.
    assert_eq!(unsafe { libc::kill(sidecar, libc::SIGKILL) }, 0);
    let during = arrivals(&count, Duration::from_millis(400));
    assert!(during >= 10, "RTP during the crash: {during} packets in 400 ms");
    assert!(g.wait_log("sidecar restarted (pid ", 1, Duration::from_secs(10)), "no restart; log:\n{}", g.log());
    assert!(g.wait_log("1 call(s) resumed", 1, Duration::from_secs(10)), "call not resumed; log:\n{}", g.log());
    let after = arrivals(&count, Duration::from_millis(600));
    assert!(after >= 15, "RTP after the restart: {after} packets in 600 ms");

    // The PBX hangs up; the restarted sidecar handles it within the resumed dialogs.
    let bye = format!("BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKbye1;rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa\r\nTo: {to_a}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    pbx_sip.send_to(bye.as_bytes(), xt).unwrap();
    let (bye_ok, _) = recv_msg(&pbx_sip, Duration::from_secs(3), is_resp(200, "BYE")).expect("200 to the PBX's BYE");
    assert_eq!(bye_ok.call_id(), Some(call_id.as_str()));
    let (bye_b, from) = recv_msg(&carrier_sip, Duration::from_secs(3), is_req("BYE")).expect("BYE at the carrier");
    assert_eq!(bye_b.call_id(), b_inv.call_id());
    assert_eq!(bye_b.to().unwrap().tag(), Some("cb1"));
    assert_eq!(bye_b.from().unwrap().tag(), b_inv.from().unwrap().tag());
    assert_eq!(bye_b.cseq().unwrap().seq, 2, "carrier-side CSeq = INVITE + 1");
    carrier_sip.send_to(&response(&bye_b, 200, "OK", None).to_bytes(), from).unwrap();
    // The session is deleted: the relay stops.
    std::thread::sleep(Duration::from_millis(300));
    let gone = arrivals(&count, Duration::from_millis(400));
    assert_eq!(gone, 0, "RTP still relayed after the BYE");
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    counter.join().unwrap();
    assert!(sent > 0);
    let t = Instant::now() + Duration::from_secs(3);
    let cdr = loop {
        let c = fs::read_to_string(dir.join("cdr.jsonl")).unwrap_or_default();
        if c.contains(&call_id) || Instant::now() > t {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let line =
        cdr.lines().find(|l| l.contains(&call_id)).unwrap_or_else(|| panic!("no CDR for the call; log:\n{}", g.log()));
    assert!(line.contains("\"end_reason\":\"caller_bye\""), "{line}");
    assert!(line.contains("\"disposition\":200"), "{line}");

    // Clean stop.
    let mut sup = g.supervisor.take().unwrap();
    let pid = sup.id() as i32;
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = sup.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > t {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    g.supervisor = Some(sup);
    let status = status.unwrap_or_else(|| panic!("supervisor did not exit on SIGTERM; log:\n{}", g.log()));
    assert!(status.success(), "supervisor exit {status}; log:\n{}", g.log());
    assert!(!shm.exists(), "shm file left behind");
    assert!(started.elapsed() < Duration::from_secs(60));
}
