//! Typed zero-copy packet views (smoltcp `wire` style).
//!
//! Every view is a thin wrapper `Packet<T: AsRef<[u8]>>` over a byte buffer with a private
//! `mod field` of byte ranges. [`new_checked`](rtp::RtpPacket::new_checked) validates the buffer
//! once; after it succeeds no accessor can panic. Setters exist for `T: AsMut<[u8]>`. Each
//! protocol also has a `Repr`, a plain high-level description that can be `parse`d from a view and
//! `emit`ted into a caller-owned buffer (no allocation).
//!
//! Layers: [`ethernet`] (with one optional 802.1Q tag), [`ipv4`], [`ipv6`], [`udp`] (checksum
//! over the v4/v6 pseudo-header, see [`checksum`]), [`rtp`] (RFC 3550 incl. CSRC list, header
//! extension and padding, and the RFC 5761 demultiplexer), [`rtcp`] (SR, RR, SDES, BYE, APP and
//! compound iteration), [`rtcp_xr`] (RFC 3611 XR blocks, VoIP Metrics), [`udptl`] (T.38 UDPTL) and [`dtmf`] (RFC 4733 telephone-event payload).

pub mod checksum;
pub mod dtmf;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod rtcp;
pub mod rtcp_xr;
pub mod rtp;
pub mod udp;
pub mod udptl;

/// Why a buffer is not a valid packet of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header (or a length field) says.
    #[error("packet truncated: buffer shorter than its header or length field requires")]
    Truncated,
    /// A field holds a value the protocol does not allow (bad version, bad length, ...).
    #[error("malformed packet: a header field holds a value the protocol forbids")]
    Malformed,
    /// A well-formed packet of a kind this module does not handle (e.g. IPv6 extension headers).
    #[error("unsupported packet: well formed but of a kind this parser does not handle")]
    Unsupported,
    /// The caller's output buffer is too small for `emit`.
    #[error("output buffer too small to emit the packet")]
    BufferTooSmall,
}

/// Result of wire parsing and emitting.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian u16 at `off`; callers guarantee bounds (checked in `new_checked`).
#[inline]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// Reads a big-endian u32 at `off`; returns 0 out of bounds (never reached after `new_checked`).
#[inline]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Writes a big-endian u16 at `off` if in bounds.
#[inline]
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = b.get_mut(off..off + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Writes a big-endian u32 at `off` if in bounds.
#[inline]
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}
