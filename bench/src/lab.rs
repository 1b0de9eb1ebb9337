//! The measurement bench shared by `compare` and by `relay --backend af_xdp|xdp`: the namespace
//! lab (or loopback), a relay backend confined to one core, an open-loop load thread, and an
//! optional impairment hop that drops every k-th packet and delays the rest (to check the
//! measurement itself).
//!
//! ```text
//!   load thread (core G) ─► [impair hop] ─► relay (core R) ─► load thread (core G)
//!     PBX peer 10.77.1.2:40000             backend under test   carrier peer 10.77.2.2:50000
//! ```
//!
//! - **Places.** With root, `scripts/lab up --queues 1 --prefix xtb<pid>-<n>` creates three
//!   namespaces (PBX, relay, carrier); everything is removed on drop (also after an error or a
//!   Ctrl-C, which only sets a flag the loops poll). Without root only the socket backend can run,
//!   on loopback (PBX peer 127.0.0.2, relay 127.0.0.1, carrier peer 127.0.0.3).
//! - **Backends.** `socket` is the real socket backend (`xtrunk_datapath::socket`) with one
//!   worker pinned to core R; `af_xdp` is `XskRuntime` with one queue per veth served by one
//!   worker pinned to core R, fast path off; `xdp` is the same with the fast path on (the XDP
//!   program forwards, the worker only latches the first packets). Control loops run on core G
//!   and are nearly idle.
//! - **Load.** One thread pinned to core G sends and receives (one UDP socket per side). Every
//!   payload carries a magic, the directed-stream index, a sequence number, the *intended* send
//!   time and a phase (warm-up or measured). Open loop: fixed-rate streams are paced from a
//!   schedule (packet j of the aggregate is due at t0 + j/total_rate) and never wait for the
//!   relay; a flood sends `sendmmsg` batches of 64 as fast as the thread can. The receiver
//!   records one-way latency = receive time − intended send time (both `Instant`, i.e.
//!   CLOCK_MONOTONIC, one process, so valid across namespaces) into an HDR histogram. Measuring
//!   from the intended time is the coordinated-omission correction for an open-loop sender: a
//!   stalled sender cannot hide the delay it causes (wrk2's approach).
//! - **Windows.** Warm-up (packets tagged phase 0, ignored), then the measured window (phase 1):
//!   offered = phase-1 packets the kernel accepted / window; delivered = phase-1 packets received
//!   (including those arriving during the drain after the window) / window; loss = 1 − received /
//!   sent; reordered = arrivals with a sequence number below the stream's highest so far.
//! - **Relay core time.** CPU time over the window (`schedstat`) of the relay's worker thread and,
//!   on the lab, of the relay veths' NAPI threads, pinned to core R as well (the NIC model, see
//!   [`Lab`]): every backend's receive work (socket: GRO + IP + UDP; AF_XDP: XDP program + copy
//!   into the UMEM; fast path: the XDP program forwarding) counts on core R, the far hosts' on
//!   core G. For the fast path the XDP program's own run time (`BPF_ENABLE_STATS`) is reported
//!   too (`xdp_ns_per_packet`).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command as Proc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrhistogram::Histogram;
use xtrunk_datapath::relay::{Relay, RelayConfig};
use xtrunk_datapath::socket::{self, BatchSocket, SocketOptions, Stats};
use xtrunk_datapath::xsk::{enable_run_stats, AttachMode, Sink, XskInterface, XskMode, XskOptions, XskRuntime};
use xtrunk_ebpf::Counter;
use xtrunk_ring::msg::{Command, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

/// First relay port; session i uses `PORT_BASE + 4i` (leg 0) and `+ 2` (leg 1), RTCP muxed.
const PORT_BASE: u16 = 30000;
const PORT_MAX: u16 = 39999;
/// Default interrupt coalescing of the relay's lab veths, µs (see [`Lab`]).
pub(crate) const DEFAULT_COALESCE_US: u32 = 50;
/// Most sessions the port range holds.
pub(crate) const MAX_SESSIONS: usize = ((PORT_MAX - PORT_BASE) as usize + 1) / 4;
const PBX_PORT: u16 = 40000;
const CAR_PORT: u16 = 50000;
const IMPAIR_IN_PORT: u16 = 40010;
const IMPAIR_OUT_PORT: u16 = 40012;
const RTP_HDR: usize = 12;
/// RTP payload bytes (20 ms of G.711): 172-byte datagrams.
const PAYLOAD: usize = 160;
const MAGIC: u32 = 0x5854_4231; // "XTB1"
const BATCH: usize = 64;
/// Highest aggregate rate a fixed-rate run accepts (one load thread cannot pace more).
pub(crate) const MAX_RATE_PPS: f64 = 5_000_000.0;

/// A datapath backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Backend {
    /// The UDP-socket backend (recvmmsg/sendmmsg), the baseline.
    Socket,
    /// AF_XDP sockets (copy mode on veth), fast path off.
    AfXdp,
    /// The XDP fast path: the in-kernel program rewrites and redirects.
    Xdp,
    /// The socket backend again, paced just below what it delivered under the flood of the same
    /// round (`compare` only): its capacity without receive livelock, so the ratios are taken
    /// against the socket backend's better figure.
    SocketPaced,
    /// The socket backend with its workers always busy-polling 200 µs after packets (the
    /// behaviour before #20; `socket` busy-polls only above 20 kpps): `--backends socket,socket_spin`
    /// compares them in one invocation.
    SocketSpin,
}

impl Backend {
    /// The name used on the command line and in JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Socket => "socket",
            Backend::AfXdp => "af_xdp",
            Backend::Xdp => "xdp",
            Backend::SocketPaced => "socket~",
            Backend::SocketSpin => "socket_spin",
        }
    }

    /// The socket backend, flooded or paced.
    pub(crate) fn is_socket(self) -> bool {
        matches!(self, Backend::Socket | Backend::SocketPaced | Backend::SocketSpin)
    }

    /// Parses `socket`, `af_xdp` (also `afxdp`, `xsk`) or `xdp` (also `fast`, `fast_path`).
    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "socket" => Backend::Socket,
            "socket_spin" => Backend::SocketSpin,
            "af_xdp" | "afxdp" | "xsk" => Backend::AfXdp,
            "xdp" | "fast" | "fast_path" => Backend::Xdp,
            other => bail!("unknown backend {other:?} (known: socket, socket_spin, af_xdp, xdp)"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Ctrl-C, root, clocks, threads

/// The process-wide interrupt flag: set by SIGINT/SIGTERM (a second signal exits at once).
pub(crate) fn interrupted() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Order matters: the conditional shutdown sees the flag set by the first signal.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, f.clone());
            let _ = signal_hook::flag::register(sig, f.clone());
        }
        f
    })
}

fn is_interrupted() -> bool {
    interrupted().load(Ordering::Relaxed)
}

/// Whether this process runs as root (namespaces and XDP need it).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Nanoseconds on the process-wide monotonic clock (`Instant` = CLOCK_MONOTONIC on Linux).
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn enter_netns(ns: &str) -> anyhow::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).with_context(|| format!("opening netns {ns}"))?;
    // SAFETY: setns with a valid namespace fd only changes this thread's network namespace.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setns({ns})"));
    }
    Ok(())
}

fn pin(core: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
}

/// Spawns a named thread that first enters `ns` (when given) and pins itself to `core` (when given).
pub(crate) fn spawn_in<T: Send + 'static>(
    name: &str,
    ns: Option<&str>,
    core: Option<usize>,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> JoinHandle<anyhow::Result<T>> {
    let ns = ns.map(str::to_owned);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Some(ns) = &ns {
                enter_netns(ns)?;
            }
            if let Some(c) = core {
                pin(c);
            }
            f()
        })
        .expect("spawning a bench thread")
}

fn join<T>(h: JoinHandle<anyhow::Result<T>>) -> anyhow::Result<T> {
    h.join().map_err(|_| anyhow!("a bench thread panicked"))?
}

/// Runs `f` on a short-lived thread inside `ns`.
fn in_ns<T: Send + 'static>(
    ns: Option<&str>,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    join(spawn_in("xtb-ns", ns, None, f))
}

/// CPU time (ns) of the task whose /proc directory is `dir` (first field of its `schedstat`);
/// 0 once it is gone.
fn schedstat_ns(dir: &std::path::Path) -> u64 {
    std::fs::read_to_string(dir.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time (ns) of the threads under `task_dir` (`/proc/<pid>/task`) whose name passes `keep`.
pub(crate) fn tasks_cpu_ns(task_dir: &str, keep: impl Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(task_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| keep(std::fs::read_to_string(e.path().join("comm")).unwrap_or_default().trim()))
        .map(|e| schedstat_ns(&e.path()))
        .sum()
}

/// CPU time (ns) of this process's threads named `name`.
fn thread_cpu_ns(name: &str) -> u64 {
    tasks_cpu_ns("/proc/self/task", |c| c == name)
}

/// CPU time (ns) of process or thread `pid`; 0 once it is gone.
fn pid_cpu_ns(pid: i32) -> u64 {
    schedstat_ns(std::path::Path::new(&format!("/proc/{pid}")))
}

/// Pids of the kernel's threaded-NAPI threads (`comm` = `napi/<ifname>-<napi id>`).
fn napi_threads() -> Vec<(i32, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.starts_with("napi/") {
            v.push((pid, comm.trim().to_owned()));
        }
    }
    v
}

/// CLOCK_MONOTONIC ns of [`now_ns`]'s epoch (`Instant` is CLOCK_MONOTONIC on Linux).
fn epoch_monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    mono.saturating_sub(now_ns())
}

/// The XDP sink's latency buckets as (packets, HDR histogram): each bucket's packets are
/// recorded at the bucket's middle (buckets are 1/8 of a power of two wide above 64 µs, 1.024 µs
/// below, so percentiles are within about 6 %).
fn sink_histogram(buckets: &[u64]) -> (u64, Histogram<u64>) {
    let mut h = new_hist();
    let mut n = 0;
    for (b, c) in (0u32..).zip(buckets) {
        if *c == 0 {
            continue;
        }
        n += c;
        let lo = xtrunk_ebpf::sink_bucket_floor_ns(b);
        let hi = xtrunk_ebpf::sink_bucket_floor_ns(b + 1).max(lo + 1024);
        let _ = h.record_n(((lo + hi) / 2).max(1_000), *c);
    }
    (n, h)
}

/// Pins thread `pid` (any process's) to `core`.
fn pin_pid(pid: i32, core: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it (core < 1024 is
    // checked by the caller's core validation against the machine's core count).
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    if !ok {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("pinning thread {pid} to core {core}"));
    }
    Ok(())
}

/// Gives thread `pid` the lowest real-time priority (`SCHED_FIFO` 1).
fn realtime(pid: i32) -> anyhow::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler reads one valid sched_param.
    if unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("SCHED_FIFO for thread {pid}"));
    }
    Ok(())
}

/// Packets the lab's veths dropped on transmit (the peer's receive ring was full: on a veth with
/// XDP that is the 256-entry ring its NAPI thread drains), summed over the lab's namespaces;
/// read with `ip -n NS -s -j link` (sysfs shows the namespace the bench was started in).
fn veth_tx_dropped(nss: &[&Option<String>]) -> u64 {
    let one = |ns: &str| -> Option<u64> {
        let out = Proc::new("ip").args(["-n", ns, "-s", "-j", "link", "show"]).output().ok()?;
        let links: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(links.as_array()?.iter().filter_map(|l| l["stats64"]["tx"]["dropped"].as_u64()).sum())
    };
    nss.iter().filter_map(|ns| ns.as_deref()).filter_map(one).sum()
}

/// `Udp: RcvbufErrors` of the calling thread's network namespace.
pub(crate) fn udp_rcvbuf_errors() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = s.lines().filter(|l| l.starts_with("Udp:")).collect();
    if udp.len() < 2 {
        return 0;
    }
    let names: Vec<&str> = udp[0].split_whitespace().collect();
    let vals: Vec<&str> = udp[1].split_whitespace().collect();
    names.iter().position(|n| *n == "RcvbufErrors").and_then(|i| vals.get(i)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The lab

/// The namespace lab (`scripts/lab`), removed on drop.
///
/// **NIC model.** A veth does its receive work (NAPI: GRO, the XDP program, the IP/UDP stack) on
/// whichever CPU sent the packet, so by default the relay core would pay for the *far hosts'*
/// receive path and the load core for the relay's. A real NIC queue does that work on the core
/// its IRQ is pinned to (`scripts/tune-nic` pins it to the core serving the queue), and the far
/// hosts are other machines. The bench makes the lab behave that way: every lab veth gets
/// threaded NAPI (`/sys/class/net/IF/threaded`, GRO on so the NAPI instance is permanent), the
/// relay's veths' NAPI threads are pinned to the relay core and the peers' to the load core.
/// The relay core's time is then the worker thread plus the relay veths' NAPI threads, for
/// every backend alike: socket (NAPI runs GRO + IP + UDP, the worker recvmmsg/sendmmsg), AF_XDP
/// (NAPI runs the XDP program and the copy into the UMEM, the worker relays and transmits) and
/// the fast path (NAPI runs the XDP program, which forwards).
///
/// **Coalescing.** A NIC batches its interrupts (`ethtool -C IF rx-usecs N`; 8–64 µs or adaptive
/// by default on server NICs); a veth wakes its NAPI for every packet, and in a virtual machine
/// every such cross-core wakeup is an IPI that costs microseconds. The relay's veths therefore
/// get the kernel's software coalescing (`gro_flush_timeout` = the given µs,
/// `napi_defer_hard_irqs` = 2), the same for every backend; `--coalesce-us 0` turns it off.
pub(crate) struct Lab {
    prefix: String,
    script: PathBuf,
    /// NAPI threads of the relay namespace's veths (pinned to the relay core).
    relay_napi: Vec<i32>,
}

fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lab")
}

fn run_lab(script: &std::path::Path, cmd: &str, prefix: &str) -> anyhow::Result<()> {
    let line = format!("bash {} {cmd} --queues 1 --prefix {prefix}", script.display());
    let out = Proc::new("bash")
        .arg(script)
        .args([cmd, "--queues", "1", "--prefix", prefix])
        .output()
        .with_context(|| format!("running `{line}`"))?;
    if !out.status.success() {
        bail!("lab {cmd} failed: `{line}` exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Lab {
    /// Creates the three namespaces `xtb<pid>-<n>-{pbx,relay,carrier}` with one queue per veth,
    /// and sets up the NIC model (see the type's docs) for `relay_core` and `load_core`, with
    /// `coalesce_us` of interrupt coalescing on the relay's veths (0 = none).
    pub(crate) fn up(relay_core: usize, load_core: usize, coalesce_us: u32) -> anyhow::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        if !is_root() {
            bail!("the namespace lab needs root (network namespaces, XDP): rerun with sudo");
        }
        let script = lab_script();
        if !script.exists() {
            bail!("lab script {} not found (xtrunk-bench uses the checkout it was built from)", script.display());
        }
        let prefix = format!("xtb{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let mut lab = Lab { prefix, script, relay_napi: Vec::new() };
        // On failure `lab` drops here and removes whatever was half created.
        run_lab(&lab.script, "up", &lab.prefix)?;
        for (role, ifname, core) in [
            ("relay", "rp0", relay_core),
            ("relay", "rc0", relay_core),
            ("pbx", "pbx0", load_core),
            ("carrier", "car0", load_core),
        ] {
            // Coalescing on the relay's NICs only: the far hosts stand for other machines.
            let co = if role == "relay" { u64::from(coalesce_us) * 1000 } else { 0 };
            let pids = threaded_napi(&lab.ns(role), ifname, core, co)?;
            if role == "relay" {
                lab.relay_napi.extend(pids);
            } else {
                // The far hosts take every packet the wire brings: their receive path runs
                // before the load thread on the shared load core (a flood would otherwise keep
                // it off the core and overflow the veth's ring, a loss that is the lab's, not
                // the relay's).
                for p in pids {
                    realtime(p)?;
                }
            }
        }
        Ok(lab)
    }

    /// CPU time of the relay veths' NAPI threads (see the NIC model in the type's docs).
    fn relay_napi_cpu_ns(&self) -> u64 {
        self.relay_napi.iter().map(|p| pid_cpu_ns(*p)).sum()
    }

    /// The relay NAPI threads that are gone or moved off the relay core (the kernel recreates
    /// them if a veth's NAPI is deleted and re-added), as a warning for the reader.
    fn napi_model_broken(&self, relay_core: usize) -> Option<String> {
        let bad: Vec<String> = self
            .relay_napi
            .iter()
            .filter(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                let stat = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
                let cpus = stat.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(str::trim).unwrap_or("");
                !comm.starts_with("napi/") || cpus != relay_core.to_string()
            })
            .map(|p| p.to_string())
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "NIC model broken: relay NAPI thread(s) {} gone or no longer pinned to core {relay_core}; relay core time is incomplete",
                bad.join(", ")
            )
        })
    }

    pub(crate) fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
}

/// Turns on threaded NAPI for `ifname` in namespace `ns` with `coalesce_ns` of interrupt
/// coalescing (0 = none) and pins its NAPI thread(s) to `core`; returns their pids.
fn threaded_napi(ns: &str, ifname: &str, core: usize, coalesce_ns: u64) -> anyhow::Result<Vec<i32>> {
    let before: Vec<i32> = napi_threads().into_iter().map(|(p, _)| p).collect();
    // `ip netns exec` mounts the namespace's own /sys, where IF's attributes are.
    // napi_defer_hard_irqs = 2 with gro_flush_timeout = T: after a poll that found work, the
    // kernel polls again from a timer T ns later instead of re-arming the "interrupt" (on veth:
    // the peer's wakeup per packet), the software form of a NIC's rx-usecs coalescing.
    let defer = if coalesce_ns > 0 { 2 } else { 0 };
    let script = format!(
        "ethtool -K {ifname} gro on >/dev/null && echo 1 > /sys/class/net/{ifname}/threaded \
         && echo {coalesce_ns} > /sys/class/net/{ifname}/gro_flush_timeout \
         && echo {defer} > /sys/class/net/{ifname}/napi_defer_hard_irqs"
    );
    let out = Proc::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", &script])
        .output()
        .with_context(|| format!("running `ip netns exec {ns} sh -c '{script}'`"))?;
    if !out.status.success() {
        bail!("threaded NAPI on {ns}/{ifname} failed (`{script}`): {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let prefix = format!("napi/{ifname}-");
    let pids: Vec<i32> = napi_threads()
        .into_iter()
        .filter(|(p, c)| c.starts_with(&prefix) && !before.contains(p))
        .map(|(p, _)| p)
        .collect();
    if pids.is_empty() {
        bail!("no NAPI thread appeared for {ns}/{ifname} after enabling threaded NAPI (kernel without threaded NAPI on veth?)");
    }
    for p in &pids {
        pin_pid(*p, core)?;
    }
    Ok(pids)
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = run_lab(&self.script, "down", &self.prefix) {
            eprintln!("xtrunk-bench: {e:#}; remove the namespaces {}-* by hand (ip netns del)", self.prefix);
        }
    }
}

/// Where the measurement runs.
pub(crate) enum Net<'a> {
    /// The namespace lab.
    Lab(&'a Lab),
    /// Loopback in the current namespace (socket backend only; no root needed).
    Loopback,
}

struct Topo {
    /// Relay ports: session i uses `port_base + 4i` and `+ 2`.
    port_base: u16,
    port_max: u16,
    /// Peer ports are fixed in the lab; on loopback (a namespace shared with everything else on
    /// the machine) peers bind ephemeral ports and the relay block is probed for.
    fixed_peer_ports: bool,
    pbx_ns: Option<String>,
    relay_ns: Option<String>,
    car_ns: Option<String>,
    pbx: IpAddr,
    relay_pbx: IpAddr,
    relay_car: IpAddr,
    car: IpAddr,
}

impl Topo {
    fn of(net: &Net<'_>) -> Self {
        match net {
            Net::Lab(l) => Topo {
                port_base: PORT_BASE,
                port_max: PORT_MAX,
                fixed_peer_ports: true,
                pbx_ns: Some(l.ns("pbx")),
                relay_ns: Some(l.ns("relay")),
                car_ns: Some(l.ns("carrier")),
                pbx: Ipv4Addr::new(10, 77, 1, 2).into(),
                relay_pbx: Ipv4Addr::new(10, 77, 1, 1).into(),
                relay_car: Ipv4Addr::new(10, 77, 2, 1).into(),
                car: Ipv4Addr::new(10, 77, 2, 2).into(),
            },
            Net::Loopback => Topo {
                port_base: 0,
                port_max: 0,
                fixed_peer_ports: false,
                pbx_ns: None,
                relay_ns: None,
                car_ns: None,
                pbx: Ipv4Addr::new(127, 0, 0, 2).into(),
                relay_pbx: Ipv4Addr::LOCALHOST.into(),
                relay_car: Ipv4Addr::LOCALHOST.into(),
                car: Ipv4Addr::new(127, 0, 0, 3).into(),
            },
        }
    }

    fn leg0(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.relay_pbx, self.port_base + (4 * i) as u16)
    }

    fn leg1(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.relay_car, self.port_base + (4 * i) as u16 + 2)
    }

    /// Session i. Leg 0 latches once (so the fast path may take it); leg 1 latches once when the
    /// carrier also sends, else it is strict (its SDP address is the fixed destination).
    fn peer_port(&self, fixed: u16) -> u16 {
        if self.fixed_peer_ports {
            fixed
        } else {
            0
        }
    }

    /// Loopback: a block of `4 × sessions` relay ports nobody holds now on the relay address.
    fn probe_port_block(&mut self, sessions: usize) -> anyhow::Result<()> {
        let need = 4 * sessions;
        let pid = std::process::id() as usize;
        for k in 0..512usize {
            let base = (20_000 + (pid.wrapping_mul(52) + k * 1_012) % (40_000 - need)) & !3;
            let free = (0..2 * sessions)
                .map(|j| std::net::UdpSocket::bind(SocketAddr::new(self.relay_pbx, (base + 2 * j) as u16)))
                .collect::<Result<Vec<_>, _>>()
                .is_ok();
            if free {
                self.port_base = base as u16;
                self.port_max = (base + need - 1) as u16;
                return Ok(());
            }
        }
        bail!("no block of {need} free UDP ports on {} for the relay", self.relay_pbx)
    }

    fn spec(&self, i: usize, bidir: bool, pbx_src: SocketAddr, car: SocketAddr) -> SessionSpec {
        let leg = |local, remote, latch| LegSpec {
            local,
            remote: Some(remote),
            remote_rtcp_port: 0,
            rtcp_mux: true,
            latch,
            signal_ip: None,
            pt_map: PtMap::new(),
            crypto: LegCrypto::default(),
            ptime_ms: 0,
        };
        SessionSpec {
            id: SessionId(i as u64 + 1),
            legs: [
                leg(self.leg0(i), pbx_src, LatchPolicy::Once),
                leg(self.leg1(i), car, if bidir { LatchPolicy::Once } else { LatchPolicy::Strict }),
            ],
            media_timeout_ms: 0,
            leg_timeout_ms: [0; 2],
            allow_fast_path: true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What to offer, what came back

/// Drop every k-th packet and delay the others by a fixed time, on a hop between the PBX peer
/// and the relay (a known impairment the measurement must report).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Impair {
    /// Drop packet k, 2k, 3k, ... (0 = none).
    pub(crate) drop_every: u64,
    /// Added one-way delay.
    pub(crate) delay: Duration,
}

/// The offered load of one measurement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    /// Sessions.
    pub(crate) sessions: usize,
    /// Packets/s per directed stream; `None` floods (as fast as the load thread can).
    pub(crate) pps_per_stream: Option<f64>,
    /// Also send carrier → PBX (two directed streams per session).
    pub(crate) bidirectional: bool,
    /// Measured window.
    pub(crate) seconds: f64,
    /// Warm-up before the window (packets ignored).
    pub(crate) warmup: Duration,
    /// Core of the load thread and control loops.
    pub(crate) load_core: usize,
    /// Core of the relay worker.
    pub(crate) relay_core: usize,
    /// Optional impairment hop (PBX → relay direction only; forces one direction).
    pub(crate) impair: Option<Impair>,
    /// Capacity mode (lab only): the carrier's veth runs `xtrunk_sink`, an XDP program that
    /// counts measured packets into a latency histogram and drops them, instead of a UDP
    /// receiver. The load core then spends next to nothing per received packet and can offer
    /// more; reordering is not tracked.
    pub(crate) xdp_sink: bool,
}

impl Load {
    fn directed(&self) -> usize {
        self.sessions * if self.bidirectional && self.impair.is_none() { 2 } else { 1 }
    }

    /// Asked-for aggregate rate (None for a flood).
    pub(crate) fn asked_pps(&self) -> Option<f64> {
        self.pps_per_stream.map(|r| r * self.directed() as f64)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.sessions == 0 || self.sessions > MAX_SESSIONS {
            bail!(
                "sessions must be 1..={MAX_SESSIONS} (ports {PORT_BASE}..={PORT_MAX}, 4 per session), got {}",
                self.sessions
            );
        }
        if !(self.seconds > 0.0 && self.seconds <= 3600.0) {
            bail!("seconds must be in (0, 3600], got {}", self.seconds);
        }
        if let Some(r) = self.pps_per_stream {
            // NaN fails this too.
            if r.is_nan() || r <= 0.0 {
                bail!("the rate must be positive, got {r} packets/s per stream");
            }
            let total = r * self.directed() as f64;
            if total > MAX_RATE_PPS {
                bail!(
                    "rate impossible: {} directed streams × {r} pps = {total:.0} pps, above the {MAX_RATE_PPS:.0} pps one load thread can pace",
                    self.directed()
                );
            }
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default().len();
        if self.load_core >= cores.max(1) || self.relay_core >= cores.max(1) {
            bail!("load core {} / relay core {}: this machine has {cores} cores", self.load_core, self.relay_core);
        }
        Ok(())
    }
}

/// The result of one measurement of one backend.
#[derive(Clone, Debug)]
pub(crate) struct Measurement {
    /// Backend measured.
    pub(crate) backend: Backend,
    /// Length of the measured window.
    pub(crate) secs: f64,
    /// Aggregate rate asked for (None: flood).
    pub(crate) asked_pps: Option<f64>,
    /// Phase-1 packets the kernel accepted from the load thread.
    pub(crate) sent: u64,
    /// `sendmmsg` refusals (socket buffer full): not offered.
    pub(crate) send_failed: u64,
    /// Phase-1 packets received.
    pub(crate) received: u64,
    /// Arrivals below their stream's highest sequence number.
    pub(crate) reordered: u64,
    /// Datagrams without the bench's magic.
    pub(crate) foreign: u64,
    /// One-way latency from the intended send time, ns.
    pub(crate) hist: Histogram<u64>,
    /// CPU time of the relay core over the window: worker thread + relay veths' NAPI threads.
    pub(crate) relay_cpu_ns: u64,
    /// NAPI threads counted in `relay_cpu_ns` (0 on loopback).
    pub(crate) napi_threads: usize,
    /// XDP program run time / runs over the window (fast path only; zero otherwise).
    pub(crate) xdp_run_ns: u64,
    /// See `xdp_run_ns`.
    pub(crate) xdp_runs: u64,
    /// Packets the XDP program forwarded itself over the window.
    pub(crate) fast_forwarded: u64,
    /// Ports on the fast path at the end / ports that could be.
    pub(crate) fast_ports: (usize, usize),
    /// UDP receive-buffer overflows over the window: (relay namespace, peer namespaces).
    pub(crate) rcvbuf_errors: (u64, u64),
    /// Packets the lab's veths dropped on transmit over the window (a full receive ring at the
    /// peer: before any backend saw them, when the peer is the relay).
    pub(crate) veth_tx_dropped: u64,
    /// Largest lag of the paced sender behind its schedule, ns.
    pub(crate) max_lag_ns: u64,
    /// Things the reader must know (could not offer the load, fast path not reached, ...).
    pub(crate) warnings: Vec<String>,
}

impl Measurement {
    /// Offered packets/s (accepted by the kernel).
    pub(crate) fn offered_pps(&self) -> f64 {
        self.sent as f64 / self.secs
    }

    /// Delivered packets/s.
    pub(crate) fn delivered_pps(&self) -> f64 {
        self.received as f64 / self.secs
    }

    /// 1 − received/sent (0 when nothing was sent).
    pub(crate) fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            (1.0 - self.received as f64 / self.sent as f64).max(0.0)
        }
    }

    /// Delivered packets per second of relay-core time: per CPU-second of the pinned worker
    /// thread plus (on the lab) the relay veths' NAPI threads, the same for every backend (see
    /// the NIC model on [`Lab`]).
    pub(crate) fn per_core_pps(&self) -> f64 {
        if self.relay_cpu_ns == 0 {
            0.0
        } else {
            self.received as f64 * 1e9 / self.relay_cpu_ns as f64
        }
    }

    /// Relay worker utilisation over the window (1.0 = one core busy).
    pub(crate) fn relay_util(&self) -> f64 {
        self.relay_cpu_ns as f64 / 1e9 / self.secs
    }

    /// Latency percentile in µs (0 when nothing was received).
    pub(crate) fn pct_us(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1000.0
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Payload

struct Stamp {
    stream: u32,
    seq: u64,
    intended_ns: u64,
    phase: u8,
}

fn write_packet(buf: &mut [u8], s: &Stamp) -> usize {
    let len = RTP_HDR + PAYLOAD;
    buf[0] = 0x80;
    buf[1] = 0; // PCMU
    buf[2..4].copy_from_slice(&(s.seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&((s.seq as u32).wrapping_mul(160)).to_be_bytes());
    buf[8..12].copy_from_slice(&(s.stream + 1).to_be_bytes());
    buf[12..16].copy_from_slice(&MAGIC.to_be_bytes());
    buf[16..20].copy_from_slice(&s.stream.to_be_bytes());
    buf[20..28].copy_from_slice(&s.seq.to_be_bytes());
    buf[28..36].copy_from_slice(&s.intended_ns.to_be_bytes());
    buf[36] = s.phase;
    buf[37..len].fill(0xFF);
    len
}

fn read_packet(d: &[u8]) -> Option<Stamp> {
    if d.len() < 37 || d[12..16] != MAGIC.to_be_bytes() {
        return None;
    }
    let u32_at = |i: usize| u32::from_be_bytes(d[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_be_bytes(d[i..i + 8].try_into().unwrap_or_default());
    Some(Stamp { stream: u32_at(16), seq: u64_at(20), intended_ns: u64_at(28), phase: d[36] })
}

// ---------------------------------------------------------------------------------------------
// The relay under test

/// Statistics the control thread of a running relay answers with.
#[derive(Clone, Copy, Default)]
struct RelaySnap {
    xdp_run_ns: u64,
    xdp_runs: u64,
    fast_ports: usize,
    fast_forwarded: u64,
}

type SnapReq = mpsc::Sender<mpsc::Sender<RelaySnap>>;

struct RunningRelay {
    thread_name: &'static str,
    stop: Arc<AtomicBool>,
    ctl: Option<JoinHandle<anyhow::Result<()>>>,
    snap: Option<SnapReq>,
}

impl RunningRelay {
    fn snapshot(&self) -> RelaySnap {
        let Some(req) = &self.snap else {
            return RelaySnap::default();
        };
        let (tx, rx) = mpsc::channel();
        if req.send(tx).is_err() {
            return RelaySnap::default();
        }
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default()
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.ctl.take() {
            Some(h) => join(h),
            None => Ok(()),
        }
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.ctl.take() {
            let _ = h.join();
        }
    }
}

fn wait_created(ev_rx: &mpsc::Receiver<Event>, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut created = 0;
    while created < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match ev_rx.recv_timeout(left) {
            Ok(Event::Created(_)) => created += 1,
            Ok(Event::Error { id, code, port }) => {
                bail!("the relay refused session {id:?}: {code:?} (port {port})")
            }
            Ok(_) => {}
            Err(_) => bail!("the relay created {created} of {n} sessions within 10 s"),
        }
    }
    Ok(())
}

fn start_socket_relay(
    topo: &Topo,
    specs: Vec<SessionSpec>,
    load: &Load,
    busy_poll: socket::BusyPoll,
) -> anyhow::Result<RunningRelay> {
    let stop = Arc::new(AtomicBool::new(false));
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let opts = SocketOptions {
        bind_ip: if topo.relay_ns.is_some() { Ipv4Addr::UNSPECIFIED.into() } else { topo.relay_pbx },
        port_min: topo.port_base,
        port_max: topo.port_max,
        cores: vec![load.relay_core],
        max_sessions: specs.len(),
        batch: BATCH,
    };
    let st = stop.clone();
    // The control loop stays unpinned (a pinned caller would narrow the cores `run` accepts);
    // it wakes once per millisecond and does nothing while the sessions stand.
    let ctl = spawn_in("xtb-sock-ctl", topo.relay_ns.as_deref(), None, move || {
        socket::run_tuned(opts, busy_poll, cmd_rx, ev_tx, st, Arc::new(Stats::default())).context("socket backend")
    });
    let n = specs.len();
    for s in specs {
        let _ = cmd_tx.send(Command::Create(s));
    }
    let relay = RunningRelay { thread_name: "xt-sock-0", stop, ctl: Some(ctl), snap: None };
    if let Err(e) = wait_created(&ev_rx, n) {
        // The control loop may have failed first: its error says more.
        return Err(match relay.stop() {
            Err(inner) => inner,
            Ok(()) => e,
        });
    }
    // The backend polls with `try_recv`: a closed channel just means "no command".
    drop(cmd_tx);
    Ok(relay)
}

fn start_xsk_relay(topo: &Topo, specs: Vec<SessionSpec>, load: &Load, fast: bool) -> anyhow::Result<RunningRelay> {
    let stop = Arc::new(AtomicBool::new(false));
    let (snap_tx, snap_rx) = mpsc::channel::<mpsc::Sender<RelaySnap>>();
    let (up_tx, up_rx) = mpsc::channel::<anyhow::Result<()>>();
    let st = stop.clone();
    let relay_core = load.relay_core;
    let n = specs.len();
    let load_core = load.load_core;
    let ctl = spawn_in("xtb-xsk-ctl", topo.relay_ns.as_deref(), None, move || {
        let opts = XskOptions {
            interfaces: ["rp0", "rc0"]
                .iter()
                .map(|i| XskInterface { name: (*i).into(), queues: vec![0], cores: vec![relay_core] })
                .collect(),
            mode: XskMode::Auto,
            attach: AttachMode::Auto,
            fast_path: fast,
            port_min: PORT_BASE,
            port_max: PORT_MAX,
            max_sessions: n,
            ..XskOptions::default()
        };
        let cfg = RelayConfig { port_min: PORT_BASE, port_max: PORT_MAX, max_sessions: n };
        let mut rt = match XskRuntime::start(opts, Relay::new(cfg)) {
            Ok(rt) => rt,
            Err(e) => {
                let _ = up_tx.send(Err(anyhow!(
                    "starting the AF_XDP backend on rp0/rc0 failed: {e} (the XDP object is built by ebpf/build.rs with clang)"
                )));
                return Ok(());
            }
        };
        // Pinned only now, so the workers spawned by `start` did not inherit this mask.
        pin(load_core);
        let mut refused = None;
        for s in specs {
            rt.apply(&Command::Create(s), &mut |ev| {
                if let Event::Error { id, code, port } = ev {
                    refused.get_or_insert(format!("the relay refused session {id:?}: {code:?} (port {port})"));
                }
            });
        }
        let _ = up_tx.send(match refused {
            Some(r) => Err(anyhow!(r)),
            None => Ok(()),
        });
        while !st.load(Ordering::Relaxed) {
            rt.tick(&mut |_| {});
            while let Ok(reply) = snap_rx.try_recv() {
                let s = rt.stats();
                let _ = reply.send(RelaySnap {
                    xdp_run_ns: s.xdp_run.0.as_nanos() as u64,
                    xdp_runs: s.xdp_run.1,
                    fast_ports: s.fast_ports,
                    fast_forwarded: s.counter(Counter::FastRedirect) + s.counter(Counter::FastTx),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if std::env::var_os("XTB_VERBOSE").is_some() {
            let s = rt.stats();
            let xdp: Vec<String> = Counter::ALL
                .iter()
                .filter(|c| s.counter(**c) > 0)
                .map(|c| format!("{c:?}={}", s.counter(*c)))
                .collect();
            eprintln!("xsk stats: xdp [{}]\n  workers {:?}\n  queues {:?}", xdp.join(" "), s.workers, s.queues);
        }
        rt.shutdown();
        Ok(())
    });
    let relay = RunningRelay { thread_name: "xsk-q0", stop, ctl: Some(ctl), snap: Some(snap_tx) };
    match up_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => Ok(relay),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(anyhow!("the AF_XDP backend did not start within 20 s")),
    }
}

// ---------------------------------------------------------------------------------------------
// The load thread and the impairment hop

/// Phases of a measurement, driven by the coordinating thread.
const PH_WARMUP: u8 = 0;
const PH_MEASURE: u8 = 1;
const PH_DRAIN: u8 = 2;
const PH_EXIT: u8 = 3;

struct Live {
    phase: AtomicU8,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Default for Live {
    fn default() -> Self {
        Live { phase: AtomicU8::new(PH_WARMUP), sent: AtomicU64::new(0), received: AtomicU64::new(0) }
    }
}

struct LoadPlan {
    /// Per directed stream: (send on the carrier socket?, destination).
    streams: Vec<(bool, SocketAddr)>,
    /// Aggregate packets/s; None floods.
    rate: Option<f64>,
}

#[derive(Default, Clone, Copy)]
struct StreamRx {
    max_seq: Option<u64>,
    reordered: u64,
}

struct LoadResult {
    send_failed: u64,
    reordered: u64,
    foreign: u64,
    hist: Histogram<u64>,
    max_lag_ns: u64,
}

pub(crate) fn new_hist() -> Histogram<u64> {
    // 1 µs .. 60 s in ns, 3 significant digits.
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn load_thread(mut socks: [BatchSocket; 2], plan: LoadPlan, live: Arc<Live>) -> anyhow::Result<LoadResult> {
    let mut rx_state = vec![StreamRx::default(); plan.streams.len()];
    let mut hist = new_hist();
    let (mut send_failed, mut foreign, mut max_lag_ns) = (0u64, 0u64, 0u64);
    let mut seqs = vec![0u64; plan.streams.len()];
    let t0 = now_ns();
    let interval_ns = plan.rate.map(|r| 1e9 / r);
    let mut j: u64 = 0; // next packet of the aggregate schedule
    let nstreams = plan.streams.len() as u64;
    loop {
        let phase = live.phase.load(Ordering::Relaxed);
        if phase == PH_EXIT {
            break;
        }
        let mut worked = false;
        if phase <= PH_MEASURE {
            // Send what is due (paced) or one batch per socket (flood).
            let now = now_ns();
            let mut queued = [0usize; 2];
            for _ in 0..BATCH {
                let intended = match interval_ns {
                    Some(iv) => {
                        let due = t0 + (j as f64 * iv) as u64;
                        if due > now {
                            break;
                        }
                        max_lag_ns = max_lag_ns.max(now - due);
                        due
                    }
                    None => now,
                };
                let s = (j % nstreams) as usize;
                j += 1;
                let (carrier, dst) = plan.streams[s];
                let stamp = Stamp { stream: s as u32, seq: seqs[s], intended_ns: intended, phase };
                seqs[s] += 1;
                let k = usize::from(carrier);
                if !socks[k].queue(&dst, |b| write_packet(b, &stamp)) {
                    break;
                }
                queued[k] += 1;
            }
            for k in 0..2 {
                if queued[k] > 0 {
                    let (ok, failed) = socks[k].flush();
                    send_failed += failed as u64;
                    if phase == PH_MEASURE {
                        live.sent.fetch_add(ok as u64, Ordering::Relaxed);
                    }
                    worked = true;
                }
            }
        }
        // Receive what is waiting. A flood drains the sockets completely first (the receiver
        // has priority over the sender on the shared core, so the flood cannot overrun its own
        // receive buffers); paced sending bounds it so the schedule keeps up.
        let max_batches = if interval_ns.is_some() { 16 } else { 1024 };
        for sock in &mut socks {
            for _ in 0..max_batches {
                let mut got = 0u64;
                let n = sock.recv_batch(|_, d| {
                    let Some(st) = read_packet(d) else {
                        foreign += 1;
                        return;
                    };
                    if st.phase != PH_MEASURE {
                        return;
                    }
                    let Some(rx) = rx_state.get_mut(st.stream as usize) else {
                        foreign += 1;
                        return;
                    };
                    got += 1;
                    match rx.max_seq {
                        Some(m) if st.seq < m => rx.reordered += 1,
                        _ => rx.max_seq = Some(st.seq),
                    }
                    let lat = now_ns().saturating_sub(st.intended_ns).max(1_000);
                    let _ = hist.record(lat.min(60_000_000_000));
                })?;
                live.received.fetch_add(got, Ordering::Relaxed);
                if n == 0 {
                    break;
                }
                worked = true;
            }
        }
        if !worked {
            // Idle: paced and nothing due, or draining. Sleep a little, never past the next due time.
            let nap = match interval_ns {
                Some(iv) if live.phase.load(Ordering::Relaxed) <= PH_MEASURE => {
                    let due = t0 + (j as f64 * iv) as u64;
                    Duration::from_nanos(due.saturating_sub(now_ns()).min(100_000))
                }
                _ => Duration::from_micros(100),
            };
            if nap > Duration::from_micros(20) {
                std::thread::sleep(nap);
            }
        }
    }
    Ok(LoadResult { send_failed, reordered: rx_state.iter().map(|r| r.reordered).sum(), foreign, hist, max_lag_ns })
}

/// The impairment hop: receives on `inp`, drops every k-th datagram, holds the others for
/// `delay`, then sends them from `out` to the relay port of their stream.
fn impair_thread(
    mut inp: BatchSocket,
    mut out: BatchSocket,
    imp: Impair,
    dests: Vec<SocketAddr>,
    live: Arc<Live>,
) -> anyhow::Result<()> {
    let mut line: std::collections::VecDeque<(u64, SocketAddr, [u8; RTP_HDR + PAYLOAD], usize)> =
        std::collections::VecDeque::with_capacity(1 << 16);
    let delay = imp.delay.as_nanos() as u64;
    let mut count = 0u64;
    while live.phase.load(Ordering::Relaxed) != PH_EXIT {
        let now = now_ns();
        let mut worked = false;
        for _ in 0..16 {
            let n = inp.recv_batch(|_, d| {
                count += 1;
                if imp.drop_every > 0 && count.is_multiple_of(imp.drop_every) {
                    return;
                }
                let Some(st) = read_packet(d) else { return };
                let Some(&to) = dests.get(st.stream as usize) else {
                    return;
                };
                let mut b = [0u8; RTP_HDR + PAYLOAD];
                let len = d.len().min(b.len());
                b[..len].copy_from_slice(&d[..len]);
                line.push_back((now + delay, to, b, len));
            })?;
            if n == 0 {
                break;
            }
            worked = true;
        }
        let now = now_ns();
        while line.front().is_some_and(|p| p.0 <= now) {
            let Some((_, to, b, len)) = line.pop_front() else {
                break;
            };
            if !out.queue(&to, |buf| {
                buf[..len].copy_from_slice(&b[..len]);
                len
            }) {
                out.flush();
                line.push_front((0, to, b, len));
                continue;
            }
            worked = true;
        }
        if out.queued() > 0 {
            out.flush();
        }
        if !worked {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// One measurement

fn bind(ns: Option<&str>, addr: SocketAddr) -> anyhow::Result<BatchSocket> {
    in_ns(ns, move || {
        let s = BatchSocket::bind(addr, BATCH).with_context(|| format!("binding the load socket {addr}"))?;
        let _ = s.set_recv_buffer(8 << 20);
        Ok(s)
    })
}

/// Progress callback: (elapsed in the window, window length, live sent, live received).
pub(crate) type Progress<'a> = &'a mut dyn FnMut(f64, f64, u64, u64);

/// Measures one backend under `load` on `net`. Stops early (shorter window) on Ctrl-C.
pub(crate) fn measure(
    net: &Net<'_>,
    backend: Backend,
    load: &Load,
    progress: Progress<'_>,
) -> anyhow::Result<Measurement> {
    load.validate()?;
    if matches!(net, Net::Loopback) && !backend.is_socket() {
        bail!(
            "the {} backend needs the namespace lab (root): only the socket backend runs on loopback",
            backend.name()
        );
    }
    let _ = interrupted();
    let mut topo = Topo::of(net);
    if !topo.fixed_peer_ports {
        topo.probe_port_block(load.sessions)?;
    }
    let bidir = load.bidirectional && load.impair.is_none();
    if load.xdp_sink && (matches!(net, Net::Loopback) || bidir) {
        bail!("the XDP sink (capacity mode) needs the lab and one direction (PBX → carrier)");
    }
    // Attached before the relay starts and detached when `sink` drops, after the measurement.
    let sink = match (load.xdp_sink, &topo.car_ns) {
        (true, Some(ns)) => {
            let mut s =
                in_ns(Some(ns), || Sink::attach("car0").map_err(|e| anyhow!("attaching the XDP sink to car0: {e}")))?;
            s.set_epoch(epoch_monotonic_ns()).map_err(|e| anyhow!("setting the XDP sink's clock: {e}"))?;
            Some(s)
        }
        _ => None,
    };
    let pbx_sock = bind(topo.pbx_ns.as_deref(), SocketAddr::new(topo.pbx, topo.peer_port(PBX_PORT)))?;
    let car_sock = bind(topo.car_ns.as_deref(), SocketAddr::new(topo.car, topo.peer_port(CAR_PORT)))?;
    let impair_socks = match load.impair {
        Some(_) => Some((
            bind(topo.pbx_ns.as_deref(), SocketAddr::new(topo.pbx, topo.peer_port(IMPAIR_IN_PORT)))?,
            bind(topo.pbx_ns.as_deref(), SocketAddr::new(topo.pbx, topo.peer_port(IMPAIR_OUT_PORT)))?,
        )),
        None => None,
    };
    let pbx_src = match &impair_socks {
        Some((_, out)) => out.local_addr()?,
        None => pbx_sock.local_addr()?,
    };
    let car_addr = car_sock.local_addr()?;
    let specs: Vec<SessionSpec> = (0..load.sessions).map(|i| topo.spec(i, bidir, pbx_src, car_addr)).collect();

    // BPF run-time statistics only while the fast path is measured (they cost every XDP run).
    let _bpf_stats = if backend == Backend::Xdp {
        Some(enable_run_stats().map_err(|e| anyhow!("enabling BPF run-time statistics: {e}"))?)
    } else {
        None
    };
    let relay = match backend {
        Backend::Socket | Backend::SocketPaced => start_socket_relay(&topo, specs, load, socket::BusyPoll::default())?,
        Backend::SocketSpin => start_socket_relay(&topo, specs, load, socket::BusyPoll::Always)?,
        Backend::AfXdp => start_xsk_relay(&topo, specs, load, false)?,
        Backend::Xdp => start_xsk_relay(&topo, specs, load, true)?,
    };

    // Directed streams: 0..n PBX → carrier (to leg 0), n..2n carrier → PBX (to leg 1).
    let mut streams: Vec<(bool, SocketAddr)> = (0..load.sessions).map(|i| (false, topo.leg0(i))).collect();
    let relay_dests: Vec<SocketAddr> = streams.iter().map(|s| s.1).collect();
    if let Some((inp, _)) = &impair_socks {
        let to = inp.local_addr()?;
        for s in &mut streams {
            s.1 = to;
        }
    }
    if bidir {
        streams.extend((0..load.sessions).map(|i| (true, topo.leg1(i))));
    }
    let live = Arc::new(Live::default());
    let impair = match (load.impair, impair_socks) {
        (Some(imp), Some((inp, out))) => {
            let l = live.clone();
            Some(spawn_in("xtb-impair", None, Some(load.load_core), move || {
                impair_thread(inp, out, imp, relay_dests, l)
            }))
        }
        _ => None,
    };
    let plan = LoadPlan { rate: load.asked_pps(), streams };
    let l = live.clone();
    let gen = spawn_in("xtb-load", None, Some(load.load_core), move || load_thread([pbx_sock, car_sock], plan, l));

    let mut warnings = Vec::new();
    // Warm-up; the fast path additionally waits for every forwarding port to be switched over.
    let ports_expected = if backend == Backend::Xdp { load.sessions * if bidir { 2 } else { 1 } } else { 0 };
    let warm_end = Instant::now() + load.warmup;
    let fast_deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if is_interrupted() || gen.is_finished() {
            break;
        }
        let fast_ok = backend != Backend::Xdp || relay.snapshot().fast_ports >= ports_expected;
        if Instant::now() >= warm_end && (fast_ok || Instant::now() >= fast_deadline) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let rcvbuf = |relay_side: bool| -> u64 {
        let nss: Vec<Option<String>> =
            if relay_side { vec![topo.relay_ns.clone()] } else { vec![topo.pbx_ns.clone(), topo.car_ns.clone()] };
        if topo.relay_ns.is_none() && !relay_side {
            return 0; // loopback: one namespace, counted on the relay side
        }
        nss.into_iter().map(|ns| in_ns(ns.as_deref(), || Ok(udp_rcvbuf_errors())).unwrap_or(0)).sum()
    };
    let (rb0, pb0) = (rcvbuf(true), rcvbuf(false));
    let lab_nss = [&topo.pbx_ns, &topo.relay_ns, &topo.car_ns];
    let veth0 = veth_tx_dropped(&lab_nss);
    let s0 = relay.snapshot();
    let napi_ns = || match net {
        Net::Lab(l) => l.relay_napi_cpu_ns(),
        Net::Loopback => 0,
    };
    let cpu0 = thread_cpu_ns(relay.thread_name) + napi_ns();
    let start = Instant::now();
    live.phase.store(PH_MEASURE, Ordering::Relaxed);
    let window = Duration::from_secs_f64(load.seconds);
    while start.elapsed() < window && !is_interrupted() && !gen.is_finished() {
        std::thread::sleep(Duration::from_millis(50).min(window.saturating_sub(start.elapsed())));
        progress(
            start.elapsed().as_secs_f64(),
            load.seconds,
            live.sent.load(Ordering::Relaxed),
            live.received.load(Ordering::Relaxed),
        );
    }
    live.phase.store(PH_DRAIN, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = thread_cpu_ns(relay.thread_name) + napi_ns();
    let s1 = relay.snapshot();
    // Drain: packets sent in the window may still be in flight (queues, impairment delay).
    let drain = Duration::from_millis(300) + load.impair.map_or(Duration::ZERO, |i| i.delay * 2);
    std::thread::sleep(drain);
    let (rb1, pb1) = (rcvbuf(true), rcvbuf(false));
    let veth_dropped = veth_tx_dropped(&lab_nss).saturating_sub(veth0);
    // Measured-phase packets the sink saw, as (received, latency histogram).
    let sunk = match &sink {
        Some(s) => {
            Some(sink_histogram(&s.latency_buckets().map_err(|e| anyhow!("reading the XDP sink's histogram: {e}"))?))
        }
        None => None,
    };
    live.phase.store(PH_EXIT, Ordering::Relaxed);
    let res = join(gen);
    if let Some(h) = impair {
        join(h)?;
    }
    relay.stop()?;
    let res = res?;
    if let Net::Lab(l) = net {
        warnings.extend(l.napi_model_broken(load.relay_core));
    }
    if s1.fast_ports < ports_expected {
        warnings.push(format!(
            "only {} of {ports_expected} ports reached the fast path; the rest went through AF_XDP",
            s1.fast_ports
        ));
    }
    let sent = live.sent.load(Ordering::Relaxed);
    if let Some(asked) = load.asked_pps() {
        let offered = sent as f64 / secs;
        if offered < 0.95 * asked {
            warnings.push(format!(
                "could not offer the asked-for load: offered {offered:.0} of {asked:.0} pps (sender up to {:.1} ms behind its schedule)",
                res.max_lag_ns as f64 / 1e6
            ));
        }
    }
    if is_interrupted() {
        warnings.push(format!("interrupted: window cut to {secs:.2} s"));
    }
    Ok(Measurement {
        backend,
        secs,
        asked_pps: load.asked_pps(),
        sent,
        send_failed: res.send_failed,
        received: sunk.as_ref().map_or_else(|| live.received.load(Ordering::Relaxed), |s| s.0),
        reordered: res.reordered,
        foreign: res.foreign,
        hist: match sunk {
            Some((_, h)) => h,
            None => res.hist,
        },
        relay_cpu_ns: cpu1.saturating_sub(cpu0),
        napi_threads: match net {
            Net::Lab(l) => l.relay_napi.len(),
            Net::Loopback => 0,
        },
        xdp_run_ns: s1.xdp_run_ns.saturating_sub(s0.xdp_run_ns),
        xdp_runs: s1.xdp_runs.saturating_sub(s0.xdp_runs),
        fast_forwarded: s1.fast_forwarded.saturating_sub(s0.fast_forwarded),
        fast_ports: (s1.fast_ports, ports_expected),
        rcvbuf_errors: (rb1.saturating_sub(rb0), pb1.saturating_sub(pb0)),
        veth_tx_dropped: veth_dropped,
        max_lag_ns: res.max_lag_ns,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// `relay --backend af_xdp|xdp` (and socket) on the lab

/// Result of [`run_relay`]: one lab measurement at a fixed rate, ready to print.
#[derive(Debug)]
pub(crate) struct RelayReport {
    /// The measurement.
    pub(crate) m: Measurement,
    /// Sessions (each carries two directed streams).
    pub(crate) sessions: usize,
    /// Packets/s per directed stream.
    pub(crate) pps_per_stream: u32,
}

impl RelayReport {
    /// One JSON object (the `relay` mode's last line).
    pub(crate) fn json(&self) -> serde_json::Value {
        let m = &self.m;
        serde_json::json!({
            "mode": "relay",
            "backend": m.backend.name(),
            "place": "lab",
            "streams": self.sessions,
            "directed_streams": self.sessions * 2,
            "pps_per_stream": self.pps_per_stream,
            "seconds": m.secs,
            "asked_pps": m.asked_pps,
            "offered_pps": m.offered_pps(),
            "delivered_pps": m.delivered_pps(),
            "sent": m.sent,
            "received": m.received,
            "send_failed": m.send_failed,
            "loss_ratio": m.loss_ratio(),
            "reordered": m.reordered,
            "foreign": m.foreign,
            "p50_us": m.pct_us(0.5),
            "p99_us": m.pct_us(0.99),
            "p999_us": m.pct_us(0.999),
            "max_us": if m.hist.is_empty() { 0.0 } else { m.hist.max() as f64 / 1000.0 },
            "relay_core_util": m.relay_util(),
            "fast_ports": m.fast_ports.0,
            "max_sender_lag_ms": m.max_lag_ns as f64 / 1e6,
            "warnings": m.warnings,
        })
    }

    /// A human-readable summary (several lines).
    pub(crate) fn summary(&self) -> String {
        let m = &self.m;
        let mut s = format!(
            "relay --backend {} (lab, {} sessions × 2 directions × {} pps, {:.1} s)\n  offered {:.0} pps (asked {:.0}), delivered {:.0} pps, loss {:.3}% ({} of {}), reordered {}\n  one-way latency (from intended send time): p50 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs\n  relay core busy {:.0}%{}",
            m.backend.name(),
            self.sessions,
            self.pps_per_stream,
            m.secs,
            m.offered_pps(),
            m.asked_pps.unwrap_or(0.0),
            m.delivered_pps(),
            m.loss_ratio() * 100.0,
            m.sent.saturating_sub(m.received),
            m.sent,
            m.reordered,
            m.pct_us(0.5),
            m.pct_us(0.99),
            m.pct_us(0.999),
            if m.hist.is_empty() { 0.0 } else { m.hist.max() as f64 / 1000.0 },
            m.relay_util() * 100.0,
            if m.backend == Backend::Xdp { format!(", {} of {} ports on the fast path", m.fast_ports.0, m.fast_ports.1) } else { String::new() },
        );
        for w in &m.warnings {
            s.push_str(&format!("\n  warning: {w}"));
        }
        s
    }
}

/// `relay --backend af_xdp|xdp|socket` on the namespace lab (root): `streams` sessions, each with
/// a PBX → carrier and a carrier → PBX stream at `pps_per_stream`, for `seconds`; relay worker on
/// core 1, load thread on core 0. Sets the lab up and tears it down. Prints a progress line on
/// stderr when it is a terminal.
pub(crate) fn run_relay(
    backend: Backend,
    streams: usize,
    pps_per_stream: u32,
    seconds: u64,
    coalesce_us: u32,
) -> anyhow::Result<RelayReport> {
    if !is_root() {
        bail!(
            "relay --backend {}: needs root (it builds a network-namespace lab and attaches XDP); rerun with sudo",
            backend.name()
        );
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default().len();
    let (load_core, relay_core) = if cores >= 2 { (0, 1) } else { (0, 0) };
    let load = Load {
        sessions: streams,
        pps_per_stream: Some(f64::from(pps_per_stream)),
        bidirectional: true,
        seconds: seconds as f64,
        warmup: Duration::from_millis(500),
        load_core,
        relay_core,
        impair: None,
        xdp_sink: false,
    };
    load.validate()?;
    let lab = Lab::up(relay_core, load_core, coalesce_us)?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let name = backend.name();
    let mut progress = |t: f64, total: f64, sent: u64, recv: u64| {
        if tty {
            let d = t.max(1e-3);
            eprint!(
                "\r{name}: {t:4.1}/{total:.0} s  offered {:>9.0} pps  delivered {:>9.0} pps   ",
                sent as f64 / d,
                recv as f64 / d
            );
            let _ = std::io::stderr().flush();
        }
    };
    let m = measure(&Net::Lab(&lab), backend, &load, &mut progress);
    if tty {
        eprintln!();
    }
    drop(lab);
    Ok(RelayReport { m: m?, sessions: streams, pps_per_stream })
}
