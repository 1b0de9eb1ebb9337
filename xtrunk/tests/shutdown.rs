//! Faults that lose nothing (issue #11), with the real binary: `SIGTERM` to `xtrunk run` with a
//! call up, and `kill -9` of the datapath with a call up, each end the call with a BYE to both
//! peers and write its CDR (`shutdown` / `media_lost`). After the datapath's death the supervisor
//! starts both children again and the edge takes a new call.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, free_range, is_req, is_resp, recv_msg, sdp, udp, wait_ready, write_config, Guard, TestConfig};

use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message};

struct Edge {
    g: Guard,
    dir: PathBuf,
    xt: SocketAddr,
    pbx: UdpSocket,
    carrier: UdpSocket,
    tag: String,
}

fn edge(name: &str) -> Edge {
    let tag = format!("{name}-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("xtrunk-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-{tag}"));
    let (pbx, carrier) = (udp(), udp());
    // The tests of this file run in parallel: each takes a media range the others avoid.
    static TAKEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    let (sip, media) = {
        let mut taken = TAKEN.lock().unwrap();
        let media = free_range(40, &taken);
        taken.push((media, 40));
        (free_port(&taken), media)
    };
    let test = TestConfig {
        name: "xtrunk-shutdown-test",
        sip,
        carrier: carrier.local_addr().unwrap().port(),
        media,
        media_ports: 40,
        max_sessions: 8,
        t1_ms: 200,
    };
    let cfg = write_config(&dir, &shm, &test);
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&cfg);
    let xt: SocketAddr = ([127, 0, 0, 1], sip).into();
    wait_ready(&mut g, &pbx, xt, &tag);
    Edge { g, dir, xt, pbx, carrier, tag }
}

impl Edge {
    /// An answered, ACKed call; returns the carrier-side INVITE.
    fn call(&self, id: &str) -> Message {
        let pbx_addr = self.pbx.local_addr().unwrap();
        let xt = self.xt;
        let offer = sdp("pbx", 7000);
        let call_id = format!("{id}-{}", self.tag);
        let inv = format!("INVITE sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bK{id};rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa{id}\r\nTo: <sip:4930123@{xt}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx_addr}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len());
        self.pbx.send_to(inv.as_bytes(), xt).unwrap();
        let (b_inv, from) = recv_msg(&self.carrier, Duration::from_secs(5), is_req("INVITE"))
            .unwrap_or_else(|| panic!("{id}: no INVITE at the carrier; log:\n{}", self.g.log()));
        let mut ok = response(&b_inv, 200, "OK", Some("cb"));
        ok.push(HName::Contact, format!("<sip:c@{}>", self.carrier.local_addr().unwrap()));
        ok.push(HName::ContentType, "application/sdp");
        ok.body = sdp("carrier", 8000).into_bytes();
        self.carrier.send_to(&ok.to_bytes(), from).unwrap();
        let (ok_a, _) = recv_msg(&self.pbx, Duration::from_secs(5), is_resp(200, "INVITE")).expect("200 at the PBX");
        let to = ok_a.header(&HName::To).unwrap();
        let ack = format!("ACK sip:xtrunk@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bK{id}a;rport\r\nFrom: <sip:100@127.0.0.1>;tag=pa{id}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
        self.pbx.send_to(ack.as_bytes(), xt).unwrap();
        assert!(recv_msg(&self.carrier, Duration::from_secs(2), is_req("ACK")).is_some(), "{id}: ACK at the carrier");
        b_inv
    }

    /// Both peers get a BYE for the call and answer it.
    fn byes_both_ways(&self, b_inv: &Message, why: &str) {
        for (peer, name) in [(&self.pbx, "PBX"), (&self.carrier, "carrier")] {
            let (bye, from) = recv_msg(peer, Duration::from_secs(5), is_req("BYE"))
                .unwrap_or_else(|| panic!("{why}: no BYE at the {name}; log:\n{}", self.g.log_tail()));
            if name == "carrier" {
                assert_eq!(bye.call_id(), b_inv.call_id());
            }
            peer.send_to(&response(&bye, 200, "OK", None).to_bytes(), from).unwrap();
        }
    }

    /// The CDRs written so far (JSON lines).
    fn cdrs(&self) -> Vec<serde_json::Value> {
        let text = fs::read_to_string(self.dir.join("cdr.jsonl")).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn wait_cdrs(&self, n: usize) -> Vec<serde_json::Value> {
        let t = Instant::now() + Duration::from_secs(5);
        while self.cdrs().len() < n && Instant::now() < t {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.cdrs()
    }
}

fn kill(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid this test started or its supervisor logged; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

#[test]
fn sigterm_with_a_call_up_ends_it_with_bye_both_ways_and_a_cdr() {
    let mut e = edge("shutdown");
    let b_inv = e.call("s1");
    let sup = e.g.supervisor.as_ref().unwrap().id() as i32;
    kill(sup, libc::SIGTERM);
    e.byes_both_ways(&b_inv, "SIGTERM");
    let t = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = e.g.supervisor.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < t, "supervisor did not exit; log:\n{}", e.g.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit {status}; log:\n{}", e.g.log_tail());
    let cdrs = e.cdrs();
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!((cdrs[0]["disposition"].as_u64(), cdrs[0]["end_reason"].as_str()), (Some(200), Some("shutdown")));
    assert!(e.g.log().contains("stopping (shutdown): ending 1 call(s)"), "{}", e.g.log_tail());
}

#[test]
fn datapath_death_ends_calls_cleanly_and_the_edge_comes_back() {
    let e = edge("dpdeath");
    let b_inv = e.call("d1");
    let datapath = e.g.child_pids()[0];
    kill(datapath, libc::SIGKILL);
    e.byes_both_ways(&b_inv, "datapath killed");
    let cdrs = e.wait_cdrs(1);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}; log:\n{}", e.g.log_tail());
    assert_eq!(cdrs[0]["end_reason"].as_str(), Some("media_lost"), "{cdrs:?}");
    // Both children are started again; a new call goes through.
    assert!(e.g.wait_log("datapath started (pid ", 2, Duration::from_secs(10)), "{}", e.g.log_tail());
    assert!(e.g.wait_log("signaling sidecar started (pid ", 2, Duration::from_secs(10)), "{}", e.g.log_tail());
    let mut e = e;
    wait_ready(&mut e.g, &e.pbx, e.xt, &format!("{}-again", e.tag));
    let _ = e.call("d2");
    assert!(e.g.supervisor.as_mut().unwrap().try_wait().unwrap().is_none(), "the supervisor is up");
}
