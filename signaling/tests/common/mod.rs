//! Helpers shared by the SIPp tests (`sipp.rs`, `srtp_sipp.rs`): free ports, the in-process
//! sidecar, SIPp processes and their statistics.

#![allow(dead_code)]

pub(crate) mod servers;
pub(crate) mod tls;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use xtrunk_config::{Config, Listen, Route, Target, Transport, Trunk, TrunkRole};
use xtrunk_signaling::{LoopbackMedia, Server, Summary};

pub(crate) mod pcap;

pub(crate) fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios").join(format!("{name}.xml")).display().to_string()
}

pub(crate) fn sipp_available() -> bool {
    Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A free UDP port whose +1 is free too (SIPp media binds RTP and RTCP).
pub(crate) fn free_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p.is_multiple_of(2) && p < 65_000 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// A test's scratch directory, removed when the test passes (kept after a panic, for the logs).
pub(crate) struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test scratch directory kept: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub(crate) fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("xtrunk-sig-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

pub(crate) fn trunk(name: &str, role: TrunkRole, acl: &[&str], targets: &[u16]) -> Trunk {
    Trunk {
        name: name.into(),
        role,
        account: None,
        kind: Default::default(),
        auth: Default::default(),
        users: vec![],
        registrations: vec![],
        acl_aliases: vec![],
        verify_port: false,
        limits: Default::default(),
        numbers: Default::default(),
        acl: acl.iter().map(|a| a.parse().unwrap()).collect(),
        domain: None,
        failover: vec![],
        sip_address: Default::default(),
        tls: None,
        registrar: Default::default(),
        targets: targets.iter().map(|p| Target::udp(SocketAddr::from(([127, 0, 0, 1], *p)))).collect(),
        codecs: vec!["PCMA".into(), "PCMU".into(), "telephone-event".into()],
        srtp: Default::default(),
        srtp_suites: vec![],
        srtp_with_tls: false,
        latch: None,
        leg_timeout_secs: None,
        transfer: false,
        transports: vec![],
        g711_transcode: true,
        dtmf: "rfc4733".into(),
        sip_listen: None,
        media_ip: None,
        options: Default::default(),
        distribution: Default::default(),
    }
}

pub(crate) struct Sidecar {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Summary>>,
    pub(crate) port: u16,
    pub(crate) dir: TmpDir,
    /// Raised by [`Sidecar::reload`]: the sidecar re-reads `dir/xtrunk.toml` (what SIGHUP does).
    reload: Arc<AtomicBool>,
}

impl Sidecar {
    pub(crate) fn start(name: &str, carriers: &[u16], tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(name, carriers, tweak, false, |s| s)
    }

    /// As [`Sidecar::start`], the server adjusted by `shell` before it runs (e.g.
    /// `Server::slow_input`).
    pub(crate) fn start_shell(
        name: &str,
        carriers: &[u16],
        tweak: impl FnOnce(&mut Config),
        shell: impl FnOnce(Server<LoopbackMedia>) -> Server<LoopbackMedia>,
    ) -> Self {
        Self::start_with(name, carriers, tweak, false, shell)
    }

    /// As [`Sidecar::start`], its configuration written to `xtrunk.toml` and re-read on
    /// [`Sidecar::reload`] (the SIGHUP path of `xtrunk signaling`).
    pub(crate) fn start_reloadable(name: &str, carriers: &[u16], tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(name, carriers, tweak, true, |s| s)
    }

    /// Raises the reload flag (as SIGHUP does) and gives the loop time to take it.
    pub(crate) fn reload(&self) {
        self.reload.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(500));
    }

    fn start_with(
        name: &str,
        carriers: &[u16],
        tweak: impl FnOnce(&mut Config),
        reloadable: bool,
        shell: impl FnOnce(Server<LoopbackMedia>) -> Server<LoopbackMedia>,
    ) -> Self {
        let _ = env_logger::builder().is_test(true).try_init();
        let dir = tmpdir(name);
        let port = free_port();
        let mut cfg = Config::embedded_default().unwrap();
        cfg.node.shm_path = dir.join("shm");
        cfg.node.cdr_path = Some(dir.join("cdr.jsonl"));
        cfg.sip.listen = vec![Listen {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: None,
            advertised: None,
        }];
        cfg.sip.timers.t1_ms = 200;
        cfg.sip.no_answer_timeout_secs = 30;
        cfg.media.port_min = 20_000;
        cfg.media.port_max = 29_999;
        cfg.trunks = vec![
            trunk("pbx", TrunkRole::Customer, &["127.0.0.0/8"], &[]),
            trunk("carrier", TrunkRole::Carrier, &[], carriers),
        ];
        cfg.routes = vec![Route::to("", Some("pbx"), "carrier")];
        tweak(&mut cfg);
        let mut server = shell(Server::bind(&cfg, LoopbackMedia::default()).unwrap());
        let reload = Arc::new(AtomicBool::new(false));
        if reloadable {
            let path = dir.join("xtrunk.toml");
            std::fs::write(&path, cfg.to_toml().unwrap()).unwrap();
            server = server.reload_on(path, reload.clone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let handle = std::thread::spawn(move || server.run(s2).unwrap());
        Self { stop, handle: Some(handle), port, dir, reload }
    }

    pub(crate) fn stop(mut self) -> Summary {
        // Let in-flight teardown (BYE/ACK retransmissions, Deleted events) settle.
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }

    /// Stops the sidecar, then reads every CDR it wrote (a call that just ended may not have
    /// written its CDR yet when the test's SIPp exits; after the stop every one is there).
    #[allow(dead_code)] // not every test file reads CDRs
    pub(crate) fn stop_with_cdrs(mut self) -> (Summary, Vec<serde_json::Value>) {
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        let s = self.handle.take().unwrap().join().unwrap();
        let cdrs = self.cdrs();
        (s, cdrs)
    }

    pub(crate) fn cdrs(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("cdr.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub(crate) struct Sipp {
    child: Child,
    stat: PathBuf,
    name: String,
}

/// Starts a SIPp instance. `remote`: where a UAC sends; `calls`: `-m`.
pub(crate) fn sipp(
    dir: &Path,
    tag: &str,
    sf: &str,
    port: u16,
    remote: Option<u16>,
    calls: usize,
    extra: &[&str],
) -> Sipp {
    sipp_to(dir, tag, sf, port, remote.map(|r| SocketAddr::from(([127, 0, 0, 1], r))), calls, extra)
}

/// [`sipp`] toward any address.
pub(crate) fn sipp_to(
    dir: &Path,
    tag: &str,
    sf: &str,
    port: u16,
    remote: Option<SocketAddr>,
    calls: usize,
    extra: &[&str],
) -> Sipp {
    let stat = dir.join(format!("{tag}.csv"));
    let mut c = Command::new("sipp");
    if let Some(r) = remote {
        c.arg(r.to_string());
    }
    c.args(["-sf", &scenario(sf), "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-mp", &xtrunk_signaling::testing::sipp_media_port().to_string(), "-m", &calls.to_string()])
        .args(["-nostdin", "-timeout", "50s", "-timeout_error", "-trace_stat", "-fd", "1"])
        .args(["-stf", stat.to_str().unwrap()])
        .args(extra)
        .args(if std::env::var_os("XT_SIPP_TRACE").is_some() { vec!["-trace_msg", "-trace_err"] } else { vec![] })
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("spawn sipp");
    if remote.is_none() {
        // A UAS: nothing is sent to it before it listens.
        let bound = xtrunk_signaling::testing::wait_port_bound(port, Duration::from_secs(10));
        assert!(bound, "SIPp {tag} ({sf}) did not bind port {port} in 10 s");
    }
    Sipp { child, stat, name: format!("{tag} ({sf})") }
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) ok: bool,
    pub(crate) successful: u64,
    pub(crate) failed: u64,
}

impl Sipp {
    pub(crate) fn wait(mut self) -> Outcome {
        let st = self.child.wait().unwrap();
        let (successful, failed) = read_stat(&self.stat);
        if !st.success() {
            let mut e = String::new();
            use std::io::Read;
            let _ = self.child.stderr.take().unwrap().read_to_string(&mut e);
            eprintln!("{}: exit {st}; stderr: {e}", self.name);
        }
        Outcome { ok: st.success(), successful, failed }
    }
}

impl Sipp {
    /// Stops a SIPp that would run on (a UAS with calls left, a carrier behind a limit) and
    /// reads its statistics.
    pub(crate) fn kill(mut self) -> Outcome {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (successful, failed) = read_stat(&self.stat);
        Outcome { ok: true, successful, failed }
    }
}

/// SuccessfulCall(C) and FailedCall(C) from the last row of SIPp's statistics CSV.
pub(crate) fn read_stat(p: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let mut lines = text.lines();
    let Some(head) = lines.next() else { return (0, 0) };
    let Some(last) = lines.rfind(|l| !l.trim().is_empty()) else { return (0, 0) };
    let cols: Vec<&str> = head.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get =
        |n: &str| cols.iter().position(|c| *c == n).and_then(|i| vals.get(i)).and_then(|v| v.parse().ok()).unwrap_or(0);
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

pub(crate) fn assert_clean(s: &Summary) {
    assert_eq!(s.active_calls, 0, "calls left: {s:?}");
    assert_eq!(s.pending_deletes, 0, "sessions not deleted: {s:?}");
    assert_eq!(s.ports_free, s.ports_total, "ports leaked: {s:?}");
}

/// Runs one carrier UAS + one PBX UAC through the sidecar.
pub(crate) fn pair(
    name: &str,
    uac: &str,
    uas: &str,
    calls: usize,
    rate: u32,
    uac_extra: &[&str],
    tweak: impl FnOnce(&mut Config),
) -> (Outcome, Outcome, Summary, Vec<serde_json::Value>) {
    let uas_port = free_port();
    let side = Sidecar::start(name, &[uas_port], tweak);
    let carrier = sipp(&side.dir, "uas", uas, uas_port, None, calls, &[]);
    std::thread::sleep(Duration::from_millis(200));
    let rate_s = rate.to_string();
    let mut extra = vec!["-r", &rate_s];
    extra.extend_from_slice(uac_extra);
    let pbx = sipp(&side.dir, "uac", uac, free_port(), Some(side.port), calls, &extra);
    let a = pbx.wait();
    let b = carrier.wait();
    let (s, cdrs) = side.stop_with_cdrs();
    (a, b, s, cdrs)
}

#[allow(unused_macros)] // not every test file that shares these helpers runs SIPp
macro_rules! need_sipp {
    () => {
        if !sipp_available() {
            eprintln!("sipp not installed; skipping");
            return;
        }
    };
}

/// The sidecar with the socket-backend datapath in process (`ChannelMedia`, real UDP on
/// loopback, media ports `ports`): SIPp's media crosses the real relay.
pub(crate) struct MediaEdge {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Summary>>,
    dp_stop: Arc<AtomicBool>,
    dp: Option<JoinHandle<Result<(), xtrunk_datapath::socket::Error>>>,
    pub(crate) port: u16,
    pub(crate) dir: TmpDir,
    pub(crate) stats: Arc<xtrunk_datapath::socket::Stats>,
}

impl MediaEdge {
    pub(crate) fn start(name: &str, ports: (u16, u16), carriers: &[u16], tweak: impl FnOnce(&mut Config)) -> Self {
        use xtrunk_datapath::socket::{run_with_stats, SocketOptions, Stats};
        let _ = env_logger::builder().is_test(true).try_init();
        let dir = tmpdir(name);
        let (cmd_tx, cmd_rx) = std::sync::mpsc::sync_channel(1024);
        let (ev_tx, ev_rx) = std::sync::mpsc::sync_channel(1024);
        let dp_stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let opts = SocketOptions {
            bind_ip: "127.0.0.1".parse().unwrap(),
            port_min: ports.0,
            port_max: ports.1,
            cores: vec![],
            max_sessions: 16,
            batch: 32,
        };
        let (s2, st2) = (dp_stop.clone(), stats.clone());
        let dp = std::thread::spawn(move || run_with_stats(opts, cmd_rx, ev_tx, s2, st2));
        let port = free_port();
        let mut cfg = Config::embedded_default().unwrap();
        cfg.node.shm_path = dir.join("shm");
        cfg.node.cdr_path = Some(dir.join("cdr.jsonl"));
        cfg.sip.listen = vec![Listen {
            transport: Transport::Udp,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: None,
            advertised: None,
        }];
        cfg.sip.timers.t1_ms = 200;
        cfg.media.port_min = ports.0;
        cfg.media.port_max = ports.1;
        cfg.trunks = vec![
            trunk("pbx", TrunkRole::Customer, &["127.0.0.0/8"], &[]),
            trunk("carrier", TrunkRole::Carrier, &[], carriers),
        ];
        cfg.routes = vec![Route::to("", Some("pbx"), "carrier")];
        tweak(&mut cfg);
        let media = xtrunk_signaling::media::ChannelMedia { tx: cmd_tx, rx: ev_rx };
        let server = Server::bind(&cfg, media).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s3 = stop.clone();
        let handle = std::thread::spawn(move || server.run(s3).unwrap());
        Self { stop, handle: Some(handle), dp_stop, dp: Some(dp), port, dir, stats }
    }

    /// Stops both (after in-flight teardown settles); the summary and every CDR written.
    pub(crate) fn stop(mut self) -> (Summary, Vec<serde_json::Value>) {
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        let s = self.handle.take().unwrap().join().unwrap();
        self.dp_stop.store(true, Ordering::Relaxed);
        let _ = self.dp.take().unwrap().join();
        let cdrs = std::fs::read_to_string(self.dir.join("cdr.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (s, cdrs)
    }
}
