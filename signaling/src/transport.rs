//! Transport addressing shared by the sans-IO cores and the mio shell.
//!
//! [`Transport`] is the seam for TLS: the cores only ask whether a transport is reliable and
//! which listener serves it; the shell owns the sockets. TLS listeners are refused at start-up
//! (logged) until the TLS shell exists.

use std::net::{IpAddr, SocketAddr};

use crate::sip::msg::{HName, Message, ViaRef};

/// A SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// TCP stream, framed by Content-Length.
    Tcp,
    /// TLS over TCP ([`crate::tls`]).
    Tls,
}

impl Transport {
    /// Reliable transports run no retransmission timers (RFC 3261 §17).
    pub fn reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    /// The URI parameter naming this transport: empty for UDP (the default), else
    /// `;transport=tcp` / `;transport=tls`.
    pub fn uri_param(self) -> &'static str {
        match self {
            Self::Udp => "",
            Self::Tcp => ";transport=tcp",
            Self::Tls => ";transport=tls",
        }
    }

    /// The Via token.
    pub fn via_token(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// Parses a Via/URI transport token.
    pub fn from_token(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Self::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Self::Tcp)
        } else if s.eq_ignore_ascii_case("tls") {
            Some(Self::Tls)
        } else {
            None
        }
    }
}

impl From<Transport> for xtrunk_config::Transport {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Udp => Self::Udp,
            Transport::Tcp => Self::Tcp,
            Transport::Tls => Self::Tls,
        }
    }
}

impl From<xtrunk_config::Transport> for Transport {
    fn from(t: xtrunk_config::Transport) -> Self {
        match t {
            xtrunk_config::Transport::Udp => Self::Udp,
            xtrunk_config::Transport::Tcp => Self::Tcp,
            xtrunk_config::Transport::Tls => Self::Tls,
        }
    }
}

/// Where a message goes (or came from): transport, our local listener address, the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    /// Transport.
    pub transport: Transport,
    /// Our listener's address (selects the socket).
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
}

/// Bytes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub dest: Dest,
    /// One whole SIP message.
    pub data: Vec<u8>,
}

/// RFC 3261 §18.2.1: adds `received` (when the sent-by host is not the source address) and fills
/// `rport` (RFC 3581) in the top Via of a request from `src`; returns where responses go
/// (§18.2.2: the flow for reliable transports, else the source IP and the rport-or-sent-by
/// port) and whether the Via's transport differs from the one it arrived on. None without a Via.
pub fn stamp_via(req: &mut Message, src: Dest) -> Option<(Dest, bool)> {
    let i = req.headers.iter().position(|h| h.name == HName::Via)?;
    let Ok(via) = ViaRef::parse(&req.headers[i].value) else {
        return Some((src, false));
    };
    let mismatch = Transport::from_token(via.transport) != Some(src.transport);
    let mut port = via.port.unwrap_or(5060);
    let ip_s = src.remote.ip().to_string();
    let add_received = via.host != ip_s;
    // Rebuilt as `Via::parse` + edit + render would give it: transport upper case, params
    // trimmed, `received` (when added) last, the first `rport` filled in.
    let mut v = String::with_capacity(req.headers[i].value.len() + 32);
    v.push_str("SIP/2.0/");
    v.extend(via.transport.chars().map(|c| c.to_ascii_uppercase()));
    v.push(' ');
    if via.host.contains(':') {
        v.push('[');
        v.push_str(via.host);
        v.push(']');
    } else {
        v.push_str(via.host);
    }
    if let Some(p) = via.port {
        v.push(':');
        v.push_str(&p.to_string());
    }
    let mut rport_seen = false;
    for (n, val) in via.param_iter() {
        if add_received && n.eq_ignore_ascii_case("received") {
            continue;
        }
        v.push(';');
        v.push_str(n);
        if !rport_seen && n.eq_ignore_ascii_case("rport") {
            rport_seen = true;
            port = src.remote.port();
            v.push('=');
            v.push_str(&port.to_string());
            continue;
        }
        if let Some(val) = val {
            v.push('=');
            v.push_str(val);
        }
    }
    if add_received {
        v.push_str(";received=");
        v.push_str(&ip_s);
    }
    req.headers[i].value = v;
    if src.transport.reliable() {
        return Some((src, mismatch));
    }
    Some((
        Dest { transport: src.transport, local: src.local, remote: SocketAddr::new(src.remote.ip(), port) },
        mismatch,
    ))
}

/// Not a global address: private (RFC 1918, fc00::/7), shared (RFC 6598), loopback or
/// link-local.
pub(crate) fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_private() || v.is_loopback() || v.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            !(v.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80)
        }
    }
}
