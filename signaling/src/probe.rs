//! OPTIONS probes toward trunk targets: the core's side of [`crate::health`]. Due probes go out
//! as out-of-dialog OPTIONS client transactions (owner [`Owner::Probe`]); answers, transaction
//! timeouts and our own probe timeout become outcomes; state changes are logged and counted.

use std::time::Instant;

use crate::b2bua::Core;
use crate::call::uri_host;
use crate::health::{Change, TargetKey};
use crate::sip::msg::{HName, Message, Method};
use crate::sip::transaction::{Owner, TxKey};
use crate::transport::Dest;

/// Counters of the probes (in [`crate::metrics::Metrics`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeMetrics {
    /// OPTIONS probes sent.
    pub sent: u64,
    /// Probes that failed (no answer in time, or 5xx/6xx).
    pub failed: u64,
    /// Targets that went offline.
    pub went_offline: u64,
    /// Targets that came back online.
    pub came_online: u64,
}

impl Core {
    /// Gives up on probes past their timeout, then sends the probes that are due.
    pub(crate) fn run_probes(&mut self, now: Instant) {
        while let Some((tx, change)) = self.health.expire(now) {
            self.txs.forget_client(&tx);
            self.metrics.probes.failed += 1;
            self.probe_change(change);
        }
        while let Some(key) = self.health.due(now) {
            let tx = self.send_probe(now, key);
            self.health.sent(key, tx, now);
            self.metrics.probes.sent += 1;
        }
    }

    /// A response (or transaction timeout: `code` 408) to a probe.
    pub(crate) fn probe_outcome(&mut self, now: Instant, tx: &TxKey, code: u16) {
        if code < 200 {
            return;
        }
        if !self.health.owns(tx) {
            return;
        }
        if code >= 500 {
            self.metrics.probes.failed += 1;
        }
        let change = self.health.answered(tx, code, now);
        self.probe_change(change);
    }

    fn probe_change(&mut self, change: Option<Change>) {
        let Some(c) = change else { return };
        let (tp, addr) = c.target;
        if c.online {
            self.metrics.probes.came_online += 1;
            log::info!("trunk {}: target {addr} ({tp:?}) is online again ({} OPTIONS answered)", c.trunk, c.streak);
        } else {
            self.metrics.probes.went_offline += 1;
            log::warn!("trunk {}: target {addr} ({tp:?}) is offline ({} OPTIONS failed in a row)", c.trunk, c.streak);
        }
    }

    fn send_probe(&mut self, now: Instant, (tp, addr): TargetKey) -> TxKey {
        let cfg = std::sync::Arc::clone(&self.cfg);
        let trunk = cfg.trunks.iter().find(|t| t.targets.iter().any(|tg| tg.addr == addr)).unwrap_or(&cfg.trunks[0]);
        let local = self.listener_for(trunk, tp);
        let via = self.via(crate::transport::Dest { transport: tp, local, remote: addr });
        let (tag, call_id) = (self.token(), self.token());
        let host = uri_host(addr);
        let me = self.host_to(local, addr).into_owned();
        let t = tp.uri_param();
        let mut m = Message::request(Method::Options, format!("sip:{host}{t}"));
        m.push(HName::Via, via)
            .push(HName::MaxForwards, "70")
            .push(HName::From, format!("<sip:xtrunk@{me}>;tag={tag}"))
            .push(HName::To, format!("<sip:{host}>"))
            .push(HName::CallId, call_id)
            .push(HName::CSeq, "1 OPTIONS")
            .push(HName::Accept, "application/sdp");
        self.txs.send_request(now, m, Dest { transport: tp, local, remote: addr }, Owner::Probe)
    }
}
