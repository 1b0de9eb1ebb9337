//! xtrunk configuration: one schema for the whole system, read from TOML.
//!
//! Parsing (`serde` + `toml`, unknown keys rejected) is followed by [`Config::validate`], which
//! reports *every* problem at once, each naming the key path and the reason, e.g.
//! `datapath.af_xdp.ring_size: must be a power of two, got 1000`.
//!
//! The file is an API boundary (see `ARCHITECTURE.md`): keys are only ever added, with defaults.
//!
//! Code map: one module per top-level table ([`Node`], [`Sip`], [`Media`], [`Datapath`],
//! [`Trunk`], [`Route`], [`Account`]); `validate` holds the rules; `snapshot` resolves a valid
//! config into the typed [`Snapshot`] the signaling core runs on; everything is re-exported here, so every
//! type is reached as `xtrunk_config::X`.

#![forbid(unsafe_code)]

mod account;
mod admission;
mod auth;
mod datapath;
mod health;
mod media;
mod node;
mod ops;
mod overload;
mod registration;
mod route;
mod shared;
mod sip;
mod snapshot;
mod trunk;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use account::{Account, DidRange};
pub use admission::{Destinations, Fraud, Limits, NumberFormat, Numbers, Threshold};
pub use auth::{DigestAlgorithm, SipAuth, TrunkUser, UnknownSource};
pub use datapath::{AfXdp, Backend, Datapath, Interface, Queue, RingSizes, XdpMode};
pub use health::{OptionsPing, MIN_CARRIER_INTERVAL_SECS};
pub use media::{Latch, Media, MAX_LEG_TIMEOUT_SECS, MEDIA_PORT_FLOOR, MIN_LEG_TIMEOUT_SECS};
pub use node::{LogFormat, LogLevel, Node};
pub use ops::{CdrStore, Control, StoreKind};
pub use overload::Overload;
pub use registration::{Registration, MAX_REGISTRATIONS};
pub use route::{default_failover_codes, parse_hhmm, Route, TimeWindow, DAYS, MAX_ROUTE_ENTRIES};
pub use shared::{Shared, SharedKind};
pub use sip::{Dns, Listen, Sip, SipLimits, SipTimers, TlsFiles, Transport};
pub use snapshot::{
    AccountId, AccountView, Country, DestinationsView, NumbersView, RouteQuery, RouteView, Snapshot, TrunkId,
    TrunkView, Window,
};
pub use trunk::{
    AuthMode, Codec, Distribution, Dtmf, RegistrarLimits, SipAddress, SrtpPolicy, SrtpSuite, Target, Trunk, TrunkKind,
    TrunkRole, TrunkTls, CODECS, DTMF_MODES, SRTP_SUITES,
};
pub use validate::{Host, Problem};

/// The embedded default configuration (`config/xtrunk.toml`): loopback, socket backend, no root.
pub const DEFAULT_TOML: &str = include_str!("../xtrunk.toml");

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This host.
    #[serde(default)]
    pub node: Node,
    /// SIP listeners and protocol timers.
    #[serde(default)]
    pub sip: Sip,
    /// Media addresses, port range and policy.
    #[serde(default)]
    pub media: Media,
    /// The packet path: backend, cores, queues, rings.
    #[serde(default)]
    pub datapath: Datapath,
    /// Trunks: the PBXs (customers) and carriers this edge talks to. TOML: `[[trunk]]`.
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<Trunk>,
    /// Static routing table: called number → destination trunk. TOML: `[[route]]`.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Tenants and the DID pools they own; trunks name them in `trunk.account`. TOML: `[[account]]`.
    #[serde(default, rename = "account", skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Account>,
    /// Named address sets trunks take into their ACL by name (`trunk.acl_aliases`): one alias
    /// for all of a carrier's signalling ranges, kept in one place. TOML: `[acl_aliases]`,
    /// `plivo = ["15.207.90.192/28", "204.89.151.128/27"]`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acl_aliases: std::collections::BTreeMap<String, Vec<ipnet::IpNet>>,
    /// The CDR store (SQLite or PostgreSQL fed from the CDR file); off by default.
    #[serde(default)]
    pub cdr: CdrStore,
    /// The control thread (`/metrics`, admin API); off by default.
    #[serde(default)]
    pub control: Control,
    /// `[shared]`: the store several edges share admission counters through; off by default.
    #[serde(default, skip_serializing_if = "Shared::is_default")]
    pub shared: Shared,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or does not fit the schema (unknown key, wrong type).
    #[error("{origin}: {message}")]
    Parse {
        /// The file name (or `<embedded default>`).
        origin: String,
        /// toml's message, which names the key and the line.
        message: String,
    },
    /// The TOML parsed but violates the rules; every problem is listed.
    #[error("{origin}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file name.
        origin: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl Config {
    /// Parses TOML text; `origin` names it in errors. Does not validate.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        toml::from_str(text)
            .map_err(|e| Error::Parse { origin: origin.to_string(), message: e.to_string().trim_end().to_string() })
    }

    /// The configuration as TOML (what the admin API writes back: the schema's form, without
    /// the comments of a hand-written file). [`Config::parse`] reads it back equal.
    pub fn to_toml(&self) -> Result<String, Error> {
        toml::to_string(self).map_err(|e| Error::Parse { origin: "<serialize>".into(), message: e.to_string() })
    }

    /// Reads and parses a file without validating it (the admin API edits the file as it is).
    pub fn read_unchecked(path: &Path) -> Result<Self, Error> {
        Self::read(path).map(|(c, _)| c)
    }

    /// Reads, parses and validates a file against this host.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let (cfg, origin) = Self::read(path)?;
        cfg.checked(&origin, Host::this())
    }

    /// The embedded default, parsed and validated (it is tested to be valid).
    pub fn embedded_default() -> Result<Self, Error> {
        Self::parse(DEFAULT_TOML, EMBEDDED)?.checked(EMBEDDED, Host::this())
    }

    /// Reads and parses a file (no validation); returns it with its name for errors.
    fn read(path: &Path) -> Result<(Self, String), Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        Ok((Self::parse(&text, &origin)?, origin))
    }

    /// `self` if it validates against `host`, else every problem, attributed to `origin`.
    fn checked(self, origin: &str, host: Host) -> Result<Self, Error> {
        let problems = self.validate(host);
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(Error::Invalid { origin: origin.to_string(), problems })
        }
    }
}

/// The origin named in errors about [`DEFAULT_TOML`].
const EMBEDDED: &str = "<embedded default>";
