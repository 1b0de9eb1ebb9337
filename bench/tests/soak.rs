//! The soak bench at a tiny scale (100 sessions × 5 s): its accounting must add up. Every session
//! created comes back deleted with stats; the malformed packets it sent show up in the
//! datapath's `malformed_rtp`/`foreign` drops and the outsiders in `source_mismatch` and in the
//! legs' `rejected_sources`; no outsider packet is forwarded. The RSS verdict is not checked
//! here (5 s is no soak); the bench's exit status includes it, so it is not asserted either.
//!
//! Loopback only, no root. Ports 60000..60399 on 127.0.0.1, outside the default soak range.

use std::process::Command;

fn soak(extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_xtrunk-bench"))
        .args(["soak", "--sessions", "100", "--seconds", "5", "--warmup-secs", "2", "--sample-secs", "1"])
        .args(["--report-secs", "1", "--malformed-pct", "5", "--outsider-pct", "5", "--port-base", "60000", "--json"])
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running xtrunk-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = format!("{}\n--- stdout:\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| panic!("no JSON:\n{log}"))
}

fn n(j: &serde_json::Value, k: &str) -> u64 {
    j[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {j}"))
}

#[test]
fn tiny_soak_accounts_for_every_session_and_packet() {
    let j = soak(&[]);
    assert_eq!(n(&j, "sessions_created"), 100, "{j}");
    assert_eq!(n(&j, "sessions_deleted"), 100, "{j}");
    assert_eq!(n(&j, "sessions_lost"), 0, "{j}");
    assert_eq!(n(&j, "media_timeouts_fed"), 0, "{j}");
    assert_eq!(n(&j, "outsiders_forwarded"), 0, "{j}");
    let d = &j["datapath_drops"];
    let (malformed, outsiders) = (n(&j, "sent_malformed"), n(&j, "sent_outsider"));
    assert!(malformed > 100 && outsiders > 100, "too few malformed/outsider packets sent: {j}");
    // A shared machine may overflow a socket buffer now and then: allow 10 % missing, none extra.
    let seen_malformed = n(d, "malformed_rtp") + n(d, "foreign") + n(d, "bad_length");
    assert!(seen_malformed <= malformed && seen_malformed * 10 >= malformed * 9, "{j}");
    assert!(n(d, "malformed_rtp") > 0 && n(d, "foreign") > 0, "both malformed kinds counted: {j}");
    let mismatch = n(d, "source_mismatch");
    assert!(mismatch <= outsiders && mismatch * 10 >= outsiders * 9, "{j}");
    assert_eq!(n(&j, "deleted_rejected_sources"), mismatch, "per-leg and per-worker counts agree: {j}");
    assert!(n(&j, "received") > 0 && n(&j, "received") <= n(&j, "sent_rtp"), "{j}");
    assert!(j["rss_kib"]["end"].as_u64().unwrap_or(0) > 0, "RSS sampled: {j}");
}
