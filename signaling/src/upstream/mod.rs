//! Upstream registrations of `kind = "register"` trunks (#14; RFC 3261 §10.2), sans-IO: which
//! registration is due a REGISTER, and what an answer does to its state. The core
//! ([`core`]) sends the REGISTERs and feeds the answers back; routing asks
//! [`Upstream::is_up`], so a trunk's calls go only to registrars that hold its binding (a
//! primary and a secondary: priority failover).
//!
//! A registration starts down and is due at once. A `2xx` brings it up and schedules the
//! refresh at 3/4 of the expiry granted; a `401`/`407` is answered with credentials (once, or
//! again on `stale=true`); `423` retries with the registrar's `Min-Expires`; anything else, or
//! no answer, takes it down and retries after `retry_secs`, doubling per failure in a row up to
//! ten times that. A binding that is not refreshed by its expiry goes down. The table holds the
//! configured registrations only (rebuilt on reload; unchanged ones keep their state).

pub mod core;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xtrunk_config::{Registration, Snapshot, TrunkKind};

use crate::auth::client::Offer;
use crate::sip::transaction::TxKey;

/// One registration's state.
#[derive(Debug, Clone)]
pub struct Reg {
    /// The trunk's name.
    pub trunk: String,
    /// The configured registration.
    pub cfg: Registration,
    /// Holds a binding now.
    pub up: bool,
    /// Call-ID and From tag, kept for every REGISTER of this registration (§10.2.4).
    pub call_id: String,
    /// From tag.
    pub tag: String,
    /// Last CSeq sent.
    pub cseq: u32,
    /// Expiry asked for (raised by a `423`).
    pub ask: u32,
    /// When the next REGISTER goes out.
    pub next_at: Instant,
    /// When the binding runs out (while up).
    pub until: Option<Instant>,
    /// Failures in a row.
    pub failures: u32,
    /// Challenges (and `423`s) answered since the last `2xx` or failure.
    pub challenged: u8,
    /// The last challenge: the header its answer goes in, the offer, answers given with its
    /// nonce.
    pub offer: Option<(crate::sip::msg::HName, Offer, u32)>,
    /// The REGISTER in flight.
    pub in_flight: Option<TxKey>,
    /// Why the last attempt failed (for logs and the status API).
    pub last_error: Option<String>,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Bound for this many seconds.
    Bound(u32),
    /// Send the REGISTER again at once (with credentials, or a longer expiry).
    Again,
    /// Failed, and why (tried again after the back-off).
    Failed(String),
}

/// Every register trunk's registrations.
#[derive(Debug, Default)]
pub struct Upstream {
    regs: Vec<Reg>,
    by_tx: HashMap<TxKey, usize>,
}

type Ids<'a> = &'a mut dyn FnMut() -> String;

impl Upstream {
    /// Takes the registrations from `cfg`: new ones are due at once, removed ones forgotten
    /// (a binding left behind expires at the registrar), unchanged ones keep their state.
    pub fn sync(&mut self, cfg: &Snapshot, now: Instant, ids: Ids<'_>) {
        let mut old = std::mem::take(&mut self.regs);
        for t in cfg.trunks.iter().filter(|t| t.kind == TrunkKind::Register) {
            for r in &t.registrations {
                let kept = old.iter().position(|o| o.trunk == t.name && o.cfg == *r);
                let reg = match kept {
                    Some(i) => old.swap_remove(i),
                    None => Reg {
                        trunk: t.name.clone(),
                        cfg: r.clone(),
                        up: false,
                        call_id: ids(),
                        tag: ids(),
                        cseq: 0,
                        ask: r.expires_secs,
                        next_at: now,
                        until: None,
                        failures: 0,
                        challenged: 0,
                        offer: None,
                        in_flight: None,
                        last_error: None,
                    },
                };
                self.regs.push(reg);
            }
        }
        self.by_tx.clear();
        for (i, r) in self.regs.iter().enumerate() {
            if let Some(k) = &r.in_flight {
                self.by_tx.insert(k.clone(), i);
            }
        }
    }

    /// Whether calls to `trunk` may go to `addr`: false only for a registrar of the trunk whose
    /// registration is down.
    pub fn is_up(&self, trunk: &str, addr: SocketAddr) -> bool {
        self.regs.iter().filter(|r| r.trunk == trunk && r.cfg.registrar == addr).all(|r| r.up)
    }

    /// The registrations, in config order.
    pub fn regs(&self) -> &[Reg] {
        &self.regs
    }

    /// The next registration due at `now` with none in flight (its index).
    pub fn due(&self, now: Instant) -> Option<usize> {
        self.regs.iter().position(|r| r.in_flight.is_none() && r.next_at <= now)
    }

    /// The earliest time something is due: a REGISTER, or a binding running out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.regs
            .iter()
            .flat_map(|r| [r.in_flight.is_none().then_some(r.next_at), r.until.filter(|_| r.up)])
            .flatten()
            .min()
    }

    /// Registration `i`, to build its REGISTER.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Reg> {
        self.regs.get_mut(i)
    }

    /// The REGISTER of registration `i` went out as transaction `tx`.
    pub fn sent(&mut self, i: usize, tx: TxKey) {
        if let Some(r) = self.regs.get_mut(i) {
            r.in_flight = Some(tx.clone());
            self.by_tx.insert(tx, i);
        }
    }

    /// The registration a transaction belongs to (and forgets the transaction).
    pub fn take_tx(&mut self, tx: &TxKey) -> Option<usize> {
        let i = self.by_tx.remove(tx)?;
        let r = self.regs.get_mut(i)?;
        (r.in_flight.as_ref() == Some(tx)).then(|| {
            r.in_flight = None;
            i
        })
    }

    /// Bindings whose expiry passed without a refresh go down; returns them (their indexes).
    pub fn expire(&mut self, now: Instant) -> Vec<usize> {
        let mut gone = Vec::new();
        for (i, r) in self.regs.iter_mut().enumerate() {
            if r.up && r.until.is_some_and(|u| u <= now) {
                r.up = false;
                r.until = None;
                r.last_error = Some("binding expired before a refresh was answered".into());
                gone.push(i);
            }
        }
        gone
    }
}

/// The wait before the next try after `failures` in a row (≥ 1): `retry`, doubled per failure,
/// at most ten times `retry`.
pub fn backoff(retry_secs: u32, failures: u32) -> Duration {
    let base = u64::from(retry_secs.max(1));
    let f = failures.saturating_sub(1).min(10);
    Duration::from_secs((base << f).min(base * 10))
}

/// The expiry a `2xx` granted: our Contact's `expires` parameter, else the `Expires` header,
/// else what we asked (RFC 3261 §10.2.4).
pub fn granted(msg: &crate::sip::msg::Message, contact_uri: &str, asked: u32) -> u32 {
    use crate::sip::msg::HName;
    let ours = msg.headers.iter().filter(|h| h.name == HName::Contact).flat_map(|h| h.value.split(',')).find_map(|c| {
        let (uri, params) = match (c.find('<'), c.find('>')) {
            (Some(a), Some(b)) if a < b => (&c[a + 1..b], &c[b + 1..]),
            _ => (c.split(';').next().unwrap_or(""), c.split_once(';').map_or("", |x| x.1)),
        };
        if !same_contact(uri.trim(), contact_uri) {
            return None;
        }
        params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("expires").then(|| v.trim().parse::<u32>().ok())?
        })
    });
    ours.or_else(|| msg.header(&HName::Expires).and_then(|v| v.trim().parse().ok())).unwrap_or(asked)
}

/// Contact URIs compared as a registrar would: scheme, user and host:port, case-insensitive
/// host, parameters ignored.
fn same_contact(a: &str, b: &str) -> bool {
    let core = |s: &str| s.split(';').next().unwrap_or("").to_ascii_lowercase();
    core(a) == core(b)
}

#[cfg(test)]
mod tests;
