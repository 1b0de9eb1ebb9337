//! The control loop's side of the XDP fast path: which path each session port takes, and
//! crediting what the program forwarded back to the relay core. Work here follows what changed,
//! never the number of sessions:
//!
//! - **Path decisions** are re-made only for ports whose rule may have changed: the ports of a
//!   session a Create/Update just touched, of a session whose latched sources changed
//!   ([`MediaCore::drain_rule_changes`]), of a session one of whose ports learned the address it
//!   was reached at (the workers' [`PortSet`]); every port only when the route/neighbour table
//!   read once a second differs from the last one.
//! - **Credit**: the program counts every forwarded packet in its port's `fast_stats` and then in
//!   its port group's `fast_groups` (64 ports a group). Each tick reads the 1024 group counts
//!   (one map read), and only for groups whose count moved the `fast_stats` of their ports (one
//!   `BPF_MAP_LOOKUP_BATCH` per run of adjacent moved groups). Idle sessions cost nothing; a
//!   session's ports are also read one by one just before its Delete, so its final stats are
//!   exact, and [`XskRuntime::flush_fast_path`] credits everything before stats are read.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use xtrunk_ebpf::{XtFastRule, XtFastStats, XtSession, XT_ACT_FAST, XT_ACT_XSK, XT_FAST_GROUPS, XT_FAST_GROUP_SHIFT};
use xtrunk_ring::msg::SessionId;

use super::netlink::NetTable;
use super::{MediaCore, XskRuntime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PortPath {
    Xsk,
    /// The rewrite and the only source address (bytes, network-order port) it applies to.
    Fast(xtrunk_ebpf::XtFastRule, [u8; 16], u16),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct PortState {
    pub(super) path: PortPath,
    /// The session holding the port.
    pub(super) session: SessionId,
    /// Fast-path totals already credited (the map counters are monotonic).
    pub(super) credited: (u64, u64),
}

/// A set of local ports, allocated once: the workers note ports in it on the packet path
/// (no allocation: each port is in the list at most once, and the list holds all 65536).
pub(crate) struct PortSet {
    bits: Box<[u64]>,
    list: Vec<u16>,
}

impl Default for PortSet {
    fn default() -> Self {
        Self { bits: vec![0; 1024].into_boxed_slice(), list: Vec::with_capacity(65_536) }
    }
}

impl PortSet {
    /// Adds `port` (no-op if present).
    pub(crate) fn insert(&mut self, port: u16) {
        let (w, b) = (usize::from(port) >> 6, 1u64 << (port & 63));
        if self.bits[w] & b == 0 && self.list.len() < self.list.capacity() {
            self.bits[w] |= b;
            self.list.push(port);
        }
    }

    /// Empties the set, calling `f` on each port.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(u16)) {
        for p in self.list.drain(..) {
            self.bits[usize::from(p) >> 6] &= !(1u64 << (p & 63));
            f(p);
        }
    }
}

/// Most ports one batched read covers.
const RANGE_MAX: usize = 4096;

impl<C: MediaCore> XskRuntime<C> {
    /// Maps a port a session just took: AF_XDP first, with the baseline of its monotonic
    /// fast-path counters (the port may have been another session's).
    pub(super) fn map_port(&mut self, p: u16, session: SessionId) {
        if let Some(st) = self.ports.get_mut(&p) {
            st.session = session;
            return;
        }
        let base = self.prog.fast_stats(p).map(|s| (s.packets, s.bytes)).unwrap_or((0, 0));
        self.ports.insert(p, PortState { path: PortPath::Xsk, session, credited: base });
        let entry = XtSession { action: XT_ACT_XSK, ..Default::default() };
        if let Err(e) = self.prog.set_session(p, &entry) {
            log::error!("xsk: cannot map port {p}: {e}");
        }
    }

    /// Forgets a port a session gave up.
    pub(super) fn unmap_port(&mut self, p: u16) {
        if let Some(st) = self.ports.remove(&p) {
            if matches!(st.path, PortPath::Fast(..)) {
                self.fast_count -= 1;
            }
        }
        self.lock().reached_at.forget(p);
        if let Err(e) = self.prog.remove_session(p) {
            log::error!("xsk: cannot unmap port {p}: {e}");
        }
    }

    /// Credits everything the fast path forwarded so far (call before reading session stats
    /// through [`XskRuntime::with_core`]; [`XskRuntime::tick`] does it every 20 ms).
    pub fn flush_fast_path(&mut self) {
        let now = self.now_ms();
        self.credit_fast_path(now);
    }

    /// Reads the group counts and credits the ports of every group that moved.
    pub(super) fn credit_fast_path(&mut self, now: u64) {
        let groups = match self.prog.fast_groups() {
            Ok(g) => g,
            Err(e) => {
                log::warn!("xsk: reading fast_groups: {e}");
                return;
            }
        };
        let mut credits = Vec::new();
        let mut g = 0;
        while g < XT_FAST_GROUPS {
            if groups[g] == self.groups_seen[g] {
                g += 1;
                continue;
            }
            let first = g;
            while g < XT_FAST_GROUPS && groups[g] != self.groups_seen[g] {
                g += 1;
            }
            let lo = (first << XT_FAST_GROUP_SHIFT) as u32;
            let hi = ((g << XT_FAST_GROUP_SHIFT) - 1) as u32;
            self.credit_range(
                lo.max(u32::from(self.opts.port_min)),
                hi.min(u32::from(self.opts.port_max)),
                &mut credits,
            );
        }
        self.groups_seen.copy_from_slice(&groups);
        self.hand_credits(credits, now);
    }

    /// Reads `fast_stats` of the mapped ports in `lo..=hi` in batches and collects the deltas.
    fn credit_range(&mut self, lo: u32, hi: u32, credits: &mut Vec<(u16, u64, u64)>) {
        let mut start = lo;
        while start <= hi {
            let end = hi.min(start + RANGE_MAX as u32 - 1);
            let (a, b) = (start as u16, end as u16);
            start = end + 1;
            let Some(first) = self.ports.range(a..=b).next().map(|(p, _)| *p) else { continue };
            let last = self.ports.range(a..=b).next_back().map_or(first, |(p, _)| *p);
            let n = usize::from(last - first) + 1;
            let mut vals = std::mem::take(&mut self.range_buf);
            vals.clear();
            vals.resize(n, XtFastStats::default());
            let batched = self.prog.fast_stats_range(first, &mut vals, &mut self.batch_buf);
            if let Err(e) = &batched {
                if !self.batch_failed {
                    log::warn!("xsk: {e}; reading fast-path counters port by port");
                    self.batch_failed = true;
                }
            }
            for (p, st) in self.ports.range_mut(first..=last) {
                let s = match batched {
                    Ok(()) => vals[usize::from(*p - first)],
                    Err(_) => match self.prog.fast_stats(*p) {
                        Ok(s) => s,
                        Err(_) => continue,
                    },
                };
                if let Some(c) = delta(*p, st, s) {
                    credits.push(c);
                }
            }
            self.range_buf = vals;
        }
    }

    /// Reads and credits `ports` one by one now (a session about to be deleted).
    pub(super) fn credit_ports(&mut self, ports: &[u16]) {
        let now = self.now_ms();
        let mut credits = Vec::new();
        for p in ports {
            let Some(st) = self.ports.get_mut(p) else { continue };
            if let Some(c) = self.prog.fast_stats(*p).ok().and_then(|s| delta(*p, st, s)) {
                credits.push(c);
            }
        }
        self.hand_credits(credits, now);
    }

    fn hand_credits(&mut self, credits: Vec<(u16, u64, u64)>, now: u64) {
        if credits.is_empty() {
            return;
        }
        let mut g = self.lock();
        for (p, dp, db) in credits {
            g.core.credit_fast_path(p, dp, db, now);
        }
    }

    /// Re-decides the ports whose rule may have changed since the last call (see the module
    /// docs); every port after a route/neighbour change or a lost change.
    pub(super) fn sync_fast_path(&mut self) {
        let mut todo = BTreeSet::new();
        let overflow = {
            let mut g = self.lock();
            let sh = &mut *g;
            let overflow = sh.core.drain_rule_changes(&mut |p| {
                todo.insert(p);
            });
            // A port that learned where it was reached changes the rules of its session's
            // other ports (their packets leave from that address).
            let (ports, sessions) = (&self.ports, &self.sessions);
            sh.dirty.drain(|p| {
                if let Some(s) = ports.get(&p).and_then(|st| sessions.get(&st.session)) {
                    todo.extend(s.iter().copied());
                }
            });
            overflow
        };
        if overflow || std::mem::take(&mut self.resync_all) {
            let all: Vec<u16> = self.ports.keys().copied().collect();
            self.decide(&all);
        } else if !todo.is_empty() {
            let todo: Vec<u16> = todo.into_iter().collect();
            self.decide(&todo);
        }
    }

    /// Decides AF_XDP or fast path for each of `ports` and updates the map entries that change.
    pub(super) fn decide(&mut self, ports: &[u16]) {
        let mut changes = Vec::new();
        {
            let g = self.lock();
            for p in ports {
                let Some(st) = self.ports.get(p) else { continue };
                let want = if self.opts.fast_path {
                    g.core.fast_path_rule(*p).and_then(|(peer, from, to)| {
                        // The XDP program compares the source as it is on the ingress wire.
                        let src = g.net.next_hop(to.ip()).and_then(|nh| g.reached_at.source(from, nh.src_ip))?;
                        let r = fast_rule(&g.net, src, to)?;
                        (peer.is_ipv4() == to.is_ipv4()).then(|| (r, addr_bytes(peer.ip()), peer.port().to_be()))
                    })
                } else {
                    None
                };
                let want = want.map_or(PortPath::Xsk, |(r, a, p)| PortPath::Fast(r, a, p));
                if want != st.path {
                    changes.push((*p, want));
                }
            }
        }
        for (p, path) in changes {
            let entry = match path {
                PortPath::Xsk => XtSession { action: XT_ACT_XSK, ..Default::default() },
                PortPath::Fast(fast, peer_addr, peer_port) => {
                    XtSession { action: XT_ACT_FAST, pad: 0, fast, peer_addr, peer_port, pad2: 0 }
                }
            };
            match self.prog.set_session(p, &entry) {
                Ok(()) => {
                    if let Some(st) = self.ports.get_mut(&p) {
                        let (was, is) = (matches!(st.path, PortPath::Fast(..)), matches!(path, PortPath::Fast(..)));
                        self.fast_count = self.fast_count + usize::from(is) - usize::from(was);
                        st.path = path;
                    }
                    log::debug!(
                        "xsk: port {p} → {}",
                        if matches!(path, PortPath::Fast(..)) { "fast path" } else { "AF_XDP" }
                    );
                }
                Err(e) => log::error!("xsk: cannot update port {p}: {e}"),
            }
        }
    }
}

fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(a) => b[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => b = a.octets(),
    }
    b
}

/// The fast-path rule for `from → to`, when the next hop is known and the families agree.
fn fast_rule(net: &NetTable, from: SocketAddr, to: SocketAddr) -> Option<XtFastRule> {
    if from.is_ipv4() != to.is_ipv4() {
        return None;
    }
    let nh = net.next_hop(to.ip())?;
    Some(XtFastRule {
        ifindex: nh.ifindex,
        family: if to.is_ipv4() { xtrunk_ebpf::XT_FAMILY_V4 } else { xtrunk_ebpf::XT_FAMILY_V6 },
        pad: [0; 3],
        src_mac: nh.src_mac,
        dst_mac: nh.dst_mac,
        src_addr: addr_bytes(from.ip()),
        dst_addr: addr_bytes(to.ip()),
        src_port: from.port().to_be(),
        dst_port: to.port().to_be(),
    })
}

/// The not yet credited part of `s`, the monotonic totals of `port` (and marks it credited).
fn delta(port: u16, st: &mut PortState, s: XtFastStats) -> Option<(u16, u64, u64)> {
    let (dp, db) = (s.packets.wrapping_sub(st.credited.0), s.bytes.wrapping_sub(st.credited.1));
    if dp == 0 {
        return None;
    }
    st.credited = (s.packets, s.bytes);
    Some((port, dp, db))
}

#[cfg(test)]
mod tests {
    use super::PortSet;

    #[test]
    fn port_set_keeps_each_port_once_and_never_grows() {
        let mut s = PortSet::default();
        let cap = s.list.capacity();
        for p in [5u16, 65535, 5, 0, 65535] {
            s.insert(p);
        }
        let mut got = vec![];
        s.drain(|p| got.push(p));
        assert_eq!(got, vec![5, 65535, 0]);
        for p in 0..=u16::MAX {
            s.insert(p);
            s.insert(p);
        }
        assert_eq!(s.list.len(), 65536);
        assert_eq!(s.list.capacity(), cap);
        let mut n = 0;
        s.drain(|_| n += 1);
        assert_eq!(n, 65536);
        s.insert(7);
        let mut got = vec![];
        s.drain(|p| got.push(p));
        assert_eq!(got, vec![7]);
    }
}
