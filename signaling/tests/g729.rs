//! #18 G.729 toward a trunk that allows it, on the sans-IO core: a PBX offering only G.711 is
//! offered onward with G.729 added (by the carrier trunk's preference); a carrier answering
//! G.729 alone gets the PBX answered in its own G.711 and the session transcodes; a carrier
//! answering G.711 gets a session that does not.

use std::net::SocketAddr;

use xtrunk_ring::msg::{Codec, Command, SessionSpec};
use xtrunk_signaling::sip::msg::HName;
use xtrunk_signaling::testing::Pair;

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn invite(call_id: &str) -> String {
    format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{call_id};rport\r\nFrom: <sip:100@pbx>;tag=t{call_id}\r\nTo: <sip:4930123@x>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
}

/// Runs a call whose carrier answers `answer_fmts` (an m-line tail and rtpmap lines); returns
/// the body of our INVITE to the carrier, our 200 to the PBX, and the session spec last updated.
fn call(seed: u64, answer: &str) -> (String, String, SessionSpec) {
    use xtrunk_config::Codec as C;
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.trunks[1].codecs = vec![C::G729.name().into(), C::Pcma.name().into(), C::TelephoneEvent.name().into()];
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), seed);
    p.input(pbx, invite(&format!("g729-{seed}")).as_bytes());
    let inv = p.take(carrier, |m| m.method().is_some());
    let offer = String::from_utf8_lossy(&inv.body).into_owned();
    let mut ok = xtrunk_signaling::b2bua::response(&inv, 200, "OK", Some("c"));
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = format!("v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{answer}").into_bytes();
    p.input(carrier, &ok.to_bytes());
    let ok_a = p.take(pbx, |m| m.code() == Some(200));
    let spec = p
        .cmds
        .iter()
        .rev()
        .find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None })
        .expect("the session is updated with the answer");
    (offer, String::from_utf8_lossy(&ok_a.body).into_owned(), spec)
}

#[test]
fn g729_is_offered_and_a_g729_answer_transcoded() {
    let (offer, to_pbx, spec) =
        call(181, "m=audio 8000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n");
    assert!(offer.contains(" RTP/AVP 18 8 101\r\n"), "{offer}");
    assert!(offer.contains("a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"), "{offer}");
    assert!(to_pbx.contains(" RTP/AVP 8 101\r\n") && !to_pbx.contains("G729"), "{to_pbx}");
    assert_eq!(spec.legs[0].pt_map.by_codec(Codec::Pcma), Some(8), "PBX leg: PCMA");
    assert_eq!(spec.legs[0].pt_map.by_codec(Codec::G729), None);
    assert_eq!(spec.legs[1].pt_map.by_codec(Codec::G729), Some(18), "carrier leg: G.729");
    assert!(xtrunk_datapath::relay::needs_transcoder(&spec));
}

/// Before the answer the carrier leg is read by our offer's payload types, so G.729 that
/// overtakes the answer's Update is transcoded, not passed to the G.711 PBX.
#[test]
fn before_the_answer_the_carrier_leg_has_the_offered_payload_types() {
    use xtrunk_config::Codec as C;
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.trunks[1].codecs = vec![C::G729.name().into(), C::Pcma.name().into(), C::TelephoneEvent.name().into()];
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 184);
    p.input(addr("127.0.0.1:5062"), invite("g729-184").as_bytes());
    let created = p.cmds.iter().find_map(|c| if let Command::Create(s) = c { Some(*s) } else { None }).unwrap();
    assert_eq!(created.legs[1].pt_map.by_codec(Codec::G729), Some(18), "{created:?}");
    assert_eq!(created.legs[1].pt_map.by_codec(Codec::Pcma), Some(8));
    assert!(xtrunk_datapath::relay::needs_transcoder(&created));
}

#[test]
fn a_g711_answer_is_not_transcoded() {
    let (_, to_pbx, spec) =
        call(182, "m=audio 8000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n");
    assert!(to_pbx.contains(" RTP/AVP 8 101\r\n"), "{to_pbx}");
    assert_eq!(spec.legs[1].pt_map.by_codec(Codec::G729), None);
    assert!(!xtrunk_datapath::relay::needs_transcoder(&spec));
}

/// #18 re-packetising: each leg's `a=ptime` reaches its session leg (`ptime_ms`), so the relay
/// re-frames when they differ; an unusable ptime (not a multiple of 10) is 0, "not stated".
#[test]
fn each_legs_ptime_reaches_the_datapath() {
    let (_, _, spec) = call(
        183,
        "m=audio 8000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n",
    );
    assert_eq!((spec.legs[0].ptime_ms, spec.legs[1].ptime_ms), (20, 30));
    assert_eq!(xtrunk_signaling::sdp::ptime_ms("20"), 20);
    assert_eq!(xtrunk_signaling::sdp::ptime_ms(" 30 "), 30);
    for bad in ["25", "0", "130", "20.5", "x"] {
        assert_eq!(xtrunk_signaling::sdp::ptime_ms(bad), 0, "{bad}");
    }
}
