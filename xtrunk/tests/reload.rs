//! SIGHUP reload with the real binary: a route changed in the file applies to the next call
//! while a call in progress keeps its media and its dialogs; a broken file is refused with its
//! key path and the running configuration stays; SIGHUP to the supervisor or to either child
//! leaves the edge up.
//!
//! The test plays the PBX and two carriers (SIP and RTP over loopback UDP) around
//! `xtrunk run --config <temp file>`: call 1 goes to carrier A and streams RTP; the route is
//! moved to carrier B and the supervisor gets SIGHUP; call 2 must reach carrier B while call 1's
//! RTP keeps arriving at A; then a file naming an unknown trunk is refused and call 3 still
//! reaches B; SIGHUP to the datapath and the sidecar changes nothing; call 1 ends with BYE.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{
    arrivals, free_port, free_range, is_req, is_resp, recv_msg, rtp_counter, rtp_sender, sdp, sdp_port, udp,
    wait_ready, write_config, Guard, TestConfig,
};

use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message, NameAddr};

/// The test config with a second carrier trunk, and the default route sent to `route_to`.
fn config_text(base: &str, carrier_b: u16, route_to: &str) -> String {
    let mut t = base.replace("trunk = \"carrier\"\n", &format!("trunk = \"{route_to}\"\n"));
    t.push_str(&format!(
        "\n[[trunk]]\nname = \"carrier-b\"\nrole = \"carrier\"\ntargets = [{{ addr = \"127.0.0.1:{carrier_b}\", transport = \"udp\" }}]\ncodecs = [\"PCMA\", \"PCMU\", \"telephone-event\"]\n"
    ));
    t
}

fn invite(xt: SocketAddr, pbx: SocketAddr, call_id: &str, rtp_port: u16) -> String {
    let offer = sdp("pbx", rtp_port);
    format!("INVITE sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bK{call_id};rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa{call_id}\r\nTo: <sip:4930123@{xt}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len())
}

/// Sends a new INVITE and expects it at `carrier` (and at no other of `others`); the carrier
/// refuses it with 486 and the PBX gets the 486.
fn call_reaches(xt: SocketAddr, pbx: &UdpSocket, carrier: &UdpSocket, others: &[&UdpSocket], call_id: &str, g: &Guard) {
    pbx.send_to(invite(xt, pbx.local_addr().unwrap(), call_id, 7_000).as_bytes(), xt).unwrap();
    let got = recv_msg(carrier, Duration::from_secs(5), is_req("INVITE"));
    let (b_inv, from) =
        got.unwrap_or_else(|| panic!("{call_id}: no INVITE at the expected carrier; log:\n{}", g.log()));
    for o in others {
        assert!(
            recv_msg(o, Duration::from_millis(50), is_req("INVITE")).is_none(),
            "{call_id} reached the old carrier"
        );
    }
    carrier.send_to(&response(&b_inv, 486, "Busy Here", Some("busy")).to_bytes(), from).unwrap();
    assert!(recv_msg(pbx, Duration::from_secs(5), is_resp(486, "INVITE")).is_some(), "{call_id}: no 486 at the PBX");
}

fn hup(pid: i32) {
    // SAFETY: kill(2) on a pid this test started or its supervisor logged; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0, "SIGHUP to {pid}");
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[test]
fn sighup_applies_a_new_route_to_the_next_call_and_refuses_a_broken_file() {
    let tag = format!("{}-{}", std::process::id(), Instant::now().elapsed().as_nanos() % 1_000_000);
    let dir = std::env::temp_dir().join(format!("xtrunk-reload-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-reload-{tag}"));
    let (pbx_sip, carrier_a, carrier_b, pbx_rtp, carrier_rtp) = (udp(), udp(), udp(), udp(), udp());
    let sip_port = free_port(&[]);
    let media = free_range(40, &[]);
    let test = TestConfig {
        name: "xtrunk-reload-test",
        sip: sip_port,
        carrier: carrier_a.local_addr().unwrap().port(),
        media,
        media_ports: 40,
        max_sessions: 8,
        t1_ms: 200,
    };
    let cfg = write_config(&dir, &shm, &test);
    let base = fs::read_to_string(&cfg).unwrap();
    let b_port = carrier_b.local_addr().unwrap().port();
    write(&cfg, &config_text(&base, b_port, "carrier"));
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&cfg);
    let xt: SocketAddr = ([127, 0, 0, 1], sip_port).into();
    wait_ready(&mut g, &pbx_sip, xt, &tag);
    let pbx_addr = pbx_sip.local_addr().unwrap();

    // Call 1 to carrier A, answered, with media.
    let call1 = format!("reload1-{tag}");
    pbx_sip.send_to(invite(xt, pbx_addr, &call1, pbx_rtp.local_addr().unwrap().port()).as_bytes(), xt).unwrap();
    let (b_inv, from) = recv_msg(&carrier_a, Duration::from_secs(5), is_req("INVITE")).expect("call 1 at carrier A");
    let mut ok = response(&b_inv, 200, "OK", Some("ca1"));
    ok.push(HName::Contact, format!("<sip:c@{}>", carrier_a.local_addr().unwrap()));
    ok.push(HName::ContentType, "application/sdp");
    ok.body = sdp("carrier", carrier_rtp.local_addr().unwrap().port()).into_bytes();
    carrier_a.send_to(&ok.to_bytes(), from).unwrap();
    let (ok_a, _) = recv_msg(&pbx_sip, Duration::from_secs(5), is_resp(200, "INVITE")).expect("200 at the PBX");
    let relay_a: SocketAddr = ([127, 0, 0, 1], sdp_port(&ok_a.body)).into();
    let to_a = ok_a.header(&HName::To).unwrap().to_string();
    let target = ok_a.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).map(|n| n.uri).unwrap();
    let in_dialog = |m: &str, seq: u32| {
        format!("{m} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bK{m}{seq};rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa{call1}\r\nTo: {to_a}\r\nCall-ID: {call1}\r\nCSeq: {seq} {m}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    };
    pbx_sip.send_to(in_dialog("ACK", 1).as_bytes(), xt).unwrap();
    assert!(recv_msg(&carrier_a, Duration::from_secs(2), is_req("ACK")).is_some(), "ACK at carrier A");
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let counter = rtp_counter(carrier_rtp, Arc::clone(&count), Arc::clone(&stop));
    let sender = rtp_sender(pbx_rtp, relay_a, Arc::clone(&stop));
    assert!(arrivals(&count, Duration::from_millis(600)) >= 15, "call 1 media before the reload");

    // The route moves to carrier B; SIGHUP to the supervisor.
    write(&cfg, &config_text(&base, b_port, "carrier-b"));
    let sup = g.supervisor.as_ref().unwrap().id() as i32;
    hup(sup);
    assert!(g.wait_log("reloaded ", 1, Duration::from_secs(5)), "no reload; log:\n{}", g.log_tail());
    call_reaches(xt, &pbx_sip, &carrier_b, &[&carrier_a], &format!("reload2-{tag}"), &g);
    assert!(arrivals(&count, Duration::from_millis(600)) >= 15, "call 1 media after the reload");

    // A broken file: refused with its key path, the running configuration stays.
    write(&cfg, &config_text(&base, b_port, "no-such-trunk"));
    hup(sup);
    assert!(g.wait_log("reload refused", 1, Duration::from_secs(5)), "no refusal; log:\n{}", g.log_tail());
    let log = g.log();
    let refusal = log.lines().find(|l| l.contains("reload refused")).unwrap_or_default().to_string();
    assert!(log.contains("route[0].trunk"), "the refusal names the key: {refusal}\n{}", g.log_tail());
    call_reaches(xt, &pbx_sip, &carrier_b, &[&carrier_a], &format!("reload3-{tag}"), &g);

    // SIGHUP straight to each child: nothing stops, media flows.
    for pid in g.child_pids() {
        hup(pid);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(g.supervisor.as_mut().unwrap().try_wait().unwrap().is_none(), "supervisor died; log:\n{}", g.log_tail());
    assert!(!g.log().contains("sidecar exited"), "a child died on SIGHUP; log:\n{}", g.log_tail());
    assert!(arrivals(&count, Duration::from_millis(600)) >= 15, "call 1 media after SIGHUP to the children");

    // Call 1 still runs on the configuration it started with: the PBX's BYE reaches carrier A.
    pbx_sip.send_to(in_dialog("BYE", 2).as_bytes(), xt).unwrap();
    assert!(recv_msg(&pbx_sip, Duration::from_secs(3), is_resp(200, "BYE")).is_some(), "200 to the BYE");
    let (bye_b, from): (Message, SocketAddr) =
        recv_msg(&carrier_a, Duration::from_secs(3), is_req("BYE")).expect("BYE at carrier A");
    assert_eq!(bye_b.call_id(), b_inv.call_id());
    carrier_a.send_to(&response(&bye_b, 200, "OK", None).to_bytes(), from).unwrap();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    counter.join().unwrap();
}
