//! The media port pool: even RTP ports in `[media].port_min..=port_max` (RTCP = RTP + 1).
//!
//! Owned by signaling. O(1) allocate/release (free list + occupancy bitmap); releasing a port
//! that is not allocated is ignored (counted), so every call-end path may release safely.

use std::collections::VecDeque;

/// The pool.
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    free: VecDeque<u16>,
    used: Vec<bool>,
    total: usize,
    /// Releases of ports that were not allocated.
    pub double_releases: u64,
}

impl PortPool {
    /// Every even port `p` with `p + 1 <= max`.
    pub fn new(min: u16, max: u16) -> Self {
        let first = min + (min & 1);
        let free: VecDeque<u16> = (u32::from(first)..u32::from(max)).step_by(2).map(|p| p as u16).collect();
        let total = free.len();
        Self { min: first, free, used: vec![false; total], total, double_releases: 0 }
    }

    fn idx(&self, p: u16) -> Option<usize> {
        if p < self.min || (p - self.min) & 1 == 1 {
            return None;
        }
        let i = usize::from((p - self.min) / 2);
        (i < self.total).then_some(i)
    }

    /// Takes a free port.
    pub fn alloc(&mut self) -> Option<u16> {
        while let Some(p) = self.free.pop_front() {
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
                self.free.push_back(p);
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

    #[test]
    fn even_ports_and_reuse() {
        let mut p = PortPool::new(10001, 10010);
        assert_eq!(p.capacity(), 4); // 10002 10004 10006 10008 (10010 has no RTCP port)
        let a: Vec<u16> = (0..4).map(|_| p.alloc().unwrap()).collect();
        assert_eq!(a, vec![10002, 10004, 10006, 10008]);
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
        let mut p = PortPool::new(10000, 10005);
        assert!(p.mark_used(10000));
        assert_eq!(p.alloc(), Some(10002));
        assert!(!p.mark_used(9));
    }
}
