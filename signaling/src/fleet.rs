//! Registrations shared across a fleet of edges (#19): an edge publishes, per accept-register
//! trunk, that it holds bindings (its `shared.edge_address` and their latest expiry) in the
//! `[shared]` store, and reads the others' every [`POLL`]. A call for a trunk whose PBX is
//! registered on another edge goes to that edge (a plain INVITE for the number: that edge's
//! routes from the fleet's trunk — an `acl` trunk listing the edges — take it to its binding
//! over the flow the PBX registered on). No store (or an unreachable one): local bindings only.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xtrunk_config::TrunkKind;

use crate::b2bua::Core;
use crate::transport::Transport;

/// How often the other edges' bindings are read.
pub const POLL: Duration = Duration::from_secs(2);

impl Core {
    /// This edge's address as the other edges reach it: `shared.edge_address`, else the first
    /// UDP listener.
    pub(crate) fn edge_address(&self) -> SocketAddr {
        self.cfg.raw.shared.edge_address.unwrap_or_else(|| self.listener(Transport::Udp))
    }

    /// Publishes what this edge holds of `trunk`'s bindings.
    pub(crate) fn share_bindings(&mut self, now: Instant, trunk: &str) {
        let (edge, expires) = (self.edge_address(), self.registrar.max_expiry(trunk));
        self.admission.store.publish_bindings(trunk, edge, expires, now);
    }

    /// Reads the other edges' bindings when due; a change patches the trunks' targets.
    pub(crate) fn poll_fleet(&mut self, now: Instant) {
        if self.fleet_next.is_some_and(|t| t > now) {
            return;
        }
        self.fleet_next = Some(now + POLL);
        let trunks: Vec<String> =
            self.cfg.trunks.iter().filter(|t| t.kind == TrunkKind::AcceptRegister).map(|t| t.name.clone()).collect();
        if trunks.is_empty() {
            return;
        }
        let Some(views) = self.admission.store.remote_bindings(&trunks, now) else { return };
        let me = self.edge_address();
        let mut changed = false;
        for (t, edges) in trunks.iter().zip(views) {
            let others: Vec<SocketAddr> = edges.into_iter().filter(|a| *a != me).collect();
            if self.registrar.set_remote(t, others.clone()) {
                log::info!("trunk {t}: bindings held by other edge(s): {others:?}");
                changed = true;
            }
        }
        if changed {
            self.reload(std::sync::Arc::clone(&self.cfg));
        }
    }
}
