//! T.38 legs: UDPTL datagrams relayed unchanged between two legs that both list `Codec::T38`.

use std::net::SocketAddr;

use xtrunk_ring::msg::Codec;

use super::{DropReason, Relay, Verdict};

impl Relay {
    /// A datagram on a T.38 leg (`Codec::T38` in its map): a UDPTL packet on the RTP port,
    /// relayed unchanged to the other leg if that is T.38 too.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn relay_udptl(
        &mut self,
        now_ms: u64,
        slot: usize,
        leg: usize,
        rtcp_port: bool,
        src: SocketAddr,
        buf: &[u8],
        len: usize,
    ) -> Verdict {
        let other = 1 - leg;
        let ok = !rtcp_port && buf.get(..len).is_some_and(|p| crate::wire::udptl::Udptl::new_checked(p).is_ok());
        let Some(s) = self.slots[slot].as_mut().filter(|_| ok) else {
            return self.drop_on(slot, leg, DropReason::Udptl);
        };
        if s.spec.legs[other].pt_map.by_codec(Codec::T38).is_none() {
            return self.drop_on(slot, leg, DropReason::Udptl);
        }
        if !s.legs[leg].latch.admits(&s.spec.legs[leg], false, src, None, now_ms) {
            return self.reject_source(slot, leg);
        }
        // T.38 sessions never take the fast path: a latch here changes no rule.
        let _ = s.legs[leg].latch.commit(&s.spec.legs[leg], false, src, None, now_ms);
        let Some(to) = Self::rtp_dest(s, other) else {
            return self.drop_on(slot, leg, DropReason::NoDestination);
        };
        s.legs[leg].rx.on_udptl(now_ms, len);
        let from = Self::local_addr(&s.spec.legs[other], false);
        self.touch(slot, leg, now_ms);
        Verdict::Forward { len, from, to }
    }
}
