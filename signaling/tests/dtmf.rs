//! #18 `dtmf = "inband"` on the sans-IO core: no telephone-event is offered or answered toward
//! an in-band trunk, the other (RFC 4733) leg keeps it, and the session spec is one the relay
//! interworks (tones ↔ events).

use std::net::SocketAddr;

use xtrunk_datapath::relay::inband::Interwork;
use xtrunk_ring::msg::{Codec, Command, SessionSpec};
use xtrunk_signaling::sip::msg::HName;
use xtrunk_signaling::testing::Pair;

const TE_SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";
const PLAIN_SDP: &str =
    "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A call from the PBX trunk (offering `offer`) to the carrier trunk (answering `answer`), with
/// `dtmf` modes for (PBX, carrier). Returns our INVITE's body, our 200's body and the spec.
fn call(seed: u64, dtmf: (&str, &str), offer: &str, answer: &str) -> (String, String, SessionSpec) {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.trunks[0].dtmf = dtmf.0.into();
    cfg.trunks[1].dtmf = dtmf.1.into();
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), seed);
    let id = format!("dtmf-{seed}");
    let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{id};rport\r\nFrom: <sip:100@pbx>;tag=t{id}\r\nTo: <sip:4930123@x>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len());
    p.input(pbx, inv.as_bytes());
    let b_inv = p.take(carrier, |m| m.method().is_some());
    let ours = String::from_utf8_lossy(&b_inv.body).into_owned();
    let mut ok = xtrunk_signaling::b2bua::response(&b_inv, 200, "OK", Some("c"));
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = answer.as_bytes().to_vec();
    p.input(carrier, &ok.to_bytes());
    let ok_a = p.take(pbx, |m| m.code() == Some(200));
    let spec = p
        .cmds
        .iter()
        .rev()
        .find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None })
        .expect("the session is updated with the answer");
    (ours, String::from_utf8_lossy(&ok_a.body).into_owned(), spec)
}

#[test]
fn an_inband_carrier_gets_no_telephone_event_and_the_pbx_keeps_it() {
    let (to_carrier, to_pbx, spec) = call(1801, ("rfc4733", "inband"), TE_SDP, PLAIN_SDP);
    assert!(!to_carrier.contains("telephone-event"), "{to_carrier}");
    assert!(to_pbx.contains(" RTP/AVP 8 101\r\n") && to_pbx.contains("a=rtpmap:101 telephone-event/8000"), "{to_pbx}");
    assert!(to_pbx.contains("a=fmtp:101 0-16"), "{to_pbx}");
    assert_eq!(spec.legs[0].pt_map.by_codec(Codec::TelephoneEvent), Some(101));
    assert_eq!(spec.legs[1].pt_map.by_codec(Codec::TelephoneEvent), None);
    assert_eq!(Interwork::for_spec(&spec).map(|i| i.inband_leg()), Some(1));
}

#[test]
fn an_inband_pbx_reaches_an_rfc4733_carrier_as_events() {
    let (to_carrier, to_pbx, spec) = call(1802, ("inband", "rfc4733"), PLAIN_SDP, TE_SDP);
    assert!(to_carrier.contains("a=rtpmap:101 telephone-event/8000"), "{to_carrier}");
    assert!(!to_pbx.contains("telephone-event"), "{to_pbx}");
    assert_eq!(spec.legs[0].pt_map.by_codec(Codec::TelephoneEvent), None);
    assert_eq!(spec.legs[1].pt_map.by_codec(Codec::TelephoneEvent), Some(101));
    assert_eq!(Interwork::for_spec(&spec).map(|i| i.inband_leg()), Some(0));
}

#[test]
fn rfc4733_and_both_trunks_need_no_interworking() {
    for modes in [("rfc4733", "rfc4733"), ("both", "rfc4733"), ("rfc4733", "both")] {
        let (to_carrier, _, spec) = call(1803, modes, TE_SDP, TE_SDP);
        assert!(to_carrier.contains("telephone-event"), "{modes:?}: {to_carrier}");
        assert!(Interwork::for_spec(&spec).is_none(), "{modes:?}");
    }
}
