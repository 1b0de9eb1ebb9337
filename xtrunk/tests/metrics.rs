//! Issue 17 acceptance, `/metrics`: a scrape taken during a SIPp run passes `promtool check
//! metrics` (Debian `prometheus`), and after the run the counters agree with SIPp's own counts
//! (calls attempted, answered, ended; none failed; nothing active; the CDR store's rows).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::ops::{append_config, sipp_available, Load};
use common::{free_port, free_range, write_config, Guard, TestConfig};

const CALLS: usize = 1_000;

/// `GET /metrics` from `addr`: the body (empty when the scrape failed).
fn scrape(addr: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 200"), "scrape: {r}");
    r.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// The value of the sample `name{labels}` (labels exactly as encoded), or 0.
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(0, |v| v as u64)
}

fn promtool(text: &str) -> Option<(bool, String)> {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

#[test]
fn metrics_pass_promtool_and_agree_with_sipp() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = format!("{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("xtrunk-metrics-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-metrics-{tag}"));
    let media = free_range(2_000, &[]);
    let avoid = [(media, 2_000)];
    let (sip_port, uas_port, uac_port) = (free_port(&avoid), free_port(&avoid), free_port(&avoid));
    let tc = TestConfig {
        name: "xtrunk-metrics",
        sip: sip_port,
        carrier: uas_port,
        media,
        media_ports: 2_000,
        max_sessions: 500,
        t1_ms: 500,
    };
    let cfg = write_config(&dir, &shm, &tc);
    let maddr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let daddr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let db = dir.join("cdr.sqlite");
    append_config(
        &cfg,
        &format!("[control]\nlisten = \"{maddr}\"\ndatapath_listen = \"{daddr}\"\n\n[cdr]\nstore = \"sqlite\"\nsqlite_path = \"{}\"\n", db.display()),
    );
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&cfg);
    assert!(g.wait_log("control on http://", 1, Duration::from_secs(20)), "no metrics; log:\n{}", g.log_tail());
    let load =
        Load { dir: &dir, sip_port, uas_port, uac_port, calls: CALLS, rate: 100, hold_ms: 1_000, number: "4930123" };
    load.start(&mut g);
    std::thread::sleep(Duration::from_secs(4));
    let during = scrape(maddr);
    let active = sample(&during, "xtrunk_active_calls{trunk=\"pbx\"}");
    eprintln!("during the run: {active} active calls, {} bytes", during.len());
    assert!(active > 0, "calls are up during the run:\n{during}");
    match promtool(&during) {
        Some((ok, out)) => assert!(ok, "promtool check metrics: {out}\n{during}"),
        None => eprintln!("promtool not installed; not checked (scripts/setup installs it)"),
    }
    // The datapath's own endpoint: sessions held during the run, the same format.
    let dp = scrape(daddr);
    assert!(sample(&dp, "xtrunk_datapath_sessions") > 0, "datapath sessions during the run:\n{dp}");
    if let Some((ok, out)) = promtool(&dp) {
        assert!(ok, "promtool check metrics (datapath): {out}\n{dp}");
    }
    let (ok, failed, _) = load.finish(&mut g);
    assert_eq!((ok, failed), (CALLS as u64, 0), "SIPp");

    let ended = "xtrunk_calls_ended_total{trunk=\"pbx\",account=\"\",trunk_out=\"carrier\"}";
    let t = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let m = scrape(maddr);
        if sample(&m, ended) >= CALLS as u64 && sample(&m, "xtrunk_cdr_store_rows_total") >= CALLS as u64
            || Instant::now() > t
        {
            break m;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let n = CALLS as u64;
    assert_eq!(sample(&after, "xtrunk_calls_attempted_total{trunk=\"pbx\"}"), n, "{after}");
    assert_eq!(sample(&after, ended), n, "{after}");
    assert_eq!(sample(&after, "xtrunk_calls_answered_total{trunk=\"pbx\",account=\"\",trunk_out=\"carrier\"}"), n);
    assert!(!after.contains("xtrunk_calls_failed_total{"), "no call failed:\n{after}");
    assert_eq!(sample(&after, "xtrunk_active_calls{trunk=\"pbx\"}"), 0);
    assert_eq!(sample(&after, "xtrunk_finals_to_caller_total{code=\"200\"}"), n);
    assert_eq!(sample(&after, "xtrunk_cdr_store_rows_total"), n);
    // #20: nothing shed at this load; every admitted call went through; the gauges are there.
    assert_eq!(sample(&after, "xtrunk_calls_shed_total"), 0, "{after}");
    assert_eq!(sample(&after, "xtrunk_overload_admit_percent"), 100, "{after}");
    assert!(after.contains("# TYPE xtrunk_ring_fill_percent gauge"), "{after}");
    assert_eq!(sample(&after, "xtrunk_sidecar_restarts_total"), 0);
    if let Some((ok, out)) = promtool(&after) {
        assert!(ok, "promtool check metrics (after): {out}");
    }
    eprintln!("after the run: counters agree with SIPp ({n} calls)");
}
