//! Admission control end to end (#15): SIPp as the PBX and the carrier, the sidecar in-process,
//! real time. Outcomes are read from the sidecar's CDRs (`cause`) and metrics; the UAC scenario
//! (`uac_admit`) takes a refusal as a normal end.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;
use xtrunk_config::Config;

/// The account "acme" (DIDs 4420712345xx) of the PBX trunk, with `extra` TOML in its table.
fn account(extra: &str) -> xtrunk_config::Account {
    let text = format!("[[account]]\nname = \"acme\"\ndids = [\"442071234500-442071234599\"]\n{extra}\n");
    Config::parse(&text, "test").unwrap().accounts.remove(0)
}

/// SIPp's injection file: one `to;from;header` line per call, used in turn.
fn inject(dir: &std::path::Path, rows: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("SEQUENTIAL\n");
    for (to, from, hdr) in rows {
        s.push_str(&format!("{to};{from};{hdr}\n"));
    }
    let p = dir.join("calls.csv");
    std::fs::write(&p, s).unwrap();
    p.to_str().unwrap().to_string()
}

struct Run {
    uac: Outcome,
    /// None when the carrier was stopped (it expected more calls than passed).
    uas: Option<Outcome>,
    summary: xtrunk_signaling::Summary,
    cdrs: Vec<serde_json::Value>,
    elapsed: Duration,
}

/// `calls` calls at `rate`/s through the sidecar, configured by `tweak`; each call `hold_ms` long.
#[allow(clippy::too_many_arguments)]
fn run(
    name: &str,
    uas: &str,
    calls: usize,
    rate: u32,
    hold_ms: u32,
    rows: &[(&str, &str, &str)],
    all_pass: bool,
    tweak: impl FnOnce(&mut Config),
) -> Run {
    let uas_port = free_port();
    let side = Sidecar::start(name, &[uas_port], tweak);
    let inf = inject(&side.dir, rows);
    let carrier = sipp(&side.dir, "uas", uas, uas_port, None, calls, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let (r, d) = (rate.to_string(), hold_ms.to_string());
    let t0 = Instant::now();
    let extra = ["-r", &r, "-d", &d, "-l", "100", "-inf", &inf];
    let pbx = sipp(&side.dir, "uac", "uac_admit", free_port(), Some(side.port), calls, &extra);
    let uac = pbx.wait();
    let elapsed = t0.elapsed();
    // The carrier saw fewer calls than were offered: stop it once the PBX is done.
    std::thread::sleep(Duration::from_millis(500));
    let (summary, cdrs) = side.stop_with_cdrs();
    let uas = if all_pass {
        Some(carrier.wait())
    } else {
        let _ = carrier.kill();
        None
    };
    Run { uac, uas, summary, cdrs, elapsed }
}

fn causes(cdrs: &[serde_json::Value], cause: &str) -> usize {
    cdrs.iter().filter(|c| c["cause"] == cause).count()
}

fn answered(cdrs: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    cdrs.iter().filter(|c| c["disposition"] == 200).collect()
}

const DE: (&str, &str, &str) = ("+4930123456", "+442071234501", "X-Case: plain");

#[test]
fn at_twice_the_trunk_cps_half_the_calls_get_503_at_once() {
    need_sipp!();
    let r = run("adm-trunk-cps", "uas_basic", 40, 10, 100, &[DE], false, |c| c.trunks[0].limits.cps = Some(5.0));
    assert!(r.uac.ok, "uac {:?}", r.uac);
    let refused = causes(&r.cdrs, "cps_trunk");
    let ok = answered(&r.cdrs).len();
    assert_eq!(refused + ok, 40, "{:?}", r.cdrs);
    // SIPp paces to within a few ms; at 2x the rate, about every other call is refused.
    assert!((15..=25).contains(&refused), "{refused} of 40 refused at 2x CPS");
    assert_eq!(r.summary.metrics.admission_rejects["cps_trunk"]["pbx"], refused as u64);
    assert_clean(&r.summary);
}

#[test]
fn at_twice_the_account_cps_calls_queue_and_pass_at_the_account_rate() {
    need_sipp!();
    // 5 CPS, up to 1 s in the queue: 30 calls offered at 10/s.
    let r = run("adm-acct-cps", "uas_basic", 30, 10, 100, &[DE], false, |c| {
        c.accounts = vec![account("[account.limits]\ncps = 5\ncps_queue_ms = 1000\ncps_queue_len = 50")];
        c.trunks[0].account = Some("acme".into());
    });
    assert!(r.uac.ok, "uac {:?}", r.uac);
    let ok = answered(&r.cdrs);
    let refused = causes(&r.cdrs, "cps_account");
    assert_eq!(ok.len() + refused, 30);
    assert!(r.summary.metrics.cps_queued > 0, "calls waited in the queue");
    assert!(refused > 0 && ok.len() >= 15, "queue bound reached: {} passed, {refused} refused", ok.len());
    // The calls that passed reached the carrier at the account's rate: answers 200 ms apart
    // (less scheduling jitter; the first may share its slot's millisecond with the next).
    let mut t: Vec<u64> = ok.iter().map(|c| c["answer_ms"].as_u64().unwrap()).collect();
    t.sort_unstable();
    let close = t.windows(2).filter(|w| w[1] - w[0] < 150).count();
    assert!(close <= 1, "answers closer than 150 ms at 5 CPS: {t:?}");
    let span = t[t.len() - 1] - t[0];
    assert!(span + 50 >= 200 * (t.len() as u64 - 2), "{} calls in {span} ms: over 5 CPS", t.len());
    assert_clean(&r.summary);
}

#[test]
fn a_ten_channel_trunk_holds_exactly_ten_concurrent_calls() {
    need_sipp!();
    // 3 s calls at 20/s: without the limit 60 would be up at once.
    let r = run("adm-channels", "uas_basic", 40, 20, 3000, &[DE], false, |c| c.trunks[0].limits.channels = Some(10));
    assert!(r.uac.ok, "uac {:?}", r.uac);
    let ok = answered(&r.cdrs);
    assert_eq!(ok.len() + causes(&r.cdrs, "channels_full_trunk"), 40);
    // Most concurrent calls, from the CDRs' start/end times.
    let mut ev: Vec<(u64, i32)> = Vec::new();
    for c in &ok {
        ev.push((c["start_ms"].as_u64().unwrap(), 1));
        ev.push((c["end_ms"].as_u64().unwrap(), -1));
    }
    ev.sort_unstable_by_key(|(t, d)| (*t, *d));
    let peak = ev.iter().scan(0, |n, (_, d)| {
        *n += d;
        Some(*n)
    });
    assert_eq!(peak.max(), Some(10), "exactly 10 at once");
    assert_clean(&r.summary);
}

#[test]
fn an_hourly_cap_of_n_admits_exactly_n_in_real_time() {
    need_sipp!();
    let r = run("adm-cap", "uas_basic", 8, 20, 50, &[DE], false, |c| c.trunks[0].limits.calls_per_hour = Some(5));
    assert!(r.uac.ok, "uac {:?}", r.uac);
    assert_eq!((answered(&r.cdrs).len(), causes(&r.cdrs, "calls_per_hour_trunk")), (5, 3));
    assert_clean(&r.summary);
}

#[test]
fn premium_denied_country_foreign_caller_id_and_blocked_cli_are_refused_with_their_cause() {
    need_sipp!();
    let rows = [
        ("+449001234567", "+442071234501", "X-Case: premium"),
        ("+33142685300", "+442071234501", "X-Case: country"),
        ("+4930123456", "+15550001111", "X-Case: caller-id"),
        ("+4930123456", "+61130012345", "X-Case: cli"),
    ];
    let r = run("adm-numbers", "uas_basic", 4, 10, 50, &rows, false, |c| {
        c.accounts = vec![account("[account.destinations]\ndeny_countries = [\"FR\"]")];
        c.trunks[0].account = Some("acme".into());
        c.trunks[1].numbers.cli_block_prefixes = ["+6113", "+611300", "+611800", "+611900"].map(String::from).to_vec();
    });
    assert!(r.uac.ok, "uac {:?}", r.uac);
    for cause in ["premium_rate", "denied_country", "unknown_caller_id", "blocked_cli"] {
        assert_eq!(causes(&r.cdrs, cause), 1, "{cause}: {:?}", r.cdrs);
    }
    assert!(r.cdrs.iter().all(|c| c["disposition"] == 403));
    assert_clean(&r.summary);
}

#[test]
fn privacy_id_reaches_the_carrier_anonymised_with_pai_kept() {
    need_sipp!();
    let rows = [("+4930123456", "+442071234501", "Privacy: id")];
    let r = run("adm-privacy", "uas_privacy", 3, 10, 50, &rows, true, |c| {
        c.accounts = vec![account("")];
        c.trunks[0].account = Some("acme".into());
        c.trunks[1].numbers.trusted = true;
    });
    let uas = r.uas.expect("carrier waited for every call");
    assert!(r.uac.ok && uas.ok, "uac {:?} uas {uas:?}", r.uac);
    // SIPp exits 0 only when every call passed its checks (check_it: From anonymous, PAI, Privacy).
    assert_eq!(uas.failed, 0, "the carrier's checks failed");
    assert_eq!(answered(&r.cdrs).len(), 3);
    assert!(r.elapsed < Duration::from_secs(30));
    assert_clean(&r.summary);
}

#[test]
fn a_fraud_burst_to_one_international_prefix_is_blocked_before_n_calls() {
    need_sipp!();
    // +882 (international networks): premium-looking, not flagged premium by the library.
    let rows: Vec<String> = (0..20).map(|i| format!("+88234567{i:04}")).collect();
    let rows: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r.as_str(), "+442071234501", "X-Case: fraud")).collect();
    let r = run("adm-fraud", "uas_basic", 20, 10, 50, &rows, false, |c| {
        c.accounts = vec![account(
            "[account.destinations]\nallow_premium = true\n[account.fraud]\ncalls_per_minute = { warning = 3, critical = 6 }",
        )];
        c.trunks[0].account = Some("acme".into());
    });
    assert!(r.uac.ok, "uac {:?}", r.uac);
    assert_eq!(answered(&r.cdrs).len(), 5, "blocked from the 6th call on");
    assert_eq!(causes(&r.cdrs, "fraud_calls_per_minute"), 15);
    assert_eq!(r.summary.metrics.fraud_warnings["calls_per_minute"]["pbx"], 3);
    assert_clean(&r.summary);
}

#[test]
fn a_ten_channel_trunk_never_exceeds_ten_with_cancel_busy_and_bye_mixed() {
    need_sipp!();
    let (p_bye, p_cancel, p_busy) = (free_port(), free_port(), free_port());
    let side = Sidecar::start("adm-mix", &[p_bye], |c| {
        c.trunks[0].limits.channels = Some(10);
        c.trunks.push(trunk("c-cancel", xtrunk_config::TrunkRole::Carrier, &[], &[p_cancel]));
        c.trunks.push(trunk("c-busy", xtrunk_config::TrunkRole::Carrier, &[], &[p_busy]));
        for (prefix, t) in [("+33", "c-cancel"), ("+44", "c-busy")] {
            let trunk = t.to_string();
            c.routes.push(xtrunk_config::Route::to(prefix, Some("pbx"), &trunk));
        }
    });
    let inf = inject(&side.dir, &[DE]);
    let uas = [
        sipp(&side.dir, "uas-bye", "uas_basic", p_bye, None, 60, &[]),
        sipp(&side.dir, "uas-cancel", "uas_cancelled", p_cancel, None, 60, &[]),
        sipp(&side.dir, "uas-busy", "uas_busy", p_busy, None, 60, &[]),
    ];
    std::thread::sleep(Duration::from_millis(200));
    let uacs = [
        sipp(
            &side.dir,
            "uac-bye",
            "uac_admit",
            free_port(),
            Some(side.port),
            40,
            &["-r", "10", "-d", "2000", "-inf", &inf],
        ),
        sipp(
            &side.dir,
            "uac-cancel",
            "uac_cancel",
            free_port(),
            Some(side.port),
            40,
            &["-r", "10", "-s", "+33142685300"],
        ),
        sipp(&side.dir, "uac-busy", "uac_busy", free_port(), Some(side.port), 40, &["-r", "10", "-s", "+442071234567"]),
    ];
    for u in uacs {
        // The cancel/busy UACs fail the calls refused 503 (their scenarios expect 180/486).
        let _ = u.wait();
    }
    std::thread::sleep(Duration::from_millis(500));
    let (summary, cdrs) = side.stop_with_cdrs();
    for u in uas {
        let _ = u.kill();
    }
    let refused = causes(&cdrs, "channels_full_trunk");
    let held: Vec<&serde_json::Value> = cdrs.iter().filter(|c| c["cause"] != "channels_full_trunk").collect();
    assert_eq!(held.len() + refused, 120, "every call has a CDR");
    assert!(refused > 0, "the trunk was full at times");
    for (d, n) in [(200, "bye"), (487, "cancel"), (486, "busy")] {
        assert!(held.iter().any(|c| c["disposition"] == d), "some {n} calls passed");
    }
    let mut ev: Vec<(u64, i32)> = Vec::new();
    for c in &held {
        ev.push((c["start_ms"].as_u64().unwrap(), 1));
        ev.push((c["end_ms"].as_u64().unwrap(), -1));
    }
    ev.sort_unstable_by_key(|(t, d)| (*t, *d));
    let peak = ev
        .iter()
        .scan(0, |n, (_, d)| {
            *n += d;
            Some(*n)
        })
        .max();
    assert_eq!(peak, Some(10), "at most, and at times exactly, 10 calls at once");
    assert_clean(&summary);
}
