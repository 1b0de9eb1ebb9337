//! Why the relay core dropped a packet, and a counter per reason.

/// Why a packet was dropped. Each reason has its own counter in [`DropCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No session owns the local port.
    UnknownPort,
    /// `len` exceeds the buffer, or the datagram is empty.
    BadLength,
    /// Not RTP/RTCP (STUN, DTLS, or garbage with a wrong first byte).
    Foreign,
    /// Looks like RTP but the header is truncated or invalid.
    MalformedRtp,
    /// Looks like RTCP (or arrived on an RTCP port) but the compound is invalid.
    MalformedRtcp,
    /// RTCP arrived on an RTP port of a leg without rtcp-mux.
    RtcpNotMuxed,
    /// The source is not the leg's peer and may not latch (see [`latch`](super::latch)).
    SourceMismatch,
    /// The payload type is not in the leg's map, or the other leg has no matching codec.
    UnmappedPayloadType,
    /// A telephone-event payload shorter than one event or not a multiple of 4 bytes.
    MalformedDtmf,
    /// Not an error: a telephone-event toward a leg without telephone-event, played into that
    /// leg's audio instead (`relay::inband`).
    DtmfToInband,
    /// A datagram on a T.38 leg that is not a valid UDPTL packet, or toward a leg that is not
    /// T.38.
    Udptl,
    /// The other leg's peer address is not known yet.
    NoDestination,
    /// SRTP/SRTCP authentication, replay check or decryption failed, or no room for the tag.
    Srtp,
    /// A payload to transcode (G.729 ↔ G.711) is not whole codec frames, would not fit the
    /// buffer, or the session has no codec state.
    Transcode,
    /// Not an error: audio held to be re-packetised to the other leg's longer ptime
    /// (`relay::reframe`); it leaves in a later packet.
    Reframing,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 15] = [
        Self::UnknownPort,
        Self::BadLength,
        Self::Foreign,
        Self::MalformedRtp,
        Self::MalformedRtcp,
        Self::RtcpNotMuxed,
        Self::SourceMismatch,
        Self::UnmappedPayloadType,
        Self::MalformedDtmf,
        Self::DtmfToInband,
        Self::Udptl,
        Self::NoDestination,
        Self::Srtp,
        Self::Transcode,
        Self::Reframing,
    ];

    /// A short snake_case name for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::UnknownPort => "unknown_port",
            Self::BadLength => "bad_length",
            Self::Foreign => "foreign",
            Self::MalformedRtp => "malformed_rtp",
            Self::MalformedRtcp => "malformed_rtcp",
            Self::RtcpNotMuxed => "rtcp_not_muxed",
            Self::SourceMismatch => "source_mismatch",
            Self::UnmappedPayloadType => "unmapped_payload_type",
            Self::MalformedDtmf => "malformed_dtmf",
            Self::DtmfToInband => "dtmf_to_inband",
            Self::Udptl => "udptl",
            Self::NoDestination => "no_destination",
            Self::Srtp => "srtp",
            Self::Transcode => "transcode",
            Self::Reframing => "reframing",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One counter per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounters {
    /// The count of one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(reason, count)` for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.get(r)))
    }

    pub(super) fn bump(&mut self, reason: DropReason) {
        self.counts[reason.index()] += 1;
    }
}
