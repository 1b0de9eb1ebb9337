//! Typed ends of the rings: encode on send, validate on receive.

use std::marker::PhantomData;

use crate::msg::{Command, Event};
use crate::spsc::{self, Consumer, Full, Producer};
use crate::wire::{check_seq, DecodeError, Message, Slot};

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
    _msg: PhantomData<fn(M)>,
}

impl<M> std::fmt::Debug for Sender<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("producer", &self.producer)
            .finish()
    }
}

impl<M: Message> Sender<M> {
    /// Wraps the producer end of a ring of slots (see [`crate::pair`] and [`crate::Shm`] for the
    /// usual constructors; this one is for tests and tools working on raw rings).
    pub fn from_producer(producer: Producer<Slot>) -> Self {
        Self {
            producer,
            _msg: PhantomData,
        }
    }

    /// Encodes and sends one message, or returns [`Full`] (nothing sent; retry later).
    pub fn try_send(&mut self, msg: &M) -> Result<(), Full> {
        let mut batch = self.producer.write_batch(1);
        let seq = batch.next_position() as u32;
        batch.push_with(|slot| msg.encode_into(seq, slot))?;
        batch.commit();
        Ok(())
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
        sent
    }

    /// Ring capacity in messages.
    pub fn capacity(&self) -> usize {
        self.producer.capacity()
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
pub struct Receiver<M> {
    consumer: Consumer<Slot>,
    rejected: u64,
    _msg: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Receiver<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("consumer", &self.consumer)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl<M: Message> Receiver<M> {
    /// Wraps the consumer end of a ring of slots (see [`Sender::from_producer`]).
    pub fn from_consumer(consumer: Consumer<Slot>) -> Self {
        Self {
            consumer,
            rejected: 0,
            _msg: PhantomData,
        }
    }

    fn check(&mut self, slot: &Slot, pos: u64) -> Result<M, DecodeError> {
        let r = check(slot, pos);
        self.rejected += u64::from(r.is_err());
        r
    }

    /// The next message: `None` if the ring is empty, `Some(Err(_))` for a rejected slot.
    pub fn try_recv(&mut self) -> Option<Result<M, DecodeError>> {
        let batch = self.consumer.read_batch(1);
        let pos = batch.position(0);
        let slot = batch.get(0)?;
        batch.commit();
        Some(self.check(&slot, pos))
    }

    /// Receives up to `max` messages, calling `f` on each in order, releasing their slots
    /// together; returns how many were handled.
    pub fn recv_batch(&mut self, max: usize, mut f: impl FnMut(Result<M, DecodeError>)) -> usize {
        let mut done = 0;
        while done < max {
            let batch = self.consumer.read_batch((max - done).min(BATCH));
            let n = batch.len();
            if n == 0 {
                break;
            }
            let start = batch.position(0);
            let mut rejected = 0;
            for i in 0..n {
                // Each slot is copied out (one at a time, on the stack) before validation.
                if let Some(slot) = batch.get(i) {
                    let r = check::<M>(&slot, start.wrapping_add(i as u64));
                    rejected += u64::from(r.is_err());
                    f(r);
                }
            }
            batch.commit();
            self.rejected += rejected;
            done += n;
        }
        done
    }

    /// How many slots were rejected by validation since this end was made.
    pub fn rejected(&self) -> u64 {
        self.rejected
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

/// Sequence check, then validating decode.
fn check<M: Message>(slot: &Slot, pos: u64) -> Result<M, DecodeError> {
    check_seq(slot, pos).and_then(|()| M::decode(slot))
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
