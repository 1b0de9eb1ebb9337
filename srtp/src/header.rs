//! Minimal RTP/RTCP header reading: just what SRTP needs, bounds-checked, no panics.

use crate::Error;

/// Fixed RTP header length.
pub(crate) const RTP_FIXED: usize = 12;
/// RTCP header length covered but not encrypted by SRTCP (V/P/RC, PT, length, SSRC).
pub(crate) const RTCP_FIXED: usize = 8;

/// What SRTP reads from an RTP header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpHeader {
    /// Header length including the CSRC list and the extension.
    pub(crate) len: usize,
    /// Sequence number.
    pub(crate) seq: u16,
    /// Synchronisation source.
    pub(crate) ssrc: u32,
}

#[inline]
fn be16(p: &[u8], at: usize) -> Option<u16> {
    let b = p.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
pub(crate) fn be32(p: &[u8], at: usize) -> Option<u32> {
    let b = p.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses the header of the RTP packet `pkt` (which excludes any SRTP trailer).
#[inline]
pub(crate) fn parse_rtp(pkt: &[u8]) -> Result<RtpHeader, Error> {
    let (Some(&b0), Some(seq), Some(ssrc)) = (pkt.first(), be16(pkt, 2), be32(pkt, 8)) else {
        return Err(Error::TooShort);
    };
    if b0 >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    let cc = usize::from(b0 & 0x0f);
    let mut len = RTP_FIXED + 4 * cc;
    if b0 & 0x10 != 0 {
        let words = be16(pkt, len + 2).ok_or(Error::HeaderOverrun)?;
        len += 4 + 4 * usize::from(words);
    }
    if len > pkt.len() {
        return Err(Error::HeaderOverrun);
    }
    Ok(RtpHeader { len, seq, ssrc })
}

/// Reads the sender SSRC of the RTCP packet `pkt` (which excludes any SRTCP trailer).
#[inline]
pub(crate) fn parse_rtcp(pkt: &[u8]) -> Result<u32, Error> {
    let (Some(&b0), Some(ssrc)) = (pkt.first(), be32(pkt, 4)) else {
        return Err(Error::TooShort);
    };
    if b0 >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    Ok(ssrc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_lengths() {
        let mut p = [0u8; 40];
        p[0] = 0x80;
        p[2..4].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8..12].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        let h = parse_rtp(&p).unwrap();
        assert_eq!((h.len, h.seq, h.ssrc), (12, 0x1234, 0xdeadbeef));
        p[0] = 0x82; // 2 CSRCs
        assert_eq!(parse_rtp(&p).unwrap().len, 20);
        p[0] = 0x92; // + extension of 2 words at 20..24
        p[22..24].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(parse_rtp(&p).unwrap().len, 32);
        assert_eq!(parse_rtp(&p[..31]).unwrap_err(), Error::HeaderOverrun);
        assert_eq!(parse_rtp(&p[..21]).unwrap_err(), Error::HeaderOverrun);
        assert_eq!(parse_rtp(&p[..11]).unwrap_err(), Error::TooShort);
        p[0] = 0x40;
        assert_eq!(parse_rtp(&p).unwrap_err(), Error::BadVersion);
        p[0] = 0x8f; // 15 CSRCs = 72 bytes > 40
        assert_eq!(parse_rtp(&p).unwrap_err(), Error::HeaderOverrun);
    }
}
