//! Restart on the sans-IO core: an answered call survives the "crash" of its core.
//!
//! Core #1 sets a call up (the PBX sits behind a record-routing proxy) and runs a re-INVITE from
//! the carrier through it (so our CSeq towards the PBX moves); its journal goes to a real file.
//! The core is dropped (the crash). Core #2 opens the journal file, gets the datapath's dump and
//! resumes the call without touching the session; a BYE from the carrier then ends the call on
//! both legs with the right dialog state, deletes the session, writes the CDR, frees the ports.
//! A second test covers what cannot be resumed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use xtrunk_ring::msg::{Command, SessionSpec};
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::journal::{Journal, JournalOp};
use xtrunk_signaling::media::{LoopbackMedia, MediaPort};
use xtrunk_signaling::sip::msg::{HName, Message};
use xtrunk_signaling::testing::{self, Pair};

const LOCAL: &str = "127.0.0.1:5060";
const PBX: &str = "127.0.0.1:5062";
const PROXY: &str = "127.0.0.1:5070";

fn cfg() -> xtrunk_config::Config {
    let mut c = xtrunk_config::Config::embedded_default().unwrap();
    c.media.port_min = 30_000;
    c.media.port_max = 30_099;
    c
}

fn sdp(o: &str, port: u16, version: u32) -> String {
    format!("v=0\r\no={o} 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
}

/// The shared rig, with a journal file.
type Rig = Pair;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn is_req(m: &'static str) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.method().map(|k| k.as_str().to_string()).as_deref() == Some(m)
}

fn is_resp(code: u16) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.code() == Some(code)
}

fn with_body(mut m: Message, contact: &str, body: &str) -> Vec<u8> {
    m.push(HName::Contact, contact.to_string());
    if !body.is_empty() {
        m.push(HName::ContentType, "application/sdp");
        m.body = body.as_bytes().to_vec();
    }
    m.to_bytes()
}

fn journal_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("xtrunk-restart-{name}-{}.calls", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A core whose wall clock is `now` mapped onto one fixed (Instant, SystemTime) pair, so that
/// simulated time stays consistent across the "crash".
fn new_rig(cfg: &xtrunk_config::Config, media: LoopbackMedia, journal: Journal, now: Instant, seed: u64) -> Rig {
    static ANCHOR: std::sync::OnceLock<(Instant, SystemTime)> = std::sync::OnceLock::new();
    let (i0, w0) = *ANCHOR.get_or_init(|| (Instant::now(), SystemTime::now()));
    let wall = w0 + now.saturating_duration_since(i0);
    let local = addr(LOCAL);
    let mut rig = Pair::from_core(testing::core(cfg, local, now, wall, seed), media, local, now);
    rig.journal = Some(journal);
    rig
}

/// Places a call from the PBX (behind PROXY); the carrier answers unless `answer` is false.
/// Returns the outbound INVITE.
fn place_call(rig: &mut Rig, call_id: &str, from_tag: &str, carrier: SocketAddr, answer: bool) -> Message {
    let offer = sdp("pbx", 7000, 1);
    let invite = format!(
        "INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nRecord-Route: <sip:{PROXY};lr>\r\nVia: SIP/2.0/UDP {PROXY};branch=z9hG4bKp{call_id}\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bK{call_id};rport\r\nFrom: <sip:100@pbx>;tag={from_tag}\r\nTo: <sip:4930123@x>\r\nCall-ID: {call_id}\r\nCSeq: 10 INVITE\r\nContact: <sip:100@{PBX}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    rig.input(addr(PROXY), invite.as_bytes());
    let _trying = rig.take(addr(PROXY), is_resp(100));
    let b_inv = rig.take(carrier, is_req("INVITE"));
    let ringing = response(&b_inv, 180, "Ringing", Some(&format!("cb{call_id}")));
    rig.input(carrier, &with_body(ringing, &format!("<sip:c@{carrier}>"), ""));
    let _ = rig.take(addr(PROXY), is_resp(180));
    if answer {
        let ok = response(&b_inv, 200, "OK", Some(&format!("cb{call_id}")));
        rig.input(carrier, &with_body(ok, &format!("<sip:c@{carrier}>"), &sdp("carrier", 8000, 1)));
        let _ack = rig.take(carrier, is_req("ACK"));
    }
    b_inv
}

#[test]
fn answered_call_resumes_after_crash_and_ends_cleanly() {
    let mut cfg = cfg();
    // #15: the call holds a channel of the PBX trunk, before the crash and after the resume.
    cfg.trunks[0].limits.channels = Some(10);
    let carrier = cfg.trunks[1].targets[0].addr;
    let c = carrier.to_string();
    let path = journal_path("resume");
    let t0 = Instant::now();
    let (journal, e) = Journal::open(&path).unwrap();
    assert!(e.is_empty());
    let mut rig = new_rig(&cfg, LoopbackMedia::default(), journal, t0, 7);

    let b_inv = place_call(&mut rig, "callA", "pa", carrier, true);
    let ok_a = rig.take(addr(PROXY), is_resp(200));
    let our_tag_a = ok_a.to().unwrap().tag().unwrap().to_string();
    let ack = format!("ACK sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKack;rport\r\nRoute: <sip:{PROXY};lr>\r\nFrom: <sip:100@pbx>;tag=pa\r\nTo: {}\r\nCall-ID: callA\r\nCSeq: 10 ACK\r\nContent-Length: 0\r\n\r\n", ok_a.header(&HName::To).unwrap());
    rig.input(addr(PROXY), ack.as_bytes());
    let session = match rig.cmds.first() {
        Some(Command::Create(s)) => s.id,
        other => panic!("first command {other:?}"),
    };

    // A re-INVITE from the carrier (CSeq 2): relayed to the PBX as our CSeq 1 on that dialog.
    let b_call_id = b_inv.call_id().unwrap().to_string();
    let our_from_b = b_inv.header(&HName::From).unwrap().to_string();
    let carrier_to = format!("{};tag=cbcallA", b_inv.header(&HName::To).unwrap());
    let reinv_body = sdp("carrier", 8002, 2);
    let reinvite = format!("INVITE sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKre1;rport\r\nFrom: {carrier_to}\r\nTo: {our_from_b}\r\nCall-ID: {b_call_id}\r\nCSeq: 2 INVITE\r\nContact: <sip:c@{c}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{reinv_body}", reinv_body.len());
    rig.input(carrier, reinvite.as_bytes());
    let reinv_a = rig.take(addr(PROXY), is_req("INVITE"));
    assert_eq!(reinv_a.cseq().unwrap().seq, 1);
    let ok = response(&reinv_a, 200, "OK", None);
    rig.input(addr(PROXY), &with_body(ok, &format!("<sip:100@{PBX}>"), &sdp("pbx", 7002, 2)));
    let _ack_a = rig.take(addr(PROXY), is_req("ACK"));
    let ok_b = rig.take(carrier, is_resp(200));
    let ack_b = format!("ACK sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKre1ack;rport\r\nFrom: {carrier_to}\r\nTo: {}\r\nCall-ID: {b_call_id}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n", ok_b.header(&HName::To).unwrap());
    rig.input(carrier, ack_b.as_bytes());
    assert!(rig
        .cmds
        .iter()
        .any(|c| matches!(c, Command::Update(s) if s.legs[1].remote.map(|r| r.port()) == Some(8002))));
    assert_eq!(rig.core.ports().in_use(), 2);
    let answer_ms = {
        let adds: Vec<_> = rig.ops.iter().filter(|o| matches!(o, JournalOp::Add(_))).collect();
        assert!(adds.len() >= 2, "journaled at the answer and again after the re-INVITE: {}", adds.len());
        match adds.last().unwrap() {
            JournalOp::Add(e) => e.cdr.as_ref().unwrap().answer_ms,
            _ => unreachable!(),
        }
    };
    assert!(answer_ms > 0);

    // The crash: the core and the journal handle go; the datapath (and its session) stays.
    let Rig { media, journal, .. } = rig;
    drop(journal);
    let t1 = t0 + Duration::from_secs(5);
    let (journal, entries) = Journal::open(&path).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].legs[0].cseq, 1, "our CSeq towards the PBX after the relayed re-INVITE");
    assert_eq!(entries[0].legs[1].remote_cseq, 2, "the carrier's CSeq");
    let sessions: Vec<SessionSpec> = media.sessions().values().copied().collect();
    assert_eq!(sessions.len(), 1);
    let mut rig = new_rig(&cfg, media, journal, t1, 8);
    rig.core.recover(t1, &sessions, &entries);
    rig.pump();
    assert!(rig.out.is_empty(), "nothing sent on resume: {:#?}", rig.dump_out());
    assert!(rig.cmds.is_empty(), "the session is left alone: {:?}", rig.cmds);
    assert_eq!(rig.core.active_calls(), 1);
    assert_eq!(rig.core.ports().in_use(), 2, "ports of the resumed call stay taken");
    assert_eq!(rig.core.metrics.calls_recovered, 1);
    assert_eq!(rig.core.admission_tables().0, 1, "the resumed call holds its channel again");

    // An in-dialog OPTIONS from the PBX is answered within the resumed dialog.
    let options = format!("OPTIONS sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKopt;rport\r\nFrom: <sip:100@pbx>;tag=pa\r\nTo: <sip:4930123@x>;tag={our_tag_a}\r\nCall-ID: callA\r\nCSeq: 11 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    rig.input(addr(PROXY), options.as_bytes());
    let _ = rig.take(addr(PROXY), is_resp(200));

    // The carrier hangs up (CSeq 3).
    let bye = format!("BYE sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKbye;rport\r\nFrom: {carrier_to}\r\nTo: {our_from_b}\r\nCall-ID: {b_call_id}\r\nCSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    rig.input(carrier, bye.as_bytes());
    let ok_bye = rig.take(carrier, is_resp(200));
    assert_eq!(ok_bye.cseq().unwrap().seq, 3);
    let bye_a = rig.take(addr(PROXY), is_req("BYE"));
    assert_eq!(bye_a.uri(), Some(format!("sip:100@{PBX}").as_str()), "R-URI = the PBX's Contact");
    assert_eq!(bye_a.headers_of(&HName::Route).collect::<Vec<_>>(), vec![format!("<sip:{PROXY};lr>")], "route set");
    assert_eq!(bye_a.call_id(), Some("callA"));
    assert_eq!(bye_a.from().unwrap().tag(), Some(our_tag_a.as_str()));
    assert_eq!(bye_a.to().unwrap().tag(), Some("pa"));
    let cseq = bye_a.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), (2, "BYE"), "CSeq = journaled 1 + 1");
    // The PBX confirms.
    rig.input(addr(PROXY), &response(&bye_a, 200, "OK", None).to_bytes());
    assert_eq!(rig.cmds, vec![Command::Delete(session)]);
    assert_eq!(rig.core.active_calls(), 0);
    assert_eq!(rig.core.ports().in_use(), 0, "ports back once the Delete is confirmed");
    assert_eq!(rig.core.admission_tables().0, 0, "its channel released at the end");
    assert_eq!(rig.cdrs.len(), 1);
    let cdr = &rig.cdrs[0];
    assert_eq!((cdr.call_id.as_str(), cdr.b_call_id.as_str()), ("callA", b_call_id.as_str()));
    assert_eq!((cdr.answer_ms, cdr.disposition, cdr.end_reason.as_str()), (answer_ms, 200, "callee_bye"));
    assert!(cdr.end_ms >= cdr.answer_ms);
    assert_eq!(rig.ops.last(), Some(&JournalOp::Remove(entries[0].id)));
    drop(rig);
    assert!(Journal::load(&path).is_empty(), "nothing left in the journal file");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn what_cannot_be_resumed_is_ended() {
    let cfg = cfg();
    let carrier = cfg.trunks[1].targets[0].addr;
    let path = journal_path("release");
    let t0 = Instant::now();
    let (journal, _) = Journal::open(&path).unwrap();
    let mut rig = new_rig(&cfg, LoopbackMedia::default(), journal, t0, 9);
    // X: answered; Y: ringing at the crash.
    let bx = place_call(&mut rig, "callX", "px", carrier, true);
    let _ = rig.take(addr(PROXY), is_resp(200));
    let _by = place_call(&mut rig, "callY", "py", carrier, false);
    assert_eq!(rig.core.ports().in_use(), 4);
    let sx = rig
        .cmds
        .iter()
        .find_map(|c| match c {
            Command::Create(s) => Some(s.id),
            _ => None,
        })
        .unwrap();

    let Rig { mut media, journal, .. } = rig;
    drop(journal);
    // The datapath lost X's session (e.g. its media timed out while signaling was down).
    media.send(&Command::Delete(sx)).unwrap();
    while media.poll_event().is_some() {}
    let (journal, entries) = Journal::open(&path).unwrap();
    assert_eq!(entries.len(), 1, "only the answered call is journaled");
    let sessions: Vec<SessionSpec> = media.sessions().values().copied().collect();
    assert_eq!(sessions.len(), 1, "Y's session");
    let t1 = t0 + Duration::from_secs(5);
    let mut rig = new_rig(&cfg, media, journal, t1, 10);
    rig.core.recover(t1, &sessions, &entries);
    assert_eq!(rig.core.ports().in_use(), 2, "Y's ports are occupied until its Delete is confirmed");
    rig.pump();
    // X: BYE on both legs, CSeq = journaled + 1.
    let bye_a = rig.take(addr(PROXY), is_req("BYE"));
    assert_eq!((bye_a.call_id(), bye_a.to().unwrap().tag()), (Some("callX"), Some("px")));
    assert_eq!(bye_a.cseq().unwrap().seq, 1);
    assert_eq!(bye_a.headers_of(&HName::Route).count(), 1);
    let bye_b = rig.take(carrier, is_req("BYE"));
    assert_eq!((bye_b.call_id(), bye_b.to().unwrap().tag()), (bx.call_id(), Some("cbcallX")));
    assert_eq!(bye_b.cseq().unwrap().seq, 2);
    assert_eq!(rig.core.active_calls(), 0);
    // Both sessions deleted (X's was already gone: the datapath says so, harmlessly).
    assert_eq!(rig.cmds.len(), 2);
    assert!(rig.cmds.contains(&Command::Delete(sx)));
    assert!(rig.cmds.contains(&Command::Delete(sessions[0].id)));
    assert_eq!(rig.core.ports().in_use(), 0, "every port back");
    assert_eq!(rig.core.ports().double_releases, 0);
    assert_eq!(rig.core.metrics.calls_released_on_restart, 2);
    assert_eq!(rig.cdrs.len(), 1, "X's CDR");
    assert_eq!(rig.cdrs[0].end_reason, "sidecar_restart");
    assert_eq!(rig.ops, vec![JournalOp::Remove(entries[0].id)]);
    drop(rig);
    assert!(Journal::load(&path).is_empty());
    let _ = std::fs::remove_file(&path);
}

/// A journaled call leaves the journal only together with its CDR: its `remove` waits for the
/// `Deleted` that writes the CDR, so a sidecar killed in between replays the call
/// (`sidecar_restart`) instead of losing its CDR.
#[test]
fn a_call_leaves_the_journal_only_with_its_cdr() {
    use xtrunk_ring::msg::{DeleteReason, Event, StreamStats};
    use xtrunk_signaling::transport::{Dest, Transport};
    let cfg = cfg();
    let carrier = cfg.trunks[1].targets[0].addr;
    let path = journal_path("remove-with-cdr");
    let t0 = Instant::now();
    let (journal, _) = Journal::open(&path).unwrap();
    let mut rig = new_rig(&cfg, LoopbackMedia::default(), journal, t0, 9);
    place_call(&mut rig, "callR", "pr", carrier, true);
    let ok_a = rig.take(addr(PROXY), is_resp(200));
    let ack = format!("ACK sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKackR;rport\r\nRoute: <sip:{PROXY};lr>\r\nFrom: <sip:100@pbx>;tag=pr\r\nTo: {}\r\nCall-ID: callR\r\nCSeq: 10 ACK\r\nContent-Length: 0\r\n\r\n", ok_a.header(&HName::To).unwrap());
    rig.input(addr(PROXY), ack.as_bytes());
    assert!(rig.ops.iter().any(|o| matches!(o, JournalOp::Add(_))), "journaled when answered");
    let session = match rig.cmds.first() {
        Some(Command::Create(s)) => s.id,
        other => panic!("first command {other:?}"),
    };
    // The PBX hangs up; the core is driven by hand so the Delete stays unanswered.
    let bye = format!("BYE sip:xtrunk@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX};branch=z9hG4bKbyeR;rport\r\nRoute: <sip:{PROXY};lr>\r\nFrom: <sip:100@pbx>;tag=pr\r\nTo: {}\r\nCall-ID: callR\r\nCSeq: 11 BYE\r\nReason: Q.850;cause=16\r\nContent-Length: 0\r\n\r\n", ok_a.header(&HName::To).unwrap());
    let now = rig.now + Duration::from_millis(10);
    let src = Dest { transport: Transport::Udp, local: addr(LOCAL), remote: addr(PROXY) };
    rig.core.handle_input(now, src, bye.as_bytes());
    let ops: Vec<JournalOp> = std::iter::from_fn(|| rig.core.poll_journal()).collect();
    assert!(!ops.iter().any(|o| matches!(o, JournalOp::Remove(_))), "no remove before the CDR: {ops:?}");
    let cmds: Vec<Command> = std::iter::from_fn(|| rig.core.poll_media()).collect();
    assert!(cmds.contains(&Command::Delete(session)), "{cmds:?}");
    assert!(rig.core.poll_cdr().is_none(), "the CDR waits for the final stats");
    let stats = [StreamStats::default(); 2];
    rig.core.handle_media_event(now, Event::Deleted { id: session, reason: DeleteReason::Requested, stats });
    let cdr = rig.core.poll_cdr().expect("the CDR, on Deleted");
    assert_eq!((cdr.end_reason.as_str(), cdr.q850, cdr.attempts.len()), ("caller_bye", 16, 1));
    let ops: Vec<JournalOp> = std::iter::from_fn(|| rig.core.poll_journal()).collect();
    assert!(ops.iter().any(|o| matches!(o, JournalOp::Remove(_))), "removed with its CDR: {ops:?}");
    let _ = std::fs::remove_file(&path);
}
