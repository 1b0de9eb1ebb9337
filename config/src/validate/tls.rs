//! Validation of the TLS keys of #14: a trunk's `tls` (server checks, the client certificate we
//! present, the peer name its own certificate must carry) and `srtp_with_tls`.

use super::Validator;
use crate::{Config, Transport, Trunk};

/// `trunk[i].tls.*` and `trunk[i].srtp_with_tls` of trunk `t` (key path `p`).
pub(super) fn validate_trunk_tls(cfg: &Config, v: &mut Validator, p: &str, t: &Trunk) {
    let tls_listener = cfg.sip.listen.iter().any(|l| l.transport == Transport::Tls);
    if t.srtp_with_tls {
        if t.srtp_suites.is_empty() {
            v.add(format!("{p}.srtp_suites"), "srtp_with_tls = true needs at least one suite");
        }
        let tls_target = t.targets.iter().any(|x| x.transport == Transport::Tls);
        // A `domain` trunk's targets (TLS among them, by NAPTR) are known only at run time.
        if !tls_listener && !tls_target && t.domain.is_none() {
            v.add(
                format!("{p}.srtp_with_tls"),
                "no TLS listener in [[sip.listen]] and no TLS target: it never applies",
            );
        }
    }
    let Some(tls) = &t.tls else { return };
    if tls.server_name.as_deref().is_some_and(|n| n.is_empty()) {
        v.add(format!("{p}.tls.server_name"), "must not be empty");
    }
    match (&tls.cert, &tls.key) {
        (Some(_), None) => v.add(format!("{p}.tls.key"), "tls.cert needs tls.key"),
        (None, Some(_)) => v.add(format!("{p}.tls.cert"), "tls.key needs tls.cert"),
        (Some(_), Some(_)) if !t.targets.iter().any(|x| x.transport == Transport::Tls) && t.domain.is_none() => v.add(
            format!("{p}.tls.cert"),
            "a client certificate is only presented to transport = \"tls\" targets; the trunk has none",
        ),
        _ => {}
    }
    if let Some(n) = &tls.peer_name {
        if n.is_empty() || n.contains(|c: char| c.is_whitespace()) {
            v.add(format!("{p}.tls.peer_name"), format!("must be a DNS name or IP address, got {n:?}"));
        }
        let asks = cfg.sip.listen.iter().any(|l| l.tls.as_ref().is_some_and(|f| f.client_ca.is_some()));
        if !asks {
            v.add(
                format!("{p}.tls.peer_name"),
                "no [[sip.listen]] asks for client certificates: set tls.client_ca on a TLS listener",
            );
        }
        if t.acl.is_empty() {
            v.add(format!("{p}.tls.peer_name"), "needs the trunk's acl (connections are matched to it by address)");
        }
    }
}
