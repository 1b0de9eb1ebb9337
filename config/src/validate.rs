//! The validation pass: every rule, each problem naming its key path.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::{
    AuthMode, Backend, Codec, Config, SrtpPolicy, SrtpSuite, Transport, Trunk, TrunkKind, CODECS, MAX_LEG_TIMEOUT_SECS,
    MEDIA_PORT_FLOOR, MIN_LEG_TIMEOUT_SECS, SRTP_SUITES,
};

mod admission;
mod host;
mod pools;
mod routing;
mod tls;

pub use host::Host;

/// Interfaces one XDP program instance serves (`XT_MAX_IFACES` in `ebpf/xdp/xtrunk_maps.h`).
const XDP_MAX_INTERFACES: usize = 8;
/// Queues per interface the XSK map holds (`XT_MAX_QUEUES` in `ebpf/xdp/xtrunk_maps.h`).
const XDP_MAX_QUEUES: u32 = 64;

/// One problem found in a configuration: the key path and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path with indices, e.g. `datapath.af_xdp.interfaces[0].queues[1].core`.
    pub path: String,
    /// What is wrong, with the offending value.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl Config {
    /// Checks every rule; returns all problems (empty = valid).
    pub fn validate(&self, host: Host) -> Vec<Problem> {
        let mut v = Validator::default();
        self.validate_node(&mut v);
        if host.check_paths {
            self.validate_node_dirs(&mut v);
        }
        self.validate_sip(&mut v);
        crate::auth::validate_sip_auth(&mut v, "sip.auth", &self.sip.auth);
        crate::overload::validate_overload(&mut v, "sip.overload", &self.sip.overload);
        self.validate_usernames(&mut v);
        self.validate_media(&mut v);
        self.validate_datapath(&mut v, host);
        self.validate_trunks(&mut v);
        self.validate_routes(&mut v);
        self.shared.validate(&mut v);
        pools::validate_accounts(self, &mut v);
        self.validate_ops(&mut v);
        v.problems
    }

    /// The ring's, the CDR file's and the SQLite store's directories exist (the files are created
    /// at start).
    fn validate_node_dirs(&self, v: &mut Validator) {
        let sqlite = (self.cdr.store == crate::StoreKind::Sqlite).then_some(&self.cdr.sqlite_path);
        let paths = [
            ("node.shm_path", Some(&self.node.shm_path)),
            ("node.cdr_path", self.node.cdr_path.as_ref()),
            ("cdr.sqlite_path", sqlite),
        ];
        for (key, path) in paths {
            let Some(dir) = path.and_then(|p| p.parent()).filter(|d| !d.as_os_str().is_empty()) else { continue };
            if !dir.is_dir() {
                v.add(key, format!("directory {} does not exist", dir.display()));
            }
        }
    }

    fn validate_node(&self, v: &mut Validator) {
        if self.node.name.trim().is_empty() {
            v.add("node.name", "must not be empty");
        }
        if !self.node.shm_path.is_absolute() {
            v.add("node.shm_path", format!("must be an absolute path, got {:?}", self.node.shm_path));
        }
    }

    fn validate_sip(&self, v: &mut Validator) {
        let sip = &self.sip;
        if sip.listen.is_empty() {
            v.add("sip.listen", "must list at least one listener");
        }
        let mut seen = HashSet::new();
        for (i, l) in sip.listen.iter().enumerate() {
            let p = format!("sip.listen[{i}]");
            if l.addr.port() == 0 {
                v.add(format!("{p}.addr"), format!("port must not be 0, got {}", l.addr));
            }
            if !seen.insert((l.transport, l.addr)) {
                v.add(format!("{p}.addr"), format!("{} {} is listed twice", l.transport, l.addr));
            }
            if let Some(h) = &l.advertised {
                if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c == ';' || c == ',') {
                    v.add(format!("{p}.advertised"), format!("must be a host name or IP, got {h:?}"));
                }
            }
            match (l.transport, &l.tls) {
                (Transport::Tls, None) => {
                    v.add(format!("{p}.tls"), "transport tls needs tls = { cert = ..., key = ... }")
                }
                (Transport::Udp | Transport::Tcp, Some(_)) => v.add(
                    format!("{p}.tls"),
                    format!("only meaningful with transport = \"tls\", got \"{}\"", l.transport),
                ),
                _ => {}
            }
        }
        if let Some(h) = &sip.advertised_host {
            if h.is_empty() || h.contains(|c: char| c.is_whitespace() || c == ';' || c == ',') {
                v.add("sip.advertised_host", format!("must be a host name or IP, got {h:?}"));
            }
        }
        let t = &sip.timers;
        if t.t1_ms == 0 {
            v.add("sip.timers.t1_ms", "must be at least 1");
        }
        if t.t2_ms < t.t1_ms {
            v.add("sip.timers.t2_ms", format!("must be >= t1_ms ({}), got {}", t.t1_ms, t.t2_ms));
        }
        if t.t4_ms == 0 {
            v.add("sip.timers.t4_ms", "must be at least 1");
        }
        if !(1500..=1_048_576).contains(&sip.max_message_bytes) {
            v.add("sip.max_message_bytes", format!("must be between 1500 and 1048576, got {}", sip.max_message_bytes));
        }
        if sip.no_answer_timeout_secs == 0 {
            v.add("sip.no_answer_timeout_secs", "must be at least 1");
        }
        if sip.min_se_secs == 0 || sip.min_se_secs > 86_400 {
            v.add("sip.min_se_secs", format!("must be 1..=86400 (RFC 4028: at least 90), got {}", sip.min_se_secs));
        }
        if sip.session_expires_secs != 0 && !(sip.min_se_secs..=86_400).contains(&sip.session_expires_secs) {
            v.add(
                "sip.session_expires_secs",
                format!(
                    "must be 0 (off) or min_se_secs ({})..=86400, got {}",
                    sip.min_se_secs, sip.session_expires_secs
                ),
            );
        }
        if !(100..=64_000).contains(&sip.target_timeout_ms) {
            v.add("sip.target_timeout_ms", format!("must be between 100 and 64000, got {}", sip.target_timeout_ms));
        }
        if sip.hunt_timeout_secs == 0 || u64::from(sip.hunt_timeout_secs) * 1000 < u64::from(sip.target_timeout_ms) {
            v.add(
                "sip.hunt_timeout_secs",
                format!(
                    "must be at least target_timeout_ms ({} ms), got {} s",
                    sip.target_timeout_ms, sip.hunt_timeout_secs
                ),
            );
        }
        self.validate_sip_limits(v);
        self.validate_sip_tcp(v);
        routing::validate_dns(self, v);
        routing::validate_contacts(self, v);
    }

    fn validate_sip_limits(&self, v: &mut Validator) {
        let l = &self.sip.limits;
        if l.max_server_transactions == 0 {
            v.add("sip.limits.max_server_transactions", "must be at least 1");
        }
        if l.max_transactions_per_source == 0 || l.max_transactions_per_source > l.max_server_transactions {
            v.add(
                "sip.limits.max_transactions_per_source",
                format!(
                    "must be within 1-{} (max_server_transactions), got {}",
                    l.max_server_transactions, l.max_transactions_per_source
                ),
            );
        }
        if l.max_transaction_bytes < 1 << 20 {
            v.add(
                "sip.limits.max_transaction_bytes",
                format!("must be at least 1048576, got {}", l.max_transaction_bytes),
            );
        }
        if !(1..=100).contains(&l.max_pending_share_pct) {
            v.add(
                "sip.limits.max_pending_share_pct",
                format!("must be between 1 and 100, got {}", l.max_pending_share_pct),
            );
        }
    }

    fn validate_sip_tcp(&self, v: &mut Validator) {
        let sip = &self.sip;
        if !(1..=1_000_000).contains(&sip.tcp_max_connections) {
            v.add("sip.tcp_max_connections", format!("must be between 1 and 1000000, got {}", sip.tcp_max_connections));
        }
        if sip.tcp_max_per_source == 0 || sip.tcp_max_per_source > sip.tcp_max_connections {
            v.add(
                "sip.tcp_max_per_source",
                format!(
                    "must be between 1 and tcp_max_connections ({}), got {}",
                    sip.tcp_max_connections, sip.tcp_max_per_source
                ),
            );
        }
        if !(1..=86_400).contains(&sip.tcp_idle_timeout_s) {
            v.add("sip.tcp_idle_timeout_s", format!("must be between 1 and 86400, got {}", sip.tcp_idle_timeout_s));
        }
        if sip.tcp_max_write_buffer < sip.max_message_bytes || sip.tcp_max_write_buffer > 1 << 30 {
            v.add(
                "sip.tcp_max_write_buffer",
                format!(
                    "must be between max_message_bytes ({}) and 1073741824, got {}",
                    sip.max_message_bytes, sip.tcp_max_write_buffer
                ),
            );
        }
    }

    fn validate_media(&self, v: &mut Validator) {
        let m = &self.media;
        if m.port_min < MEDIA_PORT_FLOOR {
            v.add("media.port_min", format!("must be within {MEDIA_PORT_FLOOR}-65535, got {}", m.port_min));
        }
        if !m.port_min.is_multiple_of(2) {
            v.add("media.port_min", format!("must be even (RTP uses even ports), got {}", m.port_min));
        }
        if m.port_max < MEDIA_PORT_FLOOR {
            v.add("media.port_max", format!("must be within {MEDIA_PORT_FLOOR}-65535, got {}", m.port_max));
        }
        if m.port_max <= m.port_min {
            v.add(
                "media.port_max",
                format!("range is inverted or empty: port_max {} must be above port_min {}", m.port_max, m.port_min),
            );
        } else if m.port_max - m.port_min < 3 {
            v.add(
                "media.port_max",
                format!(
                    "range {}-{} holds no RTP/RTCP pair for two legs (need at least 4 ports)",
                    m.port_min, m.port_max
                ),
            );
        }
        let sip_ports: Vec<u16> = self.sip.listen.iter().map(|l| l.addr.port()).collect();
        for (i, port) in sip_ports.iter().enumerate() {
            if (m.port_min..=m.port_max).contains(port) {
                v.add(
                    format!("sip.listen[{i}].addr"),
                    format!("port {port} lies inside the media range {}-{}", m.port_min, m.port_max),
                );
            }
        }
        if m.bind_ip.is_unspecified() && m.advertised_ip.is_none() {
            v.add(
                "media.advertised_ip",
                format!("must be set when media.bind_ip is {} (SDP needs a real address)", m.bind_ip),
            );
        }
        if let Some(ip) = m.advertised_ip {
            if ip.is_unspecified() {
                v.add("media.advertised_ip", format!("must be a real address, got {ip}"));
            }
        }
        check_leg_timeout(v, "media.leg_timeout_secs", m.leg_timeout_secs);
    }

    fn validate_datapath(&self, v: &mut Validator, host: Host) {
        let d = &self.datapath;
        let mut cores_seen = HashSet::new();
        for (i, &c) in d.socket_cores.iter().enumerate() {
            check_core(v, &format!("datapath.socket_cores[{i}]"), c, host);
            if !cores_seen.insert(c) {
                v.add(format!("datapath.socket_cores[{i}]"), format!("core {c} is listed twice"));
            }
        }
        let ports = usize::from(self.media.port_max.saturating_sub(self.media.port_min)) + 1;
        if d.max_sessions == 0 {
            v.add("datapath.max_sessions", "must be at least 1");
        } else if d.max_sessions > ports / 4 && self.media.port_max > self.media.port_min {
            v.add(
                "datapath.max_sessions",
                format!(
                    "{} sessions need {} ports (2 legs x RTP+RTCP) but media range {}-{} has {ports}",
                    d.max_sessions,
                    d.max_sessions * 4,
                    self.media.port_min,
                    self.media.port_max
                ),
            );
        }
        for (key, n) in [("datapath.ring.commands", d.ring.commands), ("datapath.ring.events", d.ring.events)] {
            check_pow2(v, key, u64::from(n), 16, 1 << 20);
        }
        let x = &d.af_xdp;
        if !matches!(x.frame_size, 2048 | 4096) {
            v.add("datapath.af_xdp.frame_size", format!("must be 2048 or 4096, got {}", x.frame_size));
        }
        check_pow2(v, "datapath.af_xdp.frame_count", u64::from(x.frame_count), 64, 1 << 20);
        check_pow2(v, "datapath.af_xdp.ring_size", u64::from(x.ring_size), 64, 1 << 16);
        if x.frame_count.is_power_of_two() && x.ring_size.is_power_of_two() && x.frame_count < 2 * x.ring_size {
            v.add(
                "datapath.af_xdp.frame_count",
                format!(
                    "must be at least 2 x ring_size ({}) to fill the fill ring and the TX ring, got {}",
                    2 * u64::from(x.ring_size),
                    x.frame_count
                ),
            );
        }
        if d.backend == Backend::AfXdp && x.interfaces.is_empty() {
            v.add("datapath.af_xdp.interfaces", "backend af_xdp needs at least one interface");
        }
        self.validate_interfaces(v, host);
    }

    fn validate_interfaces(&self, v: &mut Validator, host: Host) {
        let itfs = &self.datapath.af_xdp.interfaces;
        if itfs.len() > XDP_MAX_INTERFACES {
            v.add(
                "datapath.af_xdp.interfaces",
                format!(
                    "at most {XDP_MAX_INTERFACES} interfaces (one XDP program serves that many), got {}",
                    itfs.len()
                ),
            );
        }
        let mut names = HashSet::new();
        for (i, itf) in itfs.iter().enumerate() {
            let p = format!("datapath.af_xdp.interfaces[{i}]");
            if itf.name.is_empty() || itf.name.len() > 15 || itf.name.contains(['/', ' ']) {
                v.add(
                    format!("{p}.name"),
                    format!("must be a kernel interface name (1-15 chars, no '/' or space), got {:?}", itf.name),
                );
            }
            if !names.insert(itf.name.clone()) {
                v.add(format!("{p}.name"), format!("interface {:?} is listed twice", itf.name));
            }
            if itf.queues.is_empty() {
                v.add(format!("{p}.queues"), "must list at least one queue");
            } else if !itf.queues.len().is_power_of_two() {
                v.add(
                    format!("{p}.queues"),
                    format!(
                        "queue count must be a power of two (RSS indirection spreads evenly), got {}",
                        itf.queues.len()
                    ),
                );
            }
        }
        self.validate_queue_cores(v, host);
    }

    /// The AF_XDP runtime runs one worker per queue index: worker `q` serves queue `q` of every
    /// interface listing it and is pinned to that queue's core. So queue `q` names the same core
    /// on every interface, and two queue indices never share a core.
    fn validate_queue_cores(&self, v: &mut Validator, host: Host) {
        // Queue index -> (core, where it was first set); core -> queue index.
        let mut core_of: HashMap<u32, (usize, String)> = HashMap::new();
        let mut queue_on: HashMap<usize, u32> = HashMap::new();
        for (i, itf) in self.datapath.af_xdp.interfaces.iter().enumerate() {
            let mut ids = HashSet::new();
            for (j, q) in itf.queues.iter().enumerate() {
                let qp = format!("datapath.af_xdp.interfaces[{i}].queues[{j}]");
                if q.id >= XDP_MAX_QUEUES {
                    v.add(
                        format!("{qp}.id"),
                        format!(
                            "must be below {XDP_MAX_QUEUES} (the XSK map holds that many per interface), got {}",
                            q.id
                        ),
                    );
                }
                if !ids.insert(q.id) {
                    v.add(format!("{qp}.id"), format!("queue {} is listed twice", q.id));
                    continue;
                }
                check_core(v, &format!("{qp}.core"), q.core, host);
                match core_of.get(&q.id) {
                    Some((c, at)) if *c != q.core => v.add(
                        format!("{qp}.core"),
                        format!(
                            "queue {} is served on every interface by one worker, pinned to core {c} ({at}); got {}",
                            q.id, q.core
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        core_of.insert(q.id, (q.core, format!("{qp}.core")));
                        if let Some(other) = queue_on.get(&q.core) {
                            v.add(
                                format!("{qp}.core"),
                                format!(
                                    "core {} already serves queue {other} (one worker per queue index, one core each)",
                                    q.core
                                ),
                            );
                        } else {
                            queue_on.insert(q.core, q.id);
                        }
                    }
                }
            }
        }
    }

    fn validate_trunks(&self, v: &mut Validator) {
        let mut names = HashSet::new();
        for (i, t) in self.trunks.iter().enumerate() {
            let p = format!("trunk[{i}]");
            if t.name.is_empty() || !t.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                v.add(format!("{p}.name"), format!("must be non-empty [A-Za-z0-9._-], got {:?}", t.name));
            }
            if !names.insert(t.name.as_str()) {
                v.add(format!("{p}.name"), format!("trunk {:?} is defined twice", t.name));
            }
            if t.acl.is_empty()
                && t.acl_aliases.is_empty()
                && t.targets.is_empty()
                && t.domain.is_none()
                && t.registrations.is_empty()
                && t.auth != AuthMode::Digest
            {
                v.add(
                    format!("{p}.acl"),
                    "a trunk needs an acl or digest users (to accept calls from it) or targets, a domain or registrations (to send calls to it)",
                );
            }
            for (j, f) in t.failover.iter().enumerate() {
                match self.trunks.iter().find(|x| x.name == *f) {
                    None => v.add(format!("{p}.failover[{j}]"), format!("no trunk named {f:?}")),
                    Some(x) if !dialable(x) => {
                        v.add(format!("{p}.failover[{j}]"), format!("trunk {f:?} has no targets to send calls to"))
                    }
                    Some(_) if *f == t.name || t.failover[..j].contains(f) => {
                        v.add(format!("{p}.failover[{j}]"), format!("trunk {f:?} is this trunk or listed twice"))
                    }
                    Some(_) => {}
                }
            }
            if t.failover.len() >= crate::MAX_ROUTE_ENTRIES {
                v.add(format!("{p}.failover"), format!("at most {} trunks", crate::MAX_ROUTE_ENTRIES - 1));
            }
            if let Some(d) = &t.domain {
                if let Err(why) = crate::sip::check_domain(d) {
                    v.add(format!("{p}.domain"), why);
                }
                if !t.targets.is_empty() {
                    v.add(format!("{p}.domain"), "a trunk has targets or a domain, not both");
                }
            }
            for (j, tg) in t.targets.iter().enumerate() {
                if tg.addr.port() == 0 || tg.addr.ip().is_unspecified() {
                    v.add(format!("{p}.targets[{j}].addr"), format!("must be a reachable address, got {}", tg.addr));
                }
                if !(1..=1000).contains(&tg.weight) {
                    v.add(format!("{p}.targets[{j}].weight"), format!("must be 1..=1000, got {}", tg.weight));
                }
            }
            if let Some(a) = t.sip_listen {
                let want = t.targets.first().map(|x| x.transport);
                let ok = self.sip.listen.iter().any(|l| l.addr == a && want.is_none_or(|w| w == l.transport));
                if !ok {
                    let tr = want.map_or(String::new(), |w| format!("{w} "));
                    v.add(format!("{p}.sip_listen"), format!("{a} is no {tr}listener in [[sip.listen]]"));
                }
            }
            if t.media_ip.is_some_and(|ip| ip.is_unspecified()) {
                v.add(format!("{p}.media_ip"), "must be a real address (it goes into SDP)");
            }
            tls::validate_trunk_tls(self, v, &p, t);
            self.validate_trunk_policy(v, &p, t);
            validate_options(v, &p, t);
            admission::validate_limits(v, &p, &t.limits);
            admission::validate_numbers(v, &p, &t.numbers);
            validate_trunk_media(v, &p, t);
            check_leg_timeout(v, &format!("{p}.leg_timeout_secs"), t.leg_timeout_secs);
        }
        pools::validate_acl_overlaps(self, v);
        pools::validate_acl_aliases(self, v);
    }

    /// Problems that do not refuse the file but that `check-config` reports (key path, reason).
    pub fn warnings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, t) in self.trunks.iter().enumerate() {
            crate::auth::warn_users(&format!("trunk[{i}]"), &t.users, &mut out);
        }
        out
    }

    /// A digest username identifies its trunk: unique over all trunks.
    fn validate_usernames(&self, v: &mut Validator) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (i, t) in self.trunks.iter().enumerate() {
            for (j, u) in t.users.iter().enumerate() {
                if let Some(other) = seen.insert(&u.username, &t.name) {
                    if other != t.name {
                        v.add(
                            format!("trunk[{i}].users[{j}].username"),
                            format!("{:?} is a user of trunk {other:?} too", u.username),
                        );
                    }
                }
            }
        }
    }

    /// `account`, `kind` and `auth` of one trunk.
    fn validate_trunk_policy(&self, v: &mut Validator, p: &str, t: &Trunk) {
        if let Some(a) = &t.account {
            if !self.accounts.iter().any(|acc| acc.name == *a) {
                v.add(format!("{p}.account"), format!("no account named {a:?}"));
            }
        }
        crate::registration::validate(v, p, t.kind == TrunkKind::Register, &t.registrations);
        if t.kind == TrunkKind::Register {
            routing::validate_register(v, p, t);
        }
        if t.kind == TrunkKind::AcceptRegister {
            routing::validate_accept_register(v, p, t);
        }
        let digest = t.auth != AuthMode::Acl;
        if t.auth == AuthMode::Both && t.acl.is_empty() {
            v.add(format!("{p}.acl"), "auth = \"both\" needs the addresses to check");
        }
        crate::auth::validate_users(v, p, digest, &t.users);
    }

    fn validate_routes(&self, v: &mut Validator) {
        let names: HashSet<&str> = self.trunks.iter().map(|t| t.name.as_str()).collect();
        let mut seen = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let p = format!("route[{i}]");
            if let Some(c) = &r.caller_prefix {
                let digits = c.strip_prefix('+').unwrap_or(c);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    v.add(format!("{p}.caller_prefix"), format!("must be '+' and digits, got {c:?}"));
                }
            }
            if let Some(Err(e)) = r.time.as_ref().map(|w| crate::snapshot::window(&p, w)) {
                v.add(e.path, e.reason);
            }
            let body = r.prefix.strip_prefix('+').unwrap_or(&r.prefix);
            if !body.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
                v.add(format!("{p}.prefix"), format!("must be '+' and digits, got {:?}", r.prefix));
            }
            match self.trunks.iter().find(|t| t.name == r.trunk) {
                None => v.add(format!("{p}.trunk"), format!("no trunk named {:?}", r.trunk)),
                Some(t) if !dialable(t) => {
                    v.add(format!("{p}.trunk"), format!("trunk {:?} has no targets to send calls to", r.trunk))
                }
                Some(_) => {}
            }
            if r.then.len() + 1 > crate::MAX_ROUTE_ENTRIES {
                v.add(
                    format!("{p}.then"),
                    format!("at most {} failover trunks, got {}", crate::MAX_ROUTE_ENTRIES - 1, r.then.len()),
                );
            }
            for (j, name) in r.then.iter().enumerate() {
                match self.trunks.iter().find(|t| t.name == *name) {
                    None => v.add(format!("{p}.then[{j}]"), format!("no trunk named {name:?}")),
                    Some(t) if !dialable(t) => {
                        v.add(format!("{p}.then[{j}]"), format!("trunk {name:?} has no targets to send calls to"))
                    }
                    Some(_) if *name == r.trunk || r.then[..j].contains(name) => {
                        v.add(format!("{p}.then[{j}]"), format!("trunk {name:?} is already an entry of this route"))
                    }
                    Some(_) => {}
                }
            }
            if let Some(n) = &r.then_number {
                let d = n.strip_prefix('+').unwrap_or(n);
                if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                    v.add(format!("{p}.then_number"), format!("must be '+' and digits, got {n:?}"));
                }
            }
            if let Some(c) = r.failover_codes.iter().find(|c| !(300..700).contains(*c) && **c != 408) {
                v.add(format!("{p}.failover_codes"), format!("must be final codes 300..=699, got {c}"));
            }
            if let Some(f) = &r.from_trunk {
                if !names.contains(f.as_str()) {
                    v.add(format!("{p}.from_trunk"), format!("no trunk named {f:?}"));
                }
            }
            if !seen.insert((r.prefix.clone(), r.from_trunk.clone())) {
                v.add(format!("{p}.prefix"), format!("prefix {:?} is routed twice", r.prefix));
            }
        }
    }
}

/// `codecs`, `srtp` and `srtp_suites` of one trunk.
fn validate_trunk_media(v: &mut Validator, p: &str, t: &Trunk) {
    if t.codecs.is_empty() {
        v.add(format!("{p}.codecs"), "must list at least one codec");
    }
    let mut seen = HashSet::new();
    for (j, c) in t.codecs.iter().enumerate() {
        if Codec::from_name(c).is_none() {
            v.add(format!("{p}.codecs[{j}]"), format!("unknown codec {c:?}; known: {}", CODECS.join(", ")));
        }
        if !seen.insert(c.to_ascii_lowercase()) {
            v.add(format!("{p}.codecs[{j}]"), format!("codec {c:?} is listed twice"));
        }
    }
    if !t.codecs.is_empty() && t.codecs.iter().all(|c| Codec::from_name(c).is_some_and(|c| !c.is_audio())) {
        v.add(format!("{p}.codecs"), "must list at least one audio codec besides telephone-event/CN");
    }
    if crate::Dtmf::from_name(&t.dtmf).is_none() {
        v.add(format!("{p}.dtmf"), format!("must be one of {}, got {:?}", crate::DTMF_MODES.join(", "), t.dtmf));
    }
    for (j, s) in t.srtp_suites.iter().enumerate() {
        if SrtpSuite::from_name(s).is_none() {
            v.add(
                format!("{p}.srtp_suites[{j}]"),
                format!("unknown SRTP suite {s:?}; known: {}", SRTP_SUITES.join(", ")),
            );
        }
    }
    if t.srtp != SrtpPolicy::Off && t.srtp_suites.is_empty() {
        v.add(format!("{p}.srtp_suites"), format!("srtp = {:?} needs at least one suite", t.srtp));
    }
}

fn check_core(v: &mut Validator, path: &str, core: usize, host: Host) {
    if core >= host.cores {
        v.add(path, format!("core {core} does not exist (this host has cores 0-{})", host.cores - 1));
    }
}

/// 0 (off) or within [`MIN_LEG_TIMEOUT_SECS`]..=[`MAX_LEG_TIMEOUT_SECS`].
fn check_leg_timeout(v: &mut Validator, path: &str, secs: Option<u32>) {
    if let Some(n @ 1..) = secs.filter(|n| !(MIN_LEG_TIMEOUT_SECS..=MAX_LEG_TIMEOUT_SECS).contains(n)) {
        v.add(
            path,
            format!(
                "must be 0 (off) or between {MIN_LEG_TIMEOUT_SECS} and {MAX_LEG_TIMEOUT_SECS} (RTCP comes every \
                 5 s or so; a shorter timeout cuts legs on hold), got {n}"
            ),
        );
    }
}

fn check_pow2(v: &mut Validator, path: &str, n: u64, min: u64, max: u64) {
    if !n.is_power_of_two() {
        v.add(path, format!("must be a power of two, got {n}"));
    } else if n < min || n > max {
        v.add(path, format!("must be between {min} and {max}, got {n}"));
    }
}

#[derive(Default)]
pub(crate) struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    pub(crate) fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), reason: reason.into() });
    }
}

/// `trunk[i].options`: probing toward a carrier no more often than once per 10 s; counts and the
/// timeout within sense (a probe must end before the next one starts).
fn validate_options(v: &mut Validator, p: &str, t: &Trunk) {
    let o = &t.options;
    if o.is_off() {
        return;
    }
    let min = if t.role == crate::TrunkRole::Carrier { crate::MIN_CARRIER_INTERVAL_SECS } else { 1 };
    if o.interval_secs < min || o.interval_secs > 86_400 {
        let why = if min > 1 { " (at most one probe per 10 s toward a carrier)" } else { "" };
        v.add(
            format!("{p}.options.interval_secs"),
            format!("must be 0 (off) or {min}..=86400{why}, got {}", o.interval_secs),
        );
    }
    for (k, n) in [("failures", o.failures), ("successes", o.successes)] {
        if !(1..=100).contains(&n) {
            v.add(format!("{p}.options.{k}"), format!("must be 1..=100, got {n}"));
        }
    }
    if o.timeout_ms < 100 || u64::from(o.timeout_ms) >= u64::from(o.interval_secs) * 1000 {
        v.add(
            format!("{p}.options.timeout_ms"),
            format!("must be at least 100 and below interval_secs ({} s), got {}", o.interval_secs, o.timeout_ms),
        );
    }
    if t.targets.is_empty() && t.domain.is_none() && t.registrations.is_empty() {
        v.add(format!("{p}.options"), "probing needs targets, a domain or registrations");
    }
}

/// Whether calls can be sent to `t`: it has targets, a domain to resolve, or registrations.
fn dialable(t: &Trunk) -> bool {
    !t.targets.is_empty() || t.domain.is_some() || t.kind == TrunkKind::AcceptRegister || !t.registrations.is_empty()
}
