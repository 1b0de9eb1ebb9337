//! One AF_XDP worker: a thread pinned to a core, owning one socket per interface on its queue.
//!
//! Hot loop, per socket: reclaim completions → top up the fill ring → peek a batch of RX
//! descriptors (copied out, slots released at once; the frames stay ours) → lock the shared
//! relay state once for the batch → parse, `handle_packet` in place, rewrite headers → queue TX
//! (same socket: the RX frame itself; other socket: one copy into a free frame of that socket's
//! UMEM) → submit TX and kick with `sendto` only when the ring asks (`need_wakeup`).
//! No allocation (free lists are preallocated `Vec`s that never grow past their capacity), one
//! lock per batch, no syscall per packet. Idle: `poll()` with a short timeout so an idle relay does
//! not burn its core (set `busy_poll` to spin instead).

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use super::{
    netlink::NetTable,
    packet::{self, Drop as Why},
    sys::{KernelRoute, XdpDesc, XskSocket},
    MediaCore,
};

/// Descriptors handled per batch.
pub(crate) const BATCH: usize = 64;
/// Frames each socket keeps out of the fill ring for TX.
const TX_RESERVE: usize = 4 * BATCH;
/// Empty iterations before the worker sleeps in `poll()`.
const SPIN_BEFORE_POLL: u32 = 64;
/// Longest idle sleep, ms. RX wakes the worker at once (the kernel marks the XSK readable when it
/// flushes the RX ring; measured: no sleep ever timed out with packets waiting, see
/// `missed_wakeups`); the timeout only bounds how long a missed wakeup or a `stop` can wait.
/// Each timed wake-up costs ~20 µs of CPU on a VM: 50 ms keeps an idle worker near 0.05 % of a
/// core (10 ms cost ~0.3 %, `xtrunk-bench idle`).
const IDLE_POLL_MS: i32 = 50;
/// Most `sendto` kicks per TX flush (copy mode: 32 frames each).
const TX_KICKS: u32 = 4;

/// What the workers and the control loop share, behind one mutex taken once per RX batch.
pub(crate) struct Shared<C> {
    /// The relay core.
    pub(crate) core: C,
    /// Routes, neighbours, link MACs (refreshed by the control loop).
    pub(crate) net: NetTable,
    /// Per local port: the relay's address the port's peer last sent to (learned from relayed
    /// packets only, cleared when a session takes or gives up the port). Packets toward that
    /// peer leave from it, so a multi-homed relay answers from the address it was reached on.
    pub(crate) reached_at: LocalAddrs,
    /// A worker met a next hop without a neighbour entry: the control loop re-reads the table
    /// soon instead of at its next periodic refresh.
    pub(crate) net_stale: bool,
    /// Ports whose `reached_at` changed: the control loop re-decides their sessions' paths.
    pub(crate) dirty: super::fastsync::PortSet,
}

/// The relay address each local port was reached at; one slot per port, allocated once.
pub(crate) struct LocalAddrs(Box<[Option<IpAddr>]>);

impl Default for LocalAddrs {
    fn default() -> Self {
        Self(vec![None; 65_536].into_boxed_slice())
    }
}

impl LocalAddrs {
    /// Records `ip` for `port`; `true` if it differs from what was known.
    pub(crate) fn learn(&mut self, port: u16, ip: IpAddr) -> bool {
        let slot = &mut self.0[usize::from(port)];
        let changed = *slot != Some(ip);
        *slot = Some(ip);
        changed
    }

    pub(crate) fn forget(&mut self, port: u16) {
        self.0[usize::from(port)] = None;
    }

    fn get(&self, port: u16) -> Option<IpAddr> {
        self.0[usize::from(port)]
    }

    /// The source for a packet the relay core sends from `from`: `from` itself when the core
    /// names an address; for a wildcard (`0.0.0.0`/`::`, a multi-homed edge) the address the
    /// port's peer reached us at, else the address the kernel would pick toward the next hop.
    pub(crate) fn source(&self, from: SocketAddr, nh_src: Option<IpAddr>) -> Option<SocketAddr> {
        if !from.ip().is_unspecified() {
            return Some(from);
        }
        let ip = self.get(from.port()).filter(|ip| ip.is_ipv4() == from.is_ipv4()).or(nh_src)?;
        Some(SocketAddr::new(ip, from.port()))
    }
}

/// Counters of one worker, updated once per batch (Relaxed: statistics only).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Frames received from the XSKs.
    pub rx: AtomicU64,
    /// Frames queued for TX.
    pub tx: AtomicU64,
    /// Dropped: unparsable frame or bad checksum.
    pub drop_malformed: AtomicU64,
    /// Dropped by the relay core.
    pub drop_relay: AtomicU64,
    /// Dropped: no route or no neighbour.
    pub drop_no_route: AtomicU64,
    /// Sent through the kernel's stack (next hop's MAC not known yet; the kernel resolves it).
    pub tx_kernel: AtomicU64,
    /// Dropped: egress interface not served.
    pub drop_no_egress: AtomicU64,
    /// Dropped: no TX frame or slot.
    pub drop_tx_full: AtomicU64,
    /// Nanoseconds spent on non-empty batches (receive to TX kick): the worker's work, without
    /// idle spinning or sleeping.
    pub busy_ns: AtomicU64,
    /// Idle sleeps in `poll()`.
    pub sleeps: AtomicU64,
    /// Of `sleeps`: ended by the timeout rather than by a readable socket.
    pub sleep_timeouts: AtomicU64,
    /// TX kicks (`sendto`).
    pub tx_kicks: AtomicU64,
    /// RX kicks (`recvfrom`, fill ring asked for a wakeup).
    pub rx_kicks: AtomicU64,
    /// Sleeps that timed out although an RX ring held packets (a lost wakeup).
    pub missed_wakeups: AtomicU64,
    /// Longest wait for the shared relay lock, ns (a control thread preempted while holding it
    /// stalls the worker).
    pub lock_wait_max_ns: AtomicU64,
    /// Longest loop iteration (idle sleep excluded), ns: the worker kept off its core, or stuck.
    pub loop_gap_max_ns: AtomicU64,
}

#[derive(Default)]
struct Local {
    rx: u64,
    tx: u64,
    malformed: u64,
    relay: u64,
    no_route: u64,
    tx_kernel: u64,
    no_egress: u64,
    tx_full: u64,
    busy_ns: u64,
    sleeps: u64,
    sleep_timeouts: u64,
    tx_kicks: u64,
    rx_kicks: u64,
    missed_wakeups: u64,
    lock_wait_max_ns: u64,
    loop_gap_max_ns: u64,
}

impl Local {
    fn count(&mut self, w: Why) {
        match w {
            Why::Malformed => self.malformed += 1,
            Why::Relay => self.relay += 1,
            Why::NoRoute => self.no_route += 1,
            Why::NoEgress => self.no_egress += 1,
            Why::TxFull => self.tx_full += 1,
        }
    }

    fn flush(&mut self, c: &WorkerCounters) {
        for (a, v) in [
            (&c.rx, self.rx),
            (&c.tx, self.tx),
            (&c.drop_malformed, self.malformed),
            (&c.drop_relay, self.relay),
            (&c.drop_no_route, self.no_route),
            (&c.tx_kernel, self.tx_kernel),
            (&c.drop_no_egress, self.no_egress),
            (&c.drop_tx_full, self.tx_full),
            (&c.busy_ns, self.busy_ns),
            (&c.sleeps, self.sleeps),
            (&c.sleep_timeouts, self.sleep_timeouts),
            (&c.tx_kicks, self.tx_kicks),
            (&c.rx_kicks, self.rx_kicks),
            (&c.missed_wakeups, self.missed_wakeups),
        ] {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        }
        for (a, v) in [(&c.lock_wait_max_ns, self.lock_wait_max_ns), (&c.loop_gap_max_ns, self.loop_gap_max_ns)] {
            if v != 0 {
                a.fetch_max(v, Ordering::Relaxed);
            }
        }
        *self = Self::default();
    }
}

/// One socket with its free-frame list and pending TX descriptors.
pub(crate) struct Port {
    pub(crate) sock: XskSocket,
    pub(crate) ifindex: u32,
    free: Vec<u64>,
    txq: [XdpDesc; BATCH * 2],
    txn: usize,
}

impl Port {
    /// Wraps a bound socket; every frame of its UMEM starts free.
    pub(crate) fn new(sock: XskSocket, ifindex: u32) -> Self {
        let fs = u64::from(sock.umem.frame_size());
        let n = sock.umem.frame_count();
        let mut free = Vec::with_capacity(n as usize);
        free.extend((0..u64::from(n)).rev().map(|i| i * fs));
        Self { sock, ifindex, free, txq: [XdpDesc::default(); BATCH * 2], txn: 0 }
    }

    /// Frames completed by TX come back to the free list.
    fn reclaim(&mut self) {
        let b = self.sock.comp.peek(BATCH as u32 * 4);
        for i in 0..b.len() {
            if let Some(a) = b.get(i) {
                if self.free.len() < self.free.capacity() {
                    self.free.push(self.sock.umem.frame_base(a));
                }
            }
        }
        b.release();
    }

    /// Tops the fill ring up from the free list, keeping [`TX_RESERVE`] frames for TX, then wakes
    /// the kernel if the fill ring asks for it. The flag is checked on every call, not only after
    /// a submit: a zero-copy driver that ran dry sets it at any time, and nothing else would wake
    /// it (copy mode never sets it: RX there runs in the driver's NAPI).
    fn refill(&mut self, local: &mut Local) {
        let spare = self.free.len().saturating_sub(TX_RESERVE);
        if spare > 0 {
            let mut b = self.sock.fill.reserve(spare.min(BATCH * 4) as u32);
            while b.remaining() > 0 {
                match self.free.pop() {
                    Some(a) => {
                        b.push(a);
                    }
                    None => break,
                }
            }
            b.submit();
        }
        if self.sock.fill.needs_wakeup() {
            self.sock.kick_rx();
            local.rx_kicks += 1;
        }
    }

    fn free_frame(&mut self, addr: u64) {
        if self.free.len() < self.free.capacity() {
            self.free.push(self.sock.umem.frame_base(addr));
        }
    }

    fn queue_tx(&mut self, d: XdpDesc) -> bool {
        if self.txn == self.txq.len() {
            return false;
        }
        self.txq[self.txn] = d;
        self.txn += 1;
        true
    }

    /// Publishes queued TX descriptors (those that find no slot free their frames), then kicks.
    fn flush_tx(&mut self, local: &mut Local) {
        if self.txn == 0 {
            return;
        }
        let mut b = self.sock.tx.reserve(self.txn as u32);
        let mut sent = 0;
        while sent < self.txn && b.push(self.txq[sent]) {
            sent += 1;
        }
        b.submit();
        for i in sent..self.txn {
            let a = self.txq[i].addr;
            self.free_frame(a);
            local.tx_full += 1;
        }
        local.tx += sent as u64;
        self.txn = 0;
        self.kick_tx(local);
    }

    /// Wakes the kernel to send what the TX ring holds, when it asks for it (`need_wakeup`; copy
    /// mode always asks). A copy-mode `sendto` sends at most 32 frames, synchronously: keep
    /// kicking while that makes progress (≤ [`TX_KICKS`] kicks); a kick that moves nothing (driver
    /// busy, completion ring full) is retried on the next loop. Returns whether frames are still
    /// pending (the worker must not sleep then: nothing else would send them).
    fn kick_tx(&mut self, local: &mut Local) -> bool {
        let mut pending = self.sock.tx.pending();
        for _ in 0..TX_KICKS {
            if pending == 0 || !self.sock.tx.needs_wakeup() {
                break;
            }
            self.sock.kick_tx();
            local.tx_kicks += 1;
            let now = self.sock.tx.pending();
            if now >= pending {
                pending = now;
                break;
            }
            pending = now;
        }
        pending > 0
    }
}

/// Settings of one worker thread.
pub(crate) struct WorkerSpec {
    pub(crate) core: Option<usize>,
    pub(crate) busy_poll: bool,
}

/// The worker loop; returns when `stop` is set.
pub(crate) fn run<C: MediaCore>(
    spec: WorkerSpec,
    mut ports: Vec<Port>,
    shared: Arc<Mutex<Shared<C>>>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    counters: Arc<WorkerCounters>,
) {
    if let Some(core) = spec.core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            log::warn!("xsk worker: cannot pin to core {core}; running unpinned");
        }
    }
    let mut local = Local::default();
    for p in &mut ports {
        p.refill(&mut local);
    }
    let kernel = KernelRoute::open();
    // Extra packets of re-packetised directions are built here, not in a UMEM frame.
    let mut scratch = vec![0u8; 2048];
    let mut idle = 0u32;
    let mut descs = [XdpDesc::default(); BATCH];
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        // Timed only right after busy iterations: idle spins make no clock calls.
        let it = (idle == 0).then(Instant::now);
        for i in 0..ports.len() {
            // Every loop, busy or not: completions back to the free list, free frames to the
            // fill ring (so the kernel never finds it empty while frames sit on our free list).
            ports[i].reclaim();
            ports[i].refill(&mut local);
            let n = {
                let b = ports[i].sock.rx.peek(BATCH as u32);
                let n = b.len() as usize;
                for (k, d) in descs.iter_mut().enumerate().take(n) {
                    *d = b.get(k as u32).unwrap_or_default();
                }
                // The frames stay ours after the slots are released (module rules in sys.rs).
                b.release();
                n
            };
            if n == 0 {
                continue;
            }
            busy = true;
            local.rx += n as u64;
            let t0 = Instant::now();
            let now_ms = t0.duration_since(epoch).as_millis() as u64;
            {
                let mut guard = match shared.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                local.lock_wait_max_ns = local.lock_wait_max_ns.max(t0.elapsed().as_nanos() as u64);
                let sh = &mut *guard;
                for d in &descs[..n] {
                    match relay_one(&mut ports, i, *d, sh, &kernel, now_ms) {
                        Ok(Sent::Queued) => {}
                        Ok(Sent::ViaKernel) => {
                            local.tx_kernel += 1;
                            ports[i].free_frame(d.addr);
                        }
                        Err(w) => {
                            local.count(w);
                            ports[i].free_frame(d.addr);
                        }
                    }
                }
                send_extras(sh, &kernel, &mut scratch, &mut local);
            }
            for p in &mut ports {
                p.flush_tx(&mut local);
            }
            local.busy_ns += t0.elapsed().as_nanos() as u64;
        }
        for p in &mut ports {
            // TX left over by a kick that moved nothing (or beyond TX_KICKS × 32 frames).
            busy |= p.kick_tx(&mut local);
        }
        if let Some(it) = it {
            local.loop_gap_max_ns = local.loop_gap_max_ns.max(it.elapsed().as_nanos() as u64);
        }
        local.flush(&counters);
        if busy {
            idle = 0;
        } else if !spec.busy_poll {
            idle += 1;
            if idle > SPIN_BEFORE_POLL {
                // Nothing pending on TX (else `busy`), fill rings topped up above: sleep until a
                // socket turns readable.
                local.sleeps += 1;
                if super::sys::poll_readable(ports.iter().map(|p| p.sock.fd()), IDLE_POLL_MS) == 0 {
                    local.sleep_timeouts += 1;
                    if ports.iter_mut().any(|p| p.sock.rx.peek(1).len() > 0) {
                        local.missed_wakeups += 1;
                    }
                }
            }
        }
    }
    local.flush(&counters);
}

/// What became of a relayed frame.
enum Sent {
    /// On a TX ring (the RX frame itself, or a copy: then the RX frame was freed).
    Queued,
    /// Handed to the kernel's stack; the caller frees the RX frame.
    ViaKernel,
}

/// Relays one received frame of `ports[i]`; on `Err` the caller frees the RX frame.
fn relay_one<C: MediaCore>(
    ports: &mut [Port],
    i: usize,
    d: XdpDesc,
    sh: &mut Shared<C>,
    kernel: &KernelRoute,
    now_ms: u64,
) -> Result<Sent, Why> {
    let rx = &mut ports[i];
    let (frame, off) = rx.sock.umem.frame_mut(d.addr).ok_or(Why::Malformed)?;
    let end = off.checked_add(d.len as usize).filter(|e| *e <= frame.len()).ok_or(Why::Malformed)?;
    let p = packet::parse(&frame[off..end])?;
    let payload_off = off + p.payload_off;
    let fwd = sh.core.handle_packet(now_ms, p.dst.port(), p.src, &mut frame[payload_off..], p.payload_len);
    let Some((len, from, to)) = fwd else { return Err(Why::Relay) };
    if len > frame.len() - payload_off {
        return Err(Why::Malformed);
    }
    if sh.reached_at.learn(p.dst.port(), p.dst.ip()) {
        sh.dirty.insert(p.dst.port());
    }
    let Some(nh) = sh.net.next_hop(to.ip()) else {
        // Routed, but the next hop's MAC is not in our copy of the neighbour table yet: the
        // kernel sends this one (resolving the neighbour), and the table is re-read soon.
        let from = sh.reached_at.source(from, sh.net.source_for(to.ip())).ok_or(Why::NoRoute)?;
        let from = same_family(from, to)?;
        sh.net_stale = true;
        let start = packet::emit_headers(frame, payload_off, len, from, to, ([0; 6], [0; 6]), p.dscp)?;
        let ip = frame.get(start + packet::ETH_LEN..payload_off + len).ok_or(Why::Malformed)?;
        return kernel.send(ip, to.ip()).map(|()| Sent::ViaKernel).map_err(|_| Why::NoRoute);
    };
    let from = same_family(sh.reached_at.source(from, nh.src_ip).ok_or(Why::NoRoute)?, to)?;
    let start = packet::emit_headers(frame, payload_off, len, from, to, (nh.src_mac, nh.dst_mac), p.dscp)?;
    let total = packet::header_len(&to) + len;
    let base = rx.sock.umem.frame_base(d.addr);
    if nh.ifindex == rx.ifindex {
        let desc = XdpDesc { addr: base + start as u64, len: total as u32, options: 0 };
        return if rx.queue_tx(desc) { Ok(Sent::Queued) } else { Err(Why::TxFull) };
    }
    // Other interface: copy into a frame of the egress socket's UMEM.
    let j = ports.iter().position(|p| p.ifindex == nh.ifindex).ok_or(Why::NoEgress)?;
    let (a, b) = if i < j {
        let (l, r) = ports.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = ports.split_at_mut(i);
        (&mut r[0], &mut l[j])
    };
    // Every error path below leaves each frame where it belongs: the RX frame goes back to the
    // caller (which frees it), the TX frame back to `b`'s free list.
    let src = {
        let (f, _) = a.sock.umem.frame_mut(d.addr).ok_or(Why::Malformed)?;
        f.get(start..start + total).ok_or(Why::Malformed)?
    };
    let Some(taddr) = b.free.pop() else { return Err(Why::TxFull) };
    let copied = match b.sock.umem.frame_mut(taddr) {
        Some((dst, _)) => match dst.get_mut(..total) {
            Some(t) => {
                t.copy_from_slice(src);
                Ok(())
            }
            None => Err(Why::Malformed),
        },
        None => Err(Why::Malformed),
    };
    if let Err(w) = copied {
        b.free.push(taddr);
        return Err(w);
    }
    if !b.queue_tx(XdpDesc { addr: taddr, len: total as u32, options: 0 }) {
        b.free.push(taddr);
        return Err(Why::TxFull);
    }
    // The RX frame was copied out: it is free again.
    a.free_frame(d.addr);
    Ok(Sent::Queued)
}

/// Sends the relay core's extra packets (re-packetising to a shorter ptime: more packets out
/// than in) through the kernel's stack from the worker's `scratch` buffer, so they take no UMEM
/// frame; a few per second per such session.
fn send_extras<C: MediaCore>(sh: &mut Shared<C>, kernel: &KernelRoute, scratch: &mut [u8], local: &mut Local) {
    const OFF: usize = 64;
    while let Some((len, from, to)) = scratch.get_mut(OFF..).and_then(|b| sh.core.poll_extra(b)) {
        let Some(from) = sh.reached_at.source(from, sh.net.source_for(to.ip())) else {
            local.count(Why::NoRoute);
            continue;
        };
        let Ok(from) = same_family(from, to) else { continue };
        let Ok(start) = packet::emit_headers(scratch, OFF, len, from, to, ([0; 6], [0; 6]), 0) else {
            local.count(Why::Malformed);
            continue;
        };
        let sent = scratch.get(start + packet::ETH_LEN..OFF + len).map(|ip| kernel.send(ip, to.ip()));
        match sent {
            Some(Ok(())) => local.tx_kernel += 1,
            _ => local.count(Why::NoRoute),
        }
    }
}

/// `from` when it is of `to`'s family (the relay never translates between IPv4 and IPv6).
fn same_family(from: SocketAddr, to: SocketAddr) -> Result<SocketAddr, Why> {
    if from.is_ipv4() == to.is_ipv4() {
        Ok(from)
    } else {
        Err(Why::NoRoute)
    }
}
