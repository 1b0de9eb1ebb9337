//! The registrar of accept-register trunks (#14; RFC 3261 §10.3), sans-IO: a PBX registers its
//! contacts for its trunk, and calls routed to the trunk go to them, over the flow each
//! registered on (the address and transport its REGISTER came from: a PBX behind NAT is reached
//! through its own mapping, RFC 5626-style).
//!
//! Bounded: only trunks of kind `accept-register` hold bindings, at most `max_contacts` each;
//! bindings age out at their expiry. The table is written whole to a file (`<shm_path>.bindings`,
//! temp file and rename) at every change, and read back at start, so a restarted sidecar
//! still reaches the PBXs that registered before it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use xtrunk_config::{AuthMode, Snapshot, Target, TrunkKind};

use crate::b2bua::Core;
use crate::sip::msg::{HName, Message, NameAddr};
use crate::sip::status::{reason, response};
use crate::sip::transaction::TxKey;
use crate::transport::Dest;

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI (the Request-URI of calls to it).
    pub uri: String,
    /// Transport of the flow it registered over.
    pub transport: xtrunk_config::Transport,
    /// Our listener it registered on.
    pub local: SocketAddr,
    /// Where its REGISTER came from (where calls go).
    pub remote: SocketAddr,
    /// When it expires, Unix seconds.
    pub expires: u64,
    /// The REGISTER's Call-ID and CSeq (RFC 3261 §10.3 step 7: older ones are refused).
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
}

/// Why a REGISTER is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `423 Interval Too Brief`, with our `Min-Expires`.
    TooBrief(u32),
    /// `400`: a malformed Contact, or `*` with other contacts or a non-zero expiry.
    Bad(&'static str),
    /// `500`: an out-of-order CSeq on the same Call-ID (with `Retry-After`).
    OutOfOrder,
    /// `403`: more contacts than `max_contacts`.
    TooMany,
}

/// The bindings of every accept-register trunk.
#[derive(Debug, Default)]
pub struct Registrar {
    by_trunk: BTreeMap<String, Vec<Binding>>,
    path: Option<PathBuf>,
    /// Other edges holding bindings of a trunk (`[shared]`, `crate::fleet`): its calls go
    /// through them while this edge has none of its own.
    remote: BTreeMap<String, Vec<SocketAddr>>,
}

fn expires_param(v: &str) -> Option<u32> {
    v.split(';').skip(1).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("expires").then(|| val.trim().parse().ok())?
    })
}

impl Registrar {
    /// A registrar persisted at `path` (None: in memory only), with what the file holds, minus
    /// the expired and the trunks that are no longer accept-register.
    pub fn open(path: Option<PathBuf>, cfg: &Snapshot, now_unix: u64) -> Self {
        let mut r = Self { by_trunk: BTreeMap::new(), path, remote: BTreeMap::new() };
        if let Some(p) = &r.path {
            match std::fs::read(p) {
                Ok(b) => match serde_json::from_slice::<BTreeMap<String, Vec<Binding>>>(&b) {
                    Ok(t) => r.by_trunk = t,
                    Err(e) => log::warn!("registrations {}: unreadable ({e}); starting with none", p.display()),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("registrations {}: {e}; starting with none", p.display()),
            }
        }
        r.retain(cfg, now_unix);
        r
    }

    fn retain(&mut self, cfg: &Snapshot, now_unix: u64) {
        self.by_trunk.retain(|name, v| {
            v.retain(|b| b.expires > now_unix);
            !v.is_empty() && cfg.trunk_by_name(name).is_some_and(|id| cfg.trunk(id).kind == TrunkKind::AcceptRegister)
        });
    }

    /// Applies a REGISTER for `trunk` that arrived over `flow` (§10.3 steps 6–8): the contacts
    /// bound after it, each with its seconds left. `changed` tells the caller to persist and to
    /// update the trunk's targets.
    pub fn register(
        &mut self,
        cfg: &Snapshot,
        trunk: &str,
        req: &Message,
        flow: Dest,
        now_unix: u64,
    ) -> Result<Vec<(String, u64)>, Refusal> {
        let Some(id) = cfg.trunk_by_name(trunk) else { return Err(Refusal::Bad("no such trunk")) };
        let rs = &cfg.trunk(id).registrar;
        let call_id = req.call_id().unwrap_or("").to_string();
        let cseq = req.cseq().map_or(0, |c| c.seq);
        let header_expires = req.header(&HName::Expires).and_then(|v| v.trim().parse::<u32>().ok());
        let contacts: Vec<&str> = req.headers_of(&HName::Contact).flat_map(split_contacts).collect();
        let list = self.by_trunk.entry(trunk.to_string()).or_default();
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(Refusal::Bad("Contact: * needs Expires: 0 and no other contact"));
            }
            list.clear();
            return Ok(Vec::new());
        }
        for c in &contacts {
            let Ok(na) = NameAddr::parse(c) else { return Err(Refusal::Bad("malformed Contact")) };
            let asked = expires_param(c).or(header_expires).unwrap_or(rs.default_expires_secs);
            if asked != 0 && asked < rs.min_expires_secs {
                return Err(Refusal::TooBrief(rs.min_expires_secs));
            }
            let secs = asked.min(rs.max_expires_secs);
            let at = list.iter().position(|b| b.uri == na.uri);
            if let Some(b) = at.map(|i| &list[i]) {
                if b.call_id == call_id && cseq <= b.cseq {
                    return Err(Refusal::OutOfOrder);
                }
            }
            match (at, secs) {
                (Some(i), 0) => {
                    list.remove(i);
                }
                (None, 0) => {}
                (i, s) => {
                    let b = Binding {
                        uri: na.uri,
                        transport: flow.transport.into(),
                        local: flow.local,
                        remote: flow.remote,
                        expires: now_unix + u64::from(s),
                        call_id: call_id.clone(),
                        cseq,
                    };
                    match i {
                        Some(i) => list[i] = b,
                        None if list.len() >= rs.max_contacts => return Err(Refusal::TooMany),
                        None => list.push(b),
                    }
                }
            }
        }
        Ok(list.iter().map(|b| (b.uri.clone(), b.expires.saturating_sub(now_unix))).collect())
    }

    /// Drops expired bindings; the trunks that lost one.
    pub fn expire(&mut self, now_unix: u64) -> Vec<String> {
        let mut changed = Vec::new();
        for (t, v) in &mut self.by_trunk {
            let n = v.len();
            v.retain(|b| b.expires > now_unix);
            if v.len() != n {
                changed.push(t.clone());
            }
        }
        self.by_trunk.retain(|_, v| !v.is_empty());
        changed
    }

    /// The earliest expiry (Unix seconds), if any binding exists.
    pub fn next_expiry(&self) -> Option<u64> {
        self.by_trunk.values().flatten().map(|b| b.expires).min()
    }

    /// The targets of `trunk` now: one per binding, newest first; with none here, the other
    /// edges that hold some (the call goes through the edge that has the flow).
    pub fn targets(&self, trunk: &str) -> Vec<Target> {
        let v = self.by_trunk.get(trunk).map(Vec::as_slice).unwrap_or_default();
        if v.is_empty() {
            return self.remote.get(trunk).into_iter().flatten().map(|a| Target::udp(*a)).collect();
        }
        v.iter().rev().map(|b| Target { transport: b.transport, ..Target::udp(b.remote) }).collect()
    }

    /// The latest expiry (Unix seconds) of `trunk`'s bindings here, if it has any.
    pub fn max_expiry(&self, trunk: &str) -> Option<u64> {
        self.by_trunk.get(trunk)?.iter().map(|b| b.expires).max()
    }

    /// Sets the other edges holding `trunk`'s bindings; true when that changed.
    pub fn set_remote(&mut self, trunk: &str, mut edges: Vec<SocketAddr>) -> bool {
        edges.sort();
        edges.truncate(16);
        let old = self.remote.get(trunk).cloned().unwrap_or_default();
        if old == edges {
            return false;
        }
        if edges.is_empty() {
            self.remote.remove(trunk);
        } else {
            self.remote.insert(trunk.to_string(), edges);
        }
        true
    }

    /// The registered Contact URI reached at `remote` for `trunk` (the Request-URI of a call).
    pub fn uri_at(&self, trunk: &str, remote: SocketAddr) -> Option<&str> {
        self.by_trunk.get(trunk)?.iter().rev().find(|b| b.remote == remote).map(|b| b.uri.as_str())
    }

    /// Trunks with bindings.
    pub fn trunks(&self) -> impl Iterator<Item = &str> {
        self.by_trunk.keys().map(String::as_str)
    }

    /// Writes the table (temp file, rename); a failure is logged, the table stays in memory.
    pub fn persist(&self) {
        let Some(p) = &self.path else { return };
        let tmp = p.with_extension("bindings.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = crate::files::create_fresh(&tmp)?;
            f.write_all(&serde_json::to_vec(&self.by_trunk).unwrap_or_default())?;
            std::fs::rename(&tmp, p)
        };
        if let Err(e) = write() {
            log::error!("registrations {}: {e}; kept in memory only", p.display());
        }
    }
}

impl Registrar {
    /// `cfg` with every accept-register trunk's targets set to its bindings (unchanged, not
    /// copied, when they already are).
    pub fn onto(&self, cfg: Arc<Snapshot>) -> Arc<Snapshot> {
        let stale =
            |t: &xtrunk_config::TrunkView| t.kind == TrunkKind::AcceptRegister && t.targets != self.targets(&t.name);
        if !cfg.trunks.iter().any(stale) {
            return cfg;
        }
        let mut next = (*cfg).clone();
        for t in next.trunks.iter_mut().filter(|t| t.kind == TrunkKind::AcceptRegister) {
            t.targets = self.targets(&t.name);
        }
        Arc::new(next)
    }
}

impl Core {
    /// Opens the persisted registrations (the shell, at start) and applies them.
    pub fn open_registrar(&mut self, path: Option<PathBuf>, now: Instant) {
        let now_unix = self.unix_ms(now) / 1000;
        self.registrar = Registrar::open(path, &self.cfg, now_unix);
        let n: usize = self.registrar.trunks().map(|t| self.registrar.targets(t).len()).sum();
        if n > 0 {
            log::info!("registrations: {n} binding(s) restored");
        }
        let cfg = Arc::clone(&self.cfg);
        self.reload(cfg);
    }

    /// A REGISTER: from an accept-register trunk's ACL, or with its digest credentials (`401`
    /// challenges, `crate::auth`), else `403` (outsiders: the unknown-source answer); bound,
    /// refreshed or removed per RFC 3261 §10.3, answered with every current binding.
    pub(crate) fn on_register(&mut self, now: Instant, k: TxKey, req: &Message, src: Dest) {
        let cfg = Arc::clone(&self.cfg);
        // By ACL (an `acl` trunk), else by digest credentials (401 until they are right).
        let by_acl = cfg.trunk_by_acl(src.remote.ip());
        let digest = |t: &xtrunk_config::TrunkView| t.kind == TrunkKind::AcceptRegister && t.auth != AuthMode::Acl;
        let id = match by_acl {
            Some(t) if cfg.trunk(t).auth == AuthMode::Acl => Some(t),
            _ if cfg.trunks.iter().any(digest) => match self.gate_register(now, &k, req, src) {
                Some(t) => t.or(by_acl),
                None => return,
            },
            other => other,
        };
        let trunk = id.map(|id| cfg.trunk(id)).filter(|t| t.kind == TrunkKind::AcceptRegister);
        let Some(trunk) = trunk else {
            if crate::policy::identify::by_source(&cfg, src.remote.ip()).is_none() {
                // An outsider: what every unknown source gets (403 or silence, counted toward
                // its ban; `crate::auth`).
                return self.unknown_request(now, k, req, src);
            }
            self.metrics.bad("REGISTER from no accept-register trunk", || src.remote.to_string());
            return self.reply(now, &k, req, 403, reason(403));
        };
        let now_unix = self.unix_ms(now) / 1000;
        let tag = self.token();
        let r = match self.registrar.register(&cfg, &trunk.name, req, src, now_unix) {
            Ok(list) => {
                let mut r = response(req, 200, "OK", Some(&tag));
                for (uri, secs) in &list {
                    r.push(HName::Contact, format!("<{uri}>;expires={secs}"));
                }
                log::info!("trunk {}: {} contact(s) registered from {}", trunk.name, list.len(), src.remote);
                self.registrar.persist();
                self.share_bindings(now, &trunk.name);
                self.reload(Arc::clone(&self.cfg));
                r
            }
            Err(Refusal::TooBrief(min)) => {
                let mut r = response(req, 423, "Interval Too Brief", Some(&tag));
                r.push(HName::Other("Min-Expires".into()), min.to_string());
                r
            }
            Err(Refusal::Bad(why)) => response(req, 400, why, Some(&tag)),
            Err(Refusal::OutOfOrder) => {
                let mut r = response(req, 500, "Out Of Order", Some(&tag));
                r.push(HName::Other("Retry-After".into()), "1");
                r
            }
            Err(Refusal::TooMany) => response(req, 403, "Too Many Contacts", Some(&tag)),
        };
        self.txs.respond(now, &k, &r);
    }

    /// Drops the bindings past their expiry (checked each timer round).
    pub(crate) fn expire_registrations(&mut self, now: Instant) {
        let now_unix = self.unix_ms(now) / 1000;
        if self.registrar.next_expiry().is_none_or(|t| t > now_unix) {
            return;
        }
        let gone = self.registrar.expire(now_unix);
        if !gone.is_empty() {
            log::info!("registrations expired on trunk(s) {}", gone.join(", "));
            self.registrar.persist();
            for t in &gone {
                self.share_bindings(now, t);
            }
            self.reload(Arc::clone(&self.cfg));
        }
    }
}

/// A Contact header value split at the commas between its entries (not inside `<>` or quotes).
fn split_contacts(v: &str) -> Vec<&str> {
    let (mut out, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0i32, false);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Where a node's registrations are kept: next to its ring.
pub fn path_for(shm: &Path) -> PathBuf {
    let mut s = shm.as_os_str().to_owned();
    s.push(".bindings");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::split_contacts;

    #[test]
    fn contacts_split_outside_brackets_and_quotes() {
        assert_eq!(
            split_contacts("\"A, B\" <sip:a@h;x=1,2>;expires=60, <sip:b@h>"),
            ["\"A, B\" <sip:a@h;x=1,2>;expires=60", "<sip:b@h>"]
        );
        assert_eq!(split_contacts("*"), ["*"]);
    }
}
