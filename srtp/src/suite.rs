//! The crypto suites (SDES names, RFC 4568 / RFC 7714) and their parameters.

/// An SRTP protection suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 3711, RFC 4568).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit RTP tag (80-bit SRTCP tag, RFC 4568 §6.2).
    AesCm128HmacSha1_32,
    /// AES-128 GCM with a 16-byte tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 GCM with a 16-byte tag (RFC 7714).
    AeadAes256Gcm,
}

impl Suite {
    /// All suites, in preference order (for offers).
    pub const ALL: [Suite; 4] =
        [Suite::AeadAes256Gcm, Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    /// Master key length in bytes (also the session encryption key length).
    pub fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            Suite::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes (14 for AES-CM, 12 for AEAD).
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Bytes `protect_rtp` appends (the authentication tag).
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// Length of the SRTCP authentication tag (80 bits for both AES-CM suites).
    pub fn rtcp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 10,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// Bytes `protect_rtcp` appends (tag plus the 4-byte E-flag/SRTCP index word).
    pub fn rtcp_trailer_len(self) -> usize {
        self.rtcp_tag_len() + 4
    }

    /// True for the RFC 7714 AEAD suites.
    pub fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// The crypto-suite name used in SDP `a=crypto` (RFC 4568, RFC 7714 §14.1).
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite of an SDES crypto-suite name (exact, case-sensitive as in RFC 4568).
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        Suite::ALL.into_iter().find(|s| s.sdes_name() == name)
    }
}

impl core::fmt::Display for Suite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.sdes_name())
    }
}
