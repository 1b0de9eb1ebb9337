//! Load shedding (#20) on the sans-IO core and simulated time: while the shell reports the loop
//! behind, new INVITEs get a stateless `503` + `Retry-After`; what belongs to admitted calls
//! (their retransmissions, ACK, BYE, CANCEL, responses) and OPTIONS keepalives still flow; once
//! the load is gone, new calls are admitted again.

use std::net::SocketAddr;
use std::time::Duration;

use xtrunk_ring::msg::Command;
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::overload::Load;
use xtrunk_signaling::sip::msg::{HName, Message};
use xtrunk_signaling::testing::Pair;

const PBX: &str = "127.0.0.1:5062";
const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn is_req(m: &'static str) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.method().is_some_and(|k| k.as_str() == m)
}

fn final_for(call: &'static str) -> impl Fn(&Message) -> bool {
    move |m: &Message| m.code().is_some_and(|c| c >= 200) && m.call_id() == Some(call)
}

fn invite(call: &str, branch: &str) -> Vec<u8> {
    format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bK{branch};rport\r\nFrom: <sip:100@pbx>;tag=f{call}\r\nTo: <sip:4930123@x>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len()).into_bytes()
}

/// A request in the caller's dialog of `call` (To with our tag: `to`).
fn in_dialog(call: &str, method: &str, cseq: u32, to: &str, branch: &str) -> Vec<u8> {
    format!("{method} sip:xtrunk@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bK{branch};rport\r\nFrom: <sip:100@pbx>;tag=f{call}\r\nTo: {to}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn cancel(call: &str, branch: &str) -> Vec<u8> {
    format!("CANCEL sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bK{branch};rport\r\nFrom: <sip:100@pbx>;tag=f{call}\r\nTo: <sip:4930123@x>\r\nCall-ID: {call}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn options(branch: &str) -> Vec<u8> {
    format!("OPTIONS sip:xtrunk@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bK{branch};rport\r\nFrom: <sip:ka@pbx>;tag=ka{branch}\r\nTo: <sip:xtrunk@127.0.0.1>\r\nCall-ID: ka{branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn rig() -> (Pair, SocketAddr) {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.media.port_min = 30_000;
    cfg.media.port_max = 30_099;
    let carrier = cfg.trunks[1].targets[0].addr;
    (Pair::new(&cfg, addr("127.0.0.1:5060"), 20), carrier)
}

/// The shell's reports every 10 ms for `d`: the loop `behind` this long.
fn report(p: &mut Pair, d: Duration, behind: Duration) {
    let end = p.now + d;
    while p.now < end {
        p.now += Duration::from_millis(10);
        let now = p.now;
        p.core.handle_load(now, Load { behind, ring_fill_pct: 0 });
    }
}

#[test]
fn admitted_calls_go_on_while_new_ones_get_503_with_retry_after() {
    let (mut p, carrier) = rig();
    // Call A: answered and ACKed before the overload.
    p.input(addr(PBX), &invite("A", "a1"));
    let b_inv = p.take(carrier, is_req("INVITE"));
    let mut ok = response(&b_inv, 200, "OK", Some("cb"));
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    p.input(carrier, &ok.to_bytes());
    let a_ok = p.take(addr(PBX), final_for("A"));
    let a_to = a_ok.header(&HName::To).unwrap().to_string();
    let _ = p.take(carrier, is_req("ACK"));
    p.input(addr(PBX), &in_dialog("A", "ACK", 1, &a_to, "a1ack"));
    // Call B: ringing at the carrier when the overload starts.
    p.input(addr(PBX), &invite("B", "b1"));
    let b_inv = p.take(carrier, is_req("INVITE"));
    let mut ringing = response(&b_inv, 180, "Ringing", Some("cb2"));
    ringing.push(HName::Contact, format!("<sip:c@{carrier}>"));
    p.input(carrier, &ringing.to_bytes());
    p.out.clear();
    p.cmds.clear();

    // The loop is 2 s behind for 3 s: the admitted share falls to nothing.
    report(&mut p, Duration::from_secs(3), Duration::from_secs(2));
    assert_eq!(p.core.metrics.overload.admit_pct, 0);
    assert_eq!(p.core.metrics.overload.episodes, 1);
    let servers = p.core.transactions().0;

    // A new call: 503 with Retry-After, nothing kept, nothing asked of the datapath.
    p.input(addr(PBX), &invite("C", "c1"));
    let r = p.take(addr(PBX), final_for("C"));
    assert_eq!(r.code(), Some(503));
    assert_eq!(r.header(&HName::Other("Retry-After".into())), Some("5"));
    assert!(r.header(&HName::To).unwrap().contains("tag="));
    assert!(p.cmds.is_empty(), "{:?}", p.cmds);
    assert_eq!(p.core.transactions().0, servers, "a shed INVITE keeps no server transaction");
    assert_eq!(p.core.active_calls(), 2);
    // Its ACK matches nothing and changes nothing; its retransmission is shed again.
    p.input(addr(PBX), &in_dialog("C", "ACK", 1, r.header(&HName::To).unwrap(), "c1"));
    p.input(addr(PBX), &invite("C", "c1"));
    assert_eq!(p.take(addr(PBX), final_for("C")).code(), Some(503));
    assert_eq!(p.core.metrics.overload.shed, 2);
    assert!(p.out.is_empty(), "{:#?}", p.dump_out());

    // An admitted call's INVITE retransmission is absorbed (no 503), OPTIONS are answered.
    p.input(addr(PBX), &invite("B", "b1"));
    assert!(p.try_take(addr(PBX), final_for("B")).is_none());
    p.input(addr(PBX), &options("k1"));
    assert_eq!(p.take(addr(PBX), |m| m.call_id() == Some("kak1")).code(), Some(200));
    // CANCEL of the ringing call and BYE of the answered one work as ever.
    p.input(addr(PBX), &cancel("B", "b1"));
    let _ = p.take(carrier, is_req("CANCEL"));
    assert!(p.out.iter().any(|t| String::from_utf8_lossy(&t.data).starts_with("SIP/2.0 200")));
    p.input(addr(PBX), &in_dialog("A", "BYE", 2, &a_to, "a2"));
    assert_eq!(p.take(addr(PBX), final_for("A")).code(), Some(200));
    let bye = p.take(carrier, is_req("BYE"));
    p.input(carrier, &response(&bye, 200, "OK", None).to_bytes());
    assert!(p.cdrs.iter().any(|c| c.end_reason == "caller_bye"));
    assert!(!p.cdrs.iter().any(|c| c.disposition == 503), "a shed call has no CDR");

    // The load is gone: new calls are admitted again, gradually then fully.
    report(&mut p, Duration::from_secs(3), Duration::ZERO);
    assert_eq!(p.core.metrics.overload.admit_pct, 100);
    p.input(addr(PBX), &invite("D", "d1"));
    assert!(p.cmds.iter().any(|c| matches!(c, Command::Create(_))));
    let _ = p.take(carrier, is_req("INVITE"));
    assert_eq!(p.core.metrics.overload.shed, 2);
}

#[test]
fn a_full_ring_sheds_and_disabled_sheds_nothing() {
    let (mut p, _) = rig();
    for _ in 0..30 {
        p.now += Duration::from_millis(100);
        let now = p.now;
        p.core.handle_load(now, Load { behind: Duration::ZERO, ring_fill_pct: 95 });
    }
    p.input(addr(PBX), &invite("E", "e1"));
    assert_eq!(p.take(addr(PBX), final_for("E")).code(), Some(503));

    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.sip.overload.enabled = false;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 21);
    report(&mut p, Duration::from_secs(3), Duration::from_secs(2));
    assert_eq!(p.core.metrics.overload.admit_pct, 100);
    assert_eq!(p.core.metrics.overload.loop_lag_ms, 2000, "the gauge is kept either way");
    p.input(addr(PBX), &invite("F", "f1"));
    assert!(p.try_take(addr(PBX), final_for("F")).is_none());
    assert_eq!(p.core.metrics.overload.shed, 0);
}
