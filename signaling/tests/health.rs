//! OPTIONS health (#16) on the sans-IO core, simulated time: probes toward a trunk's targets,
//! a target that never answers goes offline, a route whose trunk is all offline gets
//! `503 Trunk Offline` (CDR `trunk_offline`) at once, and one answer short of `successes` keeps
//! it offline.

use std::net::SocketAddr;
use std::time::Duration;

use xtrunk_config::OptionsPing;
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message, Method};
use xtrunk_signaling::testing::Pair;

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

fn invite(call_id: &str) -> String {
    format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{call_id};rport\r\nFrom: <sip:100@pbx>;tag=t{call_id}\r\nTo: <sip:4930123@x>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
}

fn is_options(m: &Message) -> bool {
    m.method() == Some(&Method::Options)
}

/// Moves time on in small steps until the next probe toward `to` goes out (answered at once).
fn next_probe(p: &mut Pair, to: SocketAddr) -> Message {
    for _ in 0..200 {
        p.advance(Duration::from_millis(100));
        if let Some(m) = p.try_take(to, is_options) {
            return m;
        }
    }
    panic!("no probe toward {to} within 20 s");
}

#[test]
fn all_targets_offline_is_503_at_once_and_answers_bring_them_back() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    let carrier: SocketAddr = cfg.trunks[1].targets[0].addr;
    cfg.trunks[1].targets.truncate(1);
    cfg.trunks[1].options = OptionsPing { interval_secs: 10, failures: 2, successes: 2, timeout_ms: 1_000 };
    let pbx: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let mut p = Pair::new(&cfg, "127.0.0.1:5060".parse().unwrap(), 31);
    // The first probe goes out at once, with what RFC 3261 §11 asks of an OPTIONS.
    p.advance(Duration::from_millis(1));
    let probe = p.take(carrier, is_options);
    for h in [HName::Via, HName::From, HName::To, HName::CallId, HName::CSeq, HName::MaxForwards] {
        assert!(probe.header(&h).is_some(), "probe lacks {h:?}: {probe:?}");
    }
    // Never answered: failures at 1 s and 11 s → offline.
    p.advance(Duration::from_secs(10));
    while p.try_take(carrier, is_options).is_some() {}
    p.advance(Duration::from_secs(2));
    assert_eq!(p.core.metrics.probes.went_offline, 1, "{:?}", p.core.metrics.probes);
    p.input(pbx, invite("off1").as_bytes());
    let r = p.take(pbx, |m| m.code().is_some_and(|c| c >= 200));
    assert_eq!(r.code(), Some(503));
    assert!(String::from_utf8_lossy(&r.to_bytes()).starts_with("SIP/2.0 503 Trunk Offline\r\n"), "{r:?}");
    assert!(p.try_take(carrier, |m| m.method() == Some(&Method::Invite)).is_none(), "an offline trunk was dialled");
    // One answered probe is not enough (successes = 2) ...
    while p.try_take(carrier, is_options).is_some() {}
    for round in 0..2 {
        let probe = next_probe(&mut p, carrier);
        p.input(carrier, &response(&probe, 200, "OK", Some("c")).to_bytes());
        let up = p.core.metrics.probes.came_online;
        assert_eq!(up, round, "after {} answer(s)", round + 1);
    }
    // ... two are: the next call reaches the carrier.
    p.input(pbx, invite("on1").as_bytes());
    p.take(carrier, |m| m.method() == Some(&Method::Invite));
}

#[test]
fn we_answer_options_from_a_trunk_with_allow_and_accept() {
    let cfg = xtrunk_config::Config::embedded_default().unwrap();
    let pbx: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let mut p = Pair::new(&cfg, "127.0.0.1:5060".parse().unwrap(), 32);
    p.input(pbx, b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKo1\r\nFrom: <sip:a@pbx>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    let r = p.take(pbx, |m| m.code() == Some(200));
    assert!(r.header(&HName::Allow).is_some_and(|a| a.contains("INVITE")), "{r:?}");
    assert_eq!(r.header(&HName::Accept), Some("application/sdp"));
}
