//! #18 T.38 on the sans-IO core: a carrier's re-INVITE to `image/t38` reaches the PBX on the
//! relay (T38 attributes kept, audio declined); the PBX's T.38 answer goes back and both legs'
//! specs switch to UDPTL (`Codec::T38`); a PBX that refuses leaves the call on its audio.

use std::net::SocketAddr;

use xtrunk_ring::msg::{Codec, Command};
use xtrunk_signaling::sip::msg::HName;
use xtrunk_signaling::testing::Pair;

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";
const T38: &str = "v=0\r\no=c 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\nm=image 8100 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn run(seed: u64, pbx_accepts: bool) -> (Pair, String, u16, String) {
    run_with(seed, pbx_accepts, SDP, |_| {})
}

/// A call whose carrier answers `carrier_sdp`, then re-INVITEs to T.38; the PBX accepts or not.
fn run_with(
    seed: u64,
    pbx_accepts: bool,
    carrier_sdp: &str,
    tweak: impl FnOnce(&mut xtrunk_config::Config),
) -> (Pair, String, u16, String) {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    tweak(&mut cfg);
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), seed);
    let id = format!("t38-{seed}");
    let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bK{id};rport\r\nFrom: <sip:100@pbx>;tag=t{id}\r\nTo: <sip:4930123@x>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
    p.input(pbx, inv.as_bytes());
    let b_inv = p.take(carrier, |m| m.method().is_some());
    let mut ok = xtrunk_signaling::b2bua::response(&b_inv, 200, "OK", Some("c"));
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = carrier_sdp.as_bytes().to_vec();
    p.input(carrier, &ok.to_bytes());
    let ok_a = p.take(pbx, |m| m.code() == Some(200));
    let a_to = ok_a.header(&HName::To).unwrap().to_string();
    let ack = format!("ACK sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bK{id}a;rport\r\nFrom: <sip:100@pbx>;tag=t{id}\r\nTo: {a_to}\r\nCall-ID: {id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    p.input(pbx, ack.as_bytes());
    // The carrier switches to fax.
    let reinv = format!("INVITE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {carrier};branch=z9hG4bK{id}re;rport\r\nFrom: {};tag=c\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 INVITE\r\nContact: <sip:c@{carrier}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{T38}", b_inv.header(&HName::To).unwrap(), b_inv.header(&HName::From).unwrap(), b_inv.call_id().unwrap(), T38.len());
    p.input(carrier, reinv.as_bytes());
    let to_pbx = p.take(pbx, |m| m.method().is_some());
    let offer = String::from_utf8_lossy(&to_pbx.body).into_owned();
    let mut r = xtrunk_signaling::b2bua::response(&to_pbx, if pbx_accepts { 200 } else { 488 }, "x", None);
    if pbx_accepts {
        r.push(HName::Contact, format!("<sip:100@{pbx}>")).push(HName::ContentType, "application/sdp");
        r.body = T38.replace("8100", "7100").into_bytes();
    }
    p.input(pbx, &r.to_bytes());
    let fin = p.take(carrier, |m| m.code().is_some());
    let body = String::from_utf8_lossy(&fin.body).into_owned();
    (p, offer, fin.code().unwrap(), body)
}

#[test]
fn a_t38_reinvite_is_relayed_and_the_legs_switch_to_udptl() {
    let (p, offer, code, answer) = run(3801, true);
    assert!(offer.contains("m=audio 0 RTP/AVP 8\r\n"), "{offer}");
    assert!(offer.contains(" udptl t38\r\n") && offer.contains("a=T38FaxRateManagement:transferredTCF"), "{offer}");
    assert!(!offer.contains("8100"), "the carrier's port is hidden: {offer}");
    assert_eq!(code, 200);
    assert!(answer.contains("m=audio 0 ") && answer.contains(" udptl t38\r\n") && !answer.contains("7100"), "{answer}");
    let spec = p.cmds.iter().rev().find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None }).unwrap();
    assert!(spec.legs.iter().all(|l| l.pt_map.by_codec(Codec::T38).is_some()), "{spec:?}");
    assert_eq!(spec.legs[0].remote.map(|a| a.port()), Some(7100));
    assert_eq!(spec.legs[1].remote.map(|a| a.port()), Some(8100));
}

#[test]
fn a_refused_t38_reinvite_leaves_the_call_on_audio() {
    let (p, _, code, _) = run(3802, false);
    assert_eq!(code, 488);
    let spec = p.cmds.iter().rev().find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None }).unwrap();
    assert!(spec.legs.iter().all(|l| l.pt_map.by_codec(Codec::Pcma).is_some()), "{spec:?}");
}

#[test]
fn a_refused_t38_on_an_untranscoded_call_changes_nothing_else() {
    let (mut p, _, code, _) = run(3803, false);
    assert_eq!(code, 488);
    let carrier = xtrunk_config::Config::embedded_default().unwrap().trunks[1].targets[0].addr;
    let invite =
        |m: &xtrunk_signaling::sip::msg::Message| m.method() == Some(&xtrunk_signaling::sip::msg::Method::Invite);
    assert!(p.try_take(carrier, invite).is_none(), "no re-offer of our own");
}

/// Fax fallback: the call transcodes (the carrier answered G.729), the PBX refuses the
/// carrier's T.38; the edge re-offers the carrier G.711 only, and once it answers, the
/// session's legs agree on G.711 and do not transcode.
#[test]
fn a_refused_t38_on_a_transcoded_call_moves_the_g729_leg_to_g711() {
    use xtrunk_config::Codec as C;
    const G729: &str = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 8000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let (mut p, _, code, _) = run_with(3804, false, G729, |c| {
        c.trunks[1].codecs = vec![C::G729.name().into(), C::Pcma.name().into(), C::TelephoneEvent.name().into()];
    });
    assert_eq!(code, 488, "the T.38 refusal reaches the carrier");
    let before = p.cmds.iter().rev().find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None }).unwrap();
    assert!(xtrunk_datapath::relay::needs_transcoder(&before), "{before:?}");
    let carrier = xtrunk_config::Config::embedded_default().unwrap().trunks[1].targets[0].addr;
    let reinv = p.take(carrier, |m| m.method() == Some(&xtrunk_signaling::sip::msg::Method::Invite));
    let offer = String::from_utf8_lossy(&reinv.body).into_owned();
    assert_eq!(reinv.method(), Some(&xtrunk_signaling::sip::msg::Method::Invite), "{offer}");
    assert!(offer.contains(" RTP/AVP 8\r\n") && !offer.contains("G729") && !offer.contains(" 18"), "{offer}");
    let mut ok = xtrunk_signaling::b2bua::response(&reinv, 200, "OK", None);
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = SDP.replace("o=a 1 1", "o=c 1 3").replace("7000", "8002").into_bytes();
    p.input(carrier, &ok.to_bytes());
    assert!(
        p.try_take(carrier, |m| m.method() == Some(&xtrunk_signaling::sip::msg::Method::Ack)).is_some(),
        "2xx ACKed"
    );
    let after = p.cmds.iter().rev().find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None }).unwrap();
    assert!(!xtrunk_datapath::relay::needs_transcoder(&after), "{after:?}");
    assert_eq!(after.legs[1].pt_map.by_codec(Codec::Pcma), Some(8));
    assert_eq!(after.legs[1].remote.map(|a| a.port()), Some(8002));
}
