//! The control seam both backends share: where commands come from and where events go. It is
//! here, outside the backends, so that each backend builds without the other (cargo features).

use std::sync::mpsc::{self, Receiver, SyncSender};

use xtrunk_ring::msg::{Command, Event};

/// Where the backend takes commands from (the lead implements it for the ring's receiver).
pub trait CommandSource {
    /// The next command, if one is waiting. Must not block.
    fn poll_command(&mut self) -> Option<Command>;
}

/// Where the backend puts events (the lead implements it for the ring's sender). May block or
/// retry while the consumer is behind: that back-pressures only the control loop.
pub trait EventSink {
    /// Delivers one event.
    fn send_event(&mut self, ev: Event);
}

impl<F: FnMut() -> Option<Command>> CommandSource for F {
    fn poll_command(&mut self) -> Option<Command> {
        self()
    }
}

impl CommandSource for Receiver<Command> {
    fn poll_command(&mut self) -> Option<Command> {
        self.try_recv().ok()
    }
}

impl EventSink for mpsc::Sender<Event> {
    fn send_event(&mut self, ev: Event) {
        let _ = self.send(ev);
    }
}

impl EventSink for SyncSender<Event> {
    fn send_event(&mut self, ev: Event) {
        let _ = self.send(ev);
    }
}

/// How long a control loop with nothing to do sleeps before polling the command ring again
/// (which has no wake-up): 1 ms while commands or events came within the last 100 ms, else
/// 10 ms. An idle datapath then wakes 100 times a second instead of 1000 (a timed wake-up costs
/// ~20 µs of CPU on a VM: 2 % of a core at 1 kHz; `xtrunk-bench idle` in BENCHMARKS.md), and
/// the first command after a quiet spell waits at most 10 ms.
#[derive(Debug, Clone, Copy)]
pub struct IdleBackoff {
    last_busy: std::time::Instant,
}

impl Default for IdleBackoff {
    fn default() -> Self {
        Self { last_busy: std::time::Instant::now() }
    }
}

impl IdleBackoff {
    /// While busy.
    pub const ACTIVE: std::time::Duration = std::time::Duration::from_millis(1);
    /// After 100 ms without work.
    pub const IDLE: std::time::Duration = std::time::Duration::from_millis(10);

    /// Notes that the loop had work.
    pub fn busy(&mut self) {
        self.last_busy = std::time::Instant::now();
    }

    /// The sleep for a round without work.
    pub fn pause(&self) -> std::time::Duration {
        if self.last_busy.elapsed() < std::time::Duration::from_millis(100) {
            Self::ACTIVE
        } else {
            Self::IDLE
        }
    }
}
