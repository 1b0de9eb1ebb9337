//! T.38 fax (`m=image <port> udptl t38`, RFC 3362 / T.38 Annex D) through the relay: a
//! re-offer of T.38 is rewritten onto the relay like audio (our address and the leg's port, its
//! `T38*` attributes kept, other streams declined), and both legs' session specs list
//! `Codec::T38`, so the datapath relays their UDPTL unchanged. A leg that refuses T.38 (a
//! non-2xx) leaves the call on its audio, moved off G.729 if it was transcoded (`call::fax`).

use std::net::{IpAddr, SocketAddr};

use xtrunk_ring::msg::{Codec, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap};

use super::rewrite::{declined, header_lines, Origin};
use super::{MediaDesc, Sdp, SdpError};

/// The first active T.38 stream of `s`.
pub fn t38_index(s: &Sdp) -> Option<usize> {
    s.media.iter().position(|m| {
        m.kind.eq_ignore_ascii_case("image")
            && m.port != 0
            && m.proto.eq_ignore_ascii_case("udptl")
            && m.fmts.iter().any(|f| f.eq_ignore_ascii_case("t38"))
    })
}

/// Our SDP for the other side: `layout`'s media sections (an offer's, so that an answer keeps
/// them) with section `at` the T.38 stream of `src` section `from` on the relay's `ip`/`port`,
/// every other section declined.
pub fn rewrite_t38(
    src: &Sdp,
    from: usize,
    layout: &Sdp,
    at: usize,
    ip: IpAddr,
    port: u16,
    origin: &mut Origin,
) -> Result<Sdp, SdpError> {
    let m = src.media.get(from).ok_or(SdpError::NoAudio)?;
    let lines = m
        .lines
        .iter()
        .filter(|(t, l)| *t == b'a' && l.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("t38")))
        .cloned()
        .collect();
    let mut stream =
        Some(MediaDesc { kind: "image".into(), port, proto: "udptl".into(), fmts: vec!["t38".into()], lines });
    let media = layout
        .media
        .iter()
        .enumerate()
        .map(|(j, m)| if j == at { stream.take().unwrap_or_else(|| declined(m)) } else { declined(m) })
        .collect();
    Ok(Sdp { session: header_lines(ip, origin), media })
}

/// The session-spec leg for a peer whose SDP `s` has its T.38 stream at `i`.
pub fn t38_leg(s: &Sdp, i: usize, local: SocketAddr, latch: LatchPolicy, signal_ip: Option<IpAddr>) -> Option<LegSpec> {
    let ip = s.conn_ip(i)?;
    let port = s.media.get(i)?.port;
    let mut pt_map = PtMap::new();
    pt_map.push(PtEntry { pt: 0, codec: Codec::T38 });
    Some(LegSpec {
        local,
        remote: (!ip.is_unspecified()).then(|| SocketAddr::new(ip, port)),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch,
        signal_ip,
        pt_map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    })
}
