//! Issue 17 acceptance, the CDR store: 1,000 SIPp calls through the real `xtrunk run` become
//! 1,000 rows in a real SQLite file and in a real PostgreSQL server (started by the test on a
//! private port and data directory), every field checked against the calls and against the
//! sidecar's CDR file (the spool); and a `kill -9` of the sidecar mid-run loses no CDR and
//! duplicates none (the rows are exactly the distinct CDRs of the spool). `xtrunk cdr export`
//! of the run parses back to the same rows.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::ops::{append_config, sipp_available, Load, Pg};
use common::{free_port, free_range, write_config, Guard, TestConfig};
use xtrunk_cdrstore::{Backend, Filter, Row};

const CALLS: usize = 1_000;
const RATE: u32 = 100;
/// Held 1.5 s: SIPp measures its pause on a clock that lags on a loaded host, so a 1 s hold can
/// reach the edge as 0.95 s (billed 0 s) and the short-call report would count it as a zero call.
const HOLD_MS: u32 = 1_500;
const NUMBER: &str = "+4930123456";

enum Store<'a> {
    Sqlite(&'a Path),
    Postgres(&'a str),
}

impl Store<'_> {
    fn toml(&self) -> String {
        match self {
            Store::Sqlite(p) => format!("[cdr]\nstore = \"sqlite\"\nsqlite_path = \"{}\"\n", p.display()),
            Store::Postgres(u) => format!("[cdr]\nstore = \"postgres\"\npostgres = \"{u}\"\n"),
        }
    }

    fn open(&self) -> Box<dyn Backend> {
        match self {
            Store::Sqlite(p) => Box::new(xtrunk_cdrstore::Sqlite::open(p).unwrap()),
            Store::Postgres(u) => Box::new(xtrunk_cdrstore::Postgres::connect(u).unwrap()),
        }
    }
}

fn tag() -> String {
    let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}-{}", std::process::id(), ns % 1_000_000)
}

/// A configured edge in `dir`: (guard, config file, SIP port, uas port, uac port).
fn edge(dir: &Path, tag: &str, extra: &str) -> (Guard, PathBuf, u16, u16, u16) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-cdrstore-{tag}"));
    let media = free_range(2_000, &[]);
    let avoid = [(media, 2_000)];
    let (sip, uas, uac) = (free_port(&avoid), free_port(&avoid), free_port(&avoid));
    let tc = TestConfig {
        name: "xtrunk-cdr-store",
        sip,
        carrier: uas,
        media,
        media_ports: 2_000,
        max_sessions: 500,
        t1_ms: 500,
    };
    let cfg = write_config(dir, &shm, &tc);
    append_config(&cfg, extra);
    let g = Guard::new(&dir.join("xtrunk.log"), dir, &shm);
    (g, cfg, sip, uas, uac)
}

/// The distinct CDRs of the spool, as rows (keyed like the table), and the line count.
fn spool_rows(p: &Path) -> (Vec<Row>, usize) {
    let text = fs::read_to_string(p).unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    let mut lines = 0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let c: xtrunk_signaling::cdr::Cdr = serde_json::from_str(l).unwrap();
        let r = Row::from(&c);
        if seen.insert((r.call_id.clone(), r.b_call_id.clone(), r.setup_ms)) {
            rows.push(r);
        }
    }
    (rows, lines)
}

/// Polls the store until it holds `n` rows (or 20 s pass); every row.
fn rows_when(store: &Store<'_>, n: usize) -> Vec<Row> {
    let all = Filter { from_ms: 0, to_ms: u64::MAX >> 1, ..Filter::default() };
    let t = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = store.open().query(&all).unwrap();
        if rows.len() >= n || Instant::now() > t {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sorted(mut v: Vec<Row>) -> Vec<Row> {
    v.sort_by(|a, b| (&a.call_id, &a.b_call_id, a.setup_ms).cmp(&(&b.call_id, &b.b_call_id, b.setup_ms)));
    v
}

/// Every field of an answered SIPp call as the scenario placed it.
fn check_call(r: &Row) -> Result<(), String> {
    let ok = r.sip_code == 200
        && r.trunk_in == "pbx"
        && r.trunk_out == "carrier"
        && r.from_dialled == "sipp"
        && r.to_dialled == NUMBER
        && r.to_norm == "4930123456"
        && r.attempts == 1
        && !r.b_call_id.is_empty()
        && r.setup_ms <= r.answer_ms
        && r.answer_ms <= r.end_ms
        && r.duration_ms == r.end_ms - r.answer_ms
        && (u64::from(HOLD_MS) - 100..u64::from(HOLD_MS) + 3_000).contains(&r.duration_ms)
        && r.end_reason == "caller_bye"
        && r.hangup_by == "caller"
        && r.q850 == 16
        && r.codec == "pcma"
        && !r.srtp_a
        && !r.srtp_b;
    if ok {
        Ok(())
    } else {
        Err(format!("{r:?}"))
    }
}

fn thousand_calls(store: &Store<'_>, dir: &Path, tag: &str) {
    let (mut g, cfg, sip_port, uas_port, uac_port) = edge(dir, tag, &store.toml());
    g.start(&cfg);
    assert!(g.wait_log("sip listening", 1, Duration::from_secs(20)), "no start; log:\n{}", g.log_tail());
    let load = Load { dir, sip_port, uas_port, uac_port, calls: CALLS, rate: RATE, hold_ms: HOLD_MS, number: NUMBER };
    load.start(&mut g);
    let (ok, failed, uas_ok) = load.finish(&mut g);
    assert_eq!((ok, failed, uas_ok), (CALLS as u64, 0, CALLS as u64), "SIPp; log:\n{}", g.log_tail());
    let rows = rows_when(store, CALLS);
    assert_eq!(rows.len(), CALLS, "rows; log:\n{}", g.log_tail());
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids.len(), CALLS, "one row per call");
    let bad: Vec<String> = rows.iter().filter_map(|r| check_call(r).err()).collect();
    assert!(bad.is_empty(), "{} rows do not match their call, e.g. {}", bad.len(), bad[0]);
    let (spool, lines) = spool_rows(&dir.join("cdr.jsonl"));
    assert_eq!(lines, CALLS, "spool lines");
    assert_eq!(sorted(rows.clone()), sorted(spool), "the store holds exactly the CDR file's records");

    check_exports(&cfg, &rows);
    eprintln!("{CALLS} calls -> {} rows, all fields checked, CSV and JSON round trips ok", rows.len());
}

/// `xtrunk cdr export` of the run's period, parsed back, equals the rows (CSV and JSON); the
/// filters; the short-call report.
fn check_exports(cfg: &Path, rows: &[Row]) {
    let from = rows.iter().map(|r| r.setup_ms).min().unwrap();
    let to = rows.iter().map(|r| r.setup_ms).max().unwrap() + 1;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtrunk"))
        .args(["cdr", "export", "--config"])
        .arg(cfg)
        .args(["--from", &from.to_string(), "--to", &to.to_string(), "--account", "", "--format", "csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
    let back = xtrunk_cdrstore::export::parse_csv(std::str::from_utf8(&out.stdout).unwrap()).expect("CSV parses");
    assert_eq!(back, rows, "CSV round trip (same order: by setup time)");
    let export = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtrunk"))
            .args(["cdr", "export", "--config"])
            .arg(cfg)
            .args(["--from", &from.to_string(), "--to", &to.to_string(), "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<Row>>(&out.stdout).expect("JSON export parses")
    };
    assert_eq!(export(&[]), rows, "JSON round trip");
    assert_eq!(export(&["--trunk", "carrier"]).len(), CALLS, "either side's trunk matches");
    assert!(export(&["--trunk", "nosuch"]).is_empty());
    // The short-call report: every call was held ~1.5 s, so all 1,000 are "≤ 6 s" calls.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtrunk"))
        .args(["cdr", "report", "--config"])
        .arg(cfg)
        .args(["--from", &from.to_string(), "--to", &to.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "report: {}", String::from_utf8_lossy(&out.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep.as_array().map(Vec::len), Some(1), "{rep}");
    let m = &rep[0];
    assert_eq!(
        (m["total"].as_u64(), m["short"].as_u64(), m["zero"].as_u64()),
        (Some(1000), Some(1000), Some(0)),
        "{rep}"
    );
    assert_eq!((m["short_excess"].as_u64(), m["flagged"].as_bool()), (Some(800), Some(true)), "{rep}");
}

#[test]
fn sqlite_store_gets_one_row_per_call() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("xtrunk-cdr-sqlite-{tag}"));
    let db = dir.join("cdr.sqlite");
    thousand_calls(&Store::Sqlite(&db), &dir, &tag);
}

#[test]
fn postgres_store_gets_one_row_per_call() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = tag();
    let Some(pg) = Pg::start(&tag) else {
        eprintln!("postgresql not installed; skipping (scripts/setup installs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("xtrunk-cdr-pg-{tag}"));
    let url = pg.url();
    thousand_calls(&Store::Postgres(&url), &dir, &tag);
    drop(pg);
}

/// The pid in the supervisor's log after `key` (its last mention).
fn logged_pid(g: &Guard, key: &str) -> Option<i32> {
    let log = g.log();
    let i = log.rfind(key)?;
    log[i + key.len()..].split(')').next()?.parse().ok()
}

#[test]
fn kill_9_of_the_sidecar_loses_and_duplicates_no_cdr_sqlite() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("xtrunk-cdr-kill-{tag}"));
    let db = dir.join("cdr.sqlite");
    kill_9_mid_run(&Store::Sqlite(&db), &dir, &tag);
}

#[test]
fn kill_9_of_the_sidecar_loses_and_duplicates_no_cdr_postgres() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = tag();
    let Some(pg) = Pg::start(&format!("k{tag}")) else {
        eprintln!("postgresql not installed; skipping (scripts/setup installs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("xtrunk-cdr-kill-pg-{tag}"));
    let url = pg.url();
    kill_9_mid_run(&Store::Postgres(&url), &dir, &tag);
    drop(pg);
}

/// 1,000 calls, the sidecar killed (SIGKILL) 4 s in and restarted by the supervisor: the store
/// holds exactly the distinct CDRs of the spool, each once, and a row for every call SIPp
/// completed.
fn kill_9_mid_run(store: &Store<'_>, dir: &Path, tag: &str) {
    let (mut g, cfg, sip_port, uas_port, uac_port) = edge(dir, tag, &store.toml());
    g.start(&cfg);
    assert!(g.wait_log("sip listening", 1, Duration::from_secs(20)), "no start; log:\n{}", g.log_tail());
    let load = Load { dir, sip_port, uas_port, uac_port, calls: CALLS, rate: RATE, hold_ms: HOLD_MS, number: NUMBER };
    load.start(&mut g);
    std::thread::sleep(Duration::from_secs(4));
    let pid = logged_pid(&g, "sidecar started (pid ").expect("sidecar pid in the log");
    // SAFETY: kill(2) on the sidecar pid our supervisor logged; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(g.wait_log("sidecar restarted (pid ", 1, Duration::from_secs(10)), "no restart; log:\n{}", g.log_tail());
    let (ok, failed, _) = load.finish(&mut g);
    assert!(ok >= CALLS as u64 * 8 / 10, "most calls survive the crash: {ok} ok, {failed} failed");

    // Everything the spool holds ends up in the store once. The last CDRs follow the last
    // BYEs' Deletes: let the spool settle first.
    let mut spool = spool_rows(&dir.join("cdr.jsonl"));
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let again = spool_rows(&dir.join("cdr.jsonl"));
        if again.1 == spool.1 {
            break;
        }
        spool = again;
    }
    let (spool, lines) = spool;
    let rows = rows_when(store, spool.len());
    let keys: BTreeSet<(&str, &str, u64)> =
        rows.iter().map(|r| (r.call_id.as_str(), r.b_call_id.as_str(), r.setup_ms)).collect();
    assert_eq!(keys.len(), rows.len(), "no duplicate rows");
    let calls: BTreeSet<(&str, &str)> = rows.iter().map(|r| (r.call_id.as_str(), r.b_call_id.as_str())).collect();
    assert_eq!(calls.len(), rows.len(), "one row per call (no replayed copy)");
    assert_eq!(sorted(rows.clone()), sorted(spool), "the store holds exactly the CDR file's distinct records");
    let answered_bye =
        rows.iter().filter(|r| r.end_reason == "caller_bye" || r.end_reason == "sidecar_restart").count();
    assert!(
        answered_bye as u64 >= ok,
        "every call SIPp completed ({ok}) has its row ({answered_bye} caller_bye/sidecar_restart rows)"
    );
    eprintln!(
        "kill -9 mid-run: SIPp ok {ok} failed {failed}; spool {lines} lines, {} distinct; store {} rows",
        keys.len(),
        rows.len()
    );
}

#[test]
fn cdr_file_rotation_on_sigusr2_keeps_every_row() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("xtrunk-cdr-rotate-{tag}"));
    let db = dir.join("cdr.sqlite");
    let store = Store::Sqlite(&db);
    let (mut g, cfg, sip_port, uas_port, uac_port) = edge(&dir, &tag, &store.toml());
    g.start(&cfg);
    assert!(g.wait_log("sip listening", 1, Duration::from_secs(20)), "no start; log:\n{}", g.log_tail());
    let load = Load { dir: &dir, sip_port, uas_port, uac_port, calls: 20, rate: 20, hold_ms: 100, number: NUMBER };
    load.start(&mut g);
    assert_eq!(load.finish(&mut g).0, 20);
    g.sipps.clear();
    assert_eq!(rows_when(&store, 20).len(), 20);
    // logrotate: move the file away, SIGUSR2 to the supervisor (forwarded to the sidecar).
    let cdr = dir.join("cdr.jsonl");
    fs::rename(&cdr, dir.join("cdr.jsonl.1")).unwrap();
    let pid = g.supervisor.as_ref().unwrap().id() as i32;
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR2) }, 0);
    assert!(g.wait_log("reopened the CDR file", 1, Duration::from_secs(5)), "no reopen; log:\n{}", g.log_tail());
    load.start(&mut g);
    assert_eq!(load.finish(&mut g).0, 20);
    let rows = rows_when(&store, 40);
    assert_eq!(rows.len(), 40, "rows from both files; log:\n{}", g.log_tail());
    assert_eq!(spool_rows(&dir.join("cdr.jsonl.1")).1, 20, "the old file kept the first calls");
    assert_eq!(spool_rows(&cdr).1, 20, "the new file has the next ones");
    assert!(g.child_pids().len() == 2, "nothing restarted (SIGUSR2 does not kill the datapath)");
}
