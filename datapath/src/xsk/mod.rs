//! The AF_XDP backend: XSK sockets over UMEM, one per NIC queue, served by pinned threads, plus
//! the in-kernel fast path of the XDP program in `xtrunk-ebpf`.
//!
//! ```text
//!            NIC queue q ──XDP──┬─ session port, XT_ACT_XSK ──► XSK(if, q) ──► worker q (core c_q)
//!                               ├─ session port, XT_ACT_FAST ─► rewrite ──► XDP_TX / redirect
//!                               └─ anything else ─────────────► kernel stack (SIP, SSH, ARP)
//! ```
//!
//! - [`XskRuntime`] owns the loaded program ([`loader::XdpProgram`]), the workers and the control
//!   duties: applying [`Command`]s to the relay core, keeping the `sessions` map in step with it
//!   (AF_XDP or fast path per session, decided by [`MediaCore::fast_path_rule`] and re-decided
//!   when something it depends on changed), crediting fast-path counters back to the core (both
//!   in [`fastsync`]: control work follows what changed, not the number of sessions), refreshing
//!   the route/neighbour snapshot ([`netlink`]), and detaching on shutdown.
//! - One worker per queue index: it owns one socket per interface on that queue (so it can send
//!   on any of them without handing frames across threads) and is pinned to the queue's core.
//! - The relay core is shared by the workers behind one mutex taken once per RX batch (not per
//!   packet). Unsafe code lives in [`sys`] (UMEM, rings) and [`netlink`] (socket shim) only.

mod fastsync;
pub mod loader;
mod netlink;
mod packet;
mod stats;
mod sys;
mod worker;

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xtrunk_ebpf::{XtFastStats, XT_CNT_MAX, XT_FAST_GROUPS};
use xtrunk_ring::msg::{Command, Event, SessionId, SessionSpec};

pub use loader::{enable_run_stats, AttachMode, LoaderError, Sink, XdpProgram};
pub use stats::{RuntimeStats, WorkerStats};
pub use sys::XskStatistics;
pub use worker::WorkerCounters;

use fastsync::PortState;
use netlink::NetTable;
use sys::{BindMode, SocketConfig, XskSocket};
use worker::{Port, Shared, WorkerSpec};

/// What the AF_XDP backend needs from the relay core (implemented for `relay::Relay`; tests and
/// benchmarks may plug a trivial core). All calls are sans-IO and take `now_ms` from the caller.
pub trait MediaCore: Send + 'static {
    /// Applies a command; answers through `events`.
    fn apply(&mut self, now_ms: u64, cmd: &Command, events: &mut dyn FnMut(Event));
    /// Relays one UDP payload received on `local_port` from `src`, in place in `buf[..len]`
    /// (`buf` extends to the end of the frame, so the payload may grow). `Some((len, from, to))`
    /// forwards `buf[..len]` from local address `from` to `to`; `None` drops.
    fn handle_packet(
        &mut self,
        now_ms: u64,
        local_port: u16,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<(usize, SocketAddr, SocketAddr)>;
    /// `Some((peer, from, to))` when packets arriving on `local_port` from `peer` need no payload
    /// work and may be forwarded by the XDP program, rewritten to `from` → `to`. The program
    /// checks the source: packets from anywhere else still come to the worker.
    fn fast_path_rule(&self, local_port: u16) -> Option<(SocketAddr, SocketAddr, SocketAddr)>;
    /// Credits what the fast path forwarded for `local_port` since the last call.
    fn credit_fast_path(&mut self, local_port: u16, packets: u64, bytes: u64, now_ms: u64);
    /// Calls `f` with the local ports whose [`fast_path_rule`](Self::fast_path_rule) may have
    /// changed through [`handle_packet`](Self::handle_packet) (latching) since the last call;
    /// `true` when changes were lost and every port must be re-queried. The default suits a core
    /// whose rules change only through [`apply`](Self::apply) (the runtime re-queries a session's
    /// ports after each Create/Update itself).
    fn drain_rule_changes(&mut self, _f: &mut dyn FnMut(u16)) -> bool {
        false
    }
    /// Periodic work (media timeouts); answers through `events`.
    fn tick(&mut self, now_ms: u64, events: &mut dyn FnMut(Event));
    /// An extra packet to send (UDP payload written into `buf`), beyond one per received
    /// packet: the relay core's re-packetising to a shorter ptime. `None` when there is none.
    fn poll_extra(&mut self, _buf: &mut [u8]) -> Option<(usize, SocketAddr, SocketAddr)> {
        None
    }
}

/// Copy or zero-copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XskMode {
    /// Zero-copy where the driver supports it, else copy (veth refuses zero-copy).
    #[default]
    Auto,
    /// Always copy mode.
    Copy,
    /// Zero-copy or fail.
    ZeroCopy,
}

/// One interface the backend serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XskInterface {
    /// Interface name.
    pub name: String,
    /// RX/TX queues to open an XSK on.
    pub queues: Vec<u32>,
    /// Core serving each queue (same length as `queues`; empty = unpinned).
    pub cores: Vec<usize>,
}

/// Configuration of the AF_XDP backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XskOptions {
    /// Media interfaces.
    pub interfaces: Vec<XskInterface>,
    /// Copy / zero-copy.
    pub mode: XskMode,
    /// XDP attach mode.
    pub attach: AttachMode,
    /// UMEM frame size (2048 or 4096).
    pub frame_size: u32,
    /// Frames per socket UMEM.
    pub frame_count: u32,
    /// Entries per ring (power of two).
    pub ring_size: u32,
    /// Let the XDP program forward sessions that need no payload work.
    pub fast_path: bool,
    /// Media port range (inclusive).
    pub port_min: u16,
    /// Media port range (inclusive).
    pub port_max: u16,
    /// Workers spin instead of sleeping in `poll()` when idle.
    pub busy_poll: bool,
    /// Most sessions the relay core holds (used by [`run`]).
    pub max_sessions: usize,
}

impl Default for XskOptions {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            mode: XskMode::Auto,
            attach: AttachMode::Auto,
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            fast_path: true,
            port_min: 30000,
            port_max: 39999,
            busy_poll: false,
            max_sessions: 10_000,
        }
    }
}

/// Runs the AF_XDP backend with a fresh `relay::Relay` until `stop` is set: applies commands from
/// `cmds` (up to 256 per round, then a sleep when none came:
/// [`IdleBackoff`](crate::control::IdleBackoff)), hands events to `events`, ticks the control
/// duties, and on exit stops the workers and detaches the program.
pub fn run(
    opts: XskOptions,
    cmds: impl crate::control::CommandSource,
    events: impl crate::control::EventSink,
    stop: Arc<AtomicBool>,
) -> Result<(), Error> {
    run_with_stats(opts, cmds, events, stop, None)
}

/// [`run`], also publishing a [`RuntimeStats`] snapshot into `out` once a second (for a metrics
/// endpoint; taken on this control thread, never on a worker, and swapped in under the lock).
pub fn run_with_stats(
    opts: XskOptions,
    mut cmds: impl crate::control::CommandSource,
    mut events: impl crate::control::EventSink,
    stop: Arc<AtomicBool>,
    out: Option<Arc<std::sync::Mutex<RuntimeStats>>>,
) -> Result<(), Error> {
    let mut next_command = move || cmds.poll_command();
    let mut send_event = move |e: Event| events.send_event(e);
    let relay = crate::relay::Relay::new(crate::relay::RelayConfig {
        port_min: opts.port_min,
        port_max: opts.port_max,
        max_sessions: opts.max_sessions,
    });
    let mut rt = XskRuntime::start(opts, relay)?;
    log::info!("xsk: AF_XDP backend running: {}", rt.describe());
    let mut last_summary = Instant::now();
    let mut backoff = crate::control::IdleBackoff::default();
    let mut published = Instant::now().checked_sub(Duration::from_secs(1)).unwrap_or_else(Instant::now);
    while !stop.load(Ordering::Relaxed) {
        if log::log_enabled!(log::Level::Debug) && last_summary.elapsed() >= Duration::from_secs(10) {
            last_summary = Instant::now();
            log::debug!("xsk: {}", rt.stats().summary());
        }
        let mut n = 0;
        while let Some(cmd) = next_command() {
            rt.apply(&cmd, &mut send_event);
            n += 1;
            if n == 256 {
                break;
            }
        }
        rt.tick(&mut send_event);
        if let Some(o) = &out {
            if published.elapsed() >= Duration::from_secs(1) {
                let s = rt.stats();
                if let Ok(mut g) = o.lock() {
                    *g = s;
                }
                published = Instant::now();
            }
        }
        if n == 0 {
            std::thread::sleep(backoff.pause());
        } else {
            backoff.busy();
        }
    }
    log::info!("xsk: stopping; {}", rt.stats().summary());
    rt.shutdown();
    Ok(())
}

/// Errors of the AF_XDP backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading, attaching or a map operation failed.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// Creating or binding an AF_XDP socket failed.
    #[error("AF_XDP socket on {iface} queue {queue}: {source}")]
    Socket {
        /// Interface.
        iface: String,
        /// Queue.
        queue: u32,
        /// Cause.
        source: std::io::Error,
    },
    /// Reading routes/neighbours failed.
    #[error("netlink: {0}")]
    Netlink(std::io::Error),
    /// The options are inconsistent.
    #[error("xsk options: {0}")]
    Options(String),
    /// A worker thread could not be spawned.
    #[error("spawning a worker: {0}")]
    Spawn(std::io::Error),
}

/// Checks whether AF_XDP can run on `ifname` here: the XDP program loads and attaches, and a
/// copy-mode XSK binds to queue 0. Detaches and closes everything before returning. `Err` is a
/// one-line reason for the log ("backend = auto" falls back to sockets).
pub fn probe(ifname: &str) -> Result<(), String> {
    let idx = loader::ifindex(ifname).ok_or_else(|| format!("no interface named {ifname}"))?;
    let mut prog = XdpProgram::load(1, 1).map_err(|e| format!("cannot load the XDP program: {e}"))?;
    let slot = prog.attach(ifname, AttachMode::Auto).map_err(|e| format!("cannot attach XDP to {ifname}: {e}"))?;
    let cfg =
        SocketConfig { ifindex: idx, queue: 0, frame_size: 2048, frame_count: 64, ring_size: 64, mode: BindMode::Copy };
    let sock = XskSocket::new(&cfg).map_err(|e| format!("cannot open an AF_XDP socket on {ifname}: {e}"))?;
    prog.set_xsk(slot, 0, sock.fd()).map_err(|e| format!("cannot register the AF_XDP socket: {e}"))?;
    drop(sock);
    prog.detach_all();
    Ok(())
}

struct WorkerHandle {
    queue: u32,
    core: Option<usize>,
    zero_copy: bool,
    counters: Arc<WorkerCounters>,
    join: Option<JoinHandle<()>>,
}

/// A running AF_XDP backend. Drive it with [`apply`](Self::apply) and [`tick`](Self::tick) from
/// one control thread; stop it with [`shutdown`](Self::shutdown) (or drop).
pub struct XskRuntime<C: MediaCore> {
    opts: XskOptions,
    prog: XdpProgram,
    shared: Arc<Mutex<Shared<C>>>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    workers: Vec<WorkerHandle>,
    /// Local port → how the XDP program treats it.
    ports: BTreeMap<u16, PortState>,
    /// Ports of `ports` on the fast path.
    fast_count: usize,
    /// `fast_groups` as last read (see [`fastsync`]).
    groups_seen: Box<[u64]>,
    /// Re-decide every port at the next sync (the route/neighbour table changed).
    resync_all: bool,
    /// Scratch of the batched `fast_stats` reads: per port, per CPU.
    range_buf: Vec<XtFastStats>,
    batch_buf: Vec<XtFastStats>,
    /// The batched read failed once (logged once; ports are then read one by one).
    batch_failed: bool,
    /// Session → its local ports (from the spec of the last Create/Update it acknowledged).
    sessions: HashMap<SessionId, Vec<u16>>,
    ifnames: Vec<(String, u32, u32)>,
    /// Duplicates of the XSK fds (interface, queue, fd), only for `XDP_STATISTICS`.
    stat_fds: Vec<(String, u32, std::os::fd::OwnedFd)>,
    last_sync: Instant,
    last_net: Instant,
}

fn session_ports(spec: &SessionSpec) -> Vec<u16> {
    crate::relay::spec_ports(spec).collect()
}

impl MediaCore for crate::relay::Relay {
    fn apply(&mut self, now_ms: u64, cmd: &Command, events: &mut dyn FnMut(Event)) {
        crate::relay::Relay::apply(self, now_ms, cmd, &mut |e| events(e));
    }

    fn handle_packet(
        &mut self,
        now_ms: u64,
        local_port: u16,
        src: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<(usize, SocketAddr, SocketAddr)> {
        match crate::relay::Relay::handle_packet(self, now_ms, local_port, src, buf, len) {
            crate::relay::Verdict::Forward { len, from, to } => Some((len, from, to)),
            crate::relay::Verdict::Drop(_) => None,
        }
    }

    fn fast_path_rule(&self, local_port: u16) -> Option<(SocketAddr, SocketAddr, SocketAddr)> {
        crate::relay::Relay::fast_path_rule(self, local_port).map(|r| (r.peer, r.from, r.to))
    }

    fn credit_fast_path(&mut self, local_port: u16, packets: u64, bytes: u64, now_ms: u64) {
        crate::relay::Relay::credit_fast_path(self, local_port, packets, bytes, now_ms);
    }

    fn drain_rule_changes(&mut self, f: &mut dyn FnMut(u16)) -> bool {
        crate::relay::Relay::drain_rule_changes(self, f)
    }

    fn tick(&mut self, now_ms: u64, events: &mut dyn FnMut(Event)) {
        self.poll_timeouts(now_ms, &mut |e| events(e));
    }

    fn poll_extra(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr, SocketAddr)> {
        match self.poll_reframed(buf)? {
            crate::relay::Verdict::Forward { len, from, to } => Some((len, from, to)),
            crate::relay::Verdict::Drop(_) => None,
        }
    }
}

impl<C: MediaCore> XskRuntime<C> {
    /// Loads and attaches the program, opens and registers every socket, starts the workers.
    pub fn start(opts: XskOptions, core: C) -> Result<Self, Error> {
        if opts.interfaces.is_empty() {
            return Err(Error::Options("interfaces: at least one is needed".into()));
        }
        if opts.port_min > opts.port_max {
            return Err(Error::Options("port_min > port_max".into()));
        }
        check_cores(&opts.interfaces)?;
        let net = NetTable::load().map_err(Error::Netlink)?;
        let mut prog = XdpProgram::load(opts.port_min, opts.port_max)?;
        let mut ifnames = Vec::new();
        for itf in &opts.interfaces {
            let idx = loader::ifindex(&itf.name)
                .ok_or_else(|| Error::Loader(LoaderError::UnknownInterface(itf.name.clone())))?;
            let slot = prog.attach(&itf.name, opts.attach)?;
            ifnames.push((itf.name.clone(), idx, slot));
        }
        // Group sockets by queue index: worker q owns queue q of every interface listing it.
        let mut by_queue: BTreeMap<u32, (Option<usize>, Vec<Port>)> = BTreeMap::new();
        let mut zero_copy = HashMap::new();
        let mut stat_fds = Vec::new();
        for (itf, (_, idx, slot)) in opts.interfaces.iter().zip(&ifnames) {
            for (k, &q) in itf.queues.iter().enumerate() {
                let sock = open_socket(&opts, &itf.name, *idx, q)?;
                prog.set_xsk(*slot, q, sock.fd())?;
                match sock.fd().try_clone_to_owned() {
                    Ok(fd) => stat_fds.push((itf.name.clone(), q, fd)),
                    Err(e) => log::warn!("xsk: {} queue {q}: no statistics fd: {e}", itf.name),
                }
                zero_copy.insert(q, sock.mode() == BindMode::ZeroCopy);
                let e = by_queue.entry(q).or_insert((None, Vec::new()));
                if e.0.is_none() {
                    e.0 = itf.cores.get(k).copied();
                }
                e.1.push(Port::new(sock, *idx));
            }
        }
        let shared = Arc::new(Mutex::new(Shared {
            core,
            net,
            reached_at: Default::default(),
            net_stale: false,
            dirty: Default::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let mut workers = Vec::new();
        for (q, (core_id, ports)) in by_queue {
            let counters = Arc::new(WorkerCounters::default());
            let spec = WorkerSpec { core: core_id, busy_poll: opts.busy_poll };
            let (sh, st, c) = (shared.clone(), stop.clone(), counters.clone());
            let join = std::thread::Builder::new()
                .name(format!("xsk-q{q}"))
                .spawn(move || worker::run(spec, ports, sh, epoch, st, c))
                .map_err(Error::Spawn)?;
            workers.push(WorkerHandle {
                queue: q,
                core: core_id,
                zero_copy: zero_copy.get(&q).copied().unwrap_or(false),
                counters,
                join: Some(join),
            });
        }
        let now = Instant::now();
        Ok(Self {
            opts,
            prog,
            shared,
            epoch,
            stop,
            workers,
            ports: BTreeMap::new(),
            fast_count: 0,
            groups_seen: vec![0; XT_FAST_GROUPS].into_boxed_slice(),
            resync_all: false,
            range_buf: Vec::new(),
            batch_buf: Vec::new(),
            batch_failed: false,
            sessions: HashMap::new(),
            ifnames,
            stat_fds,
            last_sync: now,
            last_net: now,
        })
    }

    /// One line: interfaces, queues, cores, copy/zero-copy, fast path.
    pub fn describe(&self) -> String {
        let ws: Vec<String> = self
            .workers
            .iter()
            .map(|w| {
                format!(
                    "q{}@core{}{}",
                    w.queue,
                    w.core.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    if w.zero_copy { "/zc" } else { "/copy" }
                )
            })
            .collect();
        let ifs: Vec<&str> = self.ifnames.iter().map(|(n, _, _)| n.as_str()).collect();
        format!(
            "interfaces {} workers {} fast_path {}",
            ifs.join(","),
            ws.join(","),
            if self.opts.fast_path { "on" } else { "off" }
        )
    }

    /// Milliseconds since start: the clock handed to the relay core.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared<C>> {
        match self.shared.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Applies one command to the relay core and updates the XDP session map accordingly.
    pub fn apply(&mut self, cmd: &Command, events: &mut dyn FnMut(Event)) {
        if let Command::Delete(id) = cmd {
            // Final stats: what the fast path forwarded up to now is credited first.
            if let Some(ports) = self.sessions.get(id).cloned() {
                self.credit_ports(&ports);
            }
        }
        let now = self.now_ms();
        let mut acked: Option<SessionId> = None;
        let mut deleted: Option<SessionId> = None;
        {
            let mut g = self.lock();
            g.core.apply(now, cmd, &mut |ev: Event| {
                match ev {
                    Event::Created(id) | Event::Updated(id) => acked = Some(id),
                    Event::Deleted { id, .. } => deleted = Some(id),
                    _ => {}
                }
                events(ev);
            });
        }
        if let (Some(id), Command::Create(spec) | Command::Update(spec)) = (acked, cmd) {
            let ports = session_ports(spec);
            if matches!(cmd, Command::Create(_)) {
                let mut g = self.lock();
                ports.iter().for_each(|&p| g.reached_at.forget(p));
            }
            let old = self.sessions.insert(id, ports.clone()).unwrap_or_default();
            for p in old.into_iter().filter(|p| !ports.contains(p)) {
                self.unmap_port(p);
            }
            for &p in &ports {
                self.map_port(p, id);
            }
            self.decide(&ports);
        }
        if let Some(id) = deleted {
            for p in self.sessions.remove(&id).unwrap_or_default() {
                self.unmap_port(p);
            }
        }
    }

    /// Periodic control work; call every few milliseconds: relay-core timers, fast-path credit
    /// and path decisions (every 20 ms, for what changed only: [`fastsync`]), route/neighbour
    /// refresh (every second).
    pub fn tick(&mut self, events: &mut dyn FnMut(Event)) {
        let now = self.now_ms();
        let since = self.last_net.elapsed();
        if since >= Duration::from_secs(1) || (since >= Duration::from_millis(20) && self.lock().net_stale) {
            self.last_net = Instant::now();
            self.lock().net_stale = false;
            match NetTable::load() {
                Ok(t) => {
                    let changed = {
                        let mut g = self.lock();
                        let changed = g.net != t;
                        g.net = t;
                        changed
                    };
                    self.resync_all |= changed;
                }
                Err(e) => log::warn!("xsk: netlink refresh failed: {e}"),
            }
        }
        if self.last_sync.elapsed() >= Duration::from_millis(20) {
            self.last_sync = Instant::now();
            self.credit_fast_path(now);
            self.sync_fast_path();
        }
        self.lock().core.tick(now, events);
    }

    /// Current statistics.
    pub fn stats(&self) -> RuntimeStats {
        let mut s =
            RuntimeStats { xdp: self.prog.counters().unwrap_or([0; XT_CNT_MAX as usize]), ..Default::default() };
        for w in &self.workers {
            let c = &w.counters;
            let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let dropped = l(&c.drop_malformed)
                + l(&c.drop_relay)
                + l(&c.drop_no_route)
                + l(&c.drop_no_egress)
                + l(&c.drop_tx_full);
            s.workers.push(WorkerStats {
                queue: w.queue,
                core: w.core,
                rx: l(&c.rx),
                tx: l(&c.tx),
                dropped,
                drop_relay: l(&c.drop_relay),
                drop_no_route: l(&c.drop_no_route),
                drop_malformed: l(&c.drop_malformed),
                tx_kernel: l(&c.tx_kernel),
                zero_copy: w.zero_copy,
                busy: Duration::from_nanos(l(&c.busy_ns)),
                sleeps: (l(&c.sleeps), l(&c.sleep_timeouts), l(&c.missed_wakeups)),
                kicks: (l(&c.tx_kicks), l(&c.rx_kicks)),
                lock_wait_max: Duration::from_nanos(l(&c.lock_wait_max_ns)),
                loop_gap_max: Duration::from_nanos(l(&c.loop_gap_max_ns)),
            });
        }
        for (itf, (name, _, slot)) in self.opts.interfaces.iter().zip(&self.ifnames) {
            for &q in &itf.queues {
                if let Ok(qs) = self.prog.queue_stats(*slot, q) {
                    s.queues.push((name.clone(), q, qs));
                }
            }
        }
        for (name, q, fd) in &self.stat_fds {
            use std::os::fd::AsFd;
            if let Ok(x) = sys::statistics(fd.as_fd()) {
                s.xsk.push((name.clone(), *q, x));
            }
        }
        s.xdp_run = self.prog.run_stats().unwrap_or_default();
        s.fast_ports = self.fast_count;
        s
    }

    /// Runs `f` on the relay core (under the workers' lock). Session stats include what the fast
    /// path forwarded up to the last credit (every 20 ms); call
    /// [`flush_fast_path`](Self::flush_fast_path) first for everything up to now.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut C) -> R) -> R {
        f(&mut self.lock().core)
    }

    /// Stops the workers, detaches the program, closes the sockets.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        // The duplicates go first: each worker's own close must be the socket's last reference,
        // so the socket is released (and leaves the XSKMAP) before its UMEM is unmapped.
        self.stat_fds.clear();
        self.stop.store(true, Ordering::Relaxed);
        for w in &mut self.workers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
        self.prog.detach_all();
    }
}

impl<C: MediaCore> Drop for XskRuntime<C> {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// One worker per queue index serves that queue on every interface, pinned to one core: each
/// interface gives one core per queue (or none), and queue `q` names the same core everywhere.
fn check_cores(itfs: &[XskInterface]) -> Result<(), Error> {
    let mut core_of: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, itf) in itfs.iter().enumerate() {
        if !itf.cores.is_empty() && itf.cores.len() != itf.queues.len() {
            return Err(Error::Options(format!("interfaces[{i}].cores: one core per queue")));
        }
        for (&q, &c) in itf.queues.iter().zip(&itf.cores) {
            match core_of.insert(q, c) {
                Some(prev) if prev != c => {
                    return Err(Error::Options(format!(
                        "interfaces[{i}].cores: queue {q} is on core {prev} elsewhere (one worker per queue), not {c}"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn open_socket(opts: &XskOptions, iface: &str, ifindex: u32, queue: u32) -> Result<XskSocket, Error> {
    let cfg = |mode| SocketConfig {
        ifindex,
        queue,
        frame_size: opts.frame_size,
        frame_count: opts.frame_count,
        ring_size: opts.ring_size,
        mode,
    };
    let err = |source| Error::Socket { iface: iface.to_owned(), queue, source };
    match opts.mode {
        XskMode::Copy => XskSocket::new(&cfg(BindMode::Copy)).map_err(err),
        XskMode::ZeroCopy => XskSocket::new(&cfg(BindMode::ZeroCopy)).map_err(err),
        XskMode::Auto => XskSocket::new(&cfg(BindMode::ZeroCopy)).or_else(|e| {
            log::info!("xsk: {iface} queue {queue}: zero-copy refused ({e}); using copy mode");
            XskSocket::new(&cfg(BindMode::Copy)).map_err(err)
        }),
    }
}
