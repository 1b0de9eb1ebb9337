//! #19 two edges (two sidecars, in this process) share one account's channel limit through a
//! real `redis-server`: SIPp holds the account's 3 channels up through edge A, so edge B refuses
//! the account's next calls, and takes them once A's calls have ended.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::servers::{available, Redis};
use common::*;
use xtrunk_config::{Account, SharedKind};

fn shared_edge(name: &str, carrier: u16, redis_port: u16) -> Sidecar {
    Sidecar::start(name, &[carrier], |c| {
        c.shared.kind = SharedKind::Redis;
        c.shared.url = format!("redis://127.0.0.1:{redis_port}/0");
        c.shared.prefix = format!("shared-sipp-{}:", std::process::id());
        let mut acme: Account =
            serde_json::from_value(serde_json::json!({"name": "acme", "dids": ["15550000000-15550009999"]})).unwrap();
        acme.limits.channels = Some(3);
        acme.destinations.require_owned_caller_id = Some(false);
        c.accounts = vec![acme];
        c.trunks[0].account = Some("acme".into());
    })
}

#[test]
fn an_accounts_channels_hold_across_two_edges() {
    need_sipp!();
    if !available("redis-server") {
        eprintln!("redis-server not installed (scripts/setup installs it); skipping");
        return;
    }
    let dir = tmpdir("shared-sipp-redis");
    let redis = Redis::start(free_port(), &dir);
    let redis_port = redis.port;
    let uas_port = free_port();
    let (a, b) = (shared_edge("shared-a", uas_port, redis_port), shared_edge("shared-b", uas_port, redis_port));
    let carrier = sipp(&a.dir, "uas", "uas_basic", uas_port, None, 5, &[]);
    // Three calls held 4 s through edge A fill the account.
    let held = sipp(
        &a.dir,
        "uac-a",
        "uac_basic",
        free_port(),
        Some(a.port),
        3,
        &["-r", "10", "-d", "4000", "-s", "+15551234567"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let refused =
        sipp(&b.dir, "uac-b", "uac_basic", free_port(), Some(b.port), 2, &["-r", "10", "-s", "+15551234567"]).wait();
    let held = held.wait();
    let later =
        sipp(&b.dir, "uac-b2", "uac_basic", free_port(), Some(b.port), 2, &["-r", "10", "-s", "+15551234567"]).wait();
    let got = carrier.wait();
    let (sa, sb) = (a.stop(), b.stop());
    drop(redis);
    assert_eq!(
        (held.successful, held.failed),
        (3, 0),
        "edge A: {held:?} {:?} {:?}",
        sa.metrics.finals_to_caller,
        sa.metrics.admission_rejects
    );
    assert_eq!((refused.successful, refused.failed), (0, 2), "edge B while A holds the 3 channels: {refused:?}");
    assert_eq!((later.successful, later.failed), (2, 0), "edge B once they ended: {later:?}");
    assert_eq!(got.successful, 5, "{got:?}");
    assert_eq!(
        sb.metrics.admission_rejects.get("channels_full_account").map(|m| m.values().sum::<u64>()),
        Some(2),
        "{:?}",
        sb.metrics.admission_rejects
    );
    assert_clean(&sa);
    assert_clean(&sb);
}

/// Sends one REGISTER for `office` from `sock` to `edge` and returns the answer.
fn register(sock: &std::net::UdpSocket, edge: std::net::SocketAddr) -> String {
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "REGISTER sip:{edge} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKfleet1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:office@edge>;tag=f1\r\nTo: <sip:office@edge>\r\nCall-ID: reg-fleet-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:office@{me}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), edge).unwrap();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to REGISTER");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A PBX registered through edge A receives a call that arrives at edge B: B learns from the
/// store that A holds the trunk's bindings and sends the call to A, which takes it to the PBX
/// over the flow it registered on.
#[test]
fn a_pbx_registered_at_one_edge_gets_a_call_arriving_at_another() {
    use xtrunk_config::{Route, TrunkKind, TrunkRole};
    need_sipp!();
    if !available("redis-server") {
        eprintln!("redis-server not installed (scripts/setup installs it); skipping");
        return;
    }
    let dir = tmpdir("fleet-reg-redis");
    let redis = Redis::start(free_port(), &dir);
    let redis_port = redis.port;
    let prefix = format!("fleet-reg-{}:", std::process::id());
    let edge = |name: &str, ip: [u8; 4]| {
        let prefix = prefix.clone();
        Sidecar::start(name, &[], move |c| {
            c.sip.listen[0].addr.set_ip(ip.into());
            c.shared.kind = SharedKind::Redis;
            c.shared.url = format!("redis://127.0.0.1:{redis_port}/0");
            c.shared.prefix = prefix;
            let mut office = trunk("office", TrunkRole::Customer, &["127.0.0.2/32"], &[]);
            office.kind = TrunkKind::AcceptRegister;
            c.trunks = vec![
                trunk("carrier", TrunkRole::Carrier, &["127.0.0.1/32"], &[]),
                office,
                trunk("fleet", TrunkRole::Carrier, &["127.0.0.7/32", "127.0.0.8/32"], &[]),
            ];
            c.routes = vec![Route::to("", Some("carrier"), "office"), Route::to("", Some("fleet"), "office")];
        })
    };
    let a = edge("fleet-a", [127, 0, 0, 7]);
    let b = edge("fleet-b", [127, 0, 0, 8]);
    let (a_addr, b_addr) = (SocketAddr::from(([127, 0, 0, 7], a.port)), SocketAddr::from(([127, 0, 0, 8], b.port)));
    let pbx_port = free_port();
    let sock = std::net::UdpSocket::bind(("127.0.0.2", pbx_port)).unwrap();
    let ok = register(&sock, a_addr);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    drop(sock);
    let pbx = sipp(&a.dir, "office", "uas_basic", pbx_port, None, 1, &["-i", "127.0.0.2"]);
    // Edge B reads the fleet's bindings every 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    let call = sipp_to(&b.dir, "carrier", "uac_basic", free_port(), Some(b_addr), 1, &["-s", "15550001"]).wait();
    let got = pbx.wait();
    let (sa, sb) = (a.stop(), b.stop());
    drop(redis);
    assert_eq!(
        (call.successful, got.successful),
        (1, 1),
        "the call at B reached the PBX registered at A: {call:?} {got:?}"
    );
    assert_eq!((sa.metrics.calls_answered, sb.metrics.calls_answered), (1, 1), "through both edges");
    assert_clean(&sa);
    assert_clean(&sb);
}
