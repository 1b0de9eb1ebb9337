//! Admission and fraud control (issue #15) on the sans-IO core and simulated time: CPS (trunk
//! fails fast, account queues), channels released on every end path, rolling caps,
//! destinations, caller ID (ownership, CLI blocks, Privacy/PAI) and a fraud burst.

use std::net::SocketAddr;
use std::time::Duration;

use xtrunk_config::Config;
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message};
use xtrunk_signaling::testing::Pair;
use xtrunk_signaling::transport::{Dest, Transport};

const PBX: &str = "127.0.0.1:5062";
const CARRIER: &str = "127.0.0.1:5080";
const SDP: &str = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
/// A German landline: no premium, in an owned-caller-ID account's allowed countries.
const DE: &str = "+4930123456";
/// One of the account's DIDs.
const OWNED: &str = "+442071234501";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The PBX trunk (in account "acme", DIDs 4420712345xx) routed to a trusted carrier; `extra`
/// is TOML appended (tables for the trunks and account).
fn rig(pbx: &str, carrier: &str, account: &str) -> Pair {
    let text = format!(
        r#"
[media]
port_min = 30000
port_max = 30999

[[account]]
name = "acme"
dids = ["442071234500-442071234599"]
{account}

[[trunk]]
name = "pbx"
role = "customer"
acl = ["127.0.0.0/8"]
account = "acme"
{pbx}

[[trunk]]
name = "carrier"
role = "carrier"
targets = [{{ addr = "{CARRIER}" }}]
{carrier}

[[route]]
prefix = ""
from_trunk = "pbx"
trunk = "carrier"
"#
    );
    let mut cfg = Config::parse(&text, "test").unwrap();
    cfg.media.port_min = 30_000;
    Pair::new(&cfg, addr("127.0.0.1:5060"), 15)
}

fn invite(n: u32, to: &str, from: &str, extra: &str) -> Vec<u8> {
    format!("INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKa{n};rport\r\nFrom: <sip:{from}@pbx>;tag=f{n}\r\nTo: <sip:{to}@x>\r\nCall-ID: c{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:p@{PBX}>\r\nMax-Forwards: 70\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len()).into_bytes()
}

fn cancel(n: u32, to: &str) -> Vec<u8> {
    format!("CANCEL sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKa{n};rport\r\nFrom: <sip:x@pbx>;tag=f{n}\r\nTo: <sip:{to}@x>\r\nCall-ID: c{n}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn final_for(p: &mut Pair, n: u32) -> Option<Message> {
    let id = format!("c{n}");
    p.try_take(addr(PBX), |m| {
        m.code().is_some_and(|c| c >= 200)
            && m.call_id() == Some(id.as_str())
            && m.cseq().is_some_and(|c| c.method.as_str() == "INVITE")
    })
}

fn warning(m: &Message) -> String {
    m.headers
        .iter()
        .find(|h| matches!(&h.name, HName::Other(n) if n == "Warning"))
        .map(|h| h.value.clone())
        .unwrap_or_default()
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers
        .iter()
        .find(|h| matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case(name)))
        .map(|h| h.value.as_str())
}

/// Carrier INVITEs sent so far (taken), each answered `100 Trying` at once (no retransmissions).
fn carrier_invites(p: &mut Pair) -> Vec<Message> {
    let v: Vec<Message> =
        std::iter::from_fn(|| p.try_take(addr(CARRIER), |m| m.method().is_some_and(|k| k.as_str() == "INVITE")))
            .collect();
    for b in &v {
        let d = Dest { transport: Transport::Udp, local: p.local, remote: addr(CARRIER) };
        p.input_now(d, &response(b, 100, "Trying", None).to_bytes());
    }
    v
}

#[test]
fn at_twice_the_trunk_cps_half_the_calls_get_503_at_once() {
    let mut p = rig("[trunk.limits]\ncps = 10", "", "");
    let (mut refused, mut sent) = (0, 0);
    for n in 0..40 {
        p.input(addr(PBX), &invite(n, DE, OWNED, "")); // 10 ms after the last, and
        sent += carrier_invites(&mut p).len();
        p.advance(Duration::from_millis(40)); // 40 ms more: one call per 50 ms = 20 CPS
        if let Some(r) = final_for(&mut p, n) {
            assert_eq!(r.code(), Some(503));
            assert!(header(&r, "Retry-After").is_some());
            assert!(warning(&r).contains("cps_trunk"), "{}", warning(&r));
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "half of 40 at 2x the rate");
    assert_eq!(sent, 20);
    assert_eq!(p.cdrs.iter().filter(|c| c.cause == "cps_trunk").count(), 20);
    assert_eq!(p.core.metrics.admission_rejects["cps_trunk"]["pbx"], 20);
}

#[test]
fn at_twice_the_account_cps_calls_queue_at_the_rate_then_503() {
    // 5 CPS, calls may wait 1 s, 4 at most: a burst of 10 gives 1 now + 4 queued + 5 × 503.
    let mut p = rig("", "", "[account.limits]\ncps = 5\ncps_queue_ms = 1000\ncps_queue_len = 4");
    let t0 = p.now;
    for n in 0..10 {
        let d = Dest { transport: Transport::Udp, local: p.local, remote: addr(PBX) };
        p.input_now(d, &invite(n, DE, OWNED, ""));
    }
    let trying = p.out.iter().filter(|t| t.dest.remote == addr(PBX) && t.data.starts_with(b"SIP/2.0 100")).count();
    assert_eq!(trying, 5, "admitted and queued INVITEs get 100 Trying (the queued keep their transaction)");
    let refused: Vec<u32> = (0..10).filter(|n| final_for(&mut p, *n).is_some_and(|r| r.code() == Some(503))).collect();
    assert_eq!(refused, vec![5, 6, 7, 8, 9]);
    assert_eq!(carrier_invites(&mut p).len(), 1);
    let mut at = Vec::new();
    for _ in 0..120 {
        p.advance(Duration::from_millis(10));
        if !carrier_invites(&mut p).is_empty() {
            at.push((p.now - t0).as_millis());
        }
    }
    assert_eq!(at.len(), 4, "the queued calls go out, one per 200 ms: {at:?}");
    for (i, t) in at.iter().enumerate() {
        let want = 200 * (i as u128 + 1);
        assert!((want..want + 20).contains(t), "call {} at {t} ms, want ~{want}", i + 1);
    }
    assert_eq!(p.core.metrics.cps_queued, 4);
    assert!(p.cdrs.iter().filter(|c| c.cause == "cps_account").count() == 5);
}

#[test]
fn a_queued_call_cancelled_releases_its_channel() {
    let mut p = rig("", "", "[account.limits]\ncps = 1\nchannels = 5");
    p.input(addr(PBX), &invite(1, DE, OWNED, ""));
    assert_eq!(carrier_invites(&mut p).len(), 1);
    p.input(addr(PBX), &invite(2, DE, OWNED, ""));
    assert_eq!(p.core.admission_tables().0, 2, "the queued call holds a channel");
    p.input(addr(PBX), &cancel(2, DE));
    assert_eq!(final_for(&mut p, 2).and_then(|m| m.code()), Some(487));
    assert_eq!(p.core.admission_tables().0, 1);
    p.advance(Duration::from_secs(2));
    assert_eq!(carrier_invites(&mut p).len(), 0, "the cancelled call never reaches the carrier");
}

#[test]
fn shutdown_answers_the_queued_invites() {
    let mut p = rig("", "", "[account.limits]\ncps = 1");
    p.input(addr(PBX), &invite(1, DE, OWNED, ""));
    p.input(addr(PBX), &invite(2, DE, OWNED, ""));
    let now = p.now;
    p.core.shutdown(now, xtrunk_signaling::cdr::EndReason::Shutdown);
    p.pump();
    assert_eq!(final_for(&mut p, 2).and_then(|m| m.code()), Some(503));
    assert!(p.cdrs.iter().any(|c| c.call_id == "c2" && c.end_reason.as_str() == "shutdown"));
    assert_eq!(p.core.admission_tables().0, 0, "no hold left once the queue is emptied");
}

/// Ends call `n` whose carrier INVITE is `b` by `how`.
fn end(p: &mut Pair, n: u32, b: &Message, how: &str) {
    let carrier = addr(CARRIER);
    match how {
        "cancel" => {
            p.input(carrier, &response(b, 180, "Ringing", Some("cb")).to_bytes());
            p.input(addr(PBX), &cancel(n, DE));
            if let Some(c) = p.try_take(carrier, |m| m.method().is_some_and(|k| k.as_str() == "CANCEL")) {
                p.input(carrier, &response(&c, 200, "OK", None).to_bytes());
            }
            p.input(carrier, &response(b, 487, "Request Terminated", Some("cb")).to_bytes());
        }
        "failure" => p.input(carrier, &response(b, 486, "Busy Here", Some("cb")).to_bytes()),
        _ => {
            // Answered, then the carrier hangs up.
            let mut ok = response(b, 200, "OK", Some("cb"));
            ok.push(HName::Contact, format!("<sip:c@{carrier}>")).push(HName::ContentType, "application/sdp");
            ok.body = SDP.as_bytes().to_vec();
            p.input(carrier, &ok.to_bytes());
            let bye = format!("BYE sip:xtrunk@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {carrier};branch=z9hG4bKbye{n}\r\nFrom: {};tag=cb\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", b.header(&HName::To).unwrap(), b.header(&HName::From).unwrap(), b.call_id().unwrap());
            p.input(carrier, bye.as_bytes());
        }
    }
}

#[test]
fn a_ten_channel_trunk_holds_exactly_ten_whatever_ends_the_others() {
    let mut p = rig("[trunk.limits]\nchannels = 10", "", "");
    let mut live: Vec<(u32, Message)> = Vec::new();
    let mut n = 0;
    let mut refused = 0;
    for round in 0..6 {
        // Fill up: 10 admitted, the next refused.
        loop {
            n += 1;
            p.input(addr(PBX), &invite(n, DE, OWNED, ""));
            if let Some(r) = final_for(&mut p, n) {
                assert_eq!(r.code(), Some(503));
                assert!(warning(&r).contains("channels_full_trunk"));
                refused += 1;
                break;
            }
            let b = carrier_invites(&mut p).pop().expect("admitted call reaches the carrier");
            live.push((n, b));
        }
        assert_eq!(live.len(), 10, "round {round}");
        assert_eq!(p.core.admission_tables().0, 10);
        // End three, one each way.
        for how in ["cancel", "failure", "bye"] {
            let (k, b) = live.remove(0);
            end(&mut p, k, &b, how);
        }
        p.advance(Duration::from_secs(1));
        assert_eq!(p.core.admission_tables().0, 7, "round {round}: {how:?}", how = p.cdrs.last().map(|c| c.end_reason));
    }
    assert_eq!(refused, 6);
    for (k, b) in std::mem::take(&mut live) {
        end(&mut p, k, &b, "failure");
    }
    p.advance(Duration::from_secs(1));
    assert_eq!(p.core.admission_tables().0, 0, "every channel released");
}

#[test]
fn an_hourly_cap_of_n_admits_exactly_n() {
    let mut p = rig("", "", "[account.limits]\ncalls_per_hour = 5");
    let mut admitted = 0;
    for n in 0..8 {
        p.input(addr(PBX), &invite(n, DE, OWNED, ""));
        match final_for(&mut p, n) {
            Some(r) => {
                assert_eq!(r.code(), Some(403));
                assert!(warning(&r).contains("calls_per_hour_account"));
            }
            None => admitted += 1,
        }
    }
    assert_eq!(admitted, 5);
    p.advance(Duration::from_secs(3600 + 61));
    p.input(addr(PBX), &invite(100, DE, OWNED, ""));
    let r = final_for(&mut p, 100);
    assert!(r.as_ref().is_none_or(|r| r.code() != Some(403)), "{r:?}");
}

#[test]
fn destination_and_caller_id_rejects_name_their_cause() {
    let mut p = rig(
        "",
        "[trunk.numbers]\ncli_block_prefixes = [\"+6113\", \"+611300\", \"+611800\", \"+611900\"]",
        "[account.destinations]\ndeny_countries = [\"FR\"]\ndeny_prefixes = [\"88213\"]",
    );
    for (n, to, from, code, cause) in [
        (1, "+449001234567", OWNED, 403, "premium_rate"),
        (2, "+33142685300", OWNED, 403, "denied_country"),
        (3, "+882134567890", OWNED, 403, "denied_prefix"),
        (4, DE, "+442079999999", 403, "unknown_caller_id"),
        (5, DE, "+61130012345", 403, "blocked_cli"),
        (6, "alice", OWNED, 484, "invalid_number"),
    ] {
        p.input(addr(PBX), &invite(n, to, from, ""));
        let r = final_for(&mut p, n).unwrap_or_else(|| panic!("{cause}: no final"));
        assert_eq!(r.code(), Some(code), "{cause}");
        assert!(warning(&r).contains(cause), "{cause}: {}", warning(&r));
        let cdr = p.cdrs.iter().find(|c| c.call_id == format!("c{n}")).expect("cdr");
        assert_eq!((cdr.cause.as_str(), cdr.end_reason.as_str()), (cause, "rejected"));
    }
    assert!(carrier_invites(&mut p).is_empty());
    p.input(addr(PBX), &invite(7, DE, OWNED, ""));
    assert_eq!(carrier_invites(&mut p).len(), 1, "an owned caller ID to an allowed number passes");
}

#[test]
fn privacy_id_reaches_a_trusted_carrier_anonymised_with_pai() {
    let mut p = rig("", "[trunk.numbers]\ntrusted = true\nformat = \"plus-e164\"", "");
    p.input(addr(PBX), &invite(1, "004930123456", "442071234501", "Privacy: id\r\n"));
    let b = carrier_invites(&mut p).pop().expect("reaches the carrier");
    let from = b.header(&HName::From).unwrap();
    assert!(from.contains("anonymous@anonymous.invalid"), "{from}");
    let pai = header(&b, "P-Asserted-Identity").expect("PAI kept for a trusted carrier");
    assert!(pai.contains("+442071234501"), "{pai}");
    assert_eq!(header(&b, "Privacy"), Some("id"));
    assert!(b.uri().unwrap().starts_with("sip:+4930123456@"), "R-URI in +E.164: {}", b.uri().unwrap());
    // Toward an untrusted carrier no PAI goes out.
    let mut p = rig("", "", "");
    p.input(addr(PBX), &invite(1, DE, OWNED, "Privacy: id\r\nP-Asserted-Identity: <sip:+15550000000@pbx>\r\n"));
    let b = carrier_invites(&mut p).pop().expect("reaches the carrier");
    assert!(header(&b, "P-Asserted-Identity").is_none());
    assert!(b.header(&HName::From).unwrap().contains("anonymous"));
}

#[test]
fn a_fraud_burst_to_one_prefix_is_blocked_and_the_block_lifts() {
    let mut p = rig(
        "",
        "",
        "[account.destinations]\nallow_premium = true\n[account.fraud]\ncooldown_secs = 300\ncalls_per_minute = { warning = 3, critical = 6 }",
    );
    let mut passed = 0;
    let mut blocked_at = None;
    for n in 0..30 {
        // International networks (+882): premium-looking, not in the library's premium list.
        p.input(addr(PBX), &invite(n, &format!("+88234567{n:04}"), OWNED, ""));
        match final_for(&mut p, n) {
            Some(r) if warning(&r).contains("fraud_calls_per_minute") => {
                blocked_at.get_or_insert(n);
            }
            Some(r) => panic!("unexpected {:?}", r.code()),
            None => passed += 1,
        }
    }
    assert_eq!((passed, blocked_at), (5, Some(5)), "blocked before the 6th call");
    assert!(p.core.metrics.fraud_warnings["calls_per_minute"]["pbx"] >= 1);
    // Another prefix of the account still passes during the block.
    p.input(addr(PBX), &invite(100, DE, OWNED, ""));
    assert!(final_for(&mut p, 100).is_none());
    p.advance(Duration::from_secs(301));
    p.input(addr(PBX), &invite(101, "+882345670001", OWNED, ""));
    assert!(final_for(&mut p, 101).is_none(), "the block lifted after the cool-down");
}
