//! Frame parsing and header emission for the AF_XDP path, over the `wire` views. Safe code; never
//! panics on wire input (every failure is a [`Drop`] reason the worker counts).

use std::net::{IpAddr, SocketAddr};

use crate::wire::{
    ethernet::{ethertype, EthernetFrame, EthernetRepr},
    ipv4::{Ipv4Packet, Ipv4Repr},
    ipv6::{Ipv6Packet, Ipv6Repr},
    udp::UdpPacket,
};

const PROTO_UDP: u8 = 17;
/// Length of the (untagged) Ethernet header the relay emits.
pub(crate) const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const UDP_LEN: usize = 8;
/// TTL / hop limit of packets the relay originates (it terminates the ingress flow).
pub(crate) const TTL: u8 = 64;

/// Why a frame was not relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drop {
    /// Not Ethernet/IP/UDP, truncated, bad IP or UDP checksum, fragment.
    Malformed,
    /// The relay core refused the packet.
    Relay,
    /// No route or no neighbour entry for the destination.
    NoRoute,
    /// The route leaves through an interface this worker has no socket on.
    NoEgress,
    /// No free frame or TX slot on the egress socket.
    TxFull,
}

/// Where the pieces of a received frame are (offsets into the frame slice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Offset of the UDP payload.
    pub(crate) payload_off: usize,
    /// Length of the UDP payload.
    pub(crate) payload_len: usize,
    /// Sender.
    pub(crate) src: SocketAddr,
    /// Relay-local destination (port = session port).
    pub(crate) dst: SocketAddr,
    /// DSCP of the ingress packet (kept on egress).
    pub(crate) dscp: u8,
}

/// Parses Ethernet (one optional 802.1Q tag) / IPv4 (no fragments, valid header checksum) or
/// IPv6 (UDP as first next header) / UDP (valid checksum).
pub(crate) fn parse(frame: &[u8]) -> Result<Parsed, Drop> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Drop::Malformed)?;
    let l3_off = eth.header_len();
    let (src_ip, dst_ip, dscp, udp_off, l4) = match eth.ethertype() {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| Drop::Malformed)?;
            let r = Ipv4Repr::parse(&ip).map_err(|_| Drop::Malformed)?;
            if r.protocol != PROTO_UDP {
                return Err(Drop::Malformed);
            }
            let hl = ip.header_len();
            let end = hl + r.payload_len;
            let l4 = eth.payload().get(hl..end).ok_or(Drop::Malformed)?;
            (IpAddr::V4(r.src), IpAddr::V4(r.dst), r.dscp, l3_off + hl, l4)
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|_| Drop::Malformed)?;
            let r = Ipv6Repr::parse(&ip).map_err(|_| Drop::Malformed)?;
            if r.next_header != PROTO_UDP {
                return Err(Drop::Malformed);
            }
            let l4 = eth.payload().get(IPV6_LEN..IPV6_LEN + r.payload_len).ok_or(Drop::Malformed)?;
            (IpAddr::V6(r.src), IpAddr::V6(r.dst), r.traffic_class >> 2, l3_off + IPV6_LEN, l4)
        }
        _ => return Err(Drop::Malformed),
    };
    let udp = UdpPacket::new_checked(l4).map_err(|_| Drop::Malformed)?;
    if !udp.verify_checksum(&src_ip, &dst_ip) {
        return Err(Drop::Malformed);
    }
    Ok(Parsed {
        payload_off: udp_off + UDP_LEN,
        payload_len: usize::from(udp.len()) - UDP_LEN,
        src: SocketAddr::new(src_ip, udp.src_port()),
        dst: SocketAddr::new(dst_ip, udp.dst_port()),
        dscp,
    })
}

/// Length of the Ethernet + IP + UDP headers emitted for a packet to `to`.
pub(crate) fn header_len(to: &SocketAddr) -> usize {
    ETH_LEN + UDP_LEN + if to.is_ipv4() { IPV4_LEN } else { IPV6_LEN }
}

/// Writes fresh Ethernet (untagged) / IP / UDP headers into `frame[payload_off - header_len ..
/// payload_off]` for the `payload_len` bytes at `payload_off`, with full IP and UDP checksums.
/// Returns the offset of the first header byte. `from` and `to` must be of one family.
pub(crate) fn emit_headers(
    frame: &mut [u8],
    payload_off: usize,
    payload_len: usize,
    from: SocketAddr,
    to: SocketAddr,
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    dscp: u8,
) -> Result<usize, Drop> {
    let hl = header_len(&to);
    let start = payload_off.checked_sub(hl).ok_or(Drop::Malformed)?;
    let end = payload_off.checked_add(payload_len).ok_or(Drop::Malformed)?;
    let buf = frame.get_mut(start..end).ok_or(Drop::Malformed)?;
    let udp_len = UDP_LEN + payload_len;
    let (et, ip_len) = match (from.ip(), to.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let r = Ipv4Repr { src: s, dst: d, protocol: PROTO_UDP, payload_len: udp_len, ttl: TTL, dscp };
            r.emit(buf.get_mut(ETH_LEN..).ok_or(Drop::Malformed)?).map_err(|_| Drop::Malformed)?;
            (ethertype::IPV4, IPV4_LEN)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let r = Ipv6Repr {
                src: s,
                dst: d,
                next_header: PROTO_UDP,
                payload_len: udp_len,
                hop_limit: TTL,
                traffic_class: dscp << 2,
                flow_label: 0,
            };
            r.emit(buf.get_mut(ETH_LEN..).ok_or(Drop::Malformed)?).map_err(|_| Drop::Malformed)?;
            (ethertype::IPV6, IPV6_LEN)
        }
        _ => return Err(Drop::NoRoute),
    };
    EthernetRepr { src: src_mac, dst: dst_mac, vlan: None, ethertype: et }.emit(buf).map_err(|_| Drop::Malformed)?;
    let mut udp = UdpPacket::new_unchecked(buf.get_mut(ETH_LEN + ip_len..).ok_or(Drop::Malformed)?);
    udp.set_src_port(from.port());
    udp.set_dst_port(to.port());
    udp.set_len(u16::try_from(udp_len).map_err(|_| Drop::Malformed)?);
    udp.fill_checksum(&from.ip(), &to.ip());
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_v4(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 256 + 42 + payload.len()];
        let off = 256 + 42;
        f[off..].copy_from_slice(payload);
        let from: SocketAddr = "10.77.1.2:4000".parse().unwrap();
        let to: SocketAddr = "10.77.1.1:30000".parse().unwrap();
        let s = emit_headers(&mut f, off, payload.len(), from, to, ([2; 6], [4; 6]), 46).unwrap();
        assert_eq!(s, 256);
        f.drain(..256);
        f
    }

    #[test]
    fn v4_round_trip() {
        let f = frame_v4(b"hello rtp");
        let p = parse(&f).unwrap();
        assert_eq!(p.payload_off, 42);
        assert_eq!(p.payload_len, 9);
        assert_eq!(p.src, "10.77.1.2:4000".parse().unwrap());
        assert_eq!(p.dst, "10.77.1.1:30000".parse().unwrap());
        assert_eq!(p.dscp, 46);
        assert_eq!(&f[42..], b"hello rtp");
    }

    #[test]
    fn corrupted_checksum_is_malformed() {
        let mut f = frame_v4(b"hello rtp");
        let n = f.len();
        f[n - 1] ^= 0xff;
        assert_eq!(parse(&f), Err(Drop::Malformed));
    }

    #[test]
    fn v6_round_trip_and_rewrite_in_place() {
        let payload = [7u8; 100];
        let mut f = vec![0u8; 300 + payload.len()];
        f[300..].copy_from_slice(&payload);
        let a: SocketAddr = "[fd00::2]:5000".parse().unwrap();
        let b: SocketAddr = "[fd00::1]:30002".parse().unwrap();
        let s = emit_headers(&mut f, 300, 100, a, b, ([1; 6], [3; 6]), 0).unwrap();
        let p = parse(&f[s..]).unwrap();
        assert_eq!((p.src, p.dst, p.payload_len), (a, b, 100));
        // Rewrite the same frame for the other leg, v4 now: headers shrink, payload stays put.
        let c: SocketAddr = "10.0.0.1:30004".parse().unwrap();
        let d: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let s2 = emit_headers(&mut f, 300, 100, c, d, ([5; 6], [6; 6]), 0).unwrap();
        let p2 = parse(&f[s2..]).unwrap();
        assert_eq!((p2.src, p2.dst), (c, d));
        assert_eq!(&f[300..], &payload[..]);
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..80 {
            let f: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse(&f);
        }
        let mut short = [0u8; 10];
        assert!(emit_headers(
            &mut short,
            5,
            2,
            "1.1.1.1:1".parse().unwrap(),
            "2.2.2.2:2".parse().unwrap(),
            ([0; 6], [0; 6]),
            0
        )
        .is_err());
    }
}
