//! Transport addressing shared by the sans-IO cores and the mio shell.
//!
//! [`Transport`] is the seam for TLS: the cores only ask whether a transport is reliable and
//! which listener serves it; the shell owns the sockets. TLS listeners are refused at start-up
//! (logged) until the TLS shell exists.

use std::net::SocketAddr;

/// A SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// TCP stream, framed by Content-Length.
    Tcp,
    /// TLS over TCP (not served yet).
    Tls,
}

impl Transport {
    /// Reliable transports run no retransmission timers (RFC 3261 §17).
    pub fn reliable(self) -> bool {
        !matches!(self, Self::Udp)
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
