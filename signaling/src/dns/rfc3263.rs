//! RFC 3263 §4 server selection, pure: which SRV names a domain's NAPTR records lead to, and the
//! targets (address, port, transport, priority, weight) that SRV and address records give. The
//! resolver thread ([`super::resolver`]) asks the questions; every decision is made here.

use std::net::{IpAddr, SocketAddr};

use xtrunk_config::{Target, Transport};

/// A NAPTR record (RFC 3403) as read from DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Processed lowest first.
    pub order: u16,
    /// Among equal `order`, lowest first.
    pub preference: u16,
    /// `s`: the replacement is an SRV name.
    pub flags: String,
    /// `SIP+D2U` (UDP), `SIP+D2T` (TCP), `SIPS+D2T` (TLS).
    pub service: String,
    /// The SRV name it points to (flag `s`).
    pub replacement: String,
}

/// An SRV record (RFC 2782) as read from DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lowest first.
    pub priority: u16,
    /// Share among equal priorities.
    pub weight: u16,
    /// The target's port.
    pub port: u16,
    /// The host to look up (A/AAAA); `.` means "no service here".
    pub target: String,
}

/// A trunk's `domain` split: the host, and the port when one was given (then RFC 3263 §4.2
/// skips NAPTR and SRV).
pub fn split_domain(domain: &str) -> (String, Option<u16>) {
    let absolute =
        |h: &str| if h.ends_with('.') { h.to_ascii_lowercase() } else { format!("{}.", h.to_ascii_lowercase()) };
    match domain.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(port) => (absolute(h), Some(port)),
            Err(_) => (absolute(domain), None),
        },
        None => (absolute(domain), None),
    }
}

/// The transports this edge serves toward trunks (TLS is not yet).
const SERVED: [Transport; 2] = [Transport::Udp, Transport::Tcp];

fn service_transport(service: &str) -> Option<Transport> {
    match service.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

/// §4.1: the SRV names to query, best first, from the domain's NAPTR records: those with flag
/// `s` and a SIP service of a transport we serve, by order then preference. Empty when none is
/// usable: the caller then tries [`fallback_srv_names`].
pub fn srv_names(naptrs: &[Naptr]) -> Vec<(Transport, String)> {
    let mut v: Vec<&Naptr> = naptrs
        .iter()
        .filter(|n| n.flags.eq_ignore_ascii_case("s"))
        .filter(|n| service_transport(&n.service).is_some_and(|t| SERVED.contains(&t)))
        .filter(|n| !n.replacement.is_empty() && n.replacement != ".")
        .collect();
    v.sort_by_key(|n| (n.order, n.preference));
    let mut out: Vec<(Transport, String)> = Vec::new();
    for n in v {
        let t = service_transport(&n.service).unwrap_or(Transport::Udp);
        let name = n.replacement.to_ascii_lowercase();
        if !out.iter().any(|(_, x)| *x == name) {
            out.push((t, name));
        }
    }
    out
}

/// §4.1 without NAPTR: the SRV names of every transport we serve, UDP first.
pub fn fallback_srv_names(host: &str) -> Vec<(Transport, String)> {
    vec![(Transport::Udp, format!("_sip._udp.{host}")), (Transport::Tcp, format!("_sip._tcp.{host}"))]
}

/// The targets of one SRV set: every record's addresses (from `addrs`, the A/AAAA answers by
/// host), by SRV priority. `rank` orders the SRV sets (the NAPTR order): a later set's targets
/// come after every target of an earlier one. SRV weight 0 becomes 1 (RFC 2782: "a very small
/// chance"), larger ones are capped at the trunk's 1000.
pub fn srv_targets(
    rank: u16,
    transport: Transport,
    srvs: &[Srv],
    addrs: impl Fn(&str) -> Vec<IpAddr>,
) -> Vec<(u32, Target)> {
    let mut out = Vec::new();
    for s in srvs.iter().filter(|s| s.target != "." && s.port != 0) {
        for ip in addrs(&s.target) {
            let t = Target {
                addr: SocketAddr::new(ip, s.port),
                transport,
                weight: u32::from(s.weight).clamp(1, 1000),
                priority: 0,
            };
            out.push(((u32::from(rank) << 16) | u32::from(s.priority), t));
        }
    }
    out
}

/// The trunk's final target list from ranked targets: sorted by rank, duplicates dropped, and
/// the ranks renumbered 0, 1, 2… into `priority` (at most [`MAX_TARGETS`] targets).
pub fn finish(mut ranked: Vec<(u32, Target)>) -> Vec<Target> {
    ranked.sort_by_key(|(r, _)| *r);
    let mut out: Vec<Target> = Vec::new();
    let mut last: Option<u32> = None;
    let mut prio: u16 = 0;
    for (r, mut t) in ranked {
        if out.iter().any(|x| x.addr == t.addr && x.transport == t.transport) {
            continue;
        }
        if last.is_some_and(|l| l != r) {
            prio = prio.saturating_add(1);
        }
        last = Some(r);
        t.priority = prio;
        out.push(t);
        if out.len() == MAX_TARGETS {
            break;
        }
    }
    out
}

/// Most targets one domain resolves to (the rest are dropped, logged by the resolver).
pub const MAX_TARGETS: usize = 32;

/// §4.2 with a port, or no SRV: the addresses at `port` over UDP, one priority group.
pub fn address_targets(ips: &[IpAddr], port: u16) -> Vec<Target> {
    finish(ips.iter().map(|ip| (0, Target::udp(SocketAddr::new(*ip, port)))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(order: u16, pref: u16, service: &str, repl: &str) -> Naptr {
        Naptr { order, preference: pref, flags: "s".into(), service: service.into(), replacement: repl.into() }
    }

    #[test]
    fn naptr_order_then_preference_and_served_transports_only() {
        let v = [
            naptr(20, 10, "SIP+D2U", "_sip._udp.example.com."),
            naptr(10, 20, "SIP+D2T", "_sip._tcp.example.com."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com."),
            Naptr { flags: "a".into(), ..naptr(1, 1, "SIP+D2U", "x.") },
            naptr(5, 5, "E2U+sip", "_x."),
        ];
        assert_eq!(
            srv_names(&v),
            [(Transport::Tcp, "_sip._tcp.example.com.".to_string()), (Transport::Udp, "_sip._udp.example.com.".into())]
        );
        assert!(srv_names(&[]).is_empty());
    }

    #[test]
    fn srv_priority_groups_and_ranks() {
        let srvs = [
            Srv { priority: 20, weight: 0, port: 5062, target: "b.example.".into() },
            Srv { priority: 10, weight: 60, port: 5060, target: "a.example.".into() },
            Srv { priority: 10, weight: 40, port: 5061, target: "a.example.".into() },
            Srv { priority: 0, weight: 5, port: 5060, target: ".".into() },
        ];
        let ip = |h: &str| -> Vec<IpAddr> {
            match h {
                "a.example." => vec!["192.0.2.1".parse().unwrap()],
                "b.example." => vec!["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()],
                _ => vec![],
            }
        };
        let mut all = srv_targets(0, Transport::Udp, &srvs, ip);
        all.extend(srv_targets(1, Transport::Tcp, &srvs[..1], ip));
        let t = finish(all);
        let view: Vec<(String, u16, u32)> = t.iter().map(|t| (t.addr.to_string(), t.priority, t.weight)).collect();
        assert_eq!(
            view,
            [
                ("192.0.2.1:5060".into(), 0, 60),
                ("192.0.2.1:5061".into(), 0, 40),
                ("192.0.2.2:5062".into(), 1, 1),
                ("[2001:db8::2]:5062".into(), 1, 1),
                ("192.0.2.2:5062".into(), 2, 1),
                ("[2001:db8::2]:5062".into(), 2, 1),
            ]
        );
        assert_eq!(t[4].transport, Transport::Tcp);
    }

    #[test]
    fn domain_with_and_without_port() {
        assert_eq!(split_domain("Carrier.Example"), ("carrier.example.".into(), None));
        assert_eq!(split_domain("carrier.example.:5080"), ("carrier.example.".into(), Some(5080)));
        assert_eq!(fallback_srv_names("c.example.")[1].1, "_sip._tcp.c.example.");
        let t = address_targets(&["192.0.2.9".parse().unwrap()], 5080);
        assert_eq!((t[0].addr.to_string(), t[0].transport), ("192.0.2.9:5080".into(), Transport::Udp));
    }
}
