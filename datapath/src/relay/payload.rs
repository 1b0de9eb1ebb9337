//! What the relay does to an RTP payload on its way to the other leg: pass, renumber, convert
//! A↔µ, transcode G.729 ↔ G.711, or play a telephone-event into the other leg's audio.

use xtrunk_ring::msg::{Codec, PtMap, SessionSpec};

use super::transcode::{self, Law, Transcoder};
use super::{g711, DropReason};

/// What to do to an RTP payload on its way to the other leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PayloadAction {
    Pass,
    Rewrite(u8),
    AlawToUlaw(u8),
    UlawToAlaw(u8),
    /// Decode G.729, send G.711 of this law under this payload type.
    G729ToG711(u8, Law),
    /// Encode G.711 of this law, send G.729 under this payload type.
    G711ToG729(u8, Law),
    /// A telephone-event toward a leg without telephone-event: synthesised into that leg's
    /// audio (`relay::inband`), not forwarded.
    ToInband,
}

impl PayloadAction {
    pub(super) const fn transcodes(self) -> bool {
        matches!(self, Self::G729ToG711(..) | Self::G711ToG729(..))
    }
}

/// The G.711 law of a codec, if it is G.711.
pub(super) fn law_of(codec: Option<Codec>) -> Option<Law> {
    match codec {
        Some(Codec::Pcma) => Some(Law::A),
        Some(Codec::Pcmu) => Some(Law::U),
        _ => None,
    }
}

/// The codec of what `action` sends, for a payload of `codec`.
pub(super) fn output_codec(action: PayloadAction, codec: Option<Codec>) -> Option<Codec> {
    match action {
        PayloadAction::Pass | PayloadAction::Rewrite(_) => codec,
        PayloadAction::AlawToUlaw(_) | PayloadAction::G729ToG711(_, Law::U) => Some(Codec::Pcmu),
        PayloadAction::UlawToAlaw(_) | PayloadAction::G729ToG711(_, Law::A) => Some(Codec::Pcma),
        PayloadAction::G711ToG729(..) => Some(Codec::G729),
        PayloadAction::ToInband => None,
    }
}

/// Does a session with this spec relay any payload type through the G.729 codec? Only then does
/// it get a [`Transcoder`] (legs that agree on a codec are never transcoded).
pub fn needs_transcoder(spec: &SessionSpec) -> bool {
    [0, 1].iter().any(|&i| {
        let (mine, theirs) = (&spec.legs[i].pt_map, &spec.legs[1 - i].pt_map);
        mine.iter().any(|e| matches!(payload_action(mine, theirs, e.pt), Ok((a, _)) if a.transcodes()))
    })
}

/// Decides what happens to an RTP packet's payload type on its way from a leg negotiating `mine`
/// to one negotiating `theirs`.
pub(super) fn payload_action(
    mine: &PtMap,
    theirs: &PtMap,
    pt: u8,
) -> Result<(PayloadAction, Option<Codec>), DropReason> {
    if mine.is_empty() || theirs.is_empty() {
        return Ok((PayloadAction::Pass, mine.by_pt(pt)));
    }
    let codec = mine.by_pt(pt).ok_or(DropReason::UnmappedPayloadType)?;
    if let Some(out) = theirs.by_codec(codec) {
        let a = if out == pt { PayloadAction::Pass } else { PayloadAction::Rewrite(out) };
        return Ok((a, Some(codec)));
    }
    // G.711 across laws first (a table lookup), then through G.729 (the codec).
    let g729 = |law| theirs.by_codec(Codec::G729).map(|o| (PayloadAction::G711ToG729(o, law), Some(codec)));
    match codec {
        Codec::Pcma => {
            theirs.by_codec(Codec::Pcmu).map(|o| (PayloadAction::AlawToUlaw(o), Some(codec))).or_else(|| g729(Law::A))
        }
        Codec::Pcmu => {
            theirs.by_codec(Codec::Pcma).map(|o| (PayloadAction::UlawToAlaw(o), Some(codec))).or_else(|| g729(Law::U))
        }
        Codec::G729 => theirs
            .by_codec(Codec::Pcmu)
            .map(|o| (PayloadAction::G729ToG711(o, Law::U), Some(codec)))
            .or_else(|| theirs.by_codec(Codec::Pcma).map(|o| (PayloadAction::G729ToG711(o, Law::A), Some(codec)))),
        Codec::TelephoneEvent => Some((PayloadAction::ToInband, Some(codec))),
        _ => None,
    }
    .ok_or(DropReason::UnmappedPayloadType)
}

/// Whether the result of `action` on a payload of `plen` bytes after a `hdr`-byte header fits a
/// buffer of `room` bytes and the payload is whole codec frames.
pub(super) fn fits(action: PayloadAction, hdr: usize, plen: usize, room: usize) -> bool {
    match action {
        PayloadAction::G729ToG711(..) => transcode::g729_frames(plen)
            .is_ok_and(|(n, sid)| hdr + (n + usize::from(sid)) * crate::codec::bcg729::FRAME_SAMPLES <= room),
        PayloadAction::G711ToG729(..) => transcode::g711_frames(plen).is_ok(),
        _ => true,
    }
}

/// Applies `action` to the RTP packet in `buf` (header `hdr` bytes, payload `plen` bytes after
/// it); returns the new payload length when it changed (transcoding; padding is then gone),
/// `None` when the packet keeps its length.
pub(super) fn transform(
    action: PayloadAction,
    buf: &mut [u8],
    hdr: usize,
    plen: usize,
    xcode: Option<&mut Transcoder>,
) -> Result<Option<usize>, DropReason> {
    let set_pt = |buf: &mut [u8], pt: u8| buf[1] = (buf[1] & 0x80) | (pt & 0x7F);
    let payload = buf.get_mut(hdr..hdr + plen).ok_or(DropReason::BadLength)?;
    match action {
        PayloadAction::Pass | PayloadAction::ToInband => {}
        PayloadAction::Rewrite(pt) => set_pt(buf, pt),
        PayloadAction::AlawToUlaw(pt) => {
            g711::alaw_to_ulaw(payload);
            set_pt(buf, pt);
        }
        PayloadAction::UlawToAlaw(pt) => {
            g711::ulaw_to_alaw(payload);
            set_pt(buf, pt);
        }
        PayloadAction::G729ToG711(pt, law) | PayloadAction::G711ToG729(pt, law) => {
            let x = xcode.ok_or(DropReason::Transcode)?;
            let r = if let PayloadAction::G729ToG711(..) = action {
                x.g729_to_g711(buf, hdr, plen, law)
            } else {
                x.g711_to_g729(buf, hdr, plen, law)
            };
            let n = r.map_err(|_| DropReason::Transcode)?;
            set_pt(buf, pt);
            // The new payload has no padding: clear P (RFC 3550 §5.1).
            buf[0] &= !0x20;
            return Ok(Some(n));
        }
    }
    Ok(None)
}
