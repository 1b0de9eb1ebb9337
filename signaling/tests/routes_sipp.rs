//! Routes with failover trunks (#16), against SIPp: a route of three trunks where the first
//! answers 503, the second never answers and the third answers connects on the third, and its
//! CDR lists every attempt with its outcome.

#[macro_use]
mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use xtrunk_config::TrunkRole;

#[test]
fn route_hunts_over_three_trunks_and_the_cdr_lists_the_attempts() {
    need_sipp!();
    let (busy, live) = (free_port(), free_port());
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap(); // bound, never answers
    let silent_port = silent.local_addr().unwrap().port();
    let side = Sidecar::start("routes", &[busy], |c| {
        c.trunks.push(trunk("carrier-b", TrunkRole::Carrier, &[], &[silent_port]));
        c.trunks.push(trunk("carrier-c", TrunkRole::Carrier, &[], &[live]));
        c.routes[0].then = vec!["carrier-b".into(), "carrier-c".into()];
    });
    let c1 = sipp(&side.dir, "uas503", "uas_503", busy, None, 2, &[]);
    let c3 = sipp(&side.dir, "uas", "uas_basic", live, None, 2, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 2, &["-r", "10"]);
    let (a, b1, b3) = (pbx.wait(), c1.wait(), c3.wait());
    let took = t0.elapsed();
    let cdrs = side.cdrs();
    let s = side.stop();
    assert!(a.ok && b1.ok && b3.ok, "{a:?} {b1:?} {b3:?}");
    assert_eq!(a.successful, 2);
    println!("2 calls over [503, silent, live] trunks in {took:?}");
    assert_eq!(cdrs.len(), 2);
    for c in &cdrs {
        let attempts: Vec<(String, u64)> = c["attempts"]
            .as_array()
            .unwrap_or_else(|| panic!("no attempts in {c}"))
            .iter()
            .map(|a| (a["trunk"].as_str().unwrap().to_string(), a["code"].as_u64().unwrap()))
            .collect();
        let want = [("carrier".to_string(), 503), ("carrier-b".to_string(), 408), ("carrier-c".to_string(), 200)];
        assert_eq!(attempts, want, "{c}");
        assert_eq!(c["trunk_out"], "carrier-c");
        assert_eq!(c["disposition"], 200);
    }
    assert_clean(&s);
}
