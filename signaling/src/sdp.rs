//! SDP (RFC 4566) parsing and the offer/answer rewrite (RFC 3264) that anchors media on the relay.
//!
//! Sans-IO: text in, text and negotiated facts out. Only the first audio stream is relayed; other
//! streams are declined (port 0) so both sides keep the same m-line count. Each side sees only
//! the relay's address and port, our own `o=` line, codecs filtered to the trunks' allowed list in
//! preference order, its own payload-type numbers, and `ptime`/direction attributes. ICE, `a=rtcp`
//! and the other side's `a=crypto` are removed.
//!
//! SDES (RFC 4568): each leg's SRTP is negotiated on its own ([`accept_offer`],
//! [`add_offer_crypto`], [`add_answer_crypto`], [`answer_crypto`]) with keys we generate
//! ([`fresh_keys`]); the other leg's keys never cross. [`redact_keys`] hides `inline:` key
//! material, and the `Debug` forms of [`Sdp`] and [`MediaDesc`] use it.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use xtrunk_config::SrtpPolicy;
use xtrunk_ring::msg::{Codec, LegCrypto, PtEntry, PtMap, SrtpKeys, SrtpSuite};
use xtrunk_srtp::{format_sdes_crypto, parse_sdes_crypto, Suite};

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
        }
    }

    /// The text of a `Warning: 399` header explaining an SRTP refusal (RFC 3261 §20.43).
    pub fn warning(self) -> Option<&'static str> {
        match self {
            SdpError::SrtpOnly => Some("SRTP not allowed on this trunk"),
            SdpError::SrtpRequired => Some("SRTP required on this trunk"),
            SdpError::NoAcceptableCrypto => Some("no acceptable SRTP crypto"),
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

impl Sdp {
    /// Parses SDP text (CRLF or LF line ends).
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
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
                let mut it = v.split(' ');
                let kind = it.next().unwrap_or("").to_string();
                let port_s = it.next().ok_or(SdpError::Malformed)?;
                let port_s = port_s.split('/').next().unwrap_or("");
                let port: u16 = port_s.parse().map_err(|_| SdpError::Malformed)?;
                let proto = it.next().ok_or(SdpError::Malformed)?.to_string();
                let fmts: Vec<String> = it.filter(|s| !s.is_empty()).map(str::to_string).collect();
                if kind.is_empty() || fmts.is_empty() {
                    return Err(SdpError::Malformed);
                }
                media.push(MediaDesc { kind, port, proto, fmts, lines: Vec::new() });
            } else if let Some(m) = media.last_mut() {
                m.lines.push((t, v.to_string()));
            } else {
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
        let c = m
            .lines
            .iter()
            .find(|(t, _)| *t == b'c')
            .or_else(|| self.session.iter().find(|(t, _)| *t == b'c'))?;
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
            lines.iter().find_map(|(t, v)| {
                (*t == b'a').then(|| DIRS.iter().find(|d| **d == v.as_str()).copied()).flatten()
            })
        };
        self.media
            .get(i)
            .and_then(|m| find(&m.lines))
            .or_else(|| find(&self.session))
            .unwrap_or("sendrecv")
    }

    /// Payload types of section `i` with their encoding names (from `a=rtpmap` or the static
    /// table of RFC 3551).
    pub fn payloads(&self, i: usize) -> Vec<(u8, String)> {
        let Some(m) = self.media.get(i) else { return Vec::new() };
        m.fmts
            .iter()
            .filter_map(|f| {
                let pt: u8 = f.parse().ok().filter(|p| *p <= 127)?;
                let name = self.rtpmap(i, pt).or_else(|| static_name(pt))?;
                Some((pt, name))
            })
            .collect()
    }

    fn rtpmap(&self, i: usize, pt: u8) -> Option<String> {
        let m = self.media.get(i)?;
        m.lines.iter().find_map(|(t, v)| {
            let rest = v.strip_prefix("rtpmap:")?;
            let (p, enc) = rest.split_once(' ')?;
            (*t == b'a' && p.trim().parse::<u8>().ok()? == pt)
                .then(|| enc.split('/').next().unwrap_or("").to_string())
        })
    }

    /// What the peer told us about its end of the relayed stream.
    pub fn remote(&self) -> Result<Remote, SdpError> {
        let i = self.audio_index().ok_or(SdpError::NoAudio)?;
        let m = &self.media[i];
        let ip = self.conn_ip(i).ok_or(SdpError::Malformed)?;
        let addr = (!ip.is_unspecified()).then(|| SocketAddr::new(ip, m.port));
        let rtcp_port = self
            .attr(i, "rtcp")
            .and_then(|v| v.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(Remote {
            index: i,
            addr,
            rtcp_port,
            rtcp_mux: self.attr(i, "rtcp-mux").is_some(),
            payloads: self.payloads(i),
            direction: self.direction(i),
        })
    }
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

fn static_pt(name: &str) -> Option<u8> {
    [(0, "PCMU"), (8, "PCMA"), (9, "G722"), (13, "CN"), (18, "G729")]
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(p, _)| *p)
}

/// Config codec name → relay codec.
pub fn codec_of(name: &str) -> Option<Codec> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "pcmu" => Codec::Pcmu,
        "pcma" => Codec::Pcma,
        "g722" => Codec::G722,
        "g729" => Codec::G729,
        "opus" => Codec::Opus,
        "telephone-event" => Codec::TelephoneEvent,
        "cn" => Codec::Cn,
        _ => return None,
    })
}

/// Our `o=` line state for one leg: the version increases with every SDP sent (RFC 3264 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Session id.
    pub id: u64,
    /// Version.
    pub version: u64,
}

/// How to rewrite an SDP for the other side.
#[derive(Clone, Debug)]
pub struct Rewrite<'a> {
    /// Relay address written in `c=`.
    pub ip: IpAddr,
    /// Relay RTP port written in `m=`.
    pub port: u16,
    /// Allowed codec names in preference order.
    pub allowed: &'a [String],
    /// SRTP off on the trunk the offer came from: refuse an RTP/SAVP offer ([`SdpError::SrtpOnly`]).
    /// The other side's `a=crypto` lines are never copied; see [`add_offer_crypto`].
    pub srtp_off: bool,
}

fn is_codec(name: &str) -> bool {
    !name.eq_ignore_ascii_case("telephone-event") && !name.eq_ignore_ascii_case("CN")
}

fn header_lines(ip: IpAddr, origin: &mut Origin) -> Vec<(u8, String)> {
    origin.version += 1;
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    vec![
        (b'v', "0".into()),
        (b'o', format!("xtrunk {} {} IN {fam} {ip}", origin.id, origin.version)),
        (b's', "xtrunk".into()),
        (b'c', format!("IN {fam} {ip}")),
        (b't', "0 0".into()),
    ]
}

/// Kept attributes of the relayed stream for the chosen payload types.
fn stream_lines(src: &Sdp, i: usize, pts: &[(u8, u8, String)], mux: bool, dir: &str) -> Vec<(u8, String)> {
    // pts: (source pt, emitted pt, name)
    let mut out = Vec::new();
    for (spt, ept, name) in pts {
        let enc = src.media[i].lines.iter().find_map(|(t, v)| {
            let rest = v.strip_prefix("rtpmap:")?;
            let (p, enc) = rest.split_once(' ')?;
            (*t == b'a' && p.trim().parse::<u8>().ok()? == *spt).then(|| enc.to_string())
        });
        let enc = enc.unwrap_or_else(|| format!("{name}/8000"));
        out.push((b'a', format!("rtpmap:{ept} {enc}")));
        if let Some(f) = src.media[i].lines.iter().find_map(|(t, v)| {
            let rest = v.strip_prefix("fmtp:")?;
            let (p, params) = rest.split_once(' ')?;
            (*t == b'a' && p.trim().parse::<u8>().ok()? == *spt).then(|| params.to_string())
        }) {
            out.push((b'a', format!("fmtp:{ept} {f}")));
        }
    }
    for a in ["ptime", "maxptime"] {
        if let Some(v) = src.attr(i, a) {
            out.push((b'a', format!("{a}:{v}")));
        }
    }
    if mux {
        out.push((b'a', "rtcp-mux".into()));
    }
    out.push((b'a', dir.to_string()));
    out
}

fn check_proto(m: &MediaDesc, srtp_off: bool) -> Result<(), SdpError> {
    if m.proto.contains("SAVP") && srtp_off {
        return Err(SdpError::SrtpOnly);
    }
    Ok(())
}

fn declined(m: &MediaDesc) -> MediaDesc {
    MediaDesc { kind: m.kind.clone(), port: 0, proto: m.proto.clone(), fmts: m.fmts.clone(), lines: Vec::new() }
}

/// Rewrites an offer for the other side: relay address/port, allowed codecs in preference order
/// (the offerer's payload-type numbers kept). Returns the new SDP.
pub fn rewrite_offer(offer: &Sdp, rw: &Rewrite<'_>, origin: &mut Origin) -> Result<Sdp, SdpError> {
    let r = offer.remote()?;
    let i = r.index;
    check_proto(&offer.media[i], rw.srtp_off)?;
    let mut chosen: Vec<(u8, u8, String)> = Vec::new();
    for want in rw.allowed {
        if let Some((pt, name)) = r.payloads.iter().find(|(_, n)| n.eq_ignore_ascii_case(want)) {
            if !chosen.iter().any(|(p, _, _)| p == pt) {
                chosen.push((*pt, *pt, name.clone()));
            }
        }
    }
    if !chosen.iter().any(|(_, _, n)| is_codec(n)) {
        return Err(SdpError::NoCommonCodec);
    }
    let lines = stream_lines(offer, i, &chosen, r.rtcp_mux, r.direction);
    let media = relay_media(offer, i, rw.port, "RTP/AVP".into(), &chosen, lines);
    Ok(Sdp { session: header_lines(rw.ip, origin), media })
}

/// Rewrites an answer for the side that sent `orig_offer`: relay address/port, the answer's
/// codecs in the answer's order, numbered as in `orig_offer`. `mux` = accept rtcp-mux on that
/// side (it offered it).
pub fn rewrite_answer(
    answer: &Sdp,
    orig_offer: &Sdp,
    rw: &Rewrite<'_>,
    origin: &mut Origin,
) -> Result<Sdp, SdpError> {
    let offer_r = orig_offer.remote()?;
    let i = offer_r.index;
    let am = answer.media.get(i).ok_or(SdpError::NoAudio)?;
    let ans_payloads = answer.payloads(i);
    let mut chosen: Vec<(u8, u8, String)> = Vec::new();
    for (apt, name) in &ans_payloads {
        if let Some((opt, _)) = offer_r.payloads.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) {
            if !chosen.iter().any(|(_, p, _)| p == opt) {
                chosen.push((*apt, *opt, name.clone()));
            }
        }
    }
    if am.port == 0 || !chosen.iter().any(|(_, _, n)| is_codec(n)) {
        return Err(SdpError::NoCommonCodec);
    }
    let lines = stream_lines(answer, i, &chosen, offer_r.rtcp_mux, answer.direction(i));
    let proto = orig_offer.media.get(i).map(|m| m.proto.clone()).unwrap_or_default();
    let media = relay_media(orig_offer, i, rw.port, proto, &chosen, lines);
    Ok(Sdp { session: header_lines(rw.ip, origin), media })
}

/// The media sections of `base` with stream `i` replaced by the relay's audio stream (`port`,
/// `proto`, the `chosen` payload types as `(theirs, ours, name)`, attribute `lines`) and every
/// other stream declined.
fn relay_media(
    base: &Sdp,
    i: usize,
    port: u16,
    proto: String,
    chosen: &[(u8, u8, String)],
    lines: Vec<(u8, String)>,
) -> Vec<MediaDesc> {
    let mut stream = Some(MediaDesc {
        kind: "audio".into(),
        port,
        proto,
        fmts: chosen.iter().map(|(_, p, _)| p.to_string()).collect(),
        lines,
    });
    base.media
        .iter()
        .enumerate()
        .map(|(j, m)| if j == i { stream.take().unwrap_or_else(|| declined(m)) } else { declined(m) })
        .collect()
}

/// The payloads of `side` restricted to the codecs of `other` (the negotiated set on that leg).
pub fn negotiated(side: &Remote, other: &Remote) -> Remote {
    let mut r = side.clone();
    r.payloads.retain(|(_, n)| other.payloads.iter().any(|(_, m)| m.eq_ignore_ascii_case(n)));
    r
}

/// Payload type for a config codec name when generating SDP from scratch.
pub fn default_pt(name: &str) -> Option<u8> {
    static_pt(name).or_else(|| match name.to_ascii_lowercase().as_str() {
        "telephone-event" => Some(101),
        "opus" => Some(111),
        _ => None,
    })
}

// ------------------------------------------------------------------------------ SDES (RFC 4568)

/// A trunk's SRTP settings as the offer/answer needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpPrefs {
    /// `srtp = off | optional | mandatory`.
    pub policy: SrtpPolicy,
    /// `srtp_suites`, in preference order (unknown names, refused by config validation, skipped).
    pub suites: Vec<Suite>,
}

impl SrtpPrefs {
    /// The settings of `trunk`.
    pub fn of(trunk: &xtrunk_config::Trunk) -> Self {
        Self {
            policy: trunk.srtp,
            suites: trunk.srtp_suites.iter().filter_map(|n| Suite::from_sdes_name(n)).collect(),
        }
    }

    /// True when offers we send to this trunk carry SRTP (RTP/SAVP + `a=crypto`): only for
    /// `mandatory`. An `optional` trunk is offered plain RTP/AVP (RFC 4568 §7.1.1: an RTP/SAVP
    /// offer fails against a peer without SRTP, and we do no capability negotiation) unless the
    /// leg already runs SRTP (re-offers keep it).
    pub fn offer_srtp(&self, leg_is_srtp: bool) -> bool {
        match self.policy {
            SrtpPolicy::Off => false,
            SrtpPolicy::Optional => leg_is_srtp,
            SrtpPolicy::Mandatory => true,
        }
    }
}

/// One usable `a=crypto` line of the relayed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesLine {
    /// The tag (an answer echoes the offer's).
    pub tag: u32,
    /// Suite and key material (redacted in `Debug`).
    pub keys: SrtpKeys,
}

/// The ring's suite for an SDES suite.
pub fn ring_suite(s: Suite) -> SrtpSuite {
    match s {
        Suite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm => SrtpSuite::AeadAes128Gcm,
        Suite::AeadAes256Gcm => SrtpSuite::AeadAes256Gcm,
    }
}

/// The SDES suite of a ring suite.
pub fn sdes_suite(s: SrtpSuite) -> Suite {
    match s {
        SrtpSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes128Gcm => Suite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm => Suite::AeadAes256Gcm,
    }
}

fn is_secure(m: &MediaDesc) -> bool {
    m.proto.contains("SAVP")
}

/// The usable `a=crypto` lines of media section `i`, in order. Lines we cannot use (syntax, unknown
/// suite, MKI or several keys, unsupported session parameters, wrong key length) are skipped; a
/// key lifetime is accepted (and not enforced: SDES re-keys by a new offer/answer).
pub fn crypto_lines(sdp: &Sdp, i: usize) -> Vec<SdesLine> {
    let Some(m) = sdp.media.get(i) else { return Vec::new() };
    m.lines
        .iter()
        .filter(|(t, v)| *t == b'a' && v.starts_with("crypto:"))
        .filter_map(|(_, v)| parse_sdes_crypto(v).ok())
        .map(|c| {
            let mut keys = SrtpKeys { suite: ring_suite(c.suite), key: [0; 32], salt: [0; 14] };
            keys.key[..c.key.key.len()].copy_from_slice(&c.key.key);
            keys.salt[..c.key.salt.len()].copy_from_slice(&c.key.salt);
            SdesLine { tag: c.tag, keys }
        })
        .collect()
}

/// Checks an offer received from a trunk with `prefs` (RFC 4568 §7.1.2 answerer side).
/// `Ok(None)`: plain RTP on that leg. `Ok(Some(line))`: SRTP with the offered line we accept,
/// chosen by the trunk's suite preference (first offered line of the most preferred suite).
/// Errors (all answered 488): RTP/SAVP to `off`, plain RTP to `mandatory`, RTP/SAVP without a
/// usable line of an allowed suite. An offer without an audio stream is left to the codec rewrite.
pub fn accept_offer(offer: &Sdp, prefs: &SrtpPrefs) -> Result<Option<SdesLine>, SdpError> {
    let Some(i) = offer.audio_index() else { return Ok(None) };
    match (prefs.policy, is_secure(&offer.media[i])) {
        (SrtpPolicy::Off, true) => Err(SdpError::SrtpOnly),
        (SrtpPolicy::Mandatory, false) => Err(SdpError::SrtpRequired),
        (_, false) => Ok(None),
        (_, true) => {
            let lines = crypto_lines(offer, i);
            prefs
                .suites
                .iter()
                .find_map(|s| lines.iter().find(|l| l.keys.suite == ring_suite(*s)).copied())
                .map(Some)
                .ok_or(SdpError::NoAcceptableCrypto)
        }
    }
}

/// A fresh master key and salt for `suite` from the OS CSPRNG.
pub fn fresh_keys(suite: SrtpSuite) -> Result<SrtpKeys, SdpError> {
    let mut k = SrtpKeys { suite, key: [0; 32], salt: [0; 14] };
    getrandom::getrandom(&mut k.key[..suite.key_len()]).map_err(|_| SdpError::KeyGeneration)?;
    getrandom::getrandom(&mut k.salt[..suite.salt_len()]).map_err(|_| SdpError::KeyGeneration)?;
    Ok(k)
}

/// Our keys for answering the offered line `chosen` on a leg whose current crypto is `current`:
/// the current `tx` key when the suite is unchanged and the peer kept its key (a re-offer that
/// changes nothing changes nothing), else fresh keys (the peer re-keyed, or a new suite).
pub fn answer_keys(chosen: &SdesLine, current: &LegCrypto) -> Result<SrtpKeys, SdpError> {
    match (current.rx, current.tx) {
        (Some(rx), Some(tx)) if rx == chosen.keys && tx.suite == chosen.keys.suite => Ok(tx),
        _ => fresh_keys(chosen.keys.suite),
    }
}

/// Answers the SRTP of an offer received on a leg whose current crypto is `current`: `None` for
/// plain RTP, else the tag to echo and the leg's new crypto (`rx` = the offerer's key, `tx` =
/// [`answer_keys`]). Errors as [`accept_offer`].
pub fn answer_offer_crypto(offer: &Sdp, prefs: &SrtpPrefs, current: &LegCrypto) -> Result<Option<(u32, LegCrypto)>, SdpError> {
    let Some(line) = accept_offer(offer, prefs)? else { return Ok(None) };
    let tx = answer_keys(&line, current)?;
    Ok(Some((line.tag, LegCrypto { rx: Some(line.keys), tx: Some(tx) })))
}

fn crypto_attr(tag: u32, k: &SrtpKeys) -> (u8, String) {
    let s = sdes_suite(k.suite);
    let v = format_sdes_crypto(tag, s, &k.key[..s.key_len()], &k.salt[..s.salt_len()]);
    (b'a', format!("crypto:{v}"))
}

/// Puts `line` just before the stream's direction attribute (the last line we emit).
fn push_before_direction(m: &mut MediaDesc, line: (u8, String)) {
    let at = m
        .lines
        .iter()
        .rposition(|(t, v)| *t == b'a' && ["sendrecv", "sendonly", "recvonly", "inactive"].contains(&v.as_str()))
        .unwrap_or(m.lines.len());
    m.lines.insert(at, line);
}

/// Adds our answer's `a=crypto` to the relayed stream of `answer` (built by [`rewrite_answer`]
/// for an SRTP offerer): the offered line's tag and suite, our key (RFC 4568 §7.1.2).
pub fn add_answer_crypto(answer: &mut Sdp, tag: u32, ours: &SrtpKeys) {
    let Some(i) = answer.audio_index() else { return };
    let m = &mut answer.media[i];
    if !is_secure(m) {
        m.proto = "RTP/SAVP".into();
    }
    push_before_direction(m, crypto_attr(tag, ours));
}

/// Makes our rewritten offer an SRTP offer: profile RTP/SAVP (RTP/SAVPF when it was AVPF), one
/// `a=crypto` per suite in preference order, tags 1, 2, ..., each with fresh keys except `reuse`
/// for its own suite (re-offers keep our key so the peer's context continues).
pub fn add_offer_crypto(offer: &mut Sdp, suites: &[Suite], reuse: Option<&SrtpKeys>) -> Result<(), SdpError> {
    let i = offer.audio_index().ok_or(SdpError::NoAudio)?;
    if suites.is_empty() {
        return Err(SdpError::NoAcceptableCrypto);
    }
    let mut lines = Vec::with_capacity(suites.len());
    for (n, s) in suites.iter().enumerate() {
        let rs = ring_suite(*s);
        let keys = match reuse {
            Some(k) if k.suite == rs => *k,
            _ => fresh_keys(rs)?,
        };
        lines.push(crypto_attr(n as u32 + 1, &keys));
    }
    let m = &mut offer.media[i];
    m.proto = if m.proto.ends_with("AVPF") { "RTP/SAVPF".into() } else { "RTP/SAVP".into() };
    for l in lines {
        push_before_direction(m, l);
    }
    Ok(())
}

/// The crypto of a leg after its peer answered `our_offer` with `answer`. Plain when we offered
/// plain RTP (any `a=crypto` in the answer is ignored). When we offered SRTP the answer must be
/// RTP/SAVP(F) with a usable line echoing one of our tags with the same suite: then `rx` = the
/// answerer's key, `tx` = ours for that tag; else [`SdpError::NoAcceptableCrypto`].
pub fn answer_crypto(our_offer: &Sdp, answer: &Sdp) -> Result<LegCrypto, SdpError> {
    let Some(i) = our_offer.audio_index() else { return Ok(LegCrypto::default()) };
    let offered = crypto_lines(our_offer, i);
    if offered.is_empty() || !is_secure(&our_offer.media[i]) {
        return Ok(LegCrypto::default());
    }
    let am = answer.media.get(i).ok_or(SdpError::NoAcceptableCrypto)?;
    if !is_secure(am) {
        return Err(SdpError::NoAcceptableCrypto);
    }
    crypto_lines(answer, i)
        .into_iter()
        .find_map(|a| {
            offered
                .iter()
                .find(|o| o.tag == a.tag && o.keys.suite == a.keys.suite)
                .map(|o| LegCrypto { rx: Some(a.keys), tx: Some(o.keys) })
        })
        .ok_or(SdpError::NoAcceptableCrypto)
}

/// `text` with the key material of every `inline:` key-param replaced by `<redacted>` (up to the
/// next whitespace or `;`): for any log line that shows SDP.
pub fn redact_keys(text: &str) -> String {
    const MARK: &str = "inline:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let (head, tail) = rest.split_at(at + MARK.len());
        out.push_str(head);
        out.push_str("<redacted>");
        let end = tail.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp:6005\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xx\r\na=sendonly\r\nm=video 6002 RTP/AVP 31\r\n";

    #[test]
    fn offer_rewrite_filters_orders_and_hides() {
        let o = Sdp::parse(OFFER.as_bytes()).unwrap();
        let allowed = vec!["PCMA".to_string(), "PCMU".into(), "telephone-event".into()];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 20000, allowed: &allowed, srtp_off: true };
        let mut origin = Origin { id: 7, version: 0 };
        let n = rewrite_offer(&o, &rw, &mut origin).unwrap();
        let text = String::from_utf8(n.to_bytes()).unwrap();
        assert!(text.contains("m=audio 20000 RTP/AVP 8 0 101\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 192.0.2.1"));
        assert!(!text.contains("10.0.0.1"));
        assert!(!text.contains("crypto"));
        assert!(!text.contains("a=rtcp:"));
        assert!(text.contains("a=sendonly"));
        assert!(text.contains("a=ptime:20"));
        assert!(text.contains("a=fmtp:101 0-15"));
        assert!(text.contains("m=video 0 RTP/AVP 31"));
        let r = o.remote().unwrap();
        assert_eq!(r.addr, Some("10.0.0.1:6000".parse().unwrap()));
        assert_eq!(r.rtcp_port, 6005);
    }

    #[test]
    fn answer_uses_offerer_numbers() {
        let o = Sdp::parse(b"v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n").unwrap();
        let a = Sdp::parse(b"v=0\r\no=b 1 1 IN IP4 2.2.2.2\r\ns=-\r\nc=IN IP4 2.2.2.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\n").unwrap();
        let allowed = vec!["PCMA".to_string(), "telephone-event".into()];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 30000, allowed: &allowed, srtp_off: true };
        let mut origin = Origin { id: 1, version: 0 };
        let n = rewrite_answer(&a, &o, &rw, &mut origin).unwrap();
        let t = String::from_utf8(n.to_bytes()).unwrap();
        assert!(t.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{t}");
        assert!(t.contains("a=rtpmap:101 telephone-event/8000"));
        assert!(t.contains("a=rtcp-mux"));
    }

    #[test]
    fn savp_only_and_no_codec_refused() {
        let o = Sdp::parse(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/SAVP 8\r\n").unwrap();
        let allowed = vec!["PCMA".to_string()];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 30000, allowed: &allowed, srtp_off: true };
        let mut origin = Origin { id: 1, version: 0 };
        assert_eq!(rewrite_offer(&o, &rw, &mut origin), Err(SdpError::SrtpOnly));
        let o = Sdp::parse(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 18\r\n").unwrap();
        assert_eq!(rewrite_offer(&o, &rw, &mut origin), Err(SdpError::NoCommonCodec));
    }
    // ------------------------------------------------------------------------------ SDES

    use xtrunk_config::SrtpPolicy;
    use xtrunk_srtp::format_sdes_inline;

    const K80: &str = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    fn savp_offer(cryptos: &[String]) -> Sdp {
        let mut t = String::from("v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        for c in cryptos {
            t.push_str(&format!("a=crypto:{c}\r\n"));
        }
        t.push_str("a=sendrecv\r\n");
        Sdp::parse(t.as_bytes()).unwrap()
    }

    fn prefs(policy: SrtpPolicy, suites: &[Suite]) -> SrtpPrefs {
        SrtpPrefs { policy, suites: suites.to_vec() }
    }

    fn gcm_line(tag: u32) -> String {
        format!("{tag} AEAD_AES_128_GCM {}", format_sdes_inline(&[7; 16], &[8; 12]))
    }

    #[test]
    fn suite_selection_follows_trunk_preference() {
        let o = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}"), gcm_line(2)]);
        let p = prefs(SrtpPolicy::Mandatory, &[Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80]);
        let l = accept_offer(&o, &p).unwrap().unwrap();
        assert_eq!((l.tag, l.keys.suite), (2, SrtpSuite::AeadAes128Gcm));
        assert_eq!(&l.keys.key[..16], &[7; 16]);
        assert_eq!(&l.keys.salt[..12], &[8; 12]);
        let p = prefs(SrtpPolicy::Optional, &[Suite::AesCm128HmacSha1_80]);
        let l = accept_offer(&o, &p).unwrap().unwrap();
        assert_eq!((l.tag, l.keys.suite), (1, SrtpSuite::AesCm128HmacSha1_80));
        assert_eq!(&l.keys.key[..4], b"=-n@");
        // SAVP with no allowed suite.
        let p = prefs(SrtpPolicy::Optional, &[Suite::AesCm128HmacSha1_32]);
        assert_eq!(accept_offer(&o, &p), Err(SdpError::NoAcceptableCrypto));
    }

    #[test]
    fn unusable_lines_are_skipped() {
        let o = savp_offer(&[
            format!("1 AES_CM_128_HMAC_SHA1_80 {K80}|2^20|1:4"),   // MKI
            format!("2 F8_128_HMAC_SHA1_80 {K80}"),                  // unknown suite
            "3 AES_CM_128_HMAC_SHA1_80 inline:!!!!".into(),          // bad base64
            format!("4 AES_CM_128_HMAC_SHA1_80 {K80} UNENCRYPTED_SRTP"), // unsupported param
            format!("5 AES_CM_128_HMAC_SHA1_80 {K80}|2^31"),          // lifetime: fine
        ]);
        let p = prefs(SrtpPolicy::Mandatory, &[Suite::AesCm128HmacSha1_80]);
        assert_eq!(accept_offer(&o, &p).unwrap().unwrap().tag, 5);
        let o = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}|2^20|1:4")]);
        assert_eq!(accept_offer(&o, &p), Err(SdpError::NoAcceptableCrypto));
        assert_eq!(accept_offer(&savp_offer(&[]), &p), Err(SdpError::NoAcceptableCrypto));
    }

    #[test]
    fn refusals_488() {
        let all = Suite::ALL;
        let savp = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}")]);
        let avp = Sdp::parse(OFFER.as_bytes()).unwrap(); // RTP/AVP (with a stray a=crypto)
        assert_eq!(accept_offer(&savp, &prefs(SrtpPolicy::Off, &all)), Err(SdpError::SrtpOnly));
        assert_eq!(accept_offer(&avp, &prefs(SrtpPolicy::Mandatory, &all)), Err(SdpError::SrtpRequired));
        assert_eq!(accept_offer(&avp, &prefs(SrtpPolicy::Optional, &all)), Ok(None));
        assert_eq!(accept_offer(&avp, &prefs(SrtpPolicy::Off, &all)), Ok(None));
        for e in [SdpError::SrtpOnly, SdpError::SrtpRequired, SdpError::NoAcceptableCrypto] {
            assert_eq!(e.status().0, 488);
            assert!(e.warning().is_some());
        }
        assert_eq!(SdpError::NoAcceptableCrypto.warning(), Some("no acceptable SRTP crypto"));
        assert_eq!(SdpError::NoCommonCodec.warning(), None);
    }

    #[test]
    fn fresh_keys_are_random_and_sized() {
        for s in Suite::ALL {
            let rs = ring_suite(s);
            let a = fresh_keys(rs).unwrap();
            let b = fresh_keys(rs).unwrap();
            assert_eq!(a.suite, rs);
            assert_ne!(a.key, b.key);
            assert_ne!(a.salt, b.salt);
            // Only the suite's lengths are used; the rest stays zero.
            assert!(a.key[s.key_len()..].iter().all(|b| *b == 0));
            assert!(a.salt[s.salt_len()..].iter().all(|b| *b == 0));
            assert!(a.key[..s.key_len()].iter().any(|b| *b != 0));
            assert_eq!(sdes_suite(rs), s);
        }
    }

    #[test]
    fn srtp_offer_and_answer_round_trip() {
        // We offer SRTP to a mandatory trunk: RTP/SAVP, one line per suite, fresh keys.
        let plain = Sdp::parse(OFFER.as_bytes()).unwrap();
        let allowed = vec!["PCMA".to_string(), "PCMU".into()];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 20000, allowed: &allowed, srtp_off: false };
        let mut origin = Origin { id: 7, version: 0 };
        let mut ours = rewrite_offer(&plain, &rw, &mut origin).unwrap();
        let suites = [Suite::AesCm128HmacSha1_80, Suite::AeadAes256Gcm];
        add_offer_crypto(&mut ours, &suites, None).unwrap();
        let text = String::from_utf8(ours.to_bytes()).unwrap();
        assert!(text.contains("m=audio 20000 RTP/SAVP 8 0\r\n"), "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(text.contains("a=crypto:2 AEAD_AES_256_GCM inline:"));
        assert!(text.find("a=crypto:2").unwrap() < text.find("a=sendonly").unwrap());
        // The caller's stray crypto line did not cross.
        assert!(!text.contains("inline:xx"));
        let offered = crypto_lines(&ours, 0);
        assert_eq!(offered.len(), 2);
        assert_ne!(offered[0].keys.key[..16], offered[1].keys.key[..16]);

        // The peer answers tag 2.
        let peer = fresh_keys(SrtpSuite::AeadAes256Gcm).unwrap();
        let mut ans = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/SAVP 8\r\n").unwrap();
        add_answer_crypto(&mut ans, 2, &peer);
        let c = answer_crypto(&ours, &ans).unwrap();
        assert_eq!(c.rx, Some(peer));
        assert_eq!(c.tx, Some(offered[1].keys));
        // Wrong suite for the tag, unknown tag, plain answer: refused.
        let mut bad = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/SAVP 8\r\n").unwrap();
        add_answer_crypto(&mut bad, 1, &peer);
        assert_eq!(answer_crypto(&ours, &bad), Err(SdpError::NoAcceptableCrypto));
        let mut bad = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/SAVP 8\r\n").unwrap();
        add_answer_crypto(&mut bad, 9, &peer);
        assert_eq!(answer_crypto(&ours, &bad), Err(SdpError::NoAcceptableCrypto));
        let plain_ans = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/AVP 8\r\n").unwrap();
        assert_eq!(answer_crypto(&ours, &plain_ans), Err(SdpError::NoAcceptableCrypto));
        // A plain offer: any crypto in the answer is ignored.
        let plain_ours = rewrite_offer(&plain, &rw, &mut origin).unwrap();
        assert_eq!(answer_crypto(&plain_ours, &ans), Ok(LegCrypto::default()));

        // A re-offer keeps our key for its suite and makes fresh ones for the others.
        let mut re = rewrite_offer(&plain, &rw, &mut origin).unwrap();
        add_offer_crypto(&mut re, &suites, Some(&offered[1].keys)).unwrap();
        let again = crypto_lines(&re, 0);
        assert_eq!(again[1].keys, offered[1].keys);
        assert_ne!(again[0].keys, offered[0].keys);
    }

    #[test]
    fn answering_an_srtp_offer_echoes_tag_with_our_key() {
        let offer = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}")]);
        let p = prefs(SrtpPolicy::Optional, &[Suite::AesCm128HmacSha1_80]);
        let (tag, c) = answer_offer_crypto(&offer, &p, &LegCrypto::default()).unwrap().unwrap();
        assert_eq!(tag, 1);
        let theirs = crypto_lines(&offer, 0)[0].keys;
        assert_eq!(c.rx, Some(theirs));
        let ours = c.tx.unwrap();
        assert_ne!(ours.key, theirs.key);
        // The callee's answer rewritten for the offerer keeps RTP/SAVP; add our line.
        let ans = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/AVP 8\r\n").unwrap();
        let allowed = vec!["PCMA".to_string()];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 30000, allowed: &allowed, srtp_off: false };
        let mut out = rewrite_answer(&ans, &offer, &rw, &mut Origin { id: 1, version: 0 }).unwrap();
        add_answer_crypto(&mut out, tag, &ours);
        let text = String::from_utf8(out.to_bytes()).unwrap();
        assert!(text.contains("m=audio 30000 RTP/SAVP 8\r\n"), "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(!text.contains(&K80[7..]), "the offerer's key must not be echoed");
        assert_eq!(crypto_lines(&out, 0)[0].keys, ours);
        // Re-offer with the same key: our key is kept; the peer re-keys: so do we.
        let (_, c2) = answer_offer_crypto(&offer, &p, &c).unwrap().unwrap();
        assert_eq!(c2, c);
        let rekeyed = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {}", format_sdes_inline(&[1; 16], &[2; 14]))]);
        let (_, c3) = answer_offer_crypto(&rekeyed, &p, &c).unwrap().unwrap();
        assert_ne!(c3.tx, c.tx);
        assert_ne!(c3.rx, c.rx);
        // Plain offer on an optional trunk: no crypto.
        let plain = Sdp::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(answer_offer_crypto(&plain, &p, &c), Ok(None));
    }

    #[test]
    fn offer_policy() {
        let p = |policy| prefs(policy, &[Suite::AesCm128HmacSha1_80]);
        assert!(!p(SrtpPolicy::Off).offer_srtp(true));
        assert!(!p(SrtpPolicy::Optional).offer_srtp(false));
        assert!(p(SrtpPolicy::Optional).offer_srtp(true));
        assert!(p(SrtpPolicy::Mandatory).offer_srtp(false));
        let mut t = xtrunk_config::Config::embedded_default().unwrap().trunks[0].clone();
        t.srtp_suites = vec!["AEAD_AES_128_GCM".into(), "AES_CM_128_HMAC_SHA1_32".into()];
        assert_eq!(SrtpPrefs::of(&t).suites, vec![Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_32]);
    }

    #[test]
    fn keys_are_redacted() {
        let o = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}|2^20 KDR=0"), gcm_line(2)]);
        let text = String::from_utf8(o.to_bytes()).unwrap();
        let r = redact_keys(&text);
        assert!(!r.contains("PS1uQCVe") && !r.contains("BwcH"), "{r}");
        assert!(r.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted> KDR=0\r\n"), "{r}");
        assert_eq!(r.matches("inline:<redacted>").count(), 2);
        assert_eq!(redact_keys("no keys"), "no keys");
        assert_eq!(redact_keys("x inline:"), "x inline:<redacted>");
        for dbg in [format!("{o:?}"), format!("{:?}", o.media[0]), format!("{:?}", crypto_lines(&o, 0))] {
            assert!(!dbg.contains("PS1uQCVe") && !dbg.contains("BwcH"), "{dbg}");
        }
    }
}
