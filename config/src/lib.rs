//! xtrunk configuration: one schema for the whole system, read from TOML.
//!
//! Parsing (`serde` + `toml`, unknown keys rejected) is followed by [`Config::validate`], which
//! reports *every* problem at once, each naming the key path and the reason, e.g.
//! `datapath.af_xdp.ring_size: must be a power of two, got 1000`.
//!
//! The file is an API boundary (see `ARCHITECTURE.md`): keys are only ever added, with defaults.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The embedded default configuration (`config/xtrunk.toml`): loopback, socket backend, no root.
pub const DEFAULT_TOML: &str = include_str!("../xtrunk.toml");

/// Lowest port the media range may use.
pub const MEDIA_PORT_FLOOR: u16 = 1024;

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
}

/// `[node]`: this host.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Node {
    /// Name used in logs, CDRs and the SIP `Server`/`User-Agent` header.
    pub name: String,
    /// The shared-memory file joining signaling and datapath.
    pub shm_path: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    pub log_level: LogLevel,
    /// Where CDRs are appended as JSON lines; none = not written.
    pub cdr_path: Option<PathBuf>,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            name: "xtrunk".into(),
            shm_path: PathBuf::from("/dev/shm/xtrunk"),
            log_level: LogLevel::Info,
            cdr_path: None,
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name `log`/`env_logger` understand.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// `[sip]`: listeners and timers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sip {
    /// Addresses and transports to listen on. TOML: `[[sip.listen]]`.
    pub listen: Vec<Listen>,
    /// Host written into Via/Contact/Record-Route; default: the listener's address.
    pub advertised_host: Option<String>,
    /// RFC 3261 timers.
    pub timers: SipTimers,
    /// Largest SIP message accepted, in bytes; larger ones are answered 513 or dropped.
    pub max_message_bytes: usize,
    /// Seconds an outbound INVITE may ring before the B2BUA gives up (408 to the caller).
    pub no_answer_timeout_secs: u32,
}

impl Default for Sip {
    fn default() -> Self {
        Self {
            listen: vec![Listen {
                transport: Transport::Udp,
                addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
                tls: None,
            }],
            advertised_host: None,
            timers: SipTimers::default(),
            max_message_bytes: 65_535,
            no_answer_timeout_secs: 60,
        }
    }
}

/// One SIP listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// udp, tcp or tls.
    pub transport: Transport,
    /// Address and port to bind.
    pub addr: SocketAddr,
    /// Certificate and key for `transport = "tls"`.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// Certificate chain and private key, PEM.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        })
    }
}

/// RFC 3261 §17 timer bases, in milliseconds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipTimers {
    /// RTT estimate (default 500).
    pub t1_ms: u32,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (default 4000).
    pub t2_ms: u32,
    /// Maximum time a message remains in the network (default 5000).
    pub t4_ms: u32,
}

impl Default for SipTimers {
    fn default() -> Self {
        Self { t1_ms: 500, t2_ms: 4000, t4_ms: 5000 }
    }
}

/// `[media]`: where media flows and how.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// First port of the media range (even; RTP on even ports, RTCP on the odd port above).
    pub port_min: u16,
    /// Last port of the media range.
    pub port_max: u16,
    /// Address the relay's media ports bind to (socket backend) or own (AF_XDP).
    pub bind_ip: IpAddr,
    /// Address written into SDP `c=` lines; default `bind_ip`.
    pub advertised_ip: Option<IpAddr>,
    /// Seconds without media on a call before signaling ends it; 0 = never.
    pub timeout_secs: u32,
    /// Symmetric-RTP latching: once, follow or strict.
    pub latch: Latch,
}

impl Default for Media {
    fn default() -> Self {
        Self {
            port_min: 10_000,
            port_max: 30_000,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            advertised_ip: None,
            timeout_secs: 60,
            latch: Latch::Once,
        }
    }
}

impl Media {
    /// The address SDP advertises.
    pub fn sdp_ip(&self) -> IpAddr {
        self.advertised_ip.unwrap_or(self.bind_ip)
    }
}

/// Latching policy (see `xtrunk_ring::msg::LatchPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Latch {
    /// Latch to the first source seen, then keep it.
    Once,
    /// Always answer the latest source.
    Follow,
    /// Only accept the SDP address.
    Strict,
}

/// `[datapath]`: the packet path.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Datapath {
    /// socket (portable), af_xdp (kernel bypass, root) or auto (af_xdp when possible).
    pub backend: Backend,
    /// Cores the socket backend's worker threads are pinned to, one thread each; empty = one
    /// unpinned thread.
    pub socket_cores: Vec<usize>,
    /// Most concurrent sessions the datapath holds.
    pub max_sessions: usize,
    /// Shared-memory ring capacities.
    pub ring: RingSizes,
    /// AF_XDP settings (used when the backend is af_xdp or auto).
    pub af_xdp: AfXdp,
}

impl Default for Datapath {
    fn default() -> Self {
        Self {
            backend: Backend::Socket,
            socket_cores: Vec::new(),
            max_sessions: 5_000,
            ring: RingSizes::default(),
            af_xdp: AfXdp::default(),
        }
    }
}

/// Datapath backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// UDP sockets with recvmmsg/sendmmsg: runs anywhere, no root.
    Socket,
    /// AF_XDP sockets fed by the XDP program; needs root and an XDP-capable driver.
    AfXdp,
    /// AF_XDP when it can attach, else sockets (the reason is logged).
    Auto,
}

/// `[datapath.ring]`: capacities in messages; each a power of two.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingSizes {
    /// signaling → datapath commands.
    pub commands: u32,
    /// datapath → signaling events.
    pub events: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        Self { commands: 4096, events: 4096 }
    }
}

/// `[datapath.af_xdp]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfXdp {
    /// Interfaces and the queues served on each. TOML: `[[datapath.af_xdp.interfaces]]`.
    pub interfaces: Vec<Interface>,
    /// copy, zerocopy, or auto (zero-copy, falling back to copy where the driver refuses).
    pub mode: XdpMode,
    /// UMEM frame size in bytes: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames per socket; a power of two.
    pub frame_count: u32,
    /// Descriptors in each of the fill/completion/RX/TX rings; a power of two.
    pub ring_size: u32,
    /// Forward sessions that need no payload work inside the XDP program.
    pub fast_path: bool,
}

impl Default for AfXdp {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            mode: XdpMode::Auto,
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            fast_path: true,
        }
    }
}

/// AF_XDP bind mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum XdpMode {
    Copy,
    Zerocopy,
    Auto,
}

/// One NIC served by AF_XDP.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Kernel interface name, e.g. `ens1f0`.
    pub name: String,
    /// Queues served, each by one thread pinned to `core`. TOML: `[[datapath.af_xdp.interfaces.queues]]`
    /// or inline `queues = [{ id = 0, core = 2 }]`.
    pub queues: Vec<Queue>,
}

/// One NIC RX/TX queue and the core that serves it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Queue index on the NIC.
    pub id: u32,
    /// CPU core the serving thread is pinned to (and the queue's IRQ should be, see
    /// `scripts/tune-nic`).
    pub core: usize,
}

/// A trunk: a PBX (customer) or a carrier this edge exchanges calls with.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Unique name, referenced by routes.
    pub name: String,
    /// customer (a PBX we serve) or carrier (upstream PSTN).
    pub role: TrunkRole,
    /// Source networks whose requests are attributed to this trunk (IP-ACL). An INVITE from an
    /// address no trunk lists is answered 403.
    #[serde(default)]
    pub acl: Vec<IpNet>,
    /// Where calls routed to this trunk are sent, tried in order (failover).
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Allowed codecs in preference order: PCMA, PCMU, G722, G729, opus, telephone-event.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// SRTP towards this trunk: off, optional or mandatory.
    #[serde(default)]
    pub srtp: SrtpPolicy,
    /// SRTP suites offered/accepted, in preference order (RFC 4568 names).
    #[serde(default = "default_srtp_suites")]
    pub srtp_suites: Vec<String>,
    /// Media latching for this trunk's leg; default `[media].latch`.
    #[serde(default)]
    pub latch: Option<Latch>,
}

fn default_codecs() -> Vec<String> {
    vec!["PCMA".into(), "PCMU".into(), "telephone-event".into()]
}

fn default_srtp_suites() -> Vec<String> {
    SRTP_SUITES.iter().map(|s| (*s).to_string()).collect()
}

/// Codec names a trunk may list.
pub const CODECS: &[&str] = &["PCMA", "PCMU", "G722", "G729", "opus", "telephone-event", "CN"];

/// SRTP suite names a trunk may list.
pub const SRTP_SUITES: &[&str] = &[
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
];

/// Which side of the edge a trunk is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrunkRole {
    /// A PBX/customer we terminate calls for (usually leg 0 of a session).
    Customer,
    /// An upstream carrier (usually leg 1).
    Carrier,
}

/// SRTP policy of a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP; offers with only RTP/SAVP are refused (488).
    #[default]
    Off,
    /// SRTP when the peer offers it, plain RTP otherwise.
    Optional,
    /// SRTP only; an offer without acceptable crypto is answered 488.
    Mandatory,
}

/// A SIP destination: `transport` + `addr`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Address and port.
    pub addr: SocketAddr,
    /// Transport; default udp.
    #[serde(default = "default_transport")]
    pub transport: Transport,
}

fn default_transport() -> Transport {
    Transport::Udp
}

/// A static route: calls whose Request-URI user matches go to `trunk`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Digits prefix of the called number (`+` and digits; empty = default route). The longest
    /// matching prefix wins.
    #[serde(default)]
    pub prefix: String,
    /// Only calls arriving from this trunk (by name); none = any.
    #[serde(default)]
    pub from_trunk: Option<String>,
    /// Destination trunk name.
    pub trunk: String,
}

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

/// Facts about the host that validation checks against.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Number of CPU cores (cores are numbered 0..cores).
    pub cores: usize,
}

impl Host {
    /// This machine.
    pub fn this() -> Self {
        Self { cores: core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1) }
    }
}

impl Config {
    /// Parses TOML text; `origin` names it in errors. Does not validate.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads, parses and validates a file against this host.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        let cfg = Self::parse(&text, &origin)?;
        let problems = cfg.validate(Host::this());
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(Error::Invalid { origin, problems })
        }
    }

    /// The embedded default, parsed and validated (it is tested to be valid).
    pub fn embedded_default() -> Result<Self, Error> {
        let cfg = Self::parse(DEFAULT_TOML, "<embedded default>")?;
        let problems = cfg.validate(Host::this());
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(Error::Invalid { origin: "<embedded default>".into(), problems })
        }
    }

    /// Checks every rule; returns all problems (empty = valid).
    pub fn validate(&self, host: Host) -> Vec<Problem> {
        let mut v = Validator::default();
        self.validate_node(&mut v);
        self.validate_sip(&mut v);
        self.validate_media(&mut v);
        self.validate_datapath(&mut v, host);
        self.validate_trunks(&mut v);
        self.validate_routes(&mut v);
        v.problems
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
            v.add(
                "sip.max_message_bytes",
                format!("must be between 1500 and 1048576, got {}", sip.max_message_bytes),
            );
        }
        if sip.no_answer_timeout_secs == 0 {
            v.add("sip.no_answer_timeout_secs", "must be at least 1");
        }
    }

    fn validate_media(&self, v: &mut Validator) {
        let m = &self.media;
        if m.port_min < MEDIA_PORT_FLOOR {
            v.add(
                "media.port_min",
                format!("must be within {MEDIA_PORT_FLOOR}-65535, got {}", m.port_min),
            );
        }
        if m.port_min % 2 != 0 {
            v.add("media.port_min", format!("must be even (RTP uses even ports), got {}", m.port_min));
        }
        if m.port_max < MEDIA_PORT_FLOOR {
            v.add(
                "media.port_max",
                format!("must be within {MEDIA_PORT_FLOOR}-65535, got {}", m.port_max),
            );
        }
        if m.port_max <= m.port_min {
            v.add(
                "media.port_max",
                format!(
                    "range is inverted or empty: port_max {} must be above port_min {}",
                    m.port_max, m.port_min
                ),
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
        let mut names = HashSet::new();
        let mut queue_cores = HashSet::new();
        for (i, itf) in x.interfaces.iter().enumerate() {
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
            let mut ids = HashSet::new();
            for (j, q) in itf.queues.iter().enumerate() {
                let qp = format!("{p}.queues[{j}]");
                if !ids.insert(q.id) {
                    v.add(format!("{qp}.id"), format!("queue {} is listed twice", q.id));
                }
                check_core(v, &format!("{qp}.core"), q.core, host);
                if !queue_cores.insert(q.core) {
                    v.add(
                        format!("{qp}.core"),
                        format!("core {} already serves another queue (one thread per core)", q.core),
                    );
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
            if t.acl.is_empty() && t.targets.is_empty() {
                v.add(
                    format!("{p}.acl"),
                    "a trunk needs an acl (to accept calls from it) or targets (to send calls to it)",
                );
            }
            for (j, tg) in t.targets.iter().enumerate() {
                if tg.addr.port() == 0 || tg.addr.ip().is_unspecified() {
                    v.add(format!("{p}.targets[{j}].addr"), format!("must be a reachable address, got {}", tg.addr));
                }
            }
            if t.codecs.is_empty() {
                v.add(format!("{p}.codecs"), "must list at least one codec");
            }
            let mut seen = HashSet::new();
            for (j, c) in t.codecs.iter().enumerate() {
                if !CODECS.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                    v.add(format!("{p}.codecs[{j}]"), format!("unknown codec {c:?}; known: {}", CODECS.join(", ")));
                }
                if !seen.insert(c.to_ascii_lowercase()) {
                    v.add(format!("{p}.codecs[{j}]"), format!("codec {c:?} is listed twice"));
                }
            }
            if !t.codecs.is_empty() && t.codecs.iter().all(|c| c.eq_ignore_ascii_case("telephone-event") || c.eq_ignore_ascii_case("CN")) {
                v.add(format!("{p}.codecs"), "must list at least one audio codec besides telephone-event/CN");
            }
            for (j, s) in t.srtp_suites.iter().enumerate() {
                if !SRTP_SUITES.contains(&s.as_str()) {
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
    }

    fn validate_routes(&self, v: &mut Validator) {
        let names: HashSet<&str> = self.trunks.iter().map(|t| t.name.as_str()).collect();
        let mut seen = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let p = format!("route[{i}]");
            let body = r.prefix.strip_prefix('+').unwrap_or(&r.prefix);
            if !body.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
                v.add(format!("{p}.prefix"), format!("must be '+' and digits, got {:?}", r.prefix));
            }
            match self.trunks.iter().find(|t| t.name == r.trunk) {
                None => v.add(format!("{p}.trunk"), format!("no trunk named {:?}", r.trunk)),
                Some(t) if t.targets.is_empty() => v.add(
                    format!("{p}.trunk"),
                    format!("trunk {:?} has no targets to send calls to", r.trunk),
                ),
                Some(_) => {}
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

fn check_core(v: &mut Validator, path: &str, core: usize, host: Host) {
    if core >= host.cores {
        v.add(path, format!("core {core} does not exist (this host has cores 0-{})", host.cores - 1));
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
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), reason: reason.into() });
    }
}
