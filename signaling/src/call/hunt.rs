//! Hunting over a route's entries (#16): when every target of the current trunk failed (a
//! `failover_codes` final, a timeout, unreachable, offline), the call moves to the route's next
//! trunk: the callee leg gets that trunk's offer (its media address, codecs, SRTP), interface and
//! targets, and the datapath leg its latching; every target tried is an attempt in the CDR.
//! Also which target a trunk's calls try first (`trunk.distribution`).

use std::sync::Arc;
use std::time::Instant;

use xtrunk_config::{Dtmf, Snapshot, TrunkId};
use xtrunk_ring::msg::Command;

use super::{common_codecs, latch_of, srtp_prefs};
use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::policy;
use crate::sdp::{self, Origin, Rewrite, Sdp, SdpError};
use crate::sip::transaction::CallKey;

/// The offer toward `tout` for a call from `tin` whose caller offered `offer`: the relay's
/// address on `tout`'s media interface, the codecs both trunks allow (and G.729 if `tout` allows
/// it: [`sdp::offer_g729`]), SRTP by `tout`'s policy
/// (fresh keys: the callee's leg is keyed on its own).
pub(crate) fn callee_offer(
    cfg: &Snapshot,
    (tin, tout): (TrunkId, TrunkId),
    caller_tls: bool,
    offer: &Sdp,
    port: u16,
    origin: &mut Origin,
) -> Result<Sdp, SdpError> {
    let allowed = common_codecs(cfg.trunk(tout), cfg.trunk(tin));
    let srtp_off = srtp_prefs(cfg.trunk(tin), caller_tls).policy == xtrunk_config::SrtpPolicy::Off;
    let rw = Rewrite { ip: cfg.trunk(tout).media_ip, port, allowed: &allowed, srtp_off };
    let prefs = srtp_prefs(cfg.trunk(tout), super::tls_toward(cfg.trunk(tout)));
    let mut s = sdp::rewrite_offer(offer, &rw, origin)?;
    // G.729 toward a trunk that allows it, even if the caller offered only G.711: the relay
    // transcodes when the callee picks it (and only then).
    sdp::offer_g729(&mut s, &cfg.trunk(tout).codecs);
    // An in-band caller's digits reach an RFC 4733 callee as events (the relay interworks).
    let (ti, to) = (cfg.trunk(tin), cfg.trunk(tout));
    if ti.dtmf == Dtmf::Inband && to.dtmf != Dtmf::Inband && to.codecs.contains(&xtrunk_config::Codec::TelephoneEvent) {
        sdp::add_telephone_event(&mut s, None, None);
    }
    if prefs.offer_srtp(false) {
        sdp::add_offer_crypto(&mut s, &prefs.suites, None)?;
    }
    Ok(s)
}

impl Core {
    /// The target a new call to `trunk` tries first, within its best priority group: the
    /// first under `priority`, else the next by (weighted) round-robin. A `domain` trunk's
    /// `priority` is RFC 2782's: weighted by the SRV weights. The state is per trunk name, reset
    /// when the group changes size.
    pub(crate) fn first_target(&mut self, trunk: &xtrunk_config::TrunkView) -> usize {
        use xtrunk_config::Distribution;
        let best = trunk.targets.first().map_or(0, |t| t.priority);
        let n = trunk.targets.iter().take_while(|t| t.priority == best).count();
        let weighted = trunk.distribution == Distribution::Weight
            || (trunk.domain.is_some() && trunk.distribution == Distribution::Priority);
        if (trunk.distribution == Distribution::Priority && !weighted) || n < 2 {
            return 0;
        }
        if self.rotation.get(&trunk.name).is_none_or(|c| c.len() != n) {
            self.rotation.insert(trunk.name.clone(), vec![0; n]);
        }
        let Some(cur) = self.rotation.get_mut(&trunk.name) else { return 0 };
        let mut weights = [1u32; 16];
        let w: &[u32] = if weighted && n <= weights.len() {
            for (slot, t) in weights.iter_mut().zip(&trunk.targets) {
                *slot = t.weight;
            }
            &weights[..n]
        } else if n <= weights.len() {
            &weights[..n]
        } else {
            // More than 16 targets: plain rotation over all of them.
            let i = usize::try_from(cur[0].rem_euclid(n as i64)).unwrap_or(0);
            cur[0] += 1;
            return i;
        };
        policy::routing::pick_weighted(w, cur)
    }

    /// The call's current target timed out or was unreachable: new calls skip it for
    /// `sip.target_backoff_secs` while the trunk has another target.
    pub(crate) fn back_off_current(&mut self, now: Instant, id: CallKey) {
        let Some(call) = self.calls.get(&id) else { return };
        let secs = u64::from(call.cfg.sip.target_backoff_secs);
        let trunk = call.cfg.trunk(call.legs[1].trunk);
        let Some(t) = call.targets_tried.checked_sub(1).and_then(|i| call.target(trunk, i)) else { return };
        if secs > 0 {
            log::info!("target {} of trunk {} backed off for {secs} s", t.addr, trunk.name);
            self.health.back_off((t.transport.into(), t.addr), now + std::time::Duration::from_secs(secs));
        }
    }

    /// Whether a final `code` (None: the target timed out or was unreachable) of the current
    /// trunk moves the call to the route's next entry.
    pub(crate) fn entry_fails_over(&self, id: CallKey, code: Option<u16>) -> bool {
        let Some(call) = self.calls.get(&id) else { return false };
        if !call.has_next_entry() {
            return false;
        }
        let codes = call.route.and_then(|r| call.cfg.routes.get(r)).map(|r| r.failover_codes.as_slice());
        code.is_none_or(|c| codes.map_or(c == 408 || (500..600).contains(&c), |cs| cs.contains(&c)))
    }

    /// Moves the call to its route's next trunk and dials that trunk's first target; a trunk
    /// whose offer cannot be built (no codec in common with the caller's) is skipped.
    pub(crate) fn next_entry(&mut self, now: Instant, id: CallKey) {
        loop {
            let Some(call) = self.calls.get_mut(&id) else { return };
            if call.entry + 1 >= call.entries.len() && !reoriginate(call) {
                call.cdr.end_reason = EndReason::Timeout;
                return self.cancel_to_a_and_finish(now, id, 408);
            }
            call.entry += 1;
            let cfg = Arc::clone(&call.cfg);
            let (tin, tout) = (call.legs[0].trunk, call.entries[call.entry]);
            // The call's channels move with it: the next trunk's (and its account's) are taken
            // before it is dialled; a trunk that is full is skipped like one that failed.
            if let Some(l) = call.hold.lease.take() {
                self.admission.store.release(l);
            }
            let wants = policy::limits::channel_wants(&cfg, tin, tout);
            if !wants.is_empty() {
                match self.admission.store.try_acquire(&wants, now) {
                    Ok(l) => call.hold.lease = Some(l),
                    Err(_) => {
                        log::info!("call {}: route entry {} skipped: channels full", id.0, call.entry);
                        continue;
                    }
                }
            }
            let mut origin = call.legs[1].origin;
            match callee_offer(
                &cfg,
                (tin, tout),
                super::leg_tls(&call.legs[0]),
                &call.a_offer,
                call.legs[1].port,
                &mut origin,
            ) {
                Ok(sdp) => {
                    let trunk = cfg.trunk(tout);
                    log::info!("call {}: route entry {} ({}) next", id.0, call.entry, trunk.name);
                    let first = self.first_target(trunk);
                    let local = self.listener_for(trunk, trunk.targets[first].transport.into());
                    let host = self.host_to(local, trunk.targets[first].addr).into_owned();
                    let Some(call) = self.calls.get_mut(&id) else { return };
                    let leg = &mut call.legs[1];
                    (leg.trunk, leg.origin, leg.local_sdp) = (tout, origin, Some(sdp));
                    leg.dlg.remote_tag.clear();
                    leg.dlg.local_hdr = with_host(&leg.dlg.local_hdr, &host);
                    (call.targets_tried, call.first_target) = (0, first);
                    call.cdr.trunk_out.clone_from(&trunk.name);
                    call.spec.legs[1].latch = latch_of(trunk);
                    call.spec.legs[1].signal_ip = trunk.targets.get(first).map(|t| t.addr.ip());
                    self.media_out.push_back(Command::Update(call.spec));
                    return self.send_b_invite(now, id);
                }
                Err(e) => log::info!("call {}: route entry {} skipped: {e}", id.0, call.entry),
            }
        }
    }
}

/// Re-originates `call` to its route's `then_number` (once): the number becomes the called user
/// and the number's own route (from the same inbound trunk) supplies the next entries.
fn reoriginate(call: &mut super::Call) -> bool {
    if call.reoriginated {
        return false;
    }
    call.reoriginated = true;
    let Some(number) = call.route.and_then(|r| call.cfg.routes.get(r)).and_then(|r| r.then_number.clone()) else {
        return false;
    };
    let Some((ix, r)) = call.cfg.route_for(call.legs[0].trunk, &number) else {
        log::info!("no route for the route's then_number {number}");
        return false;
    };
    let route: Vec<TrunkId> = std::iter::once(r.trunk).chain(r.then.iter().copied()).collect();
    let more = policy::with_failover(&call.cfg, &route);
    log::info!("re-originating to {number} (route {ix})");
    call.entries.extend(more);
    call.route = Some(ix);
    call.user = number;
    true
}

/// A From value `"name" <sip:user@old-host>;tag=x` with `host` in place of the old host.
fn with_host(from: &str, host: &str) -> String {
    match (from.find('@'), from.find('>')) {
        (Some(at), Some(end)) if at < end => format!("{}@{host}{}", &from[..at], &from[end..]),
        _ => from.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_host_replaces_only_the_host() {
        assert_eq!(
            super::with_host("\"A\" <sip:100@10.0.0.1:5060>;tag=x", "192.0.2.1:5060"),
            "\"A\" <sip:100@192.0.2.1:5060>;tag=x"
        );
        assert_eq!(super::with_host("garbage", "h"), "garbage");
    }
}
