//! `[media]`: media addresses, port range, timeouts and latching.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Lowest port the media range may use.
pub const MEDIA_PORT_FLOOR: u16 = 1024;

/// Shortest non-zero leg timeout: RTCP reports come every 5 s or so (RFC 3550 §6.2, randomised
/// up to 1.5×), so a shorter timeout would cut legs that only send RTCP (on hold).
pub const MIN_LEG_TIMEOUT_SECS: u32 = 10;

/// Longest leg timeout (a day).
pub const MAX_LEG_TIMEOUT_SECS: u32 = 86_400;

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
    /// Seconds without media on a call (on either leg) before signaling ends it; 0 = never.
    pub timeout_secs: u32,
    /// Seconds a leg may receive neither RTP nor RTCP while the other leg still receives (one-way
    /// media) before signaling ends the call; 0 = never, unset = `timeout_secs` (at least
    /// [`MIN_LEG_TIMEOUT_SECS`]). RTCP alone keeps a leg alive (a leg on hold still sends
    /// reports), hence 0 or at least [`MIN_LEG_TIMEOUT_SECS`]. A trunk may set its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leg_timeout_secs: Option<u32>,
    /// Symmetric-RTP latching: once (default), follow or strict. Media is only ever accepted
    /// from, and sent to, the SDP address or a source latched under the NAT-aware rule.
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
            leg_timeout_secs: None,
            latch: Latch::Once,
        }
    }
}

impl Media {
    /// The leg timeout in effect: `leg_timeout_secs`, or when unset `timeout_secs` raised to
    /// [`MIN_LEG_TIMEOUT_SECS`] (0 stays 0).
    pub fn leg_timeout(&self) -> u32 {
        self.leg_timeout_secs.unwrap_or(match self.timeout_secs {
            0 => 0,
            t => t.max(MIN_LEG_TIMEOUT_SECS),
        })
    }

    /// The address SDP advertises.
    pub fn sdp_ip(&self) -> IpAddr {
        self.advertised_ip.unwrap_or(self.bind_ip)
    }
}

/// Latching policy (see `xtrunk_ring::msg::LatchPolicy` and `xtrunk_datapath::relay::latch`).
///
/// A leg's peer is its SDP address. `once` and `follow` may move it to another source only if
/// that source's IP is the SDP address's IP or the IP the leg's SIP came from (a NAT), within
/// the first 2 s of the leg's media and before any packet from the SDP address itself, and with
/// the SSRC already seen. Anything else is dropped and counted, never relayed nor answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Latch {
    /// NAT-aware, at most once: the first allowed source is kept (the default).
    Once,
    /// NAT-aware, follows each newer allowed source while the latch window is open.
    Follow,
    /// Only the SDP address, never latch.
    Strict,
}
