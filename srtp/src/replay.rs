//! Packet index estimation (RFC 3711 §3.3.1, Appendix A) and the replay window
//! (RFC 3711 §3.3.2) over 128 packets.

use crate::Error;

/// Replay window width in packets.
pub const REPLAY_WINDOW: u64 = 128;

/// Largest 48-bit SRTP packet index.
const MAX_RTP_INDEX: u64 = (1 << 48) - 1;

/// A sliding window over packet indices: `top` is the highest index accepted, bit `i`
/// of `bits` is set when `top - i` was accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) top: u64,
    bits: u128,
}

impl Window {
    /// A window whose only accepted index is `index`.
    pub(crate) fn starting_at(index: u64) -> Self {
        Window { top: index, bits: 1 }
    }

    /// `Ok` when `index` was not accepted before and is not too old.
    #[inline]
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        if index > self.top {
            return Ok(());
        }
        let delta = self.top - index;
        if delta >= REPLAY_WINDOW {
            return Err(Error::TooOld);
        }
        if self.bits & (1u128 << delta) != 0 {
            return Err(Error::Replayed);
        }
        Ok(())
    }

    /// Records `index` as accepted (call after [`Window::check`] and authentication).
    #[inline]
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.top {
            let shift = index - self.top;
            self.bits = if shift >= REPLAY_WINDOW { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = index;
        } else {
            let delta = self.top - index;
            if delta < REPLAY_WINDOW {
                self.bits |= 1u128 << delta;
            }
        }
    }
}

/// The 48-bit index `ROC * 2^16 + SEQ` of a packet with sequence number `seq`, given
/// the highest index `top` seen so far (RFC 3711 Appendix A). While the stream is
/// young (`top` at most 2^15, i.e. ROC 0) there is no earlier roll-over to guess, so
/// ROC 0 is used (as libsrtp does); a guess of ROC + 1 past 2^32 - 1 is
/// [`Error::IndexExhausted`].
#[inline]
pub(crate) fn estimate_index(top: u64, seq: u16) -> Result<u64, Error> {
    let roc = top >> 16;
    let s_l = (top & 0xffff) as u16;
    let seq64 = u64::from(seq);
    let v = if top <= 0x8000 {
        0
    } else if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc - 1 // roc >= 1 here: top > 0x8000 with s_l < 0x8000
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    let index = (v << 16) | seq64;
    if index > MAX_RTP_INDEX {
        return Err(Error::IndexExhausted);
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_follows_appendix_a() {
        // young stream: ROC 0 whatever the seq
        assert_eq!(estimate_index(10, 65000), Ok(65000));
        assert_eq!(estimate_index(0, 65535), Ok(65535));
        // wrap forward 65535 -> 0
        assert_eq!(estimate_index(65535, 0), Ok(1 << 16));
        assert_eq!(estimate_index(65535, 65534), Ok(65534));
        // late packet from before the wrap
        assert_eq!(estimate_index((1 << 16) | 3, 65530), Ok(65530));
        assert_eq!(estimate_index((1 << 16) | 3, 4), Ok((1 << 16) | 4));
        // ROC 5, s_l high
        let top = (5 << 16) | 40000;
        assert_eq!(estimate_index(top, 100), Ok((6 << 16) | 100));
        assert_eq!(estimate_index(top, 30000), Ok((5 << 16) | 30000));
        // exhausted
        assert_eq!(estimate_index(MAX_RTP_INDEX, 0), Err(Error::IndexExhausted));
    }

    #[test]
    fn window_rejects_replay_and_old() {
        let mut w = Window::starting_at(1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        assert_eq!(w.check(999), Ok(()));
        w.accept(999);
        assert_eq!(w.check(999), Err(Error::Replayed));
        assert_eq!(w.check(1000 - 127), Ok(()));
        assert_eq!(w.check(1000 - 128), Err(Error::TooOld));
        w.accept(1200);
        assert_eq!(w.check(1000), Err(Error::TooOld));
        assert_eq!(w.check(1199), Ok(()));
        assert_eq!(w.check(1200), Err(Error::Replayed));
        w.accept(1199);
        w.accept(1100); // 100 behind: inside
        assert_eq!(w.check(1100), Err(Error::Replayed));
        assert_eq!(w.check(1101), Ok(()));
        w.accept(5000); // big jump clears the window
        assert_eq!(w.check(4999), Ok(()));
        assert_eq!(w.check(5000), Err(Error::Replayed));
    }
}
