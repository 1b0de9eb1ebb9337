//! Re-packetising across ptimes (#18): when both legs state an `a=ptime`
//! ([`LegSpec::ptime_ms`](xtrunk_ring::msg::LegSpec::ptime_ms)) and they differ, audio toward
//! each leg is re-framed to the packet duration that leg asked for.
//!
//! Per destination leg a [`Reframer`] direction buffers the payload the relay is about to send
//! (after A↔µ conversion or transcoding, so in the destination's codec): G.711 (8 bytes per ms,
//! any whole number of bytes) or G.729 speech (10-byte frames, one per 10 ms). Each time a whole
//! packet's worth is buffered it goes out with a fresh 12-byte RTP header: the payload type and
//! SSRC of the input, the timestamp of its first sample, and the direction's own sequence
//! numbers (every packet forwarded in a re-framed direction takes the next one, so events and
//! CN in between keep the sequence whole). A shorter ptime than the input's makes more than one
//! packet from one input: the first is the [`Verdict`] of the input, the rest
//! are drained by [`Relay::poll_reframed`]. A longer one holds inputs until a packet is whole
//! (the input is then [`DropReason::Reframing`], not an error).
//!
//! A gap in the input's timestamps (loss, a new talkspurt), a change of payload type, SSRC or
//! codec, and a non-audio or odd-sized payload (telephone-event, CN, a G.729 SID frame) end
//! what was buffered: a partial packet is dropped rather than sent late or stitched across a
//! gap. Nothing allocates after the session is made: the buffers are part of it.

use xtrunk_ring::msg::{Codec, SessionSpec, MAX_PTIME_MS};

use super::{DropReason, Relay, Verdict};

/// Bytes one direction holds: one output packet short of a byte, plus the largest input payload
/// (120 ms of G.711).
const CAP: usize = 8 * MAX_PTIME_MS as usize * 2;
/// The RTP header of every re-framed packet (no CSRC, no extension).
const HDR: usize = 12;

/// What the relay is about to send, as far as re-framing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audio {
    /// G.711 (either law): 8 bytes per ms, one sample per byte.
    G711,
    /// G.729 speech frames: 1 byte per ms, 10-byte units, 8 samples per byte.
    G729,
}

impl Audio {
    /// The kind of audio `codec` carries, if it is re-framed.
    pub(super) fn of(codec: Option<Codec>) -> Option<Self> {
        match codec {
            Some(Codec::Pcma | Codec::Pcmu) => Some(Self::G711),
            Some(Codec::G729) => Some(Self::G729),
            _ => None,
        }
    }
    const fn bytes_per_ms(self) -> usize {
        match self {
            Self::G711 => 8,
            Self::G729 => 1,
        }
    }
    const fn unit(self) -> usize {
        match self {
            Self::G711 => 1,
            Self::G729 => 10,
        }
    }
    const fn samples_per_byte(self) -> u32 {
        match self {
            Self::G711 => 1,
            Self::G729 => 8,
        }
    }
}

/// What became of one packet handed to [`Reframer::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Not audio to re-frame: send it as it is (its sequence number renumbered); new length.
    Pass(usize),
    /// Buffered; nothing to send yet.
    Hold,
    /// `buf[..len]` is a re-framed packet; `more`: another whole one is buffered.
    Send {
        /// Length of the packet written.
        len: usize,
        /// Whether [`Relay::poll_reframed`] has more for this direction.
        more: bool,
    },
}

/// One direction (toward one leg).
#[derive(Clone)]
struct Dir {
    out_ms: u8,
    buf: [u8; CAP],
    len: usize,
    audio: Option<Audio>,
    pt: u8,
    ssrc: u32,
    /// Timestamp of `buf[0]`.
    ts: u32,
    /// Next sequence number; `None` until the first packet (we continue from its number).
    seq: Option<u16>,
}

impl Dir {
    fn new(out_ms: u8) -> Self {
        Self { out_ms, buf: [0; CAP], len: 0, audio: None, pt: 0, ssrc: 0, ts: 0, seq: None }
    }

    fn out_bytes(&self) -> usize {
        self.audio.map_or(usize::MAX, |a| usize::from(self.out_ms) * a.bytes_per_ms())
    }

    fn ready(&self) -> bool {
        self.len >= self.out_bytes()
    }

    fn next_seq(&mut self, theirs: u16) -> u16 {
        let s = self.seq.unwrap_or(theirs);
        self.seq = Some(s.wrapping_add(1));
        s
    }

    /// Writes the next packet into `buf`; its length, or `None` when not whole or no room.
    fn emit(&mut self, buf: &mut [u8]) -> Option<usize> {
        let (n, audio) = (self.out_bytes(), self.audio?);
        if self.len < n || buf.len() < HDR + n {
            return None;
        }
        let seq = self.next_seq(0);
        buf[0] = 0x80;
        buf[1] = self.pt & 0x7F;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[HDR..HDR + n].copy_from_slice(&self.buf[..n]);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
        self.ts = self.ts.wrapping_add(n as u32 * audio.samples_per_byte());
        Some(HDR + n)
    }
}

/// Re-framing state of a session whose legs' ptimes differ. See the module docs.
#[derive(Clone)]
pub struct Reframer {
    /// Index = destination leg.
    dirs: [Dir; 2],
}

impl std::fmt::Debug for Reframer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reframer").field("ptime_ms", &self.ptimes()).finish_non_exhaustive()
    }
}

impl Reframer {
    /// State for `spec` if its legs both state a ptime and they differ.
    pub fn for_spec(spec: &SessionSpec) -> Option<Box<Self>> {
        let (a, b) = (spec.legs[0].ptime_ms, spec.legs[1].ptime_ms);
        (a != 0 && b != 0 && a != b).then(|| Box::new(Self { dirs: [Dir::new(a), Dir::new(b)] }))
    }

    /// The packet duration sent toward each leg, ms.
    pub fn ptimes(&self) -> [u8; 2] {
        [self.dirs[0].out_ms, self.dirs[1].out_ms]
    }

    /// Whether a whole packet toward leg `to` is buffered.
    pub(super) fn ready(&self, to: usize) -> bool {
        self.dirs[to.min(1)].ready()
    }

    /// Takes the RTP packet `buf[..len]` (header `hdr` bytes, payload `audio` or not audio) on
    /// its way to leg `to`. See [`Step`].
    pub(super) fn push(&mut self, to: usize, buf: &mut [u8], hdr: usize, len: usize, audio: Option<Audio>) -> Step {
        let d = &mut self.dirs[to.min(1)];
        let Some(payload) = buf.get(hdr..len).filter(|_| hdr >= HDR) else { return Step::Pass(len) };
        let plen = payload.len();
        let (pt, seq) = (buf[1] & 0x7F, u16::from_be_bytes([buf[2], buf[3]]));
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let Some(a) = audio.filter(|a| plen > 0 && plen.is_multiple_of(a.unit())) else {
            d.len = 0;
            let s = d.next_seq(seq);
            buf[2..4].copy_from_slice(&s.to_be_bytes());
            return Step::Pass(len);
        };
        d.seq.get_or_insert(seq);
        let follows = d.ts.wrapping_add(d.len as u32 * a.samples_per_byte()) == ts;
        if d.len > 0 && (!follows || d.audio != Some(a) || d.pt != pt || d.ssrc != ssrc) {
            d.len = 0;
        }
        if d.len + plen > CAP {
            d.len = 0;
        }
        if d.len == 0 {
            (d.ts, d.audio, d.pt, d.ssrc) = (ts, Some(a), pt, ssrc);
        }
        d.buf[d.len..d.len + plen].copy_from_slice(&buf[hdr..len]);
        d.len += plen;
        match d.emit(buf) {
            Some(n) => Step::Send { len: n, more: d.ready() },
            None => Step::Hold,
        }
    }

    /// The next whole packet toward leg `to`, written into `buf`.
    pub(super) fn emit(&mut self, to: usize, buf: &mut [u8]) -> Option<usize> {
        self.dirs[to.min(1)].emit(buf)
    }
}

impl Relay {
    /// The next extra packet of a re-framed direction (an input longer than the destination's
    /// ptime makes more than one), written into `buf`: backends call this after handling a
    /// batch until it returns `None`, and send what it returns like a [`Relay::handle_packet`]
    /// verdict. No allocation: the due list is preallocated.
    pub fn poll_reframed(&mut self, buf: &mut [u8]) -> Option<Verdict> {
        while let Some(&(slot, gen, to)) = self.reframe_due.last() {
            let to = usize::from(to.min(1));
            let Some(s) = self.slots.get_mut(slot as usize).and_then(|s| s.as_mut()).filter(|s| s.gen == gen) else {
                self.reframe_due.pop();
                continue;
            };
            let Some(rf) = s.reframe.as_deref_mut() else {
                self.reframe_due.pop();
                continue;
            };
            let Some(mut len) = rf.emit(to, buf) else {
                self.reframe_due.pop();
                continue;
            };
            if !rf.ready(to) {
                self.reframe_due.pop();
            }
            let Some(dest) = Self::rtp_dest(s, to) else { continue };
            let from = Self::local_addr(&s.spec.legs[to], false);
            if let Some(tx) = s.legs[to].srtp.tx.as_mut() {
                match tx.protect_rtp(buf, len) {
                    Ok(n) => len = n,
                    Err(_) => {
                        self.counters.bump(DropReason::Srtp);
                        continue;
                    }
                }
            }
            return Some(Verdict::Forward { len, from, to: dest });
        }
        None
    }

    /// Re-frames the RTP packet `buf[..len]` from leg `leg` of `slot` toward the other leg, if
    /// the session re-frames: the length to send, or the verdict to return (held).
    pub(super) fn reframe_out(
        &mut self,
        now_ms: u64,
        (slot, leg): (usize, usize),
        buf: &mut [u8],
        hdr: usize,
        len: usize,
        audio: Option<Audio>,
    ) -> Result<usize, Verdict> {
        let other = 1 - leg.min(1);
        let Some(rf) = self.slots[slot].as_mut().and_then(|s| s.reframe.as_deref_mut()) else { return Ok(len) };
        match rf.push(other, buf, hdr, len, audio) {
            Step::Pass(n) => Ok(n),
            Step::Hold => {
                self.counters.bump(DropReason::Reframing);
                self.touch(slot, leg, now_ms);
                Err(Verdict::Drop(DropReason::Reframing))
            }
            Step::Send { len, more } => {
                if more {
                    self.reframe_more(slot, other);
                }
                Ok(len)
            }
        }
    }

    /// Notes that a re-framed direction has more to send (dropped when the list is full: the
    /// audio then waits for the next input, or is reset when the buffer overflows).
    pub(super) fn reframe_more(&mut self, slot: usize, to: usize) {
        let Some(gen) = self.slots.get(slot).and_then(|s| s.as_ref()).map(|s| s.gen) else { return };
        if self.reframe_due.len() < self.reframe_due.capacity() {
            self.reframe_due.push((slot as u32, gen, to as u8));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, payload: &[u8]) -> ([u8; 2048], usize) {
        let mut b = [0u8; 2048];
        b[0] = 0x80;
        b[1] = 8;
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b[4..8].copy_from_slice(&ts.to_be_bytes());
        b[8..12].copy_from_slice(&7u32.to_be_bytes());
        b[12..12 + payload.len()].copy_from_slice(payload);
        (b, 12 + payload.len())
    }

    fn rf(to_ms: u8) -> Reframer {
        Reframer { dirs: [Dir::new(to_ms), Dir::new(to_ms)] }
    }

    fn ts_of(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    #[test]
    fn ten_ms_in_twenty_out() {
        let mut r = rf(20);
        let (mut a, n) = rtp(100, 800, &[1; 80]);
        assert_eq!(r.push(1, &mut a, 12, n, Some(Audio::G711)), Step::Hold);
        let (mut b, n) = rtp(101, 880, &[2; 80]);
        assert_eq!(r.push(1, &mut b, 12, n, Some(Audio::G711)), Step::Send { len: 172, more: false });
        assert_eq!((ts_of(&b), u16::from_be_bytes([b[2], b[3]])), (800, 100));
        assert_eq!((&b[12..92], &b[92..172]), (&[1u8; 80][..], &[2u8; 80][..]));
    }

    #[test]
    fn thirty_ms_in_twenty_out_makes_one_or_two() {
        let mut r = rf(20);
        let mut out = Vec::new();
        for i in 0..4u32 {
            let (mut p, n) = rtp(i as u16, i * 240, &[i as u8; 240]);
            match r.push(0, &mut p, 12, n, Some(Audio::G711)) {
                Step::Send { len, more } => {
                    out.push((ts_of(&p), len));
                    if more {
                        let mut q = [0u8; 2048];
                        let m = r.emit(0, &mut q).unwrap();
                        out.push((ts_of(&q), m));
                        assert!(!r.ready(0));
                    }
                }
                s => panic!("{s:?}"),
            }
        }
        // 120 ms in, six 20 ms packets out, contiguous.
        assert_eq!(out, (0..6).map(|k| (k * 160, 172)).collect::<Vec<_>>());
    }

    #[test]
    fn a_gap_drops_the_partial_packet_and_events_pass_renumbered() {
        let mut r = rf(30);
        let (mut a, n) = rtp(1, 0, &[0; 160]);
        assert_eq!(r.push(1, &mut a, 12, n, Some(Audio::G711)), Step::Hold);
        let (mut ev, n) = rtp(2, 160, &[1, 0x80, 0, 160]);
        assert_eq!(r.push(1, &mut ev, 12, n, None), Step::Pass(16));
        assert_eq!(u16::from_be_bytes([ev[2], ev[3]]), 1);
        let (mut b, n) = rtp(3, 1600, &[5; 160]);
        assert_eq!(r.push(1, &mut b, 12, n, Some(Audio::G711)), Step::Hold);
        let (mut c, n) = rtp(4, 1760, &[6; 160]);
        assert!(matches!(r.push(1, &mut c, 12, n, Some(Audio::G711)), Step::Send { len: 252, more: false }));
        assert_eq!((ts_of(&c), u16::from_be_bytes([c[2], c[3]])), (1600, 2));
    }

    #[test]
    fn g729_frames_and_sid() {
        let mut r = rf(30);
        for k in 0..2u32 {
            let (mut p, n) = rtp(k as u16, k * 160, &[9; 20]);
            let s = r.push(1, &mut p, 12, n, Some(Audio::G729));
            if k == 1 {
                assert_eq!(s, Step::Send { len: 42, more: false });
                assert_eq!(ts_of(&p), 0);
            }
        }
        // A SID frame (2 bytes) is not re-framed and ends the buffered 10 ms.
        let (mut sid, n) = rtp(2, 320, &[1, 2]);
        assert_eq!(r.push(1, &mut sid, 12, n, Some(Audio::G729)), Step::Pass(14));
    }
}
