//! Delayed offer (#16) on the sans-IO core: an INVITE without SDP becomes an early-offer call
//! toward the carrier; the carrier's answer is our offer in the 2xx to the caller (a 183's SDP
//! is not relayed: no offer in an unreliable 1xx); the caller's ACK answers and sets its leg's
//! media; an ACK without an answer ends the call on both legs.

use std::net::SocketAddr;

use xtrunk_ring::msg::Command;
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message, Method};
use xtrunk_signaling::testing::Pair;

const PBX: &str = "127.0.0.1:5062";
const CARRIER_SDP: &str = "v=0\r\no=c 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 9000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
const PBX_ANSWER: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.7\r\ns=-\r\nc=IN IP4 127.0.0.7\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Places a delayed-offer call up to the 200 at the caller; returns the rig, the 200, the
/// carrier-side INVITE.
fn up_to_200(seed: u64) -> (Pair, Message, Message) {
    let cfg = xtrunk_config::Config::embedded_default().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), seed);
    let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKdo{seed};rport\r\nFrom: <sip:100@pbx>;tag=a{seed}\r\nTo: <sip:4930123@x>\r\nCall-ID: do{seed}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    p.input(addr(PBX), inv.as_bytes());
    let b_inv = p.take(carrier, |m| m.method() == Some(&Method::Invite));
    let offer = String::from_utf8_lossy(&b_inv.body).into_owned();
    assert!(offer.contains("m=audio ") && offer.contains("PCMA/8000") && offer.contains("PCMU/8000"), "{offer}");
    assert!(!offer.contains("0.0.0.0"), "the carrier gets the relay's address: {offer}");
    let with_sdp = |code, phrase| {
        let mut r = response(&b_inv, code, phrase, Some("cb"));
        r.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
        r.body = CARRIER_SDP.as_bytes().to_vec();
        r
    };
    p.input(carrier, &with_sdp(183, "Session Progress").to_bytes());
    let early = p.take(addr(PBX), |m| m.code() == Some(183));
    assert!(early.body.is_empty(), "an offer in an unreliable 183: {early:?}");
    p.input(carrier, &with_sdp(200, "OK").to_bytes());
    let ok = p.take(addr(PBX), |m| m.code() == Some(200));
    p.take(carrier, |m| m.method() == Some(&Method::Ack));
    (p, ok, b_inv)
}

fn ack(ok: &Message, body: &str) -> Vec<u8> {
    let target = ok.header(&HName::Contact).unwrap().trim_matches(|c| c == '<' || c == '>').to_string();
    let to = ok.header(&HName::To).unwrap();
    let from = ok.header(&HName::From).unwrap();
    let ct = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
    format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKack;rport\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n{ct}Content-Length: {}\r\n\r\n{body}", ok.call_id().unwrap(), body.len()).into_bytes()
}

#[test]
fn the_2xx_offers_and_the_ack_answers() {
    let (mut p, ok, _) = up_to_200(1);
    let offer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(offer.contains("RTP/AVP 0") && offer.contains("PCMU/8000"), "the carrier's choice offered: {offer}");
    assert!(offer.contains("c=IN IP4 127.0.0.1"), "on the relay's address: {offer}");
    let before = p.cmds.len();
    p.input(addr(PBX), &ack(&ok, PBX_ANSWER));
    let update = p.cmds[before..].iter().find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None });
    let spec = update.expect("the answer updates the caller's leg");
    assert_eq!(spec.legs[0].remote, Some(addr("127.0.0.7:7000")), "caller leg media from the ACK's answer");
    assert_eq!(spec.legs[1].remote, Some(addr("127.0.0.9:9000")));
    assert_eq!(p.core.active_calls(), 1);
}

#[test]
fn an_ack_without_an_answer_ends_the_call_on_both_legs() {
    let (mut p, ok, b_inv) = up_to_200(2);
    let carrier = b_inv.header(&HName::Via).map(|_| p.core.config().trunks[1].targets[0].addr).unwrap();
    p.input(addr(PBX), &ack(&ok, ""));
    p.take(addr(PBX), |m| m.method() == Some(&Method::Bye));
    p.take(carrier, |m| m.method() == Some(&Method::Bye));
}
