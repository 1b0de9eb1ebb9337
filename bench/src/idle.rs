//! `xtrunk-bench idle`: what standing sessions without traffic cost the datapath.
//!
//! For each backend in turn (socket, af_xdp, xdp), the backend's own run loop
//! (`socket::run_with_stats`, `xsk::run_with_stats`, as `xtrunk datapath` runs them) is started
//! in this process on a session ring of its own (`/dev/shm/xtb-idle-<pid>-<n>`), and the bench,
//! as the signaling side, creates the sessions through that ring as the sidecar does. No packet
//! is sent. The datapath's CPU time (every thread of it: the control loop `xtb-dp` and the
//! workers `xt-sock-*` / `xsk-q*`, from `schedstat`) is measured over `--seconds`, first with no
//! session (the baseline of the same invocation), then with `--sessions`; reported as % of one
//! core, and the difference.
//!
//! With root the AF_XDP backends run on the namespace lab of [`crate::lab`] (relay interfaces
//! `rp0`/`rc0`), and so does the socket backend; without root only the socket backend runs, on
//! loopback. Sessions are strict-latched to an SDP peer, so with the fast path (`xdp`) their
//! ports are on it from the start: idle fast-path sessions. Ports: `--port-base` + 4i (leg 0)
//! and + 4i + 2 (leg 1), RTCP on the odd port above each unless `--rtcp-mux`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use xtrunk_datapath::control::{CommandSource, EventSink};
use xtrunk_datapath::socket::{self, SocketOptions, Stats};
use xtrunk_datapath::xsk::{self, RuntimeStats, XskInterface, XskOptions};
use xtrunk_ring::msg::{Command, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};
use xtrunk_ring::{CommandReceiver, CommandSender, EventReceiver, EventSender, Shm};

use crate::lab::{self, Backend, Lab};

/// Arguments of `xtrunk-bench idle`.
#[derive(clap::Args, Debug)]
pub(crate) struct IdleArgs {
    /// Backends, comma-separated: socket, af_xdp, xdp.
    #[arg(long, value_delimiter = ',', default_value = "socket,af_xdp,xdp")]
    backend: Vec<String>,
    /// Standing sessions (4 ports each, 2 with --rtcp-mux).
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Measured seconds per run (the empty baseline and the one with sessions).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Settling time after the sessions are created, before measuring.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// First relay port.
    #[arg(long, default_value_t = 20000)]
    port_base: u16,
    /// Sessions use rtcp-mux (RFC 5761): 2 ports each.
    #[arg(long)]
    rtcp_mux: bool,
    /// Core of the datapath's workers.
    #[arg(long, default_value_t = 1)]
    relay_core: usize,
    /// Run the socket backend on loopback without the lab (no root needed).
    #[arg(long)]
    loopback: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

const RP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
const RC: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 1);
const PBX: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
const CAR: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);

/// The datapath's end of the ring, as `xtrunk datapath` uses it.
struct RingCommands(CommandReceiver);

impl CommandSource for RingCommands {
    fn poll_command(&mut self) -> Option<Command> {
        loop {
            if let Ok(c) = self.0.try_recv()? {
                return Some(c);
            }
        }
    }
}

struct RingEvents(EventSender, Arc<AtomicBool>);

impl EventSink for RingEvents {
    fn send_event(&mut self, ev: Event) {
        while self.0.try_send(&ev).is_err() {
            if self.1.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

struct Place {
    lab: Option<Lab>,
    ring_n: usize,
}

/// One run: the datapath up with `n` sessions, then measured.
struct Run {
    cpu_pct: f64,
    /// Of `cpu_pct`: the control loop's share.
    ctl_pct: f64,
    fast_ports: usize,
    create_secs: f64,
}

fn spec(i: usize, base: u16, mux: bool, loopback: bool) -> SessionSpec {
    let (rp, rc, pbx, car) = if loopback {
        ([127, 0, 0, 1], [127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3])
    } else {
        (RP.octets(), RC.octets(), PBX.octets(), CAR.octets())
    };
    let port = base + 4 * i as u16;
    let peer = 1024 + (i % 60_000) as u16;
    let leg = |local: [u8; 4], lp: u16, remote: [u8; 4]| LegSpec {
        local: SocketAddr::new(IpAddr::from(local), lp),
        remote: Some(SocketAddr::new(IpAddr::from(remote), peer)),
        remote_rtcp_port: 0,
        rtcp_mux: mux,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    };
    SessionSpec {
        id: SessionId(i as u64 + 1),
        legs: [leg(rp, port, pbx), leg(rc, port + 2, car)],
        media_timeout_ms: 30_000,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    }
}

/// CPU time of this process's datapath threads: (control loop, workers).
fn datapath_cpu_ns() -> (u64, u64) {
    (
        lab::tasks_cpu_ns("/proc/self/task", |c| c == "xtb-dp"),
        lab::tasks_cpu_ns("/proc/self/task", |c| c.starts_with("xt-sock") || c.starts_with("xsk-q")),
    )
}

fn next_event(rx: &mut EventReceiver) -> Option<Event> {
    loop {
        if let Ok(e) = rx.try_recv()? {
            return Some(e);
        }
    }
}

/// Sends `cmds` through the ring, collecting events meanwhile; returns when `want` answers came.
fn exchange(
    tx: &mut CommandSender,
    rx: &mut EventReceiver,
    cmds: impl Iterator<Item = Command>,
    want: usize,
) -> anyhow::Result<()> {
    let answered = std::cell::Cell::new(0usize);
    let check = |e: Event| -> anyhow::Result<()> {
        match e {
            Event::Created(_) | Event::Deleted { .. } => answered.set(answered.get() + 1),
            Event::Error { id, code, port } => {
                let hint = match code {
                    ErrorCode::CapacityExhausted | ErrorCode::BindFailed => format!(
                        " (socket backend: each session takes 4 descriptors, 2 with --rtcp-mux, and RLIMIT_NOFILE is \
                         {}: raising the hard limit needs CAP_SYS_RESOURCE)",
                        socket::raise_nofile_limit(0)
                    ),
                    _ => String::new(),
                };
                bail!("the datapath refused session {id:?}: {code:?} (port {port}){hint}")
            }
            _ => {}
        }
        Ok(())
    };
    for c in cmds {
        while tx.try_send(&c).is_err() {
            match next_event(rx) {
                Some(e) => check(e)?,
                None => std::thread::sleep(Duration::from_micros(100)),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.get() < want {
        match next_event(rx) {
            Some(e) => check(e)?,
            None if Instant::now() > deadline => bail!("{} of {want} answers within 120 s", answered.get()),
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    Ok(())
}

fn run_one(args: &IdleArgs, place: &mut Place, b: Backend, n: usize) -> anyhow::Result<Run> {
    place.ring_n += 1;
    let path = PathBuf::from(format!("/dev/shm/xtb-idle-{}-{}", std::process::id(), place.ring_n));
    let shm = Shm::create(&path, 4096, 4096).with_context(|| format!("creating the ring at {}", path.display()))?;
    let (crx, etx) = shm.datapath_end()?;
    let (mut tx, mut rx) = Shm::attach(&path)?.signaling_end()?;
    let stop = Arc::new(AtomicBool::new(false));
    let port_max = (u32::from(args.port_base) + 4 * n.max(1) as u32 - 1).min(65535) as u16;
    let max_sessions = n.max(1);
    let snap = Arc::new(Mutex::new(RuntimeStats::default()));
    let ns = place.lab.as_ref().map(|l| l.ns("relay"));
    let (st, core, loopback, base) = (stop.clone(), args.relay_core, place.lab.is_none(), args.port_base);
    let s2 = snap.clone();
    let dp: JoinHandle<anyhow::Result<()>> = lab::spawn_in("xtb-dp", ns.as_deref(), None, move || {
        let (cmds, events) = (RingCommands(crx), RingEvents(etx, st.clone()));
        if b.is_socket() {
            let opts = SocketOptions {
                bind_ip: if loopback { Ipv4Addr::LOCALHOST.into() } else { Ipv4Addr::UNSPECIFIED.into() },
                port_min: base,
                port_max,
                cores: vec![core],
                max_sessions,
                batch: 64,
            };
            let busy = if b == Backend::SocketSpin { socket::BusyPoll::Always } else { socket::BusyPoll::default() };
            socket::run_tuned(opts, busy, cmds, events, st, Arc::new(Stats::default())).context("socket backend")
        } else {
            let opts = XskOptions {
                interfaces: ["rp0", "rc0"]
                    .iter()
                    .map(|i| XskInterface { name: (*i).into(), queues: vec![0], cores: vec![core] })
                    .collect(),
                fast_path: b == Backend::Xdp,
                port_min: base,
                port_max,
                max_sessions,
                ..XskOptions::default()
            };
            xsk::run_with_stats(opts, cmds, events, st, Some(s2)).context("AF_XDP backend")
        }
    });
    let result = (|| {
        let t = Instant::now();
        exchange(&mut tx, &mut rx, (0..n).map(|i| Command::Create(spec(i, base, args.rtcp_mux, loopback))), n)?;
        let create_secs = t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs_f64(args.settle));
        if dp.is_finished() {
            bail!("the datapath stopped");
        }
        let (c0, t0) = (datapath_cpu_ns(), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(args.seconds));
        let (c1, wall) = (datapath_cpu_ns(), t0.elapsed());
        let fast_ports = snap.lock().map(|s| s.fast_ports).unwrap_or(0);
        exchange(&mut tx, &mut rx, (0..n).map(|i| Command::Delete(SessionId(i as u64 + 1))), n)?;
        let pct = |ns: u64| ns as f64 / wall.as_nanos() as f64 * 100.0;
        Ok(Run {
            cpu_pct: pct((c1.0 + c1.1).saturating_sub(c0.0 + c0.1)),
            ctl_pct: pct(c1.0.saturating_sub(c0.0)),
            fast_ports,
            create_secs,
        })
    })();
    stop.store(true, Ordering::Relaxed);
    let joined = dp.join().map_err(|_| anyhow!("the datapath thread panicked"))?;
    let _ = Shm::remove(&path);
    let run = result?;
    joined?;
    Ok(run)
}

/// Runs `xtrunk-bench idle`.
pub(crate) fn run(args: IdleArgs) -> anyhow::Result<()> {
    let mut order = Vec::new();
    for b in &args.backend {
        let b = Backend::parse(b.trim())?;
        if !order.contains(&b) {
            order.push(b);
        }
    }
    let per = if args.rtcp_mux { 2 } else { 4 };
    if usize::from(args.port_base) + 4 * args.sessions > 65536 || args.port_base == 0 {
        bail!(
            "--sessions {} from --port-base {}: needs ports up to {}",
            args.sessions,
            args.port_base,
            usize::from(args.port_base) + 4 * args.sessions - 1
        );
    }
    if args.seconds.is_nan() || args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let root = lab::is_root();
    if (args.loopback || !root) && order.iter().any(|b| !b.is_socket()) {
        if !root {
            bail!("af_xdp and xdp need root (namespace lab, XDP); rerun with sudo, or --backend socket --loopback");
        }
        bail!("--loopback measures the socket backend only");
    }

    let lab = if args.loopback || !root { None } else { Some(Lab::up(args.relay_core, 0, lab::DEFAULT_COALESCE_US)?) };
    let mut place = Place { lab, ring_n: 0 };
    println!(
        "idle: {} sessions ({per} ports each), no traffic, {:.0} s per run, datapath workers on core {}, {}",
        args.sessions,
        args.seconds,
        args.relay_core,
        if place.lab.is_some() { "namespace lab" } else { "loopback" }
    );
    println!(
        "{:<8} {:>14} {:>16} {:>12} {:>14} {:>11} {:>10}",
        "backend", "cpu% 0 sess", "cpu% N sess", "difference", "of which ctl", "fast ports", "create s"
    );
    let mut rows = Vec::new();
    for &b in &order {
        if lab::interrupted().load(Ordering::Relaxed) {
            break;
        }
        let base = run_one(&args, &mut place, b, 0).with_context(|| format!("{}: baseline", b.name()))?;
        let with = run_one(&args, &mut place, b, args.sessions)
            .with_context(|| format!("{}: {} sessions", b.name(), args.sessions))?;
        println!(
            "{:<8} {:>13.3}% {:>15.3}% {:>11.3}% {:>13.3}% {:>11} {:>10.2}",
            b.name(),
            base.cpu_pct,
            with.cpu_pct,
            with.cpu_pct - base.cpu_pct,
            with.ctl_pct,
            with.fast_ports,
            with.create_secs
        );
        rows.push(serde_json::json!({
            "backend": b.name(),
            "cpu_pct_no_sessions": base.cpu_pct,
            "cpu_pct_sessions": with.cpu_pct,
            "control_pct_no_sessions": base.ctl_pct,
            "control_pct_sessions": with.ctl_pct,
            "fast_ports": with.fast_ports,
            "create_secs": with.create_secs,
        }));
    }
    if args.json {
        let j = serde_json::json!({
            "mode": "idle",
            "sessions": args.sessions,
            "ports_per_session": per,
            "seconds": args.seconds,
            "place": if place.lab.is_some() { "lab" } else { "loopback" },
            "results": rows,
        });
        println!("{j}");
    }
    Ok(())
}
