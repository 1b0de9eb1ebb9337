//! `xtrunk-bench soak`: many sessions for a long time, with malformed packets and rejected
//! outsiders in the mix; the datapath's memory must stay flat and no session may be lost.
//!
//! **Processes.** The bench re-executes itself (hidden `--datapath-child`) as the datapath: the
//! socket backend (`xtrunk_datapath::socket::run_with_stats`, one worker pinned to
//! `--relay-core`) behind a session ring it creates under `/dev/shm`, like `xtrunk datapath`
//! does. The parent attaches to the ring as the signaling side (as the sidecar does, and as
//! `relay` does against a running datapath: [`crate::relay::Ctl`]), so every Create, Delete,
//! Created, Deleted and MediaTimeout crosses the real shared-memory ring. Running the datapath in
//! its own process isolates its memory: the RSS figures are `VmRSS` of that process
//! (`/proc/PID/status`), which covers its heap, its worker's buffers and the mapped ring pages it
//! touched, and nothing of the load generator. The child prints its backend counters
//! ([`socket::Stats`]) on its stdout twice a second; it stops when its stdin closes (the parent
//! is done or gone) or at a hard deadline.
//!
//! **Load.** Session `i` has two legs with rtcp-mux (2 relay sockets per session): leg 0 (the
//! caller) on `--port-base + 4i`, leg 1 on `+ 4i + 2` (RTP ports are even). `--load-threads` paced senders share
//! the sessions; each sends `--pps-per-session` packets/s to every caller leg it owns from
//! `--peer-ip`. Of those, `--malformed-pct` are malformed, in turn a truncated RTP header
//! (8 bytes: `malformed_rtp`), a wrong RTP version (`foreign`) and garbage (`foreign`). On top,
//! `--outsider-pct` extra packets go from `--outsider-ip` (a third party, not the leg's peer) to
//! the same ports: valid RTP with the session's SSRC, which the relay must drop
//! (`source_mismatch`) and never forward. A receiver thread counts what arrives at the far legs'
//! peers. A sender that falls more than 100 ms behind skips ahead, so what it offers is what the
//! machine could send, reported as such.
//!
//! **Verdict.** After `--seconds` the senders stop by themselves; the bench deletes every session
//! and checks that each came back `Deleted` with its stats (sessions created = deleted with
//! stats) and that no session got a `MediaTimeout` while it was being fed, and compares the RSS
//! sampled after `--warmup-secs` with the last sample before the deletes (within
//! `--rss-tolerance-pct`). It exits non-zero if either criterion fails.

use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use xtrunk_datapath::relay::DropReason;
use xtrunk_datapath::socket::{self, BatchSocket, EventSink, SocketOptions, Stats};
use xtrunk_ring::msg::{Event, SessionId, SessionSpec};
use xtrunk_ring::{EventSender, Shm};

use crate::lab;
use crate::relay::{self, Ctl};

mod load;
mod report;

use load::{Live, LoadPlan};
use report::{Report, RssSamples};

/// Arguments of `xtrunk-bench soak`.
#[derive(clap::Args, Debug, Clone)]
#[command(long_about = "\
Soak test of the datapath: N sessions for a long time at a steady packet rate, with malformed
packets and a background of rejected outsiders.

The datapath (socket backend, one worker on --relay-core) runs in a child process behind a real
session ring; this process drives it as the signaling sidecar does. Every --sample-secs it
samples the child's VmRSS; every --report-secs it prints a progress line (elapsed, offered and
delivered pps, the datapath's drops by reason, RSS). At the end it deletes all sessions.

Pass criteria (printed; the exit status is non-zero if one fails):
  - RSS at the end within --rss-tolerance-pct of RSS after --warmup-secs;
  - no session lost: every session created came back Deleted with its stats, and none reported
    a MediaTimeout while it was being fed.
Throughput is reported, not judged: offered and delivered rates are what this machine did.

Needs 2 descriptors per session in the child (rtcp-mux: one socket per leg): the bench raises
RLIMIT_NOFILE itself; if the hard limit is too low (raising it needs CAP_SYS_RESOURCE), raise
it with `ulimit -Hn` or run fewer --sessions (the error says how many fit).

Example (the acceptance run, about 11 minutes):
  xtrunk-bench soak --sessions 10000 --seconds 600 --pps-per-session 50 --malformed-pct 1")]
pub(crate) struct SoakArgs {
    /// Sessions held for the whole run.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Seconds of traffic; the senders stop by themselves after it.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// RTP packets per second sent to every session's caller leg (50 = 20 ms ptime).
    #[arg(long, default_value_t = 50)]
    pps_per_session: u32,
    /// Percent of those packets that are malformed (truncated header, bad version, garbage).
    #[arg(long, default_value_t = 1.0)]
    malformed_pct: f64,
    /// Extra packets from a third-party address, in percent of the RTP rate (rejected outsiders).
    #[arg(long, default_value_t = 1.0)]
    outsider_pct: f64,
    /// The RSS after this many seconds of traffic is the reference for the flatness check.
    #[arg(long, default_value_t = 60)]
    warmup_secs: u64,
    /// Allowed RSS change from the warm-up sample to the end, in percent.
    #[arg(long, default_value_t = 5.0)]
    rss_tolerance_pct: f64,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 5)]
    sample_secs: u64,
    /// Seconds between progress lines (on stderr).
    #[arg(long, default_value_t = 10)]
    report_secs: u64,
    /// Media timeout of every session, in seconds (a timeout while fed counts as a lost session).
    #[arg(long, default_value_t = 30)]
    media_timeout_secs: u32,
    /// Sender threads (the sessions are split between them).
    #[arg(long, default_value_t = 1)]
    load_threads: usize,
    /// Peer sockets per sender thread, and on the receiving side.
    #[arg(long, default_value_t = 8)]
    peer_sockets: usize,
    /// Core the datapath's worker is pinned to.
    #[arg(long, default_value_t = 0)]
    relay_core: usize,
    /// The datapath's media IP.
    #[arg(long, default_value = "127.0.0.1")]
    media_ip: IpAddr,
    /// Address the legs' peers send and receive on.
    #[arg(long, default_value = "127.0.0.2")]
    peer_ip: IpAddr,
    /// Address the outsiders send from (must differ from --peer-ip).
    #[arg(long, default_value = "127.0.0.3")]
    outsider_ip: IpAddr,
    /// First media port (even); session i uses --port-base + 4i (caller) and + 4i + 2 (callee).
    #[arg(long, default_value_t = 10_000)]
    port_base: u16,
    /// Datagrams per recvmmsg/sendmmsg, datapath and load.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// RTP payload bytes (160 = 20 ms of G.711).
    #[arg(long, default_value_t = 160)]
    payload: usize,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Internal: run as the datapath child on this ring file.
    #[arg(long, hide = true)]
    datapath_child: Option<PathBuf>,
}

/// Descriptors the datapath child needs besides its session sockets (stdio, epoll, eventfd,
/// ring, a few inherited; measured 5-7).
const FD_RESERVE: u64 = 16;
/// Marks an outsider's packet (first payload byte), so a forwarded one is recognised.
const OUTSIDER_MARK: u8 = 0xEE;
const RTP_HDR: usize = 12;
/// How far behind a sender may fall before it skips ahead.
const MAX_LAG: Duration = Duration::from_millis(100);

/// Runs `xtrunk-bench soak`.
pub(crate) fn run(args: SoakArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.datapath_child {
        return datapath_child(&args, path);
    }
    let _ = lab::interrupted();
    validate(&args)?;
    let report = soak(&args)?;
    println!("{}", report.summary(&args));
    if args.json {
        println!("{}", report.json(&args));
    }
    if lab::interrupted().load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    if !report.passed(&args) {
        bail!("soak: a pass criterion failed (see above)");
    }
    Ok(())
}

fn validate(a: &SoakArgs) -> anyhow::Result<()> {
    let pos = |v: u64, name: &str| if v == 0 { Err(anyhow!("{name} must be positive")) } else { Ok(()) };
    pos(a.sessions as u64, "--sessions")?;
    pos(a.seconds, "--seconds")?;
    pos(u64::from(a.pps_per_session), "--pps-per-session")?;
    pos(a.sample_secs, "--sample-secs")?;
    pos(a.report_secs, "--report-secs")?;
    pos(a.load_threads as u64, "--load-threads")?;
    pos(a.peer_sockets as u64, "--peer-sockets")?;
    for (v, name) in [(a.malformed_pct, "--malformed-pct"), (a.outsider_pct, "--outsider-pct")] {
        if !(0.0..=100.0).contains(&v) {
            bail!("{name} must be within 0..=100, got {v}");
        }
    }
    if a.rss_tolerance_pct.is_nan() || a.rss_tolerance_pct <= 0.0 {
        bail!("--rss-tolerance-pct must be positive, got {}", a.rss_tolerance_pct);
    }
    if a.warmup_secs >= a.seconds {
        bail!("--warmup-secs ({}) must be shorter than --seconds ({})", a.warmup_secs, a.seconds);
    }
    if a.outsider_ip == a.peer_ip {
        bail!("--outsider-ip must differ from --peer-ip: a packet from the peer's IP may latch");
    }
    if a.load_threads > a.sessions {
        bail!("--load-threads ({}) exceeds --sessions ({})", a.load_threads, a.sessions);
    }
    if !(1..=1024).contains(&a.batch) {
        bail!("--batch must be 1..=1024, got {}", a.batch);
    }
    if !(RTP_HDR..=1200).contains(&(a.payload + RTP_HDR)) || a.payload == 0 {
        bail!("--payload must be 1..=1188 bytes, got {}", a.payload);
    }
    let last = usize::from(a.port_base) + 4 * a.sessions - 1;
    if a.port_base == 0 || !a.port_base.is_multiple_of(2) {
        bail!("--port-base must be even and positive (RTP ports are even), got {}", a.port_base);
    }
    if last > 65535 {
        bail!("--sessions {} spans {} ports from --port-base {}: past 65535", a.sessions, 4 * a.sessions, a.port_base);
    }
    let want = 2 * a.sessions as u64 + FD_RESERVE;
    let got = socket::raise_nofile_limit(want);
    if got < want {
        bail!(
            "--sessions {}: the datapath needs {want} descriptors (2 sockets per session), but RLIMIT_NOFILE \
             stops at {got} (the hard limit; raising it needs CAP_SYS_RESOURCE): raise it (`ulimit -Hn {want}` \
             as root) or run at most --sessions {}",
            a.sessions,
            got.saturating_sub(FD_RESERVE) / 2
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The datapath child

/// The child's event sink: the ring's sender; a full ring is waited out (back-pressure).
struct RingSink {
    tx: EventSender,
    stop: Arc<AtomicBool>,
}

impl EventSink for RingSink {
    fn send_event(&mut self, ev: Event) {
        while self.tx.try_send(&ev).is_err() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// One counters line of the child: `stats rx tx tx_errors sessions drop...` (drops in
/// [`DropReason::ALL`] order).
fn stats_line(s: &Stats) -> String {
    let mut l = format!(
        "stats {} {} {} {}",
        s.rx_packets.load(Ordering::Relaxed),
        s.tx_packets.load(Ordering::Relaxed),
        s.tx_errors.load(Ordering::Relaxed),
        s.sessions.load(Ordering::Relaxed)
    );
    for r in DropReason::ALL {
        l.push_str(&format!(" {}", s.drops(r)));
    }
    l
}

fn datapath_child(args: &SoakArgs, path: &Path) -> anyhow::Result<()> {
    let shm = Shm::create(path, 4096, 4096).with_context(|| format!("creating the ring at {}", path.display()))?;
    let (mut rx, tx) = shm.datapath_end()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    {
        // The parent closes our stdin when it is done (or dies).
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            stop.store(true, Ordering::Relaxed);
        });
    }
    let reporter = {
        let (stop, stats) = (stop.clone(), stats.clone());
        let deadline = Instant::now() + Duration::from_secs(args.seconds + 1800);
        std::thread::spawn(move || {
            let mut out = std::io::stdout();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                if writeln!(out, "{}", stats_line(&stats)).and_then(|_| out.flush()).is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                if Instant::now() > deadline {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        })
    };
    let opts = SocketOptions {
        bind_ip: args.media_ip,
        port_min: args.port_base,
        port_max: args.port_base + (4 * args.sessions - 1) as u16,
        cores: vec![args.relay_core],
        max_sessions: args.sessions,
        batch: args.batch,
    };
    let cmds = move || loop {
        if let Ok(c) = rx.try_recv()? {
            return Some(c);
        }
    };
    let events = RingSink { tx, stop: stop.clone() };
    let r = socket::run_with_stats(opts, cmds, events, stop.clone(), stats);
    stop.store(true, Ordering::Relaxed);
    let _ = reporter.join();
    let _ = Shm::remove(path);
    r.context("socket backend")
}

/// The child's latest counters, parsed.
#[derive(Clone, Copy, Default, Debug)]
struct DpCounters {
    rx: u64,
    tx: u64,
    tx_errors: u64,
    sessions: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl DpCounters {
    fn parse(line: &str) -> Option<Self> {
        let v: Vec<u64> = line.strip_prefix("stats ")?.split(' ').map(|x| x.parse().ok()).collect::<Option<_>>()?;
        if v.len() != 4 + DropReason::ALL.len() {
            return None;
        }
        let mut d = Self { rx: v[0], tx: v[1], tx_errors: v[2], sessions: v[3], ..Self::default() };
        d.drops.copy_from_slice(&v[4..]);
        Some(d)
    }

    fn drop(&self, r: DropReason) -> u64 {
        self.drops[DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0)]
    }

    /// `name n` for every reason with a count.
    fn drops_text(&self) -> String {
        let t: Vec<String> = DropReason::ALL
            .iter()
            .zip(self.drops)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {n}", r.name()))
            .collect();
        if t.is_empty() {
            "none".into()
        } else {
            t.join(", ")
        }
    }
}

/// The running child: its pid, its stdin (closing it stops the child) and its counters.
struct Datapath {
    child: Child,
    stdin: Option<ChildStdin>,
    latest: Arc<Mutex<(DpCounters, Instant)>>,
}

impl Datapath {
    fn spawn(a: &SoakArgs, ring: &Path) -> anyhow::Result<Self> {
        let mut cmd = Proc::new(std::env::current_exe()?);
        cmd.arg("soak").arg("--datapath-child").arg(ring);
        for (k, v) in [
            ("--sessions", a.sessions.to_string()),
            ("--seconds", a.seconds.to_string()),
            ("--port-base", a.port_base.to_string()),
            ("--media-ip", a.media_ip.to_string()),
            ("--relay-core", a.relay_core.to_string()),
            ("--batch", a.batch.to_string()),
        ] {
            cmd.args([k, &v]);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().context("spawning the datapath")?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().context("datapath stdout")?;
        let latest = Arc::new(Mutex::new((DpCounters::default(), Instant::now())));
        let l = latest.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let (Some(c), Ok(mut g)) = (DpCounters::parse(&line), l.lock()) {
                    *g = (c, Instant::now());
                }
            }
        });
        Ok(Self { child, stdin, latest })
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn counters(&self) -> DpCounters {
        self.latest.lock().map(|g| g.0).unwrap_or_default()
    }

    /// Counters reported after `t` (waits up to 3 s for a fresh line).
    fn counters_after(&self, t: Instant) -> DpCounters {
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if let Ok(g) = self.latest.lock() {
                if g.1 > t {
                    return g.0;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.counters()
    }

    /// Waits (up to 30 s) until the datapath has received nothing for a second: an overloaded
    /// relay drains seconds of backlog from its socket queues after the senders stop.
    fn wait_quiet(&self) {
        let end = Instant::now() + Duration::from_secs(30);
        let mut last = self.counters().rx;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_secs(1));
            let rx = self.counters().rx;
            if rx == last {
                return;
            }
            last = rx;
        }
    }

    /// Waits for the ring file and attaches to it as the signaling side.
    fn attach(&mut self, ring: &Path) -> anyhow::Result<Ctl> {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!("the datapath exited before creating its ring: {st}");
            }
            match Shm::attach(ring) {
                Ok(shm) => {
                    let (tx, rx) = shm.signaling_end().map_err(|e| relay::ring_error(ring, e))?;
                    return Ok(Ctl::Ring { tx, rx, pending: Default::default() });
                }
                Err(e) if Instant::now() > end => return Err(relay::ring_error(ring, e)),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Closes the child's stdin and waits for it (killing it after 10 s).
    fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait()? {
                return if st.success() { Ok(()) } else { Err(anyhow!("the datapath exited with {st}")) };
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the datapath did not stop within 10 s: killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `VmRSS` of `pid`, in KiB (0 if unreadable).
fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The whole run: the child, sessions, traffic, deletes.
fn soak(a: &SoakArgs) -> anyhow::Result<Report> {
    let ring = PathBuf::from(format!("/dev/shm/xtrunk-bench-soak-{}", std::process::id()));
    let mut dp = Datapath::spawn(a, &ring)?;
    let result = (|| {
        let mut ctl = dp.attach(&ring)?;
        drive(a, &mut ctl, &dp)
    })();
    let stopped = dp.stop();
    let _ = Shm::remove(&ring);
    let report = result?;
    stopped?;
    Ok(report)
}

/// The sessions' layout: `relay`'s (4 ports per session, both legs on even ports), rtcp-mux,
/// plain RTP, ids from 1.
fn plan(a: &SoakArgs) -> relay::Plan {
    relay::Plan { id_base: 0, port_base: a.port_base, media_ip: a.media_ip, rtcp_mux: true, srtp: None }
}

fn spec(a: &SoakArgs, i: usize, caller: SocketAddr, callee: SocketAddr) -> SessionSpec {
    let mut s = plan(a).spec(i, caller, callee);
    s.media_timeout_ms = a.media_timeout_secs.saturating_mul(1000);
    s
}

fn bind_all(ip: IpAddr, n: usize, batch: usize) -> anyhow::Result<Vec<BatchSocket>> {
    (0..n)
        .map(|_| {
            let s = BatchSocket::bind(SocketAddr::new(ip, 0), batch)
                .with_context(|| format!("binding a socket on {ip}"))?;
            s.set_recv_buffer(8 << 20).context("SO_RCVBUF")?;
            Ok(s)
        })
        .collect()
}

fn addrs(socks: &[BatchSocket]) -> anyhow::Result<Vec<SocketAddr>> {
    Ok(socks.iter().map(|s| s.local_addr()).collect::<Result<_, _>>()?)
}

/// Sessions, traffic, RSS sampling, deletes: everything between attach and stop.
fn drive(a: &SoakArgs, ctl: &mut Ctl, dp: &Datapath) -> anyhow::Result<Report> {
    let t = a.load_threads;
    let receivers = bind_all(a.peer_ip, a.peer_sockets, a.batch)?;
    let callee = addrs(&receivers)?;
    let mut plans = Vec::with_capacity(t);
    for th in 0..t {
        let socks = bind_all(a.peer_ip, a.peer_sockets, a.batch)?;
        let outsider = bind_all(a.outsider_ip, 1, a.batch)?.remove(0);
        plans.push(LoadPlan::new(a, th, socks, outsider));
    }
    let caller: Vec<Vec<SocketAddr>> = plans.iter().map(|p| addrs(&p.socks)).collect::<anyhow::Result<_>>()?;
    let specs: Vec<SessionSpec> = (0..a.sessions)
        .map(|i| spec(a, i, caller[i % t][(i / t) % a.peer_sockets], callee[i % a.peer_sockets]))
        .collect();
    let rss_before = rss_kib(dp.pid());
    let t_setup = Instant::now();
    relay::create_sessions(ctl, &specs, a.media_ip)?;
    let setup_s = t_setup.elapsed().as_secs_f64();
    let ids: Vec<SessionId> = specs.iter().map(|s| s.id).collect();

    let live = Arc::new(Live::default());
    let rcvbuf0 = lab::udp_rcvbuf_errors();
    let mut rss = RssSamples { before_create: rss_before, after_create: rss_kib(dp.pid()), ..Default::default() };
    let done = AtomicBool::new(false);
    let (traffic, timeouts) = std::thread::scope(|sc| -> anyhow::Result<_> {
        let rx = sc.spawn(|| load::receive(receivers, a, &live, &done));
        let senders: Vec<_> = plans.into_iter().map(|p| sc.spawn(|| load::send(p, a, &live))).collect();
        let timeouts = watch(a, ctl, dp, &live, &mut rss, || senders.iter().all(|h| h.is_finished()));
        for h in senders {
            h.join().map_err(|_| anyhow!("a sender panicked"))?;
        }
        let sent = live.sent();
        dp.wait_quiet(); // the relay's socket queues may hold seconds of backlog
        done.store(true, Ordering::Relaxed);
        let per_session = rx.join().map_err(|_| anyhow!("the receiver panicked"))??;
        Ok(((sent, per_session), timeouts))
    })?;
    let t_end = Instant::now();
    rss.end = rss_kib(dp.pid());
    let counters = dp.counters_after(t_end);
    let rcvbuf_errors = lab::udp_rcvbuf_errors().saturating_sub(rcvbuf0);
    let deleted = relay::delete_sessions(ctl, &ids)?;
    std::thread::sleep(Duration::from_millis(500));
    rss.after_delete = rss_kib(dp.pid());
    let (sent, per_session) = traffic;
    Ok(Report {
        pid: dp.pid(),
        setup_s,
        created: ids.len(),
        sent,
        received: live.received.load(Ordering::Relaxed),
        leaked: live.leaked.load(Ordering::Relaxed),
        unexpected: live.unexpected.load(Ordering::Relaxed),
        silent_sessions: per_session.iter().filter(|n| **n == 0).count(),
        timeouts_fed: timeouts,
        counters,
        rcvbuf_errors,
        deleted,
        rss,
    })
}

/// While the senders run: events (MediaTimeouts while fed), RSS samples, progress lines.
/// Returns the MediaTimeouts seen.
fn watch(
    a: &SoakArgs,
    ctl: &mut Ctl,
    dp: &Datapath,
    live: &Live,
    rss: &mut RssSamples,
    finished: impl Fn() -> bool,
) -> u64 {
    let start = Instant::now();
    let (mut next_sample, mut next_report) = (0u64, a.report_secs);
    let mut last = (0u64, 0u64, 0.0f64); // (offered, received, at s)
    let mut timeouts = 0u64;
    while !finished() {
        if let Some(Event::MediaTimeout { id, idle_ms, .. }) = ctl.recv(Duration::from_millis(100)) {
            timeouts += 1;
            if timeouts <= 5 {
                eprintln!("soak: MediaTimeout for session {} after {idle_ms} ms idle while fed", id.0);
            }
        }
        let el = start.elapsed().as_secs_f64();
        if el >= next_sample as f64 {
            rss.samples.push((el, rss_kib(dp.pid())));
            if rss.warm.is_none() && el >= a.warmup_secs as f64 {
                rss.warm = rss.samples.last().copied();
            }
            next_sample += a.sample_secs;
        }
        if el >= next_report as f64 {
            let (o, r) = (live.offered(), live.received.load(Ordering::Relaxed));
            let dt = (el - last.2).max(1e-9);
            let c = dp.counters();
            eprintln!(
                "[{:>4}s] offered {:>7.0} pps  delivered {:>7.0} pps  sessions {}  datapath drops: {}  RSS {} KiB",
                next_report,
                (o - last.0) as f64 / dt,
                (r - last.1) as f64 / dt,
                c.sessions,
                c.drops_text(),
                rss.samples.last().map_or(0, |s| s.1)
            );
            last = (o, r, el);
            next_report += a.report_secs;
        }
    }
    rss.samples.push((start.elapsed().as_secs_f64(), rss_kib(dp.pid())));
    timeouts
}

/// `[0, 1)` from a packet index: decides which packets are malformed or draw an outsider.
fn unit(g: u64) -> f64 {
    let mut x = g.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_line_round_trips() {
        let s = Stats::default();
        s.rx_packets.store(7, Ordering::Relaxed);
        let c = DpCounters::parse(&stats_line(&s)).expect("parses");
        assert_eq!((c.rx, c.drop(DropReason::SourceMismatch)), (7, 0));
        assert!(DpCounters::parse("stats 1 2").is_none());
    }

    #[test]
    fn unit_is_uniform_enough() {
        let n = 100_000;
        let hits = (0..n).filter(|g| unit(*g) < 0.01).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
