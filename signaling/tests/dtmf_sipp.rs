//! #18 DTMF in CDRs, end to end: SIPp as the PBX keys `1 2 3 #` as RFC 4733 events (SIPp's
//! DTMF pcaps) through the real relay (`common::MediaEdge`); the datapath reports each digit's
//! start and end over the ring (`Event::Dtmf`) and the call's CDR has the digits and their count.

#[macro_use]
mod common;

use common::*;

#[test]
fn rfc4733_digits_reach_the_cdr() {
    need_sipp!();
    let uas_port = free_port();
    let edge = MediaEdge::start("dtmf-cdr", (24_400, 24_499), &[uas_port], |_| {});
    let carrier = sipp(&edge.dir, "uas", "uas_basic", uas_port, None, 1, &[]);
    let pbx = sipp(&edge.dir, "uac", "uac_dtmf_keys", free_port(), Some(edge.port), 1, &[]);
    let (a, b) = (pbx.wait(), carrier.wait());
    let (s, cdrs) = edge.stop();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_clean(&s);
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0]["dtmf"], "123#", "{}", cdrs[0]);
    assert_eq!(cdrs[0]["dtmf_count"], 4, "{}", cdrs[0]);
}
