//! Which sessions the XDP fast path may forward, and crediting what it forwarded.
//!
//! # Payload types
//! The XDP program forwards a packet unchanged whatever its payload type. That is what the relay
//! core would do exactly when, for every payload type either leg negotiated, the core passes it
//! unchanged or drops it ([`pt_maps_allow_fast_path`]):
//! - an entry the core would relay must come out with the same number (same codec under the same
//!   PT on both legs: an identity mapping; no rewrite, no G.711 A/µ conversion, no G.729 ↔ G.711
//!   transcoding: a G.729 entry facing a G.711-only leg is *used*, so such a session is never
//!   eligible);
//! - an entry the core would drop (its codec has no counterpart on the other leg) is *unused*; it
//!   may differ freely, as long as the other leg does not give its number to another codec (the
//!   fast path would hand that peer a packet it reads as something else).
//!
//! An empty map on either leg is pass-through in the core too: eligible. Entry order and entries
//! present on one leg only do not matter.

use xtrunk_ring::msg::{Codec, PtMap};

use super::payload::{payload_action, PayloadAction};
use super::{crypto, spec_ports, ForwardRule, Relay};

/// Notes that latching on the session in `slot` may have changed its fast-path rules (packet
/// path: pushes only into spare capacity; a full list sets `overflow`).
pub(super) fn note(noted: &mut bool, list: &mut Vec<u32>, overflow: &mut bool, slot: usize) {
    if *noted {
        return;
    }
    if list.len() < list.capacity() {
        *noted = true;
        list.push(slot as u32);
    } else {
        *overflow = true;
    }
}

/// Can packets travel between legs negotiating `a` and `b` without payload work? See the
/// module docs.
pub fn pt_maps_allow_fast_path(a: &PtMap, b: &PtMap) -> bool {
    a.is_empty() || b.is_empty() || (passes_or_drops(a, b) && passes_or_drops(b, a))
}

/// Every entry of `from` is passed unchanged toward `to`, or dropped with its number free on `to`.
fn passes_or_drops(from: &PtMap, to: &PtMap) -> bool {
    from.iter().all(|e| match payload_action(from, to, e.pt) {
        Ok((PayloadAction::Pass, _)) => true,
        Ok(_) => false,
        Err(_) => to.by_pt(e.pt).is_none(),
    })
}

impl Relay {
    /// The rule the XDP fast path may use for packets arriving on `local_port`, when they need no
    /// work from the relay: fast path allowed by the spec, no SRTP on either leg, payload-type
    /// maps that agree on every payload type in use ([`pt_maps_allow_fast_path`]), the arriving
    /// leg's source fixed for good (`Strict` with an SDP address, or `Once` and latched; `Follow`
    /// may still re-latch), and the other leg's destination fixed likewise. The XDP program
    /// forwards only packets from [`ForwardRule::peer`]; any other source goes to the relay core
    /// (dropped, counted).
    ///
    /// A rule can appear or disappear only through [`Relay::apply`] and through
    /// [`Relay::handle_packet`] (latching); re-query after either for the ports involved
    /// ([`Relay::drain_rule_changes`] names the ports latching touched).
    pub fn fast_path_rule(&self, local_port: u16) -> Option<ForwardRule> {
        let (slot, leg, rtcp_port) = self.lookup(local_port)?;
        let s = self.slots[slot].as_ref()?;
        if !s.spec.allow_fast_path {
            return None;
        }
        let (a, b) = (&s.spec.legs[0], &s.spec.legs[1]);
        // T.38 (UDPTL) is validated packet by packet in the relay core.
        if a.pt_map.by_codec(Codec::T38).is_some() || b.pt_map.by_codec(Codec::T38).is_some() {
            return None;
        }
        // Re-packetised audio (the legs' ptimes differ) needs the relay core.
        if s.reframe.is_some() {
            return None;
        }
        if !crypto::is_plain(&a.crypto)
            || !crypto::is_plain(&b.crypto)
            || !pt_maps_allow_fast_path(&a.pt_map, &b.pt_map)
        {
            return None;
        }
        let me = &s.spec.legs[leg];
        let my_state = &s.legs[leg].latch;
        if !my_state.source_fixed(me, rtcp_port) {
            return None;
        }
        let peer = my_state.peer(me, rtcp_port)?;
        let other = 1 - leg;
        let os = &s.spec.legs[other];
        if !s.legs[other].latch.source_fixed(os, rtcp_port && !os.rtcp_mux) {
            return None;
        }
        let to = if rtcp_port { Self::rtcp_dest(s, other)? } else { Self::rtp_dest(s, other)? };
        Some(ForwardRule { peer, from: Self::local_addr(os, rtcp_port), to })
    }

    /// Calls `f` with every local port of the sessions whose latched sources changed since the
    /// last call (their [`Relay::fast_path_rule`]s may differ now). Returns `true` when the list
    /// overflowed and changes were lost: the caller must then re-query every port.
    pub fn drain_rule_changes(&mut self, mut f: impl FnMut(u16)) -> bool {
        for slot in self.rule_changes.drain(..) {
            if let Some(s) = self.slots.get_mut(slot as usize).and_then(|s| s.as_mut()) {
                s.rule_noted = false;
                spec_ports(&s.spec).for_each(&mut f);
            }
        }
        std::mem::take(&mut self.rule_overflow)
    }

    /// Credits `packets`/`bytes` forwarded in the kernel for packets that arrived on `local_port`
    /// (keeps the stats and media timeouts right).
    pub fn credit_fast_path(&mut self, local_port: u16, packets: u64, bytes: u64, now_ms: u64) {
        let Some((slot, leg, rtcp_port)) = self.lookup(local_port) else {
            return;
        };
        if packets == 0 {
            return;
        }
        let Some(s) = self.slots[slot].as_mut() else {
            return;
        };
        let rx = &mut s.legs[leg].rx;
        if rtcp_port {
            rx.stats.rtcp_packets += packets;
            rx.stats.last_rx_ms = rx.stats.last_rx_ms.max(now_ms);
        } else {
            rx.on_fast_path(now_ms, packets, bytes);
        }
        self.touch(slot, leg, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use xtrunk_ring::msg::{Codec, PtEntry};

    use super::*;

    fn map(list: &[(u8, Codec)]) -> PtMap {
        let mut m = PtMap::new();
        for &(pt, codec) in list {
            assert!(m.push(PtEntry { pt, codec }));
        }
        m
    }

    #[test]
    fn maps_agreeing_on_used_payload_types_are_eligible() {
        use Codec::*;
        let a = map(&[(0, Pcmu), (8, Pcma), (101, TelephoneEvent)]);
        // Same mapping, another order.
        assert!(pt_maps_allow_fast_path(&a, &map(&[(101, TelephoneEvent), (8, Pcma), (0, Pcmu)])));
        // Entries on one leg only whose codec the other lacks (unused: the core drops them).
        let a = map(&[(0, Pcmu), (96, Opus), (13, Cn), (101, TelephoneEvent)]);
        let b = map(&[(0, Pcmu), (9, G722), (101, TelephoneEvent)]);
        assert!(pt_maps_allow_fast_path(&a, &b));
        // Pass-through on either leg.
        assert!(pt_maps_allow_fast_path(&a, &PtMap::new()));
        assert!(pt_maps_allow_fast_path(&PtMap::new(), &PtMap::new()));
    }

    #[test]
    fn maps_needing_payload_work_are_not() {
        use Codec::*;
        let a = map(&[(0, Pcmu), (101, TelephoneEvent)]);
        // Renumbering.
        assert!(!pt_maps_allow_fast_path(&a, &map(&[(0, Pcmu), (96, TelephoneEvent)])));
        // A-law on one side, µ-law on the other: conversion.
        assert!(!pt_maps_allow_fast_path(&map(&[(8, Pcma)]), &map(&[(0, Pcmu)])));
        assert!(!pt_maps_allow_fast_path(&map(&[(0, Pcmu), (8, Pcma)]), &map(&[(0, Pcmu)])));
        // G.729 on one leg, only G.711 on the other: transcoding (the relay core's codec state).
        assert!(!pt_maps_allow_fast_path(&map(&[(18, G729)]), &map(&[(0, Pcmu)])));
        assert!(!pt_maps_allow_fast_path(
            &map(&[(8, Pcma), (101, TelephoneEvent)]),
            &map(&[(18, G729), (101, TelephoneEvent)])
        ));
        // An unused entry whose number means another codec on the other leg.
        assert!(!pt_maps_allow_fast_path(&map(&[(0, Pcmu), (96, Opus)]), &map(&[(0, Pcmu), (96, TelephoneEvent)])));
        // A codec listed twice: the core sends the first number.
        assert!(!pt_maps_allow_fast_path(&map(&[(0, Pcmu), (100, Pcmu)]), &map(&[(0, Pcmu), (100, Pcmu)])));
    }
}
