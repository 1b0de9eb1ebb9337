//! The one error type of the crate.
//!
//! Every packet-path failure is its own variant so the datapath can keep one drop
//! counter per reason ([`Error::label`] gives a stable short name for metrics).
//! The type is `Copy` and carries no heap data: returning it costs nothing.

/// Why a context could not be built, a packet could not be protected or unprotected,
/// or SDES key material could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- context creation -------------------------------------------------------
    /// The master key does not have the length the suite requires.
    #[error("master key is {got} bytes, the suite needs {expected}")]
    BadKeyLength {
        /// Length the suite requires.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The master salt does not have the length the suite requires.
    #[error("master salt is {got} bytes, the suite needs {expected}")]
    BadSaltLength {
        /// Length the suite requires.
        expected: usize,
        /// Length given.
        got: usize,
    },

    // --- caller errors on protect -------------------------------------------------
    /// `len` is larger than the buffer it claims to describe.
    #[error("packet length {len} exceeds the buffer ({buf} bytes)")]
    LengthExceedsBuffer {
        /// Claimed packet length.
        len: usize,
        /// Buffer length.
        buf: usize,
    },
    /// The buffer has no room after the packet for the trailer (tag, SRTCP index).
    #[error("no room for the SRTP trailer: need {needed} bytes, buffer has {have}")]
    NoRoomForTrailer {
        /// Bytes the protected packet needs.
        needed: usize,
        /// Bytes the buffer has.
        have: usize,
    },

    // --- malformed wire input -----------------------------------------------------
    /// Shorter than the fixed header plus the trailer the suite requires.
    #[error("packet too short")]
    TooShort,
    /// The RTP/RTCP version field is not 2.
    #[error("RTP/RTCP version is not 2")]
    BadVersion,
    /// The CSRC list or the header extension runs past the end of the packet.
    #[error("RTP header (CSRC list or extension) runs past the packet")]
    HeaderOverrun,

    // --- cryptographic / replay drops ---------------------------------------------
    /// The authentication tag (HMAC-SHA1 or GCM tag) did not verify.
    #[error("authentication failed")]
    AuthFailed,
    /// The packet index was already received (inside the replay window).
    #[error("replayed packet")]
    Replayed,
    /// The packet index is older than the replay window can tell about.
    #[error("packet index too old for the replay window")]
    TooOld,
    /// The packet index space of this key is used up (ROC or SRTCP index would wrap);
    /// the key must be renewed.
    #[error("packet index space exhausted, rekey needed")]
    IndexExhausted,
    /// The packet is longer than the cipher may process under one IV.
    #[error("packet too long for the cipher")]
    TooLong,

    // --- SDES (RFC 4568) signaling --------------------------------------------------
    /// The crypto attribute or key-params do not follow RFC 4568 syntax.
    #[error("SDES syntax error: {0}")]
    SdesSyntax(&'static str),
    /// The crypto-suite name is not one this crate implements.
    #[error("unsupported SDES crypto suite")]
    SdesUnknownSuite,
    /// The key||salt is not valid base64.
    #[error("SDES key is not valid base64")]
    SdesBase64,
    /// The decoded key||salt does not have the length the suite requires.
    #[error("SDES key||salt is {got} bytes, the suite needs {expected}")]
    SdesKeyLength {
        /// Length the suite requires.
        expected: usize,
        /// Length decoded.
        got: usize,
    },
    /// An MKI is present; this crate supports one master key per context, no MKI.
    #[error("SDES MKI is not supported")]
    SdesMkiUnsupported,
    /// A session parameter that cannot be honoured (KDR other than 0, UNENCRYPTED_*,
    /// UNAUTHENTICATED_SRTP, or an unknown mandatory parameter).
    #[error("unsupported SDES session parameter")]
    SdesUnsupportedParam,
}

impl Error {
    /// A short stable name, usable as a metrics label for drop counters.
    pub fn label(&self) -> &'static str {
        match self {
            Error::BadKeyLength { .. } => "bad_key_length",
            Error::BadSaltLength { .. } => "bad_salt_length",
            Error::LengthExceedsBuffer { .. } => "length_exceeds_buffer",
            Error::NoRoomForTrailer { .. } => "no_room_for_trailer",
            Error::TooShort => "too_short",
            Error::BadVersion => "bad_version",
            Error::HeaderOverrun => "header_overrun",
            Error::AuthFailed => "auth_failed",
            Error::Replayed => "replayed",
            Error::TooOld => "too_old",
            Error::IndexExhausted => "index_exhausted",
            Error::TooLong => "too_long",
            Error::SdesSyntax(_) => "sdes_syntax",
            Error::SdesUnknownSuite => "sdes_unknown_suite",
            Error::SdesBase64 => "sdes_base64",
            Error::SdesKeyLength { .. } => "sdes_key_length",
            Error::SdesMkiUnsupported => "sdes_mki_unsupported",
            Error::SdesUnsupportedParam => "sdes_unsupported_param",
        }
    }
}
