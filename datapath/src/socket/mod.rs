//! The portable UDP-socket backend: the embedded default and the baseline of every benchmark.
//!
//! # Design
//!
//! - **Workers.** One worker thread per entry of [`SocketOptions::cores`] (one unpinned worker if
//!   empty), each pinned with `core_affinity`. Each worker owns a private [`Relay`] shard, an epoll
//!   instance, the UDP sockets of its sessions (one per RTP port and one per RTCP port) and one
//!   preallocated `recvmmsg`/`sendmmsg` batch. Nothing is shared between workers on the packet
//!   path: no lock, no allocation, no atomics but a few relaxed counter adds per batch.
//! - **Sharding by session.** Both legs of a session must reach the same relay state, so a
//!   session (all of its ports) lives on exactly one worker: the control loop assigns each Create
//!   to the worker holding the fewest sessions and routes Update/Delete by session id. Dump is
//!   broadcast and the per-worker `DumpDone`s are merged into one.
//! - **Control loop.** [`run`] itself runs the control loop on the calling thread: it polls the
//!   [`CommandSource`], forwards commands to workers over bounded channels (waking them with an
//!   eventfd registered in their epoll), and passes worker events to the [`EventSink`]. It
//!   answers `DuplicateSession`/`CapacityExhausted` itself (global view); everything else is
//!   answered by the worker's relay. Ports in use by another worker are caught by the kernel
//!   (`EADDRINUSE`) and reported as `PortInUse`.
//! - **Packet path.** A worker waits in `epoll_wait` (level-triggered, timeout = next media
//!   timeout or 100 ms). While its recent packet rate is high ([`BusyPoll`], 20 kpps by default)
//!   it polls without blocking for 200 µs after handling packets first, since a sleeping worker
//!   makes every sender pay a cross-core wake-up; below that rate it sleeps between packets, so
//!   its CPU follows the load. For each readable port socket it receives up to `batch` datagrams with
//!   one `recvmmsg`, runs [`Relay::handle_packet`] on each buffer in place, and forwards with one
//!   `sendmmsg` per run of datagrams leaving through the same socket (the other leg's port).
//! - **Time.** Each worker's `now_ms` is milliseconds since [`run`] started (monotonic), plus 1 so
//!   that 0 keeps meaning "never" in `StreamStats::last_rx_ms`.
//! - **Limits.** Every media port is a socket, 4 a session (2 with rtcp-mux). At start the soft
//!   `RLIMIT_NOFILE` is raised to the hard limit (and past it, when privileged, to cover every
//!   port of the range plus slack); a Create that finds no descriptor left is refused with
//!   `CapacityExhausted` and an error log naming the limit.

mod sys;
mod worker;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xtrunk_ring::msg::{Command, ErrorCode, Event, SessionId};

pub use crate::control::{CommandSource, EventSink};
use crate::relay::{DropReason, Relay, RelayConfig};

/// Options of the socket backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// Address every media socket binds to.
    pub bind_ip: IpAddr,
    /// Lowest media port.
    pub port_min: u16,
    /// Highest media port.
    pub port_max: u16,
    /// Cores to pin one worker each to; empty = one unpinned worker.
    pub cores: Vec<usize>,
    /// Most sessions in total.
    pub max_sessions: usize,
    /// Datagrams per `recvmmsg`/`sendmmsg` (1..=1024).
    pub batch: usize,
}

/// When a socket worker polls `epoll` without sleeping for 200 µs after handling packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyPoll {
    /// Never: every packet after a quiet spell wakes the worker.
    Off,
    /// Always (before #20: 98 % of a core at 10 kpps).
    Always,
    /// While the worker received at least `min_pps` packets/s over the last 10 ms: at lower
    /// rates a wake-up per packet is cheaper than spinning between them.
    Adaptive {
        /// The rate from which the worker spins.
        min_pps: u32,
    },
}

impl Default for BusyPoll {
    fn default() -> Self {
        BusyPoll::Adaptive { min_pps: 20_000 }
    }
}

/// Errors of the socket backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is unusable.
    #[error("socket backend: invalid option {field}: {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A system call needed to start failed.
    #[error("socket backend: {what} failed: {source}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread panicked or failed.
    #[error("socket backend: worker {index} failed: {reason}")]
    Worker {
        /// Worker index.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// Live counters of the backend, readable by the caller while it runs (relaxed atomics; each
/// worker adds its deltas after every batch, drop counters at least every 100 ms).
#[derive(Debug, Default)]
pub struct Stats {
    /// Datagrams received on media sockets.
    pub rx_packets: AtomicU64,
    /// Datagrams forwarded (accepted by `sendmmsg`).
    pub tx_packets: AtomicU64,
    /// Datagrams the kernel refused to send.
    pub tx_errors: AtomicU64,
    /// `recvmmsg` calls that returned data.
    pub rx_batches: AtomicU64,
    /// Sessions held.
    pub sessions: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

impl Stats {
    /// Drops counted for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }

    /// Sum of all drop counters.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    fn add_drop(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// Raises the process's `RLIMIT_NOFILE` soft limit (and the hard one when privileged) to at least
/// `want`; returns the soft limit in force afterwards. [`run`] calls it for its port range; load
/// generators holding many sockets call it too.
pub fn raise_nofile_limit(want: u64) -> u64 {
    sys::raise_nofile(want)
}

/// A non-blocking UDP socket with preallocated `sendmmsg`/`recvmmsg` batches, for load generators
/// and test peers (the backend's own workers use the same shim).
#[derive(Debug)]
pub struct BatchSocket {
    sock: std::net::UdpSocket,
    tx: sys::MmsgBatch,
    rx: sys::MmsgBatch,
}

impl BatchSocket {
    /// Binds `addr` with batches of `batch` datagrams.
    pub fn bind(addr: std::net::SocketAddr, batch: usize) -> std::io::Result<Self> {
        Ok(Self {
            sock: sys::bind_udp(addr.ip(), addr.port())?,
            tx: sys::MmsgBatch::new(batch),
            rx: sys::MmsgBatch::new(batch),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.sock.local_addr()
    }

    /// Sets the kernel receive buffer (forced past `rmem_max` when privileged); returns the
    /// resulting size.
    pub fn set_recv_buffer(&self, bytes: usize) -> std::io::Result<usize> {
        sys::set_recv_buffer(&self.sock, bytes)
    }

    /// Queues a datagram: `fill` writes the payload into the given buffer (up to
    /// `BUF_SIZE - 64` bytes) and returns its length. Returns false when the batch is full
    /// (call [`BatchSocket::flush`]).
    pub fn queue(&mut self, to: &std::net::SocketAddr, fill: impl FnOnce(&mut [u8]) -> usize) -> bool {
        let i = self.tx.tx_queued();
        if i >= self.tx.capacity() {
            return false;
        }
        let buf = self.tx.buffer_mut(i);
        let cap = buf.len() - sys::TAILROOM;
        let len = fill(&mut buf[..cap]).min(cap);
        self.tx.push_tx(i, len, to);
        true
    }

    /// Number of queued datagrams.
    pub fn queued(&self) -> usize {
        self.tx.tx_queued()
    }

    /// Sends everything queued with `sendmmsg`; returns (sent, failed).
    pub fn flush(&mut self) -> (usize, usize) {
        let n = self.tx.tx_queued();
        let (sent, _) = self.tx.send(&self.sock, 0..n);
        self.tx.clear_tx();
        (sent, n - sent)
    }

    /// Receives up to one batch without blocking and calls `f(source, datagram)` for each.
    /// Returns how many were received.
    pub fn recv_batch(&mut self, mut f: impl FnMut(std::net::SocketAddr, &[u8])) -> std::io::Result<usize> {
        let n = self.rx.recv(&self.sock, self.rx.capacity())?;
        for i in 0..n {
            let (src, buf, len) = self.rx.received(i);
            if let Some(src) = src {
                f(src, &buf[..len]);
            }
        }
        Ok(n)
    }
}

/// Waits for any of several [`BatchSocket`]s to become readable, with a nanosecond timeout
/// (`ppoll`). It remembers descriptors, not borrows: drop it with the sockets (a waiter that
/// outlives a socket polls a stale descriptor, which is wrong but not memory-unsafe).
#[derive(Debug)]
pub struct ReadyWaiter {
    set: sys::PollSet,
}

impl ReadyWaiter {
    /// A waiter over `socks`.
    pub fn new<'a>(socks: impl IntoIterator<Item = &'a BatchSocket>) -> Self {
        use std::os::fd::AsRawFd;
        let fds: Vec<_> = socks.into_iter().map(|s| s.sock.as_raw_fd()).collect();
        Self { set: sys::PollSet::new(&fds) }
    }

    /// Blocks until a socket is readable or `timeout` passes; returns how many are readable.
    pub fn wait(&mut self, timeout: Duration) -> std::io::Result<usize> {
        self.set.wait(timeout)
    }
}

fn validate(opts: &SocketOptions) -> Result<(), Error> {
    let bad = |field, reason: String| Err(Error::InvalidOption { field, reason });
    if opts.port_min > opts.port_max || opts.port_min == 0 {
        return bad(
            "port_min/port_max",
            format!("need 0 < port_min <= port_max, got {}..={}", opts.port_min, opts.port_max),
        );
    }
    if !(1..=1024).contains(&opts.batch) {
        return bad("batch", format!("must be 1..=1024, got {}", opts.batch));
    }
    if opts.max_sessions == 0 {
        return bad("max_sessions", "must be at least 1".into());
    }
    if opts.cores.len() > 256 {
        return bad("cores", format!("at most 256 workers, got {}", opts.cores.len()));
    }
    if !opts.cores.is_empty() {
        let ids: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
        if let Some(c) = opts.cores.iter().find(|c| !ids.contains(c)) {
            return bad("cores", format!("core {c} does not exist (available: {ids:?})"));
        }
    }
    Ok(())
}

/// Runs the socket backend until `stop` is set. See [`run_with_stats`].
pub fn run(
    opts: SocketOptions,
    cmds: impl CommandSource,
    events: impl EventSink,
    stop: Arc<AtomicBool>,
) -> Result<(), Error> {
    run_with_stats(opts, cmds, events, stop, Arc::new(Stats::default()))
}

struct WorkerHandle {
    cmd_tx: SyncSender<Command>,
    wake: Arc<sys::EventFd>,
    sessions: usize,
    join: std::thread::JoinHandle<Result<(), String>>,
}

/// Runs the socket backend until `stop` is set, publishing counters into `stats`.
///
/// The calling thread runs the control loop (see the module docs); workers are spawned and
/// joined before returning. Sessions still held at stop are dropped without events.
pub fn run_with_stats(
    opts: SocketOptions,
    cmds: impl CommandSource,
    events: impl EventSink,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> Result<(), Error> {
    run_tuned(opts, BusyPoll::default(), cmds, events, stop, stats)
}

/// [`run_with_stats`] with the workers' busy-poll policy given (benchmarks compare them).
pub fn run_tuned(
    opts: SocketOptions,
    busy_poll: BusyPoll,
    mut cmds: impl CommandSource,
    mut events: impl EventSink,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> Result<(), Error> {
    validate(&opts)?;
    let ports = u64::from(opts.port_max - opts.port_min) + 1;
    let need = ports + 1024;
    // Every media port is a socket (4 a session, 2 with rtcp-mux): take all the hard limit
    // allows (the kernel caps it at fs.nr_open), more if privileged and the range needs it.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok());
    let hard = sys::nofile_limits().1.min(nr_open.unwrap_or(1 << 20));
    let got = sys::raise_nofile(need.max(hard));
    if got < need {
        log::warn!(
            "socket backend: RLIMIT_NOFILE is {got}, below the {need} the media port range needs: at most ~{} sessions \
             (4 sockets a session, 2 with rtcp-mux); raise LimitNOFILE in the service unit",
            got.saturating_sub(1024) / 4
        );
    } else {
        log::info!("socket backend: RLIMIT_NOFILE {got}");
    }
    let start = Instant::now();
    let n = opts.cores.len().max(1);
    let (ev_tx, ev_rx) = mpsc::sync_channel::<Event>(65536);
    let mut workers = Vec::with_capacity(n);
    for index in 0..n {
        let (cmd_tx, cmd_rx) = mpsc::sync_channel::<Command>(4096);
        let wake = Arc::new(sys::EventFd::new().map_err(|source| Error::Io { what: "eventfd", source })?);
        let epoll = sys::Epoll::new().map_err(|source| Error::Io { what: "epoll_create1", source })?;
        let cfg = RelayConfig { port_min: opts.port_min, port_max: opts.port_max, max_sessions: opts.max_sessions };
        let w = worker::Worker::new(
            index,
            Relay::new(cfg),
            epoll,
            wake.clone(),
            cmd_rx,
            ev_tx.clone(),
            opts.bind_ip,
            opts.batch,
            start,
            stop.clone(),
            stats.clone(),
            busy_poll,
        )
        .map_err(|source| Error::Io { what: "epoll_ctl(eventfd)", source })?;
        let core = opts.cores.get(index).copied();
        let join = std::thread::Builder::new()
            .name(format!("xt-sock-{index}"))
            .spawn(move || {
                if let Some(c) = core {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                        log::warn!("socket worker {index}: could not pin to core {c}");
                    }
                }
                w.run()
            })
            .map_err(|source| Error::Io { what: "spawn worker thread", source })?;
        workers.push(WorkerHandle { cmd_tx, wake, sessions: 0, join });
    }
    drop(ev_tx);

    let mut ctl =
        Control { owner: HashMap::new(), dumps: HashMap::new(), max_sessions: opts.max_sessions, stats: stats.clone() };
    let mut result = Ok(());
    let mut backoff = crate::control::IdleBackoff::default();
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for _ in 0..1024 {
            let Some(cmd) = cmds.poll_command() else {
                break;
            };
            busy = true;
            ctl.route(cmd, &mut workers, &mut events);
        }
        while let Ok(ev) = ev_rx.try_recv() {
            busy = true;
            ctl.on_event(ev, &mut workers, &mut events);
        }
        // A worker that ends after `stop` was set (by our owner, between the loop check and
        // here) is shutting down as told, not failing.
        if workers.iter().any(|w| w.join.is_finished()) && !stop.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
            result = Err(Error::Worker { index: 0, reason: "a worker exited early".into() });
            break;
        }
        if busy {
            backoff.busy();
        } else {
            // Worker events wake this at once; only the command ring is polled.
            match ev_rx.recv_timeout(backoff.pause()) {
                Ok(ev) => {
                    backoff.busy();
                    ctl.on_event(ev, &mut workers, &mut events);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in &workers {
        w.wake.notify();
    }
    for (index, w) in workers.into_iter().enumerate() {
        match w.join.join() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => result = Err(Error::Worker { index, reason }),
            Err(_) => result = Err(Error::Worker { index, reason: "panicked".into() }),
        }
    }
    while let Ok(ev) = ev_rx.try_recv() {
        events.send_event(ev);
    }
    result
}

struct Control {
    /// Session → (worker, create still pending).
    owner: HashMap<SessionId, (usize, bool)>,
    /// Dump token → (workers still to answer, sessions counted).
    dumps: HashMap<u64, (usize, u32)>,
    max_sessions: usize,
    stats: Arc<Stats>,
}

impl Control {
    fn send(workers: &mut [WorkerHandle], w: usize, cmd: Command) {
        // Bounded channel: blocks only if the worker is 4096 commands behind.
        let _ = workers[w].cmd_tx.send(cmd);
        workers[w].wake.notify();
    }

    fn route(&mut self, cmd: Command, workers: &mut [WorkerHandle], events: &mut impl EventSink) {
        match cmd {
            Command::Create(spec) => {
                if self.owner.contains_key(&spec.id) {
                    events.send_event(Event::Error { id: spec.id, code: ErrorCode::DuplicateSession, port: 0 });
                    return;
                }
                if self.owner.len() >= self.max_sessions {
                    events.send_event(Event::Error { id: spec.id, code: ErrorCode::CapacityExhausted, port: 0 });
                    return;
                }
                let w = (0..workers.len()).min_by_key(|&i| workers[i].sessions).unwrap_or(0);
                workers[w].sessions += 1;
                self.owner.insert(spec.id, (w, true));
                Self::send(workers, w, cmd);
            }
            Command::Update(spec) => match self.owner.get(&spec.id) {
                Some(&(w, _)) => Self::send(workers, w, cmd),
                None => events.send_event(Event::Error { id: spec.id, code: ErrorCode::UnknownSession, port: 0 }),
            },
            Command::Delete(id) => match self.owner.get(&id) {
                Some(&(w, _)) => Self::send(workers, w, cmd),
                None => events.send_event(Event::Error { id, code: ErrorCode::UnknownSession, port: 0 }),
            },
            Command::Dump { token } => {
                let e = self.dumps.entry(token).or_insert((0, 0));
                e.0 += workers.len();
                for w in 0..workers.len() {
                    Self::send(workers, w, cmd);
                }
            }
        }
    }

    fn forget(&mut self, id: SessionId, workers: &mut [WorkerHandle]) {
        if let Some((w, _)) = self.owner.remove(&id) {
            workers[w].sessions = workers[w].sessions.saturating_sub(1);
        }
    }

    fn on_event(&mut self, ev: Event, workers: &mut [WorkerHandle], events: &mut impl EventSink) {
        match ev {
            Event::Created(id) => {
                if let Some(o) = self.owner.get_mut(&id) {
                    o.1 = false;
                }
                self.stats.sessions.fetch_add(1, Ordering::Relaxed);
            }
            Event::Error { id, .. } => {
                if matches!(self.owner.get(&id), Some(&(_, true))) {
                    self.forget(id, workers);
                }
            }
            Event::Deleted { id, .. } => {
                self.forget(id, workers);
                self.stats.sessions.fetch_sub(1, Ordering::Relaxed);
            }
            Event::DumpDone { token, count } => {
                let Some(e) = self.dumps.get_mut(&token) else {
                    return;
                };
                e.0 = e.0.saturating_sub(1);
                e.1 += count;
                if e.0 > 0 {
                    return;
                }
                let total = e.1;
                self.dumps.remove(&token);
                events.send_event(Event::DumpDone { token, count: total });
                return;
            }
            _ => {}
        }
        events.send_event(ev);
    }
}
