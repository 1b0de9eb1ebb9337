//! Session timers (RFC 4028). A call has an interval `S` when the caller asked for one
//! (`Session-Expires`, at least our `Min-SE`, else `422`) or `sip.session_expires_secs` is set.
//! The edge is the refresher on the callee leg (its INVITE carries `Session-Expires:
//! S;refresher=uac`) and on the caller leg unless the caller asked to refresh itself
//! (`refresher=uac` with `Supported: timer`: our 2xx keeps `refresher=uac` with `Require: timer`,
//! RFC 4028 §9, and the edge watches its refreshes). Every `S/2` a leg we refresh gets an UPDATE
//! (no body); a peer that refuses UPDATE (405/501) gets re-INVITEs with our unchanged SDP
//! instead. A leg not refreshed within `S` of its last success (a watched one: `S - min(32,
//! S/3)`, §10) ends the call (BYE on both legs, CDR `session_expired`). A leg whose peer takes
//! neither (or answers 420) stops being refreshed rather than cutting a call over a missing
//! extension.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use super::{CallTimer, State};
use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::sip::msg::{HName, Message, Method};
use crate::sip::transaction::{CallKey, Owner, Purpose};

/// How a leg's session is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresher {
    /// We send UPDATEs.
    Update,
    /// We send re-INVITEs (the peer refused UPDATE).
    Invite,
    /// The peer refreshes; we watch.
    Peer,
}

impl Refresher {
    /// The caller leg's: `Peer` when the INVITE asks `refresher=uac` and supports `timer`.
    pub(crate) fn of_caller(req: &Message) -> Self {
        let asks = req.headers.iter().any(|h| {
            matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case("session-expires") || n.eq_ignore_ascii_case("x"))
                && h.value.split(';').skip(1).any(|p| p.trim().eq_ignore_ascii_case("refresher=uac"))
        });
        if asks && supports_timer(req) {
            Self::Peer
        } else {
            Self::Update
        }
    }
}

/// A request's `Session-Expires` seconds (full or compact `x` name), when it has one.
pub(crate) fn session_expires(m: &Message) -> Option<u32> {
    let h = m.headers.iter().find(|h| {
        matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case("session-expires") || n.eq_ignore_ascii_case("x"))
    })?;
    h.value.split(';').next()?.trim().parse().ok()
}

/// Whether a message lists `timer` in `Supported`.
pub(crate) fn supports_timer(m: &Message) -> bool {
    m.headers_of(&HName::Supported).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case("timer"))
}

/// The interval for a new call from `req`: `Ok(0)` for none; `Err(min_se)` when the caller's
/// is below our minimum (answer `422` with `Min-SE`).
pub(crate) fn interval(sip: &xtrunk_config::Sip, req: &Message) -> Result<u32, u32> {
    match session_expires(req) {
        Some(s) if s < sip.min_se_secs => Err(sip.min_se_secs),
        Some(s) => Ok(s.min(86_400)),
        None => Ok(sip.session_expires_secs),
    }
}

impl Core {
    /// Starts both legs' refresh and expiry timers (the call was just answered).
    pub(crate) fn start_session_timers(&mut self, now: Instant, id: CallKey) {
        let Some(call) = self.calls.get(&id) else { return };
        if call.session_expires == 0 {
            return;
        }
        for s in 0..2u8 {
            self.arm_session_timer(now, id, s);
        }
    }

    pub(crate) fn arm_session_timer(&mut self, now: Instant, id: CallKey, s: u8) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let secs = u64::from(call.session_expires);
        let g = &mut call.refresh_gen[usize::from(s)];
        *g = g.wrapping_add(1);
        let gen = *g;
        if call.refresh_by[usize::from(s)] == Refresher::Peer {
            // §10: the side that does not refresh ends it at S - min(32, S/3).
            let at = now + Duration::from_secs(secs - (secs / 3).min(32));
            self.heap.push(Reverse((at, id, CallTimer::Expiry(s, gen))));
            return;
        }
        self.heap.push(Reverse((now + Duration::from_millis(secs * 500), id, CallTimer::Refresh(s))));
        self.heap.push(Reverse((now + Duration::from_secs(secs), id, CallTimer::Expiry(s, gen))));
    }

    /// `Refresh(s)`: an UPDATE on leg `s`.
    pub(crate) fn send_refresh(&mut self, now: Instant, id: CallKey, s: u8) {
        let Some(call) = self.calls.get(&id) else { return };
        if !matches!(call.state, State::Answered | State::Confirmed) || !call.refreshing[usize::from(s)] {
            return;
        }
        let by = call.refresh_by[usize::from(s)];
        if by == Refresher::Peer {
            return;
        }
        if by == Refresher::Invite && (call.reoffer.is_some() || call.transfer.is_some()) {
            // One INVITE transaction at a time on a dialog: after the one in progress.
            self.heap.push(Reverse((now + Duration::from_secs(2), id, CallTimer::Refresh(s))));
            return;
        }
        let secs = call.session_expires;
        let (d, sips) = (call.legs[usize::from(s)].dlg.dest, super::sips_leg(call, usize::from(s)));
        let via = self.via(d);
        let contact = self.contact_as(d, sips);
        let Some(call) = self.calls.get_mut(&id) else { return };
        let leg = &mut call.legs[usize::from(s)];
        let mut m = if by == Refresher::Invite {
            // Our current SDP, its version unchanged: nothing about the session changes.
            let body = leg.local_sdp.as_ref().map(|sdp| ("application/sdp", sdp.to_bytes()));
            leg.dlg.request(Method::Invite, via, contact, body)
        } else {
            leg.dlg.request(Method::Update, via, contact, None)
        };
        m.push(HName::Other("Session-Expires".into()), format!("{secs};refresher=uac")).push(HName::Supported, "timer");
        self.journal_dirty.insert(id);
        self.txs.send_request(now, m, d, Owner::Call(id, Purpose::Refresh(s)));
    }

    /// The final answer (`code`; 408 for a timeout) to our refresh on leg `s`.
    pub(crate) fn refresh_result(&mut self, now: Instant, id: CallKey, s: u8, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let by = call.refresh_by[usize::from(s)];
        if by == Refresher::Invite && (200..300).contains(&code) {
            let dlg = call.legs[usize::from(s)].dlg.clone();
            self.ack_on(&dlg);
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        match code {
            200..=299 => self.arm_session_timer(now, id, s),
            405 | 501 if by == Refresher::Update => {
                log::info!("call {}: leg {s} does not take UPDATE ({code}); refreshing it by re-INVITE", id.0);
                call.refresh_by[usize::from(s)] = Refresher::Invite;
                self.send_refresh(now, id, s);
            }
            // Glare with the peer's own re-INVITE: again shortly.
            491 => self.heap.push(Reverse((now + Duration::from_secs(2), id, CallTimer::Refresh(s)))),
            405 | 420 | 501 => {
                log::info!("call {}: leg {s} does not take UPDATE ({code}); not refreshing it", id.0);
                call.refreshing[usize::from(s)] = false;
            }
            // 408/481 and the rest: the leg is gone; the expiry timer ends the call (RFC 4028 §10
            // lets a refresher end at once on 408/481).
            _ => {
                log::info!("call {}: refresh of leg {s} answered {code}; ending the call", id.0);
                self.end_call(now, id, EndReason::SessionExpired);
            }
        }
    }

    /// `Expiry(s, gen)`: leg `s` had no successful refresh since generation `gen`.
    pub(crate) fn session_expired(&mut self, now: Instant, id: CallKey, s: u8, gen: u32) {
        let Some(call) = self.calls.get(&id) else { return };
        let live = matches!(call.state, State::Answered | State::Confirmed);
        if live && call.refreshing[usize::from(s)] && call.refresh_gen[usize::from(s)] == gen {
            log::info!("call {}: session of leg {s} expired (no refresh within {} s)", id.0, call.session_expires);
            self.end_call(now, id, EndReason::SessionExpired);
        }
    }
}
