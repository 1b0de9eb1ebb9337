//! Impossible ring positions: detection, repair and re-basing.
//!
//! Each end is the only writer of its own position and keeps a private copy of it, so a shared
//! position can only break the protocol (`0 ≤ tail - head ≤ capacity`) if something else wrote
//! it: a stray or hostile write into the mapping, or an end that took over a corrupt word. The
//! rules below keep such a fault from wedging the ring; positions only ever move forward, so
//! nothing is delivered twice.
//!
//! 1. **Repair.** Before an end reads the peer's position it checks its own shared word against
//!    its private copy and restores it if they differ ([`PositionFaults::repaired`]); the
//!    producer also does so before each write batch.
//! 2. **Wait.** An impossible peer position is not acted on: the consumer reads nothing, the
//!    producer reports [`Full`](super::Full) (back-pressure). One episode is counted
//!    ([`PositionFaults::impossible`]) until the positions are sane again. A transient
//!    corruption is undone by the peer under rule 1 or by its next publish.
//! 3. **Re-base.** An impossible position that lasts [`RESYNC_GRACE`] is real: an end consumed
//!    stale slots below a corrupt tail, or started from a corrupt word. The end that can move
//!    forward re-bases ([`PositionFaults::resyncs`], [`PositionFaults::skipped`]): the producer
//!    onto a head ahead of its tail, the consumer onto a tail more than `capacity` ahead (what
//!    lies between is dropped and counted; re-reading the last lap instead could deliver old
//!    messages again, as the slot sequence number is only 32 bits). The two other cases (a tail
//!    behind the head, a head more than `capacity` behind the tail) are resolved by the peer's
//!    re-base.

use std::time::{Duration, Instant};

/// How long an impossible position may last before an end re-bases onto it (rule 3). Long
/// enough for a polling peer to repair a stray write (rule 1), short enough to recover well
/// within a second.
pub const RESYNC_GRACE: Duration = Duration::from_millis(50);

/// Impossible ring positions one end has met (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PositionFaults {
    /// Episodes of an impossible peer position (counted once until the positions are sane).
    pub impossible: u64,
    /// Times this end found its own shared position overwritten and restored it.
    pub repaired: u64,
    /// Times this end re-based its position onto the peer's.
    pub resyncs: u64,
    /// Positions skipped by re-basing (slots that may have held messages; saturating).
    pub skipped: u64,
}

impl PositionFaults {
    /// Episodes, repairs and re-bases together: changes whenever something new happened.
    pub fn events(&self) -> u64 {
        self.impossible.wrapping_add(self.repaired).wrapping_add(self.resyncs)
    }
}

impl std::fmt::Display for PositionFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} impossible position(s), {} own position(s) restored, {} re-base(s) skipping {} slot(s)",
            self.impossible, self.repaired, self.resyncs, self.skipped
        )
    }
}

/// Where a tail lies relative to a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gap {
    /// `tail - head`, in `0..=capacity`.
    Sane(u64),
    /// The tail is behind the head.
    Behind,
    /// The tail is more than `capacity` ahead of the head.
    TooFar,
}

/// Classifies `tail - head` for a ring of `capacity` slots.
#[inline]
pub(super) fn gap(tail: u64, head: u64, capacity: u64) -> Gap {
    let d = tail.wrapping_sub(head);
    if d <= capacity {
        Gap::Sane(d)
    } else if (d as i64) < 0 {
        Gap::Behind
    } else {
        Gap::TooFar
    }
}

/// An end's fault state: counters and the start of the current episode.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Watch {
    pub(super) faults: PositionFaults,
    since: Option<Instant>,
}

impl Watch {
    /// The positions are sane: the episode, if any, is over.
    #[inline]
    pub(super) fn sane(&mut self) {
        self.since = None;
    }

    /// An impossible position: counts a new episode; true once the episode has lasted
    /// [`RESYNC_GRACE`].
    pub(super) fn impossible(&mut self) -> bool {
        let now = Instant::now();
        match self.since {
            None => {
                self.since = Some(now);
                self.faults.impossible += 1;
                false
            }
            Some(t) => now.duration_since(t) >= RESYNC_GRACE,
        }
    }

    /// Our own shared word was found overwritten (and restored).
    pub(super) fn repaired(&mut self) {
        self.faults.repaired += 1;
    }

    /// This end re-based, skipping `skipped` positions; the episode is over.
    pub(super) fn rebased(&mut self, skipped: u64) {
        self.faults.resyncs += 1;
        self.faults.skipped = self.faults.skipped.saturating_add(skipped);
        self.since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_classifies_every_corner() {
        assert_eq!(gap(10, 10, 8), Gap::Sane(0));
        assert_eq!(gap(18, 10, 8), Gap::Sane(8));
        assert_eq!(gap(19, 10, 8), Gap::TooFar);
        assert_eq!(gap(9, 10, 8), Gap::Behind);
        assert_eq!(gap(u64::MAX, 2, 8), Gap::Behind);
        assert_eq!(gap(2, u64::MAX, 8), Gap::Sane(3), "positions wrap");
        assert_eq!(gap(1 << 62, 0, 8), Gap::TooFar);
    }

    #[test]
    fn an_episode_counts_once_and_ripens_after_the_grace() {
        let mut w = Watch::default();
        assert!(!w.impossible());
        assert!(!w.impossible());
        assert_eq!(w.faults.impossible, 1);
        std::thread::sleep(RESYNC_GRACE);
        assert!(w.impossible());
        w.rebased(5);
        assert_eq!((w.faults.resyncs, w.faults.skipped), (1, 5));
        assert!(!w.impossible());
        assert_eq!(w.faults.impossible, 2);
        w.sane();
        w.rebased(u64::MAX);
        assert_eq!(w.faults.skipped, u64::MAX);
    }
}
