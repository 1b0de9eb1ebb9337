//! SRTP/SRTCP (RFC 3711, RFC 7714) contexts for the xtrunk datapath, sans-IO.
//!
//! - [`SrtpContext`]: one direction of one leg. In-place
//!   [`protect_rtp`](SrtpContext::protect_rtp) / [`unprotect_rtp`](SrtpContext::unprotect_rtp)
//!   and the RTCP pair on a caller-owned buffer, no allocation per packet, key schedules
//!   and HMAC pads precomputed at creation, per-SSRC roll-over counters and 128-packet
//!   replay windows in a fixed table ([`MAX_SSRCS`]).
//! - [`Suite`]: AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM,
//!   AEAD_AES_256_GCM; key derivation rate 0 only.
//! - SDES (RFC 4568) helpers: [`parse_sdes_crypto`], [`parse_sdes_inline`],
//!   [`format_sdes_crypto`], [`format_sdes_inline`].
//! - [`Error`]: one variant per drop reason, for per-reason counters.
//! - `libsrtp2` (feature `libsrtp2`, off by default): FFI to the system libsrtp2, the
//!   independent peer of the interop tests and the benchmark baseline.
//!
//! Invariants: unprotect authenticates before it decrypts and before it changes any
//! state; no function panics on wire input; `unsafe` lives only in the `libsrtp2` module.

#![cfg_attr(not(feature = "libsrtp2"), forbid(unsafe_code))]
#![cfg_attr(feature = "libsrtp2", deny(unsafe_code))]

mod context;
mod error;
mod header;
mod kdf;
#[cfg(feature = "libsrtp2")]
pub mod libsrtp2;
mod replay;
mod sdes;
mod suite;

pub use context::{SrtpContext, MAX_SSRCS};
pub use error::Error;
pub use replay::REPLAY_WINDOW;
pub use sdes::{format_sdes_crypto, format_sdes_inline, parse_sdes_crypto, parse_sdes_inline, SdesCrypto, SdesKey};
pub use suite::Suite;

/// Most bytes `protect_rtp` appends (the 16-byte AEAD tag).
pub const MAX_RTP_TRAILER: usize = 16;
/// Most bytes `protect_rtcp` appends (16-byte AEAD tag + 4-byte E/index word).
pub const MAX_RTCP_TRAILER: usize = 20;
/// Most bytes any protect call appends: reserve this much after every packet.
pub const MAX_TRAILER: usize = MAX_RTCP_TRAILER;

#[cfg(test)]
pub(crate) mod test_util {
    /// Hex (any case, whitespace ignored) to bytes.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        s.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()).collect()
    }
}
