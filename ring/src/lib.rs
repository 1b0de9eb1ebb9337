//! Shared-memory session ring between the signaling sidecar and the datapath.
//!
//! Two lock-free single-producer single-consumer rings in one shared-memory file (default
//! [`DEFAULT_PATH`], `/dev/shm/xtrunk`): [`Command`](msg::Command)s flow signaling → datapath,
//! [`Event`](msg::Event)s flow datapath → signaling. No sockets, no locks, no syscalls per message.
//!
//! # Public API
//!
//! ```text
//! xtrunk_ring::{Shm, CommandSender, CommandReceiver, EventSender, EventReceiver,
//!               msg::*, wire::DecodeError, Error, Full, pair}
//!
//! Shm::create(path, commands_capacity, events_capacity) -> Result<Shm, Error>   // datapath
//! Shm::attach(path) -> Result<Shm, Error>                                       // signaling
//! Shm::remove(path) -> Result<(), Error>                                        // clean shutdown
//! Shm::datapath_end(self) -> Result<(CommandReceiver, EventSender), Error>
//! Shm::signaling_end(self) -> Result<(CommandSender, EventReceiver), Error>
//! Shm::{path, commands_capacity, events_capacity, datapath_pid, signaling_pid, is_stale}
//! Shm::verify(&self) -> Result<(), Error>     // datapath: still our file, header still valid?
//! Shm::watch(&self) -> FileWatch               // verify / is_stale after splitting the Shm
//! pair(commands_capacity, events_capacity)                                      // heap, in-process
//!     -> ((CommandSender, EventReceiver), (CommandReceiver, EventSender))
//!
//! Sender<M>::try_send(&mut self, &M) -> Result<(), Full>      // Full = back-pressure, retry
//! Sender<M>::send_batch(&mut self, &[M]) -> usize             // how many were sent, in order
//! Receiver<M>::try_recv(&mut self) -> Option<Result<M, DecodeError>>
//! Receiver<M>::recv_batch(&mut self, max, FnMut(Result<M, DecodeError>)) -> usize
//! Receiver<M>::rejected(&self) -> u64                         // corrupt slots seen
//! {Sender, Receiver}<M>::faults(&self) -> spsc::PositionFaults // impossible head/tail met
//! Receiver<M>::try_recv_into(&mut self, &mut M) -> Option<Result<(), DecodeError>>  // no move
//! Receiver<M>::recv_batch_with(&mut self, max, FnMut(Result<&M, DecodeError>)) -> usize
//! wire::{decode_command_into, decode_event_into}(&Slot, &mut M) -> Result<(), DecodeError>
//! ```
//!
//! The four end types are `Send` (move each to the thread that polls it) and hold an `Arc` of
//! the mapping, which stays valid while any end lives.
//!
//! # Layers
//!
//! * [`msg`]: the domain types both processes program against.
//! * [`wire`]: their fixed-size `#[repr(C)]` forms in 512-byte [`Slot`](wire::Slot)s, with a
//!   decoder that validates everything (a corrupt slot is rejected and counted, never trusted).
//! * [`spsc`]: the lock-free ring over any [`Backing`](spsc::Backing) memory (heap or mapping).
//! * [`shm`]: the file, its header (magic, ABI version, size table checked on attach) and the
//!   per-role ownership.
//!
//! `unsafe` lives only in `spsc` and `shm`; each opens with a `# Safety` section.
//!
//! # Recovery semantics
//!
//! * The **datapath creates the file and owns it** ([`Shm::create`]). On a clean shutdown it
//!   unlinks it ([`Shm::remove`]). If it finds a file left by a dead datapath it replaces it with
//!   a fresh one (sessions do not survive a datapath restart). A second live datapath is refused.
//! * If **signaling dies**, the datapath keeps the file and keeps relaying every session it holds;
//!   commands already in the ring are still executed, events pile up until the events ring is full
//!   (the datapath sees [`Full`] and must retry or drop *its* copy, its choice — the ring never
//!   overwrites).
//! * A **restarted signaling** process [`attach`](Shm::attach)es again. The signaling owner word
//!   records the predecessor's pid and start time; since that process is dead, the new one takes
//!   over both signaling roles (producer of commands, consumer of events) — SPSC still holds
//!   because the predecessor can no longer touch the rings. It continues from the ring positions
//!   in the file (unread events from before the crash are delivered to it), then sends
//!   [`Command::Dump { token }`](msg::Command::Dump); the datapath answers with one
//!   [`Event::Session`](msg::Event::Session) per session and
//!   [`Event::DumpDone`](msg::Event::DumpDone), from which signaling rebuilds its table.
//! * A second *live* signaling process is refused ([`Error::RoleTaken`]).
//! * Signaling can poll [`Shm::is_stale`] to learn that the datapath died or replaced the file,
//!   and re-attach.

pub mod ends;
pub mod msg;
pub mod ratelimit;
pub mod shm;
pub mod spsc;
pub mod wire;

pub use ends::{pair, CommandReceiver, CommandSender, EventReceiver, EventSender, Receiver, Sender};
pub use shm::{Error, FileWatch, Shm, DEFAULT_PATH};
pub use spsc::{Full, PositionFaults};
pub use wire::DecodeError;
