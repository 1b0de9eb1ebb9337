//! Restart safety on the sans-IO core: a call answered by core #1 is journaled (and its outbound
//! INVITE hides the caller's topology); core #2, given the journal and the datapath's dump,
//! resumes it without sending anything. The full resume/teardown and the release of what cannot
//! be resumed are in `restart_resume.rs`.

use std::time::{Duration, Instant, SystemTime};

use xtrunk_signaling::journal::{JournalEntry, JournalOp};
use xtrunk_signaling::media::LoopbackMedia;
use xtrunk_signaling::sip::msg::HName;
use xtrunk_signaling::testing::{self, Pair};
use xtrunk_signaling::transport::{Dest, Transport};

fn cfg() -> xtrunk_config::Config {
    let mut c = xtrunk_config::Config::embedded_default().unwrap();
    c.media.port_min = 30_000;
    c.media.port_max = 30_099;
    c
}

#[test]
fn journaled_call_is_resumed_after_restart() {
    let cfg = cfg();
    let local = "127.0.0.1:5060".parse().unwrap();
    let pbx = "127.0.0.1:5062".parse().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let t0 = Instant::now();
    let mut rig =
        Pair::from_core(testing::core(&cfg, local, t0, SystemTime::now(), 7), LoopbackMedia::default(), local, t0);
    let from_pbx = Dest { transport: Transport::Udp, local, remote: pbx };
    let from_carrier = Dest { transport: Transport::Udp, local, remote: carrier };
    let sdp = "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";
    let invite = format!("INVITE sip:4930123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKa1;rport\r\nFrom: <sip:100@pbx>;tag=pa\r\nTo: <sip:4930123@x>\r\nCall-ID: callA\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
    rig.input_now(from_pbx, invite.as_bytes());
    assert!(rig.out.iter().any(|t| t.dest.remote == carrier), "{:#?}", rig.dump_out());
    let b_inv = rig.take(carrier, |m| m.uri().is_some());
    // Topology hiding: nothing of the caller's dialog leaks.
    let text = String::from_utf8(b_inv.to_bytes()).unwrap();
    for leak in ["callA", "pa", "5062", "7000", "z9hG4bKa1"] {
        assert!(!text.contains(leak), "{leak} leaked into {text}");
    }
    // The carrier answers.
    let mut ok = format!("SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=cb\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@{carrier}>\r\nContent-Type: application/sdp\r\n", b_inv.header(&HName::Via).unwrap(), b_inv.header(&HName::From).unwrap(), b_inv.header(&HName::To).unwrap(), b_inv.call_id().unwrap());
    let asdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 8000 RTP/AVP 8\r\n";
    ok.push_str(&format!("Content-Length: {}\r\n\r\n{asdp}", asdp.len()));
    rig.now += Duration::from_millis(10);
    rig.out.clear();
    rig.input_now(from_carrier, ok.as_bytes());
    assert!(rig.out.iter().any(|t| t.dest.remote == pbx && t.data.starts_with(b"SIP/2.0 200")));
    let entries: Vec<JournalEntry> =
        rig.ops.iter().filter_map(|o| if let JournalOp::Add(e) = o { Some(e.clone()) } else { None }).collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(rig.core.ports().in_use(), 2);
    let Pair { core, media, .. } = rig;
    drop(core); // the crash

    // Restart: a new core, the same datapath (media still holds the session).
    let sessions: Vec<_> = media.sessions().values().copied().collect();
    assert_eq!(sessions.len(), 1);
    let t1 = t0 + Duration::from_secs(5);
    let mut core2 = testing::core(&cfg, local, t1, SystemTime::now(), 8);
    core2.recover(t1, &sessions, &entries);
    assert_eq!(core2.ports().in_use(), 2, "ports of the resumed call are occupied");
    assert_eq!(core2.active_calls(), 1, "the answered call is resumed");
    assert!(core2.poll_transmit().is_none(), "no BYE: the call goes on");
    assert!(core2.poll_media().is_none(), "the session is not touched");
    assert!(core2.poll_journal().is_none(), "the journal already holds the call");
}
