//! The seam to the datapath: [`MediaPort`] carries [`Command`]s out and [`Event`]s back.
//!
//! The binary wires it to the shared-memory ring (`xtrunk_ring::{CommandSender, EventReceiver}`);
//! tests use [`LoopbackMedia`], which answers like a datapath that always succeeds, or
//! [`ChannelMedia`] joined to an in-process datapath.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;

use xtrunk_ring::msg::{Command, DeleteReason, Event, SessionId, SessionSpec, StreamStats};

/// The command queue towards the datapath is full; retry later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("datapath command queue full")]
pub struct Backpressure;

/// Signaling's end of the session ring.
pub trait MediaPort {
    /// Queues a command; [`Backpressure`] when the queue is full (nothing queued).
    fn send(&mut self, cmd: &Command) -> Result<(), Backpressure>;
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Event>;
    /// How full the fuller direction of the ring is, percent (a load signal for
    /// [`crate::overload`]); None when this port cannot tell.
    fn fill_pct(&mut self) -> Option<u8> {
        None
    }
}

/// An in-memory datapath stand-in: keeps the sessions, answers every command at once.
#[derive(Debug, Default)]
pub struct LoopbackMedia {
    sessions: HashMap<SessionId, SessionSpec>,
    events: VecDeque<Event>,
    /// Every command received, in order (tests inspect it).
    pub log: Vec<Command>,
    /// When set, `send` refuses this many times before accepting (backpressure tests).
    pub refuse: usize,
    /// When set, this many `Create`s are answered `CapacityExhausted` (a full datapath).
    pub fail_creates: usize,
    /// When set, `Create`s get no answer at all (a datapath that is gone).
    pub mute_creates: bool,
}

impl LoopbackMedia {
    /// Sessions held.
    pub fn sessions(&self) -> &HashMap<SessionId, SessionSpec> {
        &self.sessions
    }
}

impl MediaPort for LoopbackMedia {
    fn send(&mut self, cmd: &Command) -> Result<(), Backpressure> {
        if self.refuse > 0 {
            self.refuse -= 1;
            return Err(Backpressure);
        }
        self.log.push(*cmd);
        let ev = match *cmd {
            Command::Create(s) if self.fail_creates > 0 => {
                self.fail_creates -= 1;
                Event::Error { id: s.id, code: xtrunk_ring::msg::ErrorCode::CapacityExhausted, port: 0 }
            }
            Command::Create(_) if self.mute_creates => return Ok(()),
            Command::Create(s) => {
                self.sessions.insert(s.id, s);
                Event::Created(s.id)
            }
            Command::Update(s) => match self.sessions.get_mut(&s.id) {
                Some(x) => {
                    *x = s;
                    Event::Updated(s.id)
                }
                None => Event::Error { id: s.id, code: xtrunk_ring::msg::ErrorCode::UnknownSession, port: 0 },
            },
            Command::Delete(id) => match self.sessions.remove(&id) {
                Some(_) => Event::Deleted { id, reason: DeleteReason::Requested, stats: [StreamStats::default(); 2] },
                None => Event::Error { id, code: xtrunk_ring::msg::ErrorCode::UnknownSession, port: 0 },
            },
            Command::Dump { token } => {
                for s in self.sessions.values() {
                    self.events.push_back(Event::Session(*s));
                }
                Event::DumpDone { token, count: self.sessions.len() as u32 }
            }
        };
        self.events.push_back(ev);
        Ok(())
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// A [`MediaPort`] over std channels (an in-process datapath thread holds the other ends).
#[derive(Debug)]
pub struct ChannelMedia {
    /// Commands out.
    pub tx: mpsc::SyncSender<Command>,
    /// Events in.
    pub rx: mpsc::Receiver<Event>,
}

impl MediaPort for ChannelMedia {
    fn send(&mut self, cmd: &Command) -> Result<(), Backpressure> {
        self.tx.try_send(*cmd).map_err(|_| Backpressure)
    }
    fn poll_event(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl<T: MediaPort + ?Sized> MediaPort for Box<T> {
    fn send(&mut self, cmd: &Command) -> Result<(), Backpressure> {
        (**self).send(cmd)
    }
    fn poll_event(&mut self) -> Option<Event> {
        (**self).poll_event()
    }
    fn fill_pct(&mut self) -> Option<u8> {
        (**self).fill_pct()
    }
}
