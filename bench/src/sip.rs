//! `xtrunk-bench sip`: SIPp (or the native UAC, `--uac native`) at a rate ramp against the signaling sidecar, with a SIPp UAS as the
//! carrier; reports the highest call rate sustained with < `--max-failed` failed calls, and the
//! setup latency (INVITE sent → 200 received, SIPp `rtd` on the 200, from `-trace_rtt`).
//!
//! `--self-contained` runs the sidecar in this process (loopback datapath stand-in, so only the
//! signaling is measured) on free loopback ports; otherwise `--target` names a running sidecar
//! whose default route points at `--carrier-port` on 127.0.0.1.
//!
//! `--ops-compare` (with `--self-contained`) runs the ramp twice in one invocation against a
//! fresh sidecar each time: the operations side off (no CDR file, no store, no publishing),
//! then on (`--ops`: CDR file + SQLite writer thread + counters published and read every second),
//! and prints the ratio of sustained CPS and of calls per sidecar CPU second.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

mod sidecar;
mod uac;

use sidecar::{start_redis, start_sidecar, Sidecar};

const UAC: &str = include_str!("../../signaling/tests/scenarios/uac_basic.xml");
/// The same call behind a digest challenge (INVITE, 407, ACK, INVITE with credentials).
const UAC_AUTH: &str = include_str!("../../signaling/tests/scenarios/uac_auth.xml");
const UAS: &str = include_str!("../../signaling/tests/scenarios/uas_basic.xml");

/// SIPp's socket buffers (`-buff_size`, default 64 KiB): at 2 000 CPS its own receive queue
/// overflowed on loopback (`ss -uamp`: drops on SIPp's sockets) and the T1 retransmissions that
/// followed were charged to the sidecar. The kernel caps it at `net.core.rmem_max`.
const SIPP_BUFF: &str = "4194304";

/// Arguments of `xtrunk-bench sip`.
#[derive(clap::Args, Debug)]
pub(crate) struct SipArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Total time budget in seconds, split over the ramp steps.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Run the sidecar in-process on free loopback ports.
    #[arg(long)]
    self_contained: bool,
    /// A running sidecar (without --self-contained).
    #[arg(long)]
    target: Option<SocketAddr>,
    /// Port of the carrier UAS the running sidecar routes to (without --self-contained).
    #[arg(long, default_value_t = 5080)]
    carrier_port: u16,
    /// Ramp steps, calls per second.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,1500,2000,2500,3000,4000")]
    rates: Vec<u32>,
    /// Failure ratio above which a step does not count as sustained.
    #[arg(long, default_value_t = 0.001)]
    max_failed: f64,
    /// Pin the in-process sidecar thread to this CPU (with --self-contained).
    #[arg(long)]
    pin_sidecar: Option<usize>,
    /// The operations side on (with --self-contained): CDRs into a SQLite file through the
    /// writer thread, counters published for `/metrics` and read every second.
    #[arg(long)]
    ops: bool,
    /// Run the ramp twice in this invocation, operations side off then on, and print the ratio.
    #[arg(long)]
    ops_compare: bool,
    /// Admission policies of the self-contained sidecar (#15): `off`, `on` (every limit,
    /// destination, caller-ID and fraud rule set, none binding), or `compare` (a ramp with each,
    /// in this run, and the ratio).
    #[arg(long, value_enum, default_value_t = Policies::Off)]
    policies: Policies,
    /// Digest authentication of the caller's trunk (#14): `off`, `on` (`auth = "both"`, every
    /// call challenged 407 and answered with MD5 credentials by SIPp), or `compare`.
    #[arg(long, value_enum, default_value_t = Policies::Off)]
    digest: Policies,
    /// The counters of every admission policy in a shared Redis store (#19) instead of the
    /// sidecar's memory: `off`, `on` or `compare`. Implies `--policies on` (so every call checks
    /// and takes channels and CPS there). The bench starts its own `redis-server` on a free port.
    #[arg(long, value_enum, default_value_t = Policies::Off)]
    shared: Policies,
    /// The caller: `sipp` (Debian's SIPp running the `uac_basic`/`uac_auth` scenarios) or
    /// `native` (the bench's own UAC on one thread of this process: the same call flow at a
    /// fraction of SIPp's CPU, and nonce reuse behind a challenge, see --digest-nonce).
    #[arg(long, value_enum, default_value_t = Caller::Sipp)]
    uac: Caller,
    /// With `--uac native` and digest on: `per-call` (every call answers its own 407, as SIPp
    /// does) or `reuse` (the last nonce is used again with nc + 1, RFC 7616 §3.4.5, so calls are
    /// challenged only when it goes stale).
    #[arg(long, value_enum, default_value_t = uac::NonceUse::PerCall)]
    digest_nonce: uac::NonceUse,
    /// With a comparison: run every mode at a rate before going to the next rate (ABAB), so
    /// that a change of the machine's load during the invocation hits both modes alike; without
    /// it each mode's whole ramp runs after the other's (AABB).
    #[arg(long)]
    interleave: bool,
    /// With --self-contained: `loopback` (the sidecar in this process with a datapath stand-in:
    /// signaling alone is measured) or `socket` (`xtrunk run`, the binary next to this one, as a
    /// host runs it: datapath process with the socket backend, sidecar process, the ring between
    /// them, a real media session per call).
    #[arg(long, value_enum, default_value_t = Media::Loopback)]
    media: Media,
}

/// `--media`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Media {
    /// In-process sidecar, no datapath.
    Loopback,
    /// `xtrunk run` with the socket datapath.
    Socket,
}

/// `--uac`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Debian's SIPp.
    Sipp,
    /// The bench's own UAC.
    Native,
}

/// `--policies`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policies {
    /// None configured.
    Off,
    /// All configured.
    On,
    /// Both, one after the other.
    Compare,
}

/// CPU seconds (user + system) used so far by the process or thread whose `stat` file is `path`
/// (`/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat`); None once it is gone.
fn cpu_secs(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// CPU use of the three processes during one step, percent of one core.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct CpuUse {
    sipp_uac: f64,
    sipp_uas: f64,
    sidecar: f64,
    /// With `--media socket`: the datapath process (0 with the in-process stand-in).
    datapath: f64,
}

/// Where the measured side's CPU is read.
enum CpuOf<'a> {
    /// Not known (a sidecar started elsewhere, `--target`).
    Unknown,
    /// The in-process sidecar's thread (`/proc/<pid>/task/<tid>/stat`).
    Thread(&'a Path),
    /// `xtrunk run`'s children: the sidecar and the datapath processes.
    Run(u32),
}

impl CpuOf<'_> {
    /// CPU seconds so far of (the sidecar, the datapath).
    fn secs(&self) -> (f64, f64) {
        match self {
            Self::Unknown => (0.0, 0.0),
            Self::Thread(p) => (cpu_secs(p).unwrap_or(0.0), 0.0),
            Self::Run(pid) => {
                let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
                let (mut side, mut dp) = (0.0, 0.0);
                for k in kids.split_whitespace() {
                    let cmd = std::fs::read(format!("/proc/{k}/cmdline")).unwrap_or_default();
                    let secs = cpu_secs(Path::new(&format!("/proc/{k}/stat"))).unwrap_or(0.0);
                    // argv: xtrunk <role> --config FILE
                    match cmd.split(|b| *b == 0).nth(1) {
                        Some(b"datapath") => dp += secs,
                        Some(b"signaling") => side += secs,
                        _ => {}
                    }
                }
                (side, dp)
            }
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        let p = s.local_addr()?.port();
        if p % 2 == 0 && p < 65_000 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return Ok(p);
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    rate: u32,
    calls: u64,
    successful: u64,
    failed: u64,
    failed_ratio: f64,
    achieved_cps: f64,
    setup_p50_ms: f64,
    setup_p99_ms: f64,
    setup_max_ms: f64,
    cpu_pct: CpuUse,
    /// `407`s the caller received (native UAC only; SIPp does not say).
    challenges: Option<u64>,
    /// Failed calls by final answer, 0 = none came (native UAC only).
    failures: std::collections::BTreeMap<u16, u64>,
}

fn stat_counts(p: &Path) -> (u64, u64) {
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

fn rtts(dir: &Path) -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().ends_with("_rtt.csv") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for l in text.lines().skip(1) {
                // Date_ms;response_time_ms;rtd_no
                if let Some(ms) = l.split(';').nth(1).and_then(|v| v.trim().parse::<f64>().ok()) {
                    let _ = h.record(((ms * 1000.0) as u64).max(1));
                }
            }
            let _ = std::fs::remove_file(e.path());
        }
    }
    h
}

/// One step with the native UAC: its thread's CPU stands for SIPp's.
fn run_native_step(
    target: SocketAddr,
    (rate, digest): (u32, Option<uac::NonceUse>),
    secs: u64,
    uas_stat: &Path,
    cpu: &CpuOf<'_>,
) -> anyhow::Result<Step> {
    let calls = u64::from(rate) * secs;
    let plan = uac::Plan {
        target,
        rate,
        calls,
        limit: (rate as usize * 4).max(16),
        digest: digest.map(|n| ("bench".to_owned(), "bench-secret".to_owned(), n)),
        service: "+4930123456".into(),
        caller: "+442071234501".into(),
    };
    let t0 = Instant::now();
    let uas0 = cpu_secs(uas_stat).unwrap_or(0.0);
    let side0 = cpu.secs();
    let out = uac::run(&plan)?;
    let (elapsed, side1) = (t0.elapsed().as_secs_f64(), cpu.secs());
    let pct = |c: f64| (c / elapsed.max(1e-9) * 1000.0).round() / 10.0;
    if !out.failures.is_empty() {
        eprintln!("  failed by final answer (0 = no answer): {:?}", out.failures);
    }
    if digest.is_some() {
        eprintln!("  407 challenges: {} for {} calls", out.challenges, calls);
    }
    let h = &out.setup;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(Step {
        rate,
        calls,
        successful: out.successful,
        failed: out.failed,
        failed_ratio: if calls == 0 { 1.0 } else { (calls - out.successful.min(calls)) as f64 / calls as f64 },
        achieved_cps: out.successful as f64 / elapsed.max(1e-9),
        setup_p50_ms: ms(0.5),
        setup_p99_ms: ms(0.99),
        setup_max_ms: h.max() as f64 / 1000.0,
        cpu_pct: CpuUse {
            sipp_uac: pct(out.cpu_secs),
            sipp_uas: pct(cpu_secs(uas_stat).unwrap_or(uas0) - uas0),
            sidecar: pct(side1.0 - side0.0),
            datapath: pct(side1.1 - side0.1),
        },
        challenges: Some(out.challenges),
        failures: out.failures,
    })
}

fn run_step(
    dir: &Path,
    target: SocketAddr,
    (rate, digest): (u32, bool),
    secs: u64,
    uas_stat: &Path,
    cpu: &CpuOf<'_>,
) -> anyhow::Result<Step> {
    let calls = u64::from(rate) * secs;
    let uac = dir.join(if digest { "uac_auth.xml" } else { "uac.xml" });
    let creds: &[&str] = if digest { &["-au", "bench", "-ap", "bench-secret"] } else { &[] };
    let stat = dir.join(format!("uac_{rate}.csv"));
    let t0 = Instant::now();
    let uas0 = cpu_secs(uas_stat).unwrap_or(0.0);
    let side0 = cpu.secs();
    let mut child = Command::new("sipp")
        .arg(target.to_string())
        .args(["-sf", uac.to_str().unwrap_or_default(), "-i", "127.0.0.1", "-p", &free_port()?.to_string()])
        .args(["-mp", &free_port()?.to_string(), "-r", &rate.to_string(), "-m", &calls.to_string()])
        .args(["-s", "+4930123456"])
        .args(creds)
        .args(["-l", &(rate * 4).to_string(), "-nostdin", "-timeout", &format!("{}s", secs * 3 + 20)])
        .args(["-buff_size", SIPP_BUFF])
        .args(["-trace_stat", "-fd", "1", "-stf", stat.to_str().unwrap_or_default(), "-trace_rtt", "-rtt_freq", "1"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("running sipp (is sip-tester installed?)")?;
    // Sample the UAC's CPU time until it exits (its /proc entry goes with it).
    let uac_stat = PathBuf::from(format!("/proc/{}/stat", child.id()));
    let mut uac_cpu = 0.0;
    while child.try_wait()?.is_none() {
        uac_cpu = cpu_secs(&uac_stat).unwrap_or(uac_cpu);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (elapsed, side1) = (t0.elapsed().as_secs_f64(), cpu.secs());
    let pct = |c: f64| (c / elapsed.max(1e-9) * 1000.0).round() / 10.0;
    let cpu_pct = CpuUse {
        sipp_uac: pct(uac_cpu),
        sipp_uas: pct(cpu_secs(uas_stat).unwrap_or(uas0) - uas0),
        sidecar: pct(side1.0 - side0.0),
        datapath: pct(side1.1 - side0.1),
    };
    let (successful, failed) = stat_counts(&stat);
    let h = rtts(dir);
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(Step {
        rate,
        calls,
        successful,
        failed,
        failed_ratio: if calls == 0 { 1.0 } else { (calls - successful.min(calls)) as f64 / calls as f64 },
        achieved_cps: successful as f64 / elapsed.max(1e-9),
        setup_p50_ms: ms(0.5),
        setup_p99_ms: ms(0.99),
        setup_max_ms: h.max() as f64 / 1000.0,
        cpu_pct,
        challenges: None,
        failures: Default::default(),
    })
}

/// One ramp step at `rate` against `target`, printed; and whether it was sustained.
fn one_step(
    args: &SipArgs,
    (dir, uas_stat): (&Path, &Path),
    target: SocketAddr,
    (cpu, digest): (&CpuOf<'_>, bool),
    rate: u32,
) -> anyhow::Result<(Step, bool)> {
    let per_step = (args.seconds / args.rates.len().max(1) as u64).max(2);
    let s = match args.uac {
        Caller::Sipp => run_step(dir, target, (rate, digest), per_step, uas_stat, cpu)?,
        Caller::Native => {
            let nonce = digest.then_some(args.digest_nonce);
            run_native_step(target, (rate, nonce), per_step, uas_stat, cpu)?
        }
    };
    eprintln!(
        "rate {:>5}/s: {:>6} calls, {:>6} ok, {:>4} failed ({:.3} %), achieved {:>7.1} cps, setup p50 {:.2} ms p99 {:.2} ms max {:.2} ms; cpu % uac {} uas {} sidecar {} datapath {}",
        s.rate, s.calls, s.successful, s.failed, s.failed_ratio * 100.0, s.achieved_cps, s.setup_p50_ms, s.setup_p99_ms, s.setup_max_ms,
        s.cpu_pct.sipp_uac, s.cpu_pct.sipp_uas, s.cpu_pct.sidecar, s.cpu_pct.datapath
    );
    let sustained = s.failed_ratio < args.max_failed && s.achieved_cps >= f64::from(rate) * 0.9;
    Ok((s, sustained))
}

/// One mode of the invocation: what is measured, and its ramp so far.
struct ModeRun {
    ops: bool,
    policies: bool,
    digest: bool,
    shared: bool,
    target: SocketAddr,
    sidecar: Option<Sidecar>,
    run: Option<sidecar::Run>,
    steps: Vec<Step>,
    best: Option<Step>,
    done: bool,
}

impl ModeRun {
    fn describe(&self) -> String {
        format!(
            "policies {}, counters {}, digest {}, operations side {}",
            if self.policies { "on" } else { "off" },
            if self.shared { "shared (Redis)" } else { "in memory" },
            if self.digest { "on" } else { "off" },
            if self.ops { "on" } else { "off" }
        )
    }

    fn cpu(&self) -> CpuOf<'_> {
        match (self.sidecar.as_ref().and_then(|s| s.stat.as_deref()), self.run.as_ref()) {
            (Some(p), _) => CpuOf::Thread(p),
            (None, Some(r)) => CpuOf::Run(r.pid()),
            (None, None) => CpuOf::Unknown,
        }
    }
}

/// The ramps of every mode: each mode's steps in turn (one whole ramp after another), or with
/// `--interleave` every mode at one rate before the next rate, so that a change in the shared
/// machine's load hits the modes alike. A mode's ramp ends at its first step not sustained.
fn ramps(args: &SipArgs, dirs: (&Path, &Path), runs: &mut [ModeRun]) -> anyhow::Result<()> {
    let mut order = Vec::new();
    if args.interleave {
        for &r in &args.rates {
            order.extend((0..runs.len()).map(|m| (m, r)));
        }
    } else {
        for m in 0..runs.len() {
            order.extend(args.rates.iter().map(|&r| (m, r)));
        }
    }
    let mut last = None;
    for (m, rate) in order {
        if runs[m].done {
            continue;
        }
        if last != Some(m) {
            eprintln!("--- {}", runs[m].describe());
            last = Some(m);
        }
        let (step, sustained) = one_step(args, dirs, runs[m].target, (&runs[m].cpu(), runs[m].digest), rate)?;
        let r = &mut runs[m];
        if sustained {
            r.best = Some(step.clone());
        }
        r.steps.push(step);
        r.done = !sustained;
        // Let the previous step's calls drain.
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// Sidecar CPU per successful call over a ramp, µs.
fn cpu_us_per_call(steps: &[Step], per_step: u64) -> f64 {
    let (cpu, calls) =
        steps.iter().fold((0.0, 0u64), |(c, n), s| (c + s.cpu_pct.sidecar / 100.0 * per_step as f64, n + s.successful));
    cpu / calls.max(1) as f64 * 1e6
}

/// Runs `xtrunk-bench sip`.
pub(crate) fn run(args: SipArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("xtrunk-bench-sip-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // The caller ID is a number (the policies' account owns it), the same in every mode.
    std::fs::write(dir.join("uac.xml"), UAC.replace("From: sipp <sip:sipp@", "From: sipp <sip:+442071234501@"))?;
    let auth = UAC_AUTH.replace("From: sipp <sip:sipp@", "From: sipp <sip:+442071234501@");
    std::fs::write(dir.join("uac_auth.xml"), auth.replace("<pause milliseconds=\"200\"/>", "<pause/>"))?;
    std::fs::write(dir.join("uas.xml"), UAS)?;
    anyhow::ensure!(
        !(args.ops || args.ops_compare) || (args.self_contained && args.media == Media::Loopback),
        "--ops and --ops-compare need --self-contained with --media loopback (the in-process sidecar)"
    );
    let carrier_port = if args.self_contained { free_port()? } else { args.carrier_port };

    // The carrier: one SIPp UAS for the whole invocation.
    let mut uas = Command::new("sipp")
        .args([
            "-sf",
            dir.join("uas.xml").to_str().unwrap_or_default(),
            "-i",
            "127.0.0.1",
            "-p",
            &carrier_port.to_string(),
        ])
        .args(["-mp", &free_port()?.to_string(), "-nostdin", "-buff_size", SIPP_BUFF])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sipp uas")?;
    std::thread::sleep(Duration::from_millis(300));
    let uas_stat = PathBuf::from(format!("/proc/{}/stat", uas.id()));
    let per_step = (args.seconds / args.rates.len().max(1) as u64).max(2);

    // Off, then on (--ops-compare, or --policies compare); or one run as asked.
    let compares = [
        args.ops_compare,
        args.policies == Policies::Compare,
        args.digest == Policies::Compare,
        args.shared == Policies::Compare,
    ];
    anyhow::ensure!(
        compares.iter().filter(|c| **c).count() <= 1,
        "one comparison per invocation: --ops-compare, --policies compare, --digest compare or --shared compare"
    );
    let redis = (args.shared != Policies::Off).then(|| start_redis(&dir)).transpose()?;
    let both = |p: Policies| match p {
        Policies::Off => vec![false],
        Policies::On => vec![true],
        Policies::Compare => vec![false, true],
    };
    let policy_modes = if args.shared == Policies::Off { both(args.policies) } else { vec![true] };
    let (digest_modes, shared_modes) = (both(args.digest), both(args.shared));
    let ops_modes = if args.ops_compare { vec![false, true] } else { vec![args.ops] };
    let mut modes: Vec<(bool, bool, bool, bool)> = Vec::new();
    for &o in &ops_modes {
        for &p in &policy_modes {
            for &d in &digest_modes {
                modes.extend(shared_modes.iter().map(|&sh| (o, p, d, sh)));
            }
        }
    }
    let mut shared_runs = Vec::new();
    let mut runs = Vec::new();
    let mut policy_runs = Vec::new();
    let mut digest_runs = Vec::new();
    let mut live = Vec::new();
    for (ops, policies, digest, shared) in modes {
        let sub = format!("ops-{ops}-policies-{policies}-digest-{digest}-shared-{shared}");
        let store = redis.as_ref().filter(|_| shared).map(|r| r.1);
        let (mut target, mut sidecar, mut run) = (args.target, None, None);
        match (args.self_contained, args.media) {
            (false, _) => {}
            (true, Media::Loopback) => {
                let s = start_sidecar(&dir.join(sub), carrier_port, args.pin_sidecar, (ops, policies, digest, store))?;
                target = Some(s.target);
                sidecar = Some(s);
            }
            (true, Media::Socket) => {
                let r = sidecar::Run::start(&dir.join(sub), carrier_port, (policies, digest, store))?;
                eprintln!("--- xtrunk run (socket datapath + sidecar processes), pid {}", r.pid());
                target = Some(r.target);
                run = Some(r);
            }
        }
        let target = target.context("--target HOST:PORT (or --self-contained)")?;
        let (steps, best, done) = (Vec::new(), None, false);
        live.push(ModeRun { ops, policies, digest, shared, target, sidecar, run, steps, best, done });
    }
    ramps(&args, (&dir, &uas_stat), &mut live)?;
    for m in live {
        let ModeRun { ops, policies, digest, shared, sidecar, run, steps, best, .. } = m;
        // Nothing sustained: report the first step with cps 0.
        let best = best.unwrap_or_else(|| Step { rate: 0, ..steps[0].clone() });
        if let Some(mut r) = run {
            r.stop();
        }
        let summary = sidecar.map(Sidecar::finish).transpose()?;
        println!(
            "ops {}: sustained {} cps (failed {:.3} %), setup p50 {:.2} ms p99 {:.2} ms, sidecar {:.1} µs CPU per call",
            if ops { "on" } else { "off" },
            best.rate,
            best.failed_ratio * 100.0,
            best.setup_p50_ms,
            best.setup_p99_ms,
            cpu_us_per_call(&steps, per_step)
        );
        if let Some(s) = &summary {
            println!(
                "sidecar: {} calls answered, {} active at end, {}/{} ports free",
                s.metrics.calls_answered, s.active_calls, s.ports_free, s.ports_total
            );
        }
        if let Some(s) = summary.as_ref().filter(|_| digest) {
            println!(
                "sidecar: {} challenges, auth ok {:?}, failed {:?}",
                s.metrics.auth.challenges, s.metrics.auth.ok, s.metrics.auth.failed
            );
        }
        if args.shared == Policies::Compare {
            shared_runs.push((shared, best.rate, cpu_us_per_call(&steps, per_step), best.setup_p99_ms));
        } else if args.digest == Policies::Compare {
            digest_runs.push((digest, best.rate, cpu_us_per_call(&steps, per_step)));
        } else {
            policy_runs.push((policies, best.rate, cpu_us_per_call(&steps, per_step)));
        }
        runs.push((ops, best, steps));
    }
    if let [(false, off, c0), (true, on, c1)] = policy_runs.as_slice() {
        let r = f64::from(*on) / f64::from((*off).max(1));
        println!(
            "policies on / off: sustained {on} / {off} cps = {:.1} %; sidecar CPU per call x{:.3}",
            r * 100.0,
            c1 / c0.max(1e-9)
        );
    }
    if let [(false, off, c0), (true, on, c1)] = digest_runs.as_slice() {
        let r = f64::from(*on) / f64::from((*off).max(1));
        println!(
            "digest on / off: sustained {on} / {off} cps = {:.1} %; sidecar CPU per call x{:.3}",
            r * 100.0,
            c1 / c0.max(1e-9)
        );
    }
    if let [(false, off, c0, p0), (true, on, c1, p1)] = shared_runs.as_slice() {
        let r = f64::from(*on) / f64::from((*off).max(1));
        println!(
            "shared store / memory: sustained {on} / {off} cps = {:.1} %; sidecar CPU per call x{:.3}; setup p99 {p1:.2} / {p0:.2} ms",
            r * 100.0,
            c1 / c0.max(1e-9)
        );
    }
    if let Some((mut child, _)) = redis {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = uas.kill();
    let _ = uas.wait();
    let ratio = match runs.as_slice() {
        [(false, off, s0), (true, on, s1)] if args.ops_compare => {
            let r = f64::from(on.rate) / f64::from(off.rate.max(1));
            let cpu = cpu_us_per_call(s0, per_step) / cpu_us_per_call(s1, per_step).max(1e-9);
            println!("ops on / off: sustained cps x{r:.3}; calls per sidecar CPU second x{cpu:.3}");
            Some((r, cpu))
        }
        _ => None,
    };
    if args.json {
        let j: Vec<serde_json::Value> = runs
            .iter()
            .map(|(ops, best, steps)| {
                serde_json::json!({
                    "ops": ops,
                    "cps": best.rate,
                    "achieved_cps": best.achieved_cps,
                    "failed_ratio": best.failed_ratio,
                    "setup_p50_ms": best.setup_p50_ms,
                    "setup_p99_ms": best.setup_p99_ms,
                    "sidecar_cpu_us_per_call": cpu_us_per_call(steps, per_step),
                    "steps": steps,
                })
            })
            .collect();
        let first = &runs[0].1;
        println!(
            "{}",
            serde_json::json!({
                "mode": "sip",
                "cps": first.rate,
                "achieved_cps": first.achieved_cps,
                "failed_ratio": first.failed_ratio,
                "setup_p50_ms": first.setup_p50_ms,
                "setup_p99_ms": first.setup_p99_ms,
                "steps": runs[0].2,
                "runs": j,
                "ops_ratio_cps": ratio.map(|r| r.0),
                "ops_ratio_calls_per_cpu": ratio.map(|r| r.1),
                "self_contained": args.self_contained,
            })
        );
    }
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
    Ok(())
}
