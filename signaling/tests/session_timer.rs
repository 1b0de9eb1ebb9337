//! Session timers (RFC 4028, #16) on the rig, simulated time: a 10 s interval is refreshed on
//! both legs every 5 s (UPDATE with Session-Expires); a leg that stops answering its refresh
//! ends the call with BYE on both legs within the interval; a caller's interval below Min-SE is
//! answered 422 with Min-SE.

use std::net::SocketAddr;
use std::time::Duration;

use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message, Method};
use xtrunk_signaling::testing::Pair;

const PBX: &str = "127.0.0.1:5062";
const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn se(m: &Message) -> Option<String> {
    m.headers
        .iter()
        .find(|h| matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case("Session-Expires")))
        .map(|h| h.value.clone())
}

fn invite(extra: &str) -> String {
    format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKst;rport\r\nFrom: <sip:100@pbx>;tag=ast\r\nTo: <sip:4930123@x>\r\nCall-ID: st1\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
}

/// An answered, ACKed call with a 10 s session interval; returns the rig and the carrier.
fn answered() -> (Pair, SocketAddr) {
    let (p, carrier, a_ok) = answered_with("Supported: timer\r\n");
    assert_eq!(se(&a_ok).as_deref(), Some("10;refresher=uas"));
    (p, carrier)
}

/// [`answered`] for a caller INVITE with `extra` headers; also our 2xx to the caller.
fn answered_with(extra: &str) -> (Pair, SocketAddr, Message) {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.sip.session_expires_secs = 10;
    cfg.sip.min_se_secs = 10;
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 61);
    p.input(addr(PBX), invite(extra).as_bytes());
    let b_inv = p.take(carrier, |m| m.method() == Some(&Method::Invite));
    assert_eq!(se(&b_inv).as_deref(), Some("10;refresher=uac"), "{b_inv:?}");
    let mut ok = response(&b_inv, 200, "OK", Some("cb"));
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    p.input(carrier, &ok.to_bytes());
    let a_ok = p.take(addr(PBX), |m| m.code() == Some(200));
    assert_eq!(a_ok.header(&HName::Require), Some("timer"), "the caller supports timer: Require it");
    let target = a_ok.header(&HName::Contact).unwrap().trim_matches(|c| c == '<' || c == '>').to_string();
    let ack = format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKsta;rport\r\nFrom: <sip:100@pbx>;tag=ast\r\nTo: {}\r\nCall-ID: st1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", a_ok.header(&HName::To).unwrap());
    p.input(addr(PBX), ack.as_bytes());
    p.out.clear();
    (p, carrier, a_ok)
}

fn is_update(m: &Message) -> bool {
    m.method() == Some(&Method::Update)
}

#[test]
fn both_legs_are_refreshed_and_a_silent_leg_ends_the_call_within_the_interval() {
    let (mut p, carrier) = answered();
    for round in 0..2 {
        p.advance(Duration::from_millis(5_000));
        for to in [addr(PBX), carrier] {
            let u = p.take(to, is_update);
            assert_eq!(se(&u).as_deref(), Some("10;refresher=uac"), "round {round}: {u:?}");
            p.input(to, &response(&u, 200, "OK", None).to_bytes());
        }
        p.out.clear();
    }
    assert_eq!(p.core.active_calls(), 1);
    // The carrier stops answering: its session expires 10 s after its last refresh (t = 10 s).
    p.advance(Duration::from_millis(5_000));
    let u = p.take(addr(PBX), is_update);
    p.input(addr(PBX), &response(&u, 200, "OK", None).to_bytes());
    p.advance(Duration::from_millis(4_900));
    assert_eq!(p.core.active_calls(), 1, "not before the interval");
    p.advance(Duration::from_millis(200));
    p.take(addr(PBX), |m| m.method() == Some(&Method::Bye));
    p.take(carrier, |m| m.method() == Some(&Method::Bye));
    let cdr = p.cdrs.last().map(|c| c.end_reason.as_str()).unwrap_or_default();
    assert!(cdr == "session_expired" || p.cdrs.is_empty(), "{cdr}");
}

#[test]
fn an_interval_below_min_se_is_422() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.sip.min_se_secs = 90;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 62);
    p.input(addr(PBX), invite("Session-Expires: 30\r\nSupported: timer\r\n").as_bytes());
    let r = p.take(addr(PBX), |m| m.code().is_some_and(|c| c >= 200));
    assert_eq!(r.code(), Some(422));
    let min_se = r.headers.iter().find(|h| matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case("Min-SE")));
    assert_eq!(min_se.map(|h| h.value.as_str()), Some("90"));
    // `Require: timer` is an extension we serve (not 420).
    p.input(
        addr(PBX),
        invite("Session-Expires: 1800\r\nRequire: timer\r\n")
            .replace("z9hG4bKst", "z9hG4bKst2")
            .replace("st1", "st2")
            .as_bytes(),
    );
    assert!(p.try_take(addr(PBX), |m| m.code() == Some(420)).is_none());
}

/// A callee that refuses UPDATE (501) is refreshed by re-INVITE with our unchanged SDP, ACKed;
/// the call lives on.
#[test]
fn a_leg_that_refuses_update_is_refreshed_by_reinvite() {
    let (mut p, carrier) = answered();
    for round in 0..3 {
        p.advance(Duration::from_millis(5_000));
        let u = p.take(addr(PBX), is_update);
        p.input(addr(PBX), &response(&u, 200, "OK", None).to_bytes());
        let m = p.take(carrier, |m| m.method().is_some_and(|x| *x == Method::Update || *x == Method::Invite));
        if round == 0 {
            assert_eq!(m.method(), Some(&Method::Update));
            p.input(carrier, &response(&m, 501, "Not Implemented", None).to_bytes());
        }
        let inv = if round == 0 { p.take(carrier, |m| m.method() == Some(&Method::Invite)) } else { m };
        assert_eq!(inv.method(), Some(&Method::Invite), "round {round}: refreshed by re-INVITE");
        assert_eq!(se(&inv).as_deref(), Some("10;refresher=uac"));
        let body = String::from_utf8_lossy(&inv.body).to_string();
        assert!(body.contains("m=audio"), "the re-INVITE carries our SDP: {body}");
        let mut ok = response(&inv, 200, "OK", None);
        ok.push(HName::ContentType, "application/sdp");
        ok.body = SDP.as_bytes().to_vec();
        p.input(carrier, &ok.to_bytes());
        let ack = p.take(carrier, |m| m.method() == Some(&Method::Ack));
        assert_eq!(ack.cseq().map(|c| c.seq), inv.cseq().map(|c| c.seq), "ACK of the refresh");
        p.out.clear();
    }
    assert_eq!(p.core.active_calls(), 1, "refreshed by re-INVITE, the call lives");
}

/// A caller asking `refresher=uac` keeps it (our 2xx says so, with Require: timer); the edge
/// sends it no refresh, takes its UPDATEs as refreshes, and ends the call when they stop, at
/// S - min(32, S/3).
#[test]
fn a_caller_that_refreshes_itself_is_watched() {
    let (mut p, carrier, a_ok) = answered_with("Supported: timer\r\nSession-Expires: 10;refresher=uac\r\n");
    assert_eq!(se(&a_ok).as_deref(), Some("10;refresher=uac"));
    assert_eq!(a_ok.header(&HName::Require), Some("timer"));
    let target = a_ok.header(&HName::Contact).unwrap().trim_matches(|c| c == '<' || c == '>').to_string();
    let to = a_ok.header(&HName::To).unwrap().to_string();
    for (n, at) in [(2u32, 4_000u64), (3, 4_000)] {
        p.advance(Duration::from_millis(at));
        // The carrier leg is ours to refresh; the caller leg gets nothing from us.
        if let Some(u) = p.try_take(carrier, is_update) {
            p.input(carrier, &response(&u, 200, "OK", None).to_bytes());
        }
        assert!(p.try_take(addr(PBX), is_update).is_none(), "no UPDATE toward a caller that refreshes");
        let upd = format!("UPDATE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKup{n};rport\r\nFrom: <sip:100@pbx>;tag=ast\r\nTo: {to}\r\nCall-ID: st1\r\nCSeq: {n} UPDATE\r\nSession-Expires: 10;refresher=uac\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        p.input(addr(PBX), upd.as_bytes());
        p.take(addr(PBX), |m| m.code() == Some(200));
        p.out.clear();
    }
    assert_eq!(p.core.active_calls(), 1, "refreshed by the caller");
    // The caller stops: 10 - min(32, 10/3) = 7 s after its last refresh.
    p.advance(Duration::from_millis(4_000));
    if let Some(u) = p.try_take(carrier, is_update) {
        p.input(carrier, &response(&u, 200, "OK", None).to_bytes());
    }
    p.advance(Duration::from_millis(2_900));
    assert_eq!(p.core.active_calls(), 1, "not before S - S/3");
    p.advance(Duration::from_millis(200));
    p.take(addr(PBX), |m| m.method() == Some(&Method::Bye));
    p.take(carrier, |m| m.method() == Some(&Method::Bye));
}
