//! #19 several edges behind a SIP load balancer: Kamailio 5.6 (Debian's package, started here
//! with `tests/kamailio/dispatcher.cfg` on a loopback address of its own, 127.0.0.6) is the
//! PBX-facing balancer in front of two edges. It pings both with OPTIONS, sends new INVITEs
//! round-robin and Record-Routes them, so the PBX's ACK and BYE come back through it and reach
//! the edge that holds the call (the Request-URI is that edge's Contact). Each edge's PBX trunk
//! admits only the balancer's address. Ten calls: five on each edge, all ended cleanly; two
//! calls cancelled while ringing, the CANCEL reaching the edge of each. Then
//! one edge stops: the calls sent to it time out at the balancer (no answer within 1 s) and
//! fail over to the other edge, the stopped one is marked down, and every new call goes to the
//! edge that is left.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::servers::{available, Kamailio};
use common::*;

const BALANCER_IP: [u8; 4] = [127, 0, 0, 6];

/// The balancer: Kamailio with `dispatcher.cfg` over the `edges` (set 1).
fn balancer(dir: &Path, listen: SocketAddr, edges: &[SocketAddr]) -> Kamailio {
    let list = dir.join("dispatcher.list");
    let lines: String = edges.iter().map(|e| format!("1 sip:{e} 0 0\n")).collect();
    std::fs::write(&list, lines).unwrap();
    let vars = [
        ("LISTEN", listen.to_string()),
        ("LIST", list.to_str().unwrap().to_string()),
        ("PING", "1".to_string()),
        ("THRESHOLD", "3".to_string()),
    ];
    Kamailio::start(dir, "balancer", "dispatcher.cfg", &vars, &[], listen)
}

/// `what` lines of the balancer's log for requests sent to `edge` (the line's end, so that a
/// port is not taken for another one it prefixes).
fn sent(lb: &Kamailio, what: &str, edge: SocketAddr) -> usize {
    let end = format!(" to sip:{edge}");
    lb.count_where(|l| l.contains(what) && l.ends_with(&end))
}

/// An edge whose PBX trunk admits only the balancer, its carrier the shared SIPp UAS.
fn edge(name: &str, carrier: u16) -> Sidecar {
    Sidecar::start(name, &[carrier], |c| {
        c.trunks[0].acl = vec!["127.0.0.6/32".parse().unwrap()];
    })
}

#[test]
fn balancer_spreads_calls_keeps_dialogs_on_their_edge_and_fails_over() {
    need_sipp!();
    if !available("kamailio") {
        eprintln!("kamailio not installed (scripts/setup installs it); skipping");
        return;
    }
    let carrier_port = free_port();
    let a = edge("balancer-edge-a", carrier_port);
    let b = edge("balancer-edge-b", carrier_port);
    let (ea, eb) = (SocketAddr::from(([127, 0, 0, 1], a.port)), SocketAddr::from(([127, 0, 0, 1], b.port)));
    let dir: PathBuf = a.dir.to_path_buf();
    let lb_addr = SocketAddr::from((BALANCER_IP, free_port()));
    let lb = balancer(&dir, lb_addr, &[ea, eb]);
    // One carrier behind both edges answers every call.
    let carrier = sipp(&dir, "carrier-uas", "uas_basic", carrier_port, None, 10, &[]);
    // Both edges answer the balancer's OPTIONS pings (the PBX trunk's ACL is the balancer):
    // three unanswered ones, a second apart and each given 1 s, would have marked an edge down.
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(lb.count("EDGE DOWN"), 0, "both edges answer the pings");

    // Ten calls from the PBX to the balancer: round-robin, five per edge; the ACK and the BYE
    // follow the Record-Route through the balancer to the edge's Contact.
    let pbx =
        sipp_to(&dir, "pbx-uac", "uac_routed", free_port(), Some(lb_addr), 10, &["-i", "127.0.0.2", "-r", "5"]).wait();
    assert_eq!((pbx.successful, pbx.failed), (10, 0), "{pbx:?}");
    assert_eq!((sent(&lb, "DISPATCH ", ea), sent(&lb, "DISPATCH ", eb)), (5, 5), "round-robin");
    let byes = |e: SocketAddr| lb.count_where(|l| l.contains("IN-DIALOG BYE") && l.ends_with(&format!("@{e}")));
    assert_eq!((byes(ea), byes(eb)), (5, 5), "every BYE through the balancer to the edge of its call");
    assert_eq!(lb.count("FAILOVER"), 0);
    assert_eq!(carrier.wait().successful, 10);

    // Two calls the PBX cancels while they ring, one on each edge: the CANCEL follows its
    // INVITE's transaction to the edge that has the call, the 487 comes back, the balancer
    // absorbs the PBX's ACK and sends its own.
    let carrier = sipp(&dir, "carrier-cancelled", "uas_cancelled", carrier_port, None, 2, &[]);
    let pbx = sipp_to(&dir, "pbx-cancel", "uac_cancel", free_port(), Some(lb_addr), 2, &["-i", "127.0.0.2", "-r", "5"])
        .wait();
    assert_eq!((pbx.successful, pbx.failed), (2, 0), "{pbx:?}");
    assert_eq!(carrier.wait().successful, 2);
    assert_eq!(lb.count("CANCEL "), 2);
    assert_eq!((sent(&lb, "DISPATCH ", ea), sent(&lb, "DISPATCH ", eb)), (6, 6), "round-robin");
    let carrier = sipp(&dir, "carrier-uas2", "uas_basic", carrier_port, None, 6 + 4, &[]);

    // Edge B stops. The calls the balancer sends it meet no answer within fr_timer (1 s): the
    // first such timeout marks B down (well before three unanswered pings would), and each of
    // those calls goes on to A.
    let sb = b.stop();
    assert_eq!(sb.metrics.calls_answered, 5, "edge B: {:?}", sb.metrics);
    assert_eq!(sb.metrics.calls_ended, 5 + 1, "edge B: {:?}", sb.metrics);
    assert_eq!(sb.metrics.finals_to_caller.get(&487), Some(&1), "edge B: {:?}", sb.metrics);
    assert_clean(&sb);
    assert_eq!(sb.metrics.bad_input.get("OPTIONS From Unknown Source"), None, "the pings are a trunk's");
    let pbx =
        sipp_to(&dir, "pbx-uac2", "uac_routed", free_port(), Some(lb_addr), 6, &["-i", "127.0.0.2", "-r", "5"]).wait();
    assert_eq!((pbx.successful, pbx.failed), (6, 0), "after edge B stopped: {pbx:?}");
    // The calls sent to B before the first of them timed out (one or more, by timing) each
    // failed over to A; after that B was skipped.
    let n = lb.count(&format!("EDGE FAILED sip:{eb} "));
    assert!(n >= 1, "a call tried B");
    assert_eq!(sent(&lb, "FAILOVER ", ea), n, "each failed over to A");
    assert_eq!(sent(&lb, "FAILOVER ", eb), 0);
    assert_eq!((sent(&lb, "DISPATCH ", ea), sent(&lb, "DISPATCH ", eb)), (6 + 6 - n, 6 + n));
    let down =
        |l: &str| l.contains("EDGE DOWN") && (l.contains(&format!("sip:{eb} ")) || l.contains(&format!("sip:{eb})")));
    assert_eq!(lb.count_where(down), 1, "B reported down once");
    assert_eq!(lb.count("EDGE DOWN"), 1, "A never");

    // B stays down (its pings go unanswered): new calls go to A alone, none waits for B.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(lb.count("EDGE UP"), 0);
    let pbx =
        sipp_to(&dir, "pbx-uac3", "uac_routed", free_port(), Some(lb_addr), 4, &["-i", "127.0.0.2", "-r", "5"]).wait();
    assert_eq!((pbx.successful, pbx.failed), (4, 0), "with edge B down: {pbx:?}");
    assert_eq!(lb.count("EDGE FAILED"), n, "no call tried B");
    assert_eq!((sent(&lb, "DISPATCH ", ea), sent(&lb, "DISPATCH ", eb)), (6 + 6 - n + 4, 6 + n));

    let got = carrier.wait();
    assert_eq!(got.successful, 6 + 4, "{got:?}");
    let sa = a.stop();
    assert_eq!(sa.metrics.calls_answered, 5 + 6 + 4, "edge A: {:?}", sa.metrics);
    assert_eq!(sa.metrics.calls_ended, 5 + 1 + 6 + 4, "edge A: {:?}", sa.metrics);
    assert_eq!(sa.metrics.finals_to_caller.get(&487), Some(&1), "edge A: {:?}", sa.metrics);
    assert_clean(&sa);
    assert_eq!(sa.metrics.bad_input.get("OPTIONS From Unknown Source"), None, "the pings are a trunk's");
    drop(lb);
}
