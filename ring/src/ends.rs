//! Typed ends of the rings: encode on send, validate on receive.
//!
//! Both ends log what the ring's content or positions did wrong (a rejected slot, an impossible
//! position — [`crate::spsc::positions`]) through a [`LogLimit`]: a few lines a second per kind,
//! each with the running totals and the number of lines held back.

use std::marker::PhantomData;
use std::time::Instant;

use crate::msg::{Command, Event};
use crate::ratelimit::{suppressed_note, LogLimit};
use crate::spsc::{self, Consumer, Full, PositionFaults, Producer};
use crate::wire::{check_seq, DecodeError, Message, Slot, BODY_SIZE, SLOT_HEADER_SIZE};

/// Sends commands (signaling → datapath).
pub type CommandSender = Sender<Command>;
/// Receives commands (datapath side).
pub type CommandReceiver = Receiver<Command>;
/// Sends events (datapath → signaling).
pub type EventSender = Sender<Event>;
/// Receives events (signaling side).
pub type EventReceiver = Receiver<Event>;

/// Most slots a batch call handles at once.
const BATCH: usize = 64;

/// The sending end of one ring, for messages of type `M` ([`Command`] or [`Event`]).
///
/// A full ring is back-pressure: [`try_send`](Self::try_send) returns [`Full`] and the caller
/// retries later; nothing is ever dropped or overwritten.
pub struct Sender<M> {
    producer: Producer<Slot>,
    /// `faults().events()` when last logged.
    seen_faults: u64,
    fault_log: LogLimit,
    _msg: PhantomData<fn(M)>,
}

impl<M> std::fmt::Debug for Sender<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("producer", &self.producer).finish()
    }
}

impl<M: Message> Sender<M> {
    /// Wraps the producer end of a ring of slots (see [`crate::pair`] and [`crate::Shm`] for the
    /// usual constructors; this one is for tests and tools working on raw rings).
    pub fn from_producer(producer: Producer<Slot>) -> Self {
        Self { producer, seen_faults: 0, fault_log: LogLimit::new(), _msg: PhantomData }
    }

    /// Encodes and sends one message, or returns [`Full`] (nothing sent; retry later).
    pub fn try_send(&mut self, msg: &M) -> Result<(), Full> {
        let mut batch = self.producer.write_batch(1);
        let seq = batch.next_position() as u32;
        let r = batch.push_with(|slot| msg.encode_into(seq, slot));
        batch.commit();
        self.note_faults();
        r
    }

    /// Impossible ring positions this end met (see [`crate::spsc::positions`]).
    pub fn faults(&self) -> PositionFaults {
        self.producer.faults()
    }

    /// Logs (rate-limited) what the producer met since the last call, if anything.
    #[inline]
    fn note_faults(&mut self) {
        let f = self.producer.faults();
        if f.events() != self.seen_faults {
            self.seen_faults = f.events();
            log_faults::<M>(&mut self.fault_log, "producer", self.producer.position(), &f);
        }
    }

    /// Sends as many of `msgs` (in order) as fit, publishing them together; returns how many.
    /// The rest (`msgs[n..]`) were not sent: retry them later.
    pub fn send_batch(&mut self, msgs: &[M]) -> usize {
        let mut sent = 0;
        while sent < msgs.len() {
            let mut batch = self.producer.write_batch((msgs.len() - sent).min(BATCH));
            if batch.capacity() == 0 {
                break;
            }
            for m in &msgs[sent..sent + batch.capacity()] {
                let seq = batch.next_position() as u32;
                // Cannot fail: we push exactly `capacity()` items. Encoded in place in the ring.
                let _ = batch.push_with(|slot| m.encode_into(seq, slot));
            }
            sent += batch.len();
            batch.commit();
        }
        self.note_faults();
        sent
    }

    /// Ring capacity in messages.
    pub fn capacity(&self) -> usize {
        self.producer.capacity()
    }

    /// Messages sent and not yet taken by the receiver.
    pub fn len(&mut self) -> usize {
        self.producer.len()
    }

    /// Nothing sent is waiting.
    pub fn is_empty(&mut self) -> bool {
        self.producer.is_empty()
    }

    /// Sends a pre-built raw slot as is (no encoding; `seq` is *not* stamped). For tests and
    /// fault injection: the receiver validates it like any other slot.
    pub fn try_send_raw(&mut self, slot: &Slot) -> Result<(), Full> {
        self.producer.try_push(slot)
    }

    /// The ring position the next message will occupy (its `seq` is the low 32 bits).
    pub fn position(&self) -> u64 {
        self.producer.position()
    }
}

/// The receiving end of one ring, for messages of type `M` ([`Command`] or [`Event`]).
///
/// Every slot is validated ([`crate::wire`]); a corrupt one is returned as an `Err`, counted in
/// [`rejected`](Self::rejected), and consumed, so later messages still flow.
///
/// Receiving copies each slot once, header plus only its `len` body bytes, into a private buffer
/// (the peer cannot change what is being validated), checks it there and decodes it in place
/// into a message buffer held by the receiver; [`recv_batch_with`](Self::recv_batch_with) and
/// [`try_recv_into`](Self::try_recv_into) hand that out by reference, so a ~450-byte
/// `SessionSpec` is never moved around.
pub struct Receiver<M> {
    consumer: Consumer<Slot>,
    rejected: u64,
    reject_log: LogLimit,
    /// `faults().events()` when last logged.
    seen_faults: u64,
    fault_log: LogLimit,
    /// Private copy of the slot being validated (only the header and `len` body bytes are
    /// refreshed per slot; the decoder never looks past `len`).
    scratch: Box<Slot>,
    /// Decode buffer: messages are decoded over it in place.
    msg: M,
}

impl<M> std::fmt::Debug for Receiver<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("consumer", &self.consumer).field("rejected", &self.rejected).finish()
    }
}

/// Bytes of a slot worth copying: the header and the body up to `len` (clamped: a corrupt `len`
/// is rejected by the decoder, which then never reads the body).
#[inline(always)]
fn slot_prefix(s: &Slot) -> usize {
    SLOT_HEADER_SIZE + (s.len as usize).min(BODY_SIZE)
}

impl<M: Message> Receiver<M> {
    /// Wraps the consumer end of a ring of slots (see [`Sender::from_producer`]).
    pub fn from_consumer(consumer: Consumer<Slot>) -> Self {
        Self {
            consumer,
            rejected: 0,
            reject_log: LogLimit::new(),
            seen_faults: 0,
            fault_log: LogLimit::new(),
            scratch: Box::default(),
            msg: M::PLACEHOLDER,
        }
    }

    /// The next message: `None` if the ring is empty, `Some(Err(_))` for a rejected slot.
    pub fn try_recv(&mut self) -> Option<Result<M, DecodeError>> {
        let mut got = None;
        self.recv_batch_with(1, |r| got = Some(r.copied()));
        got
    }

    /// Like [`try_recv`](Self::try_recv), but decodes into `out` in place (no large move):
    /// `None` if the ring is empty, `Some(Ok(()))` with the message in `out`, or `Some(Err(_))`
    /// for a rejected slot (then `out` holds some valid but meaningless message).
    pub fn try_recv_into(&mut self, out: &mut M) -> Option<Result<(), DecodeError>> {
        let batch = self.consumer.read_batch(1);
        let pos = batch.position(0);
        if !batch.read_prefix_into(0, &mut self.scratch, SLOT_HEADER_SIZE, slot_prefix) {
            self.note_faults();
            return None;
        }
        batch.commit();
        self.note_faults();
        let r = check_into(&self.scratch, pos, out);
        if let Err(e) = &r {
            self.rejected += 1;
            log_reject::<M>(&mut self.reject_log, pos, e, self.rejected);
        }
        Some(r)
    }

    /// Receives up to `max` messages, calling `f` on each in order, releasing their slots
    /// together; returns how many were handled.
    ///
    /// Each message is copied into `f`'s argument; [`recv_batch_with`](Self::recv_batch_with)
    /// lends it by reference instead (cheaper for `Create`/`Update`/`Session`).
    #[inline]
    pub fn recv_batch(&mut self, max: usize, mut f: impl FnMut(Result<M, DecodeError>)) -> usize {
        self.recv_batch_with(max, |r| f(r.copied()))
    }

    /// Receives up to `max` messages, lending each to `f` by reference (decoded in place into the
    /// receiver's buffer, valid for the call), in order; releases their slots together (one
    /// Acquire load of the producer's position when the cached one is used up and one Release
    /// store per batch of up to 64); returns how many were handled.
    #[inline]
    pub fn recv_batch_with(&mut self, max: usize, mut f: impl FnMut(Result<&M, DecodeError>)) -> usize {
        let mut done = 0;
        while done < max {
            let batch = self.consumer.read_batch((max - done).min(BATCH));
            let n = batch.len();
            if n == 0 {
                break;
            }
            let start = batch.position(0);
            for i in 0..n {
                // One copy of the meaningful bytes into private memory, then validate there.
                batch.read_prefix_into(i, &mut self.scratch, SLOT_HEADER_SIZE, slot_prefix);
                let pos = start.wrapping_add(i as u64);
                let r = check_into(&self.scratch, pos, &mut self.msg);
                if let Err(e) = &r {
                    self.rejected += 1;
                    log_reject::<M>(&mut self.reject_log, pos, e, self.rejected);
                }
                f(r.map(|()| &self.msg));
            }
            batch.commit();
            done += n;
        }
        self.note_faults();
        done
    }

    /// How many slots were rejected by validation since this end was made.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Impossible ring positions this end met (see [`crate::spsc::positions`]).
    pub fn faults(&self) -> PositionFaults {
        self.consumer.faults()
    }

    /// Logs (rate-limited) what the consumer met since the last call, if anything.
    #[inline]
    fn note_faults(&mut self) {
        let f = self.consumer.faults();
        if f.events() != self.seen_faults {
            self.seen_faults = f.events();
            log_faults::<M>(&mut self.fault_log, "consumer", self.consumer.position(), &f);
        }
    }

    /// Ring capacity in messages.
    pub fn capacity(&self) -> usize {
        self.consumer.capacity()
    }

    /// Messages waiting (a snapshot).
    pub fn len(&mut self) -> usize {
        self.consumer.len()
    }

    /// True if no message is waiting (a snapshot).
    pub fn is_empty(&mut self) -> bool {
        self.consumer.is_empty()
    }
}

/// One rate-limited line for a rejected slot.
#[cold]
fn log_reject<M: Message>(limit: &mut LogLimit, pos: u64, e: &DecodeError, total: u64) {
    if let Some(n) = limit.allow(Instant::now()) {
        log::warn!(
            "session ring: rejected a corrupt {} at position {pos} ({e}); {total} rejected so far{}",
            M::NAME,
            suppressed_note(n)
        );
    }
}

/// One rate-limited line for a new position fault.
#[cold]
fn log_faults<M: Message>(limit: &mut LogLimit, end: &str, pos: u64, f: &PositionFaults) {
    if let Some(n) = limit.allow(Instant::now()) {
        log::warn!(
            "session ring: {} ring {end} at position {pos} met an impossible head/tail: {f}{}",
            M::NAME,
            suppressed_note(n)
        );
    }
}

/// Sequence check, then validating decode in place.
#[inline(always)]
fn check_into<M: Message>(slot: &Slot, pos: u64, out: &mut M) -> Result<(), DecodeError> {
    check_seq(slot, pos)?;
    M::decode_into(slot, out)
}

/// The signaling side's ends of an in-process pair.
pub type SignalingEnd = (CommandSender, EventReceiver);
/// The datapath side's ends of an in-process pair.
pub type DatapathEnd = (CommandReceiver, EventSender);

/// Both rings on heap memory in this process, for tests and single-process setups: the same end
/// types as [`crate::Shm`] gives, without a file.
///
/// # Panics
///
/// If a capacity is zero or not a power of two.
pub fn pair(commands_capacity: usize, events_capacity: usize) -> (SignalingEnd, DatapathEnd) {
    let (ctx, crx) = spsc::channel::<Slot>(commands_capacity);
    let (etx, erx) = spsc::channel::<Slot>(events_capacity);
    (
        (Sender::from_producer(ctx), Receiver::from_consumer(erx)),
        (Receiver::from_consumer(crx), Sender::from_producer(etx)),
    )
}
