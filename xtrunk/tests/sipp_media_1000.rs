//! Issue 7 acceptance: 1,000 calls with RTP through the real `xtrunk run` (datapath process +
//! signaling sidecar joined by the shm ring), and the media arrives at the far end and back.
//!
//! Layout (everything on loopback, unique shm path / SIP port / media range per run):
//!
//! ```text
//!   SIPp uac (PBX)  --SIP-->  xtrunk run  --SIP-->  SIPp uas (carrier, -rtp_echo)
//!   rtp_stream 2 s  --RTP-->  relay leg a ... leg b  --RTP-->  echo port
//!                   <--RTP--  relay leg a ... leg b  <--RTP--  (echoed back)
//! ```
//!
//! The uac places `CALLS` calls (`-r RATE -l LIMIT`); each streams 2 s of PCMA (a generated
//! A-law WAV played by SIPp's RTPSTREAM thread pool, not a thread per call), waits 2.6 s and hangs
//! up. Asserts: uac exit 0 with `CALLS` successful calls, uas `CALLS` successful, the CDR file has
//! `CALLS` records, each with disposition 200 and more than `MIN_PKTS` RTP packets received on
//! leg 0 (the PBX's stream reached the relay) and on leg 1 (the carrier's echo of it came back,
//! i.e. the stream crossed the relay to the far end). Then SIGTERM → supervisor exit 0 and the
//! shm file is gone. `Guard` kills everything (supervisor, its logged children, both SIPps)
//! whatever happens.
//!
//! `XT_MEDIA_CALLS` overrides the call count (e.g. for a quick local run).

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::ops::read_stat;
use common::{free_port, free_range, write_config, Guard, TestConfig};

const CALLS: usize = 1_000;
const RATE: u32 = 50;
const LIMIT: u32 = 200;
/// Each call streams 2 s of 20 ms packets (100); require a clear majority on both legs.
const MIN_PKTS: u64 = 50;
const MEDIA_PORTS: u16 = 4_000;

fn sipp_available() -> bool {
    Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// 2 s of A-law silence-ish tone as a WAV (format 6, 8 kHz, mono) for SIPp's `rtp_stream`.
fn write_wav(p: &Path) {
    let data: Vec<u8> = (0..16_000u32).map(|i| if (i / 4) % 2 == 0 { 0xd5 } else { 0x55 }).collect();
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&6u16.to_le_bytes()); // A-law
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8_000u32.to_le_bytes());
    w.extend_from_slice(&8_000u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    fs::write(p, w).unwrap();
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios").join(format!("{name}.xml")).display().to_string()
}

/// Waits for the child at `g.sipps[i]` (with a deadline); its exit status, or None on timeout.
fn wait_sipp(g: &mut Guard, i: usize, timeout: Duration) -> Option<ExitStatus> {
    let t = Instant::now() + timeout;
    loop {
        if let Some(s) = g.sipps[i].try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > t {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Its stderr (kills it first if it still runs, so reading cannot block).
fn stderr_of(c: &mut Child) -> String {
    if c.try_wait().ok().flatten().is_none() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let mut e = String::new();
    if let Some(mut s) = c.stderr.take() {
        let _ = s.read_to_string(&mut e);
    }
    e
}

/// (call_id, disposition, legs[0].packets, legs[1].packets) of one CDR JSON line
/// (`signaling/src/cdr.rs`). A field that is missing reads as empty / 0, which the assertions reject.
fn cdr_fields(line: &str) -> (String, u64, u64, u64) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("CDR is not JSON ({e}): {line}"));
    let packets = |leg: usize| v["legs"][leg]["packets"].as_u64().unwrap_or(0);
    (
        v["call_id"].as_str().unwrap_or_default().to_string(),
        v["disposition"].as_u64().unwrap_or(0),
        packets(0),
        packets(1),
    )
}

#[test]
fn thousand_sipp_calls_with_rtp_through_xtrunk_run() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let calls: usize = std::env::var("XT_MEDIA_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(CALLS);
    let started = Instant::now();
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() % 1_000_000
    );
    let dir = std::env::temp_dir().join(format!("xtrunk-sipp-media-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-sippmedia-{tag}"));

    let media = free_range(MEDIA_PORTS, &[]);
    // SIPp 3.6.1's RTPSTREAM binds its own audio socket pair (8888/8889 here, below every range
    // free_range picks); the uac's SDP advertises it via [rtpstream_audio_port].
    let avoid = [(media, MEDIA_PORTS), (8_888, 2)];
    let sip_port = free_port(&avoid);
    let uas_port = free_port(&avoid);
    let uac_port = free_port(&avoid);
    let uas_mp = xtrunk_signaling::testing::sipp_media_port();
    let uac_mp = xtrunk_signaling::testing::sipp_media_port();
    let cfg = write_config(
        &dir,
        &shm,
        &TestConfig {
            name: "xtrunk-sipp-media-1000",
            sip: sip_port,
            carrier: uas_port,
            media,
            media_ports: MEDIA_PORTS,
            max_sessions: MEDIA_PORTS / 4,
            t1_ms: 500,
        },
    );
    write_wav(&dir.join("tone.wav"));
    let log = dir.join("xtrunk.log");
    let mut g = Guard::new(&log, &dir, &shm);
    eprintln!("dir {} sip {sip_port} media {media}-{}", dir.display(), media + MEDIA_PORTS - 1);

    g.start(&cfg);

    // Ready when it answers OPTIONS.
    let xt: SocketAddr = ([127, 0, 0, 1], sip_port).into();
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let me = probe.local_addr().unwrap();
    let mut ready = false;
    for i in 0..100 {
        let opt = format!("OPTIONS sip:xtrunk@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKo{i};rport\r\nFrom: <sip:100@127.0.0.1>;tag=o{i}\r\nTo: <sip:xtrunk@{xt}>\r\nCall-ID: opt{i}-{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        probe.send_to(opt.as_bytes(), xt).unwrap();
        if let Some(s) = g.supervisor.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("xtrunk exited early ({s}); log:\n{}", g.log());
        }
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = probe.recv_from(&mut buf) {
            if buf[..n].starts_with(b"SIP/2.0 200") {
                ready = true;
                break;
            }
        }
    }
    assert!(ready, "xtrunk did not answer OPTIONS; log:\n{}", g.log());
    drop(probe);

    let trace: Vec<&str> = if std::env::var_os("XT_SIPP_TRACE").is_some() { vec!["-trace_err"] } else { vec![] };
    let n = calls.to_string();
    // Carrier: answers every call, echoes all RTP it receives on its media port back to the sender.
    let uas = Command::new("sipp")
        .args(["-sf", &scenario("uas_echo"), "-i", "127.0.0.1", "-p", &uas_port.to_string()])
        .args(["-mp", &uas_mp.to_string(), "-rtp_echo", "-m", &n])
        .args(["-nostdin", "-timeout", "100s", "-timeout_error", "-trace_stat", "-fd", "1"])
        .args(["-stf", dir.join("uas.csv").to_str().unwrap()])
        .args(&trace)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp uas");
    g.sipps.push(uas);
    assert!(xtrunk_signaling::testing::wait_port_bound(uas_port, Duration::from_secs(10)), "SIPp UAS did not bind");
    // PBX: CALLS calls, RATE/s, at most LIMIT at once, each streaming 2 s of PCMA.
    let uac = Command::new("sipp")
        .arg(format!("127.0.0.1:{sip_port}"))
        .args(["-sf", &scenario("uac_rtpstream"), "-i", "127.0.0.1", "-p", &uac_port.to_string()])
        .args(["-mp", &uac_mp.to_string()])
        .args(["-r", &RATE.to_string(), "-l", &LIMIT.to_string(), "-m", &n])
        .args(["-nostdin", "-timeout", "100s", "-timeout_error", "-trace_stat", "-fd", "1"])
        .args(["-stf", dir.join("uac.csv").to_str().unwrap()])
        .args(&trace)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp uac");
    g.sipps.push(uac);

    let st_uac = wait_sipp(&mut g, 1, Duration::from_secs(110));
    let uac_err = if st_uac.is_some_and(|s| s.success()) { String::new() } else { stderr_of(&mut g.sipps[1]) };
    let (uac_ok, uac_failed) = read_stat(&dir.join("uac.csv"));
    let st_uas = wait_sipp(&mut g, 0, Duration::from_secs(15));
    let uas_err = if st_uas.is_some_and(|s| s.success()) { String::new() } else { stderr_of(&mut g.sipps[0]) };
    let (uas_ok, uas_failed) = read_stat(&dir.join("uas.csv"));
    let sipp_done = started.elapsed();
    eprintln!(
        "uac {st_uac:?} ok {uac_ok} failed {uac_failed}; uas {st_uas:?} ok {uas_ok} failed {uas_failed}; {sipp_done:?}"
    );
    assert!(st_uac.is_some_and(|s| s.success()), "uac exit {st_uac:?}: {uac_err}\nxtrunk log tail:\n{}", g.log_tail());
    assert_eq!((uac_ok, uac_failed), (calls as u64, 0), "uac calls");
    assert!(st_uas.is_some_and(|s| s.success()), "uas exit {st_uas:?}: {uas_err}");
    assert_eq!((uas_ok, uas_failed), (calls as u64, 0), "uas calls");

    // CDRs: written when the carrier's 200 to the BYE lands; allow a moment for the last ones.
    let cdr_file = dir.join("cdr.jsonl");
    let t = Instant::now() + Duration::from_secs(10);
    let cdr = loop {
        let c = fs::read_to_string(&cdr_file).unwrap_or_default();
        if c.lines().count() >= calls || Instant::now() > t {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows: Vec<(String, u64, u64, u64)> = cdr.lines().filter(|l| !l.trim().is_empty()).map(cdr_fields).collect();
    assert_eq!(rows.len(), calls, "CDR records; log tail:\n{}", g.log_tail());
    let mut ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), calls, "one CDR per call");
    let (mut min0, mut min1, mut sum0, mut sum1) = (u64::MAX, u64::MAX, 0, 0);
    let mut bad = vec![];
    for (line, (id, disp, p0, p1)) in cdr.lines().zip(&rows) {
        min0 = min0.min(*p0);
        min1 = min1.min(*p1);
        sum0 += p0;
        sum1 += p1;
        if *disp != 200 || *p0 <= MIN_PKTS || *p1 <= MIN_PKTS {
            bad.push(format!("{id}: {line}"));
        }
    }
    eprintln!("CDR packets leg0 min {min0} total {sum0}; leg1 min {min1} total {sum1}");
    assert!(
        bad.is_empty(),
        "{} of {calls} calls without disposition 200 and media both ways (> {MIN_PKTS} packets per leg), e.g.:\n{}",
        bad.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );

    // Clean stop.
    let mut sup = g.supervisor.take().unwrap();
    let pid = sup.id() as i32;
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = sup.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > t {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    g.supervisor = Some(sup);
    let status = status.unwrap_or_else(|| panic!("supervisor did not exit on SIGTERM; log tail:\n{}", g.log_tail()));
    assert!(status.success(), "supervisor exit {status}; log tail:\n{}", g.log_tail());
    assert!(!shm.exists(), "shm file left behind");
    eprintln!("total {:?}", started.elapsed());
}
