//! #14 acceptance: a registered PBX's binding survives `kill -9` of the sidecar. The real
//! `xtrunk run` binary; the test plays the PBX that registers (an accept-register trunk on
//! 127.0.0.2) and a caller (127.0.0.1). After the REGISTER is answered 200, the sidecar is
//! killed with SIGKILL; the supervisor restarts it, the new sidecar reads the bindings file back
//! and the next call reaches the PBX at its registered contact, over the flow it registered from.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, free_range, is_req, is_resp, recv_msg, sdp, udp, wait_ready, Guard};

use xtrunk_signaling::b2bua::response;

fn config(dir: &std::path::Path, shm: &std::path::Path, sip: u16, media: u16) -> PathBuf {
    let text = format!(
        r#"[node]
name = "xtrunk-registrar-restart"
shm_path = "{shm}"
cdr_path = "{cdr}"

[[sip.listen]]
transport = "udp"
addr = "127.0.0.1:{sip}"

[sip.timers]
t1_ms = 200

[media]
port_min = {media}
port_max = {media_max}
bind_ip = "127.0.0.1"

[datapath]
backend = "socket"
max_sessions = 8

[[trunk]]
name = "pbx"
role = "customer"
acl = ["127.0.0.1/32"]

[[trunk]]
name = "office"
role = "customer"
kind = "accept-register"
acl = ["127.0.0.2/32"]

[[route]]
prefix = ""
from_trunk = "pbx"
trunk = "office"
"#,
        shm = shm.display(),
        cdr = dir.join("cdr.jsonl").display(),
        media_max = media + 39,
    );
    let f = dir.join("xtrunk.toml");
    fs::write(&f, text).unwrap();
    f
}

#[test]
fn a_binding_survives_kill_9_of_the_sidecar_and_the_next_call_reaches_the_contact() {
    let started = Instant::now();
    let tag = format!("{}-{}", std::process::id(), started.elapsed().as_nanos() % 1_000_000);
    let dir = std::env::temp_dir().join(format!("xtrunk-registrar-e2e-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-registrar-{tag}"));
    let bindings = PathBuf::from(format!("{}.bindings", shm.display()));
    let sip = free_port(&[]);
    let cfg = config(&dir, &shm, sip, free_range(40, &[]));
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&cfg);
    let xt: SocketAddr = ([127, 0, 0, 1], sip).into();
    let caller = udp();
    wait_ready(&mut g, &caller, xt, &tag);

    // The office PBX registers from 127.0.0.2.
    let office = UdpSocket::bind("127.0.0.2:0").unwrap();
    office.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let me = office.local_addr().unwrap();
    let reg = format!("REGISTER sip:{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreg1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:office@edge>;tag=r1\r\nTo: <sip:office@edge>\r\nCall-ID: reg-{tag}\r\nCSeq: 1 REGISTER\r\nContact: <sip:office@{me}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n");
    office.send_to(reg.as_bytes(), xt).unwrap();
    let (ok, _) = recv_msg(&office, Duration::from_secs(3), is_resp(200, "REGISTER")).expect("200 to REGISTER");
    assert!(ok.header(&xtrunk_signaling::sip::msg::HName::Contact).is_some_and(|c| c.contains(&me.to_string())));
    assert!(bindings.exists(), "the binding is on disk before the 200");

    // kill -9 of the sidecar; the supervisor restarts it.
    let log = g.log();
    let sidecar: i32 = log
        .split("sidecar started (pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .expect("sidecar pid in the log");
    // SAFETY: kill(2) on the sidecar pid our supervisor logged; no memory involved.
    assert_eq!(unsafe { libc::kill(sidecar, libc::SIGKILL) }, 0);
    assert!(g.wait_log("sidecar restarted (pid ", 1, Duration::from_secs(10)), "no restart; log:\n{}", g.log_tail());
    wait_ready(&mut g, &caller, xt, &format!("{tag}-2"));

    // The next call for the office reaches its registered contact.
    let from = caller.local_addr().unwrap();
    let offer = sdp("caller", 7000);
    let call_id = format!("reg-call-{tag}");
    let inv = format!("INVITE sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKinv1;rport\r\nFrom: <sip:100@127.0.0.1>;tag=ca\r\nTo: <sip:4930123@{xt}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{from}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len());
    caller.send_to(inv.as_bytes(), xt).unwrap();
    let Some((b_inv, src)) = recv_msg(&office, Duration::from_secs(5), is_req("INVITE")) else {
        panic!("the call did not reach the registered contact after the restart; log:\n{}", g.log_tail());
    };
    assert_eq!(b_inv.uri(), Some(format!("sip:office@{me}").as_str()), "Request-URI is the registered Contact");
    assert_eq!(src, xt, "sent over the flow it registered on (the edge's listener)");
    office.send_to(&response(&b_inv, 486, "Busy Here", Some("ob1")).to_bytes(), src).unwrap();
    let busy = recv_msg(&caller, Duration::from_secs(5), is_resp(486, "INVITE"));
    assert!(busy.is_some(), "the office's answer reaches the caller; log:\n{}", g.log_tail());
    let ack = format!("ACK sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKinv1;rport\r\nFrom: <sip:100@127.0.0.1>;tag=ca\r\nTo: {}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", busy.unwrap().0.header(&xtrunk_signaling::sip::msg::HName::To).unwrap());
    caller.send_to(ack.as_bytes(), xt).unwrap();
    drop(g);
    let _ = fs::remove_file(&bindings);
}
