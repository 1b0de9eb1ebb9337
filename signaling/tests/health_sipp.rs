//! OPTIONS health (#16) against SIPp carriers: a target that stops answering is taken offline
//! after `failures` probes and calls skip it; it comes back after `successes` answers; a carrier
//! is never probed more than once per 10 s.

#[macro_use]
mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::*;
use xtrunk_config::OptionsPing;

/// Reads what reached a silent socket: distinct OPTIONS probes (retransmissions of one probe
/// share its Call-ID) and INVITEs.
fn drain(s: &UdpSocket) -> (usize, usize) {
    let (mut probes, mut invites) = (std::collections::HashSet::new(), 0);
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("OPTIONS ") {
            let cid = text.lines().find(|l| l.to_ascii_lowercase().starts_with("call-id:")).unwrap_or("").to_string();
            probes.insert(cid);
        }
        invites += usize::from(text.starts_with("INVITE "));
    }
    (probes.len(), invites)
}

fn wait_until(t0: Instant, at: Duration) {
    if let Some(d) = at.checked_sub(t0.elapsed()) {
        std::thread::sleep(d);
    }
}

#[test]
fn a_silent_carrier_goes_offline_calls_skip_it_and_it_comes_back() {
    need_sipp!();
    let (a_port, b_port) = (free_port(), free_port());
    let ping = OptionsPing { interval_secs: 10, failures: 2, successes: 2, timeout_ms: 1_000 };
    let t0 = Instant::now();
    let side = Sidecar::start("health", &[a_port, b_port], |c| c.trunks[1].options = ping);
    // B answers probes and calls for the whole test; A answers the first probe, then is silent.
    let b = sipp(&side.dir, "b", "uas_options_or_call", b_port, None, 1000, &["-timeout", "120s"]);
    let a = sipp(&side.dir, "a", "uas_options_or_call", a_port, None, 1000, &["-timeout", "120s"]);
    wait_until(t0, Duration::from_secs(3));
    let a_first = a.kill();
    let silent = UdpSocket::bind(("127.0.0.1", a_port)).unwrap();
    silent.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    // Probes at 10 s and 20 s get no answer within 1 s: offline at ~21 s.
    wait_until(t0, Duration::from_secs(23));
    let (probes_while_silent, _) = drain(&silent);
    let calls_at = Instant::now();
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 3, &["-r", "10"]);
    let out = pbx.wait();
    let took = calls_at.elapsed();
    let (_, invites_to_a) = drain(&silent);
    assert!(out.ok && out.successful == 3, "calls with A offline: {out:?}");
    assert_eq!(invites_to_a, 0, "an offline target was dialled");
    println!(
        "A answered {} probe(s), then got {probes_while_silent} unanswered; 3 calls in {took:?} skipped it",
        a_first.successful
    );
    assert_eq!(probes_while_silent, 2, "probes toward the silent A in 10–23 s");
    // A answers again: the probes at 30 s and 40 s bring it back.
    drop(silent);
    let a = sipp(&side.dir, "a2", "uas_options_or_call", a_port, None, 1000, &["-timeout", "120s"]);
    wait_until(t0, Duration::from_secs(42));
    let elapsed = t0.elapsed();
    let (a2, b) = (a.kill(), b.kill());
    let s = side.stop();
    let p = &s.metrics.probes;
    println!("probes {p:?}; B answered {} probe(s)+calls over {elapsed:?}", b.successful);
    assert_eq!((p.went_offline, p.came_online), (1, 1), "{p:?}");
    assert!(a2.successful >= 2, "A's probes after it came back: {a2:?}");
    // B: 3 calls + one probe per 10 s (at 0, 10, 20, 30, 40 s).
    let b_probes = b.successful - 3;
    let most = elapsed.as_secs() / 10 + 1;
    assert!(b_probes <= most, "{b_probes} probes in {elapsed:?} toward one carrier (at most {most})");
    assert!(b_probes >= 4, "B was probed only {b_probes} times");
    assert_clean(&s);
}
