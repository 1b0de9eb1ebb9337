//! Routes with failover trunks (#16), against SIPp: a route of three trunks where the first
//! answers 503, the second never answers and the third answers connects on the third, and its
//! CDR lists every attempt with its outcome.

#[macro_use]
mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use xtrunk_config::TrunkRole;

#[test]
fn route_hunts_over_three_trunks_and_the_cdr_lists_the_attempts() {
    need_sipp!();
    let (busy, live) = (free_port(), free_port());
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap(); // bound, never answers
    let silent_port = silent.local_addr().unwrap().port();
    let side = Sidecar::start("routes", &[busy], |c| {
        c.trunks.push(trunk("carrier-b", TrunkRole::Carrier, &[], &[silent_port]));
        c.trunks.push(trunk("carrier-c", TrunkRole::Carrier, &[], &[live]));
        c.routes[0].then = vec!["carrier-b".into(), "carrier-c".into()];
    });
    let c1 = sipp(&side.dir, "uas503", "uas_503", busy, None, 2, &[]);
    let c3 = sipp(&side.dir, "uas", "uas_basic", live, None, 2, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 2, &["-r", "10"]);
    let (a, b1, b3) = (pbx.wait(), c1.wait(), c3.wait());
    let took = t0.elapsed();
    let (s, cdrs) = side.stop_with_cdrs();
    assert!(a.ok && b1.ok && b3.ok, "{a:?} {b1:?} {b3:?}");
    assert_eq!(a.successful, 2);
    println!("2 calls over [503, silent, live] trunks in {took:?}");
    assert_eq!(cdrs.len(), 2);
    for c in &cdrs {
        let attempts: Vec<(String, u64)> = c["attempts"]
            .as_array()
            .unwrap_or_else(|| panic!("no attempts in {c}"))
            .iter()
            .map(|a| (a["trunk"].as_str().unwrap().to_string(), a["code"].as_u64().unwrap()))
            .collect();
        let want = [("carrier".to_string(), 503), ("carrier-b".to_string(), 408), ("carrier-c".to_string(), 200)];
        assert_eq!(attempts, want, "{c}");
        assert_eq!(c["trunk_out"], "carrier-c");
        assert_eq!(c["disposition"], 200);
    }
    assert_clean(&s);
}

/// #16 DID pools on the rig: a carrier's call to a number of an account's pool reaches that
/// account's PBX; a number in no pool gets `404` and no leg.
#[test]
fn a_did_outside_every_pool_is_404_and_one_inside_reaches_its_account() {
    use xtrunk_config::Account;
    use xtrunk_signaling::sip::msg::Method;
    use xtrunk_signaling::testing::Pair;
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    let acme = serde_json::json!({ "name": "acme", "dids": ["493012345600-493012345699"] });
    cfg.accounts = vec![serde_json::from_value::<Account>(acme).unwrap()];
    let pbx: std::net::SocketAddr = "127.0.0.1:5062".parse().unwrap();
    cfg.trunks[0].account = Some("acme".into());
    cfg.trunks[0].targets =
        vec![xtrunk_config::Target { addr: pbx, transport: xtrunk_config::Transport::Udp, weight: 1, priority: 0 }];
    cfg.trunks[1].acl = vec!["192.0.2.0/24".parse().unwrap()];
    let carrier: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let mut p = Pair::new(&cfg, "127.0.0.1:5060".parse().unwrap(), 51);
    let sdp = "v=0\r\no=c 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 9000 RTP/AVP 8\r\n";
    let inv = |to: &str, id: &str| {
        format!("INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {carrier};branch=z9hG4bK{id};rport\r\nFrom: <sip:+4420@carrier>;tag=t{id}\r\nTo: <sip:{to}@x>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@{carrier}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len())
    };
    p.input(carrier, inv("+493099999999", "did1").as_bytes());
    let r = p.take(carrier, |m| m.code().is_some_and(|c| c >= 200));
    assert_eq!(r.code(), Some(404));
    assert!(p.try_take(pbx, |m| m.method() == Some(&Method::Invite)).is_none());
    p.input(carrier, inv("+493012345642", "did2").as_bytes());
    p.take(pbx, |m| m.method() == Some(&Method::Invite));
}

/// #16 session timers with SIPp on both legs: a 10 s interval is refreshed on both legs (each
/// SIPp answers two UPDATEs); then a carrier that stops answering is cut within the interval,
/// BYE on both legs.
#[test]
fn session_timer_refreshes_both_legs_and_a_silent_leg_is_cut() {
    need_sipp!();
    let tweak = |c: &mut xtrunk_config::Config| {
        c.sip.min_se_secs = 10;
        c.sip.no_answer_timeout_secs = 30;
    };
    let uas_port = free_port();
    let side = Sidecar::start("st", &[uas_port], tweak);
    let uas = sipp(&side.dir, "uas", "uas_session_timer", uas_port, None, 1, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let pbx = sipp(&side.dir, "uac", "uac_session_timer", free_port(), Some(side.port), 1, &[]);
    let (a, b) = (pbx.wait(), uas.wait());
    println!("refreshed call took {:?}", t0.elapsed());
    assert!(a.ok && b.ok, "{a:?} {b:?}");
    // The carrier answers one refresh (at 5 s), then none: the call ends at ~15 s.
    let uas_port = free_port();
    let _ = side.stop();
    let side = Sidecar::start("st2", &[uas_port], tweak);
    let uas = sipp(&side.dir, "uas", "uas_session_silent", uas_port, None, 1, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let pbx = sipp(&side.dir, "uac", "uac_session_expiry", free_port(), Some(side.port), 1, &[]);
    let a = pbx.wait();
    let took = t0.elapsed();
    let b = uas.wait();
    let (s, cdrs) = side.stop_with_cdrs();
    println!("silent carrier: the caller got our BYE after {took:?}");
    assert!(a.ok && b.ok, "{a:?} {b:?}");
    assert!(took < Duration::from_secs(17), "{took:?}");
    assert_eq!(cdrs.last().map(|c| c["end_reason"].clone()), Some("session_expired".into()), "{cdrs:?}");
    assert_clean(&s);
}

/// #15 × #16: a call's channel follows it when it hunts to the route's next trunk; a next trunk
/// whose channels are full is skipped (rig).
#[test]
fn the_channel_lease_moves_with_the_hunt() {
    use xtrunk_signaling::b2bua::response;
    use xtrunk_signaling::sip::msg::Method;
    use xtrunk_signaling::testing::Pair;
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    let (a, b): (std::net::SocketAddr, std::net::SocketAddr) =
        ("127.0.0.1:5090".parse().unwrap(), "127.0.0.1:5092".parse().unwrap());
    let mut second = trunk("carrier-b", TrunkRole::Carrier, &[], &[b.port()]);
    second.limits.channels = Some(1);
    cfg.trunks[1].targets =
        vec![xtrunk_config::Target { addr: a, transport: xtrunk_config::Transport::Udp, weight: 1, priority: 0 }];
    cfg.trunks[1].limits.channels = Some(5);
    cfg.trunks.push(second);
    cfg.routes[0].then = vec!["carrier-b".into()];
    let pbx: std::net::SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let mut p = Pair::new(&cfg, "127.0.0.1:5060".parse().unwrap(), 71);
    let sdp = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";
    let inv = |id: &str| {
        format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bK{id};rport\r\nFrom: <sip:100@pbx>;tag=t{id}\r\nTo: <sip:4930123@x>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{pbx}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len())
    };
    for (n, id) in ["lm1", "lm2"].into_iter().enumerate() {
        p.input(pbx, inv(id).as_bytes());
        let first = p.take(a, |m| m.method() == Some(&Method::Invite));
        p.input(a, &response(&first, 503, "Service Unavailable", Some("x")).to_bytes());
        let at_b = p.try_take(b, |m| m.method() == Some(&Method::Invite));
        if n == 0 {
            assert!(at_b.is_some(), "the first call hunts to carrier-b (1 channel): {:#?}", p.dump_out());
        } else {
            assert!(at_b.is_none(), "carrier-b's only channel is taken: the second call must not reach it");
            let r = p.take(pbx, |m| m.code().is_some_and(|c| c >= 300));
            assert!(r.code().is_some_and(|c| c >= 400), "{r:?}");
        }
    }
}

/// #16: a route whose last entry is a phone number: when its trunk fails, the call is placed
/// again to that number through the number's own route, and connects there (SIPp).
#[test]
fn a_routes_last_entry_may_be_a_phone_number() {
    need_sipp!();
    let (busy, live) = (free_port(), free_port());
    let side = Sidecar::start("renumber", &[busy], |c| {
        c.trunks.push(trunk("carrier-c", TrunkRole::Carrier, &[], &[live]));
        c.routes[0].then_number = Some("+4930999000".into());
        let mut r = c.routes[0].clone();
        (r.prefix, r.trunk, r.then_number) = ("+4930999".into(), "carrier-c".into(), None);
        c.routes.push(r);
    });
    let c1 = sipp(&side.dir, "uas503", "uas_503", busy, None, 1, &[]);
    let c3 = sipp(&side.dir, "uas", "uas_basic", live, None, 1, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 1, &[]);
    let (a, b1, b3) = (pbx.wait(), c1.wait(), c3.wait());
    let (s, cdrs) = side.stop_with_cdrs();
    assert!(a.ok && b1.ok && b3.ok, "{a:?} {b1:?} {b3:?}");
    let c = &cdrs[0];
    let trunks: Vec<&str> = c["attempts"].as_array().unwrap().iter().map(|a| a["trunk"].as_str().unwrap()).collect();
    assert_eq!(trunks, ["carrier", "carrier-c"], "{c}");
    assert_eq!((c["trunk_out"].as_str(), c["disposition"].as_u64()), (Some("carrier-c"), Some(200)));
    assert_clean(&s);
}

/// #16 the failover dialplan (Kwebbl): calls to a trunk whose PBX is unreachable go on to the
/// trunk's `failover` trunk (voicemail here), though the route lists only the PBX.
#[test]
fn calls_to_an_unreachable_pbx_follow_its_failover_dialplan() {
    need_sipp!();
    let (down, voicemail) = (free_port(), free_port());
    let side = Sidecar::start("failover-dialplan", &[down], |c| {
        c.trunks.push(trunk("voicemail", TrunkRole::Carrier, &[], &[voicemail]));
        c.trunks.iter_mut().find(|t| t.name == "carrier").unwrap().failover = vec!["voicemail".into()];
    });
    let vm = sipp(&side.dir, "vm", "uas_basic", voicemail, None, 3, &[]);
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 3, &["-r", "10"]);
    let (a, b) = (pbx.wait(), vm.wait());
    let (s, cdrs) = side.stop_with_cdrs();
    assert_eq!((a.successful, b.successful), (3, 3), "{a:?} {b:?}");
    for c in &cdrs {
        let trunks: Vec<&str> =
            c["attempts"].as_array().unwrap().iter().map(|a| a["trunk"].as_str().unwrap()).collect();
        assert_eq!(trunks, ["carrier", "voicemail"], "{c}");
        assert_eq!(c["trunk_out"], "voicemail");
    }
    assert_clean(&s);
}
