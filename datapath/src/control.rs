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
