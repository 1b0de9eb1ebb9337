//! SRTP per leg, through `xtrunk-srtp`.
//!
//! A leg's [`LegCrypto`] names up to two key sets: `rx` (the peer's keys, from its SDP) to
//! unprotect what the peer sends us, and `tx` (our keys) to protect what we send it. Either may be
//! absent, so a session can bridge SRTP on one leg to plain RTP on the other. Contexts are built
//! when a session is created (or its keys change on Update) — never on the packet path — and
//! keep their roll-over counters and replay windows across Updates that leave the keys alone.

use xtrunk_ring::msg::{LegCrypto, SrtpKeys, SrtpSuite};
use xtrunk_srtp::{SrtpContext, Suite};

/// Per-leg SRTP contexts.
#[derive(Debug, Clone, Default)]
pub(crate) struct LegSrtp {
    /// Unprotects what this leg's peer sends.
    pub(crate) rx: Option<SrtpContext>,
    /// Protects what is sent to this leg's peer.
    pub(crate) tx: Option<SrtpContext>,
}

fn suite(s: SrtpSuite) -> Suite {
    match s {
        SrtpSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes128Gcm => Suite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm => Suite::AeadAes256Gcm,
    }
}

fn context(k: &SrtpKeys) -> Result<SrtpContext, xtrunk_srtp::Error> {
    let key = k.key.get(..k.suite.key_len()).unwrap_or(&k.key);
    let salt = k.salt.get(..k.suite.salt_len()).unwrap_or(&k.salt);
    SrtpContext::new(suite(k.suite), key, salt)
}

impl LegSrtp {
    /// Builds the contexts of one leg; `Err` when the keys cannot be used.
    pub(crate) fn new(crypto: &LegCrypto) -> Result<Self, xtrunk_srtp::Error> {
        Ok(Self { rx: crypto.rx.as_ref().map(context).transpose()?, tx: crypto.tx.as_ref().map(context).transpose()? })
    }
}

/// True when a leg's packets need no SRTP work.
pub(crate) fn is_plain(crypto: &LegCrypto) -> bool {
    crypto.rx.is_none() && crypto.tx.is_none()
}
