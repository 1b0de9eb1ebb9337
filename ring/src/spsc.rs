//! Lock-free bounded single-producer single-consumer ring over raw (possibly shared) memory.
//!
//! # Algorithm
//!
//! Lamport's single-producer single-consumer queue (L. Lamport, "Specifying Concurrent Program
//! Modules", TOPLAS 1983), in the form of the classic bounded power-of-two ring used by DPDK's
//! `rte_ring` in SP/SC mode and Linux's `kfifo`: two free-running 64-bit positions, `head`
//! (next slot to read; written only by the consumer) and `tail` (next slot to write; written only
//! by the producer). `tail - head` is the number of filled slots; the slot of position `p` is
//! `p & (capacity - 1)`. 64-bit positions never wrap in practice (584 years at 1 GHz), so there
//! is no ABA and no lap counter. Each side keeps a local copy of its own position and a *cached*
//! copy of the other side's, and reads the shared one only when the cache says full/empty
//! (the "cached index" optimisation of Lamport-queue variants such as FastForward / MCRingBuffer
//! and `rtrb`), so in steady state each side touches the other's cache line once per batch.
//! `head` and `tail` live on separate cache lines ([`CachePadded`]).
//!
//! # Memory ordering
//!
//! * Producer writes slot contents, then `tail.store(Release)`. Consumer `tail.load(Acquire)`,
//!   then reads the slots below it. The Release/Acquire pair makes the slot writes
//!   happen-before the reads (message passing).
//! * Consumer reads slot contents (copies them out), then `head.store(Release)`. Producer
//!   `head.load(Acquire)`, then overwrites slots below `head + capacity`. The pair makes the
//!   consumer's reads happen-before the producer's overwrites (no read of a half-overwritten slot).
//! * Each side loads its *own* position only when the end is created; afterwards it is the
//!   sole writer and uses its local copy. That first load is `Acquire` so that a process taking
//!   over a role (predecessor dead) starts from the last published position.
//! * No `SeqCst` is needed: there is no store→load ordering across the two variables that the
//!   algorithm relies on.
//!
//! # Impossible positions
//!
//! A shared position that breaks `0 ≤ tail - head ≤ capacity` (a stray write into the mapping)
//! is detected when it is loaded, never acted on, repaired by its owner or re-based onto after
//! [`RESYNC_GRACE`]; each end counts what it met in [`PositionFaults`]. See [`positions`].
//!
//! # Safety
//!
//! The ring lives in memory handed over as a [`Backing`]; usage rules:
//!
//! 1. At any time at most **one** [`Producer`] and **one** [`Consumer`] exist for a given ring,
//!    across all threads *and processes* mapping the memory ([`producer`] / [`consumer`] are
//!    `unsafe` for this reason; [`channel`] is the safe in-process constructor). The `shm`
//!    module upholds this with per-role pid ownership.
//! 2. The ring's bytes (control block + slots) are only accessed through this module.
//! 3. `T` is [`Pod`]: every bit pattern is a valid `T`, so a slot written by a buggy or hostile
//!    peer can be read without undefined behaviour at the type level; its content must still be
//!    validated (see [`crate::wire`]). A peer that breaks rule 1 can make us read a torn slot, which
//!    again is just bytes to the validator; slot indices are always masked, so a corrupt position
//!    can never make us access memory outside the ring.
//!
//! Under the Rust memory model, a peer process violating rule 1 would be a data race. That is the
//! accepted contract of every shared-memory IPC; within one process (heap backing) the rules make
//! the ring race-free, which is what Miri / sanitizers check (see `ring/MIRI.md`).

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

pub mod positions;

use positions::{gap, Gap, Watch};
pub use positions::{PositionFaults, RESYNC_GRACE};

/// Alignment required of a ring's offset in its backing memory.
pub const RING_ALIGN: usize = 128;

/// A full ring: the message was not sent; retry later (back-pressure, nothing is dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ring full")]
pub struct Full;

/// A ring geometry that does not fit its backing memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Capacity is zero or not a power of two.
    #[error("ring capacity {0} is not a non-zero power of two")]
    Capacity(usize),
    /// The ring's offset is not a multiple of [`RING_ALIGN`].
    #[error("ring offset {0} is not {RING_ALIGN}-byte aligned")]
    Misaligned(usize),
    /// The ring does not fit in the backing memory.
    #[error("ring needs bytes {offset}..{end} but the memory has {len}")]
    TooSmall {
        /// Ring start.
        offset: usize,
        /// Ring end.
        end: usize,
        /// Backing length.
        len: usize,
    },
}

/// The control block at the start of every ring: the two positions on separate cache lines.
#[repr(C)]
#[derive(Debug, Default)]
pub struct RingControl {
    /// Next position to read. Written only by the consumer.
    head: CachePadded<AtomicU64>,
    /// Next position to write. Written only by the producer.
    tail: CachePadded<AtomicU64>,
}

/// Bytes a ring of `capacity` slots of `T` occupies (control block + slots).
pub const fn ring_bytes<T>(capacity: usize) -> usize {
    std::mem::size_of::<RingControl>() + capacity * std::mem::size_of::<T>()
}

/// Size of the control block (part of the shared-memory size table).
pub const CONTROL_SIZE: usize = std::mem::size_of::<RingControl>();
/// Offset of the `head` word (a little-endian `u64`) in the control block.
pub const HEAD_OFFSET: usize = std::mem::offset_of!(RingControl, head);
/// Offset of the `tail` word (a little-endian `u64`) in the control block.
pub const TAIL_OFFSET: usize = std::mem::offset_of!(RingControl, tail);

/// Memory that holds one or more rings: a heap buffer ([`HeapBacking`]) or a shared mapping.
///
/// # Safety
///
/// Implementors guarantee that [`base`](Backing::base) returns a pointer that is non-null,
/// [`RING_ALIGN`]-aligned, valid for reads and writes of [`len`](Backing::len) bytes, and does not
/// change or dangle for as long as the value lives. The bytes may be shared with other processes.
pub unsafe trait Backing: Send + Sync + 'static {
    /// Start of the memory.
    fn base(&self) -> *mut u8;
    /// Length of the memory in bytes.
    fn len(&self) -> usize;
    /// True if the memory is empty (never, for a usable backing).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A zeroed, [`RING_ALIGN`]-aligned heap buffer: the in-process stand-in for the shared mapping
/// (used by tests, Miri-style checks and single-process setups).
#[derive(Debug)]
pub struct HeapBacking {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl HeapBacking {
    /// Allocates `len` zeroed bytes (at least 1).
    pub fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), RING_ALIGN).expect("heap backing layout");
        // SAFETY: `layout` has non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr) else { std::alloc::handle_alloc_error(layout) };
        Self { ptr, layout }
    }
}

impl Drop for HeapBacking {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: the buffer is owned; all access through it goes via the ring ends, which synchronise
// with atomics as documented above.
unsafe impl Send for HeapBacking {}
// SAFETY: as above; `&HeapBacking` only hands out the raw pointer.
unsafe impl Sync for HeapBacking {}

// SAFETY: `alloc_zeroed` with `RING_ALIGN` alignment, valid until `drop`.
unsafe impl Backing for HeapBacking {
    fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
}

/// Raw view of one ring inside a backing, shared by both end types.
struct Raw<T, B: ?Sized> {
    mem: Arc<B>,
    ctrl: NonNull<RingControl>,
    slots: NonNull<T>,
    capacity: u64,
    mask: u64,
}

impl<T: Pod, B: Backing + ?Sized> Raw<T, B> {
    fn new(mem: Arc<B>, offset: usize, capacity: usize) -> Result<Self, LayoutError> {
        if capacity == 0 || !capacity.is_power_of_two() {
            return Err(LayoutError::Capacity(capacity));
        }
        if !offset.is_multiple_of(RING_ALIGN) || std::mem::align_of::<T>() > RING_ALIGN {
            return Err(LayoutError::Misaligned(offset));
        }
        let end = capacity
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|s| s.checked_add(CONTROL_SIZE))
            .and_then(|s| s.checked_add(offset))
            .ok_or(LayoutError::TooSmall { offset, end: usize::MAX, len: mem.len() })?;
        if end > mem.len() {
            return Err(LayoutError::TooSmall { offset, end, len: mem.len() });
        }
        let base = mem.base();
        // SAFETY: `offset + CONTROL_SIZE <= end <= len`, so both pointers stay inside the backing
        // (Backing contract); base is RING_ALIGN-aligned and offset a multiple of it, and
        // CONTROL_SIZE is a multiple of RING_ALIGN ≥ align_of::<T>(), so both are aligned.
        let (ctrl, slots) = unsafe {
            let ctrl = base.add(offset);
            (ctrl.cast::<RingControl>(), ctrl.add(CONTROL_SIZE).cast::<T>())
        };
        Ok(Self {
            mem,
            // Non-null: derived from a non-null base within the allocation.
            ctrl: NonNull::new(ctrl).ok_or(LayoutError::Misaligned(offset))?,
            slots: NonNull::new(slots).ok_or(LayoutError::Misaligned(offset))?,
            capacity: capacity as u64,
            mask: capacity as u64 - 1,
        })
    }

    fn ctrl(&self) -> &RingControl {
        // SAFETY: points into the live backing (kept alive by `self.mem`), aligned, and a
        // RingControl is two AtomicU64s for which every bit pattern (incl. zeroed memory) is valid;
        // all mutation goes through the atomics, so a shared reference is sound even while the
        // peer (another thread or process) updates them.
        unsafe { self.ctrl.as_ref() }
    }

    fn slot_ptr(&self, pos: u64) -> *mut T {
        // SAFETY: `pos & mask < capacity`, and `capacity` slots fit in the backing (checked in
        // `new`), so the result is in bounds whatever `pos` is (even from a corrupt peer).
        unsafe { self.slots.as_ptr().add((pos & self.mask) as usize) }
    }
}

/// The writing end of a ring.
pub struct Producer<T, B: ?Sized = dyn Backing> {
    raw: Raw<T, B>,
    /// Our position (the shared `tail` mirrors it after each publish).
    tail: u64,
    /// Last `head` we loaded; the ring has at least `capacity - (tail - cached_head)` free slots.
    cached_head: u64,
    /// Impossible positions met.
    watch: Watch,
}

/// The reading end of a ring.
pub struct Consumer<T, B: ?Sized = dyn Backing> {
    raw: Raw<T, B>,
    /// Our position (the shared `head` mirrors it after each release).
    head: u64,
    /// Last `tail` we loaded; at least `cached_tail - head` slots are filled.
    cached_tail: u64,
    /// Impossible positions met.
    watch: Watch,
}

// SAFETY: an end is a unique handle on its role (usage rule 1); moving it to another thread moves
// the role. The backing is Send + Sync and kept alive by the Arc; T: Send for the values moved.
unsafe impl<T: Send, B: Backing + ?Sized> Send for Producer<T, B> {}
// SAFETY: as for Producer.
unsafe impl<T: Send, B: Backing + ?Sized> Send for Consumer<T, B> {}

impl<T, B: ?Sized> std::fmt::Debug for Producer<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("capacity", &self.raw.capacity).field("tail", &self.tail).finish()
    }
}

impl<T, B: ?Sized> std::fmt::Debug for Consumer<T, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("capacity", &self.raw.capacity).field("head", &self.head).finish()
    }
}

/// Creates the producer end of the ring of `capacity` slots at `offset` in `mem`.
///
/// # Safety
///
/// No other [`Producer`] of this ring may exist (in any process) while the returned one lives
/// (module usage rule 1), and the ring's bytes must be either zeroed or a ring previously used
/// with the same `T` and `capacity`.
pub unsafe fn producer<T: Pod, B: Backing + ?Sized>(
    mem: Arc<B>,
    offset: usize,
    capacity: usize,
) -> Result<Producer<T, B>, LayoutError> {
    let raw = Raw::new(mem, offset, capacity)?;
    // Acquire: a predecessor's last published tail (takeover) is what we continue from.
    let tail = raw.ctrl().tail.load(Ordering::Acquire);
    // A cache that says "full" makes the first write load (and classify) the head.
    let cached_head = tail.wrapping_sub(capacity as u64);
    Ok(Producer { raw, tail, cached_head, watch: Watch::default() })
}

/// Creates the consumer end of the ring of `capacity` slots at `offset` in `mem`.
///
/// # Safety
///
/// No other [`Consumer`] of this ring may exist (in any process) while the returned one lives,
/// and the ring's bytes must be either zeroed or a ring previously used with the same `T` and
/// `capacity`.
pub unsafe fn consumer<T: Pod, B: Backing + ?Sized>(
    mem: Arc<B>,
    offset: usize,
    capacity: usize,
) -> Result<Consumer<T, B>, LayoutError> {
    let raw = Raw::new(mem, offset, capacity)?;
    // Acquire: continue from the predecessor's last released head (takeover).
    let head = raw.ctrl().head.load(Ordering::Acquire);
    // Trust nothing: the tail is loaded (and classified) on the first read.
    Ok(Consumer { raw, head, cached_tail: head, watch: Watch::default() })
}

/// A fresh in-process ring of `capacity` slots on a [`HeapBacking`] (the safe constructor).
///
/// # Panics
///
/// If `capacity` is zero or not a power of two.
pub fn channel<T: Pod>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let mem: Arc<dyn Backing> = Arc::new(HeapBacking::new(ring_bytes::<T>(capacity)));
    // SAFETY: fresh zeroed memory; exactly one producer and one consumer are created here.
    unsafe {
        (producer(mem.clone(), 0, capacity).expect("ring capacity"), consumer(mem, 0, capacity).expect("ring capacity"))
    }
}

impl<T: Pod, B: Backing + ?Sized> Producer<T, B> {
    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.raw.capacity as usize
    }

    /// The position the next pushed item will occupy.
    pub fn position(&self) -> u64 {
        self.tail
    }

    /// The backing memory.
    pub fn backing(&self) -> &Arc<B> {
        &self.raw.mem
    }

    /// Free slots according to the cache; refreshes the cache (one Acquire load of `head`) if
    /// fewer than `want` are free.
    fn free(&mut self, want: u64) -> u64 {
        let used = self.tail.wrapping_sub(self.cached_head);
        let free = self.raw.capacity.saturating_sub(used);
        if free >= want {
            return free;
        }
        // Acquire: pairs with the consumer's Release store of `head`; the consumer has finished
        // reading every slot below the loaded value, so we may overwrite them.
        let head = self.raw.ctrl().head.load(Ordering::Acquire);
        match gap(self.tail, head, self.raw.capacity) {
            Gap::Sane(used) => {
                self.watch.sane();
                self.cached_head = head;
                self.raw.capacity - used
            }
            // The consumer is past our tail: it consumed slots we never published (below a
            // corrupt tail), or its word is corrupt. Wait for it to repair its word; if the head
            // stays ahead, move our tail up to it (no slot of ours is skipped: we never wrote
            // those positions).
            Gap::Behind if self.watch.impossible() => {
                self.watch.rebased(head.wrapping_sub(self.tail));
                self.tail = head;
                self.cached_head = head;
                // Release: as in `commit` (no new slots; the consumer just sees an empty ring).
                self.raw.ctrl().tail.store(head, Ordering::Release);
                self.raw.capacity
            }
            // More than a lap behind, or not yet ripe: full until the consumer repairs its word or
            // re-bases. Never overwrite a slot on the word of an impossible head.
            Gap::Behind | Gap::TooFar => {
                self.watch.impossible();
                self.cached_head = self.tail.wrapping_sub(self.raw.capacity);
                0
            }
        }
    }

    /// Rule 1 of [`positions`]: restores our shared `tail` if something overwrote it, and then
    /// forgets the cached head (a consumer misled by the bad tail may have moved on).
    #[inline]
    fn check_own(&mut self) {
        // Relaxed: we are the only writer of `tail`, so a load sees our last store unless
        // another party wrote it.
        if self.raw.ctrl().tail.load(Ordering::Relaxed) != self.tail {
            self.watch.repaired();
            self.raw.ctrl().tail.store(self.tail, Ordering::Release);
            self.cached_head = self.tail.wrapping_sub(self.raw.capacity);
        }
    }

    /// Impossible positions this end has met.
    pub fn faults(&self) -> PositionFaults {
        self.watch.faults
    }

    /// Items pushed and not yet consumed (one Acquire load of `head` unless the ring is empty
    /// by the cache). A head that cannot be trusted makes the ring look full.
    pub fn len(&mut self) -> usize {
        (self.raw.capacity - self.free(self.raw.capacity)) as usize
    }

    /// Nothing pushed is waiting (see [`len`](Self::len)).
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Pushes one item, or returns [`Full`] (nothing written; retry later).
    pub fn try_push(&mut self, item: &T) -> Result<(), Full> {
        let mut batch = self.write_batch(1);
        batch.push(item)?;
        batch.commit();
        Ok(())
    }

    /// Pushes as many of `items` as fit, publishing them with one store; returns how many.
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        let mut batch = self.write_batch(items.len());
        let n = batch.capacity();
        for item in &items[..n] {
            // Cannot fail: n ≤ reserved.
            let _ = batch.push(item);
        }
        batch.commit();
        n
    }

    /// Reserves up to `max` free slots for writing. Items pushed into the batch become visible
    /// to the consumer only on [`WriteBatch::commit`]; dropping the batch cancels them.
    pub fn write_batch(&mut self, max: usize) -> WriteBatch<'_, T, B> {
        self.check_own();
        let free = self.free(max as u64);
        let reserved = free.min(max as u64) as usize;
        WriteBatch { producer: self, reserved, filled: 0 }
    }
}

/// Slots reserved by [`Producer::write_batch`]. Commit with [`commit`](Self::commit); dropping
/// without committing cancels (nothing becomes visible).
#[must_use = "a write batch publishes nothing unless committed"]
pub struct WriteBatch<'a, T: Pod, B: Backing + ?Sized> {
    producer: &'a mut Producer<T, B>,
    reserved: usize,
    filled: usize,
}

impl<T: Pod, B: Backing + ?Sized> WriteBatch<'_, T, B> {
    /// How many slots were reserved (≤ the requested `max`; 0 if the ring is full).
    pub fn capacity(&self) -> usize {
        self.reserved
    }

    /// How many items were pushed so far.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// True if nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The ring position the next pushed item will occupy.
    pub fn next_position(&self) -> u64 {
        self.producer.tail.wrapping_add(self.filled as u64)
    }

    /// Writes the next reserved slot; [`Full`] once all reserved slots are used.
    pub fn push(&mut self, item: &T) -> Result<(), Full> {
        if self.filled == self.reserved {
            return Err(Full);
        }
        let p = self.producer.raw.slot_ptr(self.next_position());
        // SAFETY: in bounds and aligned (`slot_ptr`); the slot is below `cached_head + capacity`,
        // so the consumer has released it (Acquire load in `free`) and will not read it before
        // our Release store of `tail` in `commit` (usage rule 1: no other producer writes it).
        unsafe { p.write(*item) };
        self.filled += 1;
        Ok(())
    }

    /// Fills the next reserved slot in place with `fill` (which sees the slot's previous
    /// content; every byte of it is a valid `T`); [`Full`] once all reserved slots are used.
    /// Saves a copy for large slots.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut T)) -> Result<(), Full> {
        if self.filled == self.reserved {
            return Err(Full);
        }
        let p = self.producer.raw.slot_ptr(self.next_position());
        // SAFETY: as in `push`, the slot is ours until `commit` (the consumer released it and will
        // not read it before our Release store); it is in bounds and aligned, and holds a valid T
        // (T: Pod), so a unique reference to it for the duration of `fill` is sound. A peer that
        // breaks usage rule 1 could race on these bytes; that is the shared-memory contract.
        fill(unsafe { &mut *p });
        self.filled += 1;
        Ok(())
    }

    /// Publishes the pushed items.
    pub fn commit(self) {
        if self.filled == 0 {
            return;
        }
        let p = self.producer;
        p.tail = p.tail.wrapping_add(self.filled as u64);
        // Release: the slot writes above happen-before any consumer Acquire load that sees this
        // tail, so it reads complete slots.
        p.raw.ctrl().tail.store(p.tail, Ordering::Release);
    }
}

impl<T: Pod, B: Backing + ?Sized> Consumer<T, B> {
    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.raw.capacity as usize
    }

    /// The position of the next item to be read.
    pub fn position(&self) -> u64 {
        self.head
    }

    /// The backing memory.
    pub fn backing(&self) -> &Arc<B> {
        &self.raw.mem
    }

    /// Filled slots according to the cache; refreshes it (one Acquire load of `tail`) if fewer
    /// than `want` are known to be filled.
    fn available(&mut self, want: u64) -> u64 {
        let avail = self.cached_tail.wrapping_sub(self.head);
        if avail >= want.min(self.raw.capacity) {
            return avail;
        }
        self.check_own();
        // Acquire: pairs with the producer's Release store of `tail`; every slot below the
        // loaded value is completely written before we read it.
        let tail = self.raw.ctrl().tail.load(Ordering::Acquire);
        match gap(tail, self.head, self.raw.capacity) {
            Gap::Sane(avail) => {
                self.watch.sane();
                self.cached_tail = tail;
                avail
            }
            // More than a lap ahead for the whole grace: drop what is between and re-base onto
            // the tail. Not one lap below it: a tail moved by a multiple of 2^32 would make the
            // previous lap's slots pass the (32-bit) sequence check and be delivered again.
            Gap::TooFar if self.watch.impossible() => {
                self.watch.rebased(tail.wrapping_sub(self.head));
                self.head = tail;
                self.cached_tail = tail;
                // Release: as in `ReadBatch::commit` (we read nothing of the skipped slots).
                self.raw.ctrl().head.store(tail, Ordering::Release);
                0
            }
            // Behind our head, or not yet ripe: read nothing (the producer repairs its word, or
            // re-bases onto our head).
            Gap::Behind | Gap::TooFar => {
                self.watch.impossible();
                self.cached_tail = self.head;
                0
            }
        }
    }

    /// Rule 1 of [`positions`]: restores our shared `head` if something overwrote it.
    #[inline]
    fn check_own(&mut self) {
        // Relaxed: we are the only writer of `head`, so a load sees our last store unless
        // another party wrote it.
        if self.raw.ctrl().head.load(Ordering::Relaxed) != self.head {
            self.watch.repaired();
            self.raw.ctrl().head.store(self.head, Ordering::Release);
        }
    }

    /// Impossible positions this end has met.
    pub fn faults(&self) -> PositionFaults {
        self.watch.faults
    }

    /// Number of items ready to read (refreshing the cache if it says empty).
    pub fn len(&mut self) -> usize {
        self.available(u64::MAX) as usize
    }

    /// True if nothing is ready.
    pub fn is_empty(&mut self) -> bool {
        self.available(1) == 0
    }

    /// Pops one item (copied out of the ring), or `None` if the ring is empty.
    pub fn try_pop(&mut self) -> Option<T> {
        let batch = self.read_batch(1);
        let item = batch.get(0)?;
        batch.commit();
        Some(item)
    }

    /// Pops up to `out.len()` items into `out`, releasing them with one store; returns how many.
    pub fn pop_into(&mut self, out: &mut [T]) -> usize {
        let batch = self.read_batch(out.len());
        let n = batch.len();
        for (i, o) in out[..n].iter_mut().enumerate() {
            if let Some(v) = batch.get(i) {
                *o = v;
            }
        }
        batch.commit();
        n
    }

    /// Exposes up to `max` ready items for reading in place. They are released to the producer
    /// only on [`ReadBatch::commit`]; dropping the batch cancels (they stay for the next read).
    pub fn read_batch(&mut self, max: usize) -> ReadBatch<'_, T, B> {
        let len = self.available(max as u64).min(max as u64) as usize;
        ReadBatch { consumer: self, len }
    }
}

/// Items exposed by [`Consumer::read_batch`]. Commit with [`commit`](Self::commit); dropping
/// without committing leaves them in the ring.
#[must_use = "a read batch releases nothing unless committed"]
pub struct ReadBatch<'a, T: Pod, B: Backing + ?Sized> {
    consumer: &'a mut Consumer<T, B>,
    len: usize,
}

impl<T: Pod, B: Backing + ?Sized> ReadBatch<'_, T, B> {
    /// Number of items in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the batch is empty (the ring was empty).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ring position of item `i`.
    pub fn position(&self, i: usize) -> u64 {
        self.consumer.head.wrapping_add(i as u64)
    }

    /// A copy of item `i` (`None` if `i >= len()`). Copying out means later validation works on
    /// private memory the peer cannot change underneath (no time-of-check/time-of-use).
    pub fn get(&self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let p = self.consumer.raw.slot_ptr(self.position(i));
        // SAFETY: in bounds and aligned (`slot_ptr`); the slot is below the tail we loaded with
        // Acquire, so the producer's writes to it are visible and it will not overwrite it
        // before our Release store of `head` in `commit`. T: Pod, so any bytes are a valid T.
        Some(unsafe { p.read() })
    }

    /// Copies only the meaningful prefix of item `i` into `out` (one copy, no second pass):
    /// first its leading `head` bytes, then, once `total(out)` has read how long the item says
    /// it is from that *private* copy, up to `total` bytes in all (both clamped to
    /// `size_of::<T>()`). Bytes of `out` past the copied prefix keep their old content. Returns
    /// `false` (copying nothing) if `i >= len()`. Like [`get`](Self::get), validation then works
    /// on memory the peer cannot change underneath.
    #[inline]
    pub fn read_prefix_into(&self, i: usize, out: &mut T, head: usize, total: impl FnOnce(&T) -> usize) -> bool {
        if i >= self.len {
            return false;
        }
        let size = std::mem::size_of::<T>();
        let src = self.consumer.raw.slot_ptr(self.position(i)).cast::<u8>();
        let head = head.min(size);
        let dst = &mut bytemuck::bytes_of_mut(out)[..head];
        // SAFETY: `src` is item i's slot: in bounds, below the tail we loaded with Acquire, so
        // the producer's writes are visible and it will not overwrite it before our Release store
        // of `head` in `commit`; `head ≤ size_of::<T>()` bytes of it are readable. `dst` is a
        // distinct (private) buffer of exactly `head` bytes. Any bytes are a valid T (T: Pod).
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), head) };
        let n = total(out).min(size);
        if n > head {
            let dst = &mut bytemuck::bytes_of_mut(out)[head..n];
            // SAFETY: as above, for bytes head..n (n ≤ size_of::<T>()) of the same slot.
            unsafe { std::ptr::copy_nonoverlapping(src.add(head), dst.as_mut_ptr(), n - head) };
        }
        true
    }

    /// Releases all items of the batch to the producer.
    pub fn commit(self) {
        if self.len == 0 {
            return;
        }
        let c = self.consumer;
        c.head = c.head.wrapping_add(self.len as u64);
        // Release: our reads of the slots happen-before the producer's Acquire load that sees
        // this head, hence before it overwrites them.
        c.raw.ctrl().head.store(c.head, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
