//! RTCP packets (RFC 3550 §6): SR, RR, SDES, BYE, APP, other types carried opaquely, and
//! compound-packet iteration.
//!
//! [`RtcpPacket::new_checked`] validates the common header *and* the body structure of the known
//! types (report blocks within the length, SDES chunks and items terminated inside the packet, BYE
//! reason inside the packet), so the typed iterators afterwards cannot run off the end.

use super::{be16, be32, put16, put32, Error, Result};

/// RTCP packet types.
pub mod packet_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
    /// Transport-layer feedback (RFC 4585).
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback (RFC 4585).
    pub const PSFB: u8 = 206;
    /// Extended report (RFC 3611).
    pub const XR: u8 = 207;
}

mod field {
    pub(super) const VPC: usize = 0;
    pub(super) const PT: usize = 1;
    pub(super) const LENGTH: usize = 2;
    pub(super) const HEADER_LEN: usize = 4;
    pub(super) const SSRC: usize = 4;
    pub(super) const SR_INFO: usize = 8;
    pub(super) const SR_BLOCKS: usize = 28;
    pub(super) const RR_BLOCKS: usize = 8;
    pub(super) const BLOCK_LEN: usize = 24;
    pub(super) const APP_NAME: usize = 8;
    pub(super) const APP_DATA: usize = 12;
}

/// The sender-info section of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to the NTP time.
    pub rtp_timestamp: u32,
    /// Sender's packet count.
    pub packet_count: u32,
    /// Sender's octet count.
    pub octet_count: u32,
}

/// One reception report block (SR/RR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// SSRC of the source reported on.
    pub ssrc: u32,
    /// Fraction lost (8-bit fixed point).
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed, stored as the raw 24 bits).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter.
    pub jitter: u32,
    /// Last SR timestamp (middle 32 bits of NTP).
    pub lsr: u32,
    /// Delay since last SR (1/65536 s).
    pub dlsr: u32,
}

impl ReportBlock {
    fn read(b: &[u8]) -> Self {
        let w1 = be32(b, 4);
        Self {
            ssrc: be32(b, 0),
            fraction_lost: (w1 >> 24) as u8,
            cumulative_lost: w1 & 0x00FF_FFFF,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            lsr: be32(b, 16),
            dlsr: be32(b, 20),
        }
    }

    fn write(&self, b: &mut [u8]) {
        put32(b, 0, self.ssrc);
        put32(b, 4, (u32::from(self.fraction_lost) << 24) | (self.cumulative_lost & 0x00FF_FFFF));
        put32(b, 8, self.highest_seq);
        put32(b, 12, self.jitter);
        put32(b, 16, self.lsr);
        put32(b, 20, self.dlsr);
    }
}

/// One SDES item (RFC 3550 §6.5): type 1 CNAME, 2 NAME, ... 8 PRIV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type (1..=255; 0 is the terminator and never appears here).
    pub kind: u8,
    /// Item text (at most 255 bytes).
    pub text: &'a [u8],
}

/// SDES item type CNAME.
pub const SDES_CNAME: u8 = 1;

/// One SDES chunk, for emitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    /// Its items.
    pub items: &'a [SdesItem<'a>],
}

/// A view of one RTCP packet (one element of a compound packet).
#[derive(Debug, Clone)]
pub struct RtcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// Walks the SDES chunks of `body` (after the 4-byte header); returns the number of chunks found
/// or an error if a chunk or item runs past the end.
fn walk_sdes(body: &[u8], mut per_item: impl FnMut(u32, Option<SdesItem<'_>>)) -> Result<usize> {
    let mut off = 0;
    let mut chunks = 0;
    while off < body.len() {
        if off + 4 > body.len() {
            return Err(Error::Truncated);
        }
        let ssrc = be32(body, off);
        per_item(ssrc, None);
        off += 4;
        loop {
            let Some(&kind) = body.get(off) else {
                return Err(Error::Truncated);
            };
            if kind == 0 {
                // Terminator, then pad to the next 32-bit boundary.
                off = (off + 4) & !3;
                if off > body.len() {
                    return Err(Error::Truncated);
                }
                break;
            }
            let Some(&len) = body.get(off + 1) else {
                return Err(Error::Truncated);
            };
            let Some(text) = body.get(off + 2..off + 2 + usize::from(len)) else {
                return Err(Error::Truncated);
            };
            per_item(ssrc, Some(SdesItem { kind, text }));
            off += 2 + usize::from(len);
        }
        chunks += 1;
    }
    Ok(chunks)
}

impl<T: AsRef<[u8]>> RtcpPacket<T> {
    /// Wraps without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates one RTCP packet at the start of `buffer` (the buffer may continue
    /// with further packets of a compound; [`RtcpPacket::packet_len`] says where this one ends).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation of [`RtcpPacket::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 2 {
            return Err(Error::Malformed);
        }
        let plen = self.packet_len();
        if b.len() < plen {
            return Err(Error::Truncated);
        }
        let pad = self.padding_len();
        if self.padding() && (pad == 0 || pad > plen - field::HEADER_LEN) {
            return Err(Error::Malformed);
        }
        let end = plen - pad;
        let count = usize::from(self.count());
        match self.packet_type() {
            packet_type::SR if field::SR_BLOCKS + field::BLOCK_LEN * count > end => Err(Error::Malformed),
            packet_type::RR if field::RR_BLOCKS + field::BLOCK_LEN * count > end => Err(Error::Malformed),
            packet_type::SDES => {
                let n = walk_sdes(&b[field::HEADER_LEN..end], |_, _| {})?;
                if n != count {
                    return Err(Error::Malformed);
                }
                Ok(())
            }
            packet_type::BYE => {
                let reason_off = field::HEADER_LEN + 4 * count;
                if reason_off > end {
                    return Err(Error::Malformed);
                }
                if reason_off < end {
                    let rlen = usize::from(b[reason_off]);
                    if reason_off + 1 + rlen > end {
                        return Err(Error::Malformed);
                    }
                }
                Ok(())
            }
            packet_type::APP if end < field::APP_DATA => Err(Error::Malformed),
            0..=191 | 224..=255 => Err(Error::Malformed),
            _ => Ok(()),
        }
    }

    /// Returns the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version (2).
    pub fn version(&self) -> u8 {
        self.b().get(field::VPC).copied().unwrap_or(0) >> 6
    }

    /// Padding bit.
    pub fn padding(&self) -> bool {
        self.b().get(field::VPC).copied().unwrap_or(0) & 0x20 != 0
    }

    /// The 5-bit count field (report count, source count, or APP subtype).
    pub fn count(&self) -> u8 {
        self.b().get(field::VPC).copied().unwrap_or(0) & 0x1F
    }

    /// Packet type.
    pub fn packet_type(&self) -> u8 {
        self.b().get(field::PT).copied().unwrap_or(0)
    }

    /// Length field (32-bit words minus one).
    pub fn length(&self) -> u16 {
        be16(self.b(), field::LENGTH)
    }

    /// Length of this packet in bytes, header and padding included.
    pub fn packet_len(&self) -> usize {
        (usize::from(self.length()) + 1) * 4
    }

    /// Padding bytes at the end of this packet (0 without the padding bit).
    pub fn padding_len(&self) -> usize {
        if !self.padding() {
            return 0;
        }
        self.b().get(self.packet_len().wrapping_sub(1)).map_or(0, |&p| usize::from(p))
    }

    fn end(&self) -> usize {
        self.packet_len().saturating_sub(self.padding_len())
    }

    /// The body after the 4-byte header, padding excluded.
    pub fn body(&self) -> &[u8] {
        self.b().get(field::HEADER_LEN..self.end()).unwrap_or(&[])
    }

    /// The first SSRC (sender of SR/RR/APP, first chunk of SDES, first source of BYE).
    pub fn ssrc(&self) -> Option<u32> {
        (self.end() >= field::SSRC + 4).then(|| be32(self.b(), field::SSRC))
    }

    /// The sender info of an SR.
    pub fn sender_info(&self) -> Option<SenderInfo> {
        if self.packet_type() != packet_type::SR {
            return None;
        }
        let b = self.b();
        let o = field::SR_INFO;
        Some(SenderInfo {
            ntp_timestamp: (u64::from(be32(b, o)) << 32) | u64::from(be32(b, o + 4)),
            rtp_timestamp: be32(b, o + 8),
            packet_count: be32(b, o + 12),
            octet_count: be32(b, o + 16),
        })
    }

    /// The report blocks of an SR or RR (empty for other types).
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlock> + '_ {
        let start = match self.packet_type() {
            packet_type::SR => field::SR_BLOCKS,
            packet_type::RR => field::RR_BLOCKS,
            _ => usize::MAX,
        };
        let n = if start == usize::MAX { 0 } else { usize::from(self.count()) };
        (0..n).filter_map(move |i| {
            let o = start + i * field::BLOCK_LEN;
            self.b().get(o..o + field::BLOCK_LEN).map(ReportBlock::read)
        })
    }

    /// Calls `f(ssrc, item)` for every SDES item of an SDES packet.
    pub fn for_each_sdes_item(&self, mut f: impl FnMut(u32, SdesItem<'_>)) {
        if self.packet_type() == packet_type::SDES {
            let _ = walk_sdes(self.body(), |ssrc, item| {
                if let Some(i) = item {
                    f(ssrc, i)
                }
            });
        }
    }

    /// The SSRCs leaving, of a BYE.
    pub fn bye_ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        let n = if self.packet_type() == packet_type::BYE { usize::from(self.count()) } else { 0 };
        (0..n).filter_map(move |i| {
            let o = field::HEADER_LEN + 4 * i;
            self.b().get(o..o + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        })
    }

    /// The reason text of a BYE, if present.
    pub fn bye_reason(&self) -> Option<&[u8]> {
        if self.packet_type() != packet_type::BYE {
            return None;
        }
        let o = field::HEADER_LEN + 4 * usize::from(self.count());
        if o >= self.end() {
            return None;
        }
        let l = usize::from(*self.b().get(o)?);
        self.b().get(o + 1..o + 1 + l)
    }

    /// The 4-byte name of an APP packet.
    pub fn app_name(&self) -> Option<[u8; 4]> {
        if self.packet_type() != packet_type::APP {
            return None;
        }
        let s = self.b().get(field::APP_NAME..field::APP_NAME + 4)?;
        Some([s[0], s[1], s[2], s[3]])
    }

    /// The application data of an APP packet.
    pub fn app_data(&self) -> Option<&[u8]> {
        if self.packet_type() != packet_type::APP {
            return None;
        }
        self.b().get(field::APP_DATA..self.end())
    }
}

/// Iterates the packets of a compound RTCP datagram. Yields `Err` once and stops on the first
/// invalid packet.
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> CompoundIter<'a> {
    /// Iterates `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf, failed: false }
    }
}

impl<'a> Iterator for CompoundIter<'a> {
    type Item = Result<RtcpPacket<&'a [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match RtcpPacket::new_checked(self.rest) {
            Ok(p) => {
                let n = p.packet_len();
                let (this, rest) = self.rest.split_at(n);
                self.rest = rest;
                Some(Ok(RtcpPacket::new_unchecked(this)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Validates a compound RTCP datagram: every packet well formed and the lengths adding up exactly
/// to the datagram. With `strict`, also RFC 3550 A.2: the first packet is SR or RR and only the
/// last packet may be padded (RFC 5506 reduced-size RTCP fails the strict check). Returns the
/// number of packets.
pub fn validate_compound(buf: &[u8], strict: bool) -> Result<usize> {
    if buf.is_empty() {
        return Err(Error::Truncated);
    }
    let mut n = 0;
    let mut it = CompoundIter::new(buf).peekable();
    while let Some(p) = it.next() {
        let p = p?;
        if strict {
            if n == 0 && !matches!(p.packet_type(), packet_type::SR | packet_type::RR) {
                return Err(Error::Malformed);
            }
            if p.padding() && it.peek().is_some() {
                return Err(Error::Malformed);
            }
        }
        n += 1;
    }
    Ok(n)
}

/// High-level description of one RTCP packet, for emitting. Parse with the [`RtcpPacket`] view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpRepr<'a> {
    /// Sender report.
    SenderReport {
        /// Sender SSRC.
        ssrc: u32,
        /// Sender info.
        info: SenderInfo,
        /// Up to 31 report blocks.
        reports: &'a [ReportBlock],
    },
    /// Receiver report.
    ReceiverReport {
        /// Reporter SSRC.
        ssrc: u32,
        /// Up to 31 report blocks.
        reports: &'a [ReportBlock],
    },
    /// Source description.
    SourceDescription {
        /// Up to 31 chunks.
        chunks: &'a [SdesChunk<'a>],
    },
    /// Goodbye.
    Goodbye {
        /// Up to 31 SSRCs.
        ssrcs: &'a [u32],
        /// Optional reason (≤ 255 bytes).
        reason: Option<&'a [u8]>,
    },
    /// Application-defined.
    App {
        /// Subtype (5 bits).
        subtype: u8,
        /// SSRC.
        ssrc: u32,
        /// Name (4 ASCII characters).
        name: [u8; 4],
        /// Data; length a multiple of 4.
        data: &'a [u8],
    },
}

fn sdes_chunk_len(c: &SdesChunk<'_>) -> usize {
    let items: usize = c.items.iter().map(|i| 2 + i.text.len()).sum();
    // SSRC + items + terminator, padded to 4.
    (4 + items + 1 + 3) & !3
}

impl RtcpRepr<'_> {
    fn count_and_type(&self) -> (usize, u8) {
        match self {
            Self::SenderReport { reports, .. } => (reports.len(), packet_type::SR),
            Self::ReceiverReport { reports, .. } => (reports.len(), packet_type::RR),
            Self::SourceDescription { chunks } => (chunks.len(), packet_type::SDES),
            Self::Goodbye { ssrcs, .. } => (ssrcs.len(), packet_type::BYE),
            Self::App { subtype, .. } => (usize::from(*subtype), packet_type::APP),
        }
    }

    /// Length in bytes this repr emits (a multiple of 4).
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::SenderReport { reports, .. } => field::SR_BLOCKS + field::BLOCK_LEN * reports.len(),
            Self::ReceiverReport { reports, .. } => field::RR_BLOCKS + field::BLOCK_LEN * reports.len(),
            Self::SourceDescription { chunks } => 4 + chunks.iter().map(sdes_chunk_len).sum::<usize>(),
            Self::Goodbye { ssrcs, reason } => (4 + 4 * ssrcs.len() + reason.map_or(0, |r| 1 + r.len()) + 3) & !3,
            Self::App { data, .. } => field::APP_DATA + data.len(),
        }
    }

    /// Writes the packet into the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (count, pt) = self.count_and_type();
        if count > 31 {
            return Err(Error::Malformed);
        }
        let len = self.buffer_len();
        if len > 4 * 65536 {
            return Err(Error::Malformed);
        }
        let Some(b) = buf.get_mut(..len) else {
            return Err(Error::BufferTooSmall);
        };
        b.fill(0);
        b[field::VPC] = 0x80 | count as u8;
        b[field::PT] = pt;
        put16(b, field::LENGTH, (len / 4 - 1) as u16);
        match self {
            Self::SenderReport { ssrc, info, reports } => {
                put32(b, field::SSRC, *ssrc);
                let o = field::SR_INFO;
                put32(b, o, (info.ntp_timestamp >> 32) as u32);
                put32(b, o + 4, info.ntp_timestamp as u32);
                put32(b, o + 8, info.rtp_timestamp);
                put32(b, o + 12, info.packet_count);
                put32(b, o + 16, info.octet_count);
                for (i, r) in reports.iter().enumerate() {
                    r.write(&mut b[field::SR_BLOCKS + i * field::BLOCK_LEN..]);
                }
            }
            Self::ReceiverReport { ssrc, reports } => {
                put32(b, field::SSRC, *ssrc);
                for (i, r) in reports.iter().enumerate() {
                    r.write(&mut b[field::RR_BLOCKS + i * field::BLOCK_LEN..]);
                }
            }
            Self::SourceDescription { chunks } => {
                let mut o = 4;
                for c in *chunks {
                    put32(b, o, c.ssrc);
                    let mut p = o + 4;
                    for it in c.items {
                        if it.kind == 0 || it.text.len() > 255 {
                            return Err(Error::Malformed);
                        }
                        b[p] = it.kind;
                        b[p + 1] = it.text.len() as u8;
                        b[p + 2..p + 2 + it.text.len()].copy_from_slice(it.text);
                        p += 2 + it.text.len();
                    }
                    o += sdes_chunk_len(c);
                }
            }
            Self::Goodbye { ssrcs, reason } => {
                for (i, s) in ssrcs.iter().enumerate() {
                    put32(b, 4 + 4 * i, *s);
                }
                if let Some(r) = reason {
                    if r.len() > 255 {
                        return Err(Error::Malformed);
                    }
                    let o = 4 + 4 * ssrcs.len();
                    b[o] = r.len() as u8;
                    b[o + 1..o + 1 + r.len()].copy_from_slice(r);
                }
            }
            Self::App { subtype, ssrc, name, data } => {
                if *subtype > 31 || data.len() % 4 != 0 {
                    return Err(Error::Malformed);
                }
                put32(b, field::SSRC, *ssrc);
                b[field::APP_NAME..field::APP_NAME + 4].copy_from_slice(name);
                b[field::APP_DATA..].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_block() -> impl Strategy<Value = ReportBlock> {
        (any::<u32>(), any::<u8>(), 0u32..(1 << 24), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
            |(ssrc, fraction_lost, cumulative_lost, highest_seq, jitter, lsr, dlsr)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                highest_seq,
                jitter,
                lsr,
                dlsr,
            },
        )
    }

    #[test]
    fn compound_sr_sdes_bye() {
        let blocks = [ReportBlock { ssrc: 7, jitter: 12, ..Default::default() }];
        let items = [SdesItem { kind: SDES_CNAME, text: b"alice@example" }];
        let chunks = [SdesChunk { ssrc: 1, items: &items }];
        let parts = [
            RtcpRepr::SenderReport {
                ssrc: 1,
                info: SenderInfo { packet_count: 5, ..Default::default() },
                reports: &blocks,
            },
            RtcpRepr::SourceDescription { chunks: &chunks },
            RtcpRepr::Goodbye { ssrcs: &[1], reason: Some(b"bye") },
        ];
        let mut buf = [0u8; 256];
        let mut n = 0;
        for p in &parts {
            n += p.emit(&mut buf[n..]).unwrap();
        }
        assert_eq!(validate_compound(&buf[..n], true), Ok(3));
        let pkts: Vec<_> = CompoundIter::new(&buf[..n]).map(|p| p.unwrap()).collect();
        assert_eq!(pkts[0].sender_info().unwrap().packet_count, 5);
        assert_eq!(pkts[0].report_blocks().collect::<Vec<_>>(), blocks);
        let mut seen = vec![];
        pkts[1].for_each_sdes_item(|s, i| seen.push((s, i.kind, i.text.to_vec())));
        assert_eq!(seen, vec![(1, 1, b"alice@example".to_vec())]);
        assert_eq!(pkts[2].bye_ssrcs().collect::<Vec<_>>(), vec![1]);
        assert_eq!(pkts[2].bye_reason(), Some(&b"bye"[..]));
        // Truncating the compound anywhere inside a packet is detected.
        assert!(validate_compound(&buf[..n - 4], false).is_err());
        // A compound starting with SDES fails the strict check only.
        let sdes_len = parts[1].buffer_len();
        let off = parts[0].buffer_len();
        assert!(validate_compound(&buf[off..off + sdes_len], true).is_err());
        assert_eq!(validate_compound(&buf[off..off + sdes_len], false), Ok(1));
    }

    #[test]
    fn rejects_unterminated_sdes() {
        // SDES, one chunk, CNAME item with length running past the end.
        let b = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, b'a', b'b'];
        assert!(RtcpPacket::new_checked(&b[..]).is_err());
        // RR claiming 1 block with none present.
        let b = [0x81, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(RtcpPacket::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    proptest! {
        #[test]
        fn sr_rr_roundtrip(ssrc in any::<u32>(), ntp in any::<u64>(), ts in any::<u32>(), pc in any::<u32>(), oc in any::<u32>(), blocks in proptest::collection::vec(arb_block(), 0..31), sr in any::<bool>()) {
            let info = SenderInfo { ntp_timestamp: ntp, rtp_timestamp: ts, packet_count: pc, octet_count: oc };
            let r = if sr { RtcpRepr::SenderReport { ssrc, info, reports: &blocks } } else { RtcpRepr::ReceiverReport { ssrc, reports: &blocks } };
            let mut b = vec![0u8; r.buffer_len()];
            let n = r.emit(&mut b).unwrap();
            let p = RtcpPacket::new_checked(&b[..n]).unwrap();
            prop_assert_eq!(p.packet_len(), n);
            prop_assert_eq!(p.ssrc(), Some(ssrc));
            prop_assert_eq!(p.report_blocks().collect::<Vec<_>>(), blocks.clone());
            if sr { prop_assert_eq!(p.sender_info(), Some(info)); }
        }

        #[test]
        fn sdes_bye_app_roundtrip(
            chunks in proptest::collection::vec((any::<u32>(), proptest::collection::vec((1u8..=8, proptest::collection::vec(any::<u8>(), 0..20)), 0..4)), 0..5),
            ssrcs in proptest::collection::vec(any::<u32>(), 0..31),
            reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            sub in 0u8..32, name in any::<[u8; 4]>(), data in proptest::collection::vec(any::<u32>(), 0..10),
        ) {
            let items: Vec<Vec<SdesItem<'_>>> = chunks.iter().map(|(_, its)| its.iter().map(|(k, t)| SdesItem { kind: *k, text: t }).collect()).collect();
            let cs: Vec<SdesChunk<'_>> = chunks.iter().zip(&items).map(|((s, _), i)| SdesChunk { ssrc: *s, items: i }).collect();
            let data: Vec<u8> = data.iter().flat_map(|w| w.to_be_bytes()).collect();
            let parts = [
                RtcpRepr::SourceDescription { chunks: &cs },
                RtcpRepr::Goodbye { ssrcs: &ssrcs, reason: reason.as_deref() },
                RtcpRepr::App { subtype: sub, ssrc: 9, name, data: &data },
            ];
            let mut b = vec![0u8; parts.iter().map(|p| p.buffer_len()).sum()];
            let mut n = 0;
            for p in &parts { n += p.emit(&mut b[n..]).unwrap(); }
            prop_assert_eq!(validate_compound(&b[..n], false), Ok(3));
            let pk: Vec<_> = CompoundIter::new(&b[..n]).map(|p| p.unwrap()).collect();
            let mut got = vec![];
            pk[0].for_each_sdes_item(|s, i| got.push((s, i.kind, i.text.to_vec())));
            let want: Vec<_> = chunks.iter().flat_map(|(s, its)| its.iter().map(move |(k, t)| (*s, *k, t.clone()))).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(pk[0].count() as usize, chunks.len());
            prop_assert_eq!(pk[1].bye_ssrcs().collect::<Vec<_>>(), ssrcs.clone());
            prop_assert_eq!(pk[1].bye_reason(), reason.as_deref());
            prop_assert_eq!(pk[2].app_name(), Some(name));
            prop_assert_eq!(pk[2].app_data(), Some(&data[..]));
            prop_assert_eq!(pk[2].count(), sub);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = validate_compound(&b, true);
            for p in CompoundIter::new(&b) {
                let Ok(p) = p else { break };
                let _ = (p.ssrc(), p.sender_info(), p.report_blocks().count(), p.bye_ssrcs().count(), p.bye_reason(), p.app_name(), p.app_data(), p.body());
                p.for_each_sdes_item(|_, _| {});
            }
        }
    }
}
