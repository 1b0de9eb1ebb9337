//! SDP (RFC 4566) parsing and the offer/answer rewrite (RFC 3264) that anchors media on the relay.
//!
//! Sans-IO: text in, text and negotiated facts out. Only the first audio stream is relayed; other
//! streams are declined (port 0) so both sides keep the same m-line count. Each side sees only
//! the relay's address and port, our own `o=` line, codecs filtered to the trunks' allowed list in
//! preference order, its own payload-type numbers, and `ptime`/direction attributes. ICE, `a=rtcp`
//! and (with SRTP off) `a=crypto` are removed.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use xtrunk_ring::msg::{Codec, PtEntry, PtMap};

/// A parsed session description: session-level lines and media sections, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines (`type`, value).
    pub session: Vec<(u8, String)>,
    /// Media sections.
    pub media: Vec<MediaDesc>,
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        let mut s = String::with_capacity(256);
        for (t, v) in &self.session {
            let _ = write!(s, "{}={}\r\n", *t as char, v);
        }
        for m in &self.media {
            let _ = write!(s, "m={} {} {} {}\r\n", m.kind, m.port, m.proto, m.fmts.join(" "));
            for (t, v) in &m.lines {
                let _ = write!(s, "{}={}\r\n", *t as char, v);
            }
        }
        s.into_bytes()
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
    /// SRTP off on the receiving trunk: strip `a=crypto`, refuse SAVP-only.
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
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(j, m)| {
            if j != i {
                return declined(m);
            }
            MediaDesc {
                kind: "audio".into(),
                port: rw.port,
                proto: "RTP/AVP".into(),
                fmts: chosen.iter().map(|(_, p, _)| p.to_string()).collect(),
                lines: stream_lines(offer, i, &chosen, r.rtcp_mux, r.direction),
            }
        })
        .collect();
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
    let media = orig_offer
        .media
        .iter()
        .enumerate()
        .map(|(j, m)| {
            if j != i {
                return declined(m);
            }
            MediaDesc {
                kind: "audio".into(),
                port: rw.port,
                proto: m.proto.clone(),
                fmts: chosen.iter().map(|(_, p, _)| p.to_string()).collect(),
                lines: stream_lines(answer, i, &chosen, offer_r.rtcp_mux, answer.direction(i)),
            }
        })
        .collect();
    Ok(Sdp { session: header_lines(rw.ip, origin), media })
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
}
