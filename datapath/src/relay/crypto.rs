//! The SRTP seam of the relay.
//!
//! `xtrunk-srtp` is not ready yet, so [`supported`] accepts only legs without keys and the relay
//! refuses keyed specs with `ErrorCode::InvalidSpec`. When the SRTP crate lands:
//!
//! 1. build per-leg contexts here from [`LegCrypto`] (`rx` → an unprotect context for what the
//!    leg's peer sends, `tx` → a protect context for what we send it) and keep them in
//!    [`LegSrtp`] inside the session's leg state;
//! 2. in `Relay::handle_packet`, the two `SRTP seam` comments mark where to call
//!    `unprotect_rtp(&mut buf[..len])` on receive (before the RTP header is trusted for PT mapping)
//!    and `protect_rtp(&mut buf, len)` on transmit (after PT rewrite/transcoding, using the spare
//!    room after `len` for the tag); failures drop with `DropReason::Srtp`;
//! 3. make `supported` return true for the suites the crate implements;
//! 4. `Relay::fast_path_rule` already returns `None` for keyed legs.

use xtrunk_ring::msg::LegCrypto;

/// Per-leg SRTP contexts (empty until `xtrunk-srtp` is integrated).
#[derive(Debug, Clone, Default)]
pub(crate) struct LegSrtp {}

impl LegSrtp {
    /// Builds the contexts of one leg; `None` when the keys cannot be used.
    pub(crate) fn new(crypto: &LegCrypto) -> Option<Self> {
        supported(crypto).then_some(Self {})
    }
}

/// True when the relay can serve a leg with this crypto configuration.
pub(crate) fn supported(crypto: &LegCrypto) -> bool {
    // TODO(srtp): accept keyed legs once xtrunk-srtp provides protect/unprotect contexts.
    crypto.rx.is_none() && crypto.tx.is_none()
}

/// True when a leg's packets need no SRTP work.
pub(crate) fn is_plain(crypto: &LegCrypto) -> bool {
    crypto.rx.is_none() && crypto.tx.is_none()
}
