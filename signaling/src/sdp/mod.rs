//! SDP (RFC 4566) parsing and the offer/answer rewrite (RFC 3264) that anchors media on the relay.
//!
//! Sans-IO: text in, text and negotiated facts out. Only the first audio stream is relayed; other
//! streams are declined (port 0) so both sides keep the same m-line count. Each side sees only
//! the relay's address and port, our own `o=` line, codecs filtered to the trunks' allowed list in
//! preference order, its own payload-type numbers, and `ptime`/direction attributes. ICE, `a=rtcp`
//! and the other side's `a=crypto` are removed.
//!
//! SDES (RFC 4568): each leg's SRTP is negotiated on its own ([`accept_offer`],
//! [`add_offer_crypto`], [`add_answer_crypto`], [`answer_crypto`]) with keys we generate
//! ([`fresh_keys`]); the other leg's keys never cross. [`redact_keys`] hides `inline:` key
//! material, and the `Debug` forms of [`Sdp`] and [`MediaDesc`] use it.
//!
//! Cost: parsing, [`Sdp::remote`], the rewrites and [`negotiated`] are linear in the body (the
//! `a=rtpmap`/`a=fmtp` lines of a section are indexed by payload type once, encoding names are
//! matched through a map when the lists are long). [`Sdp::parse`] keeps to [`SdpLimits::DEFAULT`]
//! and refuses more with [`SdpError::TooLarge`] (488).

mod model;
mod rewrite;
mod sdes;
mod t38;

pub use model::{ptime_ms, MediaDesc, Remote, Sdp, SdpError, SdpLimits};
pub use rewrite::{
    add_telephone_event, codec_of, default_pt, fmtp_of, negotiated, offer_g729, rewrite_answer,
    rewrite_answer_bridging, rewrite_offer, Origin, Rewrite,
};
pub use sdes::{
    accept_offer, add_answer_crypto, add_offer_crypto, answer_crypto, answer_keys, answer_offer_crypto, crypto_lines,
    fresh_keys, redact_keys, ring_suite, sdes_suite, SdesLine, SrtpPrefs,
};
pub use t38::{rewrite_t38, t38_index, t38_leg};

/// An offer used by the tests of the submodules: RTP/AVP with a stray `a=crypto`, a second stream.
#[cfg(test)]
const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp:6005\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xx\r\na=sendonly\r\nm=video 6002 RTP/AVP 31\r\n";
