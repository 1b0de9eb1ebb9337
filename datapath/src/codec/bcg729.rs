//! A safe wrapper over `libbcg729` (G.729 Annex A encoder/decoder, Annex B VAD/DTX/CNG).
//!
//! # Safety
//! The only `unsafe` of the relay core. Usage rules the wrapper enforces:
//! - Each context is a pointer returned by `initBcg729{En,De}coderChannel`, checked non-null,
//!   owned by exactly one [`Encoder`]/[`Decoder`] and closed exactly once in `Drop`.
//! - A context is used by one thread at a time: the types are `Send` (the library keeps no
//!   global or thread-local state; a context is plain heap memory) but not `Sync`, and every call
//!   takes `&mut self`.
//! - Buffers handed to the library have the sizes its header documents: the encoder reads 80
//!   samples and writes at most 10 bytes; the decoder reads `bitStreamLength` bytes (we pass 0,
//!   2 or 10 from a slice of that length) and writes 80 samples.
//!
//! Creating a context allocates (inside the library): do it when a session is created.

use std::ptr::NonNull;

/// Samples in one G.729 frame (10 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 80;
/// Bytes of one G.729 speech frame.
pub const FRAME_BYTES: usize = 10;
/// Bytes of one G.729 Annex B SID (silence descriptor) frame.
pub const SID_BYTES: usize = 2;

#[repr(C)]
struct EncoderCtx {
    _private: [u8; 0],
}

#[repr(C)]
struct DecoderCtx {
    _private: [u8; 0],
}

#[link(name = "bcg729")]
extern "C" {
    fn initBcg729EncoderChannel(enable_vad: u8) -> *mut EncoderCtx;
    fn closeBcg729EncoderChannel(ctx: *mut EncoderCtx);
    fn bcg729Encoder(ctx: *mut EncoderCtx, input: *const i16, bitstream: *mut u8, len: *mut u8);
    fn initBcg729DecoderChannel() -> *mut DecoderCtx;
    fn closeBcg729DecoderChannel(ctx: *mut DecoderCtx);
    fn bcg729Decoder(
        ctx: *mut DecoderCtx,
        bitstream: *const u8,
        len: u8,
        frame_erasure: u8,
        sid_frame: u8,
        rfc3389_payload: u8,
        signal: *mut i16,
    );
}

/// The library returned no context (out of memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("libbcg729 could not create a codec context")]
pub struct InitError;

/// One G.729 encoder channel.
pub struct Encoder {
    ctx: NonNull<EncoderCtx>,
    vad: bool,
}

// SAFETY: the context is heap memory owned by this value alone; the library has no thread
// affinity. Not `Sync`: calls need `&mut self`.
unsafe impl Send for Encoder {}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("vad", &self.vad).finish_non_exhaustive()
    }
}

impl Encoder {
    /// A new encoder; `vad` enables Annex B (silence yields 2-byte SID frames or nothing).
    pub fn new(vad: bool) -> Result<Self, InitError> {
        // SAFETY: no preconditions; a null return is handled.
        let p = unsafe { initBcg729EncoderChannel(u8::from(vad)) };
        NonNull::new(p).map(|ctx| Self { ctx, vad }).ok_or(InitError)
    }

    /// Encodes one 10 ms frame into `out`; returns the bytes written: 10 (speech), 2 (SID) or 0
    /// (nothing to send; only with VAD).
    pub fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES], out: &mut [u8; FRAME_BYTES]) -> usize {
        let mut len = 0u8;
        // SAFETY: the context is live (owned, not yet closed); the library reads 80 samples from
        // `pcm` and writes at most 10 bytes to `out` and one to `len`, all valid for those sizes.
        unsafe { bcg729Encoder(self.ctx.as_ptr(), pcm.as_ptr(), out.as_mut_ptr(), &mut len) };
        usize::from(len).min(FRAME_BYTES)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context came from `initBcg729EncoderChannel` and is closed only here.
        unsafe { closeBcg729EncoderChannel(self.ctx.as_ptr()) }
    }
}

/// What one received G.729 frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A 10-byte speech frame.
    Speech(&'a [u8; FRAME_BYTES]),
    /// A 2-byte Annex B SID frame: comfort noise is generated from it.
    Sid(&'a [u8; SID_BYTES]),
    /// A lost frame (packet loss concealment) or a DTX gap (comfort noise continues).
    Erased,
}

/// One G.729 decoder channel.
pub struct Decoder {
    ctx: NonNull<DecoderCtx>,
}

// SAFETY: as for `Encoder`.
unsafe impl Send for Decoder {}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl Decoder {
    /// A new decoder.
    pub fn new() -> Result<Self, InitError> {
        // SAFETY: no preconditions; a null return is handled.
        let p = unsafe { initBcg729DecoderChannel() };
        NonNull::new(p).map(|ctx| Self { ctx }).ok_or(InitError)
    }

    /// Decodes one frame into 80 samples.
    pub fn decode(&mut self, frame: Frame<'_>, pcm: &mut [i16; FRAME_SAMPLES]) {
        let (ptr, len, erased, sid): (*const u8, u8, u8, u8) = match frame {
            Frame::Speech(b) => (b.as_ptr(), FRAME_BYTES as u8, 0, 0),
            Frame::Sid(b) => (b.as_ptr(), SID_BYTES as u8, 0, 1),
            Frame::Erased => (std::ptr::null(), 0, 1, 0),
        };
        // SAFETY: the context is live; the library reads `len` bytes from `ptr` (a slice of
        // exactly that length, or nothing when `len` is 0 and the frame is erased) and writes 80
        // samples to `pcm`.
        unsafe { bcg729Decoder(self.ctx.as_ptr(), ptr, len, erased, sid, 0, pcm.as_mut_ptr()) }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from `initBcg729DecoderChannel` and is closed only here.
        unsafe { closeBcg729DecoderChannel(self.ctx.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, f: f64) -> Vec<i16> {
        (0..n).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * f * i as f64 / 8000.0).sin()) as i16).collect()
    }

    #[test]
    fn round_trip_keeps_a_tone() {
        let mut enc = Encoder::new(false).unwrap();
        let mut dec = Decoder::new().unwrap();
        let src = tone(8000, 440.0);
        let mut out = Vec::new();
        for f in src.chunks_exact(FRAME_SAMPLES) {
            let mut bits = [0u8; FRAME_BYTES];
            assert_eq!(enc.encode(f.try_into().unwrap(), &mut bits), FRAME_BYTES);
            let mut pcm = [0i16; FRAME_SAMPLES];
            dec.decode(Frame::Speech(&bits), &mut pcm);
            out.extend_from_slice(&pcm);
        }
        let e: f64 = out[4000..].iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 4000.0;
        assert!(e.sqrt() > 2000.0, "decoded tone too quiet: rms {}", e.sqrt());
    }

    #[test]
    fn vad_sends_sid_or_nothing_on_silence_and_cng_decodes() {
        let mut enc = Encoder::new(true).unwrap();
        let mut dec = Decoder::new().unwrap();
        let silent = [0i16; FRAME_SAMPLES];
        let mut sizes = Vec::new();
        for _ in 0..50 {
            let mut bits = [0u8; FRAME_BYTES];
            let n = enc.encode(&silent, &mut bits);
            sizes.push(n);
            let mut pcm = [0i16; FRAME_SAMPLES];
            match n {
                FRAME_BYTES => dec.decode(Frame::Speech(&bits), &mut pcm),
                SID_BYTES => dec.decode(Frame::Sid(bits[..2].try_into().unwrap()), &mut pcm),
                _ => dec.decode(Frame::Erased, &mut pcm),
            }
        }
        assert!(sizes.iter().any(|&n| n < FRAME_BYTES), "VAD never went silent: {sizes:?}");
    }
}
