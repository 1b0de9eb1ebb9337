//! A minimal rtnetlink client: the kernel's routes, neighbours and link addresses (for next-hop
//! MACs), and detaching a stale XDP program.
//!
//! # Safety
//!
//! The only `unsafe` here is the socket syscall shim [`NlSocket`] (socket/bind/send/recv on a
//! `NETLINK_ROUTE` socket); messages are built and parsed in safe code with bounds-checked reads.
//!
//! The table is re-read periodically (every `refresh` of the control loop, 1 s by default) rather
//! than subscribed to via `RTNLGRP_NEIGH`; a neighbour that changes is picked up within that period.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_GETROUTE: u16 = 26;
const RTM_GETNEIGH: u16 = 30;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const NLA_F_NESTED: u16 = 1 << 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
/// Neighbour states with a usable link-layer address.
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;
/// `XDP_FLAGS_SKB_MODE`, `XDP_FLAGS_DRV_MODE`.
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// A `NETLINK_ROUTE` socket.
struct NlSocket {
    fd: OwnedFd,
    seq: u32,
}

impl NlSocket {
    fn new() -> io::Result<Self> {
        // SAFETY: plain socket(2); checked and owned at once.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd, seq: 1 })
    }

    /// Sends one request and collects the payloads (after the nlmsghdr) of every reply message
    /// of type `want`, until `NLMSG_DONE` or the ACK. An `NLMSG_ERROR` with a code fails.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8], want: u16) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let len = 16 + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: `msg` is a live buffer of the length passed; a zeroed sockaddr_nl addresses the kernel.
        let rc = unsafe {
            let mut sa: libc::sockaddr_nl = core::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                core::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let dump = flags & NLM_F_DUMP != 0;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: `buf` is a live, writable buffer of the length passed.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= 16 {
                let mlen = u32::from_ne_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
                let mty = u16::from_ne_bytes([rest[4], rest[5]]);
                let mseq = u32::from_ne_bytes(rest[8..12].try_into().unwrap_or_default());
                if mlen < 16 || mlen > rest.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "netlink: bad message length"));
                }
                let payload = &rest[16..mlen];
                rest = &rest[align4(mlen).min(rest.len())..];
                if mseq != self.seq {
                    continue;
                }
                match mty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload.get(0..4).map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()));
                        match code {
                            Some(0) => return Ok(out),
                            Some(c) => return Err(io::Error::from_raw_os_error(-c)),
                            None => return Err(io::Error::new(io::ErrorKind::InvalidData, "netlink: short error")),
                        }
                    }
                    t if t == want => out.push(payload.to_vec()),
                    _ => {}
                }
            }
            if !dump && flags & NLM_F_ACK == 0 {
                return Ok(out);
            }
        }
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Iterates the rtattrs of `b`: `(type without flag bits, value)`.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let v = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((ty, v))
    })
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, val: &[u8]) {
    let len = 4 + val.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(val);
    buf.resize(align4(buf.len()), 0);
}

fn ip_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match (family as i32, b.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        (libc::AF_INET6, 16) => {
            let a: [u8; 16] = b.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn u32_attr(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(0..4)?.try_into().ok()?))
}

/// One route of the main table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// Destination prefix (unspecified address for the default route).
    pub(crate) dst: IpAddr,
    /// Prefix length.
    pub(crate) prefix_len: u8,
    /// Output interface.
    pub(crate) oif: u32,
    /// Gateway, if not on-link.
    pub(crate) gateway: Option<IpAddr>,
    /// Preferred source address.
    pub(crate) prefsrc: Option<IpAddr>,
    /// Metric (lower wins among equal prefixes).
    pub(crate) metric: u32,
}

/// Where to send a packet for a destination: the egress interface and the two MACs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NextHop {
    /// Egress interface index.
    pub(crate) ifindex: u32,
    /// MAC of the egress interface.
    pub(crate) src_mac: [u8; 6],
    /// MAC of the next hop (the destination itself when on-link, else the gateway).
    pub(crate) dst_mac: [u8; 6],
    /// The source address the kernel would pick toward the destination: the route's preferred
    /// source, or for a route via a gateway the preferred source of the gateway's own (connected)
    /// route. `None` when neither says.
    pub(crate) src_ip: Option<IpAddr>,
}

/// A snapshot of the kernel's main routing table, neighbour table and link addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetTable {
    routes: Vec<Route>,
    neigh: HashMap<(u32, IpAddr), [u8; 6]>,
    links: HashMap<u32, [u8; 6]>,
}

fn prefix_match(net: IpAddr, len: u8, a: IpAddr) -> bool {
    match (net, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let len = u32::from(len.min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let len = u32::from(len.min(128));
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl NetTable {
    /// Reads routes (main table, unicast), usable neighbours and link MACs from the kernel.
    pub(crate) fn load() -> io::Result<Self> {
        let mut nl = NlSocket::new()?;
        let mut t = Self::default();
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            let rtmsg = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            for m in nl.request(RTM_GETROUTE, NLM_F_DUMP, &rtmsg, 24)? {
                if m.len() < 12 || m[7] != RTN_UNICAST {
                    continue;
                }
                let mut table = u32::from(m[4]);
                let mut r = Route {
                    dst: if family == libc::AF_INET as u8 {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    },
                    prefix_len: m[1],
                    oif: 0,
                    gateway: None,
                    prefsrc: None,
                    metric: 0,
                };
                for (ty, v) in attrs(&m[12..]) {
                    match ty {
                        RTA_DST => r.dst = ip_from(family, v).unwrap_or(r.dst),
                        RTA_OIF => r.oif = u32_attr(v).unwrap_or(0),
                        RTA_GATEWAY => r.gateway = ip_from(family, v),
                        RTA_PREFSRC => r.prefsrc = ip_from(family, v),
                        RTA_PRIORITY => r.metric = u32_attr(v).unwrap_or(0),
                        RTA_TABLE => table = u32_attr(v).unwrap_or(table),
                        _ => {}
                    }
                }
                if table == RT_TABLE_MAIN && r.oif != 0 {
                    t.routes.push(r);
                }
            }
            let ndmsg = [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            for m in nl.request(RTM_GETNEIGH, NLM_F_DUMP, &ndmsg, 28)? {
                if m.len() < 12 {
                    continue;
                }
                let ifindex = i32::from_ne_bytes(m[4..8].try_into().unwrap_or_default()) as u32;
                let state = u16::from_ne_bytes([m[8], m[9]]);
                if state & NUD_USABLE == 0 {
                    continue;
                }
                let (mut dst, mut ll) = (None, None);
                for (ty, v) in attrs(&m[12..]) {
                    match ty {
                        NDA_DST => dst = ip_from(family, v),
                        NDA_LLADDR if v.len() == 6 => ll = v.try_into().ok(),
                        _ => {}
                    }
                }
                if let (Some(d), Some(l)) = (dst, ll) {
                    t.neigh.insert((ifindex, d), l);
                }
            }
        }
        let ifinfo = [0u8; 16];
        for m in nl.request(RTM_GETLINK, NLM_F_DUMP, &ifinfo, 16)? {
            if m.len() < 16 {
                continue;
            }
            let index = i32::from_ne_bytes(m[4..8].try_into().unwrap_or_default()) as u32;
            for (ty, v) in attrs(&m[16..]) {
                if ty == IFLA_ADDRESS && v.len() == 6 {
                    if let Ok(mac) = v.try_into() {
                        t.links.insert(index, mac);
                    }
                }
            }
        }
        // Longest prefix first, then lowest metric: `route()` takes the first match.
        t.routes.sort_by(|a, b| b.prefix_len.cmp(&a.prefix_len).then(a.metric.cmp(&b.metric)));
        Ok(t)
    }

    /// The route the kernel would pick for `dst` (main table, longest prefix, lowest metric).
    pub(crate) fn route(&self, dst: IpAddr) -> Option<&Route> {
        self.routes.iter().find(|r| prefix_match(r.dst, r.prefix_len, dst))
    }

    /// Egress interface and MACs for `dst`; `None` when there is no route or the next hop's MAC
    /// is not (yet) in the neighbour table. No allocation.
    pub(crate) fn next_hop(&self, dst: IpAddr) -> Option<NextHop> {
        let r = self.route(dst)?;
        let via = r.gateway.unwrap_or(dst);
        let dst_mac = *self.neigh.get(&(r.oif, via))?;
        let src_mac = *self.links.get(&r.oif)?;
        Some(NextHop { ifindex: r.oif, src_mac, dst_mac, src_ip: self.source_of(r) })
    }

    /// The source address the kernel would pick toward `dst` (see [`NextHop::src_ip`]), known
    /// even while the next hop's MAC is not.
    pub(crate) fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        self.source_of(self.route(dst)?)
    }

    fn source_of(&self, r: &Route) -> Option<IpAddr> {
        r.prefsrc.or_else(|| r.gateway.and_then(|g| self.route(g)).and_then(|gr| gr.prefsrc))
    }
}

/// Detaches whatever XDP program is attached to `ifindex` through netlink, in both generic and
/// native mode (a stale program of a crashed run, or one attached by `ip link set xdp`).
/// Programs held by a live `bpf_link` refuse this (EBUSY): those belong to a running process.
pub(crate) fn detach_xdp(ifindex: u32) -> io::Result<()> {
    let mut nl = NlSocket::new()?;
    let mut last = Ok(());
    for flags in [XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE] {
        let mut body = Vec::with_capacity(48);
        body.extend_from_slice(&[0u8, 0, 0, 0]); // family, pad, type
        body.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        body.extend_from_slice(&[0u8; 8]); // flags, change
        let mut nested = Vec::new();
        push_attr(&mut nested, IFLA_XDP_FD, &(-1i32).to_ne_bytes());
        push_attr(&mut nested, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
        push_attr(&mut body, IFLA_XDP | NLA_F_NESTED, &nested);
        if let Err(e) = nl.request(RTM_SETLINK, NLM_F_ACK, &body, 0) {
            last = Err(e);
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matching() {
        let n: IpAddr = "10.77.1.0".parse().unwrap();
        assert!(prefix_match(n, 24, "10.77.1.9".parse().unwrap()));
        assert!(!prefix_match(n, 24, "10.77.2.9".parse().unwrap()));
        assert!(prefix_match("0.0.0.0".parse().unwrap(), 0, "1.2.3.4".parse().unwrap()));
        assert!(!prefix_match(n, 24, "::1".parse().unwrap()));
        assert!(prefix_match("fd00::".parse().unwrap(), 64, "fd00::5".parse().unwrap()));
    }

    #[test]
    fn attrs_stop_on_garbage() {
        let mut b = Vec::new();
        push_attr(&mut b, 7, &[1, 2, 3]);
        b.extend_from_slice(&[0xff, 0xff]);
        let v: Vec<_> = attrs(&b).collect();
        assert_eq!(v, vec![(7, &[1u8, 2, 3][..])]);
    }

    #[test]
    fn source_address_follows_the_route_or_the_gateways_route() {
        let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
        let route = |dst: &str, len, oif, gw: Option<&str>, src: Option<&str>| Route {
            dst: v4(dst),
            prefix_len: len,
            oif,
            gateway: gw.map(v4),
            prefsrc: src.map(v4),
            metric: 0,
        };
        let mut t = NetTable {
            routes: vec![
                route("10.77.1.0", 24, 2, None, Some("10.77.1.1")),
                route("10.77.2.0", 24, 3, None, Some("10.77.2.1")),
                route("0.0.0.0", 0, 3, Some("10.77.2.254"), None),
            ],
            ..NetTable::default()
        };
        t.links.extend([(2, [2; 6]), (3, [3; 6])]);
        for ip in ["10.77.1.2", "10.77.2.2", "10.77.2.254", "192.0.2.9"] {
            t.neigh.insert((if ip.starts_with("10.77.1") { 2 } else { 3 }, v4(ip)), [9; 6]);
        }
        let nh = t.next_hop(v4("10.77.1.2")).unwrap();
        assert_eq!((nh.ifindex, nh.src_ip), (2, Some(v4("10.77.1.1"))));
        assert_eq!(t.next_hop(v4("10.77.2.2")).unwrap().src_ip, Some(v4("10.77.2.1")));
        // Via the default gateway: the gateway's connected route names the source.
        let nh = t.next_hop(v4("198.51.100.7")).unwrap();
        assert_eq!((nh.ifindex, nh.src_ip, nh.dst_mac), (3, Some(v4("10.77.2.1")), [9; 6]));
    }

    #[test]
    fn loads_loopback_table() {
        // Reading the tables needs no privilege.
        let t = NetTable::load().expect("netlink dump");
        assert!(t.links.contains_key(&1) || t.links.is_empty());
    }
}
