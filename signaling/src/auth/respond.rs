//! The core's side of the digest gate: sends the challenge, the refusal or nothing, counts, and
//! feeds the per-source guard. Decides nothing (that is [`super::Auth::gate`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use xtrunk_config::{TrunkId, UnknownSource};

use super::Gate;
use crate::b2bua::Core;
use crate::sip::msg::{HName, Message};
use crate::sip::status::response;
use crate::sip::transaction::TxKey;
use crate::transport::Dest;

impl Core {
    /// The digest gate of a new INVITE. `Some(identity)`: go on to policy (`Some(trunk)` when a
    /// digest user or a register trunk's registrar identified it); `None`: answered (407) or
    /// dropped here.
    pub(crate) fn gate_invite(&mut self, now: Instant, k: &TxKey, req: &Message, src: Dest) -> Option<Option<TrunkId>> {
        let ip = src.remote.ip();
        let cfg = Arc::clone(&self.cfg);
        let outsider = cfg.trunk_by_acl(ip).is_none();
        // A register trunk's calls come from its registrars (to the contact we registered).
        if outsider {
            let user = crate::call::user_of(req.uri().unwrap_or(""));
            if let Some(t) = crate::upstream::core::inbound_trunk(&cfg, &user, ip) {
                return Some(Some(t));
            }
        }
        let v = self.auth.gate(&cfg, req, ip, now);
        if let Some(why) = v.failed {
            if why != "no_credentials" && why != "unknown_source" {
                *self.metrics.auth.failed.entry(why.into()).or_insert(0) += 1;
            }
            if outsider {
                self.count_failure(ip, now);
            }
        }
        match v.gate {
            Gate::Pass(None) => Some(None),
            Gate::Pass(Some(t)) => {
                *self.metrics.auth.ok.entry(cfg.trunk(t).name.clone()).or_insert(0) += 1;
                self.auth.guard.forgive(ip);
                Some(Some(t))
            }
            Gate::Challenge { stale } => {
                self.challenge(now, k, req, ip, stale);
                None
            }
            Gate::Unknown if cfg.sip.unknown_source == UnknownSource::Forbidden => Some(None),
            Gate::Unknown => {
                self.metrics.auth.unknown_dropped += 1;
                self.txs.forget_server(k);
                None
            }
        }
    }

    /// The digest gate of a REGISTER: as [`Core::gate_invite`], but a registrar challenges
    /// with `401` and `WWW-Authenticate` (RFC 3261 §22.1). `Some(trunk)`: register for it.
    pub(crate) fn gate_register(
        &mut self,
        now: Instant,
        k: &TxKey,
        req: &Message,
        src: Dest,
    ) -> Option<Option<TrunkId>> {
        let ip = src.remote.ip();
        let cfg = Arc::clone(&self.cfg);
        let v = self.auth.gate(&cfg, req, ip, now);
        if let Some(why) = v.failed {
            if why != "no_credentials" && why != "unknown_source" {
                *self.metrics.auth.failed.entry(why.into()).or_insert(0) += 1;
            }
            if cfg.trunk_by_acl(ip).is_none() {
                self.count_failure(ip, now);
            }
        }
        match v.gate {
            Gate::Pass(t) => {
                if let Some(t) = t {
                    *self.metrics.auth.ok.entry(cfg.trunk(t).name.clone()).or_insert(0) += 1;
                    self.auth.guard.forgive(ip);
                }
                Some(t)
            }
            Gate::Challenge { stale } => {
                self.send_challenge(now, k, req, ip, stale, true);
                None
            }
            Gate::Unknown => {
                self.unknown_request(now, k.clone(), req, src);
                None
            }
        }
    }

    /// `407` with one `Proxy-Authenticate` per offered algorithm (see the module notes on 407).
    fn challenge(&mut self, now: Instant, k: &TxKey, req: &Message, ip: IpAddr, stale: bool) {
        self.send_challenge(now, k, req, ip, stale, false);
    }

    /// `407`/`Proxy-Authenticate`, or for a registrar (`www`) `401`/`WWW-Authenticate`.
    fn send_challenge(&mut self, now: Instant, k: &TxKey, req: &Message, ip: IpAddr, stale: bool, www: bool) {
        let (code, phrase, name) = if www {
            (401, "Unauthorized", "WWW-Authenticate")
        } else {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        };
        // A retransmitted INVITE (its 407 was lost or late) gets the same bytes again.
        let again = if www { None } else { self.auth.recent.get(k, now).cloned() };
        let (tag, nonce, stale) = match again {
            Some(s) => (s.tag, s.nonce, s.stale),
            None => {
                self.metrics.auth.challenges += 1;
                if stale {
                    self.metrics.auth.stale += 1;
                }
                (self.token(), self.auth.new_nonce(now, ip), stale)
            }
        };
        let mut r = response(req, code, phrase, Some(&tag));
        for v in self.auth.challenge_values(&nonce, stale) {
            r.push(HName::Other(name.into()), v);
        }
        if www {
            return self.txs.respond(now, k, &r);
        }
        // A challenged INVITE keeps no server transaction and arms no timer: its ACK matches
        // nothing and is dropped by `on_ack`'s dialog lookup, a retransmission is answered from
        // `auth.recent`. The per-challenge cost is the parse and this response.
        self.txs.respond_stateless(k, &r);
        self.auth.recent.insert(k.clone(), tag, nonce, stale, now);
    }

    /// Counts one failure of an outsider; logs and counts a ban it causes.
    pub(crate) fn count_failure(&mut self, ip: IpAddr, now: Instant) {
        if self.auth.guard.fail(ip, now) {
            self.metrics.auth.bans += 1;
            log::warn!(
                "banning {ip} for {} s after {} failures",
                self.cfg.sip.auth.ban_secs,
                self.cfg.sip.auth.ban_failures
            );
        }
    }

    /// True (and counted) when `ip` is banned: its requests get silence.
    pub(crate) fn banned(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.auth.guard.is_empty() || !self.auth.guard.is_banned(ip, now) {
            return false;
        }
        self.metrics.auth.banned_drops += 1;
        true
    }

    /// An out-of-dialog request other than INVITE/OPTIONS/CANCEL from a source that is no
    /// trunk's: `403` or silence (`sip.unknown_source`), counted against the source.
    pub(crate) fn unknown_request(&mut self, now: Instant, k: TxKey, req: &Message, src: Dest) {
        self.count_failure(src.remote.ip(), now);
        self.metrics.bad("Forbidden (no ACL match)", || src.remote.to_string());
        match self.cfg.sip.unknown_source {
            UnknownSource::Forbidden => self.reply(now, &k, req, 403, "Forbidden"),
            UnknownSource::Drop => {
                self.metrics.auth.unknown_dropped += 1;
                self.txs.forget_server(&k);
            }
        }
    }
}
