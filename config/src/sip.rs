//! `[sip]`: listeners, transports and timers.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[sip]`: listeners and timers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sip {
    /// Addresses and transports to listen on. TOML: `[[sip.listen]]`.
    pub listen: Vec<Listen>,
    /// Host written into Via/Contact/Record-Route; default: the listener's address.
    pub advertised_host: Option<String>,
    /// What outsiders can make the sidecar hold. TOML: `[sip.limits]`.
    pub limits: SipLimits,
    /// RFC 3261 timers.
    pub timers: SipTimers,
    /// Largest SIP message accepted, in bytes; larger ones are answered 513 or dropped.
    pub max_message_bytes: usize,
    /// Seconds an outbound INVITE may ring before the B2BUA gives up (408 to the caller).
    pub no_answer_timeout_secs: u32,
    /// Milliseconds a trunk target may take to send a provisional (or final) response to our
    /// INVITE before the next target is tried (default 2000; Timer B, 64·T1, is far too long for
    /// hunting). An ICMP unreachable or a refused connection fails the target at once.
    pub target_timeout_ms: u32,
    /// Seconds the whole hunt over a trunk's targets may take before the caller gets `408`
    /// (default 10); a target that rings is governed by `no_answer_timeout_secs` instead.
    pub hunt_timeout_secs: u32,
    /// Session timers (RFC 4028): seconds a call's session lasts without a refresh; the edge
    /// refreshes each leg (UPDATE) every half of it and ends a call (BYE both legs) whose leg
    /// was not refreshed in time. 0 = only when the caller asks (its `Session-Expires`).
    pub session_expires_secs: u32,
    /// The smallest `Session-Expires` accepted (`422` with `Min-SE` below it). RFC 4028 says at
    /// least 90; less is for test labs.
    pub min_se_secs: u32,
    // TCP connection limits (issue #11). Read at each accept and idle sweep, so a reload applies.
    /// Most TCP connections open at once, accepted and outbound; more are refused (counted).
    pub tcp_max_connections: usize,
    /// Most TCP connections open at once from (or to) one IP address.
    pub tcp_max_per_source: usize,
    /// Seconds a TCP connection may carry no byte either way before it is closed.
    pub tcp_idle_timeout_s: u32,
    /// Most bytes queued toward a TCP peer that does not read; over it, the connection is closed.
    pub tcp_max_write_buffer: usize,
    /// Seconds a target that timed out or was unreachable is skipped by new calls while the
    /// trunk has another target to try (0 = never skipped).
    pub target_backoff_secs: u32,
    /// `[sip.dns]`: the resolver of trunk domains (RFC 3263).
    pub dns: Dns,
    /// What a request from a source in no trunk's ACL gets when it is not challenged for digest
    /// credentials: `"403"` (default) or `"drop"` (silence, counted).
    #[serde(skip_serializing_if = "crate::UnknownSource::is_default")]
    pub unknown_source: crate::UnknownSource,
    /// Send `Server` (responses) and `User-Agent` (requests) with `node.name` (default false:
    /// no response tells a scanner what answers).
    pub server_header: bool,
    /// `[sip.auth]`: digest challenges, nonces and the per-source ban.
    pub auth: crate::SipAuth,
    /// `[sip.overload]`: shedding new calls while the SIP loop or the session ring is behind.
    pub overload: crate::Overload,
}

/// `[sip.dns]`: how trunk `domain`s are resolved. The resolver runs on a thread of its own (one
/// small async runtime there, none on the SIP loop); the loop only ever reads its results.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    /// Name servers (`ip:port`); empty (the default) = those of `/etc/resolv.conf`.
    pub servers: Vec<SocketAddr>,
    /// Records are used at least this long, whatever their TTL (default 5).
    pub min_ttl_secs: u32,
    /// ... and at most this long before they are asked again (default 3600).
    pub max_ttl_secs: u32,
    /// Seconds before a failed resolution is tried again (default 30); the last good answer
    /// stays in use meanwhile.
    pub retry_secs: u32,
    /// Milliseconds one query may take (default 2000).
    pub timeout_ms: u32,
}

impl Default for Dns {
    fn default() -> Self {
        Self { servers: Vec::new(), min_ttl_secs: 5, max_ttl_secs: 3600, retry_secs: 30, timeout_ms: 2000 }
    }
}

impl Default for Sip {
    fn default() -> Self {
        Self {
            listen: vec![Listen {
                transport: Transport::Udp,
                addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
                tls: None,
                advertised: None,
            }],
            advertised_host: None,
            limits: SipLimits::default(),
            timers: SipTimers::default(),
            max_message_bytes: 65_535,
            no_answer_timeout_secs: 60,
            target_timeout_ms: 2000,
            hunt_timeout_secs: 10,
            session_expires_secs: 0,
            min_se_secs: 90,
            tcp_max_connections: 1024,
            tcp_max_per_source: 32,
            tcp_idle_timeout_s: 120,
            tcp_max_write_buffer: 1 << 20,
            target_backoff_secs: 30,
            dns: Dns::default(),
            unknown_source: crate::UnknownSource::default(),
            server_header: false,
            auth: crate::SipAuth::default(),
            overload: crate::Overload::default(),
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
    /// Host written into Via/Contact/Record-Route of what goes through this listener (the
    /// public name or address in front of it: NAT, 1:1); default `sip.advertised_host`, else
    /// the listener's address. A multi-homed edge sets it per interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised: Option<String>,
}

/// Certificate chain and private key, PEM; and whether clients are asked for certificates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM file of the CAs client certificates must chain to: with it the listener asks every
    /// client for a certificate (mutual TLS). A client without one is still served unless its
    /// trunk sets `tls.peer_name`; a presented certificate that does not chain is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
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

/// `[sip.limits]`: bounds on the state any source can create (each over-limit request is counted
/// and dropped, or answered statelessly).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipLimits {
    /// Server transactions kept at once, all sources together (default 262144: at 3 000 CPS a
    /// call's INVITE and BYE transactions stay 64·T1 = 32 s, about 192 000). Over it, requests
    /// are answered `503` without state. Sources that are no trunk's may hold a quarter of it.
    pub max_server_transactions: usize,
    /// Server transactions kept at once for one source IP that is no trunk's (neither in an ACL
    /// nor a target; default 256). Over it, that source's new requests are dropped.
    pub max_transactions_per_source: usize,
    /// Bytes of keys and stored responses the server transactions may hold (default 256 MiB).
    /// Over it, final responses to non-INVITE requests are sent without being kept.
    pub max_transaction_bytes: usize,
    /// Share of the media port pool (percent) the calls of one source may hold before they are
    /// confirmed — ringing, or answered and not yet ACKed (default 50). Over it, that source's
    /// new INVITEs get `503`: half-open calls from one PBX or attacker cannot take every port.
    pub max_pending_share_pct: u8,
    /// Answer out-of-dialog OPTIONS from an address that is no trunk's (ACL or target) with `200`
    /// (default false: dropped and counted, so the edge does not show itself to scanners).
    pub answer_unknown_options: bool,
}

impl Default for SipLimits {
    fn default() -> Self {
        Self {
            max_server_transactions: 262_144,
            max_transactions_per_source: 256,
            max_transaction_bytes: 256 << 20,
            max_pending_share_pct: 50,
            answer_unknown_options: false,
        }
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

/// Whether `d` is a domain `[sip.dns]` can resolve: `host` or `host:port`, host of dot-separated
/// labels of 1..=63 letters, digits and `-` (not at either end), 253 characters at most. An IP
/// address is refused: that is a target.
pub(crate) fn check_domain(d: &str) -> Result<(), String> {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("the port of {d:?} must be 1..=65535"));
        }
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{d:?} is an address: list it in targets"));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!("must be a domain name (labels of letters, digits and '-'), got {d:?}"));
    }
    Ok(())
}
