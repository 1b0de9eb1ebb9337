//! The `407`s sent lately, by the challenged INVITE's server-transaction key. A challenge keeps
//! no transaction (it is sent statelessly); a retransmitted INVITE is answered with the same To
//! tag and nonce again, so the bytes repeat and the caller's transaction (or SIPp's
//! retransmission check, which compares whole messages) sees a retransmission, not a second
//! answer with a new tag. Bounded: at most [`CAPACITY`] entries, the oldest dropped first, and
//! an entry older than [`MAX_AGE`] (64·T1 at the default T1) is not used.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sip::transaction::TxKey;

/// Entries kept (~5 s of challenges at 3 000 CPS; ~100 bytes each).
pub const CAPACITY: usize = 16_384;
/// How long an entry answers a retransmission.
pub const MAX_AGE: Duration = Duration::from_secs(32);

/// What a repeated challenge needs: its To tag, nonce and `stale` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// To tag of the `407`.
    pub tag: String,
    /// The nonce it carried.
    pub nonce: String,
    /// `stale=true` was set.
    pub stale: bool,
    at: Instant,
}

/// The table.
#[derive(Debug, Default)]
pub struct Recent {
    map: HashMap<TxKey, Sent>,
    order: VecDeque<TxKey>,
}

impl Recent {
    /// The challenge sent for `k` within [`MAX_AGE`] of `now`.
    pub fn get(&self, k: &TxKey, now: Instant) -> Option<&Sent> {
        self.map.get(k).filter(|s| now.saturating_duration_since(s.at) <= MAX_AGE)
    }

    /// Records the challenge sent for `k`; the oldest entry goes when full.
    pub fn insert(&mut self, k: TxKey, tag: String, nonce: String, stale: bool, now: Instant) {
        if self.map.insert(k.clone(), Sent { tag, nonce, stale, at: now }).is_some() {
            return;
        }
        self.order.push_back(k);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_aged() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        for i in 0..CAPACITY + 10 {
            r.insert(TxKey::detached(format!("k{i}")), format!("t{i}"), "n".into(), false, t0);
        }
        assert_eq!(r.len(), CAPACITY);
        assert!(r.get(&TxKey::detached("k0".into()), t0).is_none(), "oldest dropped");
        let last = TxKey::detached(format!("k{}", CAPACITY + 9));
        assert_eq!(r.get(&last, t0).map(|s| s.tag.as_str()), Some(format!("t{}", CAPACITY + 9).as_str()));
        assert!(r.get(&last, t0 + MAX_AGE + Duration::from_secs(1)).is_none(), "too old to repeat");
    }
}
