//! Statistics of a running AF_XDP backend: per worker, per queue, XDP verdicts, XSK drops, and
//! the one-line summary the run loop logs.

use std::time::Duration;

use xtrunk_ebpf::{Counter, XtQueueStats, XT_CNT_MAX};

use super::XskStatistics;

/// Statistics snapshot of a running backend.
#[derive(Clone, Debug, Default)]
pub struct RuntimeStats {
    /// Per worker: (queue, core, rx, tx, drops).
    pub workers: Vec<WorkerStats>,
    /// XDP verdict counters, indexed by [`Counter`].
    pub xdp: [u64; XT_CNT_MAX as usize],
    /// Per (interface, queue): the XDP program's per-queue counters.
    pub queues: Vec<(String, u32, XtQueueStats)>,
    /// Sessions ports on the fast path now.
    pub fast_ports: usize,
    /// Kernel run time and run count of the XDP program (zero unless BPF stats are enabled).
    pub xdp_run: (Duration, u64),
    /// Per (interface, queue): the kernel's XSK drop counters (`XDP_STATISTICS`).
    pub xsk: Vec<(String, u32, XskStatistics)>,
}

impl RuntimeStats {
    /// An XDP counter.
    pub fn counter(&self, c: Counter) -> u64 {
        self.xdp[c as usize]
    }

    /// One line for the log: per worker rx/tx and drops by reason, the XDP verdicts that are
    /// not zero, fast-path ports.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for w in &self.workers {
            let _ = write!(
                s,
                "q{}: rx {} tx {} via kernel {} dropped {} (relay {} no_route {} malformed {}); ",
                w.queue, w.rx, w.tx, w.tx_kernel, w.dropped, w.drop_relay, w.drop_no_route, w.drop_malformed
            );
        }
        s.push_str("xdp:");
        for c in Counter::ALL.into_iter().filter(|c| self.counter(*c) > 0) {
            let _ = write!(s, " {} {}", c.name(), self.counter(c));
        }
        let _ = write!(s, "; fast-path ports {}", self.fast_ports);
        s
    }
}

/// One worker's counters.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    /// Queue index served.
    pub queue: u32,
    /// Core pinned to.
    pub core: Option<usize>,
    /// Frames received.
    pub rx: u64,
    /// Frames sent.
    pub tx: u64,
    /// Frames dropped (all reasons).
    pub dropped: u64,
    /// Of which: relay core refused.
    pub drop_relay: u64,
    /// Of which: no route/neighbour.
    pub drop_no_route: u64,
    /// Of which: malformed.
    pub drop_malformed: u64,
    /// Sent through the kernel's stack while the next hop's MAC was not known.
    pub tx_kernel: u64,
    /// Copy or zero-copy.
    pub zero_copy: bool,
    /// Time spent on non-empty batches (work, without idle spinning).
    pub busy: Duration,
    /// Idle sleeps in `poll()`, of them ended by the timeout, of them with packets waiting
    /// (a lost wakeup).
    pub sleeps: (u64, u64, u64),
    /// `sendto` (TX) and `recvfrom` (fill ring) kicks.
    pub kicks: (u64, u64),
    /// Longest wait for the shared relay lock.
    pub lock_wait_max: Duration,
    /// Longest loop iteration, idle sleep excluded (the worker off its core, or stuck).
    pub loop_gap_max: Duration,
}
