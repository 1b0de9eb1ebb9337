//! RTP packets (RFC 3550 §5.1): fixed header, CSRC list, header extension, padding; and the
//! RFC 5761 / RFC 7983 demultiplexer that tells RTP from RTCP (and STUN, DTLS) on one port.

use super::{be16, be32, put16, put32, Error, Result};

mod field {
    pub(super) const VPXCC: usize = 0;
    pub(super) const MPT: usize = 1;
    pub(super) const SEQ: usize = 2;
    pub(super) const TS: usize = 4;
    pub(super) const SSRC: usize = 8;
    pub(super) const CSRC: usize = 12;
    pub(super) const FIXED_LEN: usize = 12;
}

/// Most CSRCs an RTP header can list.
pub const MAX_CSRC: usize = 15;

/// What a datagram on a media port is (RFC 7983 first-byte ranges, RFC 5761 §4 for RTCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxKind {
    /// RTP (version 2, second byte not an RTCP packet type).
    Rtp,
    /// RTCP (version 2, second byte 192..=223).
    Rtcp,
    /// STUN (first byte 0..=3).
    Stun,
    /// DTLS (first byte 20..=63).
    Dtls,
    /// Anything else, including datagrams shorter than 2 bytes.
    Other,
}

/// Classifies a datagram received on an RTP port (RFC 5761 rtcp-mux, RFC 7983).
pub fn classify(buf: &[u8]) -> MuxKind {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return MuxKind::Other;
    };
    match b0 {
        0..=3 => MuxKind::Stun,
        20..=63 => MuxKind::Dtls,
        128..=191 => {
            if (192..=223).contains(&b1) {
                MuxKind::Rtcp
            } else {
                MuxKind::Rtp
            }
        }
        _ => MuxKind::Other,
    }
}

/// A view of an RTP packet.
#[derive(Debug, Clone)]
pub struct RtpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RtpPacket<T> {
    /// Wraps without checks; accessors then return zeros/empty slices on short buffers.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates: version 2, CSRC list and extension within the buffer, padding
    /// count ≥ 1 and within what follows the header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation of [`RtpPacket::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::FIXED_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 2 {
            return Err(Error::Malformed);
        }
        let mut hl = field::FIXED_LEN + 4 * usize::from(self.csrc_count());
        if self.extension() {
            if b.len() < hl + 4 {
                return Err(Error::Truncated);
            }
            hl += 4 + 4 * usize::from(be16(b, hl + 2));
        }
        if b.len() < hl {
            return Err(Error::Truncated);
        }
        if self.padding() {
            let pad = usize::from(b[b.len() - 1]);
            if pad == 0 || hl + pad > b.len() {
                return Err(Error::Malformed);
            }
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

    /// Version (2).
    pub fn version(&self) -> u8 {
        self.byte(field::VPXCC) >> 6
    }

    /// Padding bit.
    pub fn padding(&self) -> bool {
        self.byte(field::VPXCC) & 0x20 != 0
    }

    /// Extension bit.
    pub fn extension(&self) -> bool {
        self.byte(field::VPXCC) & 0x10 != 0
    }

    /// CSRC count.
    pub fn csrc_count(&self) -> u8 {
        self.byte(field::VPXCC) & 0x0F
    }

    /// Marker bit.
    pub fn marker(&self) -> bool {
        self.byte(field::MPT) & 0x80 != 0
    }

    /// Payload type.
    pub fn payload_type(&self) -> u8 {
        self.byte(field::MPT) & 0x7F
    }

    /// Sequence number.
    pub fn sequence_number(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }

    /// Timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.buffer.as_ref(), field::TS)
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SSRC)
    }

    /// The `i`-th CSRC, if listed.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        (i < usize::from(self.csrc_count())).then(|| be32(self.buffer.as_ref(), field::CSRC + 4 * i))
    }

    /// The CSRC list.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + '_ {
        (0..usize::from(self.csrc_count())).filter_map(move |i| self.csrc(i))
    }

    fn ext_offset(&self) -> usize {
        field::CSRC + 4 * usize::from(self.csrc_count())
    }

    /// The header extension: (profile-defined 16 bits, extension data).
    pub fn extension_header(&self) -> Option<(u16, &[u8])> {
        if !self.extension() {
            return None;
        }
        let b = self.buffer.as_ref();
        let off = self.ext_offset();
        let words = usize::from(be16(b, off + 2));
        Some((be16(b, off), b.get(off + 4..off + 4 + 4 * words).unwrap_or(&[])))
    }

    /// Header length: fixed header, CSRCs and extension.
    pub fn header_len(&self) -> usize {
        let mut hl = self.ext_offset();
        if self.extension() {
            hl += 4 + 4 * usize::from(be16(self.buffer.as_ref(), hl + 2));
        }
        hl
    }

    /// Number of padding bytes at the end (including the count byte); 0 without padding.
    pub fn padding_len(&self) -> usize {
        if self.padding() {
            usize::from(self.buffer.as_ref().last().copied().unwrap_or(0))
        } else {
            0
        }
    }

    /// Byte range of the payload within the buffer.
    pub fn payload_range(&self) -> core::ops::Range<usize> {
        let len = self.buffer.as_ref().len();
        let start = self.header_len().min(len);
        let end = len.saturating_sub(self.padding_len()).max(start);
        start..end
    }

    /// The payload (padding excluded).
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.payload_range()).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<T> {
    /// Sets the marker bit.
    pub fn set_marker(&mut self, m: bool) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::MPT) {
            *b = (*b & 0x7F) | if m { 0x80 } else { 0 };
        }
    }

    /// Sets the payload type (masked to 7 bits).
    pub fn set_payload_type(&mut self, pt: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::MPT) {
            *b = (*b & 0x80) | (pt & 0x7F);
        }
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::TS, v);
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::SSRC, v);
    }

    /// The payload, mutable (padding excluded).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.payload_range();
        self.buffer.as_mut().get_mut(r).unwrap_or(&mut [])
    }
}

/// An RTP header extension in a [`RtpRepr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The 16 profile-defined bits (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// Extension data; its length must be a multiple of 4.
    pub data: &'a [u8],
}

/// High-level description of an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpRepr<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Number of valid entries in `csrcs`.
    pub csrc_count: u8,
    /// CSRC list (first `csrc_count` entries are meaningful).
    pub csrcs: [u32; MAX_CSRC],
    /// Header extension.
    pub extension: Option<RtpExtension<'a>>,
    /// Padding bytes to append (0 = no padding bit).
    pub padding: u8,
}

impl<'a> RtpRepr<'a> {
    /// Parses a checked packet; the extension borrows from it.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a RtpPacket<&'a T>) -> Result<Self> {
        p.check_len()?;
        let mut csrcs = [0u32; MAX_CSRC];
        for (i, c) in p.csrcs().enumerate() {
            csrcs[i] = c;
        }
        Ok(Self {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            csrc_count: p.csrc_count(),
            csrcs,
            extension: p.extension_header().map(|(profile, data)| RtpExtension { profile, data }),
            padding: p.padding_len() as u8,
        })
    }

    /// Header length this repr emits.
    pub fn header_len(&self) -> usize {
        field::FIXED_LEN
            + 4 * usize::from(self.csrc_count.min(MAX_CSRC as u8))
            + self.extension.map_or(0, |e| 4 + e.data.len())
    }

    /// Total length for a payload of `payload_len` bytes.
    pub fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len + usize::from(self.padding)
    }

    /// Writes header, `payload` and padding into `buf`; returns the packet length.
    pub fn emit(&self, buf: &mut [u8], payload: &[u8]) -> Result<usize> {
        if self.payload_type > 127 || usize::from(self.csrc_count) > MAX_CSRC {
            return Err(Error::Malformed);
        }
        let ext_words = match self.extension {
            Some(e) if e.data.len() % 4 != 0 || e.data.len() / 4 > usize::from(u16::MAX) => {
                return Err(Error::Malformed)
            }
            Some(e) => Some((e.profile, e.data, (e.data.len() / 4) as u16)),
            None => None,
        };
        let total = self.buffer_len(payload.len());
        let Some(b) = buf.get_mut(..total) else {
            return Err(Error::BufferTooSmall);
        };
        b[field::VPXCC] = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if ext_words.is_some() { 0x10 } else { 0 }
            | self.csrc_count;
        b[field::MPT] = self.payload_type | if self.marker { 0x80 } else { 0 };
        put16(b, field::SEQ, self.sequence_number);
        put32(b, field::TS, self.timestamp);
        put32(b, field::SSRC, self.ssrc);
        let mut off = field::CSRC;
        for c in &self.csrcs[..usize::from(self.csrc_count)] {
            put32(b, off, *c);
            off += 4;
        }
        if let Some((profile, data, words)) = ext_words {
            put16(b, off, profile);
            put16(b, off + 2, words);
            b[off + 4..off + 4 + data.len()].copy_from_slice(data);
            off += 4 + data.len();
        }
        b[off..off + payload.len()].copy_from_slice(payload);
        off += payload.len();
        if self.padding > 0 {
            let p = usize::from(self.padding);
            b[off..off + p].fill(0);
            b[off + p - 1] = self.padding;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_minimal_packet() {
        let b = [0x80, 0x08, 0x12, 0x34, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
        let p = RtpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 160);
        assert_eq!(p.ssrc(), 0xdeadbeef);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn rejects_bad_padding_and_truncation() {
        let mut b = [0x80u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b[0] = 0xA0; // padding bit, last byte 0
        assert_eq!(RtpPacket::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        b[12] = 2; // padding 2 > 1 byte after header
        assert_eq!(RtpPacket::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        b[0] = 0x82; // 2 CSRCs, missing
        assert_eq!(RtpPacket::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        b[0] = 0x40; // version 1
        assert_eq!(RtpPacket::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn demux() {
        assert_eq!(classify(&[0x80, 0x00]), MuxKind::Rtp);
        assert_eq!(classify(&[0x80, 0x80 | 101]), MuxKind::Rtp);
        assert_eq!(classify(&[0x81, 200]), MuxKind::Rtcp);
        assert_eq!(classify(&[0x80, 223]), MuxKind::Rtcp);
        assert_eq!(classify(&[0x80, 224]), MuxKind::Rtp);
        assert_eq!(classify(&[0x00, 0x01]), MuxKind::Stun);
        assert_eq!(classify(&[22, 0xfe]), MuxKind::Dtls);
        assert_eq!(classify(&[0x80]), MuxKind::Other);
    }

    type ReprParts = (bool, u8, u16, u32, u32, Vec<u32>, Option<(u16, Vec<u8>)>, u8, Vec<u8>);

    fn arb_repr() -> impl Strategy<Value = ReprParts> {
        (
            any::<bool>(),
            0u8..128,
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u32>(), 0..=MAX_CSRC),
            proptest::option::of((
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..10).prop_map(|mut v| {
                    v.truncate(v.len() / 4 * 4);
                    v
                }),
            )),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
    }

    proptest! {
        #[test]
        fn roundtrip((m, pt, seq, ts, ssrc, csrc, ext, pad, payload) in arb_repr()) {
            let mut csrcs = [0u32; MAX_CSRC];
            csrcs[..csrc.len()].copy_from_slice(&csrc);
            let r = RtpRepr {
                marker: m, payload_type: pt, sequence_number: seq, timestamp: ts, ssrc,
                csrc_count: csrc.len() as u8, csrcs,
                extension: ext.as_ref().map(|(p, d)| RtpExtension { profile: *p, data: d }),
                padding: pad,
            };
            let mut b = vec![0u8; r.buffer_len(payload.len())];
            let n = r.emit(&mut b, &payload).unwrap();
            prop_assert_eq!(n, b.len());
            let p = RtpPacket::new_checked(&b[..]).unwrap();
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(RtpRepr::parse(&p).unwrap(), r);
            prop_assert_eq!(classify(&b), if (192..=223).contains(&b[1]) { MuxKind::Rtcp } else { MuxKind::Rtp });
        }

        #[test]
        fn setters(pt in 0u8..128, seq in any::<u16>(), ts in any::<u32>(), ssrc in any::<u32>(), m in any::<bool>()) {
            let mut b = [0x80u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
            let mut p = RtpPacket::new_checked(&mut b[..]).unwrap();
            p.set_payload_type(pt); p.set_sequence_number(seq); p.set_timestamp(ts); p.set_ssrc(ssrc); p.set_marker(m);
            prop_assert_eq!((p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc(), p.marker()), (pt, seq, ts, ssrc, m));
            prop_assert_eq!(p.payload(), &[9]);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = classify(&b);
            if let Ok(p) = RtpPacket::new_checked(&b[..]) {
                let _ = (p.payload(), p.csrcs().count(), p.extension_header(), p.header_len());
                prop_assert!(p.header_len() + p.padding_len() <= b.len());
                let _ = RtpRepr::parse(&p);
            }
        }
    }
}
