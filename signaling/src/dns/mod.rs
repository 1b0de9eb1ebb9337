//! Trunk domains (RFC 3263): a trunk with `domain` instead of `targets` gets its targets from
//! DNS. [`rfc3263`] decides (which NAPTR, SRV order, priorities and weights), [`resolver`] asks
//! (a thread of its own); the core takes each answer as a new target list for that trunk
//! ([`crate::b2bua::Core::apply_dns`]), which routing, hunting and OPTIONS health then use like
//! configured targets.

pub mod resolver;
pub mod rfc3263;

pub use resolver::{Answer, DnsThread, Watch};

/// The watch list of a configuration: every trunk that has a `domain`.
pub fn watches(cfg: &xtrunk_config::Snapshot) -> Vec<Watch> {
    cfg.trunks
        .iter()
        .filter_map(|t| t.domain.as_ref().map(|d| Watch { trunk: t.name.clone(), domain: d.clone() }))
        .collect()
}

impl crate::b2bua::Core {
    /// Takes a resolver answer: the trunk's targets become what DNS found (new calls use them;
    /// calls in progress keep theirs). A failure keeps the last good targets. Ignored when the
    /// trunk no longer has that domain (a reload came in between) or nothing changed; true when
    /// the targets changed.
    pub fn apply_dns(&mut self, answer: Answer) -> bool {
        let cfg = self.config();
        let Some(id) = cfg.trunk_by_name(&answer.watch.trunk) else { return false };
        let trunk = cfg.trunk(id);
        if trunk.domain.as_deref() != Some(answer.watch.domain.as_str()) {
            return false;
        }
        let targets = match answer.result {
            Ok(t) if t != trunk.targets => t,
            Ok(_) => return false,
            Err(e) => {
                log::warn!("trunk {}: {e}; keeping {} target(s)", trunk.name, trunk.targets.len());
                return false;
            }
        };
        let list: Vec<String> =
            targets.iter().map(|t| format!("{}/{}/p{}w{}", t.addr, t.transport, t.priority, t.weight)).collect();
        log::info!("trunk {}: targets from {}: {}", trunk.name, answer.watch.domain, list.join(" "));
        let mut next = (**cfg).clone();
        next.trunks[id.index()].targets = targets;
        self.reload(std::sync::Arc::new(next));
        true
    }
}

/// After a reload, the targets a trunk's unchanged `domain` had resolved to stay (the file has
/// none for it); the resolver refreshes them on its own schedule.
pub fn keep_resolved(old: &xtrunk_config::Snapshot, new: &mut xtrunk_config::Snapshot) {
    for t in new.trunks.iter_mut().filter(|t| t.domain.is_some()) {
        if let Some(o) = old.trunk_by_name(&t.name).map(|id| old.trunk(id)) {
            if o.domain == t.domain {
                t.targets.clone_from(&o.targets);
            }
        }
    }
}
