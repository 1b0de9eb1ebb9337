//! Hostile peers on the sans-IO core (issue #11): an outsider who knows a call's identifiers
//! (Call-ID, both tags, a branch) still cannot end, re-offer, transfer or cancel it; a trunk may
//! transfer only when allowed, and every leg a REFER creates is in the CDR.

use std::net::SocketAddr;
use std::time::Duration;

use xtrunk_ring::msg::Command;
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message};
use xtrunk_signaling::testing::Pair;

const PBX: &str = "127.0.0.1:5062";
/// Neither in the PBX trunk's ACL nor a carrier target.
const OUTSIDER: &str = "198.51.100.7:5060";
const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn is_req(m: &'static str) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.method().is_some_and(|k| k.as_str() == m)
}

fn is_resp(code: u16) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.code() == Some(code)
}

fn with_sdp(mut m: Message, contact: &str) -> Vec<u8> {
    m.push(HName::Contact, contact.to_string()).push(HName::ContentType, "application/sdp");
    m.body = SDP.as_bytes().to_vec();
    m.to_bytes()
}

/// A call from the PBX to the carrier, ringing (`answer` false) or answered and ACKed.
struct Call {
    p: Pair,
    carrier: SocketAddr,
    b_inv: Message,
    /// The To of our 2xx/180 to the caller (with our tag).
    a_to: String,
}

fn call(transfer: bool, answer: bool) -> Call {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.media.port_min = 30_000;
    cfg.media.port_max = 30_099;
    cfg.trunks[0].transfer = transfer;
    cfg.trunks[1].transfer = transfer;
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 11);
    let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKh1;rport\r\nFrom: \"Alice\" <sip:100@pbx>;tag=pa\r\nTo: <sip:4930123@x>\r\nCall-ID: callH\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
    p.input(addr(PBX), inv.as_bytes());
    let b_inv = p.take(carrier, is_req("INVITE"));
    let mut ringing = response(&b_inv, 180, "Ringing", Some("cb"));
    ringing.push(HName::Contact, format!("<sip:c@{carrier}>"));
    p.input(carrier, &ringing.to_bytes());
    let r180 = p.take(addr(PBX), is_resp(180));
    let mut a_to = r180.header(&HName::To).unwrap().to_string();
    if answer {
        p.input(carrier, &with_sdp(response(&b_inv, 200, "OK", Some("cb")), &format!("<sip:c@{carrier}>")));
        let ok = p.take(addr(PBX), is_resp(200));
        a_to = ok.header(&HName::To).unwrap().to_string();
        let _ack_b = p.take(carrier, is_req("ACK"));
        let ack = format!("ACK sip:xtrunk@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKh1a;rport\r\nFrom: \"Alice\" <sip:100@pbx>;tag=pa\r\nTo: {a_to}\r\nCall-ID: callH\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
        p.input(addr(PBX), ack.as_bytes());
    }
    p.out.clear();
    p.cmds.clear();
    Call { p, carrier, b_inv, a_to }
}

impl Call {
    /// A request in the caller's dialog (its identifiers exactly), sent from `from`.
    fn caller_side(&mut self, from: &str, method: &str, cseq: u32, extra: &str, body: &str) {
        let m = format!("{method} sip:xtrunk@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKx{method}{cseq}\r\nFrom: \"Alice\" <sip:100@pbx>;tag=pa\r\nTo: {}\r\nCall-ID: callH\r\nCSeq: {cseq} {method}\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}", self.a_to, body.len());
        self.p.input(addr(from), m.as_bytes());
    }

    /// A request in the carrier's dialog (its identifiers exactly), sent from `from`.
    fn carrier_side(&mut self, from: SocketAddr, method: &str, cseq: u32, extra: &str) {
        let b = &self.b_inv;
        let m = format!("{method} sip:xtrunk@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKy{method}{cseq}\r\nFrom: {};tag=cb\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:c@{}>\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n", b.header(&HName::To).unwrap(), b.header(&HName::From).unwrap(), b.call_id().unwrap(), self.carrier);
        self.p.input(from, m.as_bytes());
    }

    /// Nothing reached either peer and the datapath was not touched.
    fn unchanged(&mut self) {
        let to_peers: Vec<_> = self.p.out.iter().filter(|t| t.dest.remote != addr(OUTSIDER)).collect();
        assert!(to_peers.is_empty(), "sent to a peer: {:#?}", self.p.dump_out());
        assert!(self.p.cmds.is_empty(), "datapath touched: {:?}", self.p.cmds);
        assert_eq!(self.p.core.active_calls(), 1);
    }
}

#[test]
fn outsider_with_the_right_identifiers_changes_nothing() {
    let mut c = call(true, true);
    for method in ["BYE", "INVITE", "REFER", "UPDATE", "INFO"] {
        let extra = if method == "REFER" { "Refer-To: <sip:999@198.51.100.7>\r\n" } else { "" };
        let (extra, body) = if method == "INVITE" { ("Content-Type: application/sdp\r\n", SDP) } else { (extra, "") };
        c.caller_side(OUTSIDER, method, 5, extra, body);
        let r = c.p.take(addr(OUTSIDER), |m| m.code().is_some());
        assert_eq!(r.code(), Some(403), "{method} with the caller's identifiers");
        c.carrier_side(addr(OUTSIDER), method, 5, extra);
        let r = c.p.take(addr(OUTSIDER), |m| m.code().is_some());
        assert_eq!(r.code(), Some(403), "{method} with the carrier's identifiers");
        c.unchanged();
    }
    // A forged ACK is ignored; the real peers still end the call normally.
    c.caller_side(OUTSIDER, "ACK", 1, "", "");
    c.unchanged();
    assert!(c.p.core.metrics.bad_input.get("Not From Dialog Peer").copied().unwrap_or(0) >= 10);
    c.caller_side(PBX, "BYE", 2, "", "");
    let _ = c.p.take(addr(PBX), is_resp(200));
    let bye = c.p.take(c.carrier, is_req("BYE"));
    c.p.input(c.carrier, &response(&bye, 200, "OK", None).to_bytes());
    assert_eq!(c.p.core.active_calls(), 0);
    assert_eq!(c.p.cdrs[0].end_reason, "caller_bye");
}

#[test]
fn outsider_cannot_cancel_a_ringing_call() {
    let mut c = call(false, false);
    let cancel = format!("CANCEL sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKh1;rport\r\nFrom: \"Alice\" <sip:100@pbx>;tag=pa\r\nTo: <sip:4930123@x>\r\nCall-ID: callH\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    c.p.input(addr(OUTSIDER), cancel.as_bytes());
    assert_eq!(c.p.take(addr(OUTSIDER), |m| m.code().is_some()).code(), Some(481));
    c.unchanged();
    // From the caller's own address it works.
    c.p.input(addr(PBX), cancel.as_bytes());
    assert_eq!(c.p.take(addr(PBX), is_resp(200)).cseq().unwrap().method.as_str(), "CANCEL");
    let _ = c.p.take(c.carrier, is_req("CANCEL"));
}

#[test]
fn refer_only_from_a_trunk_allowed_to_transfer() {
    let mut c = call(false, true);
    c.carrier_side(c.carrier, "REFER", 2, "Refer-To: <sip:999@127.0.0.1>\r\n");
    let r = c.p.take(c.carrier, |m| m.code().is_some());
    assert!(r.to_bytes().starts_with(b"SIP/2.0 403 Transfer Not Allowed\r\n"), "{r:?}");
    c.unchanged();
}

#[test]
fn every_leg_a_refer_creates_is_in_the_cdr() {
    let mut c = call(true, true);
    // The carrier transfers to 4940: the transferor's own routes (prefix "" from local-pbx only)
    // do not cover the carrier, so there is no route — recorded, nothing dialled.
    c.carrier_side(c.carrier, "REFER", 2, "Refer-To: <sip:4940@127.0.0.1>\r\n");
    assert_eq!(c.p.take(c.carrier, |m| m.code().is_some()).code(), Some(202));
    assert!(c.p.out.iter().all(|t| !t.data.starts_with(b"INVITE")), "{:#?}", c.p.dump_out());
    c.p.out.clear();
    // The caller side transfers to 4950: routed (from local-pbx) to the carrier, which answers.
    c.caller_side(PBX, "REFER", 2, "Refer-To: <sip:4950@127.0.0.1>\r\n", "");
    assert_eq!(c.p.take(addr(PBX), |m| m.code().is_some()).code(), Some(202));
    let inv = c.p.take(c.carrier, is_req("INVITE"));
    assert!(inv.uri().unwrap().starts_with("sip:4950@"));
    c.p.input(c.carrier, &with_sdp(response(&inv, 200, "OK", Some("z1")), &format!("<sip:z@{}>", c.carrier)));
    c.p.advance(Duration::from_secs(1));
    // The transferor (PBX) is sent a BYE; the call goes on between the carrier's two dialogs.
    let bye = c.p.take(addr(PBX), is_req("BYE"));
    c.p.input(addr(PBX), &response(&bye, 200, "OK", None).to_bytes());
    assert!(c.p.cmds.iter().any(|x| matches!(x, Command::Update(_))));
    assert_eq!(c.p.core.active_calls(), 1);
    // The carrier ends both.
    c.carrier_side(c.carrier, "BYE", 3, "");
    c.p.advance(Duration::from_secs(40));
    assert_eq!(c.p.core.active_calls(), 0, "{:#?}", c.p.dump_out());
    let t = &c.p.cdrs[0].transfers;
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!((t[0].slot, t[0].to.as_str(), t[0].code, t[0].call_id.as_str()), (1, "4940", 404, ""));
    assert_eq!((t[1].slot, t[1].to.as_str(), t[1].code), (0, "4950", 200));
    assert_eq!((t[1].by_trunk.as_str(), t[1].trunk_out.as_str()), ("local-pbx", "local-carrier"));
    assert_eq!(t[1].call_id, inv.call_id().unwrap());
}

#[test]
fn control_characters_in_the_callers_display_name_do_not_cross() {
    let cfg = xtrunk_config::Config::embedded_default().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 12);
    for (i, from) in ["\"Al\\\x00ice\" <sip:100@pbx>;tag=pa", "\"Bob\" <sip:100@pbx>;tag=pb"].iter().enumerate() {
        let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKd{i};rport\r\nFrom: {from}\r\nTo: <sip:4930123@x>\r\nCall-ID: callD{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
        p.input(addr(PBX), inv.as_bytes());
        let b = p.take(carrier, is_req("INVITE"));
        let f = b.header(&HName::From).unwrap();
        assert!(!f.bytes().any(|c| c < 0x20), "{f:?}");
        assert_eq!(f.starts_with("\"Bob\" "), i == 1, "{f:?}");
    }
}

/// A call the datapath cannot carry dials no carrier: `503` to the caller, CDR `media_error`,
/// every port back — whether the datapath refuses the session or never answers.
#[test]
fn no_carrier_is_dialled_before_the_datapath_holds_the_session() {
    for mute in [false, true] {
        let cfg = xtrunk_config::Config::embedded_default().unwrap();
        let carrier = cfg.trunks[1].targets[0].addr;
        let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 13);
        p.media.fail_creates = usize::from(!mute);
        p.media.mute_creates = mute;
        let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKm;rport\r\nFrom: <sip:100@pbx>;tag=pm\r\nTo: <sip:4930123@x>\r\nCall-ID: callM\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
        p.input(addr(PBX), inv.as_bytes());
        p.advance(Duration::from_secs(3));
        assert!(p.try_take(carrier, |_| true).is_none(), "mute={mute}: the carrier was dialled");
        assert!(p.try_take(addr(PBX), is_resp(503)).is_some(), "mute={mute}: {:#?}", p.dump_out());
        assert_eq!(p.core.active_calls(), 0);
        // The Delete of a session the datapath never took is answered UnknownSession: ports back.
        assert_eq!(p.core.ports().in_use(), 0, "mute={mute}");
        assert_eq!(p.cdrs.len(), 1);
        assert_eq!((p.cdrs[0].disposition, p.cdrs[0].end_reason.as_str()), (503, "media_error"));
    }
}

/// Calls one source leaves pending (ringing, never answered or ACKed) take at most
/// `max_pending_share_pct` of the port pool; other sources still get ports, and the share
/// comes back when those calls are answered and ACKed.
#[test]
fn one_source_cannot_hold_the_whole_port_pool_with_pending_calls() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.media.port_min = 30_000;
    cfg.media.port_max = 30_040; // 20 relay ports: 10 calls; 50 % = 5 pending calls per source
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 14);
    let invite = |from: &str, i: usize| {
        format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKs{i};rport\r\nFrom: <sip:100@pbx>;tag=ps{i}\r\nTo: <sip:4930123@x>\r\nCall-ID: callS{i}-{from}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{from}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len())
    };
    let other = "127.0.0.2:5062";
    for i in 0..6 {
        p.input(addr(PBX), invite(PBX, i).as_bytes());
    }
    assert_eq!(p.core.active_calls(), 5);
    assert!(p.try_take(addr(PBX), is_resp(503)).is_some(), "the 6th pending call is refused");
    p.input(addr(other), invite(other, 0).as_bytes());
    assert_eq!(p.core.active_calls(), 6, "another source still gets ports");
    // The first source's calls are answered and ACKed: they no longer count.
    let invs: Vec<Message> = std::iter::from_fn(|| p.try_take(carrier, is_req("INVITE"))).collect();
    for b in invs.iter().filter(|m| m.header(&HName::Contact).is_some()) {
        p.input(carrier, &with_sdp(response(b, 200, "OK", Some("cs")), &format!("<sip:c@{carrier}>")));
    }
    while let Some(ok) = p.try_take(addr(PBX), is_resp(200)) {
        let (cid, to) = (ok.call_id().unwrap().to_string(), ok.header(&HName::To).unwrap().to_string());
        let from = ok.header(&HName::From).unwrap().to_string();
        let ack = format!("ACK sip:xtrunk@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKa{cid};rport\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
        p.input(addr(PBX), ack.as_bytes());
    }
    p.out.clear();
    p.input(addr(PBX), invite(PBX, 9).as_bytes());
    assert_eq!(p.core.active_calls(), 7, "confirmed calls free the share: {:#?}", p.dump_out());
}

/// A slow datapath: the Create is sent again, the first copy's `Created` arrives, then the
/// repeat is refused `DuplicateSession`. The session exists: the call goes on (no 503).
#[test]
fn a_repeated_creates_duplicate_refusal_after_created_changes_nothing() {
    use xtrunk_ring::msg::{ErrorCode, Event};
    let cfg = xtrunk_config::Config::embedded_default().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, addr("127.0.0.1:5060"), 17);
    let inv = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKd;rport\r\nFrom: <sip:100@pbx>;tag=pd\r\nTo: <sip:4930123@x>\r\nCall-ID: callD\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
    p.input(addr(PBX), inv.as_bytes());
    let _ = p.take(carrier, is_req("INVITE"));
    let id = p.cmds.iter().find_map(|c| if let Command::Create(s) = c { Some(s.id) } else { None }).expect("a Create");
    let now = p.now;
    p.core.handle_media_event(now, Event::Error { id, code: ErrorCode::DuplicateSession, port: 0 });
    p.pump();
    assert!(p.try_take(addr(PBX), is_resp(503)).is_none(), "{:#?}", p.dump_out());
    assert_eq!(p.core.active_calls(), 1);
}
