//! IPv4 headers (RFC 791) with the header checksum.

use std::net::Ipv4Addr;

use super::{be16, checksum, put16, Error, Result};

mod field {
    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const TOTAL_LEN: usize = 2;
    pub(super) const IDENT: usize = 4;
    pub(super) const FLAGS_FRAG: usize = 6;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: usize = 10;
    pub(super) const SRC: core::ops::Range<usize> = 12..16;
    pub(super) const DST: core::ops::Range<usize> = 16..20;
    pub(super) const MIN_HEADER_LEN: usize = 20;
}

/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates: version 4, IHL ≥ 5, header and total length within the buffer.
    /// The buffer may be longer than the total length (Ethernet padding).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation of [`Ipv4Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let hl = self.header_len();
        if hl < field::MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(Error::Malformed);
        }
        if b.len() < hl || b.len() < total {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.byte(field::VER_IHL) & 0x0F) * 4
    }

    /// DSCP (6 bits).
    pub fn dscp(&self) -> u8 {
        self.byte(field::DSCP_ECN) >> 2
    }

    /// ECN (2 bits).
    pub fn ecn(&self) -> u8 {
        self.byte(field::DSCP_ECN) & 3
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x4000 != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x1FFF) << 3
    }

    /// True for any fragment (first, middle or last).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.byte(field::TTL)
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.byte(field::PROTOCOL)
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref().get(field::SRC).unwrap_or(&[0; 4]);
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref().get(field::DST).unwrap_or(&[0; 4]);
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// True when the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        let h = self.buffer.as_ref().get(..self.header_len()).unwrap_or(&[]);
        checksum::data(h) == 0xFFFF
    }

    /// The payload (up to the total length; Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_ref().get(h..t).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the TTL (checksum must be refilled).
    pub fn set_ttl(&mut self, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::TTL) {
            *b = v;
        }
    }

    /// Sets the source address (checksum must be refilled).
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        if let Some(s) = self.buffer.as_mut().get_mut(field::SRC) {
            s.copy_from_slice(&a.octets());
        }
    }

    /// Sets the destination address (checksum must be refilled).
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        if let Some(s) = self.buffer.as_mut().get_mut(field::DST) {
            s.copy_from_slice(&a.octets());
        }
    }

    /// Recomputes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        put16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let hl = self.header_len();
        let sum = checksum::data(self.buffer.as_ref().get(..hl).unwrap_or(&[]));
        put16(self.buffer.as_mut(), field::CHECKSUM, !sum);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_mut().get_mut(h..t).unwrap_or(&mut [])
    }
}

/// High-level description of an option-less IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length in bytes (total length − 20).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
}

impl Ipv4Repr {
    /// Header length emitted (no options).
    pub const HEADER_LEN: usize = field::MIN_HEADER_LEN;

    /// Parses a checked packet; fragments and bad checksums are refused.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Self> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(Error::Malformed);
        }
        if p.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Self {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            dscp: p.dscp(),
        })
    }

    /// Writes the header (with checksum, DF set) into the start of `buf`; returns 20.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.payload_len + Self::HEADER_LEN;
        let total = u16::try_from(total).map_err(|_| Error::Malformed)?;
        let Some(b) = buf.get_mut(..Self::HEADER_LEN) else {
            return Err(Error::BufferTooSmall);
        };
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = self.dscp << 2;
        put16(b, field::TOTAL_LEN, total);
        put16(b, field::IDENT, 0);
        put16(b, field::FLAGS_FRAG, 0x4000);
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        let mut p = Ipv4Packet::new_unchecked(b);
        p.fill_checksum();
        Ok(Self::HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_header_checksum() {
        // Classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        let mut buf = [0u8; 0x73];
        buf[..20].copy_from_slice(&h);
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        let mut q = Ipv4Packet::new_checked(buf).unwrap();
        q.fill_checksum();
        assert_eq!(q.checksum(), 0xb861);
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut b = [0u8; 20];
        b[0] = 0x46; // IHL 6 > buffer
        put16(&mut b, 2, 24);
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        b[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    proptest! {
        #[test]
        fn roundtrip(src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), proto in any::<u8>(), len in 0usize..1400, ttl in any::<u8>(), dscp in 0u8..64) {
            let r = Ipv4Repr { src: src.into(), dst: dst.into(), protocol: proto, payload_len: len, ttl, dscp };
            let mut b = vec![0u8; 20 + len];
            r.emit(&mut b).unwrap();
            let p = Ipv4Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
            prop_assert_eq!(p.payload().len(), len);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv4Packet::new_checked(&b[..]) {
                let _ = (p.payload(), p.src_addr(), p.dst_addr(), p.verify_checksum(), p.frag_offset());
                let _ = Ipv4Repr::parse(&p);
            }
        }
    }
}
