//! `[[trunk]]`: the PBXs and carriers this edge talks to.

use std::fmt;
use std::net::SocketAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{Latch, Transport};

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
    /// `[acl_aliases]` (by name) whose networks are part of this trunk's ACL too (WeHostVoIP's
    /// one alias for a carrier's ranges; PortSIP's "associated IPs" are the same thing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl_aliases: Vec<String>,
    /// PortSIP's "verify port": a request is this trunk's only when it comes from one of its
    /// targets' (or registrars') exact address and port, not merely from an address in its ACL
    /// (default false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify_port: bool,
    /// Where calls routed to this trunk are sent, tried in order (failover).
    #[serde(default)]
    pub targets: Vec<Target>,
    /// The carrier's SIP domain, resolved per RFC 3263 into the trunk's targets instead of
    /// listing `targets`: NAPTR (`SIP+D2U`/`SIP+D2T`) → SRV → A/AAAA, each cached for its TTL
    /// (within `[sip.dns]`'s bounds) and resolved again off the SIP loop. `host:port` skips
    /// NAPTR and SRV (A/AAAA at that port, UDP). Requests to the trunk carry the domain in the
    /// Request-URI and To.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Allowed codecs in preference order: PCMA, PCMU, G722, G729, opus, telephone-event.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
    /// SRTP towards this trunk: off, optional or mandatory.
    #[serde(default)]
    pub srtp: SrtpPolicy,
    /// SRTP whenever this trunk's signaling is TLS (`srtp = "mandatory"` for those legs, `srtp`
    /// as set for the others): an RTP-only offer arriving over TLS is refused 488, and offers
    /// toward a trunk with a TLS target carry SRTP. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub srtp_with_tls: bool,
    /// SRTP suites offered/accepted, in preference order (RFC 4568 names).
    #[serde(default = "default_srtp_suites")]
    pub srtp_suites: Vec<String>,
    /// Media latching for this trunk's leg; default `[media].latch`.
    #[serde(default)]
    pub latch: Option<Latch>,
    /// One-way media timeout of this trunk's leg in seconds (0 = never); default
    /// `[media].leg_timeout_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_timeout_secs: Option<u32>,
    /// Accept REFER (call transfer) from this trunk's legs; off by default, since a transfer
    /// makes the edge place a new call. The new leg is routed as a call from this trunk would be.
    #[serde(default)]
    pub transfer: bool,
    /// The SIP interface: the `[[sip.listen]]` address (of the targets' transport) requests to
    /// this trunk leave from, so Via and Contact carry the address of the network the trunk is
    /// on; default the first listener of that transport. A multi-homed edge sets it per trunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_listen: Option<std::net::SocketAddr>,
    /// The media interface: the address written into SDP for this trunk's legs (the relay's
    /// address on the trunk's network, or the NAT/1:1 address in front of it); default
    /// `[media].advertised_ip`, else `[media].bind_ip`. With several, `bind_ip = "0.0.0.0"` lets
    /// the relay take media on each (the kernel sends each leg's packets out of its interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_ip: Option<std::net::IpAddr>,
    /// Accept an answer from this trunk in the other G.711 law than the one offered (PCMU to a
    /// PCMA offer, or the reverse) and have the relay convert A↔µ (default true).
    #[serde(default = "yes")]
    pub g711_transcode: bool,
    /// How this trunk carries DTMF: `rfc4733` (telephone-event, the default), `inband` (tones in
    /// the audio: telephone-event is never offered or answered toward it, and the relay turns
    /// the other leg's events into tones and its tones into events) or `both` (telephone-event,
    /// and tones in the audio passed as they are).
    #[serde(default = "default_dtmf", skip_serializing_if = "is_default_dtmf")]
    pub dtmf: String,
    /// Transports this trunk's requests may arrive on; empty (the default) = any. `["tcp"]`
    /// refuses UDP from the trunk's addresses: a forged UDP source cannot place a call as it
    /// (see `scripts/tune-nic` for reverse-path filtering).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<Transport>,
    /// How calls spread over `targets`: priority (default), round-robin or weight.
    #[serde(default, skip_serializing_if = "Distribution::is_default")]
    pub distribution: Distribution,
    /// OPTIONS health probing of the targets (off by default); see [`crate::OptionsPing`].
    #[serde(default, skip_serializing_if = "crate::OptionsPing::is_off")]
    pub options: crate::OptionsPing,
    /// The `[[account]]` (by name) this trunk belongs to; none = no account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// How the trunk's peer is reached: `ip` (static addresses), `register` (we register to
    /// its `[[trunk.registration]]` registrars) or `accept-register` (its PBX registers to us).
    #[serde(default, skip_serializing_if = "TrunkKind::is_default")]
    pub kind: TrunkKind,
    /// How requests from the trunk are authenticated: `acl` (the only mode served by this
    /// release), `digest` or `both`.
    #[serde(default, skip_serializing_if = "AuthMode::is_default")]
    pub auth: AuthMode,
    /// `[trunk.registrar]`: the bindings a `kind = "accept-register"` trunk's PBX may hold.
    #[serde(default, skip_serializing_if = "RegistrarLimits::is_default")]
    pub registrar: RegistrarLimits,
    /// TLS toward this trunk's `transport = "tls"` targets: `{ ca = "carrier-ca.pem",
    /// server_name = "sip.carrier.example" }`. The carrier's certificate must chain to `ca`
    /// (default: the host's `/etc/ssl/certs/ca-certificates.crt`) and name `server_name`
    /// (default: the trunk's `domain`, else the target's IP address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TrunkTls>,
    /// Which address of the edge Via, Contact and From carry toward this trunk (PortSIP's
    /// header options): `public` (default: the listener's `advertised` address, else
    /// `sip.advertised_host`, else its own), `private` (the listener's own address: a carrier
    /// on a private link or VPN), or `auto` (private toward a private, shared, loopback or
    /// link-local peer address, else public). As a B2BUA the edge always sends a single Via,
    /// its own, and rewrites From per `[trunk.numbers]`.
    #[serde(default, skip_serializing_if = "SipAddress::is_default")]
    pub sip_address: SipAddress,
    /// The failover dialplan (Kwebbl): trunks (by name) a call to this one goes on to when it
    /// cannot take it (every target unreachable, offline or answering a failover code, or its
    /// channels full), after the entry and before the route's next one. For a PBX trunk: where
    /// its inbound calls go while the PBX is down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<String>,
    /// `[[trunk.registration]]`: where a `kind = "register"` trunk registers (one or two:
    /// primary and secondary), and so where its calls go.
    #[serde(default, rename = "registration", skip_serializing_if = "Vec::is_empty")]
    pub registrations: Vec<crate::Registration>,
    /// `[[trunk.users]]`: digest credentials, with `auth = "digest"` or `"both"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<crate::TrunkUser>,
    /// `[trunk.limits]`: channels, CPS (fail fast) and rolling caps of this trunk.
    #[serde(default)]
    pub limits: crate::Limits,
    /// `[trunk.numbers]`: number formats, trust (PAI) and CLI prefix blocks.
    #[serde(default)]
    pub numbers: crate::Numbers,
}

/// `[trunk.registrar]` (RFC 3261 §10.3): the expiry range a REGISTER may ask (below the minimum:
/// `423` with `Min-Expires`; above the maximum: granted the maximum) and the contacts it may bind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarLimits {
    /// Shortest expiry granted (default 60).
    pub min_expires_secs: u32,
    /// Longest (default 3600).
    pub max_expires_secs: u32,
    /// When the REGISTER names none (default 3600).
    pub default_expires_secs: u32,
    /// Contacts bound at once (default 5).
    pub max_contacts: usize,
}

impl Default for RegistrarLimits {
    fn default() -> Self {
        Self { min_expires_secs: 60, max_expires_secs: 3600, default_expires_secs: 3600, max_contacts: 5 }
    }
}

impl RegistrarLimits {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A trunk's `tls`: how its server certificate is checked, the client certificate we show it,
/// and the name its own client certificate must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkTls {
    /// PEM file of the CA certificates its certificate must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<std::path::PathBuf>,
    /// The name its certificate must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM certificate chain the edge presents when it connects to this trunk's TLS targets
    /// (mutual TLS); needs `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<std::path::PathBuf>,
    /// Inbound mutual TLS: a TLS connection from this trunk's addresses must present a client
    /// certificate (chaining to its listener's `tls.client_ca`) naming `peer_name` (DNS
    /// subjectAltName, or IP address); else it is closed, logged and counted. It binds TLS
    /// connections only: with `transports = ["tls"]` the trunk takes nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
}

/// `sip_address`: the edge's address toward a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SipAddress {
    /// The advertised (public) address.
    #[default]
    Public,
    /// The listener's own address.
    Private,
    /// Private toward a non-global peer address, else public.
    Auto,
}

impl SipAddress {
    fn is_default(&self) -> bool {
        *self == Self::Public
    }
}

/// How a trunk's peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrunkKind {
    /// Static addresses: `acl` for calls in, `targets` for calls out.
    #[default]
    Ip,
    /// We register to the peer (upstream registration).
    Register,
    /// The peer (a PBX) registers to us; calls out go to its registered contact.
    AcceptRegister,
}

impl TrunkKind {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Register => "register",
            Self::AcceptRegister => "accept-register",
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for TrunkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How requests from a trunk are authenticated. Only [`AuthMode::Acl`] is served by this
/// release; validation refuses the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// The source address must lie in the trunk's `acl`.
    #[default]
    Acl,
    /// SIP digest authentication (RFC 3261 §22).
    Digest,
    /// Both: source address in the `acl` and digest credentials.
    Both,
}

impl AuthMode {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acl => "acl",
            Self::Digest => "digest",
            Self::Both => "both",
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_dtmf() -> String {
    Dtmf::Rfc4733.name().into()
}

fn is_default_dtmf(s: &String) -> bool {
    s == Dtmf::Rfc4733.name()
}

/// `dtmf` names a trunk may give.
pub const DTMF_MODES: &[&str] = &["rfc4733", "inband", "both"];

/// How a trunk carries DTMF; the typed form of a [`DTMF_MODES`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Dtmf {
    /// RFC 4733 telephone-event.
    #[default]
    Rfc4733,
    /// Tones in the audio only.
    Inband,
    /// Telephone-event, and tones in the audio passed unchanged.
    Both,
}

impl Dtmf {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rfc4733 => "rfc4733",
            Self::Inband => "inband",
            Self::Both => "both",
        }
    }

    /// The mode named `s` (ASCII case ignored).
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Rfc4733, Self::Inband, Self::Both].into_iter().find(|d| d.name().eq_ignore_ascii_case(s))
    }
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
pub const SRTP_SUITES: &[&str] =
    &["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"];

/// A codec a trunk may list; the typed form of a [`CODECS`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Codec {
    Pcma,
    Pcmu,
    G722,
    G729,
    Opus,
    TelephoneEvent,
    Cn,
}

impl Codec {
    /// Every codec, in the order of [`CODECS`].
    pub const ALL: [Codec; 7] =
        [Self::Pcma, Self::Pcmu, Self::G722, Self::G729, Self::Opus, Self::TelephoneEvent, Self::Cn];

    /// The SDP `a=rtpmap` encoding name, as listed in [`CODECS`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcma => "PCMA",
            Self::Pcmu => "PCMU",
            Self::G722 => "G722",
            Self::G729 => "G729",
            Self::Opus => "opus",
            Self::TelephoneEvent => "telephone-event",
            Self::Cn => "CN",
        }
    }

    /// The codec named `s`, ignoring ASCII case (SDP encoding names are case-insensitive).
    pub fn from_name(s: &str) -> Option<Codec> {
        Self::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(s))
    }

    /// Whether this is a real audio codec (not telephone-event or comfort noise).
    pub fn is_audio(self) -> bool {
        !matches!(self, Self::TelephoneEvent | Self::Cn)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SRTP crypto suite a trunk may list; the typed form of a [`SRTP_SUITES`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568).
    AesCm128HmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714).
    AeadAes256Gcm,
}

impl SrtpSuite {
    /// Every suite, in the order of [`SRTP_SUITES`].
    pub const ALL: [SrtpSuite; 4] =
        [Self::AesCm128HmacSha1_80, Self::AesCm128HmacSha1_32, Self::AeadAes128Gcm, Self::AeadAes256Gcm];

    /// The SDES `a=crypto` suite name, as listed in [`SRTP_SUITES`].
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite named exactly `s` (suite names are case-sensitive, as in validation).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// Share of the trunk's calls this target takes first with `distribution = "weight"`
    /// (1..=1000; default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u32,
    /// Priority group (RFC 2782 style): lower first. A call starts in the lowest group (by
    /// `distribution` among its targets) and hunts through that group before the next one.
    /// Default 0: one group. Targets resolved from a trunk's `domain` carry their SRV priority.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u16,
}

impl Target {
    /// A UDP target of weight 1, priority 0.
    pub fn udp(addr: SocketAddr) -> Self {
        Self { addr, transport: Transport::Udp, weight: 1, priority: 0 }
    }
}

fn is_zero(p: &u16) -> bool {
    *p == 0
}

fn one() -> u32 {
    1
}

fn is_one(w: &u32) -> bool {
    *w == 1
}

/// Which target a trunk's calls try first; the others follow in config order (failover).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Always the first target (the others are standbys).
    #[default]
    Priority,
    /// Each call starts at the next target in turn.
    RoundRobin,
    /// Calls start at each target in proportion to its `weight` (smooth weighted round-robin:
    /// exact shares, evenly interleaved).
    Weight,
}

impl Distribution {
    /// The default.
    pub fn is_default(&self) -> bool {
        *self == Self::Priority
    }
}

fn default_transport() -> Transport {
    Transport::Udp
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_round_trip_and_match_the_list() {
        assert_eq!(Codec::ALL.map(Codec::name).as_slice(), CODECS);
        for c in Codec::ALL {
            assert_eq!(Codec::from_name(c.name()), Some(c));
            assert_eq!(Codec::from_name(&c.name().to_ascii_uppercase()), Some(c));
            assert_eq!(Codec::from_name(&c.name().to_ascii_lowercase()), Some(c));
        }
        assert_eq!(Codec::from_name("OPUS"), Some(Codec::Opus));
        assert_eq!(Codec::from_name("pcma"), Some(Codec::Pcma));
        assert_eq!(Codec::from_name("AMR"), None);
        assert_eq!(Codec::from_name(""), None);
        assert!(Codec::Pcma.is_audio() && !Codec::TelephoneEvent.is_audio() && !Codec::Cn.is_audio());
    }

    #[test]
    fn suite_names_round_trip_and_match_the_list() {
        assert_eq!(SrtpSuite::ALL.map(SrtpSuite::name).as_slice(), SRTP_SUITES);
        for s in SrtpSuite::ALL {
            assert_eq!(SrtpSuite::from_name(s.name()), Some(s));
        }
        assert_eq!(SrtpSuite::from_name("AEAD_AES_256_GCM"), Some(SrtpSuite::AeadAes256Gcm));
        assert_eq!(SrtpSuite::from_name("aead_aes_256_gcm"), None);
        assert_eq!(SrtpSuite::from_name("F8_128_HMAC_SHA1_80"), None);
    }

    #[test]
    fn kind_and_auth_spellings() {
        #[derive(Deserialize)]
        struct T {
            kind: TrunkKind,
            auth: AuthMode,
        }
        for (text, kind, auth) in [
            ("kind = \"ip\"\nauth = \"acl\"", TrunkKind::Ip, AuthMode::Acl),
            ("kind = \"register\"\nauth = \"digest\"", TrunkKind::Register, AuthMode::Digest),
            ("kind = \"accept-register\"\nauth = \"both\"", TrunkKind::AcceptRegister, AuthMode::Both),
        ] {
            let t: T = toml::from_str(text).unwrap();
            assert_eq!((t.kind, t.auth), (kind, auth));
            assert_eq!(format!("kind = \"{kind}\"\nauth = \"{auth}\""), text);
        }
        assert!(toml::from_str::<T>("kind = \"sip\"\nauth = \"acl\"").is_err());
    }
}
