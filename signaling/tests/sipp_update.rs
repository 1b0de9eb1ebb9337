//! Mid-call offer/answer through the sidecar, driven by SIPp (PBX = UAC, carrier = UAS):
//!
//! * `update_in_dialog_relays_offer_and_answer` — RFC 3311 UPDATE from the caller in a confirmed
//!   dialog (new offer `a=sendonly`, then `a=sendrecv`): the callee receives an UPDATE whose SDP
//!   is the relay's (`c=`/`m=` rewritten, direction kept, `o=` version bumped), the caller gets a
//!   200 whose SDP is the relay's, and every UPDATE reaches the datapath as `Command::Update`.
//! * `codec_change_by_reinvite` — the call starts with PCMA+PCMU; a re-INVITE from the caller
//!   offers PCMU only: the callee is offered PCMU only, the caller's answer lists PCMU only, and the
//!   datapath's payload-type maps shrink to PT 0 on both legs.
//!
//! The datapath is an in-memory `LoopbackMedia` wrapped so that the test sees every `Command`
//! (the sidecar advertises the TEST-NET address 192.0.2.77 in SDP so that relay `c=` lines can't be
//! confused with SIPp's own 127.0.0.1). The scenarios check the SDP with `<ereg check_it>`; the
//! tests also read SIPp's message logs, the CDRs, the command log, and the sidecar's end state.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use xtrunk_config::{Config, Listen, Route, Transport, TrunkRole};
use xtrunk_ring::msg::{Command, Event, SessionId, SessionSpec};
use xtrunk_signaling::media::{Backpressure, MediaPort};
use xtrunk_signaling::{LoopbackMedia, Server, Summary};

const RELAY_IP: &str = "192.0.2.77";
const PORT_MIN: u16 = 20_000;
const PORT_MAX: u16 = 29_999;

/// `LoopbackMedia` that also hands every accepted command to the test.
struct Recording {
    inner: LoopbackMedia,
    log: Arc<Mutex<Vec<Command>>>,
}

impl MediaPort for Recording {
    fn send(&mut self, cmd: &Command) -> Result<(), Backpressure> {
        self.inner.send(cmd)?;
        self.log.lock().unwrap().push(*cmd);
        Ok(())
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.inner.poll_event()
    }
}

struct Side {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Summary>,
    port: u16,
    dir: common::TmpDir,
    cmds: Arc<Mutex<Vec<Command>>>,
}

fn start(name: &str, carrier: u16) -> Side {
    let _ = env_logger::builder().is_test(true).try_init();
    let dir = tmpdir(name);
    let port = free_port();
    let mut cfg = Config::embedded_default().unwrap();
    cfg.node.shm_path = dir.join("shm");
    cfg.node.cdr_path = Some(dir.join("cdr.jsonl"));
    cfg.sip.listen = vec![Listen {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        advertised: None,
    }];
    cfg.sip.timers.t1_ms = 200;
    cfg.sip.no_answer_timeout_secs = 30;
    cfg.media.port_min = PORT_MIN;
    cfg.media.port_max = PORT_MAX;
    cfg.media.advertised_ip = Some(RELAY_IP.parse().unwrap());
    cfg.trunks = vec![
        trunk("pbx", TrunkRole::Customer, &["127.0.0.0/8"], &[]),
        trunk("carrier", TrunkRole::Carrier, &[], &[carrier]),
    ];
    cfg.routes = vec![Route::to("", Some("pbx"), "carrier")];
    let cmds = Arc::new(Mutex::new(Vec::new()));
    let media = Recording { inner: LoopbackMedia::default(), log: cmds.clone() };
    let server = Server::bind(&cfg, media).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let handle = std::thread::spawn(move || server.run(s2).unwrap());
    Side { stop, handle, port, dir, cmds }
}

struct Run {
    summary: Summary,
    cdrs: Vec<serde_json::Value>,
    uac_log: String,
    uas_log: String,
    cmds: Vec<Command>,
}

/// `n` calls of `uac` (PBX) against `uas` (carrier) through the sidecar; SIPp must succeed on both.
fn run(name: &str, uac: &str, uas: &str, n: usize) -> Run {
    let uas_port = free_port();
    let side = start(name, uas_port);
    let log_path = |tag: &str| side.dir.join(format!("{tag}_msgs.log")).display().to_string();
    let (uac_log, uas_log) = (log_path("uac"), log_path("uas"));
    let carrier = sipp(&side.dir, "uas", uas, uas_port, None, n, &["-trace_msg", "-message_file", &uas_log]);
    std::thread::sleep(Duration::from_millis(200));
    let pbx = sipp(
        &side.dir,
        "uac",
        uac,
        free_port(),
        Some(side.port),
        n,
        &["-r", "10", "-trace_msg", "-message_file", &uac_log],
    );
    let (a, b) = (pbx.wait(), carrier.wait());
    // Let teardown settle (BYE retransmissions, Deleted events), then stop.
    std::thread::sleep(Duration::from_millis(300));
    side.stop.store(true, Ordering::Relaxed);
    let summary = side.handle.join().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let cdrs = read(&side.dir.join("cdr.jsonl")).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let r = Run {
        summary,
        cdrs,
        uac_log: read(Path::new(&uac_log)),
        uas_log: read(Path::new(&uas_log)),
        cmds: side.cmds.lock().unwrap().clone(),
    };
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}\n--- uac log\n{}\n--- uas log\n{}", r.uac_log, r.uas_log);
    assert_eq!((a.successful, a.failed, b.successful, b.failed), (n as u64, 0, n as u64, 0));
    assert_clean(&r.summary);
    assert_eq!(r.summary.metrics.calls_answered, n as u64);
    assert_eq!(r.cdrs.len(), n);
    assert!(r.cdrs.iter().all(|c| c["disposition"] == 200 && c["end_reason"] == "caller_bye"), "{:?}", r.cdrs);
    r
}

// ------------------------------------------------------------------ SIPp message logs

/// One SIP message SIPp received, from its `-trace_msg` log.
#[derive(Debug)]
struct Msg {
    start: String,
    call_id: String,
    cseq: String,
    body: String,
}

impl Msg {
    fn header(text: &str, name: &str) -> String {
        text.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }
    /// SDP `c=` address.
    fn c_ip(&self) -> Option<IpAddr> {
        self.body.lines().find_map(|l| l.trim().strip_prefix("c=IN IP4 ")).and_then(|a| a.trim().parse().ok())
    }
    /// SDP audio port and payload types.
    fn m_audio(&self) -> Option<(u16, Vec<String>)> {
        let l = self.body.lines().find_map(|l| l.trim().strip_prefix("m=audio "))?;
        let mut it = l.split_whitespace();
        let port = it.next()?.parse().ok()?;
        let _proto = it.next()?;
        Some((port, it.map(str::to_string).collect()))
    }
    /// SDP `o=` session version.
    fn o_version(&self) -> Option<u64> {
        self.body
            .lines()
            .find_map(|l| l.trim().strip_prefix("o="))
            .and_then(|o| o.split_whitespace().nth(2)?.parse().ok())
    }
    fn has(&self, line: &str) -> bool {
        self.body.lines().any(|l| l.trim() == line)
    }
}

/// Every message SIPp logged as received (retransmissions included).
fn received(log: &str) -> Vec<Msg> {
    log.split("----------------------------------------------- ")
        .filter(|chunk| chunk.lines().nth(1).is_some_and(|l| l.contains("message received")))
        .filter_map(|chunk| {
            // Timestamp line, "UDP message received [n] bytes :", blank line, then the message.
            let text: String = chunk.lines().skip(3).collect::<Vec<_>>().join("\n");
            let start = text.lines().next()?.trim().to_string();
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            Some(Msg {
                start,
                call_id: Msg::header(head, "Call-ID"),
                cseq: Msg::header(head, "CSeq"),
                body: body.trim().to_string(),
            })
        })
        .collect()
}

/// Received messages selected by start line prefix and CSeq, one per (Call-ID, CSeq) (first copy).
fn pick<'a>(msgs: &'a [Msg], start: &str, cseq: &str) -> Vec<&'a Msg> {
    let mut seen = std::collections::HashSet::new();
    msgs.iter().filter(|m| m.start.starts_with(start) && m.cseq == cseq && seen.insert(m.call_id.clone())).collect()
}

fn relay_port(m: &Msg) -> u16 {
    assert_eq!(m.c_ip(), Some(RELAY_IP.parse().unwrap()), "c= is not the relay's: {m:?}");
    let (port, _) = m.m_audio().unwrap_or_else(|| panic!("no m=audio: {m:?}"));
    assert!((PORT_MIN..=PORT_MAX).contains(&port) && port % 2 == 0, "m= port {port} not from the relay pool: {m:?}");
    port
}

// ------------------------------------------------------------------ datapath command log

/// Per session: its Create spec and its Update specs, in order.
type SessionLog = HashMap<SessionId, (SessionSpec, Vec<SessionSpec>)>;

/// Per session: the Create spec and every Update spec, in order; plus the Deletes.
fn sessions(cmds: &[Command]) -> (SessionLog, Vec<SessionId>) {
    let mut map: SessionLog = HashMap::new();
    let mut deleted = Vec::new();
    for c in cmds {
        match *c {
            Command::Create(s) => assert!(map.insert(s.id, (s, Vec::new())).is_none(), "session created twice"),
            Command::Update(s) => map.get_mut(&s.id).expect("Update of unknown session").1.push(s),
            Command::Delete(id) => deleted.push(id),
            Command::Dump { .. } => {}
        }
    }
    (map, deleted)
}

fn pts(s: &SessionSpec, leg: usize) -> Vec<u8> {
    s.legs[leg].pt_map.iter().map(|e| e.pt).collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn update_in_dialog_relays_offer_and_answer() {
    need_sipp!();
    const N: usize = 5;
    let r = run("update", "uac_update", "uas_update", N);

    // Callee side: the INVITE and both UPDATEs carry the relay's address and the same relay port,
    // the direction the caller asked for, and a bumped o= version each time.
    let uas = received(&r.uas_log);
    let invites = pick(&uas, "INVITE ", "1 INVITE");
    assert_eq!(invites.len(), N, "{}", r.uas_log);
    let inv_by_call: HashMap<&str, &Msg> = invites.iter().map(|m| (m.call_id.as_str(), *m)).collect();
    for (cseq, dir) in [("2 UPDATE", "a=sendonly"), ("3 UPDATE", "a=sendrecv")] {
        let ups = pick(&uas, "UPDATE ", cseq);
        assert_eq!(ups.len(), N, "UPDATE {cseq} at the callee:\n{}", r.uas_log);
        for u in ups {
            let inv = inv_by_call[u.call_id.as_str()];
            assert_eq!(relay_port(u), relay_port(inv), "UPDATE moved the callee-facing relay port: {u:?}");
            assert!(u.has(dir), "direction not carried: {u:?}");
            assert_eq!(u.m_audio().unwrap().1, ["8", "0", "101"], "{u:?}");
            assert!(u.o_version().unwrap() > inv.o_version().unwrap(), "o= version not bumped: {u:?} vs {inv:?}");
        }
    }
    // The first UPDATE must be a later version than the INVITE, the second later than the first.
    for inv in &invites {
        let v: Vec<u64> = ["2 UPDATE", "3 UPDATE"]
            .iter()
            .map(|c| {
                pick(&uas, "UPDATE ", c).into_iter().find(|m| m.call_id == inv.call_id).unwrap().o_version().unwrap()
            })
            .collect();
        assert!(inv.o_version().unwrap() < v[0] && v[0] < v[1], "o= versions {v:?}");
    }

    // Caller side: the 200 to each UPDATE is the relay's SDP on the caller-facing relay port,
    // with the callee's answered direction.
    let uac = received(&r.uac_log);
    let ok_inv = pick(&uac, "SIP/2.0 200", "1 INVITE");
    assert_eq!(ok_inv.len(), N, "{}", r.uac_log);
    let ok_by_call: HashMap<&str, &Msg> = ok_inv.iter().map(|m| (m.call_id.as_str(), *m)).collect();
    for (cseq, dir) in [("2 UPDATE", "a=recvonly"), ("3 UPDATE", "a=sendrecv")] {
        let oks = pick(&uac, "SIP/2.0 200", cseq);
        assert_eq!(oks.len(), N, "200 to {cseq} at the caller:\n{}", r.uac_log);
        for ok in oks {
            assert_eq!(relay_port(ok), relay_port(ok_by_call[ok.call_id.as_str()]), "{ok:?}");
            assert!(ok.has(dir), "answer direction not carried: {ok:?}");
            assert!(
                ok.o_version().unwrap() > ok_by_call[ok.call_id.as_str()].o_version().unwrap(),
                "o= version not bumped: {ok:?}"
            );
        }
    }

    // Datapath: one session per call, Updated on the answer and on each UPDATE, ports unchanged,
    // remotes = SIPp's media addresses; every session deleted.
    let (sess, deleted) = sessions(&r.cmds);
    assert_eq!(sess.len(), N);
    assert_eq!(deleted.len(), N);
    for (id, (create, updates)) in &sess {
        assert!(deleted.contains(id));
        assert_eq!(updates.len(), 3, "expected Update on answer + 2 UPDATEs, got {updates:?}");
        for u in updates {
            assert_eq!(
                [u.legs[0].local, u.legs[1].local],
                [create.legs[0].local, create.legs[1].local],
                "local ports changed"
            );
            for l in &u.legs {
                let rem = l.remote.expect("remote known after answer");
                assert_eq!(rem.ip(), IpAddr::from([127, 0, 0, 1]));
                assert!(!(PORT_MIN..=PORT_MAX).contains(&rem.port()), "remote is a relay port: {rem}");
            }
        }
    }
}

#[test]
fn codec_change_by_reinvite() {
    need_sipp!();
    const N: usize = 5;
    let r = run("codec", "uac_codec", "uas_codec", N);

    // Callee: the first offer has PCMA+PCMU(+DTMF), the re-INVITE offer PCMU only.
    let uas = received(&r.uas_log);
    let first = pick(&uas, "INVITE ", "1 INVITE");
    let re = pick(&uas, "INVITE ", "2 INVITE");
    assert_eq!((first.len(), re.len()), (N, N), "{}", r.uas_log);
    let first_by_call: HashMap<&str, &Msg> = first.iter().map(|m| (m.call_id.as_str(), *m)).collect();
    for m in &first {
        assert_eq!(m.m_audio().unwrap().1, ["8", "0", "101"], "{m:?}");
    }
    for m in &re {
        assert_eq!(relay_port(m), relay_port(first_by_call[m.call_id.as_str()]), "{m:?}");
        assert_eq!(m.m_audio().unwrap().1, ["0"], "callee offered more than PCMU: {m:?}");
        assert!(
            m.o_version().unwrap() > first_by_call[m.call_id.as_str()].o_version().unwrap(),
            "o= version not bumped: {m:?}"
        );
        assert!(m.has("a=rtpmap:0 PCMU/8000") && !m.body.contains("PCMA") && !m.body.contains("rtpmap:8"), "{m:?}");
    }

    // Caller: the answer to its re-INVITE lists PCMU only, on the same relay address/port.
    let uac = received(&r.uac_log);
    let ok1 = pick(&uac, "SIP/2.0 200", "1 INVITE");
    let ok2 = pick(&uac, "SIP/2.0 200", "2 INVITE");
    assert_eq!((ok1.len(), ok2.len()), (N, N), "{}", r.uac_log);
    let ok1_by_call: HashMap<&str, &Msg> = ok1.iter().map(|m| (m.call_id.as_str(), *m)).collect();
    for m in &ok2 {
        assert_eq!(relay_port(m), relay_port(ok1_by_call[m.call_id.as_str()]), "{m:?}");
        assert_eq!(m.m_audio().unwrap().1, ["0"], "caller's answer lists more than PCMU: {m:?}");
        assert!(m.has("a=rtpmap:0 PCMU/8000") && !m.body.contains("PCMA"), "{m:?}");
        assert!(
            m.o_version().unwrap() > ok1_by_call[m.call_id.as_str()].o_version().unwrap(),
            "o= version not bumped: {m:?}"
        );
    }

    // Datapath: after the answer both legs carry PCMA and PCMU; after the re-INVITE PT 0 only.
    let (sess, deleted) = sessions(&r.cmds);
    assert_eq!((sess.len(), deleted.len()), (N, N));
    for (_, updates) in sess.values() {
        assert_eq!(updates.len(), 2, "expected Update on answer + re-INVITE, got {updates:?}");
        for leg in 0..2 {
            let p = pts(&updates[0], leg);
            assert!(p.contains(&8) && p.contains(&0), "leg {leg} after answer: {p:?}");
            assert_eq!(pts(&updates[1], leg), [0], "leg {leg} after the PCMU-only re-INVITE: {:?}", updates[1]);
        }
    }
}
