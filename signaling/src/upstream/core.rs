//! The core's side of [`crate::upstream`]: REGISTERs out (owner [`Owner::Registration`]),
//! answers and timeouts in, state changes logged and counted; and what the rest of the core
//! asks of a register trunk: which of its registrars a call may use, which trunk an inbound
//! call from a registrar is, and the credentials a challenged INVITE is answered with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xtrunk_config::{Registration, Snapshot, TrunkId, TrunkKind};

use super::{backoff, granted, Outcome};
use crate::auth::client::{self, Creds};
use crate::b2bua::Core;
use crate::sip::msg::{HName, Message, Method};
use crate::sip::transaction::{Owner, TxKey};
use crate::transport::{Dest, Transport};

/// Counters of the upstream registrations (in [`crate::metrics::Metrics`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistrationMetrics {
    /// REGISTERs sent (refreshes, retries and answers to challenges included).
    pub sent: u64,
    /// Challenges answered.
    pub challenged: u64,
    /// Registrations that failed (refused, unanswered, challenge not met).
    pub failed: u64,
    /// Registrations that came up.
    pub came_up: u64,
    /// Registrations that went down.
    pub went_down: u64,
}

impl Core {
    /// Takes bindings that ran out down, then sends the REGISTERs that are due.
    pub(crate) fn run_upstream(&mut self, now: Instant) {
        for i in self.upstream.expire(now) {
            self.metrics.registrations.went_down += 1;
            if let Some(r) = self.upstream.regs().get(i) {
                log::warn!("trunk {}: registration at {} is down: its binding expired", r.trunk, r.cfg.registrar);
            }
        }
        while let Some(i) = self.upstream.due(now) {
            let Some(tx) = self.send_register(now, i) else { break };
            self.upstream.sent(i, tx);
            self.metrics.registrations.sent += 1;
        }
    }

    /// Whether transaction `tx` is a REGISTER of ours; its answer (None: timed out) is handled.
    pub(crate) fn registration_outcome(&mut self, now: Instant, tx: &TxKey, msg: Option<&Message>) {
        let code = msg.and_then(Message::code).unwrap_or(408);
        if code < 200 {
            return;
        }
        let Some(i) = self.upstream.take_tx(tx) else { return };
        let contact = self.registered_contact(i);
        let Some(r) = self.upstream.get_mut(i) else { return };
        let outcome = match (code, msg) {
            (200..=299, Some(m)) => Outcome::Bound(granted(m, &contact, r.ask)),
            (401 | 407, Some(m)) => match client::pick(m) {
                // One answer per challenge; a second challenge only with stale=true (RFC 7616
                // §3.3): anything else means the credentials are wrong.
                Some((h, o)) if r.challenged == 0 || (o.stale && r.challenged < 3) => {
                    r.challenged += 1;
                    r.offer = Some((h, o, 0));
                    Outcome::Again
                }
                Some(_) => Outcome::Failed(format!("{code}: credentials refused")),
                None => Outcome::Failed(format!("{code} with no digest challenge we can answer")),
            },
            (423, Some(m)) => match m.header(&HName::Other("Min-Expires".into())).and_then(|v| v.trim().parse().ok()) {
                Some(min) if min > r.ask && min <= 86_400 && r.challenged < 3 => {
                    r.ask = min;
                    r.challenged += 1;
                    Outcome::Again
                }
                _ => Outcome::Failed("423 without a usable Min-Expires".into()),
            },
            (_, Some(_)) => Outcome::Failed(format!("answered {code}")),
            (_, None) => Outcome::Failed("no answer".into()),
        };
        self.apply_outcome(now, i, outcome);
    }

    fn apply_outcome(&mut self, now: Instant, i: usize, outcome: Outcome) {
        let Some(r) = self.upstream.get_mut(i) else { return };
        match outcome {
            Outcome::Bound(secs) => {
                let was = r.up;
                (r.up, r.failures, r.challenged, r.last_error) = (true, 0, 0, None);
                let secs = secs.max(1);
                r.until = Some(now + Duration::from_secs(u64::from(secs)));
                // Refresh at 3/4 of the expiry (at least 1 s before it runs out).
                let refresh = (u64::from(secs) * 750).min(u64::from(secs) * 1000 - 1000.min(u64::from(secs) * 500));
                r.next_at = now + Duration::from_millis(refresh);
                if !was {
                    log::info!("trunk {}: registered at {} for {secs} s", r.trunk, r.cfg.registrar);
                    self.metrics.registrations.came_up += 1;
                }
            }
            Outcome::Again => {
                r.next_at = now;
                self.metrics.registrations.challenged += 1;
            }
            Outcome::Failed(why) => {
                r.failures += 1;
                r.challenged = 0;
                r.offer = None;
                let wait = backoff(r.cfg.retry_secs, r.failures);
                r.next_at = now + wait;
                log::warn!(
                    "trunk {}: registration at {} failed: {why}; again in {} s",
                    r.trunk,
                    r.cfg.registrar,
                    wait.as_secs()
                );
                r.last_error = Some(why);
                self.metrics.registrations.failed += 1;
                if std::mem::replace(&mut r.up, false) {
                    r.until = None;
                    self.metrics.registrations.went_down += 1;
                }
            }
        }
    }

    /// The Contact URI registration `i` binds: `sip:<contact_user>@<our host>[;transport=..]`.
    fn registered_contact(&self, i: usize) -> String {
        let Some(r) = self.upstream.regs().get(i) else { return String::new() };
        self.register_dest(&r.trunk, &r.cfg).map_or_else(String::new, |d| self.contact_toward(&r.cfg, d))
    }

    fn contact_toward(&self, cfg: &Registration, d: Dest) -> String {
        let host = self.host_to(d.local, d.remote);
        format!("sip:{}@{host}{}", cfg.contact(), d.transport.uri_param())
    }

    /// Where registration `cfg` of `trunk` goes, from the trunk's listener.
    fn register_dest(&self, trunk: &str, cfg: &Registration) -> Option<Dest> {
        let id = self.cfg.trunk_by_name(trunk)?;
        let tp: Transport = cfg.transport.into();
        let local = self.listener_for(self.cfg.trunk(id), tp);
        Some(Dest { transport: tp, local, remote: cfg.registrar })
    }

    fn send_register(&mut self, now: Instant, i: usize) -> Option<TxKey> {
        let cnonce = self.ids.token();
        let r = self.upstream.regs().get(i)?;
        let dest = self.register_dest(&r.trunk, &r.cfg)?;
        let contact = self.contact_toward(&r.cfg, dest);
        let via = self.via(dest);
        let r = self.upstream.get_mut(i)?;
        r.cseq += 1;
        let host = r.cfg.aor_host();
        let ruri = format!("sip:{host}{}", dest.transport.uri_param());
        let aor = format!("<sip:{}@{host}>", r.cfg.username);
        let mut m = Message::request(Method::Register, ruri.clone());
        m.push(HName::Via, via)
            .push(HName::MaxForwards, "70")
            .push(HName::From, format!("{aor};tag={}", r.tag))
            .push(HName::To, aor)
            .push(HName::CallId, r.call_id.clone())
            .push(HName::CSeq, format!("{} REGISTER", r.cseq))
            .push(HName::Contact, format!("<{contact}>"))
            .push(HName::Expires, r.ask.to_string())
            .push(HName::Allow, crate::sip::status::ALLOW);
        // The last challenge's nonce is used again on refreshes (nc counts up); a registrar
        // that wants a new one challenges again.
        if let Some((h, offer, nc)) = &mut r.offer {
            *nc += 1;
            let creds = Creds { username: r.cfg.auth_user(), password: &r.cfg.password };
            m.push(h.clone(), client::answer(offer, creds, ("REGISTER", &ruri), *nc, &cnonce));
        }
        Some(self.txs.send_request(now, m, dest, Owner::Registration))
    }

    /// A `401`/`407` to the INVITE toward a register trunk: sent again with the credentials of
    /// the registration at that target (once per target; again only for `stale=true`). False:
    /// not answerable (not a register trunk, no challenge we know, credentials refused).
    pub(crate) fn answer_challenge(&mut self, now: Instant, id: crate::sip::transaction::CallKey, m: &Message) -> bool {
        let Some(call) = self.calls.get(&id) else { return false };
        let cfg = Arc::clone(&call.cfg);
        let tout = call.legs[1].trunk;
        let trunk = cfg.trunk(tout);
        let Some(t) = call.targets_tried.checked_sub(1).and_then(|i| call.target(trunk, i)).cloned() else {
            return false;
        };
        let Some(creds) = call_creds(&cfg, tout, t.addr).filter(|_| trunk.kind == TrunkKind::Register) else {
            return false;
        };
        let Some((header, offer)) = client::pick(m) else { return false };
        if call.b_challenged >= 3 || (call.b_challenged > 0 && !offer.stale) {
            log::warn!("call {}: trunk {} refused our credentials at {}", id.0, trunk.name, t.addr);
            return false;
        }
        let cnonce = self.token();
        let auth = crate::call::CallAuth {
            header,
            offer,
            username: creds.auth_user().to_string(),
            password: creds.password.clone(),
            cnonce,
        };
        let Some(call) = self.calls.get_mut(&id) else { return false };
        call.b_challenged += 1;
        call.legs[1].dlg.remote_tag.clear();
        // The challenged transaction completes on its own (it ACKs retransmitted 407s).
        call.b_ctx = None;
        self.metrics.registrations.challenged += 1;
        self.dial_b(now, id, &t, Some(auth));
        true
    }

    /// Whether calls to trunk `t` may go to its target `addr` now: OPTIONS health, and for a
    /// register trunk, a registration up at that registrar.
    pub(crate) fn target_up(&self, t: &xtrunk_config::TrunkView, key: (Transport, std::net::SocketAddr)) -> bool {
        self.health.is_online(key) && (t.kind != TrunkKind::Register || self.upstream.is_up(&t.name, key.1))
    }

    /// Upstream registrations: (trunk, registrar, up, last error), in config order.
    pub fn registrations(&self) -> Vec<(String, String, bool, Option<String>)> {
        self.upstream
            .regs()
            .iter()
            .map(|r| (r.trunk.clone(), r.cfg.registrar.to_string(), r.up, r.last_error.clone()))
            .collect()
    }

    /// Takes the registrations of a new configuration (unchanged ones keep their state).
    pub(crate) fn sync_upstream(&mut self, cfg: &Snapshot, now: Instant) {
        let ids = &mut self.ids;
        self.upstream.sync(cfg, now, &mut || ids.token());
    }
}

/// The register trunk an INVITE from `src` is (a registrar of its sends the calls for it): the
/// one whose registration's contact user is the Request-URI's user, else the first with a
/// registrar at that address. None when no register trunk has a registrar there.
pub fn inbound_trunk(cfg: &Snapshot, ruri_user: &str, src: std::net::IpAddr) -> Option<TrunkId> {
    let mut first = None;
    for t in cfg.trunks.iter().filter(|t| t.kind == TrunkKind::Register) {
        for r in t.registrations.iter().filter(|r| r.registrar.ip() == src) {
            if r.contact() == ruri_user {
                return Some(t.id);
            }
            first = first.or(Some(t.id));
        }
    }
    first
}

/// The credentials trunk `t` answers a challenge from its target `addr` with: the registration
/// at that registrar, else the trunk's first.
pub fn call_creds(cfg: &Arc<Snapshot>, t: TrunkId, addr: std::net::SocketAddr) -> Option<&Registration> {
    cfg.registration_at(t, addr).map(|(_, r)| r).or_else(|| cfg.trunk(t).registrations.first())
}
