//! Interop regressions (issue #12) on the sans-IO core, through the shared rig: with
//! `sip.server_header` (off by default since #14), `node.name` is
//! sent as `User-Agent` on our requests and `Server` on our responses (stateless ones too), and
//! two clients that share a branch are two transactions (RFC 3261 §17.2.3 matches sent-by too).

use std::net::SocketAddr;

use xtrunk_signaling::sip::msg::{HName, Message};
use xtrunk_signaling::testing::Pair;

const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn invite(from: &str, branch: &str, call_id: &str) -> String {
    format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\nFrom: <sip:100@pbx>;tag=t{call_id}\r\nTo: <sip:4930123@x>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{from}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
}

#[test]
fn node_name_is_our_user_agent_and_server() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.node.name = "edge-fra-1".into();
    cfg.sip.server_header = true;
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 21);
    p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKua", "ua1").as_bytes());
    let trying = p.take(pbx, |m| m.code() == Some(100));
    assert_eq!(trying.header(&HName::Server), Some("edge-fra-1"));
    let b_inv = p.take(carrier, |m| m.method().is_some());
    assert_eq!(b_inv.header(&HName::UserAgent), Some("edge-fra-1"));
    // A stateless answer (a request we cannot parse) carries it too.
    p.input(pbx, b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKbad\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: bad1\r\nCSeq: 1 OPTIONS\r\nContent-Length: abc\r\n\r\n");
    let bad: Message = p.take(pbx, |m| m.code() == Some(400));
    assert_eq!(bad.header(&HName::Server), Some("edge-fra-1"));
}

#[test]
fn no_server_or_user_agent_by_default() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.node.name = "edge-fra-1".into();
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 21);
    p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKua", "ua1").as_bytes());
    let trying = p.take(pbx, |m| m.code() == Some(100));
    assert_eq!(trying.header(&HName::Server), None);
    let b_inv = p.take(carrier, |m| m.method().is_some());
    assert_eq!(b_inv.header(&HName::UserAgent), None);
}

#[test]
fn two_clients_sharing_a_branch_are_two_calls() {
    let cfg = xtrunk_config::Config::embedded_default().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 22);
    // Two PBXs whose stacks pick the same (poor) branch.
    p.input(addr("127.0.0.1:5062"), invite("127.0.0.1:5062", "z9hG4bK1", "pbx-a").as_bytes());
    p.input(addr("127.0.0.2:5062"), invite("127.0.0.2:5062", "z9hG4bK1", "pbx-b").as_bytes());
    assert_eq!(p.core.active_calls(), 2, "{:#?}", p.dump_out());
    let invs: Vec<Message> = std::iter::from_fn(|| p.try_take(carrier, |m| m.method().is_some())).collect();
    assert_eq!(invs.len(), 2);
}

/// #12 failover: a target that sends nothing costs `sip.target_timeout_ms` (2 s), not Timer B
/// (32 s); a transport error (ICMP unreachable, refused connection) fails it at once.
#[test]
fn hunting_skips_silent_and_unreachable_targets_quickly() {
    use std::time::Duration;
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    let (silent, refused, live): (SocketAddr, SocketAddr, SocketAddr) =
        (addr("127.0.0.1:5090"), addr("127.0.0.1:5092"), addr("127.0.0.1:5094"));
    cfg.trunks[1].targets = [silent, refused, live]
        .iter()
        .map(|a| xtrunk_config::Target { addr: *a, transport: xtrunk_config::Transport::Udp, weight: 1, priority: 0 })
        .collect();
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 23);
    let t0 = p.now;
    p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKh", "hunt1").as_bytes());
    assert!(p.try_take(silent, |m| m.method().is_some()).is_some(), "first target tried");
    p.advance(Duration::from_millis(1900));
    assert!(p.try_take(refused, |m| m.method().is_some()).is_none(), "not before the target timeout");
    p.advance(Duration::from_millis(200));
    assert!(p.try_take(refused, |m| m.method().is_some()).is_some(), "second target after ~2 s");
    // ICMP port unreachable from the second: the third at once.
    p.core.handle_transport_error(p.now, refused);
    p.pump();
    let inv = p.take(live, |m| m.method().is_some());
    let waited = p.now - t0;
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // The live target says it is there; the silent one's retransmissions stopped when it was
    // given up.
    p.input(live, &xtrunk_signaling::b2bua::response(&inv, 100, "Trying", None).to_bytes());
    p.out.clear();
    p.advance(Duration::from_secs(4));
    assert!(p.try_take(silent, |_| true).is_none(), "{:#?}", p.dump_out());
    let mut ok = xtrunk_signaling::b2bua::response(&inv, 200, "OK", Some("l"));
    ok.push(HName::Contact, format!("<sip:c@{live}>")).push(HName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    p.input(live, &ok.to_bytes());
    assert!(p.try_take(pbx, |m| m.code() == Some(200)).is_some());
}

/// With no target answering, the caller gets `408` after the hunt budget, not after 64·T1 each.
#[test]
fn the_hunt_has_its_own_budget() {
    use std::time::Duration;
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.sip.target_timeout_ms = 4000;
    cfg.sip.hunt_timeout_secs = 6;
    cfg.trunks[1].targets =
        (0..5).map(|i| xtrunk_config::Target::udp(addr(&format!("127.0.0.1:{}", 5090 + 2 * i)))).collect();
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 24);
    p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKb", "hunt2").as_bytes());
    p.advance(Duration::from_millis(5900));
    assert!(p.try_take(pbx, |m| m.code() == Some(408)).is_none());
    p.advance(Duration::from_millis(200));
    assert!(p.try_take(pbx, |m| m.code() == Some(408)).is_some(), "{:#?}", p.dump_out());
    assert_eq!(p.core.active_calls(), 0);
    assert_eq!(p.cdrs[0].end_reason, "timeout");
}

/// #12: a callee that answers PCMU to a PCMA-only offer is bridged — the caller is answered
/// PCMA and the relay converts A↔µ (each leg's payload map names its own law) — unless its
/// trunk says `g711_transcode = false`.
#[test]
fn an_answer_in_the_other_g711_law_is_transcoded() {
    use xtrunk_ring::msg::{Codec, Command};
    for transcode in [true, false] {
        let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
        cfg.trunks[1].g711_transcode = transcode;
        let carrier = cfg.trunks[1].targets[0].addr;
        let pbx = addr("127.0.0.1:5062");
        let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 25);
        p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKg", &format!("g711-{transcode}")).as_bytes());
        let inv = p.take(carrier, |m| m.method().is_some());
        let mut ok = xtrunk_signaling::b2bua::response(&inv, 200, "OK", Some("u"));
        ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
        ok.body = b"v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 8000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n".to_vec();
        p.input(carrier, &ok.to_bytes());
        let Some(ok_a) = p.try_take(pbx, |m| m.code() == Some(200)) else {
            assert!(!transcode, "bridged answer expected: {:#?}", p.dump_out());
            assert!(p.try_take(pbx, |m| m.code().is_some_and(|c| c >= 400)).is_some(), "{:#?}", p.dump_out());
            continue;
        };
        assert!(transcode, "without g711_transcode the call must not be answered");
        let body = String::from_utf8_lossy(&ok_a.body).into_owned();
        assert!(
            body.contains("m=audio ") && body.contains(" RTP/AVP 8\r\n") && body.contains("a=rtpmap:8 PCMA/8000"),
            "{body}"
        );
        assert!(!body.contains("PCMU"), "{body}");
        let spec = p
            .cmds
            .iter()
            .rev()
            .find_map(|c| if let Command::Update(s) = c { Some(*s) } else { None })
            .expect("the session is updated with the answer");
        assert_eq!(spec.legs[0].pt_map.by_pt(8), Some(Codec::Pcma), "caller leg: PCMA");
        assert_eq!(spec.legs[1].pt_map.by_pt(0), Some(Codec::Pcmu), "callee leg: PCMU");
    }
}

/// #12 one-way media: a leg whose peer goes on hold without sending (`recvonly` answer to a
/// `sendonly` re-INVITE) gets no one-way timeout while held; the other leg keeps its trunk's.
#[test]
fn a_held_leg_is_not_timed_out_for_its_silence() {
    use xtrunk_ring::msg::Command;
    let cfg = xtrunk_config::Config::embedded_default().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 26);
    p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKhold", "hold1").as_bytes());
    let inv = p.take(carrier, |m| m.method().is_some());
    let mut ok = xtrunk_signaling::b2bua::response(&inv, 200, "OK", Some("h"));
    ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    p.input(carrier, &ok.to_bytes());
    let ok_a = p.take(pbx, |m| m.code() == Some(200));
    let a_to = ok_a.header(&HName::To).unwrap().to_string();
    let ack = format!("ACK sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bKholda;rport\r\nFrom: <sip:100@pbx>;tag=thold1\r\nTo: {a_to}\r\nCall-ID: hold1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    p.input(pbx, ack.as_bytes());
    let before =
        p.cmds.iter().rev().find_map(|c| if let Command::Update(s) = c { Some(s.leg_timeout_ms) } else { None });
    assert!(before.is_some_and(|t| t[0] > 0 && t[1] > 0), "{before:?}");
    // The carrier puts the PBX on hold.
    let hold = SDP.replace("RTP/AVP 8\r\n", "RTP/AVP 8\r\na=sendonly\r\n");
    let reinv = format!("INVITE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {carrier};branch=z9hG4bKre;rport\r\nFrom: {};tag=h\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 INVITE\r\nContact: <sip:c@{carrier}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold}", inv.header(&HName::To).unwrap(), inv.header(&HName::From).unwrap(), inv.call_id().unwrap(), hold.len());
    p.input(carrier, reinv.as_bytes());
    let to_pbx = p.take(pbx, |m| m.method().is_some());
    let held = SDP.replace("RTP/AVP 8\r\n", "RTP/AVP 8\r\na=recvonly\r\n");
    let mut ok = xtrunk_signaling::b2bua::response(&to_pbx, 200, "OK", None);
    ok.push(HName::Contact, format!("<sip:100@{pbx}>")).push(HName::ContentType, "application/sdp");
    ok.body = held.into_bytes();
    p.input(pbx, &ok.to_bytes());
    let after =
        p.cmds.iter().rev().find_map(|c| if let Command::Update(s) = c { Some(s.leg_timeout_ms) } else { None });
    let after = after.unwrap();
    assert_eq!(after[0], 0, "the held PBX leg: no one-way timeout");
    assert_eq!(after[1], before.unwrap()[1], "the carrier leg keeps its timeout");
}

/// #12 multi-homed edge behind NAT: a listener's `advertised` host goes into Via and Contact of
/// what passes through it (the global `sip.advertised_host` is the fallback).
#[test]
fn a_listener_advertises_its_own_public_host() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.sip.advertised_host = Some("global.example.net".into());
    cfg.sip.listen[0].advertised = Some("edge-a.example.net".into());
    let carrier = cfg.trunks[1].targets[0].addr;
    let pbx = addr("127.0.0.1:5062");
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 27);
    p.input(pbx, invite("127.0.0.1:5062", "z9hG4bKadv", "adv1").as_bytes());
    let inv = p.take(carrier, |m| m.method().is_some());
    assert!(inv.header(&HName::Via).unwrap().contains("edge-a.example.net:5060"), "{inv:?}");
    assert!(inv.header(&HName::Contact).unwrap().contains("edge-a.example.net:5060"), "{inv:?}");
    assert!(!String::from_utf8_lossy(&inv.to_bytes()).contains("global.example.net"));
}

/// #16 header options: `sip_address` picks which of the edge's addresses Via, Contact and From
/// carry toward a trunk: the advertised one (public, the default), the listener's own
/// (private), or by the peer's address (auto: loopback here counts as private).
#[test]
fn sip_address_chooses_the_public_or_the_private_address_toward_a_trunk() {
    use xtrunk_config::SipAddress;
    let live = addr("127.0.0.1:5094");
    for (mode, want) in [
        (SipAddress::Public, "203.0.113.5:5060"),
        (SipAddress::Private, "127.0.0.1:5060"),
        (SipAddress::Auto, "127.0.0.1:5060"),
    ] {
        let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
        cfg.sip.advertised_host = Some("203.0.113.5".into());
        cfg.trunks[1].targets = vec![xtrunk_config::Target::udp(live)];
        cfg.trunks[1].sip_address = mode;
        let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 25);
        p.input(addr("127.0.0.1:5062"), invite("127.0.0.1:5062", "z9hG4bKsa", "sipaddr").as_bytes());
        let inv = p.take(live, |m| m.method().is_some());
        let via = inv.header(&HName::Via).unwrap_or_default().to_string();
        let contact = inv.header(&HName::Contact).unwrap_or_default().to_string();
        let from = inv.header(&HName::From).unwrap_or_default().to_string();
        assert!(via.contains(&format!(" {want};")), "{mode:?}: Via {via}");
        assert!(contact.contains(&format!("@{want}>")), "{mode:?}: Contact {contact}");
        assert!(from.contains(&format!("@{want}>")), "{mode:?}: From {from}");
        assert_eq!(inv.headers_of(&HName::Via).count(), 1, "a single Via");
    }
}
