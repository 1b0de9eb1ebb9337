//! Ethernet II frames with at most one 802.1Q VLAN tag.

use super::{be16, put16, Error, Result};

/// EtherType values this crate cares about.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
}

mod field {
    use core::ops::Range;
    pub(super) const DST: Range<usize> = 0..6;
    pub(super) const SRC: Range<usize> = 6..12;
    pub(super) const ETHERTYPE: usize = 12;
    pub(super) const HEADER_LEN: usize = 14;
    pub(super) const VLAN_TCI: usize = 14;
    pub(super) const INNER_ETHERTYPE: usize = 16;
    pub(super) const VLAN_HEADER_LEN: usize = 18;
}

/// A 6-byte MAC address.
pub type MacAddr = [u8; 6];

/// A view of an Ethernet II frame (no FCS).
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checks; use [`EthernetFrame::check_len`] before accessors.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates `buffer`: long enough for the header and its VLAN tag if any.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the buffer holds the full (possibly tagged) header.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if be16(b, field::ETHERTYPE) == ethertype::VLAN && b.len() < field::VLAN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> MacAddr {
        let mut m = [0; 6];
        if let Some(s) = self.buffer.as_ref().get(field::DST) {
            m.copy_from_slice(s);
        }
        m
    }

    /// Source MAC.
    pub fn src_addr(&self) -> MacAddr {
        let mut m = [0; 6];
        if let Some(s) = self.buffer.as_ref().get(field::SRC) {
            m.copy_from_slice(s);
        }
        m
    }

    fn tagged(&self) -> bool {
        be16(self.buffer.as_ref(), field::ETHERTYPE) == ethertype::VLAN
    }

    /// The 12-bit VLAN id of the 802.1Q tag, if the frame is tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.tagged().then(|| be16(self.buffer.as_ref(), field::VLAN_TCI) & 0x0FFF)
    }

    /// The 3-bit priority code point of the tag, if tagged.
    pub fn vlan_pcp(&self) -> Option<u8> {
        self.tagged().then(|| (be16(self.buffer.as_ref(), field::VLAN_TCI) >> 13) as u8)
    }

    /// The EtherType of the payload (after the VLAN tag if any).
    pub fn ethertype(&self) -> u16 {
        if self.tagged() {
            be16(self.buffer.as_ref(), field::INNER_ETHERTYPE)
        } else {
            be16(self.buffer.as_ref(), field::ETHERTYPE)
        }
    }

    /// Length of the header including the VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.tagged() {
            field::VLAN_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        if let Some(s) = self.buffer.as_mut().get_mut(field::DST) {
            s.copy_from_slice(&a);
        }
    }

    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, a: MacAddr) {
        if let Some(s) = self.buffer.as_mut().get_mut(field::SRC) {
            s.copy_from_slice(&a);
        }
    }

    /// Sets the payload EtherType (the inner one when tagged).
    pub fn set_ethertype(&mut self, t: u16) {
        let off = if self.tagged() { field::INNER_ETHERTYPE } else { field::ETHERTYPE };
        put16(self.buffer.as_mut(), off, t);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        self.buffer.as_mut().get_mut(h..).unwrap_or(&mut [])
    }
}

/// High-level description of an Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source MAC.
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
    /// 802.1Q tag: (priority code point 0..=7, VLAN id 0..=4095).
    pub vlan: Option<(u8, u16)>,
    /// Payload EtherType.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]>>(f: &EthernetFrame<T>) -> Result<Self> {
        f.check_len()?;
        Ok(Self {
            src: f.src_addr(),
            dst: f.dst_addr(),
            vlan: f.vlan_id().map(|id| (f.vlan_pcp().unwrap_or(0), id)),
            ethertype: f.ethertype(),
        })
    }

    /// Header length this repr emits.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            field::VLAN_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// Writes the header into the start of `buf`; returns the header length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let h = self.header_len();
        let Some(b) = buf.get_mut(..h) else {
            return Err(Error::BufferTooSmall);
        };
        b[field::DST].copy_from_slice(&self.dst);
        b[field::SRC].copy_from_slice(&self.src);
        match self.vlan {
            Some((pcp, id)) => {
                put16(b, field::ETHERTYPE, ethertype::VLAN);
                put16(b, field::VLAN_TCI, (u16::from(pcp & 7) << 13) | (id & 0x0FFF));
                put16(b, field::INNER_ETHERTYPE, self.ethertype);
            }
            None => put16(b, field::ETHERTYPE, self.ethertype),
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tagged_frame() {
        let mut b = [0u8; 20];
        let r = EthernetRepr { src: [1; 6], dst: [2; 6], vlan: Some((5, 100)), ethertype: ethertype::IPV4 };
        assert_eq!(r.emit(&mut b).unwrap(), 18);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.vlan_pcp(), Some(5));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload().len(), 2);
        assert_eq!(EthernetFrame::new_checked(&b[..16]).unwrap_err(), Error::Truncated);
    }

    proptest! {
        #[test]
        fn roundtrip(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), tag in proptest::option::of((0u8..8, 0u16..4096)), et in any::<u16>()) {
            prop_assume!(et != ethertype::VLAN);
            let r = EthernetRepr { src, dst, vlan: tag, ethertype: et };
            let mut b = [0u8; 32];
            let n = r.emit(&mut b).unwrap();
            let f = EthernetFrame::new_checked(&b[..n]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), r);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(f) = EthernetFrame::new_checked(&b[..]) {
                let _ = (f.src_addr(), f.dst_addr(), f.vlan_id(), f.ethertype(), f.payload());
                let _ = EthernetRepr::parse(&f);
            }
        }
    }
}
