//! Call timers (no answer, the CANCEL guard, hunting, waiting for the datapath) and what the
//! datapath reports about a call's session (refused commands, media timeouts, confirmed deletes).

use std::cmp::Reverse;
use std::time::Instant;

use xtrunk_ring::msg::{Command, ErrorCode, Event, SessionId};

use super::{CallTimer, State};
use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::sip::transaction::CallKey;

impl Core {
    /// A call timer fired.
    pub(crate) fn call_timer(&mut self, now: Instant, id: CallKey, kind: CallTimer) {
        let _span = self.span_of(id).entered();
        let Some(call) = self.calls.get_mut(&id) else { return };
        match kind {
            CallTimer::NoAnswer if call.state == State::Proceeding => {
                call.cdr.end_reason = EndReason::NoAnswer;
                self.cancel_b(now, id, 408);
            }
            CallTimer::Guard if call.state == State::Cancelling => self.finish(now, id),
            CallTimer::TargetTimeout(n) if call.cdr.attempts.len() == n && call.silent_target() => {
                log::info!("call {}: target {} sent nothing in time, trying the next", id.0, n);
                self.back_off_current(now, id);
                self.next_target(now, id);
            }
            CallTimer::Refresh(s) => self.send_refresh(now, id, s),
            CallTimer::Expiry(s, gen) => self.session_expired(now, id, s, gen),
            CallTimer::HuntBudget if call.silent_target() => {
                log::info!("call {}: no target answered within the hunt budget", id.0);
                if let Some(k) = call.b_ctx.take() {
                    self.txs.forget_client(&k);
                }
                call.cdr.end_reason = EndReason::Timeout;
                self.cancel_to_a_and_finish(now, id, 408);
            }
            CallTimer::MediaRetry if call.b_waits_media && call.state == State::Proceeding => {
                log::warn!("call {}: no Created from the datapath yet, sending the Create again", id.0);
                self.media_out.push_back(Command::Create(call.spec));
                self.heap.push(Reverse((now + super::MEDIA_RETRY, id, CallTimer::MediaRetry)));
            }
            CallTimer::MediaGuard if call.b_waits_media && call.state == State::Proceeding => {
                log::warn!("call {}: the datapath did not confirm its session, refusing 503", id.0);
                self.metrics.media_errors += 1;
                call.cdr.end_reason = EndReason::MediaError;
                self.cancel_b(now, id, 503);
            }
            _ => {}
        }
    }

    fn call_of_session(&self, id: SessionId) -> Option<CallKey> {
        // A new call's session id is its call number; a resumed call keeps the datapath's.
        let k = CallKey(id.0);
        if self.calls.get(&k).is_some_and(|c| c.session == id) {
            return Some(k);
        }
        self.calls.iter().find(|(_, c)| c.session == id).map(|(k, _)| *k)
    }

    /// An event from the datapath.
    pub(crate) fn media_event(&mut self, now: Instant, ev: Event) {
        let sid = match ev {
            Event::Created(id) | Event::Updated(id) => Some(id),
            Event::Deleted { id, .. } | Event::Error { id, .. } | Event::MediaTimeout { id, .. } => Some(id),
            Event::Dtmf { id, .. } => Some(id),
            Event::Session(_) | Event::DumpDone { .. } => None,
        };
        let _span = sid.and_then(|s| self.call_of_session(s)).map(|c| self.span_of(c).entered());
        match ev {
            Event::Deleted { id, stats, .. } => self.deleted(id, Some(stats)),
            // A repeated Create whose first copy arrived after all: the session exists. Its
            // Created may have come first (then the duplicate's refusal changes nothing).
            Event::Error { id, code: ErrorCode::DuplicateSession, .. } if self.call_of_session(id).is_some() => {
                if self.call_of_session(id).is_some_and(|c| self.calls[&c].b_waits_media) {
                    self.media_event(now, Event::Created(id));
                } else {
                    log::debug!("session {}: the repeated Create was refused as a duplicate (it exists)", id.0);
                }
            }
            Event::Error { id, code, port } => {
                self.metrics.media_errors += 1;
                log::warn!("datapath refused a command for session {}: {code:?} (port {port})", id.0);
                if code == ErrorCode::UnknownSession {
                    self.deleted(id, None);
                } else if let Some(cid) = self.call_of_session(id) {
                    // Create/Update refused: the call cannot carry media. Its Delete will be
                    // answered UnknownSession, which returns the ports.
                    let Some(c) = self.calls.get_mut(&cid) else { return };
                    c.cdr.end_reason = EndReason::MediaError;
                    match c.state {
                        State::Proceeding => self.cancel_b(now, cid, 503),
                        State::Cancelling => {}
                        _ => self.end_call(now, cid, EndReason::MediaError),
                    }
                }
            }
            Event::Dtmf { id, leg, event, end, duration_ms } => {
                // A digit's start and end (RFC 4733 or in-band): its start goes into the CDR.
                let Some(cid) = self.call_of_session(id) else { return };
                let digit = b"0123456789*#ABCD".get(usize::from(event)).map_or('?', |&c| char::from(c));
                if end {
                    log::info!("call {}: DTMF {digit} on leg {leg}, {duration_ms} ms", cid.0);
                } else {
                    log::debug!("call {}: DTMF {digit} starts on leg {leg}", cid.0);
                    if let Some(c) = self.calls.get_mut(&cid) {
                        c.cdr.push_dtmf(event);
                        self.journal_dirty.insert(cid);
                    }
                }
            }
            Event::MediaTimeout { id, idle_ms, leg } => {
                let Some(cid) = self.call_of_session(id) else { return };
                if matches!(self.calls[&cid].state, State::Confirmed | State::Answered) {
                    match leg {
                        None => log::info!("call {}: no media on either leg for {idle_ms} ms, ending", cid.0),
                        // Leg 0 is the caller's (a), leg 1 the callee's (b).
                        Some(l) => log::info!(
                            "call {}: one-way media: no RTP or RTCP from leg {} for {idle_ms} ms, ending",
                            cid.0,
                            if l == 0 { "a (caller)" } else { "b (callee)" }
                        ),
                    }
                    self.end_call(now, cid, EndReason::MediaTimeout);
                }
            }
            Event::Created(id) => {
                let Some(cid) = self.call_of_session(id) else { return };
                let Some(c) = self.calls.get_mut(&cid) else { return };
                if std::mem::take(&mut c.b_waits_media) {
                    self.media_wait -= 1;
                    if c.state == State::Proceeding {
                        self.send_b_invite(now, cid);
                    }
                }
            }
            Event::Updated(_) | Event::Session(_) | Event::DumpDone { .. } => {}
        }
    }
}
