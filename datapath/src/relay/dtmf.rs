//! RFC 4733 events received on a leg, reported to the sidecar (#18, for CDRs and an IVR hook)
//! like the in-band digits `relay::inband` detects: once at an event's start, once at its end.
//!
//! An event is its RTP timestamp (RFC 4733 §2.5.1.1: the start of the event, repeated in every
//! packet of it). A packet with a newer timestamp starts a new event; the first packet of an
//! event with the E bit ends it (the two retransmissions of the end are not reported again).
//! A packet older than the current event (reordered, late) is ignored.

use super::inband::Digit;
use crate::wire::dtmf::DtmfPayload;

/// Per leg: the event being received.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EventRx {
    /// Timestamp of the current event and whether its end was reported.
    current: Option<(u32, bool)>,
}

impl EventRx {
    /// A telephone-event payload with RTP timestamp `ts`; pushes what changed to `out`.
    pub(super) fn on_payload(&mut self, ts: u32, payload: &[u8], out: &mut impl FnMut(Digit)) {
        let Ok(p) = DtmfPayload::new_checked(payload) else { return };
        let (event, end, duration) = (p.event(), p.end(), u32::from(p.duration()));
        match self.current {
            Some((at, _)) if at != ts && (ts.wrapping_sub(at) as i32) < 0 => {}
            Some((at, ended)) if at == ts => {
                if end && !ended {
                    out(Digit::End { event, ts, duration });
                    self.current = Some((ts, true));
                }
            }
            _ => {
                out(Digit::Start { event, ts });
                if end {
                    out(Digit::End { event, ts, duration });
                }
                self.current = Some((ts, end));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
    }

    #[test]
    fn one_start_and_one_end_per_event() {
        let mut rx = EventRx::default();
        let mut got = vec![];
        let mut out = |d| got.push(d);
        for (ts, p) in [
            (800, ev(5, false, 160)),
            (800, ev(5, false, 320)),
            (800, ev(5, true, 640)),
            (800, ev(5, true, 640)),
            (800, ev(5, true, 640)),
            // A late packet of nothing newer is ignored; a new event starts.
            (400, ev(4, false, 160)),
            (4000, ev(11, true, 400)),
        ] {
            rx.on_payload(ts, &p, &mut out);
        }
        assert_eq!(
            got,
            vec![
                Digit::Start { event: 5, ts: 800 },
                Digit::End { event: 5, ts: 800, duration: 640 },
                Digit::Start { event: 11, ts: 4000 },
                Digit::End { event: 11, ts: 4000, duration: 400 },
            ]
        );
    }
}
