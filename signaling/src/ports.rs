//! The media port pool: even RTP ports in `[media].port_min..=port_max` (RTCP = RTP + 1).
//!
//! Owned by signaling. O(1) allocate/release (free list + occupancy bitmap); releasing a port
//! that is not allocated is ignored (counted), so every call-end path may release safely.
//!
//! Allocation picks a uniformly random free port (a random index into the free list, removed by
//! swap), drawn from the sidecar's CSPRNG ([`Ids`], seeded from the OS): an outsider who sees
//! the ports of earlier calls cannot guess the next call's, so it cannot aim media at a call
//! before the peers' first packets (see the datapath's latching rule).

use crate::ids::{Ids, Seed};

/// The pool.
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    /// Free ports, in no order. May hold ports marked used since (skipped when drawn).
    free: Vec<u16>,
    used: Vec<bool>,
    total: usize,
    rng: Ids,
    /// Releases of ports that were not allocated.
    pub double_releases: u64,
}

impl PortPool {
    /// Every even port `p` with `p + 1 <= max`; allocation order drawn from `seed`.
    pub fn new(min: u16, max: u16, seed: Seed) -> Self {
        let first = min + (min & 1);
        let free: Vec<u16> = (u32::from(first)..u32::from(max)).step_by(2).map(|p| p as u16).collect();
        let total = free.len();
        Self { min: first, free, used: vec![false; total], total, rng: Ids::new(seed), double_releases: 0 }
    }

    fn idx(&self, p: u16) -> Option<usize> {
        if p < self.min || (p - self.min) & 1 == 1 {
            return None;
        }
        let i = usize::from((p - self.min) / 2);
        (i < self.total).then_some(i)
    }

    /// Takes a free port, chosen uniformly at random among the free ones.
    pub fn alloc(&mut self) -> Option<u16> {
        while !self.free.is_empty() {
            // The free list never holds more than 32 768 entries (even u16 ports) plus the
            // re-released duplicates of marked ports; u32 is plenty.
            let i = self.rng.below(self.free.len() as u32) as usize;
            let p = self.free.swap_remove(i);
            if let Some(i) = self.idx(p) {
                if !self.used[i] {
                    self.used[i] = true;
                    return Some(p);
                }
            }
        }
        None
    }

    /// Marks a port used (restart recovery from the datapath's dump). Returns false when it is
    /// outside the pool.
    pub fn mark_used(&mut self, p: u16) -> bool {
        match self.idx(p) {
            Some(i) => {
                self.used[i] = true;
                true
            }
            None => false,
        }
    }

    /// Returns a port.
    pub fn release(&mut self, p: u16) {
        match self.idx(p) {
            Some(i) if self.used[i] => {
                self.used[i] = false;
                self.free.push(p);
            }
            _ => self.double_releases += 1,
        }
    }

    /// Ports in the pool.
    pub fn capacity(&self) -> usize {
        self.total
    }

    /// Ports allocated now.
    pub fn in_use(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(min: u16, max: u16) -> PortPool {
        PortPool::new(min, max, Seed::from(1))
    }

    #[test]
    fn even_ports_and_reuse() {
        let mut p = pool(10001, 10010);
        assert_eq!(p.capacity(), 4); // 10002 10004 10006 10008 (10010 has no RTCP port)
        let a: Vec<u16> = (0..4).map(|_| p.alloc().unwrap()).collect();
        // Random order (no longer sequential): the same four ports, each once.
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, vec![10002, 10004, 10006, 10008]);
        assert_eq!(p.alloc(), None);
        p.release(10004);
        p.release(10004);
        assert_eq!(p.double_releases, 1);
        assert_eq!(p.alloc(), Some(10004));
        for x in a {
            p.release(x);
        }
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn mark_used_skips() {
        let mut p = pool(10000, 10005);
        assert!(p.mark_used(10000));
        let mut got = [p.alloc().unwrap(), p.alloc().unwrap()];
        got.sort();
        assert_eq!(got, [10002, 10004]);
        assert_eq!(p.alloc(), None);
        assert!(!p.mark_used(9));
        // A marked port released comes back once.
        p.release(10000);
        assert_eq!(p.alloc(), Some(10000));
        assert_eq!(p.alloc(), None);
    }

    #[test]
    fn allocation_is_random_and_uniform() {
        // 1 000 ports. The next port is not the previous one + 2 (what a sequential pool gives).
        let mut p = pool(20000, 21999);
        let a: Vec<u16> = (0..200).map(|_| p.alloc().unwrap()).collect();
        let sequential = a.windows(2).filter(|w| w[1] == w[0].wrapping_add(2)).count();
        assert!(sequential < 5, "{sequential} of 199 steps were +2");
        // Uniform: alloc + release 100 000 times; every port drawn 100 ± 50 times (> 5 σ).
        let mut p = pool(20000, 21999);
        let mut hits = vec![0u32; 1000];
        for _ in 0..100_000 {
            let x = p.alloc().unwrap();
            hits[usize::from((x - 20000) / 2)] += 1;
            p.release(x);
        }
        assert!(hits.iter().all(|h| (50..=150).contains(h)), "min {:?} max {:?}", hits.iter().min(), hits.iter().max());
        // Different seeds, different orders.
        let mut q = PortPool::new(20000, 21999, Seed::from(2));
        let b: Vec<u16> = (0..20).map(|_| q.alloc().unwrap()).collect();
        assert_ne!(a[..20], b[..]);
    }
}
