//! Checks the measurement itself: with a known impairment on the path (a hop that drops every
//! k-th packet and delays the others by d), `xtrunk-bench compare --json` must report that loss
//! and that latency within a stated tolerance.
//!
//! Tolerances: loss 2 % ± 0.5 % (k = 50); p50 one-way latency 5 ms ± 1 ms (d = 5 ms). netem
//! would be the textbook impairment, but `sch_netem` is not available on every test machine, so
//! the bench carries its own hop (`--impair-drop-every`, `--impair-delay-ms`, hidden options).
//!
//! The loopback checks run anywhere (no root). The lab checks need root (namespaces, XDP) and
//! print a loud SKIPPED line otherwise. The tests share fixed ports, so they run one at a time.
//! A run disturbed by the shared machine (receive-buffer overflows on the path) is retried.

use std::process::Command;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Runs `xtrunk-bench compare ARGS --json`; returns (exit success, stderr, parsed last line).
fn compare(args: &[&str]) -> (bool, String, Option<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtrunk-bench"))
        .arg("compare")
        .args(args)
        .arg("--json")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running xtrunk-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok());
    (out.status.success(), format!("{stderr}\n--- stdout:\n{stdout}"), json)
}

/// Receive-buffer overflows anywhere on the path in the run (all backends, all rounds).
fn rcvbuf_errors(j: &serde_json::Value) -> u64 {
    let mut n = 0;
    for b in j["backends"].as_object().into_iter().flat_map(|m| m.values()) {
        for r in b["rounds"].as_array().into_iter().flatten() {
            n += r["rcvbuf_errors_relay_ns"].as_u64().unwrap_or(0) + r["rcvbuf_errors_peer_ns"].as_u64().unwrap_or(0);
        }
    }
    n
}

/// Runs `compare` until a run is undisturbed: the machine is shared (parallel builds and other
/// benches on loopback), and a relay starved of CPU overflows its socket buffers, which shows up
/// as extra loss. Such a run (receive-buffer errors counted in a namespace on the path) is
/// retried, at most 3 attempts; the last one is checked whatever happened.
fn compare_undisturbed(args: &[&str]) -> serde_json::Value {
    for attempt in 1..=3 {
        let (ok, log, j) = compare(args);
        assert!(ok, "compare failed:\n{log}");
        let j = j.unwrap_or_else(|| panic!("no JSON last line:\n{log}"));
        let e = rcvbuf_errors(&j);
        if e == 0 || attempt == 3 {
            return j;
        }
        eprintln!("attempt {attempt}: {e} receive-buffer overflows on the path (machine busy): retrying");
    }
    unreachable!()
}

fn field(j: &serde_json::Value, backend: &str, key: &str) -> f64 {
    j["backends"][backend][key].as_f64().unwrap_or_else(|| panic!("backends.{backend}.{key} missing in {j}"))
}

/// Loss 2 % ± 0.5 % and 5 ms of added delay for `backend`. The delay is judged against the same
/// invocation's unimpaired p50 (`base_p50`, what the path itself costs on this machine now) and
/// the receiver's bucket width (`bucket`, a fraction of the value: 0 for the exact UDP receiver,
/// ~6 % for the XDP sink): measured − base must be 5 ms ± (1 ms + one bucket). So scheduling
/// noise that slows both runs cannot fail it, while a delay not applied, doubled or mis-bucketed
/// still does.
fn check_impaired(j: &serde_json::Value, backend: &str, base_p50: f64, bucket: f64) {
    let loss = field(j, backend, "loss_ratio");
    let p50 = field(j, backend, "p50_us");
    let (offered, delivered) = (field(j, backend, "offered_pps"), field(j, backend, "delivered_pps"));
    eprintln!(
        "{backend}: offered {offered:.0} pps, delivered {delivered:.0} pps, loss {:.3} %, p50 {p50:.0} µs (unimpaired {base_p50:.0} µs)",
        loss * 100.0
    );
    assert!((0.015..=0.025).contains(&loss), "{backend}: injected 2 % loss, measured {:.3} %", loss * 100.0);
    let added = p50 - base_p50;
    let tolerance = 1_000.0 + bucket * p50;
    assert!(
        (added - 5_000.0).abs() <= tolerance,
        "{backend}: injected 5 ms delay, measured p50 {p50:.0} µs over an unimpaired {base_p50:.0} µs (+{added:.0} µs, allowed 5000 ± {tolerance:.0})"
    );
    // Every received packet is in the histogram: delivered must match offered × (1 − loss).
    assert!((delivered - offered * (1.0 - loss)).abs() <= offered * 0.001 + 1.0);
}

#[test]
fn loopback_reports_injected_loss_and_delay() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let base = ["--loopback", "--rounds", "1", "--seconds", "2", "--warmup-ms", "300", "--rate", "5000"];
    // Control: no impairment, so no loss and well under the injected 5 ms.
    let j = compare_undisturbed(&base);
    let (loss, p50) = (field(&j, "socket", "loss_ratio"), field(&j, "socket", "p50_us"));
    eprintln!("control: loss {:.3} %, p50 {p50:.0} µs", loss * 100.0);
    assert!(loss < 0.005, "control run lost {:.3} %", loss * 100.0);
    assert!(p50 < 3_000.0, "control run p50 {p50:.0} µs");

    let mut args = base.to_vec();
    args.extend(["--impair-drop-every", "50", "--impair-delay-ms", "5"]);
    let j = compare_undisturbed(&args);
    check_impaired(&j, "socket", p50, 0.0);
}

/// On the lab, with `receiver_args` selecting the receiver: `backends` each report the injected
/// 2 % loss and 5 ms delay; returns the JSON (None when not root: skipped loudly).
fn lab_impaired(test: &str, receiver_args: &[&str], backends: &[&str]) -> Option<serde_json::Value> {
    if !is_root() {
        eprintln!("!!!!! SKIPPED {test}: needs root (network namespaces, XDP) !!!!!");
        return None;
    }
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let list = backends.join(",");
    let mut args = receiver_args.to_vec();
    args.extend(["--backends", &list, "--rounds", "1", "--seconds", "2", "--warmup-ms", "300", "--rate", "5000"]);
    // Control first, same lab and receiver: what the path costs without the impairment.
    let control = compare_undisturbed(&args);
    args.extend(["--impair-drop-every", "50", "--impair-delay-ms", "5"]);
    let j = compare_undisturbed(&args);
    let bucket = if receiver_args.contains(&"--udp-receiver") { 0.0 } else { 0.065 };
    for b in backends {
        check_impaired(&j, b, field(&control, b, "p50_us"), bucket);
    }
    assert_eq!(j["place"], "lab");
    Some(j)
}

#[test]
fn lab_reports_injected_loss_and_delay() {
    let test = "lab_reports_injected_loss_and_delay";
    if let Some(j) = lab_impaired(test, &["--udp-receiver"], &["socket", "xdp"]) {
        assert_eq!(j["receiver"], "udp socket");
    }
}

#[test]
fn lab_xdp_sink_reports_injected_loss_and_delay() {
    // The default receiver on the lab: the XDP sink's counter and in-kernel latency histogram
    // must see the injected loss and delay as the UDP receiver does.
    let test = "lab_xdp_sink_reports_injected_loss_and_delay";
    if let Some(j) = lab_impaired(test, &[], &["af_xdp", "xdp"]) {
        assert_eq!(j["receiver"], "xdp_sink (latency in ~6 % buckets, no reordering)");
    }
}

#[test]
fn impossible_rate_is_refused_with_a_reason() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (ok, log, _) = compare(&["--loopback", "--rounds", "1", "--seconds", "1", "--rate", "1e9"]);
    assert!(!ok, "a 1e9 pps rate was accepted:\n{log}");
    assert!(log.contains("rate impossible"), "no reason given:\n{log}");
}

#[test]
fn without_root_compare_says_so() {
    if is_root() {
        eprintln!("!!!!! SKIPPED without_root_compare_says_so: running as root !!!!!");
        return;
    }
    let (ok, log, _) = compare(&["--rounds", "1", "--seconds", "1"]);
    assert!(!ok);
    assert!(log.contains("needs root"), "{log}");
}
