//! Per-stream receive statistics: RFC 3550 A.3 extended sequence numbers and loss, reordering,
//! duplicate detection with a 64-packet bitmap, and A.8 interarrival jitter.

use xtrunk_ring::msg::{Codec, StreamStats};

use super::quality;

/// RFC 3550 A.1: a jump of up to this many ahead is in order.
const MAX_DROPOUT: u32 = 3000;
/// RFC 3550 A.1: up to this many behind is reordering, further is a restart.
const MAX_MISORDER: u32 = 100;
/// RFC 3550 A.1: u16 sequence space.
const SEQ_MOD: u32 = 1 << 16;

/// Receive-side state of one RTP stream (one leg's inbound direction).
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamTracker {
    /// The exported counters.
    pub(crate) stats: StreamStats,
    started: bool,
    /// Extended sequence number of the first packet (A.3 `base_seq`).
    base_ext: u64,
    /// Highest extended sequence number seen.
    max_ext: u64,
    /// A.1 `bad_seq`: the sequence number expected after a large jump, to confirm a restart.
    bad_seq: Option<u16>,
    /// Distinct (non-duplicate) packets counted for loss.
    received: u64,
    /// Bit i set: packet `max_ext - i` seen.
    window: u64,
    /// A.8 jitter, scaled by 16.
    jitter_q4: u32,
    /// Previous transit time (arrival − RTP timestamp, in timestamp units); None until known.
    last_transit: Option<u32>,
    ssrc: u32,
    /// Loss accumulated in earlier sequence epochs.
    epoch_lost_base: u64,
    /// The last audio codec received that the E-model can rate.
    pub(crate) audio: Option<Codec>,
    /// Round-trip time the peer reported (RTCP XR VoIP Metrics), if any.
    pub(crate) peer_rtt_ms: Option<u16>,
}

impl StreamTracker {
    fn restart(&mut self, seq: u16) {
        self.base_ext = u64::from(seq);
        self.max_ext = u64::from(seq);
        self.window = 1;
        self.received = 1;
        self.bad_seq = None;
    }

    /// Accounts one accepted RTP packet. `arrival_ts` is the arrival time in the stream's RTP
    /// clock (for jitter) or `None` to skip jitter (telephone-event, unknown clock).
    pub(crate) fn on_rtp(
        &mut self,
        now_ms: u64,
        seq: u16,
        ssrc: u32,
        rtp_ts: u32,
        arrival_ts: Option<u32>,
        bytes: usize,
    ) {
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += bytes as u64;
        s.last_rx_ms = now_ms;
        if !self.started || ssrc != self.ssrc {
            // New stream (or SSRC change): A.3 starts afresh; counters keep accumulating.
            if self.started {
                self.fold_loss();
            }
            self.started = true;
            self.ssrc = ssrc;
            self.restart(seq);
            self.last_transit = None;
        } else {
            let max16 = (self.max_ext & 0xFFFF) as u16;
            let udelta = u32::from(seq.wrapping_sub(max16));
            if udelta == 0 {
                self.stats.duplicates += 1;
            } else if udelta < MAX_DROPOUT {
                // In order, possibly with a gap; wrap handled by extending from max.
                let new_ext = self.max_ext + u64::from(udelta);
                let shift = new_ext - self.max_ext;
                self.window = if shift >= 64 { 0 } else { self.window << shift };
                self.window |= 1;
                self.max_ext = new_ext;
                self.received += 1;
                self.bad_seq = None;
            } else if udelta <= SEQ_MOD - MAX_MISORDER {
                // Very large jump: RFC 3550 A.1 restarts after two sequential packets.
                if self.bad_seq == Some(seq) {
                    self.fold_loss();
                    self.restart(seq);
                } else {
                    self.bad_seq = Some(seq.wrapping_add(1));
                }
            } else {
                // Behind the highest: duplicate or reordered.
                let back = u64::from(SEQ_MOD - udelta);
                if back > self.max_ext {
                    self.stats.reordered += 1;
                } else if back < 64 {
                    let bit = 1u64 << back;
                    if self.window & bit != 0 {
                        self.stats.duplicates += 1;
                    } else {
                        self.window |= bit;
                        self.stats.reordered += 1;
                        self.received += 1;
                        if self.max_ext - back < self.base_ext {
                            self.base_ext = self.max_ext - back;
                        }
                    }
                } else {
                    self.stats.reordered += 1;
                    self.received += 1;
                }
            }
        }
        self.update_lost();
        if let Some(arrival) = arrival_ts {
            // RFC 3550 A.8 (integer form, jitter kept ×16).
            let transit = arrival.wrapping_sub(rtp_ts);
            if let Some(last) = self.last_transit {
                let d = transit.wrapping_sub(last) as i32;
                let d = d.unsigned_abs();
                let j = self.jitter_q4;
                self.jitter_q4 = j.wrapping_add(d).wrapping_sub((j + 8) >> 4);
            }
            self.last_transit = Some(transit);
            self.stats.jitter = self.jitter_q4 >> 4;
        }
    }

    /// Losses of previous sequence epochs (before a restart or SSRC change).
    fn fold_loss(&mut self) {
        self.update_lost();
        self.epoch_lost_base = self.stats.lost;
    }

    fn update_lost(&mut self) {
        let expected = self.max_ext - self.base_ext + 1;
        self.stats.lost = self.epoch_lost_base + expected.saturating_sub(self.received);
    }

    /// The stats with the E-model's R-factor and MOS filled in ([`quality::rate`]): loss over
    /// the stream, jitter (8 kHz clock: every rated codec's) as the jitter buffer, the peer's
    /// reported RTT. Not for the packet path.
    pub(crate) fn rated(&self) -> StreamStats {
        let mut s = self.stats;
        let received = s.packets.saturating_sub(s.duplicates);
        let rtt = self.peer_rtt_ms.map(f64::from);
        (s.r_x10, s.mos_x100) = quality::rate(self.audio, received, s.lost, f64::from(s.jitter) / 8.0, rtt);
        s
    }

    /// Accounts one accepted UDPTL (T.38) datagram: counted as a packet, no sequence analysis.
    pub(crate) fn on_udptl(&mut self, now_ms: u64, bytes: usize) {
        self.stats.packets += 1;
        self.stats.bytes += bytes as u64;
        self.stats.last_rx_ms = now_ms;
    }

    /// Accounts one accepted RTCP packet.
    pub(crate) fn on_rtcp(&mut self, now_ms: u64) {
        self.stats.rtcp_packets += 1;
        self.stats.last_rx_ms = now_ms;
    }

    /// Accounts a packet from a source that may not send on this leg (the drop itself is
    /// accounted by [`StreamTracker::on_drop`]).
    pub(crate) fn on_rejected_source(&mut self) {
        self.stats.rejected_sources += 1;
    }

    /// Accounts a drop on this leg.
    pub(crate) fn on_drop(&mut self) {
        self.stats.dropped += 1;
    }

    /// Credits packets forwarded by the in-kernel fast path.
    pub(crate) fn on_fast_path(&mut self, now_ms: u64, packets: u64, bytes: u64) {
        self.stats.packets += packets;
        self.stats.bytes += bytes;
        self.stats.last_rx_ms = self.stats.last_rx_ms.max(now_ms);
    }
}
