//! Shared by the tests that run the real `xtrunk run` binary: a guard that kills everything the
//! test started (the supervisor, the children it logged, SIPp) and removes its files, free-port
//! probes, and the test configuration file.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xtrunk_signaling::sip::msg::{parse, Message};

pub(crate) mod ops;

/// Kills (SIGKILL) every process a test started or learnt the pid of, and removes its files.
pub(crate) struct Guard {
    pub(crate) supervisor: Option<Child>,
    pub(crate) sipps: Vec<Child>,
    pub(crate) log: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) shm: PathBuf,
}

impl Guard {
    /// A guard for a run whose supervisor logs to `log`, with files in `dir` and the ring at `shm`.
    pub(crate) fn new(log: &Path, dir: &Path, shm: &Path) -> Self {
        Self {
            supervisor: None,
            sipps: Vec::new(),
            log: log.to_path_buf(),
            dir: dir.to_path_buf(),
            shm: shm.to_path_buf(),
        }
    }

    /// Starts `xtrunk run --config cfg` as the supervisor, logging into the guard's log at `info`
    /// (or at `$XT_TEST_LOG`, e.g. `XT_TEST_LOG=debug`, to see the datapath's periodic summary).
    pub(crate) fn start(&mut self, cfg: &Path) {
        self.start_logging(cfg, "info");
    }

    /// [`Guard::start`] with `RUST_LOG=rust_log`.
    pub(crate) fn start_logging(&mut self, cfg: &Path, rust_log: &str) {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_xtrunk"))
            .arg("run")
            .arg("--config")
            .arg(cfg)
            .env("RUST_LOG", std::env::var("XT_TEST_LOG").unwrap_or_else(|_| rust_log.into()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&self.log).unwrap())
            .spawn()
            .expect("spawn xtrunk");
        self.supervisor = Some(child);
    }

    /// The supervisor's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 60 lines of the log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let l = self.log();
        let lines: Vec<&str> = l.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Pids the supervisor logged for its children.
    pub(crate) fn child_pids(&self) -> Vec<i32> {
        let log = self.log();
        ["datapath started (pid ", "sidecar started (pid ", "sidecar restarted (pid "]
            .iter()
            .flat_map(|k| log.match_indices(k).map(|(i, k)| &log[i + k.len()..]).collect::<Vec<_>>())
            .filter_map(|rest| rest.split(')').next()?.parse().ok())
            .collect()
    }

    /// Waits for `needle` to appear in the log `n` times.
    pub(crate) fn wait_log(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        let t = Instant::now() + timeout;
        while Instant::now() < t {
            if self.log().matches(needle).count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.sipps {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut c) = self.supervisor.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pid in self.child_pids() {
            // SAFETY: kill(2) on pids our supervisor logged as its children; signal 0 first so
            // only processes that still exist are signalled. No memory is involved.
            unsafe {
                if libc::kill(pid, 0) == 0 {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        let _ = fs::remove_file(&self.shm);
        let _ = fs::remove_file(xtrunk_signaling::journal::path_for(&self.shm));
        if std::env::var_os("XT_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A free even UDP port whose +1 is free too, outside the `(first, count)` ranges in `avoid`.
pub(crate) fn free_port(avoid: &[(u16, u16)]) -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p.is_multiple_of(2)
            && p < 60_000
            && !avoid.iter().any(|&(lo, n)| p + 1 >= lo && p < lo + n)
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
}

/// A free range of `n` UDP ports starting on an even port (every port probed), not overlapping
/// `avoid`.
pub(crate) fn free_range(n: u16, avoid: &[(u16, u16)]) -> u16 {
    // Below the kernel's ephemeral ports: a range free now stays free of the sockets the tests'
    // SIPps and clients bind to port 0 later (a media port taken that way fails a Create with
    // PortInUse mid-test).
    let eph_lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u16>().ok()))
        .unwrap_or(32_768);
    // 30000..32760 is the SIPps' media band (`testing::sipp_media_port`).
    let (floor, top) = (10_000u16, eph_lo.min(30_000).max(10_000 + n + 2));
    let span = top - floor - n;
    // Tests of one binary run in parallel and their edges bind media ports only per call: a
    // range handed out here is never handed out again by this process, free now or not.
    static GIVEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    for k in 0..400u16 {
        let base = floor + (seed.wrapping_add(k.wrapping_mul(3_001)) % span) / 2 * 2;
        let overlaps = |&(lo, m): &(u16, u16)| base < lo + m && lo < base + n;
        if base + n > top || avoid.iter().any(overlaps) || given.iter().any(overlaps) {
            continue;
        }
        if (base..base + n).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            given.push((base, n));
            return base;
        }
    }
    panic!("no free range of {n} ports");
}

/// What differs between the tests' configurations.
pub(crate) struct TestConfig<'a> {
    /// `[node].name`.
    pub(crate) name: &'a str,
    /// The sidecar's UDP SIP port on 127.0.0.1.
    pub(crate) sip: u16,
    /// The carrier's UDP SIP port on 127.0.0.1.
    pub(crate) carrier: u16,
    /// First media port (even).
    pub(crate) media: u16,
    /// Number of media ports.
    pub(crate) media_ports: u16,
    /// `[datapath].max_sessions`.
    pub(crate) max_sessions: u16,
    /// `[sip.timers].t1_ms`.
    pub(crate) t1_ms: u32,
}

/// Writes `dir/xtrunk.toml`: loopback, socket backend, ring at `shm`, CDRs in `dir/cdr.jsonl`,
/// a PBX trunk for 127.0.0.0/8 whose calls all go to the carrier.
pub(crate) fn write_config(dir: &Path, shm: &Path, c: &TestConfig<'_>) -> PathBuf {
    let text = format!(
        r#"[node]
name = "{name}"
shm_path = "{shm}"
log_level = "info"
cdr_path = "{cdr}"

[[sip.listen]]
transport = "udp"
addr = "127.0.0.1:{sip}"

[sip.timers]
t1_ms = {t1}
t2_ms = 4000
t4_ms = 5000

[media]
port_min = {media}
port_max = {media_max}
bind_ip = "127.0.0.1"
timeout_secs = 60
latch = "once"

[datapath]
backend = "socket"
max_sessions = {max_sessions}

[[trunk]]
name = "pbx"
role = "customer"
acl = ["127.0.0.0/8"]
codecs = ["PCMA", "PCMU", "telephone-event"]

[[trunk]]
name = "carrier"
role = "carrier"
targets = [{{ addr = "127.0.0.1:{carrier}", transport = "udp" }}]
codecs = ["PCMA", "PCMU", "telephone-event"]

[[route]]
prefix = ""
from_trunk = "pbx"
trunk = "carrier"
"#,
        name = c.name,
        shm = shm.display(),
        cdr = dir.join("cdr.jsonl").display(),
        sip = c.sip,
        t1 = c.t1_ms,
        media = c.media,
        media_max = c.media + c.media_ports - 1,
        max_sessions = c.max_sessions,
        carrier = c.carrier,
    );
    let f = dir.join("xtrunk.toml");
    fs::write(&f, text).unwrap();
    f
}

// ---------------------------------------------------------------- SIP and RTP peers played by the tests

/// A loopback UDP socket with a 100 ms read timeout.
pub(crate) fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s
}

/// Receives until a message matching `pred` arrives (others are skipped); None on timeout.
pub(crate) fn recv_msg(
    s: &UdpSocket,
    timeout: Duration,
    pred: impl Fn(&Message) -> bool,
) -> Option<(Message, SocketAddr)> {
    let t = Instant::now() + timeout;
    let mut buf = [0u8; 65_536];
    while Instant::now() < t {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            if let Ok(m) = parse(&buf[..n]) {
                if pred(&m) {
                    return Some((m, from));
                }
            }
        }
    }
    None
}

pub(crate) fn is_req(m: &'static str) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.method().map(|k| k.as_str() == m).unwrap_or(false)
}

pub(crate) fn is_resp(code: u16, method: &'static str) -> impl Fn(&Message) -> bool {
    move |x: &Message| x.code() == Some(code) && x.cseq().is_some_and(|c| c.method.as_str() == method)
}

pub(crate) fn sdp(o: &str, port: u16) -> String {
    format!("v=0\r\no={o} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n")
}

pub(crate) fn sdp_port(body: &[u8]) -> u16 {
    let t = String::from_utf8_lossy(body);
    let m = t.lines().find(|l| l.starts_with("m=audio ")).expect("m=audio");
    m.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Sends RTP (PCMA, 20 ms) from `from` to `to` until `stop`.
pub(crate) fn rtp_sender(from: UdpSocket, to: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut seq: u16 = 0;
        let mut ts: u32 = 0;
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            p.extend_from_slice(&[0xd5; 160]);
            if from.send_to(&p, to).is_ok() {
                sent += 1;
            }
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            std::thread::sleep(Duration::from_millis(20));
        }
        sent
    })
}

/// Counts RTP packets arriving on `sock` until `stop`.
pub(crate) fn rtp_counter(
    sock: UdpSocket,
    count: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if n >= 12 && buf[0] >> 6 == 2 {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// Packets counted during `d`.
pub(crate) fn arrivals(count: &AtomicU64, d: Duration) -> u64 {
    let a = count.load(Ordering::Relaxed);
    std::thread::sleep(d);
    count.load(Ordering::Relaxed) - a
}

/// Waits until the edge at `xt` answers OPTIONS from `pbx` (panics with the log if the
/// supervisor exits or 100 tries go unanswered).
pub(crate) fn wait_ready(g: &mut Guard, pbx: &UdpSocket, xt: SocketAddr, tag: &str) {
    let pbx_addr = pbx.local_addr().unwrap();
    for i in 0..100 {
        let opt = format!("OPTIONS sip:xtrunk@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {pbx_addr};branch=z9hG4bKo{i};rport\r\nFrom: <sip:100@127.0.0.1>;tag=o{i}\r\nTo: <sip:xtrunk@{xt}>\r\nCall-ID: opt{i}-{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        pbx.send_to(opt.as_bytes(), xt).unwrap();
        if let Some(s) = g.supervisor.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("xtrunk exited early ({s}); log:\n{}", g.log());
        }
        if recv_msg(pbx, Duration::from_millis(100), is_resp(200, "OPTIONS")).is_some() {
            return;
        }
    }
    panic!("xtrunk did not answer OPTIONS; log:\n{}", g.log());
}
