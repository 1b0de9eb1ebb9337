//! Validation of the routing and trunk-access keys added with #14/#16: `[sip.dns]` and
//! `sip.target_backoff_secs`, accept-register trunks with their `[trunk.registrar]`, and
//! register trunks (their `[[trunk.registration]]` are checked in `crate::registration`).

use super::Validator;
use crate::{Config, Trunk};

/// `[sip.dns]` and `sip.target_backoff_secs`.
pub(super) fn validate_dns(cfg: &Config, v: &mut Validator) {
    let d = &cfg.sip.dns;
    if cfg.sip.target_backoff_secs > 3600 {
        v.add("sip.target_backoff_secs", format!("must be 0..=3600, got {}", cfg.sip.target_backoff_secs));
    }
    for (i, s) in d.servers.iter().enumerate() {
        if s.port() == 0 || s.ip().is_unspecified() {
            v.add(format!("sip.dns.servers[{i}]"), format!("must be a name server's ip:port, got {s}"));
        }
    }
    if d.min_ttl_secs == 0 || d.min_ttl_secs > d.max_ttl_secs {
        v.add("sip.dns.min_ttl_secs", format!("must be 1..=max_ttl_secs ({}), got {}", d.max_ttl_secs, d.min_ttl_secs));
    }
    if d.max_ttl_secs > 86_400 {
        v.add("sip.dns.max_ttl_secs", format!("must be at most 86400, got {}", d.max_ttl_secs));
    }
    if !(1..=3600).contains(&d.retry_secs) {
        v.add("sip.dns.retry_secs", format!("must be 1..=3600, got {}", d.retry_secs));
    }
    if !(100..=30_000).contains(&d.timeout_ms) {
        v.add("sip.dns.timeout_ms", format!("must be 100..=30000, got {}", d.timeout_ms));
    }
}

/// An accept-register trunk (`trunk[i]` is `p`): its ACL takes REGISTER, it has no static
/// targets, and its registrar limits are sane.
pub(super) fn validate_accept_register(v: &mut Validator, p: &str, t: &Trunk) {
    if t.acl.is_empty() && t.auth == crate::AuthMode::Acl {
        v.add(
            format!("{p}.acl"),
            "an accept-register trunk takes REGISTER from its acl's addresses, or needs auth = \"digest\"",
        );
    }
    if !t.targets.is_empty() || t.domain.is_some() {
        v.add(format!("{p}.targets"), "an accept-register trunk's targets are its registered contacts");
    }
    let r = &t.registrar;
    if r.min_expires_secs == 0 || r.min_expires_secs > r.max_expires_secs {
        v.add(
            format!("{p}.registrar.min_expires_secs"),
            format!("must be 1..=max_expires_secs ({}), got {}", r.max_expires_secs, r.min_expires_secs),
        );
    }
    if !(r.min_expires_secs..=r.max_expires_secs).contains(&r.default_expires_secs) {
        v.add(
            format!("{p}.registrar.default_expires_secs"),
            format!("must be within min..=max_expires_secs, got {}", r.default_expires_secs),
        );
    }
    if !(1..=100).contains(&r.max_contacts) {
        v.add(format!("{p}.registrar.max_contacts"), format!("must be 1..=100, got {}", r.max_contacts));
    }
}

/// A register trunk (`trunk[i]` is `p`): its calls go to its registrars, so it lists no
/// targets or domain of its own, and inbound calls are told apart by their source.
pub(super) fn validate_register(v: &mut Validator, p: &str, t: &Trunk) {
    if !t.targets.is_empty() || t.domain.is_some() {
        v.add(format!("{p}.targets"), "a register trunk's targets are its [[trunk.registration]] registrars");
    }
    if t.auth != crate::AuthMode::Acl {
        v.add(format!("{p}.auth"), "a register trunk is the carrier's: its calls are known by their source (acl)");
    }
}

/// Register trunks that share a registrar must register different contacts: an inbound call's
/// Request-URI user tells them apart.
pub(super) fn validate_contacts(cfg: &Config, v: &mut Validator) {
    let mut seen: Vec<(std::net::SocketAddr, &str)> = Vec::new();
    for (i, t) in cfg.trunks.iter().enumerate() {
        for (j, r) in t.registrations.iter().enumerate() {
            if seen.contains(&(r.registrar, r.contact())) {
                v.add(
                    format!("trunk[{i}].registration[{j}].contact_user"),
                    format!(
                        "contact {:?} at {} is registered by another trunk too; set contact_user",
                        r.contact(),
                        r.registrar
                    ),
                );
            }
            seen.push((r.registrar, r.contact()));
        }
    }
}
