//! In-band DTMF ↔ RFC 4733, sans-IO, on 8 kHz linear audio: a Goertzel [`Detector`] that turns
//! tones into digit starts and ends, an [`EventSender`] that turns those into RFC 4733 payloads
//! (start, duration updates, three end packets), and a [`ToneGen`] that synthesises received
//! events into audio for a leg that has no telephone-event. No allocation; state is
//! preallocated per stream.
//!
//! # Detection
//! Every 10 ms (80 samples) the last 20 ms (160 samples) are run through eight Goertzel filters
//! at the DTMF frequencies. A window is a digit when
//! - its power is above [`MIN_RMS`];
//! - the strongest row and column tones each stand 6 dB above the other tones of their group;
//! - the twist is within Q.24 limits (column ≤ 8 dB above row, row ≤ 4 dB above column);
//! - the two tones carry ≥ 80 % of the window's energy (speech spreads its energy over many
//!   harmonics and fails this).
//!
//! A digit starts after two consecutive windows agree and ends after two windows without it.
//! It spans the union of its agreeing windows: from the start of the first to the end of the
//! last (a window that straddles a tone edge fails the dominance test, its spectrum smeared by
//! the cut, so the windows that agree are those within the tone). Timestamps are in the
//! stream's 8 kHz clock.

use xtrunk_ring::msg::{Codec, SessionSpec};

use super::g711;
use super::transcode::Law;
use crate::wire::dtmf::{DtmfPayload, DtmfRepr};

/// Row (low group) frequencies, Hz.
pub const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies, Hz.
pub const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// RFC 4733 event codes by row and column: 0–9, `*` = 10, `#` = 11, A–D = 12–15.
pub const KEYS: [[u8; 4]; 4] = [[1, 2, 3, 12], [4, 5, 6, 13], [7, 8, 9, 14], [10, 0, 11, 15]];
/// Goertzel window, samples (20 ms).
pub const WINDOW: usize = 160;
/// Decision interval, samples (10 ms).
pub const HOP: usize = 80;
/// Quietest window that may be a digit (RMS of 16-bit samples, about −35 dBm0).
pub const MIN_RMS: f32 = 100.0;

/// The two frequencies of an RFC 4733 event code (0–15), if it is a DTMF digit.
pub fn freqs(event: u8) -> Option<(f32, f32)> {
    for (r, row) in KEYS.iter().enumerate() {
        for (c, &k) in row.iter().enumerate() {
            if k == event {
                return Some((ROWS[r], COLS[c]));
            }
        }
    }
    None
}

/// A digit change found by the [`Detector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digit {
    /// A digit began at `ts`.
    Start {
        /// RFC 4733 event code.
        event: u8,
        /// Stream timestamp of its first sample.
        ts: u32,
    },
    /// The digit that began at `ts` lasted `duration` samples.
    End {
        /// RFC 4733 event code.
        event: u8,
        /// Stream timestamp of its first sample (as in `Start`).
        ts: u32,
        /// Samples.
        duration: u32,
    },
}

fn goertzel(x: &[f32; WINDOW], start: usize, f: f32) -> f32 {
    let coeff = 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for i in 0..WINDOW {
        let s = x[(start + i) % WINDOW] + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Index of the largest value and whether it stands `ratio` above every other.
fn dominant(p: &[f32; 4], ratio: f32) -> Option<usize> {
    let (i, &max) = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    p.iter().enumerate().all(|(j, &v)| j == i || v * ratio <= max).then_some(i)
}

/// Which digit, if any, a window holds. See the module docs.
fn classify(x: &[f32; WINDOW], start: usize) -> Option<u8> {
    let energy: f32 = x.iter().map(|v| v * v).sum();
    if energy < MIN_RMS * MIN_RMS * WINDOW as f32 {
        return None;
    }
    let rows = ROWS.map(|f| goertzel(x, start, f));
    let cols = COLS.map(|f| goertzel(x, start, f));
    let (r, c) = (dominant(&rows, 4.0)?, dominant(&cols, 4.0)?);
    let (pr, pc) = (rows[r], cols[c]);
    // Q.24 twist: column up to 8 dB above row ("normal"), row up to 4 dB above column.
    if pc > pr * 6.3 || pr > pc * 2.5 {
        return None;
    }
    // A tone of amplitude A gives P ≈ (A·N/2)² and carries A²·N/2 of energy: energy = 2P/N.
    let tones = 2.0 * (pr + pc) / WINDOW as f32;
    (tones >= 0.8 * energy).then_some(KEYS[r][c])
}

/// Streaming in-band DTMF detector for one stream. See the module docs.
#[derive(Debug, Clone)]
pub struct Detector {
    ring: [f32; WINDOW],
    /// Next write position in `ring` (also the oldest sample once full).
    at: usize,
    /// Samples pushed so far (saturating at `WINDOW`), and since the last decision.
    filled: usize,
    since: usize,
    /// Timestamp of the next sample pushed.
    next_ts: u32,
    /// Last window's digit and how many consecutive windows had it.
    cand: Option<(u8, u8)>,
    /// The digit being reported: its code, start and the start of its last window.
    active: Option<(u8, u32, u32)>,
    /// Consecutive windows without the active digit.
    misses: u8,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector {
    /// A detector with no history.
    pub const fn new() -> Self {
        Self { ring: [0.0; WINDOW], at: 0, filled: 0, since: 0, next_ts: 0, cand: None, active: None, misses: 0 }
    }

    /// The digit in progress, if any.
    pub fn active(&self) -> Option<u8> {
        self.active.map(|a| a.0)
    }

    /// Feeds `pcm` whose first sample has timestamp `ts`; calls `out` for each digit start/end.
    /// A timestamp jump (loss, a new talk spurt) restarts the history.
    pub fn push(&mut self, ts: u32, pcm: &[i16], out: &mut impl FnMut(Digit)) {
        if ts != self.next_ts && self.filled > 0 {
            self.finish(out);
            self.filled = 0;
            self.since = 0;
            self.cand = None;
        }
        for (i, &s) in pcm.iter().enumerate() {
            self.ring[self.at] = f32::from(s);
            self.at = (self.at + 1) % WINDOW;
            self.filled = (self.filled + 1).min(WINDOW);
            self.since += 1;
            if self.filled == WINDOW && self.since >= HOP {
                self.since = 0;
                let end = ts.wrapping_add(i as u32 + 1);
                self.decide(end.wrapping_sub(WINDOW as u32), out);
            }
        }
        self.next_ts = ts.wrapping_add(pcm.len() as u32);
    }

    /// Ends a digit in progress (end of stream).
    pub fn finish(&mut self, out: &mut impl FnMut(Digit)) {
        if let Some((event, ts, last_start)) = self.active.take() {
            out(Digit::End { event, ts, duration: last_start.wrapping_add(WINDOW as u32).wrapping_sub(ts) });
        }
        self.misses = 0;
    }

    fn decide(&mut self, win_start: u32, out: &mut impl FnMut(Digit)) {
        let d = classify(&self.ring, self.at);
        self.cand = match (d, self.cand) {
            (Some(d), Some((c, n))) if c == d => Some((d, n.saturating_add(1))),
            (Some(d), _) => Some((d, 1)),
            (None, _) => None,
        };
        match self.active {
            Some((event, ts, _)) if d == Some(event) => {
                self.misses = 0;
                self.active = Some((event, ts, win_start));
            }
            Some(_) => {
                self.misses += 1;
                // A different digit or silence for two windows ends it.
                if self.misses >= 2 || matches!(self.cand, Some((_, n)) if n >= 2) {
                    self.finish(out);
                }
            }
            None => {}
        }
        if self.active.is_none() {
            if let Some((event, 2..)) = self.cand {
                // The first agreeing window, one hop before this one, began the digit.
                let ts = win_start.wrapping_sub(HOP as u32);
                self.active = Some((event, ts, win_start));
                self.misses = 0;
                out(Digit::Start { event, ts });
            }
        }
    }
}

/// RFC 4733 sender for one stream: what to put in each outgoing event packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventSender {
    /// Event, its start timestamp, the duration so far, end packets still to send.
    cur: Option<(u8, u32, u32, u8)>,
}

/// One RFC 4733 packet to send: its payload and RTP timestamp (the event's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The payload.
    pub repr: DtmfRepr,
    /// RTP timestamp: the event's start.
    pub ts: u32,
    /// The first packet of the event (RTP marker bit).
    pub marker: bool,
}

impl EventSender {
    /// Volume written in the events (−10 dBm0).
    pub const VOLUME: u8 = 10;
    /// End packets sent per event (RFC 4733 §2.5.1.4 recommends three).
    pub const END_PACKETS: u8 = 3;

    /// Whether an event is in progress or its end packets are still due.
    pub fn busy(&self) -> bool {
        self.cur.is_some()
    }

    /// Applies a detector change.
    pub fn on_digit(&mut self, d: Digit) {
        match d {
            Digit::Start { event, ts } => self.cur = Some((event, ts, 0, 0)),
            Digit::End { event, ts, duration } => {
                if matches!(self.cur, Some((e, t, _, _)) if e == event && t == ts) {
                    self.cur = Some((event, ts, duration, Self::END_PACKETS));
                }
            }
        }
    }

    /// The packet to send in place of the audio packet whose last sample is at `now_ts`, if an
    /// event is in progress or ending.
    pub fn next_packet(&mut self, now_ts: u32) -> Option<EventPacket> {
        let (event, ts, dur, ends) = self.cur?;
        // Long events: RFC 4733 §2.5.1.3 would split at 0xFFFF; we clamp (8 s) instead.
        let (duration, end, marker) = if ends > 0 {
            self.cur = if ends > 1 { Some((event, ts, dur, ends - 1)) } else { None };
            (dur, true, false)
        } else {
            let d = now_ts.wrapping_sub(ts);
            self.cur = Some((event, ts, d, 0));
            (d, false, dur == 0)
        };
        let duration = duration.min(u32::from(u16::MAX)) as u16;
        Some(EventPacket { repr: DtmfRepr { event, end, volume: Self::VOLUME, duration }, ts, marker })
    }
}

/// Synthesises received RFC 4733 events into audio for one stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToneGen {
    /// The frequencies and phase (in samples) of the tone playing, and its amplitude.
    tone: Option<(f32, f32, u32, f32)>,
    /// Last event played: its start timestamp, so repeats and end packets are not restarted.
    last: Option<(u8, u32, bool)>,
}

impl ToneGen {
    /// Applies a received event packet (`ts` = its RTP timestamp): a new event starts its tone,
    /// an end packet stops it, repeats (updates, the end's retransmissions) change nothing.
    pub fn on_event(&mut self, ts: u32, e: &DtmfRepr) {
        let this = (e.event, ts);
        if e.end {
            self.tone = None;
            self.last = Some((e.event, ts, true));
            return;
        }
        match self.last {
            Some((ev, t, ended)) if (ev, t) == this && (ended || self.tone.is_some()) => return,
            _ => {}
        }
        if let Some((lo, hi)) = freqs(e.event) {
            // Volume is −dBm0; each tone gets half of a 0 dBm0-ish 22 000 peak.
            let amp = 22_000.0 * 10f32.powf(-f32::from(e.volume.min(63)) / 20.0) / 2.0;
            self.tone = Some((lo, hi, 0, amp));
        }
        self.last = Some((e.event, ts, false));
    }

    /// Whether a tone is playing.
    pub fn playing(&self) -> bool {
        self.tone.is_some()
    }

    /// Writes the tone into `pcm` (replacing it) while one plays; returns whether it did.
    pub fn fill(&mut self, pcm: &mut [i16]) -> bool {
        let Some((lo, hi, ref mut n, amp)) = self.tone else { return false };
        let mut k = *n;
        for s in pcm.iter_mut() {
            let t = k as f32 / 8000.0;
            let v = amp * ((2.0 * std::f32::consts::PI * lo * t).sin() + (2.0 * std::f32::consts::PI * hi * t).sin());
            *s = v as i16;
            k = k.wrapping_add(1);
        }
        self.tone = Some((lo, hi, k, amp));
        true
    }
}

/// Most samples of one packet handled (200 ms); longer payloads are passed unexamined.
pub const MAX_PCM: usize = 1600;

/// Per-session DTMF interworking between a leg without telephone-event (the *in-band* leg,
/// whose digits are tones in its audio) and a leg with it: tones from the in-band leg are
/// detected and sent to the other leg as RFC 4733 events in place of the audio packets that
/// carried them; events from the other leg are played as tones into the audio toward the
/// in-band leg. Made with the session ([`Interwork::for_spec`]), never on the packet path.
#[derive(Debug, Clone)]
pub struct Interwork {
    inband: usize,
    te_pt: u8,
    det: Detector,
    tx: EventSender,
    gen: ToneGen,
    pcm: [i16; MAX_PCM],
    end_ts: u32,
}

impl Interwork {
    /// The interworking a session needs: a leg that negotiated audio but no telephone-event,
    /// the other telephone-event.
    pub fn for_spec(spec: &SessionSpec) -> Option<Box<Self>> {
        (0..2).find_map(|l| {
            let (me, other) = (&spec.legs[l].pt_map, &spec.legs[1 - l].pt_map);
            let te_pt = other.by_codec(Codec::TelephoneEvent)?;
            (!me.is_empty() && me.by_codec(Codec::TelephoneEvent).is_none()).then(|| {
                Box::new(Self {
                    inband: l,
                    te_pt,
                    det: Detector::new(),
                    tx: EventSender::default(),
                    gen: ToneGen::default(),
                    pcm: [0; MAX_PCM],
                    end_ts: 0,
                })
            })
        })
    }

    /// The leg without telephone-event.
    pub fn inband_leg(&self) -> usize {
        self.inband
    }

    /// A telephone-event payload from the other leg, with its RTP timestamp: played toward the
    /// in-band leg. A malformed payload is ignored (the caller checked it already).
    pub fn on_event(&mut self, ts: u32, payload: &[u8]) {
        if let Ok(r) = DtmfPayload::new_checked(payload).and_then(|p| DtmfRepr::parse(&p)) {
            self.gen.on_event(ts, &r);
        }
    }

    /// A G.711 (`law`) payload from leg `from`, timestamp `ts`: examined for tones when it comes
    /// from the in-band leg (each digit start and end also goes to `notify`), overwritten with
    /// the tone playing when it goes to it.
    pub fn on_g711(&mut self, from: usize, ts: u32, payload: &mut [u8], law: Law, notify: &mut impl FnMut(Digit)) {
        let n = payload.len().min(MAX_PCM);
        let expand = match law {
            Law::A => g711::alaw_expand,
            Law::U => g711::ulaw_expand,
        };
        if from == self.inband {
            for (s, &b) in self.pcm.iter_mut().zip(&payload[..n]) {
                *s = expand(b);
            }
            let tx = &mut self.tx;
            self.det.push(ts, &self.pcm[..n], &mut |d| {
                tx.on_digit(d);
                notify(d);
            });
            self.end_ts = ts.wrapping_add(n as u32);
        } else if self.gen.fill(&mut self.pcm[..n]) {
            let compress = match law {
                Law::A => g711::alaw_compress,
                Law::U => g711::ulaw_compress,
            };
            for (b, &s) in payload[..n].iter_mut().zip(&self.pcm[..n]) {
                *b = compress(s);
            }
        }
    }

    /// While a detected digit is being sent, rewrites the in-band leg's packet in `buf` (RTP
    /// header of `hdr` bytes kept: sequence number, SSRC) into its RFC 4733 packet: the other
    /// leg's telephone-event payload type, the event's timestamp, marker on its first packet.
    /// Returns the new length.
    pub fn replace(&mut self, from: usize, buf: &mut [u8], hdr: usize) -> Option<usize> {
        if from != self.inband || buf.len() < hdr + DtmfRepr::LEN || hdr < 12 {
            return None;
        }
        let p = self.tx.next_packet(self.end_ts)?;
        buf[0] &= !0x20;
        buf[1] = (u8::from(p.marker) << 7) | self.te_pt;
        buf[4..8].copy_from_slice(&p.ts.to_be_bytes());
        p.repr.emit(&mut buf[hdr..]).ok().map(|n| hdr + n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_its_frequencies() {
        assert_eq!(freqs(1), Some((697.0, 1209.0)));
        assert_eq!(freqs(0), Some((941.0, 1336.0)));
        assert_eq!(freqs(11), Some((941.0, 1477.0)));
        assert_eq!(freqs(16), None);
    }

    #[test]
    fn sender_sends_updates_then_three_ends() {
        let mut s = EventSender::default();
        assert!(s.next_packet(0).is_none());
        s.on_digit(Digit::Start { event: 5, ts: 1000 });
        let p = s.next_packet(1160).unwrap();
        assert!(p.marker && !p.repr.end && p.repr.duration == 160 && p.ts == 1000);
        let p = s.next_packet(1320).unwrap();
        assert!(!p.marker && p.repr.duration == 320);
        s.on_digit(Digit::End { event: 5, ts: 1000, duration: 800 });
        for _ in 0..3 {
            let p = s.next_packet(9999).unwrap();
            assert!(p.repr.end && p.repr.duration == 800 && p.ts == 1000);
        }
        assert!(s.next_packet(10_000).is_none());
    }
}
