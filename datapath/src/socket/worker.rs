//! One socket-backend worker: a relay shard, its sockets, its epoll loop.

use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xtrunk_ring::msg::{Command, ErrorCode, Event};

use super::sys::{self, EpollEvent, EventFd, MmsgBatch};
use super::{BusyPoll, Stats};
use crate::relay::{DropCounters, PortHooks, Relay, Verdict};

/// epoll token of the wake-up eventfd (ports are 0..=65535).
const WAKE: u64 = 1 << 32;
/// Most batches read from one socket per readiness event (fairness between sockets).
const MAX_BATCHES_PER_WAKE: usize = 4;
/// After handling packets, poll without sleeping for this long before blocking in `epoll_wait`
/// (when [`BusyPoll`] says so): a worker that sleeps between packets makes every sender pay a
/// cross-core wake-up (an IPI, a VM exit under virtualization), which costs more than the
/// packet itself at high rates.
const BUSY_POLL_US: u64 = 200;
/// The packet rate behind [`BusyPoll::Adaptive`] is counted over windows this long.
const RATE_WINDOW: Duration = Duration::from_millis(10);

/// The sockets of one worker, indexed by local port.
struct Sockets {
    by_port: Vec<Option<UdpSocket>>,
    epoll: sys::Epoll,
    bind_ip: IpAddr,
    /// Last "no file descriptor" error log (at most one a second).
    fd_log: Option<Instant>,
}

impl PortHooks for Sockets {
    fn open(&mut self, port: u16) -> Result<(), ErrorCode> {
        let s = sys::bind_udp(self.bind_ip, port).map_err(|e| {
            log::debug!("bind {}:{port}: {e}", self.bind_ip);
            match e.raw_os_error() {
                Some(libc::EMFILE | libc::ENFILE) => {
                    if self.fd_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        self.fd_log = Some(Instant::now());
                        let (soft, _) = sys::nofile_limits();
                        log::error!(
                            "socket backend: no file descriptor for media port {port} ({e}): RLIMIT_NOFILE = {soft} \
                             reached; each session takes 4 sockets (2 with rtcp-mux): raise LimitNOFILE (ops/systemd) \
                             or use rtcp-mux; sessions are refused (CapacityExhausted) meanwhile"
                        );
                    }
                    ErrorCode::CapacityExhausted
                }
                _ if e.kind() == std::io::ErrorKind::AddrInUse => ErrorCode::PortInUse,
                _ => ErrorCode::BindFailed,
            }
        })?;
        self.epoll.add(s.as_raw_fd(), u64::from(port)).map_err(|_| ErrorCode::BindFailed)?;
        self.by_port[usize::from(port)] = Some(s);
        Ok(())
    }

    fn close(&mut self, port: u16) {
        if let Some(s) = self.by_port[usize::from(port)].take() {
            let _ = self.epoll.del(s.as_raw_fd());
        }
    }
}

pub(super) struct Worker {
    index: usize,
    relay: Relay,
    socks: Sockets,
    wake: Arc<EventFd>,
    cmd_rx: Receiver<Command>,
    ev_tx: SyncSender<Event>,
    batch: MmsgBatch,
    batch_size: usize,
    start: Instant,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    published: DropCounters,
    /// (first tx index, source port) of each run of consecutive transmissions from one port.
    runs: Vec<(usize, u16)>,
    busy_poll: BusyPoll,
    /// Datagrams received in the current rate window.
    window_rx: u64,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: usize,
        relay: Relay,
        epoll: sys::Epoll,
        wake: Arc<EventFd>,
        cmd_rx: Receiver<Command>,
        ev_tx: SyncSender<Event>,
        bind_ip: IpAddr,
        batch: usize,
        start: Instant,
        stop: Arc<AtomicBool>,
        stats: Arc<Stats>,
        busy_poll: BusyPoll,
    ) -> std::io::Result<Self> {
        epoll.add(wake.raw(), WAKE)?;
        Ok(Self {
            index,
            relay,
            socks: Sockets { by_port: (0..65536).map(|_| None).collect(), epoll, bind_ip, fd_log: None },
            wake,
            cmd_rx,
            ev_tx,
            batch: MmsgBatch::new(batch),
            batch_size: batch,
            start,
            stop,
            stats,
            published: DropCounters::default(),
            runs: Vec::with_capacity(batch + 1),
            busy_poll,
            window_rx: 0,
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn publish_drops(&mut self) {
        let now = *self.relay.counters();
        for ((r, n), (_, old)) in now.iter().zip(self.published.iter()) {
            if n > old {
                self.stats.add_drop(r, n - old);
            }
        }
        self.published = now;
    }

    pub(super) fn run(mut self) -> Result<(), String> {
        let mut events: Vec<EpollEvent> = vec![sys::empty_event(); 256];
        let mut next_deadline: Option<u64> = None;
        let mut last_publish = 0u64;
        let mut last_busy = Instant::now();
        let mut window = Instant::now();
        let mut spin = self.busy_poll == BusyPoll::Always;
        while !self.stop.load(Ordering::Relaxed) {
            if let BusyPoll::Adaptive { min_pps } = self.busy_poll {
                // Spin only while the recent rate is one where sleeping would cost more: below
                // it, every packet pays a wake-up but the core is free in between.
                let w = window.elapsed();
                if w >= RATE_WINDOW {
                    spin = self.window_rx * 1_000_000 >= u64::from(min_pps) * w.as_micros() as u64;
                    self.window_rx = 0;
                    window = Instant::now();
                }
            }
            let now = self.now_ms();
            let timeout = match next_deadline {
                _ if spin && last_busy.elapsed().as_micros() < u128::from(BUSY_POLL_US) => 0,
                Some(d) if d <= now => 0,
                Some(d) => (d - now).min(100) as i32,
                None => 100,
            };
            let n = self.socks.epoll.wait(&mut events, timeout).map_err(|e| format!("epoll_wait: {e}"))?;
            if n > 0 {
                last_busy = Instant::now();
            }
            let now = self.now_ms();
            for ev in &events[..n] {
                let token = sys::event_token(ev);
                if token == WAKE {
                    self.wake.drain();
                    self.drain_commands(now);
                    next_deadline = Some(now);
                } else if let Ok(port) = u16::try_from(token) {
                    self.serve_port(now, port);
                }
            }
            if self.relay.has_reports() {
                next_deadline = Some(now);
            }
            if next_deadline.is_some_and(|d| d <= now) {
                let tx = &self.ev_tx;
                next_deadline = self.relay.poll_timeouts(now, &mut |e| {
                    let _ = tx.send(e);
                });
            }
            if now >= last_publish + 100 {
                last_publish = now;
                self.publish_drops();
            }
        }
        self.publish_drops();
        log::debug!("socket worker {} stopping with {} sessions", self.index, self.relay.session_count());
        Ok(())
    }

    fn drain_commands(&mut self, now: u64) {
        while let Ok(cmd) = self.cmd_rx.try_recv() {
            let tx = &self.ev_tx;
            self.relay.apply_with(now, &cmd, &mut self.socks, &mut |e| {
                // Blocks only if the control loop is 65536 events behind.
                let _ = tx.send(e);
            });
        }
    }

    fn serve_port(&mut self, now: u64, port: u16) {
        for _ in 0..MAX_BATCHES_PER_WAKE {
            let Some(sock) = self.socks.by_port[usize::from(port)].as_ref() else {
                return;
            };
            let n = match self.batch.recv(sock, self.batch_size) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    // ICMP errors (ECONNREFUSED) surface on the next receive; nothing to read.
                    log::trace!("recvmmsg on port {port}: {e}");
                    return;
                }
            };
            self.stats.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
            self.window_rx += n as u64;
            self.stats.rx_batches.fetch_add(1, Ordering::Relaxed);
            self.batch.clear_tx();
            self.runs.clear();
            for i in 0..n {
                let (src, buf, len) = self.batch.received(i);
                let Some(src) = src else { continue };
                if let Verdict::Forward { len, from, to } = self.relay.handle_packet(now, port, src, buf, len) {
                    let k = self.batch.tx_queued();
                    if self.runs.last().map(|r| r.1) != Some(from.port()) {
                        self.runs.push((k, from.port()));
                    }
                    self.batch.push_tx(i, len, &to);
                }
            }
            self.flush_tx();
            self.send_reframed();
            if n < self.batch_size {
                return;
            }
        }
    }

    /// Sends the queued TX, one `sendmmsg` per run of packets leaving from the same port.
    fn flush_tx(&mut self) {
        let total = self.batch.tx_queued();
        let (mut sent, mut failed) = (0u64, 0u64);
        for r in 0..self.runs.len() {
            let (start, out_port) = self.runs[r];
            let end = self.runs.get(r + 1).map_or(total, |x| x.0);
            match self.socks.by_port[usize::from(out_port)].as_ref() {
                Some(out) => {
                    let (s, _) = self.batch.send(out, start..end);
                    sent += s as u64;
                    failed += (end - start - s) as u64;
                }
                None => failed += (end - start) as u64,
            }
        }
        self.stats.tx_packets.fetch_add(sent, Ordering::Relaxed);
        if failed > 0 {
            self.stats.tx_errors.fetch_add(failed, Ordering::Relaxed);
        }
    }

    /// The extra packets of re-packetised directions (an input longer than the destination's
    /// ptime), built in the batch's buffers (all sent by now) and sent like the batch.
    fn send_reframed(&mut self) {
        loop {
            self.batch.clear_tx();
            self.runs.clear();
            let mut k = 0;
            while k < self.batch.capacity() {
                let Some(Verdict::Forward { len, from, to }) = self.relay.poll_reframed(self.batch.buffer_mut(k))
                else {
                    break;
                };
                if self.runs.last().map(|r| r.1) != Some(from.port()) {
                    self.runs.push((k, from.port()));
                }
                self.batch.push_tx(k, len, &to);
                k += 1;
            }
            if k == 0 {
                return;
            }
            self.flush_tx();
            if k < self.batch.capacity() {
                return;
            }
        }
    }
}
