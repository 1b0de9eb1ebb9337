//! The typed, resolved form of a validated [`Config`]: what the signaling core runs on.
//!
//! [`Config::snapshot`] validates, then resolves every name once: trunk and account names become
//! [`TrunkId`]/[`AccountId`] indices, codec and suite names become [`Codec`]/[`SrtpSuite`], DID
//! entries become [`DidRange`]s, and each trunk's latch is settled against `[media].latch`. After
//! load nothing matches strings except the called number against route prefixes and DID pools.
//!
//! A [`Snapshot`] is immutable, `Send + Sync` and cheap to share behind an `Arc`; a reload builds
//! a new one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::{
    AuthMode, Codec, Config, Datapath, DidRange, Error, Fraud, Host, Latch, Limits, Media, Node, NumberFormat, Problem,
    Sip, SrtpPolicy, SrtpSuite, Target, Transport, TrunkKind, TrunkRole, DEFAULT_TOML, EMBEDDED,
};

/// A trunk of one [`Snapshot`]: the index into [`Snapshot::trunks`] (config order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkId(pub u32);

/// An account of one [`Snapshot`]: the index into [`Snapshot::accounts`] (config order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u32);

impl TrunkId {
    /// The index into [`Snapshot::trunks`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl AccountId {
    /// The index into [`Snapshot::accounts`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A register trunk's targets: its registrars, the first listed first (priority = index).
fn registration_targets(regs: &[crate::Registration]) -> impl Iterator<Item = Target> + '_ {
    regs.iter().enumerate().map(|(i, r)| Target {
        addr: r.registrar,
        transport: r.transport,
        weight: 1,
        priority: u16::try_from(i).unwrap_or(u16::MAX),
    })
}

/// A trunk, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct TrunkView {
    /// This trunk's id (its position in [`Snapshot::trunks`]).
    pub id: TrunkId,
    /// The configured name (for logs and CDRs; lookups use `id`).
    pub name: String,
    /// The account named by `trunk.account`.
    pub account: Option<AccountId>,
    /// customer or carrier.
    pub role: TrunkRole,
    /// How the peer is reached (only [`TrunkKind::Ip`] passes validation in this release).
    pub kind: TrunkKind,
    /// How requests are authenticated (only [`AuthMode::Acl`] passes validation in this release).
    pub auth: AuthMode,
    /// Source networks attributed to this trunk: `acl` and its `acl_aliases`' networks.
    pub acl: Vec<IpNet>,
    /// `verify_port`: its requests must come from one of its targets' address and port.
    pub verify_port: bool,
    /// Destinations, in failover order (stably sorted by `priority`). For a trunk with a
    /// `domain`, what the resolver last found (empty until then).
    pub targets: Vec<Target>,
    /// `domain`: the carrier's SIP domain, resolved into `targets` (RFC 3263).
    pub domain: Option<String>,
    /// `failover`: the trunks a call goes on to when this one cannot take it.
    pub failover: Vec<TrunkId>,
    /// `sip_address`: which of the edge's addresses requests to it carry.
    pub sip_address: crate::SipAddress,
    /// `tls`: how its TLS targets' certificates are checked.
    pub tls: Option<crate::TrunkTls>,
    /// `[trunk.registrar]`: what its registrations may ask (accept-register trunks).
    pub registrar: crate::RegistrarLimits,
    /// `[[trunk.registration]]`: where a register trunk registers; its `targets` are these
    /// registrars, in this order (priority = index).
    pub registrations: Vec<crate::Registration>,
    /// Allowed codecs, in preference order.
    pub codecs: Vec<Codec>,
    /// SRTP policy towards this trunk.
    pub srtp: SrtpPolicy,
    /// `srtp_with_tls`: SRTP is mandatory on its legs whose signaling is TLS.
    pub srtp_with_tls: bool,
    /// SRTP suites, in preference order.
    pub srtp_suites: Vec<SrtpSuite>,
    /// The trunk's `latch`, or `[media].latch` when it sets none.
    pub latch: Latch,
    /// The trunk's `leg_timeout_secs`, or `[media]`'s (itself `timeout_secs` when unset).
    pub leg_timeout_secs: u32,
    /// `transfer`: REFER accepted from this trunk's legs.
    pub transfer: bool,
    /// `g711_transcode`: an answer in the other G.711 law is bridged by the relay.
    pub g711_transcode: bool,
    /// `dtmf`: how the trunk carries DTMF.
    pub dtmf: crate::Dtmf,
    /// `transports`: what its requests may arrive on (empty = any).
    pub transports: Vec<Transport>,
    /// `sip_listen`: the listener its requests leave from (none: the first of the transport).
    pub sip_listen: Option<std::net::SocketAddr>,
    /// The address SDP carries for its legs (`media_ip`, or `[media]`'s).
    pub media_ip: std::net::IpAddr,
    /// `options`: OPTIONS health probing of the targets.
    pub options: crate::OptionsPing,
    /// `distribution`: which target a call tries first.
    pub distribution: crate::Distribution,
    /// `[trunk.limits]`.
    pub limits: Limits,
    /// `[trunk.numbers]`, resolved.
    pub numbers: NumbersView,
}

/// A trunk's `[trunk.numbers]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NumbersView {
    /// Country of national numbers from this trunk.
    pub country: Option<Country>,
    /// How numbers are written toward it.
    pub format: NumberFormat,
    /// In the trust domain (PAI believed and sent).
    pub trusted: bool,
    /// Blocked caller-ID prefixes, E.164 digits without `+`.
    pub cli_block: Vec<String>,
}

/// An account's `[account.destinations]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DestinationsView {
    /// Allowed countries (empty = all not denied).
    pub allow_countries: Vec<Country>,
    /// Denied countries.
    pub deny_countries: Vec<Country>,
    /// Allowed E.164 digit prefixes.
    pub allow_prefixes: Vec<String>,
    /// Denied E.164 digit prefixes.
    pub deny_prefixes: Vec<String>,
    /// Premium-rate numbers allowed.
    pub allow_premium: bool,
    /// Shared-cost numbers allowed.
    pub allow_shared_cost: bool,
    /// The caller ID must be one of the account's DIDs.
    pub owned_caller_id: bool,
}

/// A country, as the number library names it (ISO 3166 alpha-2).
pub type Country = phonenumber::country::Id;

/// An account, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    /// This account's id (its position in [`Snapshot::accounts`]).
    pub id: AccountId,
    /// The configured name.
    pub name: String,
    /// The DID pool, in config order; no two entries (of any accounts) overlap.
    pub dids: Vec<DidRange>,
    /// The trunks whose `account` names this account, in config order.
    pub trunks: Vec<TrunkId>,
    /// `[account.limits]`.
    pub limits: Limits,
    /// `[account.destinations]`, resolved.
    pub destinations: DestinationsView,
    /// `[account.fraud]`.
    pub fraud: Fraud,
}

/// A route, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    /// Prefix of the called number; empty = default route.
    pub prefix: String,
    /// Only calls arriving from this trunk; none = any.
    pub from_trunk: Option<TrunkId>,
    /// Destination trunk (it has targets).
    pub trunk: TrunkId,
    /// Failover trunks after `trunk`, in order.
    pub then: Vec<TrunkId>,
    /// Finals that move a call to the next entry.
    pub failover_codes: Vec<u16>,
    /// The last entry, a phone number the call is re-originated to.
    pub then_number: Option<String>,
    /// Only callers with this prefix.
    pub caller_prefix: Option<String>,
    /// Only inside this weekly window.
    pub time: Option<Window>,
}

/// A route's weekly window, resolved: days as bits (Monday = bit 0), minutes of the day, the
/// offset of its local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bit `d` set: day `d` (0 = Monday) is in.
    pub days: u8,
    /// Start minute (inclusive).
    pub from: u16,
    /// End minute (exclusive); below `from`: across midnight.
    pub to: u16,
    /// Minutes east of UTC.
    pub offset: i32,
}

impl Window {
    /// Whether the instant `unix_s` (seconds since 1970, UTC) falls inside.
    pub fn contains(&self, unix_s: u64) -> bool {
        let local = i64::try_from(unix_s).unwrap_or(i64::MAX) + i64::from(self.offset) * 60;
        let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let minute = u16::try_from(secs / 60).unwrap_or(0);
        // 1970-01-01 was a Thursday (day 3, Monday = 0).
        let day = u8::try_from((days + 3).rem_euclid(7)).unwrap_or(0);
        let on = |d: u8| self.days & (1 << d) != 0;
        if self.from <= self.to {
            on(day) && (self.from..self.to).contains(&minute)
        } else {
            (on(day) && minute >= self.from) || (on((day + 6) % 7) && minute < self.to)
        }
    }
}

/// What a route is chosen by: the trunk a call came from, the number it dialled, and, when
/// known, its caller and the time (routes with a caller prefix or a window need them to match).
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// The inbound trunk.
    pub from: TrunkId,
    /// The called number.
    pub user: &'a str,
    /// The caller (From user).
    pub caller: Option<&'a str>,
    /// Seconds since 1970 (UTC).
    pub at: Option<u64>,
}

impl RouteView {
    /// Whether this route applies to `q`.
    pub fn matches(&self, q: &RouteQuery<'_>) -> bool {
        self.from_trunk.is_none_or(|t| t == q.from)
            && q.user.starts_with(&self.prefix)
            && self.caller_prefix.as_deref().is_none_or(|p| q.caller.is_some_and(|c| c.starts_with(p)))
            && self.time.is_none_or(|w| q.at.is_some_and(|t| w.contains(t)))
    }

    /// How specific it is: called prefix, then caller prefix, then having a window.
    pub fn rank(&self) -> (usize, usize, bool) {
        (self.prefix.len(), self.caller_prefix.as_ref().map_or(0, String::len), self.time.is_some())
    }
}

/// A validated configuration with every name resolved; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `[node]`.
    pub node: Node,
    /// `[sip]`.
    pub sip: Sip,
    /// `[media]`.
    pub media: Media,
    /// `[datapath]`.
    pub datapath: Datapath,
    /// Every trunk; `trunks[i].id == TrunkId(i)`.
    pub trunks: Vec<TrunkView>,
    /// Every account; `accounts[i].id == AccountId(i)`.
    pub accounts: Vec<AccountView>,
    /// The routing table, in config order.
    pub routes: Vec<RouteView>,
    /// The configuration this was resolved from.
    pub raw: Config,
    /// Every DID entry with its owner, sorted by (digits, start), for [`Snapshot::did_owner`].
    dids: Vec<(DidRange, AccountId)>,
}

impl Config {
    /// Validates against `host` ([`Error::Invalid`] with every problem) and resolves the result
    /// into a [`Snapshot`].
    pub fn snapshot(&self, host: Host) -> Result<Snapshot, Error> {
        self.snapshot_of("<config>", host)
    }

    /// Resolves names only, for a configuration the caller has validated already (the binaries
    /// validate at load, with the key paths of every problem). A name that does not resolve is
    /// still an error, never a panic.
    pub fn resolve_names(&self) -> Result<Snapshot, Error> {
        Snapshot::resolve(self).map_err(|p| Error::Invalid { origin: "<config>".into(), problems: vec![p] })
    }

    fn snapshot_of(&self, origin: &str, host: Host) -> Result<Snapshot, Error> {
        let invalid = |problems| Error::Invalid { origin: origin.to_string(), problems };
        let problems = self.validate(host);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Snapshot::resolve(self).map_err(|p| invalid(vec![p]))
    }
}

impl Snapshot {
    /// Reads, parses, validates (against this host) and resolves a file.
    pub fn load(path: &Path) -> Result<Snapshot, Error> {
        let (cfg, origin) = Config::read(path)?;
        cfg.snapshot_of(&origin, Host::this())
    }

    /// The embedded default ([`DEFAULT_TOML`]), validated and resolved.
    pub fn embedded_default() -> Result<Snapshot, Error> {
        Config::parse(DEFAULT_TOML, EMBEDDED)?.snapshot_of(EMBEDDED, Host::this())
    }

    /// The trunk `id`.
    ///
    /// # Panics
    /// If `id` did not come from this snapshot (ids are only meaningful in the snapshot that
    /// issued them; one from a snapshot with more trunks may be out of range).
    pub fn trunk(&self, id: TrunkId) -> &TrunkView {
        &self.trunks[id.index()]
    }

    /// The trunk named `name`.
    pub fn trunk_by_name(&self, name: &str) -> Option<TrunkId> {
        self.trunks.iter().find(|t| t.name == name).map(|t| t.id)
    }

    /// The account `id`.
    ///
    /// # Panics
    /// If `id` did not come from this snapshot (see [`Snapshot::trunk`]).
    pub fn account(&self, id: AccountId) -> &AccountView {
        &self.accounts[id.index()]
    }

    /// The account named `name`.
    pub fn account_by_name(&self, name: &str) -> Option<AccountId> {
        self.accounts.iter().find(|a| a.name == name).map(|a| a.id)
    }

    /// The first trunk (in config order) whose ACL holds `ip`. Validation refuses ACLs of two
    /// trunks that overlap, so at most one trunk can match.
    pub fn trunk_by_acl(&self, ip: IpAddr) -> Option<TrunkId> {
        self.trunks.iter().find(|t| t.acl.iter().any(|n| n.contains(&ip))).map(|t| t.id)
    }

    /// The destination for a call from trunk `from` to Request-URI user `user`: the route with
    /// the longest prefix of `user` among those whose `from_trunk` is none or `from`. Among equally
    /// long prefixes the one listed last wins (signaling's rule before the snapshot, kept as is).
    pub fn route(&self, from: TrunkId, user: &str) -> Option<TrunkId> {
        self.route_for(from, user).map(|(_, r)| r.trunk)
    }

    /// The route (its index and view) [`Snapshot::route`] picks.
    pub fn route_for(&self, from: TrunkId, user: &str) -> Option<(usize, &RouteView)> {
        self.route_matching(&RouteQuery { from, user, caller: None, at: None })
    }

    /// The most specific route for `q` ([`RouteView::rank`]; among equals, the last listed).
    pub fn route_matching(&self, q: &RouteQuery<'_>) -> Option<(usize, &RouteView)> {
        self.routes.iter().enumerate().filter(|(_, r)| r.matches(q)).max_by_key(|(_, r)| r.rank())
    }

    /// The account whose DID pool holds `number`: digits only, exactly as pools are written
    /// (national-significant, no `+`; strip it first). `O(log n)` in the number of entries.
    pub fn did_owner(&self, number: &str) -> Option<AccountId> {
        if !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let probe = DidRange::parse(number).ok()?;
        let key = (probe.digits, probe.start);
        let i = self.dids.partition_point(|(r, _)| (r.digits, r.start) <= key);
        let (r, owner) = self.dids.get(i.checked_sub(1)?)?;
        (r.digits == probe.digits && r.end >= probe.start).then_some(*owner)
    }

    /// The registration of register trunk `t` whose registrar is `addr`.
    pub fn registration_at(&self, t: TrunkId, addr: std::net::SocketAddr) -> Option<(usize, &crate::Registration)> {
        self.trunk(t).registrations.iter().enumerate().find(|(_, r)| r.registrar == addr)
    }

    /// Resolves a validated configuration. The error is a problem validation should have
    /// reported (a bug), never a panic.
    fn resolve(cfg: &Config) -> Result<Snapshot, Problem> {
        let trunk_ids = ids(cfg.trunks.iter().map(|t| t.name.as_str()), "trunk", TrunkId)?;
        let account_ids = ids(cfg.accounts.iter().map(|a| a.name.as_str()), "account", AccountId)?;
        let trunk_named = |path: String, name: &str| lookup(&trunk_ids, path, name, "trunk");
        let mut trunks = Vec::with_capacity(cfg.trunks.len());
        for (i, t) in cfg.trunks.iter().enumerate() {
            let p = format!("trunk[{i}]");
            let account =
                t.account.as_deref().map(|a| lookup(&account_ids, format!("{p}.account"), a, "account")).transpose()?;
            trunks.push(TrunkView {
                id: trunk_ids[t.name.as_str()],
                name: t.name.clone(),
                account,
                role: t.role,
                kind: t.kind,
                auth: t.auth,
                acl: t
                    .acl
                    .iter()
                    .chain(t.acl_aliases.iter().flat_map(|a| cfg.acl_aliases.get(a).into_iter().flatten()))
                    .copied()
                    .collect(),
                verify_port: t.verify_port,
                targets: {
                    let mut v = t.targets.clone();
                    v.extend(registration_targets(&t.registrations));
                    v.sort_by_key(|x| x.priority);
                    v
                },
                domain: t.domain.clone(),
                sip_address: t.sip_address,
                tls: t.tls.clone(),
                registrar: t.registrar.clone(),
                registrations: t.registrations.clone(),
                failover: t
                    .failover
                    .iter()
                    .enumerate()
                    .map(|(j, f)| trunk_named(format!("{p}.failover[{j}]"), f))
                    .collect::<Result<_, _>>()?,
                codecs: typed(&t.codecs, &format!("{p}.codecs"), Codec::from_name)?,
                srtp: t.srtp,
                srtp_with_tls: t.srtp_with_tls,
                srtp_suites: typed(&t.srtp_suites, &format!("{p}.srtp_suites"), SrtpSuite::from_name)?,
                latch: t.latch.unwrap_or(cfg.media.latch),
                leg_timeout_secs: t.leg_timeout_secs.unwrap_or(cfg.media.leg_timeout()),
                transfer: t.transfer,
                transports: t.transports.clone(),
                g711_transcode: t.g711_transcode,
                dtmf: crate::Dtmf::from_name(&t.dtmf).unwrap_or_default(),
                sip_listen: t.sip_listen,
                media_ip: t.media_ip.unwrap_or(cfg.media.sdp_ip()),
                options: t.options,
                distribution: t.distribution,
                limits: t.limits.clone(),
                numbers: numbers_view(&p, &t.numbers)?,
            });
        }
        let mut accounts = Vec::with_capacity(cfg.accounts.len());
        let mut dids = Vec::new();
        for (i, a) in cfg.accounts.iter().enumerate() {
            let id = account_ids[a.name.as_str()];
            let pool = typed(&a.dids, &format!("account[{i}].dids"), |d| DidRange::parse(d).ok())?;
            dids.extend(pool.iter().map(|r| (*r, id)));
            let owned = trunks.iter().filter(|t| t.account == Some(id)).map(|t| t.id).collect();
            let destinations = destinations_view(&format!("account[{i}].destinations"), a, !pool.is_empty())?;
            accounts.push(AccountView {
                id,
                name: a.name.clone(),
                dids: pool,
                trunks: owned,
                limits: a.limits.clone(),
                destinations,
                fraud: a.fraud.clone(),
            });
        }
        dids.sort_by_key(|(r, _)| (r.digits, r.start));
        let mut routes = Vec::with_capacity(cfg.routes.len());
        for (i, r) in cfg.routes.iter().enumerate() {
            let p = format!("route[{i}]");
            let from_trunk = r.from_trunk.as_deref().map(|f| trunk_named(format!("{p}.from_trunk"), f)).transpose()?;
            routes.push(RouteView {
                caller_prefix: r.caller_prefix.clone(),
                time: r.time.as_ref().map(|w| window(&p, w)).transpose()?,
                prefix: r.prefix.clone(),
                from_trunk,
                trunk: trunk_named(format!("{p}.trunk"), &r.trunk)?,
                then: r
                    .then
                    .iter()
                    .enumerate()
                    .map(|(j, t)| trunk_named(format!("{p}.then[{j}]"), t))
                    .collect::<Result<_, _>>()?,
                failover_codes: r.failover_codes.clone(),
                then_number: r.then_number.clone(),
            });
        }
        Ok(Snapshot {
            node: cfg.node.clone(),
            sip: cfg.sip.clone(),
            media: cfg.media.clone(),
            datapath: cfg.datapath.clone(),
            trunks,
            accounts,
            routes,
            raw: cfg.clone(),
            dids,
        })
    }
}

/// A trunk's `numbers` at `p`, resolved.
fn numbers_view(p: &str, n: &crate::Numbers) -> Result<NumbersView, Problem> {
    Ok(NumbersView {
        country: n.country.as_deref().map(|c| country(&format!("{p}.numbers.country"), c)).transpose()?,
        format: n.format,
        trusted: n.trusted,
        cli_block: n.cli_block_prefixes.iter().map(|x| x.trim_start_matches('+').to_string()).collect(),
    })
}

/// An account's `destinations` at `p`, resolved; `has_dids`: the default of the ownership check.
fn destinations_view(p: &str, a: &crate::Account, has_dids: bool) -> Result<DestinationsView, Problem> {
    let d = &a.destinations;
    let countries = |k: &str, list: &[String]| -> Result<Vec<Country>, Problem> {
        list.iter().enumerate().map(|(j, c)| country(&format!("{p}.{k}[{j}]"), c)).collect()
    };
    Ok(DestinationsView {
        allow_countries: countries("allow_countries", &d.allow_countries)?,
        deny_countries: countries("deny_countries", &d.deny_countries)?,
        allow_prefixes: d.allow_prefixes.clone(),
        deny_prefixes: d.deny_prefixes.clone(),
        allow_premium: d.allow_premium,
        allow_shared_cost: d.allow_shared_cost,
        owned_caller_id: d.require_owned_caller_id.unwrap_or(has_dids),
    })
}

/// The country named `c` (validation checked it).
fn country(path: &str, c: &str) -> Result<Country, Problem> {
    use std::str::FromStr;
    Country::from_str(c).map_err(|_| Problem { path: path.to_string(), reason: format!("unknown country {c:?}") })
}

/// Name → id for names in config order (validation made them unique).
fn ids<'a, I>(
    names: impl Iterator<Item = &'a str>,
    what: &str,
    make: fn(u32) -> I,
) -> Result<HashMap<&'a str, I>, Problem> {
    names
        .enumerate()
        .map(|(i, n)| {
            let id = u32::try_from(i).map_err(|_| Problem {
                path: format!("{what}[{i}]"),
                reason: format!("more than {} {what}s", u32::MAX),
            })?;
            Ok((n, make(id)))
        })
        .collect()
}

fn lookup<I: Copy>(ids: &HashMap<&str, I>, path: String, name: &str, what: &str) -> Result<I, Problem> {
    ids.get(name).copied().ok_or_else(|| Problem { path, reason: format!("no {what} named {name:?}") })
}

/// Route `p`'s `time`, resolved; the problem names the key (validation reports it too).
pub(crate) fn window(p: &str, w: &crate::TimeWindow) -> Result<Window, Problem> {
    let bad = |key: &str, reason: String| Problem { path: format!("{p}.time.{key}"), reason };
    let mut days = 0u8;
    for (j, d) in w.days.iter().enumerate() {
        let i = crate::DAYS.iter().position(|x| x.eq_ignore_ascii_case(d));
        let i = i.ok_or_else(|| bad(&format!("days[{j}]"), format!("must be one of mon..sun, got {d:?}")))?;
        days |= 1 << i;
    }
    if w.days.is_empty() {
        days = 0x7f;
    }
    let hhmm = |key: &str, v: &str| {
        crate::parse_hhmm(v).ok_or_else(|| bad(key, format!("must be HH:MM (00:00..23:59), got {v:?}")))
    };
    let (from, to) = (hhmm("from", &w.from)?, hhmm("to", &w.to)?);
    if from == to {
        return Err(bad("to", format!("must differ from `from` ({}): the window would be empty", w.from)));
    }
    if !(-840..=840).contains(&w.utc_offset_minutes) {
        return Err(bad("utc_offset_minutes", format!("must be -840..=840, got {}", w.utc_offset_minutes)));
    }
    Ok(Window { days, from, to, offset: w.utc_offset_minutes })
}

/// Each name of `list` parsed by `parse`; `path` names the list for a name that does not parse.
fn typed<T>(list: &[String], path: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, Problem> {
    list.iter()
        .enumerate()
        .map(|(j, s)| {
            parse(s).ok_or_else(|| Problem { path: format!("{path}[{j}]"), reason: format!("unknown {s:?}") })
        })
        .collect()
}

#[cfg(test)]
mod tests;
