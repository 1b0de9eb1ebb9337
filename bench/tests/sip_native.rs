//! `xtrunk-bench sip --uac native` against the in-process sidecar with digest on: every call
//! completes, and the nonce use is as asked (one 407 a call, or a handful for a whole run when
//! the nonce is reused with nc + 1). Needs SIPp (the carrier UAS); skipped loudly without it.

use std::process::Command;

fn have_sipp() -> bool {
    Command::new("sipp").arg("-v").output().is_ok()
}

/// Runs one 300-call step at 100 CPS; returns the step of the JSON's first run.
fn step(nonce: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_xtrunk-bench"))
        .args(["sip", "--self-contained", "--uac", "native", "--digest", "on", "--digest-nonce", nonce])
        .args(["--rates", "100", "--seconds", "3", "--json"])
        .output()
        .expect("running xtrunk-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = format!("{}\n--- stdout:\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "xtrunk-bench sip failed:\n{log}");
    let j: serde_json::Value =
        stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| panic!("no JSON:\n{log}"));
    let s = j["steps"][0].clone();
    assert_eq!(s["calls"], 300, "{log}");
    assert_eq!(s["successful"], 300, "every call completes:\n{log}");
    s
}

#[test]
fn native_uac_answers_every_challenge_or_reuses_the_nonce() {
    if !have_sipp() {
        eprintln!(
            "!!!!! SKIPPED native_uac_answers_every_challenge_or_reuses_the_nonce: sipp missing (scripts/setup) !!!!!"
        );
        return;
    }
    let per_call = step("per-call");
    assert_eq!(per_call["challenges"], 300, "one 407 a call: {per_call}");
    let reuse = step("reuse");
    let n = reuse["challenges"].as_u64().unwrap_or(u64::MAX);
    // Only the calls sent before the first 407 came back are challenged.
    assert!((1..=10).contains(&n), "nonce reuse: {n} challenges for 300 calls: {reuse}");
}
