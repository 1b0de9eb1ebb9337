//! Session timers (RFC 4028). A call has an interval `S` when the caller asked for one
//! (`Session-Expires`, at least our `Min-SE`, else `422`) or `sip.session_expires_secs` is set.
//! The edge is the refresher on both legs: the callee-side INVITE carries `Session-Expires:
//! S;refresher=uac`, our 2xx to the caller `S;refresher=uas`; every `S/2` each leg gets an
//! UPDATE (no body) and a leg not refreshed within `S` of its last success ends the call (BYE on
//! both legs, CDR `session_expired`). A leg whose peer does not take UPDATE (405/501/420) stops
//! being refreshed rather than cutting a call over a missing extension.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use super::{CallTimer, State};
use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::sip::msg::{HName, Message, Method};
use crate::sip::transaction::{CallKey, Owner, Purpose};

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

    fn arm_session_timer(&mut self, now: Instant, id: CallKey, s: u8) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let secs = u64::from(call.session_expires);
        let g = &mut call.refresh_gen[usize::from(s)];
        *g = g.wrapping_add(1);
        let gen = *g;
        self.heap.push(Reverse((now + Duration::from_millis(secs * 500), id, CallTimer::Refresh(s))));
        self.heap.push(Reverse((now + Duration::from_secs(secs), id, CallTimer::Expiry(s, gen))));
    }

    /// `Refresh(s)`: an UPDATE on leg `s`.
    pub(crate) fn send_refresh(&mut self, now: Instant, id: CallKey, s: u8) {
        let Some(call) = self.calls.get(&id) else { return };
        if !matches!(call.state, State::Answered | State::Confirmed) || !call.refreshing[usize::from(s)] {
            return;
        }
        let secs = call.session_expires;
        let d = call.legs[usize::from(s)].dlg.dest;
        let via = self.via(d);
        let contact = self.contact(d);
        let Some(call) = self.calls.get_mut(&id) else { return };
        let mut m = call.legs[usize::from(s)].dlg.request(Method::Update, via, contact, None);
        m.push(HName::Other("Session-Expires".into()), format!("{secs};refresher=uac")).push(HName::Supported, "timer");
        self.journal_dirty.insert(id);
        self.txs.send_request(now, m, d, Owner::Call(id, Purpose::Refresh(s)));
    }

    /// The final answer (`code`; 408 for a timeout) to our refresh on leg `s`.
    pub(crate) fn refresh_result(&mut self, now: Instant, id: CallKey, s: u8, code: u16) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        match code {
            200..=299 => self.arm_session_timer(now, id, s),
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
