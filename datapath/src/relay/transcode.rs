//! G.729 ↔ G.711 transcoding of one RTP payload in place, on per-session codec state.
//!
//! A session whose legs disagree (one leg negotiated G.729 and the other only G.711) gets one
//! [`Transcoder`] when it is created or updated: a G.729 decoder for what the G.729 leg sends and
//! an encoder for what it receives (see [`needs_transcoder`](super::needs_transcoder)). Only one leg can be the G.729 side,
//! so one of each is enough. Nothing here allocates: the codec contexts and the sample scratch
//! are made with the session.
//!
//! # Framing
//! - G.729 → G.711: the payload is zero or more 10-byte speech frames, optionally followed by one
//!   2-byte Annex B SID frame (RFC 3551 §4.5.6). Each speech frame decodes to 80 samples; a SID
//!   frame makes 80 samples of comfort noise, so a peer's DTX start is filled, not passed silent.
//!   The G.711 packet keeps the input's duration (ptime), timestamp, sequence number and SSRC.
//! - G.711 → G.729: the payload must be whole 10 ms frames (80 bytes each): 10, 20, 30 ms or
//!   more up to [`MAX_FRAMES`]; each becomes one 10-byte frame (the encoder runs without VAD, so
//!   it never emits SID: the G.729 leg may not have negotiated Annex B).
//!
//! Anything else is refused ([`TranscodeError`]) and the caller drops the packet.

use crate::codec::bcg729::{self, Decoder, Encoder, Frame, FRAME_BYTES, FRAME_SAMPLES, SID_BYTES};

use super::g711;

/// Most 10 ms frames one transcoded packet may carry (120 ms).
pub const MAX_FRAMES: usize = 12;

/// The G.711 law on the G.711 side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// A-law (PCMA).
    A,
    /// µ-law (PCMU).
    U,
}

/// Why a payload could not be transcoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TranscodeError {
    /// The payload is not a whole number of codec frames, is empty, or has more than
    /// [`MAX_FRAMES`].
    #[error("payload is not 1..={MAX_FRAMES} whole codec frames")]
    Framing,
    /// The result would not fit in the buffer.
    #[error("transcoded packet does not fit the buffer")]
    NoRoom,
}

/// Per-session codec state. See the module docs.
pub struct Transcoder {
    dec: Decoder,
    enc: Encoder,
    pcm: [i16; MAX_FRAMES * FRAME_SAMPLES],
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder").field("dec", &self.dec).field("enc", &self.enc).finish_non_exhaustive()
    }
}

/// Frames in a G.729 payload of `len` bytes: `(speech, sid)`.
pub fn g729_frames(len: usize) -> Result<(usize, bool), TranscodeError> {
    let (n, sid) = match len % FRAME_BYTES {
        0 => (len / FRAME_BYTES, false),
        SID_BYTES => (len / FRAME_BYTES, true),
        _ => return Err(TranscodeError::Framing),
    };
    let total = n + usize::from(sid);
    if total == 0 || total > MAX_FRAMES {
        return Err(TranscodeError::Framing);
    }
    Ok((n, sid))
}

/// Frames in a G.711 payload of `len` bytes.
pub fn g711_frames(len: usize) -> Result<usize, TranscodeError> {
    if len == 0 || !len.is_multiple_of(FRAME_SAMPLES) || len / FRAME_SAMPLES > MAX_FRAMES {
        return Err(TranscodeError::Framing);
    }
    Ok(len / FRAME_SAMPLES)
}

impl Transcoder {
    /// New codec state (allocates inside libbcg729: call when a session is created).
    pub fn new() -> Result<Box<Self>, bcg729::InitError> {
        Ok(Box::new(Self { dec: Decoder::new()?, enc: Encoder::new(false)?, pcm: [0; MAX_FRAMES * FRAME_SAMPLES] }))
    }

    /// Decodes the G.729 payload `buf[off..off + len]` and writes it back as G.711 (`law`) from
    /// `off`; returns the new payload length.
    pub fn g729_to_g711(&mut self, buf: &mut [u8], off: usize, len: usize, law: Law) -> Result<usize, TranscodeError> {
        let (n, sid) = g729_frames(len)?;
        let samples = (n + usize::from(sid)) * FRAME_SAMPLES;
        let end = off.checked_add(samples).ok_or(TranscodeError::NoRoom)?;
        if end > buf.len() || off + len > buf.len() {
            return Err(TranscodeError::NoRoom);
        }
        for (i, out) in self.pcm.chunks_exact_mut(FRAME_SAMPLES).take(n + usize::from(sid)).enumerate() {
            let out: &mut [i16; FRAME_SAMPLES] = out.try_into().map_err(|_| TranscodeError::Framing)?;
            let at = off + i * FRAME_BYTES;
            if i < n {
                let f: &[u8; FRAME_BYTES] =
                    buf[at..at + FRAME_BYTES].try_into().map_err(|_| TranscodeError::Framing)?;
                self.dec.decode(Frame::Speech(f), out);
            } else {
                let f: &[u8; SID_BYTES] = buf[at..at + SID_BYTES].try_into().map_err(|_| TranscodeError::Framing)?;
                self.dec.decode(Frame::Sid(f), out);
            }
        }
        let compress = match law {
            Law::A => g711::alaw_compress,
            Law::U => g711::ulaw_compress,
        };
        for (b, &s) in buf[off..end].iter_mut().zip(&self.pcm[..samples]) {
            *b = compress(s);
        }
        Ok(samples)
    }

    /// Encodes the G.711 (`law`) payload `buf[off..off + len]` and writes it back as G.729 from
    /// `off`; returns the new payload length.
    pub fn g711_to_g729(&mut self, buf: &mut [u8], off: usize, len: usize, law: Law) -> Result<usize, TranscodeError> {
        let n = g711_frames(len)?;
        let src = buf.get(off..off + len).ok_or(TranscodeError::NoRoom)?;
        let expand = match law {
            Law::A => g711::alaw_expand,
            Law::U => g711::ulaw_expand,
        };
        for (s, &b) in self.pcm.iter_mut().zip(src) {
            *s = expand(b);
        }
        let mut out = 0;
        for i in 0..n {
            let frame: &[i16; FRAME_SAMPLES] =
                self.pcm[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES].try_into().map_err(|_| TranscodeError::Framing)?;
            let mut bits = [0u8; FRAME_BYTES];
            let k = self.enc.encode(frame, &mut bits);
            buf[off + out..off + out + k].copy_from_slice(&bits[..k]);
            out += k;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_rules() {
        assert_eq!(g729_frames(20), Ok((2, false)));
        assert_eq!(g729_frames(22), Ok((2, true)));
        assert_eq!(g729_frames(2), Ok((0, true)));
        assert!(g729_frames(0).is_err());
        assert!(g729_frames(15).is_err());
        assert!(g729_frames(130).is_err());
        assert_eq!(g711_frames(240), Ok(3));
        assert!(g711_frames(100).is_err());
        assert!(g711_frames(0).is_err());
        assert!(g711_frames(80 * 13).is_err());
    }

    #[test]
    fn sizes_follow_ptime() {
        let mut x = Transcoder::new().unwrap();
        for frames in [1usize, 2, 3] {
            let mut buf = [0xD5u8; 1500];
            let n = x.g711_to_g729(&mut buf, 12, frames * 80, Law::A).unwrap();
            assert_eq!(n, frames * 10);
            let m = x.g729_to_g711(&mut buf, 12, n, Law::U).unwrap();
            assert_eq!(m, frames * 80);
        }
        let mut small = [0u8; 40];
        assert_eq!(x.g729_to_g711(&mut small, 12, 20, Law::U), Err(TranscodeError::NoRoom));
    }
}
