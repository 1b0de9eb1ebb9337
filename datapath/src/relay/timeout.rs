//! Media timeouts: the session's (no packet on either leg) and each leg's (one-way media).
//!
//! # Rules
//! - **Session**: no accepted packet (RTP or RTCP, fast path included) on either leg for
//!   `media_timeout_ms` → [`Event::MediaTimeout`] with `leg: None`.
//! - **Leg `i`**: no accepted packet on leg `i` for `leg_timeout_ms[i]`, counted from its last
//!   packet, the session's creation or the last Update (whichever is latest), while the other leg
//!   did receive one within that span → `leg: Some(i)`. RTCP counts as life: a leg on hold
//!   (`sendonly`/`inactive` from its side) that still sends receiver or sender reports is not
//!   cut for its RTP silence. Both legs silent is the session rule's case, not this one.
//! - Each fires once per idle period: a packet on the leg (on either leg, for the session rule)
//!   re-arms it.
//!
//! # Timer entries
//! A session has at most one *live* entry in the relay's timer heap: the one whose deadline is
//! [`MediaClock::queued`]. It pops at the earliest pending deadline and the clock decides what is
//! due. A packet only pushes an entry when none is live or when a deadline moved earlier than the
//! live one (a leg that was due while both legs were silent becomes due the moment the other leg
//! resumes); the entry left behind is recognised when it pops (deadline ≠ `queued`) and dropped.
//! On the packet path an entry is pushed only into spare heap capacity, never by growing it: if
//! there is none, the timeout fires late (at the live entry, or at a later packet's push).

use std::cmp::Reverse;

use xtrunk_ring::msg::{Event, SessionSpec};

use super::Relay;

/// The media-timeout state of one session (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(super) struct MediaClock {
    /// Last accepted packet on either leg, or the session's creation.
    session_ms: u64,
    /// Per leg: last accepted packet, the session's creation or the last Update.
    leg_ms: [u64; 2],
    session_fired: bool,
    leg_fired: [bool; 2],
    /// Deadline of the session's live heap entry, if one is queued.
    queued: Option<u64>,
}

impl MediaClock {
    /// A session created at `now_ms`.
    pub(super) fn new(now_ms: u64) -> Self {
        Self { session_ms: now_ms, leg_ms: [now_ms; 2], session_fired: false, leg_fired: [false; 2], queued: None }
    }

    /// A packet accepted on `leg`. Returns a deadline to queue if the live entry (if any) would
    /// come too late.
    fn on_packet(&mut self, spec: &SessionSpec, leg: usize, now_ms: u64) -> Option<u64> {
        self.session_ms = self.session_ms.max(now_ms);
        self.leg_ms[leg] = self.leg_ms[leg].max(now_ms);
        self.session_fired = false;
        self.leg_fired[leg] = false;
        self.wanted(spec, now_ms)
    }

    /// An Update: each leg's count starts again (its media may have changed peer or direction).
    fn on_update(&mut self, spec: &SessionSpec, now_ms: u64) -> Option<u64> {
        self.leg_ms = self.leg_ms.map(|t| t.max(now_ms));
        self.leg_fired = [false; 2];
        self.wanted(spec, now_ms)
    }

    fn wanted(&self, spec: &SessionSpec, now_ms: u64) -> Option<u64> {
        let next = self.next_deadline(spec, now_ms)?;
        self.queued.is_none_or(|q| next < q).then_some(next)
    }

    /// Is leg `i` due at `now_ms`: silent for its timeout while the other leg was not?
    fn leg_due(&self, spec: &SessionSpec, i: usize, now_ms: u64) -> bool {
        let t = u64::from(spec.leg_timeout_ms[i]);
        t > 0 && !self.leg_fired[i] && now_ms >= self.leg_ms[i] + t && now_ms < self.leg_ms[1 - i] + t
    }

    /// The earliest time something may become due; `now_ms` if something already is.
    fn next_deadline(&self, spec: &SessionSpec, now_ms: u64) -> Option<u64> {
        let mut next = None::<u64>;
        let mut take = |d: u64| next = Some(next.map_or(d, |n| n.min(d)));
        if spec.media_timeout_ms > 0 && !self.session_fired {
            take(self.session_ms + u64::from(spec.media_timeout_ms));
        }
        for i in 0..2 {
            let t = u64::from(spec.leg_timeout_ms[i]);
            if t == 0 || self.leg_fired[i] {
                continue;
            }
            let d = self.leg_ms[i] + t;
            if d > now_ms {
                take(d);
            } else if self.leg_due(spec, i, now_ms) {
                take(now_ms);
            }
            // Else both legs are silent: nothing until the other leg's next packet.
        }
        next
    }

    /// Emits what is due at `now_ms` and marks it fired.
    fn fire(&mut self, spec: &SessionSpec, now_ms: u64, events: &mut impl FnMut(Event)) {
        let ts = u64::from(spec.media_timeout_ms);
        if ts > 0 && !self.session_fired && now_ms >= self.session_ms + ts {
            self.session_fired = true;
            events(Event::MediaTimeout { id: spec.id, idle_ms: now_ms - self.session_ms, leg: None });
        }
        for i in 0..2 {
            if self.leg_due(spec, i, now_ms) {
                self.leg_fired[i] = true;
                events(Event::MediaTimeout { id: spec.id, idle_ms: now_ms - self.leg_ms[i], leg: Some(i as u8) });
            }
        }
    }
}

impl Relay {
    /// Heap capacity for `max_sessions` sessions: a live entry each, one left behind each, and
    /// entries of deleted sessions still waiting for their deadline.
    pub(super) fn timer_capacity(max_sessions: usize) -> usize {
        3 * max_sessions + 16
    }

    /// Queues the first deadline of a session just created (control path: may grow the heap).
    pub(super) fn arm_new(&mut self, slot: usize, now_ms: u64) {
        let Some(s) = self.slots[slot].as_mut() else { return };
        if let Some(d) = s.clock.wanted(&s.spec, now_ms) {
            self.timers.push(Reverse((d, slot as u32, s.gen)));
            s.clock.queued = Some(d);
        }
    }

    /// Restarts the leg counts after an Update (control path: may grow the heap).
    pub(super) fn arm_update(&mut self, slot: usize, now_ms: u64) {
        let Some(s) = self.slots[slot].as_mut() else { return };
        if let Some(d) = s.clock.on_update(&s.spec, now_ms) {
            self.timers.push(Reverse((d, slot as u32, s.gen)));
            s.clock.queued = Some(d);
        }
    }

    /// A packet accepted on `leg` of the session in `slot` (packet path: never grows the heap).
    pub(super) fn touch(&mut self, slot: usize, leg: usize, now_ms: u64) {
        let Some(s) = self.slots[slot].as_mut() else { return };
        if let Some(d) = s.clock.on_packet(&s.spec, leg, now_ms) {
            if self.timers.len() < self.timers.capacity() {
                self.timers.push(Reverse((d, slot as u32, s.gen)));
                s.clock.queued = Some(d);
            }
        }
    }

    /// Whether DTMF reports ([`Event::Dtmf`]) wait for [`Relay::poll_timeouts`]: a backend that
    /// calls it only at timer deadlines calls it now as well.
    pub fn has_reports(&self) -> bool {
        !self.dtmf_out.is_empty()
    }

    /// Media timeouts (see [`timeout`](crate::relay::timeout)): emits [`Event::MediaTimeout`] once per idle
    /// period for every session silent past its `media_timeout_ms`, and for every leg silent past
    /// its `leg_timeout_ms` while the other leg is not; returns the next time this should be
    /// called.
    pub fn poll_timeouts(&mut self, now_ms: u64, events: &mut impl FnMut(Event)) -> Option<u64> {
        // DTMF digits since the last poll: RFC 4733 events received (`relay::dtmf`), in-band
        // digits detected (`relay::inband`).
        for (id, leg, d) in self.dtmf_out.drain(..) {
            events(match d {
                super::inband::Digit::Start { event, .. } => Event::Dtmf { id, leg, event, end: false, duration_ms: 0 },
                super::inband::Digit::End { event, duration, .. } => {
                    Event::Dtmf { id, leg, event, end: true, duration_ms: duration / 8 }
                }
            });
        }
        while let Some(&Reverse((deadline, slot, gen))) = self.timers.peek() {
            if deadline > now_ms {
                return Some(deadline);
            }
            self.timers.pop();
            let Some(s) = self.slots.get_mut(slot as usize).and_then(|s| s.as_mut()) else {
                continue;
            };
            if s.gen != gen || s.clock.queued != Some(deadline) {
                continue; // A deleted session's entry, or one left behind.
            }
            s.clock.queued = None;
            s.clock.fire(&s.spec, now_ms, events);
            if let Some(d) = s.clock.next_deadline(&s.spec, now_ms) {
                // Everything due now has fired, so `d > now_ms`: the loop terminates.
                self.timers.push(Reverse((d, slot, gen)));
                s.clock.queued = Some(d);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use xtrunk_ring::msg::{LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId};

    use super::*;

    fn spec(session: u32, legs: [u32; 2]) -> SessionSpec {
        let leg = |port: u16| LegSpec {
            local: SocketAddr::from(([192, 0, 2, 1], port)),
            remote: None,
            remote_rtcp_port: 0,
            rtcp_mux: false,
            latch: LatchPolicy::Once,
            signal_ip: None,
            pt_map: PtMap::new(),
            crypto: LegCrypto::default(),
            ptime_ms: 0,
        };
        SessionSpec {
            id: SessionId(1),
            legs: [leg(10000), leg(10002)],
            media_timeout_ms: session,
            leg_timeout_ms: legs,
            allow_fast_path: false,
        }
    }

    fn fired(c: &mut MediaClock, s: &SessionSpec, now: u64) -> Vec<(Option<u8>, u64)> {
        let mut out = vec![];
        c.fire(s, now, &mut |e| {
            if let Event::MediaTimeout { leg, idle_ms, .. } = e {
                out.push((leg, idle_ms));
            }
        });
        out
    }

    #[test]
    fn blocked_leg_becomes_due_when_the_other_resumes() {
        let s = spec(0, [1000, 1000]);
        let mut c = MediaClock::new(0);
        // Both silent: neither leg is due, nothing to wait for.
        assert_eq!(c.next_deadline(&s, 1500), None);
        assert!(fired(&mut c, &s, 1500).is_empty());
        // Leg 0 resumes: leg 1 (silent 1600 ms) is due at once.
        assert_eq!(c.on_packet(&s, 0, 1600), Some(1600));
        assert_eq!(fired(&mut c, &s, 1600), vec![(Some(1), 1600)]);
        assert_eq!(c.next_deadline(&s, 1600), Some(2600), "leg 0's own deadline");
    }

    #[test]
    fn a_later_deadline_does_not_replace_the_live_entry() {
        let s = spec(5000, [1000, 1000]);
        let mut c = MediaClock::new(0);
        c.queued = c.wanted(&s, 0);
        assert_eq!(c.queued, Some(1000));
        assert_eq!(c.on_packet(&s, 0, 10), None);
        assert_eq!(c.on_packet(&s, 1, 20), None);
    }
}
