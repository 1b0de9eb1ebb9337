//! RTCP Extended Reports (RFC 3611): the XR packet's report blocks and the VoIP Metrics block
//! (§4.7), which endpoints send with their own view of the call's quality.
//!
//! [`XrPacket`] views the body of one RTCP packet of type 207 (after the 4-byte RTCP header:
//! sender SSRC, then report blocks, each `BT`, type-specific byte, 16-bit length in words minus
//! one). [`VoipMetrics`] views one block of type 7 (32 bytes after its header). Both check once
//! in `new_checked`; no accessor can panic afterwards.

use super::rtcp::{packet_type, CompoundIter};
use super::{Error, Result};

/// Block type of the VoIP Metrics report block.
pub const VOIP_METRICS: u8 = 7;

mod field {
    pub(super) const SSRC_LEN: usize = 4;
    pub(super) const BLOCK_HEADER: usize = 4;
    /// VoIP Metrics block: its body after the block header.
    pub(super) const VOIP_BODY: usize = 32;
}

/// One report block of an XR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XrBlock<'a> {
    /// Block type (`BT`).
    pub block_type: u8,
    /// The type-specific byte.
    pub type_specific: u8,
    /// The block's contents after its 4-byte header.
    pub body: &'a [u8],
}

/// A view of an XR packet's body (after the RTCP header).
#[derive(Debug, Clone)]
pub struct XrPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> XrPacket<T> {
    /// Checks the sender SSRC is present and every block's length fits.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::SSRC_LEN {
            return Err(Error::Truncated);
        }
        let mut off = field::SSRC_LEN;
        while off < b.len() {
            let hdr = b.get(off..off + field::BLOCK_HEADER).ok_or(Error::Truncated)?;
            let len = (usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 1) * 4;
            if off + len > b.len() {
                return Err(Error::Truncated);
            }
            off += len;
        }
        Ok(Self { buffer })
    }

    /// The sender's SSRC.
    pub fn ssrc(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The report blocks, in order.
    pub fn blocks(&self) -> impl Iterator<Item = XrBlock<'_>> + '_ {
        let b = self.buffer.as_ref();
        let mut off = field::SSRC_LEN;
        std::iter::from_fn(move || {
            let hdr = b.get(off..off + field::BLOCK_HEADER)?;
            let len = (usize::from(u16::from_be_bytes([hdr[2], hdr[3]])) + 1) * 4;
            let body = b.get(off + field::BLOCK_HEADER..off + len)?;
            off += len;
            Some(XrBlock { block_type: hdr[0], type_specific: hdr[1], body })
        })
    }
}

/// A view of a VoIP Metrics block's body (RFC 3611 §4.7, the 32 bytes after the block header).
#[derive(Debug, Clone)]
pub struct VoipMetrics<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VoipMetrics<T> {
    /// Checks the length: exactly 32 bytes (block length 8).
    pub fn new_checked(buffer: T) -> Result<Self> {
        match buffer.as_ref().len() {
            field::VOIP_BODY => Ok(Self { buffer }),
            n if n < field::VOIP_BODY => Err(Error::Truncated),
            _ => Err(Error::Malformed),
        }
    }

    fn u8_at(&self, i: usize) -> u8 {
        self.buffer.as_ref()[i]
    }

    fn u16_at(&self, i: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[i], b[i + 1]])
    }

    /// The parsed block.
    pub fn repr(&self) -> VoipMetricsRepr {
        let b = self.buffer.as_ref();
        VoipMetricsRepr {
            ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            loss_rate: self.u8_at(4),
            discard_rate: self.u8_at(5),
            burst_density: self.u8_at(6),
            gap_density: self.u8_at(7),
            burst_duration_ms: self.u16_at(8),
            gap_duration_ms: self.u16_at(10),
            round_trip_delay_ms: self.u16_at(12),
            end_system_delay_ms: self.u16_at(14),
            signal_level: self.u8_at(16) as i8,
            noise_level: self.u8_at(17) as i8,
            rerl: self.u8_at(18),
            gmin: self.u8_at(19),
            r_factor: self.u8_at(20),
            ext_r_factor: self.u8_at(21),
            mos_lq: self.u8_at(22),
            mos_cq: self.u8_at(23),
            rx_config: self.u8_at(24),
            jb_nominal_ms: self.u16_at(26),
            jb_maximum_ms: self.u16_at(28),
            jb_abs_max_ms: self.u16_at(30),
        }
    }
}

/// The fields of a VoIP Metrics block (RFC 3611 §4.7; 127 = unavailable for R and MOS, 0 for
/// delays unknown). Rates and densities are fractions × 256; MOS values are × 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct VoipMetricsRepr {
    /// The source these metrics describe.
    pub ssrc: u32,
    pub loss_rate: u8,
    pub discard_rate: u8,
    pub burst_density: u8,
    pub gap_density: u8,
    pub burst_duration_ms: u16,
    pub gap_duration_ms: u16,
    /// The reporter's round-trip time estimate.
    pub round_trip_delay_ms: u16,
    pub end_system_delay_ms: u16,
    /// dBm0, signed.
    pub signal_level: i8,
    /// dBm0, signed.
    pub noise_level: i8,
    pub rerl: u8,
    pub gmin: u8,
    pub r_factor: u8,
    pub ext_r_factor: u8,
    pub mos_lq: u8,
    pub mos_cq: u8,
    pub rx_config: u8,
    pub jb_nominal_ms: u16,
    pub jb_maximum_ms: u16,
    pub jb_abs_max_ms: u16,
}

impl VoipMetricsRepr {
    /// Bytes [`emit`](Self::emit) writes: the block header and its body.
    pub const BUFFER_LEN: usize = field::BLOCK_HEADER + field::VOIP_BODY;

    /// Writes the whole block (header included) into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let out = buf.get_mut(..Self::BUFFER_LEN).ok_or(Error::BufferTooSmall)?;
        out[..4].copy_from_slice(&[VOIP_METRICS, 0, 0, 8]);
        out[4..8].copy_from_slice(&self.ssrc.to_be_bytes());
        out[8..12].copy_from_slice(&[self.loss_rate, self.discard_rate, self.burst_density, self.gap_density]);
        for (i, v) in [self.burst_duration_ms, self.gap_duration_ms, self.round_trip_delay_ms, self.end_system_delay_ms]
            .into_iter()
            .enumerate()
        {
            out[12 + 2 * i..14 + 2 * i].copy_from_slice(&v.to_be_bytes());
        }
        out[20..24].copy_from_slice(&[self.signal_level as u8, self.noise_level as u8, self.rerl, self.gmin]);
        out[24..28].copy_from_slice(&[self.r_factor, self.ext_r_factor, self.mos_lq, self.mos_cq]);
        out[28..30].copy_from_slice(&[self.rx_config, 0]);
        for (i, v) in [self.jb_nominal_ms, self.jb_maximum_ms, self.jb_abs_max_ms].into_iter().enumerate() {
            out[30 + 2 * i..32 + 2 * i].copy_from_slice(&v.to_be_bytes());
        }
        Ok(Self::BUFFER_LEN)
    }
}

/// The first VoIP Metrics block in a compound RTCP datagram, if any (invalid packets or blocks
/// are skipped: this is advisory input).
pub fn find_voip_metrics(compound: &[u8]) -> Option<VoipMetricsRepr> {
    CompoundIter::new(compound).map_while(|p| p.ok()).filter(|p| p.packet_type() == packet_type::XR).find_map(|p| {
        let xr = XrPacket::new_checked(p.body()).ok()?;
        let found = xr
            .blocks()
            .filter(|b| b.block_type == VOIP_METRICS)
            .find_map(|b| VoipMetrics::new_checked(b.body).ok().map(|v| v.repr()));
        found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTCP XR packet (sender 0x11) with one VoIP Metrics block.
    pub(crate) fn xr_packet(m: &VoipMetricsRepr) -> Vec<u8> {
        let mut b = vec![0x80, 207, 0, 10, 0, 0, 0, 0x11];
        let mut blk = [0u8; VoipMetricsRepr::BUFFER_LEN];
        m.emit(&mut blk).unwrap();
        b.extend_from_slice(&blk);
        b
    }

    #[test]
    fn round_trip_and_find() {
        let m = VoipMetricsRepr {
            ssrc: 0xabcd,
            loss_rate: 13,
            round_trip_delay_ms: 120,
            signal_level: -20,
            r_factor: 80,
            mos_lq: 39,
            mos_cq: 38,
            jb_nominal_ms: 40,
            jb_abs_max_ms: 200,
            ..Default::default()
        };
        let p = xr_packet(&m);
        assert_eq!(p.len(), 44);
        // After a receiver report, in one compound.
        let mut c = vec![0x80, 201, 0, 1, 0, 0, 0, 1];
        c.extend_from_slice(&p);
        assert_eq!(super::super::rtcp::validate_compound(&c, false), Ok(2));
        assert_eq!(find_voip_metrics(&c), Some(m));
        // A truncated block or a wrong block length is not read.
        let mut bad = p.clone();
        bad[11] = 9;
        assert_eq!(find_voip_metrics(&bad), None);
        assert!(XrPacket::new_checked(&p[4..40]).is_err());
        assert!(VoipMetrics::new_checked(&[0u8; 31][..]).is_err());
    }
}
