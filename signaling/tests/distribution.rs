//! Target distribution (#16): `round-robin` spreads calls evenly over a trunk's targets and
//! `weight` in proportion (rig, exact counts); SIPp: 300 calls over three real UAS within ±10 %.

#[macro_use]
mod common;

use std::net::SocketAddr;

use common::*;
use xtrunk_config::{Distribution, Target, Transport};
use xtrunk_signaling::sip::msg::{HName, Method};
use xtrunk_signaling::testing::Pair;

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

fn counts(dist: Distribution, weights: &[u32], calls: usize) -> Vec<usize> {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    let targets: Vec<SocketAddr> =
        (0..weights.len()).map(|i| format!("127.0.0.1:{}", 5090 + 2 * i).parse().unwrap()).collect();
    cfg.trunks[1].targets = targets
        .iter()
        .zip(weights)
        .map(|(a, w)| Target { addr: *a, transport: Transport::Udp, weight: *w, priority: 0 })
        .collect();
    cfg.trunks[1].distribution = dist;
    let pbx: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let mut p = Pair::new(&cfg, "127.0.0.1:5060".parse().unwrap(), 41);
    let mut n = vec![0; targets.len()];
    for c in 0..calls {
        let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bKd{c};rport\r\nFrom: <sip:100@pbx>;tag=t{c}\r\nTo: <sip:4930123@x>\r\nCall-ID: d{c}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
        p.input(pbx, inv.as_bytes());
        let hit = targets.iter().position(|t| p.try_take(*t, |m| m.method() == Some(&Method::Invite)).is_some());
        n[hit.unwrap_or_else(|| panic!("call {c} reached no target: {:#?}", p.dump_out()))] += 1;
        // Cancel it at once, so ports and pending shares stay free.
        let cancel = format!("CANCEL sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bKd{c};rport\r\nFrom: <sip:100@pbx>;tag=t{c}\r\nTo: <sip:4930123@x>\r\nCall-ID: d{c}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        p.input(pbx, cancel.as_bytes());
        for t in &targets {
            while let Some(m) = p.try_take(*t, |m| m.method() == Some(&Method::Cancel)) {
                let ok = xtrunk_signaling::b2bua::response(&m, 200, "OK", Some("x"));
                p.input(*t, &ok.to_bytes());
                assert!(m.header(&HName::CallId).is_some());
            }
        }
    }
    n
}

#[test]
fn round_robin_is_even_and_weight_is_proportional() {
    assert_eq!(counts(Distribution::RoundRobin, &[1, 1, 1], 300), [100, 100, 100]);
    assert_eq!(counts(Distribution::Weight, &[2, 1, 1], 300), [150, 75, 75]);
    assert_eq!(counts(Distribution::Priority, &[1, 1, 1], 30), [30, 0, 0], "priority: the first (standbys idle)");
}

#[test]
fn sipp_round_robin_spreads_300_calls_within_ten_percent() {
    need_sipp!();
    let ports = [free_port(), free_port(), free_port()];
    let side = Sidecar::start("rr", &ports, |c| c.trunks[1].distribution = Distribution::RoundRobin);
    let uas: Vec<Sipp> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| sipp(&side.dir, &format!("uas{i}"), "uas_basic", *p, None, 1000, &[]))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 300, &["-r", "100"]);
    let a = pbx.wait();
    // SIPp writes its statistics once a second (`-fd 1`): let the last row land.
    std::thread::sleep(std::time::Duration::from_millis(2_200));
    let got: Vec<u64> = uas.into_iter().map(|u| u.kill().successful).collect();
    let s = side.stop();
    println!("300 calls over three targets: {got:?}");
    assert!(a.ok && a.successful == 300, "{a:?}");
    assert_eq!(got.iter().sum::<u64>(), 300);
    assert!(got.iter().all(|n| (90..=110).contains(n)), "{got:?} not within ±10 % of 100");
    assert_clean(&s);
}
