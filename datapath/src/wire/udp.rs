//! UDP datagrams (RFC 768) with the checksum over the IPv4/IPv6 pseudo-header.

use std::net::IpAddr;

use super::{be16, checksum, put16, Error, Result};

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const LENGTH: usize = 4;
    pub(super) const CHECKSUM: usize = 6;
    pub(super) const HEADER_LEN: usize = 8;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates: 8-byte header, 8 ≤ length field ≤ buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation of [`UdpPacket::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < field::HEADER_LEN {
            return Err(Error::Malformed);
        }
        if l > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// True when the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= field::HEADER_LEN
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    fn datagram(&self) -> &[u8] {
        self.buffer.as_ref().get(..usize::from(self.len())).unwrap_or(&[])
    }

    /// True when the checksum is right for `src`→`dst`. Over IPv4 a zero checksum means "none"
    /// and verifies; over IPv6 a zero checksum is invalid (RFC 8200 §8.1).
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        let d = self.datagram();
        let acc = checksum::pseudo_header(src, dst, super::ipv4::PROTO_UDP, d.len() as u32);
        checksum::fold(checksum::accumulate(acc, d)) == 0xFFFF
    }

    /// The payload (up to the length field).
    pub fn payload(&self) -> &[u8] {
        self.datagram().get(field::HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port (checksum must be refilled).
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Sets the destination port (checksum must be refilled).
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Computes and stores the checksum for `src`→`dst` (0 is sent as 0xFFFF).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        put16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let d = self.datagram();
        let acc = checksum::pseudo_header(src, dst, super::ipv4::PROTO_UDP, d.len() as u32);
        let sum = !checksum::fold(checksum::accumulate(acc, d));
        put16(self.buffer.as_mut(), field::CHECKSUM, if sum == 0 { 0xFFFF } else { sum });
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.len());
        self.buffer.as_mut().get_mut(field::HEADER_LEN..l).unwrap_or(&mut [])
    }
}

/// High-level description of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Header length.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Parses a checked datagram and verifies its checksum for `src`→`dst`.
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>, src: &IpAddr, dst: &IpAddr) -> Result<Self> {
        p.check_len()?;
        if p.dst_port() == 0 || !p.verify_checksum(src, dst) {
            return Err(Error::Malformed);
        }
        Ok(Self { src_port: p.src_port(), dst_port: p.dst_port() })
    }

    /// Writes header and `payload` into `buf` with the checksum for `src`→`dst`; returns the
    /// datagram length.
    pub fn emit(&self, buf: &mut [u8], src: &IpAddr, dst: &IpAddr, payload: &[u8]) -> Result<usize> {
        let total = field::HEADER_LEN + payload.len();
        let len = u16::try_from(total).map_err(|_| Error::Malformed)?;
        let Some(b) = buf.get_mut(..total) else {
            return Err(Error::BufferTooSmall);
        };
        b[field::HEADER_LEN..].copy_from_slice(payload);
        let mut p = UdpPacket::new_unchecked(b);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len);
        p.fill_checksum(src, dst);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ipv4, ipv6};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn v4_known_checksum() {
        // 10.0.0.1:1000 -> 10.0.0.2:2000, payload "abcd", by hand:
        // pseudo-header 0a00+0001+0a00+0002+0011+000c = 0x1420;
        // datagram 03e8+07d0+000c+0000+6162+6364 = 0xd08a; total 0xe4aa; checksum !0xe4aa = 0x1b55.
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let mut b = [0u8; 12];
        UdpRepr { src_port: 1000, dst_port: 2000 }.emit(&mut b, &src, &dst, b"abcd").unwrap();
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.checksum(), 0x1b55);
        assert!(p.verify_checksum(&src, &dst));
        let mut bad = b;
        bad[9] ^= 1;
        assert!(!UdpPacket::new_checked(&bad[..]).unwrap().verify_checksum(&src, &dst));
    }

    #[test]
    fn zero_checksum_rules() {
        let mut b = [0u8; 8];
        put16(&mut b, 4, 8);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        let (a4, a6) = (IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(p.verify_checksum(&a4, &a4));
        assert!(!p.verify_checksum(&a6, &a6));
    }

    proptest! {
        #[test]
        fn roundtrip_v4_in_ip(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sp in any::<u16>(), dp in 1u16.., payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (s, d) = (IpAddr::V4(src.into()), IpAddr::V4(dst.into()));
            let mut b = vec![0u8; 20 + 8 + payload.len()];
            let ip = ipv4::Ipv4Repr { src: src.into(), dst: dst.into(), protocol: ipv4::PROTO_UDP, payload_len: 8 + payload.len(), ttl: 64, dscp: 46 };
            ip.emit(&mut b).unwrap();
            let r = UdpRepr { src_port: sp, dst_port: dp };
            r.emit(&mut b[20..], &s, &d, &payload).unwrap();
            let p = ipv4::Ipv4Packet::new_checked(&b[..]).unwrap();
            let u = UdpPacket::new_checked(p.payload()).unwrap();
            prop_assert_eq!(UdpRepr::parse(&u, &s, &d).unwrap(), r);
            prop_assert_eq!(u.payload(), &payload[..]);
        }

        #[test]
        fn roundtrip_v6(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), sp in any::<u16>(), dp in 1u16.., payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (s, d) = (IpAddr::V6(src.into()), IpAddr::V6(dst.into()));
            let mut b = vec![0u8; 40 + 8 + payload.len()];
            ipv6::Ipv6Repr { src: src.into(), dst: dst.into(), next_header: ipv4::PROTO_UDP, payload_len: 8 + payload.len(), hop_limit: 64, traffic_class: 0, flow_label: 0 }.emit(&mut b).unwrap();
            let r = UdpRepr { src_port: sp, dst_port: dp };
            r.emit(&mut b[40..], &s, &d, &payload).unwrap();
            let p = ipv6::Ipv6Packet::new_checked(&b[..]).unwrap();
            let u = UdpPacket::new_checked(p.payload()).unwrap();
            prop_assert_ne!(u.checksum(), 0);
            prop_assert_eq!(UdpRepr::parse(&u, &s, &d).unwrap(), r);
            prop_assert_eq!(u.payload(), &payload[..]);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = UdpPacket::new_checked(&b[..]) {
                let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
                let _ = (p.payload(), p.verify_checksum(&a, &a), UdpRepr::parse(&p, &a, &a));
            }
        }
    }
}
