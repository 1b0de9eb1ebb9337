//! The resolver thread: resolves every watched trunk `domain` (RFC 3263, decisions in
//! [`super::rfc3263`]) with `hickory-resolver` on a current-thread tokio runtime of its own, and
//! again when the answer's TTL (bounded by `[sip.dns]`) runs out, or `retry_secs` after a
//! failure. The SIP loop never waits on it: it sends the watch list ([`DnsThread::watch`]) and
//! takes answers ([`DnsThread::try_answer`]) each turn.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use xtrunk_config::{Dns, Target};

use super::rfc3263::{self, Naptr, Srv};

/// One domain to keep resolved, for the trunk that names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Watch {
    /// The trunk's name.
    pub trunk: String,
    /// Its `domain`.
    pub domain: String,
}

/// What one resolution found: the trunk's new targets, or why there are none (the last good
/// targets stay in use).
#[derive(Debug, Clone)]
pub struct Answer {
    /// What was resolved.
    pub watch: Watch,
    /// The targets, best first (`priority` set), or why none were found.
    pub result: Result<Vec<Target>, String>,
}

/// The handle the shell keeps; dropping it stops the thread.
pub struct DnsThread {
    watch_tx: Sender<Vec<Watch>>,
    answers: Receiver<Answer>,
    _join: JoinHandle<()>,
}

impl DnsThread {
    /// Starts the thread with `cfg`'s name servers and bounds.
    pub fn spawn(cfg: &Dns) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let resolver = {
            let _in = rt.enter();
            build(cfg)?
        };
        let (watch_tx, watch_rx) = mpsc::channel();
        let (answer_tx, answers) = mpsc::channel();
        let bounds = Bounds {
            min: Duration::from_secs(u64::from(cfg.min_ttl_secs)),
            max: Duration::from_secs(u64::from(cfg.max_ttl_secs)),
            retry: Duration::from_secs(u64::from(cfg.retry_secs)),
        };
        let join = std::thread::Builder::new()
            .name("xtrunk-dns".into())
            .spawn(move || run(&rt, &resolver, bounds, &watch_rx, &answer_tx))?;
        Ok(Self { watch_tx, answers, _join: join })
    }

    /// Replaces the watched set (after a start or a reload): new domains are resolved at once,
    /// dropped ones no more.
    pub fn watch(&self, set: Vec<Watch>) {
        let _ = self.watch_tx.send(set);
    }

    /// The next answer, if one is ready.
    pub fn try_answer(&self) -> Option<Answer> {
        self.answers.try_recv().ok()
    }
}

#[derive(Clone, Copy)]
struct Bounds {
    min: Duration,
    max: Duration,
    retry: Duration,
}

fn build(cfg: &Dns) -> anyhow::Result<TokioResolver> {
    let mut b = if cfg.servers.is_empty() {
        TokioResolver::builder_tokio()?
    } else {
        let ns = cfg
            .servers
            .iter()
            .map(|s| {
                let mut n = NameServerConfig::udp_and_tcp(s.ip());
                for c in &mut n.connections {
                    c.port = s.port();
                }
                n
            })
            .collect();
        Resolver::builder_with_config(ResolverConfig::from_name_servers(ns), TokioRuntimeProvider::default())
    };
    let o = b.options_mut();
    o.timeout = Duration::from_millis(u64::from(cfg.timeout_ms));
    o.attempts = 2;
    o.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    o.positive_max_ttl = Some(Duration::from_secs(u64::from(cfg.max_ttl_secs)));
    o.negative_max_ttl = Some(Duration::from_secs(u64::from(cfg.retry_secs)));
    Ok(b.build()?)
}

fn run(rt: &tokio::runtime::Runtime, r: &TokioResolver, b: Bounds, rx: &Receiver<Vec<Watch>>, tx: &Sender<Answer>) {
    let mut due: HashMap<Watch, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        let wait = due.values().min().map_or(Duration::from_secs(3600), |t| t.saturating_duration_since(now));
        match rx.recv_timeout(wait) {
            Ok(set) => {
                due.retain(|w, _| set.contains(w));
                for w in set {
                    due.entry(w).or_insert(now);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let ready: Vec<Watch> = due.iter().filter(|(_, t)| **t <= now).map(|(w, _)| w.clone()).collect();
        for w in ready {
            let (result, next) = match rt.block_on(resolve(r, &w.domain)) {
                Ok((targets, valid_until)) => {
                    let ttl = valid_until.saturating_duration_since(Instant::now()).clamp(b.min, b.max);
                    log::info!("dns: {} ({}): {} target(s), next in {ttl:?}", w.domain, w.trunk, targets.len());
                    (Ok(targets), ttl)
                }
                Err(e) => {
                    log::warn!("dns: {} ({}): {e}; trying again in {:?}", w.domain, w.trunk, b.retry);
                    (Err(e), b.retry)
                }
            };
            due.insert(w.clone(), Instant::now() + next);
            if tx.send(Answer { watch: w, result }).is_err() {
                return;
            }
        }
    }
}

/// RFC 3263 §4: NAPTR → SRV → A/AAAA for `domain` (`host:port`: A/AAAA only). The targets and
/// the earliest expiry of the records they came from.
async fn resolve(r: &TokioResolver, domain: &str) -> Result<(Vec<Target>, Instant), String> {
    let (host, port) = rfc3263::split_domain(domain);
    let mut until = Instant::now() + Duration::from_secs(86_400);
    if let Some(port) = port {
        let ips = addresses(r, &host, &mut until).await?;
        return Ok((rfc3263::address_targets(&ips, port), until));
    }
    let naptrs = naptr(r, &host, &mut until).await;
    let mut names = rfc3263::srv_names(&naptrs);
    if names.is_empty() {
        names = rfc3263::fallback_srv_names(&host);
    }
    let mut ranked = Vec::new();
    let mut any_srv = false;
    for (rank, (transport, name)) in names.iter().enumerate() {
        let srvs = srv(r, name, &mut until).await;
        any_srv |= !srvs.is_empty();
        let mut ips: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for s in &srvs {
            if s.target != "." && !ips.contains_key(&s.target) {
                let found = addresses(r, &s.target, &mut until).await.unwrap_or_default();
                ips.insert(s.target.clone(), found);
            }
        }
        let rank = u16::try_from(rank).unwrap_or(u16::MAX);
        ranked.extend(rfc3263::srv_targets(rank, *transport, &srvs, |h| ips.get(h).cloned().unwrap_or_default()));
    }
    if !any_srv {
        // §4.2: no SRV records: the domain's own addresses, port 5060, UDP.
        let ips = addresses(r, &host, &mut until).await?;
        return Ok((rfc3263::address_targets(&ips, 5060), until));
    }
    let targets = rfc3263::finish(ranked);
    if targets.is_empty() {
        return Err(format!("no SRV target of {host} has an address"));
    }
    Ok((targets, until))
}

async fn naptr(r: &TokioResolver, host: &str, until: &mut Instant) -> Vec<Naptr> {
    let Ok(l) = r.lookup(host, RecordType::NAPTR).await else { return Vec::new() };
    *until = (*until).min(l.valid_until());
    l.answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::NAPTR(n) => Some(Naptr {
                order: n.order,
                preference: n.preference,
                flags: String::from_utf8_lossy(&n.flags).into_owned(),
                service: String::from_utf8_lossy(&n.services).into_owned(),
                replacement: n.replacement.to_ascii(),
            }),
            _ => None,
        })
        .collect()
}

async fn srv(r: &TokioResolver, name: &str, until: &mut Instant) -> Vec<Srv> {
    let Ok(l) = r.lookup(name, RecordType::SRV).await else { return Vec::new() };
    *until = (*until).min(l.valid_until());
    l.answers()
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::SRV(s) => Some(Srv {
                priority: s.priority,
                weight: s.weight,
                port: s.port,
                target: s.target.to_ascii().to_ascii_lowercase(),
            }),
            _ => None,
        })
        .collect()
}

async fn addresses(r: &TokioResolver, host: &str, until: &mut Instant) -> Result<Vec<IpAddr>, String> {
    let l = r.lookup_ip(host).await.map_err(|e| format!("{host}: {e}"))?;
    *until = (*until).min(l.valid_until());
    let v: Vec<IpAddr> = l.iter().collect();
    if v.is_empty() {
        return Err(format!("{host}: no address"));
    }
    Ok(v)
}
