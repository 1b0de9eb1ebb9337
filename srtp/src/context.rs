//! [`SrtpContext`]: one direction of one leg, with per-SSRC roll-over and replay state.

use aes::Aes128Enc;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use cipher::{InnerIvInit, StreamCipherCore};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::header::{be32, parse_rtcp, parse_rtp, RTCP_FIXED, RTP_FIXED};
use crate::kdf::{derive, Label};
use crate::replay::{estimate_index, Window};
use crate::{Error, Suite};

type HmacSha1 = Hmac<Sha1>;

/// How many SSRCs one context tracks (separately for SRTP and SRTCP).
///
/// When a packet of a new SSRC authenticates and all slots are taken, the least
/// recently used SSRC is evicted (counted by [`SrtpContext::ssrc_evictions`]).
/// Eviction rather than refusal because a trunk leg sees SSRC changes over a long
/// call (transfers, music on hold): refusing would silence the call after a few.
/// Only authenticated packets create state, so an attacker without the key cannot
/// force evictions. The price: the replay state of an evicted SSRC is forgotten.
pub const MAX_SSRCS: usize = 8;

/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// AES-CM may run at most 2^16 keystream blocks under one IV (RFC 3711 §4.1.1).
const MAX_CM_PAYLOAD: usize = 16 << 16;

/// Session keys of one of SRTP or SRTCP, with key schedules and the HMAC pads
/// precomputed.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Keys {
    Cm {
        aes: Aes128Enc,
        salt: [u8; 14],
        /// HMAC-SHA1 already keyed: holds the hashed ipad/opad blocks; cloned per packet.
        mac: HmacSha1,
    },
    Gcm128 {
        aead: Aes128Gcm,
        salt: [u8; 12],
    },
    Gcm256 {
        aead: Aes256Gcm,
        salt: [u8; 12],
    },
}

impl Keys {
    fn derive(suite: Suite, master_key: &[u8], master_salt: &[u8], rtcp: bool) -> Keys {
        let (le, la, ls) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
        };
        match suite {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => {
                let mut k = [0u8; 16];
                let mut a = [0u8; 20];
                let mut salt = [0u8; 14];
                derive(master_key, master_salt, le, &mut k);
                derive(master_key, master_salt, la, &mut a);
                derive(master_key, master_salt, ls, &mut salt);
                let keys = Keys::cm(&k, &a, salt);
                k.fill(0);
                a.fill(0);
                keys
            }
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => {
                let mut k = [0u8; 32];
                let k = &mut k[..suite.key_len()];
                let mut salt = [0u8; 12];
                derive(master_key, master_salt, le, k);
                derive(master_key, master_salt, ls, &mut salt);
                let keys = Keys::gcm(k, salt);
                k.fill(0);
                keys
            }
        }
    }

    fn cm(key: &[u8; 16], auth: &[u8], salt: [u8; 14]) -> Keys {
        Keys::Cm {
            aes: Aes128Enc::new(key.into()),
            salt,
            // HMAC accepts keys of any length; this cannot fail.
            mac: <HmacSha1 as Mac>::new_from_slice(auth).unwrap_or_else(|_| unreachable!()),
        }
    }

    /// `key` is 16 or 32 bytes (checked by the callers).
    fn gcm(key: &[u8], salt: [u8; 12]) -> Keys {
        if key.len() == 32 {
            Keys::Gcm256 { aead: Aes256Gcm::new(key.into()), salt }
        } else {
            Keys::Gcm128 { aead: Aes128Gcm::new(key.into()), salt }
        }
    }
}

/// Replay window of one SSRC; for a sender, `win.top` is the last index used.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ssrc: u32,
    used: bool,
    last_use: u64,
    win: Window,
}

/// A fixed table of per-SSRC states, LRU-evicting.
#[derive(Debug, Clone)]
struct Table {
    slots: [Slot; MAX_SSRCS],
    /// Slot of the last hit: most packets belong to the same SSRC as the previous one.
    hint: usize,
}

impl Table {
    fn new() -> Self {
        Table { slots: [Slot::default(); MAX_SSRCS], hint: 0 }
    }

    #[inline]
    fn find(&mut self, ssrc: u32) -> Option<usize> {
        if let Some(s) = self.slots.get(self.hint) {
            if s.used && s.ssrc == ssrc {
                return Some(self.hint);
            }
        }
        let i = self.slots.iter().position(|s| s.used && s.ssrc == ssrc)?;
        self.hint = i;
        Some(i)
    }

    /// Window of slot `i` (from [`Table::find`]).
    #[inline]
    fn win(&self, i: usize) -> Option<&Window> {
        self.slots.get(i).map(|s| &s.win)
    }

    #[inline]
    fn accept(&mut self, i: usize, index: u64, tick: u64) {
        if let Some(s) = self.slots.get_mut(i) {
            s.win.accept(index);
            s.last_use = tick;
        }
    }

    /// Adds `ssrc` with a window starting at `index`; returns true if it evicted one.
    fn insert(&mut self, ssrc: u32, index: u64, tick: u64) -> bool {
        let (i, evicted) = match self.slots.iter().position(|s| !s.used) {
            Some(i) => (i, false),
            None => {
                let lru = self.slots.iter().enumerate().min_by_key(|(_, s)| s.last_use).map_or(0, |(i, _)| i);
                (lru, true)
            }
        };
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot { ssrc, used: true, last_use: tick, win: Window::starting_at(index) };
            self.hint = i;
        }
        evicted
    }
}

/// An SRTP/SRTCP crypto context for one direction of one leg (RFC 3711, RFC 7714).
///
/// Sans-IO: bytes in, bytes out, in place in the caller's buffer; no allocation, no
/// clock. Session keys are derived once in [`SrtpContext::new`] (KDR 0) and all cipher
/// key schedules and HMAC pads are precomputed there.
///
/// A context tracks up to [`MAX_SSRCS`] SSRCs for SRTP and as many for SRTCP:
/// roll-over counter, highest index and a 128-packet replay window each.
/// On the receive side a new SSRC starts with ROC 0 and its first authenticated packet
/// sets the highest index. On the send side the same index estimation runs over the
/// outgoing sequence numbers; protect does not refuse an index it used before (a relay
/// may legitimately resend the same packet), so do not feed it different payloads
/// under one sequence number.
///
/// On any error the context state is unchanged and the buffer holds the input packet.
#[derive(Clone)]
pub struct SrtpContext {
    suite: Suite,
    rtp: Keys,
    rtcp: Keys,
    rtp_streams: Table,
    rtcp_streams: Table,
    tick: u64,
    evictions: u64,
}

impl core::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // No key material in logs.
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("ssrc_evictions", &self.evictions)
            .finish_non_exhaustive()
    }
}

/// IV of AES-CM: `salt * 2^16 XOR SSRC * 2^64 XOR index * 2^16` (RFC 3711 §4.1.1).
#[inline]
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= s;
    }
    iv
}

/// XORs the AES-CM keystream for `iv` into `data`, one pass over the blocks.
#[inline]
fn cm_apply(aes: &Aes128Enc, iv: &[u8; 16], data: &mut [u8]) -> Result<(), Error> {
    if data.len() > MAX_CM_PAYLOAD {
        return Err(Error::TooLong);
    }
    let core = ctr::CtrCore::<&Aes128Enc, ctr::flavors::Ctr128BE>::inner_iv_init(aes, iv.into());
    core.try_apply_keystream_partial(data.into()).map_err(|_| Error::TooLong)
}

/// HMAC-SHA1 over `parts`, from the pre-keyed state.
#[inline]
fn hmac_sha1(mac: &HmacSha1, a: &[u8], b: &[u8]) -> [u8; 20] {
    let mut m = mac.clone();
    m.update(a);
    m.update(b);
    m.finalize().into_bytes().into()
}

/// IV of AEAD SRTP: `(0x0000 || SSRC || ROC || SEQ) XOR salt` (RFC 7714 §8.1).
#[inline]
fn gcm_rtp_iv(salt: &[u8; 12], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

/// IV of AEAD SRTCP: `(0x0000 || SSRC || 0x0000 || 0 || index) XOR salt` (RFC 7714 §9.1).
#[inline]
fn gcm_rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&index.to_be_bytes());
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

fn gcm_seal<A: AeadInPlace<NonceSize = U12, TagSize = U16>>(
    aead: &A,
    iv: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
    tag_out: &mut [u8],
) -> Result<(), Error> {
    let tag = aead.encrypt_in_place_detached(iv.into(), aad, data).map_err(|_| Error::TooLong)?;
    let out = tag_out.get_mut(..16).ok_or(Error::TooShort)?;
    out.copy_from_slice(tag.as_slice());
    Ok(())
}

fn gcm_open<A: AeadInPlace<NonceSize = U12, TagSize = U16>>(
    aead: &A,
    iv: &[u8; 12],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8],
) -> Result<(), Error> {
    let tag: [u8; 16] = tag.try_into().map_err(|_| Error::TooShort)?;
    // aes-gcm computes and compares the tag (constant time) before it decrypts.
    aead.decrypt_in_place_detached(iv.into(), aad, data, (&tag).into()).map_err(|_| Error::AuthFailed)
}

/// Checks `len <= buf.len()` and room for `trailer` more bytes.
#[inline]
fn check_room(buf: &[u8], len: usize, trailer: usize) -> Result<(), Error> {
    if len > buf.len() {
        return Err(Error::LengthExceedsBuffer { len, buf: buf.len() });
    }
    let needed = len + trailer;
    if needed > buf.len() {
        return Err(Error::NoRoomForTrailer { needed, have: buf.len() });
    }
    Ok(())
}

impl SrtpContext {
    /// Derives the session keys (KDR 0) from the master key and salt of `suite`.
    pub fn new(suite: Suite, master_key: &[u8], master_salt: &[u8]) -> Result<Self, Error> {
        if master_key.len() != suite.key_len() {
            return Err(Error::BadKeyLength { expected: suite.key_len(), got: master_key.len() });
        }
        if master_salt.len() != suite.salt_len() {
            return Err(Error::BadSaltLength { expected: suite.salt_len(), got: master_salt.len() });
        }
        Ok(Self::with_keys(
            suite,
            Keys::derive(suite, master_key, master_salt, false),
            Keys::derive(suite, master_key, master_salt, true),
        ))
    }

    fn with_keys(suite: Suite, rtp: Keys, rtcp: Keys) -> Self {
        SrtpContext { suite, rtp, rtcp, rtp_streams: Table::new(), rtcp_streams: Table::new(), tick: 0, evictions: 0 }
    }

    /// A GCM context from session keys directly (RFC 7714 §16/§17 vectors give those).
    #[cfg(test)]
    pub(crate) fn from_gcm_session_keys(suite: Suite, key: &[u8], salt: [u8; 12]) -> Self {
        Self::with_keys(suite, Keys::gcm(key, salt), Keys::gcm(key, salt))
    }

    /// Makes the next SRTCP packet of `ssrc` carry `index` (tests only).
    #[cfg(test)]
    pub(crate) fn set_next_srtcp_index(&mut self, ssrc: u32, index: u32) {
        self.rtcp_streams.insert(ssrc, u64::from(index) - 1, 0);
    }

    /// The suite of this context.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// How many SSRC states were evicted to make room for a new SSRC (see [`MAX_SSRCS`]).
    pub fn ssrc_evictions(&self) -> u64 {
        self.evictions
    }

    /// The roll-over counter of `ssrc` on the SRTP side, if the context tracks it.
    pub fn roc(&mut self, ssrc: u32) -> Option<u32> {
        let i = self.rtp_streams.find(ssrc)?;
        self.rtp_streams.win(i).map(|w| (w.top >> 16) as u32)
    }

    #[inline]
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn commit(table: &mut Table, evictions: &mut u64, tick: u64, slot: Option<usize>, ssrc: u32, index: u64) {
        match slot {
            Some(i) => table.accept(i, index, tick),
            None => {
                if table.insert(ssrc, index, tick) {
                    *evictions += 1;
                }
            }
        }
    }

    /// Protects the RTP packet in `buf[..len]` in place and appends the tag.
    ///
    /// `buf` must have [`Suite::rtp_tag_len`] (at most [`crate::MAX_TRAILER`]) spare
    /// bytes after `len`. Returns the SRTP packet length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_tag_len();
        check_room(buf, len, tag_len)?;
        let (pkt, rest) = buf.split_at_mut(len);
        let hdr = parse_rtp(pkt)?;
        let slot = self.rtp_streams.find(hdr.ssrc);
        let index = match slot.and_then(|i| self.rtp_streams.win(i)) {
            Some(w) => estimate_index(w.top, hdr.seq)?,
            None => u64::from(hdr.seq),
        };
        let trailer = rest.get_mut(..tag_len).ok_or(Error::TooShort)?;
        match &self.rtp {
            Keys::Cm { aes, salt, mac } => {
                let payload = pkt.get_mut(hdr.len..).ok_or(Error::HeaderOverrun)?;
                cm_apply(aes, &cm_iv(salt, hdr.ssrc, index), payload)?;
                let roc = ((index >> 16) as u32).to_be_bytes();
                let full = hmac_sha1(mac, pkt, &roc);
                trailer.copy_from_slice(full.get(..tag_len).ok_or(Error::TooShort)?);
            }
            Keys::Gcm128 { aead, salt } => {
                let (head, payload) = pkt.split_at_mut(hdr.len);
                gcm_seal(aead, &gcm_rtp_iv(salt, hdr.ssrc, index), head, payload, trailer)?;
            }
            Keys::Gcm256 { aead, salt } => {
                let (head, payload) = pkt.split_at_mut(hdr.len);
                gcm_seal(aead, &gcm_rtp_iv(salt, hdr.ssrc, index), head, payload, trailer)?;
            }
        }
        let tick = self.next_tick();
        Self::commit(&mut self.rtp_streams, &mut self.evictions, tick, slot, hdr.ssrc, index);
        Ok(len + tag_len)
    }

    /// Authenticates, replay-checks and decrypts the SRTP packet that is all of `buf`,
    /// in place. Returns the RTP packet length (the tag is left behind it).
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_tag_len();
        if buf.len() < RTP_FIXED + tag_len {
            return Err(Error::TooShort);
        }
        let (pkt, tag) = buf.split_at_mut(buf.len() - tag_len);
        let hdr = parse_rtp(pkt)?;
        let slot = self.rtp_streams.find(hdr.ssrc);
        let index = match slot.and_then(|i| self.rtp_streams.win(i)) {
            Some(w) => {
                let index = estimate_index(w.top, hdr.seq)?;
                w.check(index)?;
                index
            }
            None => u64::from(hdr.seq),
        };
        match &self.rtp {
            Keys::Cm { aes, salt, mac } => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                let full = hmac_sha1(mac, pkt, &roc);
                let expected = full.get(..tag_len).ok_or(Error::TooShort)?;
                if !bool::from(expected.ct_eq(tag)) {
                    return Err(Error::AuthFailed);
                }
                let payload = pkt.get_mut(hdr.len..).ok_or(Error::HeaderOverrun)?;
                cm_apply(aes, &cm_iv(salt, hdr.ssrc, index), payload)?;
            }
            Keys::Gcm128 { aead, salt } => {
                let (head, payload) = pkt.split_at_mut(hdr.len);
                gcm_open(aead, &gcm_rtp_iv(salt, hdr.ssrc, index), head, payload, tag)?;
            }
            Keys::Gcm256 { aead, salt } => {
                let (head, payload) = pkt.split_at_mut(hdr.len);
                gcm_open(aead, &gcm_rtp_iv(salt, hdr.ssrc, index), head, payload, tag)?;
            }
        }
        let tick = self.next_tick();
        Self::commit(&mut self.rtp_streams, &mut self.evictions, tick, slot, hdr.ssrc, index);
        Ok(buf.len() - tag_len)
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place (always encrypted,
    /// E = 1) and appends the SRTCP index word and the tag (GCM: tag then index).
    ///
    /// `buf` must have [`Suite::rtcp_trailer_len`] (at most [`crate::MAX_TRAILER`])
    /// spare bytes after `len`. Returns the SRTCP packet length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let trailer_len = self.suite.rtcp_trailer_len();
        check_room(buf, len, trailer_len)?;
        let (pkt, rest) = buf.split_at_mut(len);
        let ssrc = parse_rtcp(pkt)?;
        let slot = self.rtcp_streams.find(ssrc);
        let index = match slot.and_then(|i| self.rtcp_streams.win(i)) {
            Some(w) => w.top + 1,
            None => 0,
        };
        if index > u64::from(MAX_SRTCP_INDEX) {
            return Err(Error::IndexExhausted);
        }
        let index32 = index as u32;
        let word = (0x8000_0000 | index32).to_be_bytes();
        let trailer = rest.get_mut(..trailer_len).ok_or(Error::TooShort)?;
        match &self.rtcp {
            Keys::Cm { aes, salt, mac } => {
                let body = pkt.get_mut(RTCP_FIXED..).ok_or(Error::TooShort)?;
                cm_apply(aes, &cm_iv(salt, ssrc, index), body)?;
                let (w, t) = trailer.split_at_mut(4);
                w.copy_from_slice(&word);
                let full = hmac_sha1(mac, pkt, &word);
                t.copy_from_slice(full.get(..t.len()).ok_or(Error::TooShort)?);
            }
            Keys::Gcm128 { aead, salt } => {
                Self::gcm_seal_rtcp(aead, salt, ssrc, index32, word, pkt, trailer)?;
            }
            Keys::Gcm256 { aead, salt } => {
                Self::gcm_seal_rtcp(aead, salt, ssrc, index32, word, pkt, trailer)?;
            }
        }
        let tick = self.next_tick();
        Self::commit(&mut self.rtcp_streams, &mut self.evictions, tick, slot, ssrc, index);
        Ok(len + trailer_len)
    }

    fn gcm_seal_rtcp<A: AeadInPlace<NonceSize = U12, TagSize = U16>>(
        aead: &A,
        salt: &[u8; 12],
        ssrc: u32,
        index: u32,
        word: [u8; 4],
        pkt: &mut [u8],
        trailer: &mut [u8],
    ) -> Result<(), Error> {
        // AAD = the 8-byte RTCP header || E-flag and index (RFC 7714 §9.2).
        let (head, body) = pkt.split_at_mut(RTCP_FIXED.min(pkt.len()));
        let mut aad = [0u8; RTCP_FIXED + 4];
        aad.get_mut(..RTCP_FIXED).ok_or(Error::TooShort)?.copy_from_slice(head);
        aad[RTCP_FIXED..].copy_from_slice(&word);
        let (t, w) = trailer.split_at_mut(16.min(trailer.len()));
        gcm_seal(aead, &gcm_rtcp_iv(salt, ssrc, index), &aad, body, t)?;
        w.get_mut(..4).ok_or(Error::TooShort)?.copy_from_slice(&word);
        Ok(())
    }

    /// Authenticates, replay-checks and (if the E flag is set) decrypts the SRTCP packet
    /// that is all of `buf`, in place. Returns the RTCP packet length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let tag_len = self.suite.rtcp_tag_len();
        let trailer_len = tag_len + 4;
        if buf.len() < RTCP_FIXED + trailer_len {
            return Err(Error::TooShort);
        }
        let len = buf.len() - trailer_len;
        let ssrc = parse_rtcp(buf.get(..len).ok_or(Error::TooShort)?)?;
        // AES-CM: packet || E+index || tag. AEAD: packet || tag || E+index.
        let word_at = if self.suite.is_aead() { len + tag_len } else { len };
        let word = be32(buf, word_at).ok_or(Error::TooShort)?;
        let encrypted = word & 0x8000_0000 != 0;
        let index = u64::from(word & MAX_SRTCP_INDEX);
        let slot = self.rtcp_streams.find(ssrc);
        if let Some(w) = slot.and_then(|i| self.rtcp_streams.win(i)) {
            w.check(index)?;
        }
        match &self.rtcp {
            Keys::Cm { aes, salt, mac } => {
                let (authed, tag) = buf.split_at_mut(len + 4);
                let full = hmac_sha1(mac, authed, &[]);
                let expected = full.get(..tag_len).ok_or(Error::TooShort)?;
                if !bool::from(expected.ct_eq(tag)) {
                    return Err(Error::AuthFailed);
                }
                if encrypted {
                    let body = authed.get_mut(RTCP_FIXED..len).ok_or(Error::TooShort)?;
                    cm_apply(aes, &cm_iv(salt, ssrc, index), body)?;
                }
            }
            Keys::Gcm128 { aead, salt } => {
                Self::gcm_open_rtcp(aead, salt, ssrc, word, encrypted, buf, len)?;
            }
            Keys::Gcm256 { aead, salt } => {
                Self::gcm_open_rtcp(aead, salt, ssrc, word, encrypted, buf, len)?;
            }
        }
        let tick = self.next_tick();
        Self::commit(&mut self.rtcp_streams, &mut self.evictions, tick, slot, ssrc, index);
        Ok(len)
    }

    fn gcm_open_rtcp<A: AeadInPlace<NonceSize = U12, TagSize = U16>>(
        aead: &A,
        salt: &[u8; 12],
        ssrc: u32,
        word: u32,
        encrypted: bool,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(), Error> {
        let iv = gcm_rtcp_iv(salt, ssrc, word & MAX_SRTCP_INDEX);
        let wb = word.to_be_bytes();
        let tag: [u8; 16] = buf.get(len..len + 16).and_then(|t| t.try_into().ok()).ok_or(Error::TooShort)?;
        if encrypted {
            let mut aad = [0u8; RTCP_FIXED + 4];
            aad[..RTCP_FIXED].copy_from_slice(buf.get(..RTCP_FIXED).ok_or(Error::TooShort)?);
            aad[RTCP_FIXED..].copy_from_slice(&wb);
            let body = buf.get_mut(RTCP_FIXED..len).ok_or(Error::TooShort)?;
            gcm_open(aead, &iv, &aad, body, &tag)
        } else {
            // Unencrypted SRTCP: AAD = whole packet || E+index, no ciphertext. Make the
            // AAD contiguous by moving the index word over the tag; restore on failure.
            let aad = buf.get_mut(..len + 4).ok_or(Error::TooShort)?;
            aad[len..].copy_from_slice(&wb);
            let r = gcm_open(aead, &iv, aad, &mut [], &tag);
            if r.is_err() {
                if let Some(t) = buf.get_mut(len..len + 16) {
                    t.copy_from_slice(&tag);
                }
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    const GCM_SALT: &str = "517569642070726f2071756f";
    const RTP_PLAIN: &str = concat!(
        "8040f17b8041f8d35501a0b2",
        "47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573"
    );
    const RTCP_PLAIN: &str = concat!(
        "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61",
        "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
    );

    fn salt12() -> [u8; 12] {
        hex(GCM_SALT).try_into().unwrap()
    }

    fn gcm_ctx(suite: Suite) -> SrtpContext {
        let key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        SrtpContext::from_gcm_session_keys(suite, &key[..suite.key_len()], salt12())
    }

    #[test]
    fn rfc7714_ivs() {
        // §16.1 and §17.1 worked IVs.
        assert_eq!(gcm_rtp_iv(&salt12(), 0x5501_a0b2, 0xf17b)[..], hex("51753c6580c2726f20718414")[..]);
        assert_eq!(gcm_rtcp_iv(&salt12(), 0x4d61_7273, 0x5d4)[..], hex("517524055203726f207170bb")[..]);
    }

    fn check_rtp_vector(suite: Suite, expected: &str) {
        let plain = hex(RTP_PLAIN);
        let expected = hex(expected);
        let mut buf = [0u8; 128];
        buf[..plain.len()].copy_from_slice(&plain);
        let mut tx = gcm_ctx(suite);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_eq!(buf[..n], expected[..], "{suite} RTP protect");
        let mut rx = gcm_ctx(suite);
        let mut p = expected.clone();
        let m = rx.unprotect_rtp(&mut p).unwrap();
        assert_eq!(p[..m], plain[..], "{suite} RTP unprotect");
        // replay of the same packet is refused
        let mut again = expected.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(Error::Replayed));
        // any flipped bit fails authentication and leaves the context usable
        for bit in [0usize, 8 * 13, 8 * (expected.len() - 1)] {
            let mut bad = expected.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let mut rx = gcm_ctx(suite);
            assert_eq!(rx.unprotect_rtp(&mut bad), Err(Error::AuthFailed));
        }
    }

    /// RFC 7714 §16.1.1 (AEAD_AES_128_GCM) and §16.2.1 (AEAD_AES_256_GCM).
    #[test]
    fn rfc7714_rtp_vectors() {
        check_rtp_vector(
            Suite::AeadAes128Gcm,
            concat!(
                "8040f17b8041f8d35501a0b2",
                "f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833",
                "899d7f27beb16a9152cf765ee4390cce"
            ),
        );
        check_rtp_vector(
            Suite::AeadAes256Gcm,
            concat!(
                "8040f17b8041f8d35501a0b2",
                "32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b",
                "7aa3db36dfffd6b0f9bb7878d7a76c13"
            ),
        );
    }

    fn check_rtcp_vector(suite: Suite, expected: &str) {
        let plain = hex(RTCP_PLAIN);
        let expected = hex(expected);
        let mut buf = [0u8; 128];
        buf[..plain.len()].copy_from_slice(&plain);
        let mut tx = gcm_ctx(suite);
        tx.set_next_srtcp_index(0x4d61_7273, 0x5d4);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        assert_eq!(buf[..n], expected[..], "{suite} RTCP protect");
        let mut rx = gcm_ctx(suite);
        let mut p = expected.clone();
        let m = rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!(p[..m], plain[..], "{suite} RTCP unprotect");
        let mut again = expected.clone();
        assert_eq!(rx.unprotect_rtcp(&mut again), Err(Error::Replayed));
        let mut bad = expected.clone();
        bad[10] ^= 0x40;
        assert_eq!(gcm_ctx(suite).unprotect_rtcp(&mut bad), Err(Error::AuthFailed));
        // Flipping the E flag changes the AAD and the layout: authentication fails.
        let mut bad = expected.clone();
        let last = bad.len() - 4;
        bad[last] ^= 0x80;
        assert_eq!(gcm_ctx(suite).unprotect_rtcp(&mut bad), Err(Error::AuthFailed));
        assert_eq!(bad[..last], expected[..last], "buffer restored after failure");
    }

    /// RFC 7714 §17.1.1 (AEAD_AES_128_GCM) and §17.2.1 (AEAD_AES_256_GCM), SRTCP index 0x5d4.
    #[test]
    fn rfc7714_rtcp_vectors() {
        check_rtcp_vector(
            Suite::AeadAes128Gcm,
            concat!(
                "81c8000d4d617273",
                "63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda",
                "4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade",
                "800005d4"
            ),
        );
        check_rtcp_vector(
            Suite::AeadAes256Gcm,
            concat!(
                "81c8000d4d617273",
                "d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be",
                "8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be",
                "800005d4"
            ),
        );
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream for session key/salt and index 0,
    /// SSRC 0, produced by the same code path as packet encryption.
    #[test]
    fn rfc3711_b2_keystream() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
        let aes = Aes128Enc::new((&key).into());
        let iv = cm_iv(&salt, 0, 0);
        assert_eq!(iv[..], hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")[..]);
        let mut ks = vec![0u8; 0xff02 * 16];
        cm_apply(&aes, &iv, &mut ks).unwrap();
        let block = |i: usize| ks[i * 16..(i + 1) * 16].to_vec();
        assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xfeff), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xff00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xff01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    fn rtp(seq: u16, ssrc: u32, payload: &[u8], buf: &mut [u8]) -> usize {
        buf[0] = 0x80;
        buf[1] = 0;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
        buf[12..12 + payload.len()].copy_from_slice(payload);
        12 + payload.len()
    }

    fn pair(suite: Suite) -> (SrtpContext, SrtpContext) {
        let key: Vec<u8> = (0..suite.key_len() as u8).collect();
        let salt: Vec<u8> = (100..100 + suite.salt_len() as u8).collect();
        (SrtpContext::new(suite, &key, &salt).unwrap(), SrtpContext::new(suite, &key, &salt).unwrap())
    }

    #[test]
    fn roc_advances_across_wrap_and_reordering_works() {
        for suite in Suite::ALL {
            let (mut tx, mut rx) = pair(suite);
            let mut wire = Vec::new();
            for i in 0..20u32 {
                let seq = (65530 + i) as u16;
                let mut buf = [0u8; 256];
                let n = rtp(seq, 7, &[i as u8; 33], &mut buf);
                let m = tx.protect_rtp(&mut buf, n).unwrap();
                wire.push((seq, buf[..m].to_vec()));
            }
            assert_eq!(tx.roc(7), Some(1));
            // deliver with a swap around the wrap point
            wire.swap(5, 6);
            for (seq, mut p) in wire.clone() {
                let n = rx.unprotect_rtp(&mut p).unwrap_or_else(|e| panic!("{suite} seq {seq}: {e}"));
                assert_eq!(&p[2..4], &seq.to_be_bytes());
                assert!(p[12..n].iter().all(|&b| b == p[12]));
            }
            assert_eq!(rx.roc(7), Some(1));
            for (_, mut p) in wire {
                assert_eq!(rx.unprotect_rtp(&mut p), Err(Error::Replayed));
            }
        }
    }

    #[test]
    fn too_old_and_window() {
        let (mut tx, mut rx) = pair(Suite::AesCm128HmacSha1_80);
        let mut pkts = Vec::new();
        for seq in 1000..1200u16 {
            let mut buf = [0u8; 64];
            let n = rtp(seq, 1, b"abcd", &mut buf);
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            pkts.push(buf[..m].to_vec());
        }
        let mut last = pkts[199].clone();
        rx.unprotect_rtp(&mut last).unwrap();
        let mut p = pkts[199 - 127].clone();
        assert!(rx.unprotect_rtp(&mut p).is_ok());
        let mut p = pkts[199 - 128].clone();
        assert_eq!(rx.unprotect_rtp(&mut p), Err(Error::TooOld));
    }

    #[test]
    fn srtcp_round_trip_all_suites_and_unencrypted_input() {
        for suite in Suite::ALL {
            let (mut tx, mut rx) = pair(suite);
            for i in 0..5u8 {
                let plain = hex(RTCP_PLAIN);
                let mut buf = [0u8; 128];
                buf[..plain.len()].copy_from_slice(&plain);
                buf[20] = i;
                let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
                assert_eq!(n, plain.len() + suite.rtcp_trailer_len());
                assert_ne!(buf[8..plain.len()], plain[8..]);
                let mut p = buf[..n].to_vec();
                let m = rx.unprotect_rtcp(&mut p).unwrap();
                assert_eq!(m, plain.len());
                assert_eq!(p[20], i);
                let mut p = buf[..n].to_vec();
                assert_eq!(rx.unprotect_rtcp(&mut p), Err(Error::Replayed));
            }
        }
    }

    #[test]
    fn cm_srtcp_unencrypted_accepted() {
        // Build an E=0 AES-CM SRTCP packet by hand with the derived RTCP auth key.
        let (_, mut rx) = pair(Suite::AesCm128HmacSha1_80);
        let Keys::Cm { mac, .. } = rx.rtcp.clone() else { unreachable!() };
        let plain = hex(RTCP_PLAIN);
        let mut p = plain.clone();
        p.extend_from_slice(&7u32.to_be_bytes());
        let t = hmac_sha1(&mac, &p, &[]);
        p.extend_from_slice(&t[..10]);
        let m = rx.unprotect_rtcp(&mut p).unwrap();
        assert_eq!(p[..m], plain[..]);
    }

    #[test]
    fn protect_errors() {
        let (mut tx, _) = pair(Suite::AesCm128HmacSha1_80);
        let mut buf = [0u8; 30];
        let n = rtp(1, 1, b"0123456789", &mut buf[..]);
        assert_eq!(n, 22);
        assert_eq!(tx.protect_rtp(&mut buf, 31), Err(Error::LengthExceedsBuffer { len: 31, buf: 30 }));
        assert_eq!(tx.protect_rtp(&mut buf, 22), Err(Error::NoRoomForTrailer { needed: 32, have: 30 }));
        assert_eq!(tx.protect_rtp(&mut buf, 11), Err(Error::TooShort));
        assert_eq!(tx.protect_rtcp(&mut buf, 7), Err(Error::TooShort));
        assert_eq!(tx.protect_rtp(&mut buf, 20), Ok(30));
        assert!(SrtpContext::new(Suite::AeadAes256Gcm, &[0; 16], &[0; 12]).is_err());
        assert!(SrtpContext::new(Suite::AesCm128HmacSha1_32, &[0; 16], &[0; 12]).is_err());
    }

    #[test]
    fn lru_eviction_counted() {
        let (mut tx, mut rx) = pair(Suite::AeadAes128Gcm);
        for ssrc in 0..(MAX_SSRCS as u32 + 3) {
            let mut buf = [0u8; 64];
            let n = rtp(5, ssrc, b"x", &mut buf);
            let m = tx.protect_rtp(&mut buf, n).unwrap();
            rx.unprotect_rtp(&mut buf[..m]).unwrap();
        }
        assert_eq!(rx.ssrc_evictions(), 3);
        assert_eq!(rx.roc(0), None);
        assert_eq!(rx.roc(MAX_SSRCS as u32 + 2), Some(0));
        // forged packets of new SSRCs create no state
        let mut junk = [0x80u8; 60];
        assert_eq!(rx.unprotect_rtp(&mut junk), Err(Error::AuthFailed));
        assert_eq!(rx.ssrc_evictions(), 3);
    }
}
