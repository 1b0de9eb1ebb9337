//! Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) and scanner resistance, sans-IO:
//! a request, its source and `now` in, a [`Verdict`] out; the core sends what it says
//! (`respond.rs`). No clock, no socket.
//!
//! - [`digest`]: the credentials parser and the hashes (MD5, SHA-256, SHA-512/256; qop=auth,
//!   and no qop for RFC 2069 MD5 peers).
//! - [`nonce`]: stateless nonces (issue time + HMAC-SHA256 over time and source) and the
//!   bounded nonce-count table.
//! - [`guard`]: failures per source and the temporary ban.
//!
//! **401 or 407.** Every request we challenge is an INVITE that the B2BUA relays to another
//! trunk; we are the UAS of the caller's leg, but the credentials are those of the edge in
//! front of the network (a proxy's role in RFC 3261 §22.3), so the challenge is
//! `407 Proxy Authentication Required` with `Proxy-Authenticate`, the response most PBXs
//! expect from a trunk provider. The registrar (`crate::registrar`) answers REGISTER with 401.
//! Either credentials header is read (`Proxy-Authorization` first).
//!
//! **No enumeration.** An unknown user, a wrong password, a user of another trunk, a wrong
//! realm or uri, a forged nonce and a replayed nonce-count all get the same fresh challenge;
//! an unknown user's response is computed against a dummy HA1 so the work is the same. Only
//! the metrics tell them apart.

pub mod client;
pub mod digest;
pub mod guard;
pub mod nonce;
pub mod recent;
mod respond;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use xtrunk_config::{AuthMode, DigestAlgorithm, Snapshot, TrunkId};

use crate::ids::Seed;
use crate::sip::msg::{HName, Message};
use digest::{Algorithm, Credentials};
use guard::{Guard, GuardConfig};
use nonce::{Count, NonceCheck, NonceKey, Replay};

/// What to do with a request that needs identifying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Go on. `Some`: the trunk the digest user belongs to; `None`: identified by ACL as before.
    Pass(Option<TrunkId>),
    /// Challenge (407) with a fresh nonce; `stale`: the credentials were right but the nonce old.
    Challenge {
        /// `stale=true`.
        stale: bool,
    },
    /// A source in no trunk's ACL and nothing to challenge for: `sip.unknown_source`.
    Unknown,
}

/// A gate decision and, when the request failed, why (the metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What to do.
    pub gate: Gate,
    /// The failure reason, when the request counts as one.
    pub failed: Option<&'static str>,
}

impl Verdict {
    fn fail(why: &'static str) -> Self {
        Self { gate: Gate::Challenge { stale: false }, failed: Some(why) }
    }
}

struct User {
    trunk: TrunkId,
    /// HA1 hex per algorithm ([`Algorithm::index`]).
    ha1: [Option<String>; 3],
}

/// The digest state the core owns: nonce key, nonce counts, users, per-source failures.
pub struct Auth {
    key: NonceKey,
    replay: Replay,
    /// Failures per source and bans.
    pub guard: Guard,
    users: HashMap<String, User>,
    realm: String,
    algorithms: Vec<Algorithm>,
    lifetime: u64,
    epoch: Instant,
    any_digest: bool,
    dummy: [String; 3],
    serial: u64,
    /// The `407`s sent lately, repeated byte for byte to a retransmitted INVITE.
    pub recent: recent::Recent,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("users", &self.users.len()).field("nonces", &self.replay.len()).finish()
    }
}

fn guard_config(cfg: &Snapshot) -> GuardConfig {
    let a = &cfg.sip.auth;
    GuardConfig {
        failures: a.ban_failures,
        window: Duration::from_secs(a.ban_window_secs.into()),
        ban: Duration::from_secs(a.ban_secs.into()),
        capacity: a.max_sources,
    }
}

/// The realm challenges carry: `sip.auth.realm`, else `node.name`, else "xtrunk".
pub fn realm_of(cfg: &Snapshot) -> String {
    match (&cfg.sip.auth.realm, cfg.node.name.as_str()) {
        (Some(r), _) => r.clone(),
        (None, "") => "xtrunk".into(),
        (None, n) => n.to_string(),
    }
}

impl Auth {
    /// The state for `cfg`; the nonce key is derived from `seed` (the core's CSPRNG seed).
    pub fn new(cfg: &Snapshot, seed: &Seed, now: Instant) -> Self {
        let mut h = Sha256::new();
        h.update(b"xtrunk-nonce-key-v1");
        h.update(seed.0);
        let mut key = [0u8; 32];
        key.copy_from_slice(&h.finalize());
        let mut a = Self {
            key: NonceKey::new(key),
            replay: Replay::new(cfg.sip.auth.max_nonces),
            guard: Guard::new(guard_config(cfg)),
            users: HashMap::new(),
            realm: String::new(),
            algorithms: Vec::new(),
            lifetime: 1,
            epoch: now,
            any_digest: false,
            dummy: Default::default(),
            serial: 0,
            recent: Default::default(),
        };
        a.reload(cfg);
        a
    }

    /// Follows a reload: users, realm, algorithms and thresholds; nonces and failures stay.
    pub fn reload(&mut self, cfg: &Snapshot) {
        self.realm = realm_of(cfg);
        self.algorithms = cfg
            .sip
            .auth
            .algorithms
            .iter()
            .map(|a| match a {
                DigestAlgorithm::Md5 => Algorithm::Md5,
                DigestAlgorithm::Sha256 => Algorithm::Sha256,
                DigestAlgorithm::Sha512_256 => Algorithm::Sha512_256,
            })
            .collect();
        self.lifetime = u64::from(cfg.sip.auth.nonce_lifetime_secs.max(1));
        self.guard.set_config(guard_config(cfg));
        self.users.clear();
        for t in &cfg.raw.trunks {
            let Some(id) = cfg.trunk_by_name(&t.name) else { continue };
            for u in &t.users {
                let given = [&u.ha1_md5, &u.ha1_sha256, &u.ha1_sha512_256];
                let ha1 = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256].map(|alg| {
                    given[alg.index()]
                        .as_ref()
                        .map(|h| h.to_ascii_lowercase())
                        .or_else(|| u.password.as_ref().map(|p| alg.ha1(&u.username, &self.realm, p)))
                });
                self.users.insert(u.username.clone(), User { trunk: id, ha1 });
            }
        }
        self.any_digest = cfg.trunks.iter().any(|t| t.auth == AuthMode::Digest);
        self.dummy = [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256]
            .map(|alg| alg.ha1("\u{0}no-such-user", &self.realm, "\u{0}"));
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// The challenge header values for `ip` at `now`: one per offered algorithm, in order,
    /// sharing one new nonce.
    pub fn challenges(&mut self, now: Instant, ip: IpAddr, stale: bool) -> Vec<String> {
        let nonce = self.new_nonce(now, ip);
        self.challenge_values(&nonce, stale)
    }

    /// A new nonce for `ip` at `now`.
    pub fn new_nonce(&mut self, now: Instant, ip: IpAddr) -> String {
        self.serial += 1;
        self.key.issue(self.secs(now), self.serial, ip)
    }

    /// The challenge header values carrying `nonce`: one per offered algorithm, in order.
    pub fn challenge_values(&self, nonce: &str, stale: bool) -> Vec<String> {
        self.algorithms
            .iter()
            .map(|&algorithm| digest::Challenge { realm: &self.realm, nonce, algorithm, stale }.to_value())
            .collect()
    }

    /// Nonces whose count is tracked.
    pub fn nonces(&self) -> usize {
        self.replay.len()
    }

    /// Decides a new request from `ip`: by ACL as before, or by its digest credentials.
    pub fn gate(&mut self, cfg: &Snapshot, req: &Message, ip: IpAddr, now: Instant) -> Verdict {
        let acl = cfg.trunk_by_acl(ip);
        if acl.is_some_and(|t| cfg.trunk(t).auth == AuthMode::Acl) {
            return Verdict { gate: Gate::Pass(None), failed: None };
        }
        if acl.is_none() && !self.any_digest {
            return Verdict { gate: Gate::Unknown, failed: Some("unknown_source") };
        }
        let mut parsed = None;
        let mut malformed = false;
        let names = [HName::Other("Proxy-Authorization".into()), HName::Other("Authorization".into())];
        for h in req.headers.iter().filter(|h| names.iter().any(|n| same_name(&h.name, n))) {
            match Credentials::parse(&h.value) {
                Ok(c) if c.realm == self.realm => {
                    parsed = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(_) => malformed = true,
            }
        }
        let Some(c) = parsed else {
            return Verdict::fail(if malformed { "malformed" } else { "no_credentials" });
        };
        self.verify(cfg, req, &c, acl, ip, now)
    }

    fn verify(
        &mut self,
        cfg: &Snapshot,
        req: &Message,
        c: &Credentials<'_>,
        acl: Option<TrunkId>,
        ip: IpAddr,
        now: Instant,
    ) -> Verdict {
        let secs = self.secs(now);
        let check = self.key.check(&c.nonce, secs, ip, self.lifetime);
        if check == NonceCheck::Forged {
            return Verdict::fail("bad_nonce");
        }
        let user = self.users.get(c.username.as_ref());
        let ha1 = user.and_then(|u| u.ha1[c.algorithm.index()].as_deref());
        // The same work for an unknown user as for a known one.
        let expected = c.expected(ha1.unwrap_or(&self.dummy[c.algorithm.index()]), method_of(req));
        let matches: bool = expected.as_bytes().ct_eq(c.response.to_ascii_lowercase().as_bytes()).into();
        let Some(user) = user else { return Verdict::fail("unknown_user") };
        if ha1.is_none() || !self.algorithms.contains(&c.algorithm) {
            return Verdict::fail("algorithm");
        }
        if !c.qop && c.algorithm != Algorithm::Md5 {
            return Verdict::fail("no_qop");
        }
        if !matches {
            return Verdict::fail("bad_password");
        }
        let trunk_ok = match acl {
            Some(t) => user.trunk == t,
            None => cfg.trunk(user.trunk).auth == AuthMode::Digest,
        };
        if !trunk_ok {
            return Verdict::fail("wrong_trunk");
        }
        if !req.uri().is_some_and(|u| uri_matches(u, &c.uri)) {
            return Verdict::fail("uri");
        }
        let NonceCheck::Fresh { issued, id } = check else {
            return Verdict { gate: Gate::Challenge { stale: true }, failed: None };
        };
        let trunk = user.trunk;
        // RFC 2069 peers send no nonce-count: nothing to count (the nonce's lifetime bounds reuse).
        if let Some((_, nc)) = c.nc {
            match self.replay.check(id, issued, nc, secs, self.lifetime) {
                Count::Ok => {}
                Count::Replay => return Verdict::fail("replay"),
                Count::Forgotten => return Verdict { gate: Gate::Challenge { stale: true }, failed: None },
            }
        }
        Verdict { gate: Gate::Pass(Some(trunk)), failed: None }
    }
}

/// The digest-uri is the Request-URI (RFC 3261 §22.4), or the Request-URI without its user
/// part (what SIPp and some older PBXs send: `sip:host:port` for `sip:user@host:port`).
fn uri_matches(ruri: &str, duri: &str) -> bool {
    if ruri == duri {
        return true;
    }
    let Some((scheme, rest)) = ruri.split_once(':') else { return false };
    let Some((_, host)) = rest.split_once('@') else { return false };
    duri.len() == scheme.len() + 1 + host.len()
        && duri.starts_with(scheme)
        && duri.ends_with(host)
        && duri.as_bytes().get(scheme.len()) == Some(&b':')
}

fn same_name(a: &HName, b: &HName) -> bool {
    match (a, b) {
        (HName::Other(x), HName::Other(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

fn method_of(req: &Message) -> &str {
    match &req.start {
        crate::sip::msg::StartLine::Request { method, .. } => method.as_str(),
        _ => "",
    }
}

#[cfg(test)]
mod tests;
