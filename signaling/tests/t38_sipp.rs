//! #18 T.38 end to end with SIPp on both sides and the real relay (the sidecar with the
//! in-process socket datapath, `common::MediaEdge`):
//! - the PBX's re-INVITE to `m=image … udptl t38` reaches the carrier on the relay, the carrier
//!   accepts, and UDPTL flows both ways: the PBX plays a UDPTL pcap (`play_pcap_image`), the
//!   carrier echoes it (`-rtp_echo`); both legs' CDR counts show it crossed the relay;
//! - fax fallback: a G.729 carrier (the call transcodes) refuses T.38 with 488; the PBX gets the
//!   488 and the edge re-offers the carrier leg G.711 only, which it accepts (checked by the
//!   carrier's scenario), so the fax stays on G.711 with no lossy codec in the path.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use xtrunk_datapath::wire::udptl;

/// `n` UDPTL packets (T.38 §9.1, redundancy with up to two earlier IFPs), 20 ms apart.
fn udptl_pcap(path: &std::path::Path, n: usize) {
    let ifps: Vec<Vec<u8>> = (0..n).map(|i| vec![0x06, 0x00, i as u8, 0xA5, 0x5A, (i * 7) as u8]).collect();
    let pkts: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let older: Vec<&[u8]> = (1..=2).filter_map(|k| i.checked_sub(k).map(|j| ifps[j].as_slice())).collect();
            let mut b = [0u8; 256];
            let len = udptl::emit_redundant(&mut b, i as u16, &ifps[i], &older).unwrap();
            assert!(udptl::Udptl::new_checked(&b[..len]).is_ok());
            b[..len].to_vec()
        })
        .collect();
    pcap::write_udp(path, &pkts, 20_000, (7000, 7000));
}

#[test]
fn t38_reinvite_end_to_end_relays_udptl_both_ways() {
    need_sipp!();
    let uas_port = free_port();
    let edge = MediaEdge::start("t38-sipp", (24_200, 24_299), &[uas_port], |_| {});
    const N: usize = 50;
    udptl_pcap(&edge.dir.join("udptl.pcap"), N);
    let carrier = sipp(&edge.dir, "uas", "uas_t38", uas_port, None, 1, &["-rtp_echo"]);
    let pbx = sipp(&edge.dir, "uac", "uac_t38", free_port(), Some(edge.port), 1, &[]);
    let (a, b) = (pbx.wait(), carrier.wait());
    std::thread::sleep(Duration::from_millis(200));
    let (s, cdrs) = edge.stop();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_eq!((a.successful, b.successful), (1, 1));
    assert_clean(&s);
    assert_eq!(cdrs.len(), 1);
    let pkts = |leg: usize| cdrs[0]["legs"][leg]["packets"].as_u64().unwrap_or(0);
    eprintln!("UDPTL received: PBX leg {}, carrier leg {}", pkts(0), pkts(1));
    // Leg 0 received the PBX's fax packets; leg 1 the carrier's echo of them, relayed back.
    assert!(pkts(0) >= N as u64 * 9 / 10 && pkts(1) >= N as u64 * 9 / 10, "{}", cdrs[0]);
}

#[test]
fn refused_t38_falls_back_to_g711_without_transcoding() {
    need_sipp!();
    let uas_port = free_port();
    let edge = MediaEdge::start("t38-fallback", (24_300, 24_399), &[uas_port], |c| {
        c.trunks[1].codecs = vec!["G729".into(), "PCMA".into(), "telephone-event".into()];
    });
    let carrier = sipp(&edge.dir, "uas", "uas_t38_refuse", uas_port, None, 1, &[]);
    let pbx = sipp(&edge.dir, "uac", "uac_t38_refused", free_port(), Some(edge.port), 1, &[]);
    let (a, b) = (pbx.wait(), carrier.wait());
    let (s, cdrs) = edge.stop();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_eq!((a.successful, b.successful), (1, 1), "the carrier saw the G.711-only re-offer");
    assert_clean(&s);
    assert_eq!(cdrs.len(), 1);
}
