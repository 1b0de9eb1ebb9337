//! Configuration reload (SIGHUP): which keys a running sidecar can take from a new file, and
//! which need a restart. Pure: two snapshots in, the new one adjusted and the kept keys named.
//!
//! Trunks, accounts, routes, codecs, SRTP and latching settings, `[media]` advertised address and
//! timeouts, `sip.no_answer_timeout_secs` and `[sip.overload]` apply to the next call (the `sip.tcp_*` limits to the
//! next accept, send or idle sweep); calls in progress keep the snapshot they started with.
//! Listeners, the media port range and bind address, the SIP timers, the message size limit, the
//! advertised SIP host and everything under `[node]`, `[datapath]` and `[shared]` (the counter
//! store is chosen and connected at start) are bound at start: a new
//! value is reported and the running one kept.

use xtrunk_config::Snapshot;

/// Keeps in `new` the running value of every key that needs a restart; returns the key paths
/// whose value differed (for the log).
pub fn keep_restart_only(running: &Snapshot, new: &mut Snapshot) -> Vec<&'static str> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($path:literal => $($field:ident).+;)*) => {$(
            if running.$($field).+ != new.$($field).+ {
                new.$($field).+ = running.$($field).+.clone();
                kept.push($path);
            }
        )*};
    }
    keep! {
        "sip.listen" => sip.listen;
        "sip.advertised_host" => sip.advertised_host;
        "sip.timers" => sip.timers;
        "sip.max_message_bytes" => sip.max_message_bytes;
        "media.port_min" => media.port_min;
        "media.port_max" => media.port_max;
        "media.bind_ip" => media.bind_ip;
        "node" => node;
        "datapath" => datapath;
        "shared" => raw.shared;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtrunk_config::{Config, Host};

    fn snap(f: impl FnOnce(&mut Config)) -> Snapshot {
        let mut c = Config::embedded_default().unwrap();
        f(&mut c);
        c.snapshot(Host { cores: 64, check_paths: false }).unwrap()
    }

    #[test]
    fn routes_and_trunks_apply_listeners_and_ports_are_kept() {
        let running = snap(|_| {});
        let mut new = snap(|c| {
            c.routes[0].prefix = "49".into();
            c.media.port_min += 2;
            c.sip.no_answer_timeout_secs += 1;
        });
        assert_eq!(keep_restart_only(&running, &mut new), ["media.port_min"]);
        assert_eq!(new.media.port_min, running.media.port_min);
        assert_eq!(new.routes[0].prefix, "49");
        assert_eq!(new.sip.no_answer_timeout_secs, running.sip.no_answer_timeout_secs + 1);
        let mut same = snap(|_| {});
        assert!(keep_restart_only(&running, &mut same).is_empty());
    }
}
