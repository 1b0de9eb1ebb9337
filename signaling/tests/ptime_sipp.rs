//! #18 re-packetising end to end: SIPp as the PBX plays SIPp's PCMA pcap (30 ms packets) with
//! `a=ptime:20`; the carrier (SIPp, `-rtp_echo`) asks for `a=ptime:60`. Through the real relay
//! (`common::MediaEdge`) the carrier receives 60 ms packets (half as many as the PBX sent:
//! its echo, counted on the carrier leg, shows it) and the PBX gets the echo back as 20 ms ones
//! (three per 60 ms packet, the relay's extra packets on the socket backend).

#[macro_use]
mod common;

use std::sync::atomic::Ordering;

use common::*;

#[test]
fn thirty_ms_pbx_sixty_ms_carrier_twenty_ms_back() {
    need_sipp!();
    let uas_port = free_port();
    let edge = MediaEdge::start("ptime-sipp", (24_500, 24_599), &[uas_port], |_| {});
    let stats = edge.stats.clone();
    let carrier = sipp(&edge.dir, "uas", "uas_ptime60", uas_port, None, 1, &["-rtp_echo"]);
    let pbx = sipp(&edge.dir, "uac", "uac_media", free_port(), Some(edge.port), 1, &[]);
    let (a, b) = (pbx.wait(), carrier.wait());
    let (s, cdrs) = edge.stop();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_clean(&s);
    let pkts = |leg: usize| cdrs[0]["legs"][leg]["packets"].as_u64().unwrap_or(0);
    let (rx, tx) = (stats.rx_packets.load(Ordering::Relaxed), stats.tx_packets.load(Ordering::Relaxed));
    eprintln!("PBX leg received {}, carrier leg {}; datapath rx {rx} tx {tx}", pkts(0), pkts(1));
    // 30 ms in, 60 ms to the carrier: its echo is half the PBX's count (±2 for the edges).
    assert!(pkts(0) > 50, "{}", cdrs[0]);
    assert!(pkts(1).abs_diff(pkts(0) / 2) <= 2, "{}", cdrs[0]);
    // Sent: the carrier's half, and three 20 ms packets per echoed 60 ms one.
    let want = pkts(0) / 2 + 3 * pkts(1);
    assert!(tx.abs_diff(want) <= 6, "tx {tx}, want about {want}");
}
