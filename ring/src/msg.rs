//! The messages carried by the session ring, as plain Rust types.
//!
//! These are the *domain* types both processes program against. Their fixed-size `#[repr(C)]` wire
//! form and the validating decoder live in [`crate::wire`]: nothing read from shared memory reaches
//! these types without passing that decoder.
//!
//! Direction: [`Command`]s flow signaling → datapath, [`Event`]s flow datapath → signaling.

use std::net::{IpAddr, SocketAddr};

/// Identifies one media session (one call's media between two legs). Chosen by signaling, unique
/// for the lifetime of the shared-memory file. Zero is never a valid id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A codec the relay knows by name. Payload-type numbers are per leg (see [`PtMap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// RFC 4733 telephone-event (DTMF).
    TelephoneEvent,
    /// G.722.
    G722,
    /// G.729.
    G729,
    /// Opus.
    Opus,
    /// RFC 3389 comfort noise.
    Cn,
    /// T.38 fax over UDPTL (`m=image <port> udptl t38`). A leg whose map lists it carries UDPTL
    /// datagrams, not RTP (relayed unchanged to a leg that lists it too); its payload-type
    /// number is not used on the wire (0 by convention).
    T38,
}

/// One payload type negotiated on a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtEntry {
    /// RTP payload type number (0..=127).
    pub pt: u8,
    /// What it carries.
    pub codec: Codec,
}

/// Most payload types a leg may carry.
pub const MAX_PT: usize = 8;

/// The payload types one leg negotiated. An empty map means "pass every payload type unchanged".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PtMap {
    len: u8,
    entries: [Option<PtEntry>; MAX_PT],
}

impl PtMap {
    /// An empty map (pass-through).
    pub const fn new() -> Self {
        Self { len: 0, entries: [None; MAX_PT] }
    }

    /// Adds an entry; returns `false` (and changes nothing) if the map is full or the payload type
    /// is already present or above 127.
    pub fn push(&mut self, entry: PtEntry) -> bool {
        if usize::from(self.len) >= MAX_PT || entry.pt > 127 || self.by_pt(entry.pt).is_some() {
            return false;
        }
        self.entries[usize::from(self.len)] = Some(entry);
        self.len += 1;
        true
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = PtEntry> + '_ {
        self.entries.iter().flatten().copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when no payload type is listed (pass-through).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The codec carried by payload type `pt`, if listed.
    pub fn by_pt(&self, pt: u8) -> Option<Codec> {
        self.iter().find(|e| e.pt == pt).map(|e| e.codec)
    }

    /// The payload type this leg uses for `codec`, if listed.
    pub fn by_codec(&self, codec: Codec) -> Option<u8> {
        self.iter().find(|e| e.codec == codec).map(|e| e.pt)
    }

    /// The raw entry array (`Some` for the first [`len`](Self::len) entries, `None` after):
    /// lets the wire encoder copy the map without iterator overhead.
    #[inline]
    pub(crate) const fn raw_entries(&self) -> &[Option<PtEntry>; MAX_PT] {
        &self.entries
    }

    /// A map from parts the wire decoder has already checked: `len ≤ MAX_PT`, `entries[..len]`
    /// all `Some` with distinct payload types ≤ 127, the rest `None` (the invariants `push`
    /// keeps). Saves re-checking every entry with `push` (quadratic duplicate search).
    #[inline]
    pub(crate) fn from_checked_parts(len: u8, entries: [Option<PtEntry>; MAX_PT]) -> Self {
        debug_assert!(usize::from(len) <= MAX_PT);
        debug_assert!(entries.iter().enumerate().all(|(i, e)| e.is_some() == (i < usize::from(len))));
        Self { len, entries }
    }
}

/// How a leg learns the address its peer really sends from (symmetric RTP, NAT traversal).
///
/// A leg's peer is its SDP address ([`LegSpec::remote`]) until the relay *latches* to another
/// source. Packets from any source other than the peer are dropped and counted, never relayed and
/// never answered. `Once` and `Follow` latch only under the NAT-aware rule of the relay core
/// (`xtrunk_datapath::relay`): the new source's IP is the SDP address's IP or the leg's
/// [`LegSpec::signal_ip`], the leg is within its latch window (the first 2 s after its first
/// accepted packet, and never after a packet from the SDP address itself), and the new source
/// carries the SSRC already seen on the leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LatchPolicy {
    /// Latch at most once, to the first source allowed by the NAT-aware rule, then keep it.
    #[default]
    Once,
    /// Like `Once`, but re-latch to each newer allowed source while the latch window is open.
    Follow,
    /// Accept only packets from the SDP address; drop and count the rest.
    Strict,
}

/// SRTP crypto suite (RFC 4568 names in the comments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES_CM_128_HMAC_SHA1_80
    AesCm128HmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32
    AesCm128HmacSha1_32,
    /// AEAD_AES_128_GCM (RFC 7714)
    AeadAes128Gcm,
    /// AEAD_AES_256_GCM (RFC 7714)
    AeadAes256Gcm,
}

impl SrtpSuite {
    /// Master key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 | Self::AeadAes128Gcm => 16,
            Self::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes.
    pub const fn salt_len(self) -> usize {
        match self {
            Self::AesCm128HmacSha1_80 | Self::AesCm128HmacSha1_32 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }
}

/// Master key and salt of one SRTP direction. Only the first `suite.key_len()` / `salt_len()`
/// bytes are meaningful; the rest are zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite.
    pub suite: SrtpSuite,
    /// Master key (left-aligned).
    pub key: [u8; 32],
    /// Master salt (left-aligned).
    pub salt: [u8; 14],
}

impl std::fmt::Debug for SrtpKeys {
    // Keys never appear in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys").field("suite", &self.suite).finish_non_exhaustive()
    }
}

/// SRTP on one leg: `rx` unprotects what the leg's peer sends us, `tx` protects what we send it.
/// `None` in both is plain RTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LegCrypto {
    /// Keys for packets received on this leg (the peer's keys from its SDP).
    pub rx: Option<SrtpKeys>,
    /// Keys for packets sent on this leg (our keys from our SDP).
    pub tx: Option<SrtpKeys>,
}

/// One leg of a session: the relay's local port and what it knows of the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegSpec {
    /// The relay's local RTP address for this leg (IP the peer sends to, even port from the pool).
    /// RTCP uses port + 1 unless `rtcp_mux`.
    pub local: SocketAddr,
    /// The peer's RTP address from its SDP; `None` until known (e.g. before the answer).
    pub remote: Option<SocketAddr>,
    /// The peer's RTCP port if its SDP said (`a=rtcp`), else 0 meaning RTP port + 1.
    pub remote_rtcp_port: u16,
    /// RTP and RTCP share the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// Latching policy for this leg.
    pub latch: LatchPolicy,
    /// The IP the leg's SIP came from (caller leg: its INVITE's source; callee leg: the trunk
    /// target), `None` if unknown. Besides the SDP address's IP, the only IP a leg may latch to.
    pub signal_ip: Option<IpAddr>,
    /// Payload types negotiated on this leg.
    pub pt_map: PtMap,
    /// SRTP on this leg.
    pub crypto: LegCrypto,
    /// The packet duration this leg's peer asked for (`a=ptime`), in ms: a multiple of 10 in
    /// 10..=[`MAX_PTIME_MS`], or 0 when it said none. When both legs state one and they differ,
    /// the relay re-packetises audio toward this leg to it.
    pub ptime_ms: u8,
}

/// Largest [`LegSpec::ptime_ms`].
pub const MAX_PTIME_MS: u8 = 120;

/// Whether `ms` is a valid [`LegSpec::ptime_ms`].
pub const fn valid_ptime(ms: u8) -> bool {
    ms == 0 || (ms <= MAX_PTIME_MS && ms.is_multiple_of(10))
}

/// Everything the datapath needs to relay one call's media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// The session.
    pub id: SessionId,
    /// Leg 0 (usually the customer/PBX side) and leg 1 (usually the carrier side).
    pub legs: [LegSpec; 2],
    /// Raise [`Event::MediaTimeout`] (`leg: None`) when no packet arrived on either leg for this
    /// long; 0 = never.
    pub media_timeout_ms: u32,
    /// Per leg: raise [`Event::MediaTimeout`] (`leg: Some(i)`) when leg `i` received neither RTP
    /// nor RTCP for this long while the other leg did (one-way media); 0 = never. RTCP alone
    /// keeps a leg alive (a leg on hold still sends reports). Each Update restarts the count.
    pub leg_timeout_ms: [u32; 2],
    /// May the datapath forward this session in the XDP program (no payload work needed)?
    pub allow_fast_path: bool,
}

/// Signaling → datapath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create a session. Answered by [`Event::Created`] or [`Event::Error`].
    Create(SessionSpec),
    /// Replace a session's spec (re-INVITE, answer arrived). Local ports may not change.
    /// Answered by [`Event::Updated`] or [`Event::Error`].
    Update(SessionSpec),
    /// Delete a session. Answered by [`Event::Deleted`] with final stats, or [`Event::Error`].
    Delete(SessionId),
    /// Report every session held: one [`Event::Session`] each, then [`Event::DumpDone`].
    /// A restarted signaling process sends this to recover its table.
    Dump {
        /// Echoed in [`Event::DumpDone`].
        token: u64,
    },
}

/// Counters of one direction of one leg (what the relay received on that leg).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// RTP packets received and accepted.
    pub packets: u64,
    /// RTP payload+header bytes received and accepted.
    pub bytes: u64,
    /// Packets expected minus received (RFC 3550 A.3), clamped at 0.
    pub lost: u64,
    /// Packets that arrived with a sequence number lower than the highest seen.
    pub reordered: u64,
    /// Packets seen twice.
    pub duplicates: u64,
    /// Interarrival jitter (RFC 3550 A.8), in RTP timestamp units.
    pub jitter: u32,
    /// RTCP packets received and accepted.
    pub rtcp_packets: u64,
    /// Packets dropped on this leg for any reason (malformed, wrong source, SRTP failure, ...).
    pub dropped: u64,
    /// Of `dropped`: packets from a source that is not the leg's peer and may not latch.
    pub rejected_sources: u64,
    /// Time of the last accepted packet, in the datapath's monotonic milliseconds; 0 = none yet.
    pub last_rx_ms: u64,
    /// ITU-T G.107 E-model R-factor of the stream, in tenths (0..=1000); 0 = not computed (no
    /// audio received, or a codec without G.113 impairment values).
    pub r_x10: u16,
    /// MOS-CQE from that R-factor, in hundredths (100..=450); 0 = not computed.
    pub mos_x100: u16,
}

/// Largest valid [`StreamStats::r_x10`].
pub const MAX_R_X10: u16 = 1000;
/// Largest valid [`StreamStats::mos_x100`].
pub const MAX_MOS_X100: u16 = 450;

/// Why the datapath refused a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// A local port lies outside the configured media range (`port` names it).
    PortOutOfRange,
    /// A local port is already used by another session (`port` names it).
    PortInUse,
    /// Update/Delete of a session the datapath does not hold.
    UnknownSession,
    /// Create of a session id that already exists.
    DuplicateSession,
    /// The spec is inconsistent (e.g. local ports changed on Update, bad SRTP key).
    InvalidSpec,
    /// The datapath cannot hold more sessions.
    CapacityExhausted,
    /// Binding a socket for `port` failed.
    BindFailed,
}

/// Why a session ended, in [`Event::Deleted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// Signaling asked.
    Requested,
}

/// Datapath → signaling.
// `Session` carries a whole spec (the dump). Boxing it would cost an allocation per event and lose
// `Copy`; on the ring every event is a fixed-size slot anyway.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The session exists and relays media.
    Created(SessionId),
    /// The session's spec was replaced.
    Updated(SessionId),
    /// The session is gone; final per-leg stats (index = leg).
    Deleted {
        /// The session.
        id: SessionId,
        /// Why.
        reason: DeleteReason,
        /// Final stats of what each leg received.
        stats: [StreamStats; 2],
    },
    /// A command was refused.
    Error {
        /// The session the command named.
        id: SessionId,
        /// Why.
        code: ErrorCode,
        /// The offending port, or 0.
        port: u16,
    },
    /// No media on either leg for longer than the session's timeout (`leg: None`), or none on
    /// one leg for longer than its leg timeout while the other leg still receives (`leg: Some`).
    /// Raised once per idle period. The session stays until signaling deletes it.
    MediaTimeout {
        /// The session.
        id: SessionId,
        /// Milliseconds since the last packet (on the leg, or on either leg).
        idle_ms: u64,
        /// The silent leg (0 or 1); `None` when both are.
        leg: Option<u8>,
    },
    /// A DTMF digit sent on leg `leg`: an RFC 4733 event received on it, or an in-band digit
    /// the datapath detected on a leg without telephone-event (whose digits it sends to the
    /// other leg as RFC 4733 events). Once at its start (`end: false`, `duration_ms` 0), once at
    /// its end with its duration.
    Dtmf {
        /// The session.
        id: SessionId,
        /// The leg the tones came from (0 or 1).
        leg: u8,
        /// RFC 4733 event code (0–9, `*` = 10, `#` = 11, A–D = 12–15).
        event: u8,
        /// Start (false) or end (true).
        end: bool,
        /// The digit's duration (at its end), in ms.
        duration_ms: u32,
    },
    /// Reply to [`Command::Dump`]: one held session.
    Session(SessionSpec),
    /// Reply to [`Command::Dump`]: the end.
    DumpDone {
        /// The token of the dump.
        token: u64,
        /// How many [`Event::Session`] preceded this.
        count: u32,
    },
}
