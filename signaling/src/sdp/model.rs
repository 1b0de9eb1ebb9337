//! The SDP model: parsing, serialization, and the facts read from one side's description.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use xtrunk_ring::msg::{PtEntry, PtMap};

use super::{codec_of, redact_keys};

/// A parsed session description: session-level lines and media sections, in order.
/// `Debug` prints the text with `inline:` keys redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines (`type`, value).
    pub session: Vec<(u8, String)>,
    /// Media sections.
    pub media: Vec<MediaDesc>,
}

/// One `m=` section. `Debug` redacts `inline:` keys.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaDesc {
    /// `audio`, `video`, ...
    pub kind: String,
    /// Port (0 = declined).
    pub port: u16,
    /// Protocol (`RTP/AVP`, `RTP/SAVP`, ...).
    pub proto: String,
    /// Formats (payload types for RTP).
    pub fmts: Vec<String>,
    /// Lines after `m=` (`c=`, `a=`, `b=` ...).
    pub lines: Vec<(u8, String)>,
}

/// Why an SDP was refused (answered 488, or 400 for malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not parseable.
    #[error("malformed SDP")]
    Malformed,
    /// No audio stream to relay.
    #[error("no audio stream")]
    NoAudio,
    /// No codec the trunks allow.
    #[error("no common codec")]
    NoCommonCodec,
    /// RTP/SAVP only, and the trunk has SRTP off.
    #[error("SRTP offered only, trunk has srtp = off")]
    SrtpOnly,
    /// Plain RTP offered to a trunk with `srtp = mandatory`.
    #[error("SRTP required")]
    SrtpRequired,
    /// SRTP without a usable `a=crypto` line (unknown/disallowed suite, MKI, bad key), or an
    /// answer that echoes none of our offered tags.
    #[error("no acceptable SRTP crypto")]
    NoAcceptableCrypto,
    /// The OS CSPRNG failed.
    #[error("SRTP key generation failed")]
    KeyGeneration,
    /// Over one of the parser's bounds ([`SdpLimits`]): more than `limit` of `what`.
    #[error("SDP too large: more than {limit} {what}")]
    TooLarge {
        /// What there were too many of (`formats on an m= line`, ...).
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}

/// Bounds the parser keeps to (RFC 4566 sets none): beyond them an SDP is refused with
/// [`SdpError::TooLarge`] rather than kept. Parsing, [`Sdp::remote`] and the rewrites are linear
/// in the body whatever the bounds; the bounds cap the memory a body costs and refuse shapes no
/// trunk sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdpLimits {
    /// Formats on one `m=` line.
    pub formats: usize,
    /// Lines of one media section after its `m=` line (`c=`, `b=`, `a=` ...).
    pub media_lines: usize,
    /// Session-level lines.
    pub session_lines: usize,
    /// Media sections.
    pub media: usize,
}

impl SdpLimits {
    /// What [`Sdp::parse`] uses: 64 formats and 1 024 lines per section, 1 024 session-level
    /// lines, 64 media sections.
    pub const DEFAULT: Self = Self { formats: 64, media_lines: 1024, session_lines: 1024, media: 64 };
}

impl Default for SdpLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

fn too_large(what: &'static str, limit: usize) -> SdpError {
    SdpError::TooLarge { what, limit }
}

impl SdpError {
    /// SIP status and reason phrase for refusing an offer with this error.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            SdpError::Malformed => (400, "Bad SDP"),
            SdpError::NoAudio => (488, "No Audio Stream"),
            SdpError::NoCommonCodec => (488, "No Common Codec"),
            SdpError::SrtpOnly => (488, "SRTP Not Allowed"),
            SdpError::SrtpRequired => (488, "SRTP Required"),
            SdpError::NoAcceptableCrypto => (488, "Not Acceptable Here"),
            SdpError::KeyGeneration => (500, "Server Internal Error"),
            SdpError::TooLarge { .. } => (488, "Not Acceptable Here"),
        }
    }

    /// The text of a `Warning: 399` header explaining an SRTP or size refusal (RFC 3261 §20.43).
    pub fn warning(self) -> Option<&'static str> {
        match self {
            SdpError::SrtpOnly => Some("SRTP not allowed on this trunk"),
            SdpError::SrtpRequired => Some("SRTP required on this trunk"),
            SdpError::NoAcceptableCrypto => Some("no acceptable SRTP crypto"),
            SdpError::TooLarge { .. } => Some("SDP too large"),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Sdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.to_bytes()).into_owned();
        f.debug_tuple("Sdp").field(&redact_keys(&text)).finish()
    }
}

impl std::fmt::Debug for MediaDesc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<(char, String)> = self.lines.iter().map(|(t, v)| (*t as char, redact_keys(v))).collect();
        f.debug_struct("MediaDesc")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("proto", &self.proto)
            .field("fmts", &self.fmts)
            .field("lines", &lines)
            .finish()
    }
}

impl MediaDesc {
    /// The section of an `m=` line's value `<kind> <port>[/<count>] <proto> <fmt>...` (no lines
    /// yet), with at most `max_formats` formats.
    fn parse_m_line(v: &str, max_formats: usize) -> Result<Self, SdpError> {
        let mut it = v.split(' ');
        let kind = it.next().unwrap_or("").to_string();
        let port_s = it.next().ok_or(SdpError::Malformed)?;
        let port_s = port_s.split('/').next().unwrap_or("");
        let port: u16 = port_s.parse().map_err(|_| SdpError::Malformed)?;
        let proto = it.next().ok_or(SdpError::Malformed)?.to_string();
        let mut fmts = Vec::new();
        for f in it.filter(|s| !s.is_empty()) {
            if fmts.len() == max_formats {
                return Err(too_large("formats on an m= line", max_formats));
            }
            fmts.push(f.to_string());
        }
        if kind.is_empty() || fmts.is_empty() {
            return Err(SdpError::Malformed);
        }
        Ok(Self { kind, port, proto, fmts, lines: Vec::new() })
    }
}

/// Where the `a=rtpmap` and `a=fmtp` lines of each payload type (0–127) are in one media
/// section: the first of each, as a scan of the lines would find it. Built in one pass, so that
/// looking up every format costs formats + lines, not their product.
/// The name an `a=rtpmap` encoding (`name/rate[/channels]`) is matched by (see
/// [`Sdp::payloads`]).
fn encoding_name(enc: &str) -> String {
    let mut it = enc.trim().split('/');
    let name = it.next().unwrap_or("");
    let (rate, channels) = (it.next(), it.next());
    let usual = match name.to_ascii_lowercase().as_str() {
        "pcma" | "pcmu" | "g722" | "g729" | "telephone-event" | "cn" => {
            rate == Some("8000") && channels.is_none_or(|c| c == "1")
        }
        "opus" => rate == Some("48000") && channels.is_none_or(|c| c == "2"),
        _ => true,
    };
    if usual {
        name.to_string()
    } else {
        enc.trim().to_string()
    }
}

pub(super) struct PtLines {
    rtpmap: [u32; 128],
    fmtp: [u32; 128],
}

const NO_LINE: u32 = u32::MAX;

impl PtLines {
    /// The index of `m`'s lines.
    pub(super) fn of(m: &MediaDesc) -> Self {
        let mut x = Self { rtpmap: [NO_LINE; 128], fmtp: [NO_LINE; 128] };
        for (k, (t, v)) in m.lines.iter().enumerate() {
            if *t != b'a' {
                continue;
            }
            let (slots, rest) = if let Some(r) = v.strip_prefix("rtpmap:") {
                (&mut x.rtpmap, r)
            } else if let Some(r) = v.strip_prefix("fmtp:") {
                (&mut x.fmtp, r)
            } else {
                continue;
            };
            let Some(pt) = rest.split_once(' ').and_then(|(p, _)| p.trim().parse::<u8>().ok()) else { continue };
            if let (Some(slot), Ok(k)) = (slots.get_mut(usize::from(pt)), u32::try_from(k)) {
                if *slot == NO_LINE {
                    *slot = k;
                }
            }
        }
        x
    }

    fn value<'a>(slots: &[u32; 128], m: &'a MediaDesc, pt: u8) -> Option<&'a str> {
        let k = *slots.get(usize::from(pt))?;
        let (_, v) = m.lines.get(usize::try_from(k).ok()?)?;
        Some(v.split_once(' ')?.1)
    }

    /// The encoding of `pt` from its first `a=rtpmap` (`PCMU/8000`).
    pub(super) fn rtpmap<'a>(&self, m: &'a MediaDesc, pt: u8) -> Option<&'a str> {
        Self::value(&self.rtpmap, m, pt)
    }

    /// The parameters of `pt` from its first `a=fmtp`.
    pub(super) fn fmtp<'a>(&self, m: &'a MediaDesc, pt: u8) -> Option<&'a str> {
        Self::value(&self.fmtp, m, pt)
    }
}

impl Sdp {
    /// Parses SDP text (CRLF or LF line ends) within [`SdpLimits::DEFAULT`].
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        Self::parse_with(body, &SdpLimits::DEFAULT)
    }

    /// Parses SDP text within `limits`: one pass, and a refusal as soon as a bound is passed.
    pub fn parse_with(body: &[u8], limits: &SdpLimits) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed)?;
        let mut session = Vec::new();
        let mut media: Vec<MediaDesc> = Vec::new();
        let mut first = true;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(SdpError::Malformed);
            }
            let (t, v) = (b[0], &line[2..]);
            if first {
                if t != b'v' || v != "0" {
                    return Err(SdpError::Malformed);
                }
                first = false;
            }
            if t == b'm' {
                if media.len() == limits.media {
                    return Err(too_large("media sections", limits.media));
                }
                media.push(MediaDesc::parse_m_line(v, limits.formats)?);
            } else if let Some(m) = media.last_mut() {
                if m.lines.len() == limits.media_lines {
                    return Err(too_large("lines in a media section", limits.media_lines));
                }
                m.lines.push((t, v.to_string()));
            } else {
                if session.len() == limits.session_lines {
                    return Err(too_large("session-level lines", limits.session_lines));
                }
                session.push((t, v.to_string()));
            }
        }
        if first {
            return Err(SdpError::Malformed);
        }
        Ok(Self { session, media })
    }

    /// Serializes with CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_text().into_bytes()
    }

    /// Serializes with CRLF line ends, as text (plain appends: this runs for every SDP we send
    /// and every journal record).
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(320);
        let line = |s: &mut String, t: u8, v: &str| {
            s.push(char::from(t));
            s.push('=');
            s.push_str(v);
            s.push_str("\r\n");
        };
        for (t, v) in &self.session {
            line(&mut s, *t, v);
        }
        for m in &self.media {
            s.push_str("m=");
            s.push_str(&m.kind);
            s.push(' ');
            let _ = write!(s, "{}", m.port);
            s.push(' ');
            s.push_str(&m.proto);
            // `m=<kind> <port> <proto> <fmt>*( <fmt>)`: one space before the list even when empty.
            s.push(' ');
            for (k, f) in m.fmts.iter().enumerate() {
                if k > 0 {
                    s.push(' ');
                }
                s.push_str(f);
            }
            s.push_str("\r\n");
            for (t, v) in &m.lines {
                line(&mut s, *t, v);
            }
        }
        s
    }

    /// Index of the relayed stream: the first audio m-line with a non-zero port.
    pub fn audio_index(&self) -> Option<usize> {
        self.media.iter().position(|m| m.kind == "audio" && m.port != 0)
    }

    /// The connection address of media section `i` (media-level `c=`, else session-level).
    pub fn conn_ip(&self, i: usize) -> Option<IpAddr> {
        let m = self.media.get(i)?;
        let c = m.lines.iter().find(|(t, _)| *t == b'c').or_else(|| self.session.iter().find(|(t, _)| *t == b'c'))?;
        let mut it = c.1.split(' ');
        let (_net, _ty, addr) = (it.next()?, it.next()?, it.next()?);
        addr.split('/').next()?.parse().ok()
    }

    /// The value of attribute `name` in media section `i` (`Some("")` for a flag).
    pub fn attr(&self, i: usize, name: &str) -> Option<&str> {
        self.media.get(i)?.lines.iter().find_map(|(t, v)| {
            if *t != b'a' {
                return None;
            }
            let (n, val) = v.split_once(':').unwrap_or((v.as_str(), ""));
            (n == name).then_some(val)
        })
    }

    /// The media direction of section `i` (media-level, else session-level, else sendrecv).
    pub fn direction(&self, i: usize) -> &'static str {
        const DIRS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
        let find = |lines: &[(u8, String)]| {
            lines
                .iter()
                .find_map(|(t, v)| (*t == b'a').then(|| DIRS.iter().find(|d| **d == v.as_str()).copied()).flatten())
        };
        self.media.get(i).and_then(|m| find(&m.lines)).or_else(|| find(&self.session)).unwrap_or("sendrecv")
    }

    /// Payload types of section `i` with their encoding names (from `a=rtpmap` or the static
    /// table of RFC 3551). One pass over the section's lines, one over its formats.
    ///
    /// Codecs match by name *and* clock rate and channels: an encoding at the rate (and channel
    /// count) the relay knows it by is named plainly (`PCMA`, `telephone-event`); one at another
    /// rate keeps its whole `name/rate[/channels]` (`telephone-event/48000`), so it matches no
    /// configured codec and is never forwarded beside 8 kHz audio (the far end would drop its
    /// DTMF).
    pub fn payloads(&self, i: usize) -> Vec<(u8, String)> {
        let Some(m) = self.media.get(i) else { return Vec::new() };
        let index = PtLines::of(m);
        m.fmts
            .iter()
            .filter_map(|f| {
                let pt: u8 = f.parse().ok().filter(|p| *p <= 127)?;
                let name = index.rtpmap(m, pt).map(encoding_name).or_else(|| static_name(pt))?;
                Some((pt, name))
            })
            .collect()
    }

    /// What the peer told us about its end of the relayed stream.
    pub fn remote(&self) -> Result<Remote, SdpError> {
        let i = self.audio_index().ok_or(SdpError::NoAudio)?;
        let m = &self.media[i];
        let ip = self.conn_ip(i).ok_or(SdpError::Malformed)?;
        let addr = (!ip.is_unspecified()).then(|| SocketAddr::new(ip, m.port));
        let rtcp_port =
            self.attr(i, "rtcp").and_then(|v| v.split(' ').next()).and_then(|p| p.parse().ok()).unwrap_or(0);
        Ok(Remote {
            index: i,
            addr,
            rtcp_port,
            rtcp_mux: self.attr(i, "rtcp-mux").is_some(),
            payloads: self.payloads(i),
            direction: self.direction(i),
            ptime_ms: self.attr(i, "ptime").map_or(0, ptime_ms),
        })
    }
}

/// An `a=ptime` value as the datapath takes it (`LegSpec::ptime_ms`): whole milliseconds, a
/// multiple of 10 up to 120; anything else (including fractions, RFC 4566 allows them) is 0, "not
/// stated", and the relay does not re-packetise toward that leg.
pub fn ptime_ms(v: &str) -> u8 {
    v.trim().parse::<u8>().ok().filter(|&ms| ms != 0 && xtrunk_ring::msg::valid_ptime(ms)).unwrap_or(0)
}

/// Facts from one side's SDP about the relayed stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Index of the audio m-line.
    pub index: usize,
    /// RTP address; `None` for a hold with `c=0.0.0.0`.
    pub addr: Option<SocketAddr>,
    /// `a=rtcp` port or 0.
    pub rtcp_port: u16,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// Payload types and encoding names.
    pub payloads: Vec<(u8, String)>,
    /// Direction attribute.
    pub direction: &'static str,
    /// `a=ptime` as [`ptime_ms`] reads it (0: none usable).
    pub ptime_ms: u8,
}

impl Remote {
    /// The payload-type map for the datapath: known codecs only, at most [`xtrunk_ring::msg::MAX_PT`].
    pub fn pt_map(&self) -> PtMap {
        let mut m = PtMap::new();
        for (pt, name) in &self.payloads {
            if let Some(c) = codec_of(name) {
                m.push(PtEntry { pt: *pt, codec: c });
            }
        }
        m
    }
}

fn static_name(pt: u8) -> Option<String> {
    Some(
        match pt {
            0 => "PCMU",
            3 => "GSM",
            4 => "G723",
            8 => "PCMA",
            9 => "G722",
            13 => "CN",
            18 => "G729",
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names_come_from_the_first_usable_rtpmap() {
        // Skipped: not an a= line, no number, no encoding, a space before the number. First wins.
        let s = Sdp::parse(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 96 0 97 98 200\r\nb=rtpmap:96 G729/8000\r\na=rtpmap:x PCMA/8000\r\na=rtpmap:96\r\na=rtpmap: 96 G722/8000\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:96 PCMA/8000\r\na=fmtp:96 useinbandfec=1\r\na=fmtp:96 later\r\na=rtpmap:0 pcmu/8000\r\na=rtpmap:98 telephone-event/8000\r\n").unwrap();
        let p = s.payloads(0);
        let names: Vec<(u8, &str)> = p.iter().map(|(p, n)| (*p, n.as_str())).collect();
        // 97 has no rtpmap and no static name; 200 is not a payload type.
        assert_eq!(names, [(96, "opus"), (0, "pcmu"), (98, "telephone-event")]);
        let index = PtLines::of(&s.media[0]);
        assert_eq!(index.fmtp(&s.media[0], 96), Some("useinbandfec=1"));
        assert_eq!(index.rtpmap(&s.media[0], 96), Some("opus/48000/2"));
        assert_eq!(index.rtpmap(&s.media[0], 97), None);
    }
}
