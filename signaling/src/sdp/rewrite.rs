//! The offer/answer rewrite (RFC 3264) that anchors media on the relay, and the codec helpers.

use std::collections::HashMap;
use std::net::IpAddr;

use xtrunk_config::Codec as TrunkCodec;
use xtrunk_ring::msg::Codec;

use super::model::PtLines;
use super::{MediaDesc, Remote, Sdp, SdpError};

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
    pub allowed: &'a [TrunkCodec],
    /// SRTP off on the trunk the offer came from: refuse an RTP/SAVP offer ([`SdpError::SrtpOnly`]).
    /// The other side's `a=crypto` lines are never copied; see [`add_offer_crypto`](super::add_offer_crypto).
    pub srtp_off: bool,
}

fn is_codec(name: &str) -> bool {
    !name.eq_ignore_ascii_case("telephone-event") && !name.eq_ignore_ascii_case("CN")
}

pub(super) fn header_lines(ip: IpAddr, origin: &mut Origin) -> Vec<(u8, String)> {
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

/// Kept attributes of the relayed stream for the chosen payload types, `pts` as `(source pt,
/// emitted pt, name)`. The rtpmap/fmtp lines are looked up in an index built once.
fn stream_lines(src: &Sdp, i: usize, pts: &[(u8, u8, String)], mux: bool, dir: &str) -> Vec<(u8, String)> {
    let mut out = Vec::with_capacity(2 * pts.len() + 4);
    if let Some(m) = src.media.get(i) {
        let index = PtLines::of(m);
        for (spt, ept, name) in pts {
            let enc = index.rtpmap(m, *spt).map_or_else(|| format!("{name}/8000"), str::to_string);
            out.push((b'a', format!("rtpmap:{ept} {enc}")));
            if let Some(f) = index.fmtp(m, *spt) {
                out.push((b'a', format!("fmtp:{ept} {f}")));
            }
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

/// Case-insensitive look-up of encoding names in a payload list, giving the first entry's
/// payload type as a scan would: a scan for short lists (every normal SDP), a map built once for
/// long ones, so that matching two lists costs their lengths, not their product.
enum Names<'a> {
    Scan(&'a [(u8, String)]),
    Map(HashMap<String, u8>),
}

impl<'a> Names<'a> {
    const SCAN_MAX: usize = 16;

    fn of(list: &'a [(u8, String)]) -> Self {
        if list.len() <= Self::SCAN_MAX {
            return Names::Scan(list);
        }
        let mut m = HashMap::with_capacity(list.len());
        for (pt, n) in list {
            m.entry(n.to_ascii_lowercase()).or_insert(*pt);
        }
        Names::Map(m)
    }

    fn get(&self, name: &str) -> Option<u8> {
        match self {
            Names::Scan(l) => l.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(p, _)| *p),
            Names::Map(m) => m.get(&name.to_ascii_lowercase()).copied(),
        }
    }
}

/// Marks payload type `pt` as taken; false when it already was.
fn take(taken: &mut [bool; 128], pt: u8) -> bool {
    taken.get_mut(usize::from(pt)).is_some_and(|t| !std::mem::replace(t, true))
}

fn check_proto(m: &MediaDesc, srtp_off: bool) -> Result<(), SdpError> {
    if m.proto.contains("SAVP") && srtp_off {
        return Err(SdpError::SrtpOnly);
    }
    Ok(())
}

pub(super) fn declined(m: &MediaDesc) -> MediaDesc {
    MediaDesc { kind: m.kind.clone(), port: 0, proto: m.proto.clone(), fmts: m.fmts.clone(), lines: Vec::new() }
}

/// Rewrites an offer for the other side: relay address/port, allowed codecs in preference order
/// (the offerer's payload-type numbers kept). Returns the new SDP.
pub fn rewrite_offer(offer: &Sdp, rw: &Rewrite<'_>, origin: &mut Origin) -> Result<Sdp, SdpError> {
    let r = offer.remote()?;
    let i = r.index;
    check_proto(&offer.media[i], rw.srtp_off)?;
    let mut chosen: Vec<(u8, u8, String)> = Vec::new();
    let mut taken = [false; 128];
    for want in rw.allowed {
        if let Some((pt, name)) = r.payloads.iter().find(|(_, n)| n.eq_ignore_ascii_case(want.name())) {
            if take(&mut taken, *pt) {
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
pub fn rewrite_answer(answer: &Sdp, orig_offer: &Sdp, rw: &Rewrite<'_>, origin: &mut Origin) -> Result<Sdp, SdpError> {
    rewrite_answer_bridging(answer, orig_offer, rw, origin, false)
}

/// [`rewrite_answer`]; with `bridge`, an answer in the other G.711 law than the offerer's only
/// one (PCMU to a PCMA-only offer, or the reverse) is answered to the offerer in its own law:
/// the relay converts A↔µ between the legs (see [`negotiated`]). An answer in G.729 alone to a
/// G.711 offer (G.729 that [`offer_g729`] added) is always answered in the offerer's G.711: the
/// relay transcodes.
pub fn rewrite_answer_bridging(
    answer: &Sdp,
    orig_offer: &Sdp,
    rw: &Rewrite<'_>,
    origin: &mut Origin,
    bridge: bool,
) -> Result<Sdp, SdpError> {
    let offer_r = orig_offer.remote()?;
    let i = offer_r.index;
    let am = answer.media.get(i).ok_or(SdpError::NoAudio)?;
    let ans_payloads = answer.payloads(i);
    let offered = Names::of(&offer_r.payloads);
    let mut chosen: Vec<(u8, u8, String)> = Vec::new();
    let mut taken = [false; 128];
    for (apt, name) in &ans_payloads {
        // Only what this side may carry (an answer can only narrow our offer, but a peer may
        // answer outside it).
        if !rw.allowed.iter().any(|c| c.name().eq_ignore_ascii_case(name)) {
            continue;
        }
        if let Some(opt) = offered.get(name) {
            if take(&mut taken, opt) {
                chosen.push((*apt, opt, name.clone()));
            }
        }
    }
    let mut bridged = None;
    if !chosen.iter().any(|(_, _, n)| is_codec(n)) {
        let law = g711_bridge(&offer_r.payloads, &ans_payloads, bridge)
            .filter(|(_, law)| rw.allowed.iter().any(|c| c.name().eq_ignore_ascii_case(law)));
        if let Some((opt, law)) = law {
            if take(&mut taken, opt) {
                chosen.insert(0, (opt, opt, law.to_string()));
                bridged = Some((opt, law));
            }
        }
    }
    if am.port == 0 || !chosen.iter().any(|(_, _, n)| is_codec(n)) {
        return Err(SdpError::NoCommonCodec);
    }
    let mut lines = stream_lines(answer, i, &chosen, offer_r.rtcp_mux, answer.direction(i));
    if let Some((opt, law)) = bridged {
        // The bridged entry describes the offerer's law, not the answer's line of that number.
        let (map, fmtp) = (format!("rtpmap:{opt} "), format!("fmtp:{opt} "));
        lines.retain(|(_, l)| !l.starts_with(&fmtp));
        for (_, l) in lines.iter_mut().filter(|(_, l)| l.starts_with(&map)) {
            *l = format!("rtpmap:{opt} {law}/8000");
        }
    }
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
/// When they share no audio codec but one side has PCMA and the other PCMU, or one G.711 and
/// the other G.729, `side` keeps its codec: the relay converts between the legs.
pub fn negotiated(side: &Remote, other: &Remote) -> Remote {
    let names = Names::of(&other.payloads);
    let mut r = side.clone();
    r.payloads.retain(|(_, n)| names.get(n).is_some());
    if !r.payloads.iter().any(|(_, n)| is_codec(n)) {
        if let Some((pt, law)) = g711_bridge(&side.payloads, &other.payloads, true) {
            r.payloads.insert(0, (pt, law.to_string()));
        }
    }
    r
}

/// `side`'s codec (its payload type and name) when `other` lacks it but has one the relay can
/// convert to: the other G.711 law (A↔µ, only with `laws`), or G.729 ↔ G.711 (transcoding).
fn g711_bridge(side: &[(u8, String)], other: &[(u8, String)], laws: bool) -> Option<(u8, &'static str)> {
    let has = |l: &[(u8, String)], n: &str| l.iter().find(|(_, x)| x.eq_ignore_ascii_case(n)).map(|(p, _)| *p);
    const PAIRS: [(&str, &str, bool); 6] = [
        ("PCMA", "PCMU", true),
        ("PCMU", "PCMA", true),
        ("PCMA", "G729", false),
        ("PCMU", "G729", false),
        ("G729", "PCMA", false),
        ("G729", "PCMU", false),
    ];
    for (mine, theirs, law) in PAIRS {
        if law && !laws {
            continue;
        }
        if let (Some(pt), Some(_), None) = (has(side, mine), has(other, theirs), has(other, mine)) {
            return Some((pt, mine));
        }
    }
    None
}

/// The `a=fmtp` parameters of `pt` in media section `m`, if any.
pub fn fmtp_of(m: &MediaDesc, pt: u8) -> Option<String> {
    let key = format!("fmtp:{pt} ");
    m.lines.iter().find_map(|(_, l)| l.strip_prefix(&key).map(str::to_string))
}

/// Adds telephone-event/8000 to our SDP `s` when its audio stream lacks it: as payload type
/// `pt` (with `fmtp`) when given and free, else the first free of 101, 96..=127 (`0-15`). For a
/// leg whose DTMF the relay interworks with an in-band (`dtmf = "inband"`) leg.
pub fn add_telephone_event(s: &mut Sdp, pt: Option<u8>, fmtp: Option<&str>) {
    let Ok(r) = s.remote() else { return };
    if r.payloads.iter().any(|(_, n)| n.eq_ignore_ascii_case("telephone-event")) {
        return;
    }
    let free = |p: &u8| !r.payloads.iter().any(|(q, _)| q == p);
    let Some(pt) = pt.filter(free).or_else(|| std::iter::once(101).chain(96..=127).find(free)) else { return };
    let Some(m) = s.media.get_mut(r.index) else { return };
    m.fmts.push(pt.to_string());
    let line =
        m.lines.iter().rposition(|(_, l)| l.starts_with("rtpmap:") || l.starts_with("fmtp:")).map_or(0, |k| k + 1);
    m.lines.insert(line, (b'a', format!("fmtp:{pt} {}", fmtp.unwrap_or("0-15"))));
    m.lines.insert(line, (b'a', format!("rtpmap:{pt} telephone-event/8000")));
}

/// Adds G.729 (payload type 18, `annexb=no`) to our offer `s` when `allowed` (the trunk the
/// offer goes to) lists G.729 and the stream lacks it but carries G.711, which the relay
/// transcodes to and from G.729. Its place follows the trunk's preference order.
pub fn offer_g729(s: &mut Sdp, allowed: &[TrunkCodec]) {
    let Some(rank_729) = allowed.iter().position(|c| *c == TrunkCodec::G729) else { return };
    let Ok(r) = s.remote() else { return };
    let named = |n: &str| r.payloads.iter().any(|(_, x)| x.eq_ignore_ascii_case(n));
    if named("G729") || r.payloads.iter().any(|(pt, _)| *pt == 18) || !(named("PCMA") || named("PCMU")) {
        return;
    }
    let rank = |n: &str| allowed.iter().position(|c| c.name().eq_ignore_ascii_case(n)).unwrap_or(usize::MAX);
    let at = r.payloads.iter().take_while(|(_, n)| rank(n) < rank_729).count();
    let Some(m) = s.media.get_mut(r.index) else { return };
    m.fmts.insert(at.min(m.fmts.len()), "18".into());
    let line =
        m.lines.iter().rposition(|(_, l)| l.starts_with("rtpmap:") || l.starts_with("fmtp:")).map_or(0, |k| k + 1);
    m.lines.insert(line, (b'a', "fmtp:18 annexb=no".into()));
    m.lines.insert(line, (b'a', "rtpmap:18 G729/8000".into()));
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
    use crate::sdp::OFFER;

    #[test]
    fn g729_is_offered_to_a_trunk_that_allows_it_and_its_answer_bridged() {
        use xtrunk_config::Codec as C;
        let o = Sdp::parse(b"v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n").unwrap();
        let caller = vec![C::Pcma, C::TelephoneEvent];
        let rw = Rewrite { ip: "10.0.0.1".parse().unwrap(), port: 20000, allowed: &caller, srtp_off: false };
        let mut origin = Origin { id: 1, version: 0 };
        let mut ours = rewrite_offer(&o, &rw, &mut origin).unwrap();
        // The carrier prefers G.729: it comes first, with its rtpmap and annexb=no.
        offer_g729(&mut ours, &[C::G729, C::Pcma, C::TelephoneEvent]);
        let r = ours.remote().unwrap();
        let names: Vec<&str> = r.payloads.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["G729", "PCMA", "telephone-event"]);
        assert!(String::from_utf8(ours.to_bytes()).unwrap().contains("a=fmtp:18 annexb=no\r\n"));
        // After G.711 by preference; not added twice; not added to a trunk without G.729.
        let mut late = rewrite_offer(&o, &rw, &mut origin).unwrap();
        offer_g729(&mut late, &[C::Pcma, C::TelephoneEvent, C::G729]);
        offer_g729(&mut late, &[C::Pcma, C::TelephoneEvent, C::G729]);
        let names: Vec<String> = late.remote().unwrap().payloads.into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["PCMA", "telephone-event", "G729"]);
        let mut none = rewrite_offer(&o, &rw, &mut origin).unwrap();
        offer_g729(&mut none, &caller);
        assert_eq!(none.remote().unwrap().payloads.len(), 2);
        // The carrier answers G.729 only: the caller gets its PCMA, and the legs disagree.
        let ans = Sdp::parse(b"v=0\r\no=b 1 1 IN IP4 2.2.2.2\r\ns=-\r\nc=IN IP4 2.2.2.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n").unwrap();
        let back = rewrite_answer_bridging(&ans, &o, &rw, &mut origin, false).unwrap();
        let names: Vec<String> = back.remote().unwrap().payloads.into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["PCMA", "telephone-event"]);
        let leg0 = negotiated(&o.remote().unwrap(), &ans.remote().unwrap());
        assert_eq!(leg0.payloads[0], (8, "PCMA".to_string()));
        assert!(!leg0.payloads.iter().any(|(_, n)| n == "G729"));
    }

    #[test]
    fn offer_rewrite_filters_orders_and_hides() {
        let o = Sdp::parse(OFFER.as_bytes()).unwrap();
        let allowed =
            vec![xtrunk_config::Codec::Pcma, xtrunk_config::Codec::Pcmu, xtrunk_config::Codec::TelephoneEvent];
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
        let allowed = vec![xtrunk_config::Codec::Pcma, xtrunk_config::Codec::TelephoneEvent];
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
        let allowed = vec![xtrunk_config::Codec::Pcma];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 30000, allowed: &allowed, srtp_off: true };
        let mut origin = Origin { id: 1, version: 0 };
        assert_eq!(rewrite_offer(&o, &rw, &mut origin), Err(SdpError::SrtpOnly));
        let o = Sdp::parse(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 18\r\n").unwrap();
        assert_eq!(rewrite_offer(&o, &rw, &mut origin), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn telephone_event_is_matched_by_rate_too() {
        // A wideband softphone's offer: DTMF at 48 kHz, 16 kHz and 8 kHz beside 8 kHz audio.
        let o = Sdp::parse(b"v=0\r\no=a 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 110 102 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:102 telephone-event/16000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n").unwrap();
        let allowed = vec![xtrunk_config::Codec::Pcma, xtrunk_config::Codec::TelephoneEvent];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 30000, allowed: &allowed, srtp_off: true };
        let mut origin = Origin { id: 1, version: 0 };
        let n = rewrite_offer(&o, &rw, &mut origin).unwrap();
        let t = String::from_utf8(n.to_bytes()).unwrap();
        assert!(t.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{t}");
        assert!(
            t.contains("a=rtpmap:101 telephone-event/8000") && !t.contains("/48000") && !t.contains("/16000"),
            "{t}"
        );
        // An answer that picks the 48 kHz one matches nothing 8 kHz: DTMF is not negotiated.
        let a = Sdp::parse(b"v=0\r\no=b 1 1 IN IP4 2.2.2.2\r\ns=-\r\nc=IN IP4 2.2.2.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/48000\r\n").unwrap();
        let t = String::from_utf8(rewrite_answer(&a, &o, &rw, &mut origin).unwrap().to_bytes()).unwrap();
        assert!(t.contains("m=audio 30000 RTP/AVP 8\r\n"), "{t}");
        // Stereo PCMA is not PCMA.
        let s =
            Sdp::parse(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 PCMA/8000/2\r\n").unwrap();
        assert_eq!(rewrite_offer(&s, &rw, &mut origin), Err(SdpError::NoCommonCodec));
    }
}
