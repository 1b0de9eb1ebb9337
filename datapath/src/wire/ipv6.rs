//! IPv6 fixed headers (RFC 8200). Extension headers are not walked: `next_header` tells the
//! caller what follows the fixed header.

use std::net::Ipv6Addr;

use super::{be16, put16, Error, Result};

mod field {
    pub(super) const VER_TC_FLOW: usize = 0;
    pub(super) const PAYLOAD_LEN: usize = 4;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC: core::ops::Range<usize> = 8..24;
    pub(super) const DST: core::ops::Range<usize> = 24..40;
    pub(super) const HEADER_LEN: usize = 40;
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates: version 6, 40-byte header plus payload length within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation of [`Ipv6Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        if b.len() < field::HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        ((be16(self.b(), 0) >> 4) & 0xFF) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        super::be32(self.b(), 0) & 0x000F_FFFF
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        be16(self.b(), field::PAYLOAD_LEN)
    }

    /// Next header (protocol of what follows the fixed header).
    pub fn next_header(&self) -> u8 {
        self.b().get(field::NEXT_HEADER).copied().unwrap_or(0)
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.b().get(field::HOP_LIMIT).copied().unwrap_or(0)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        if let Some(s) = self.b().get(field::SRC) {
            a.copy_from_slice(s);
        }
        a.into()
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        if let Some(s) = self.b().get(field::DST) {
            a.copy_from_slice(s);
        }
        a.into()
    }

    /// The payload (payload-length bytes after the fixed header).
    pub fn payload(&self) -> &[u8] {
        let end = field::HEADER_LEN + usize::from(self.payload_len());
        self.b().get(field::HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::HOP_LIMIT) {
            *b = v;
        }
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        if let Some(s) = self.buffer.as_mut().get_mut(field::SRC) {
            s.copy_from_slice(&a.octets());
        }
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        if let Some(s) = self.buffer.as_mut().get_mut(field::DST) {
            s.copy_from_slice(&a.octets());
        }
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = field::HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_mut().get_mut(field::HEADER_LEN..end).unwrap_or(&mut [])
    }
}

/// High-level description of an IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Header length.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    /// Writes the fixed header into the start of `buf`; returns 40.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let plen = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        let Some(b) = buf.get_mut(..field::HEADER_LEN) else {
            return Err(Error::BufferTooSmall);
        };
        let w0 = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000F_FFFF);
        super::put32(b, field::VER_TC_FLOW, w0);
        put16(b, field::PAYLOAD_LEN, plen);
        b[field::NEXT_HEADER] = self.next_header;
        b[field::HOP_LIMIT] = self.hop_limit;
        b[field::SRC].copy_from_slice(&self.src.octets());
        b[field::DST].copy_from_slice(&self.dst.octets());
        Ok(field::HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), nh in any::<u8>(), len in 0usize..1400, hl in any::<u8>(), tc in any::<u8>(), fl in 0u32..(1 << 20)) {
            let r = Ipv6Repr { src: src.into(), dst: dst.into(), next_header: nh, payload_len: len, hop_limit: hl, traffic_class: tc, flow_label: fl };
            let mut b = vec![0u8; 40 + len];
            r.emit(&mut b).unwrap();
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
            prop_assert_eq!(p.payload().len(), len);
            prop_assert_eq!(Ipv6Packet::new_checked(&b[..39 + len]).unwrap_err(), Error::Truncated);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
                let _ = (p.payload(), p.src_addr(), p.dst_addr(), p.flow_label());
                let _ = Ipv6Repr::parse(&p);
            }
        }
    }
}
