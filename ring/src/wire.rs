//! Fixed-size `#[repr(C)]` wire forms of the ring messages, and the validating decoder.
//!
//! Every message travels in one [`Slot`] of [`SLOT_SIZE`] bytes: a 16-byte header
//! (`kind`, `len`, `checksum`, `seq`) followed by a body holding one of the `Wire*` structs below.
//! All wire structs are made only of integers and byte arrays, so every bit pattern is a valid
//! value (`bytemuck::Pod`): reading a slot written by a buggy or hostile peer is never undefined
//! behaviour. Whether the *content* makes sense is decided by [`decode_command`] /
//! [`decode_event`], which check everything (kind known, exact length, checksum, sequence,
//! address family, enum discriminants, payload types, SRTP suites, reserved bytes zero, ...)
//! and name what was wrong in a [`DecodeError`]. Nothing read from shared memory reaches the
//! domain types in [`crate::msg`] without passing them.
//!
//! The checksum is CRC-32 (ISO-HDLC, as in zlib/Ethernet, via `crc32fast`) over the header fields
//! `kind`, `len`, `seq` and the first `len` body bytes. Bytes of the body past `len` are ignored.
//!
//! Byte order is the host's: both ends run on the same machine. The [size table](crate::shm)
//! checked on attach guarantees both ends agree on every struct's size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytemuck::{Pod, Zeroable};

use crate::msg::{
    Codec, Command, DeleteReason, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId,
    SessionSpec, SrtpKeys, SrtpSuite, StreamStats, MAX_PT,
};

/// Size of one ring slot in bytes.
pub const SLOT_SIZE: usize = 512;
/// Size of the slot header (`kind`, `len`, `checksum`, `seq`).
pub const SLOT_HEADER_SIZE: usize = 16;
/// Size of the slot body.
pub const BODY_SIZE: usize = SLOT_SIZE - SLOT_HEADER_SIZE;

/// One ring slot: header plus body. 64-byte aligned so slots never share a cache line.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct Slot {
    /// Message kind, one of the `KIND_*` constants.
    pub kind: u32,
    /// Number of meaningful body bytes (the size of the kind's wire struct).
    pub len: u32,
    /// CRC-32 over `kind`, `len`, `seq` and `body[..len]`.
    pub checksum: u32,
    /// Sequence number: the low 32 bits of the ring position the sender wrote this slot at.
    pub seq: u32,
    /// The wire struct of the message, left-aligned; the rest is zero.
    pub body: [u8; BODY_SIZE],
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("kind", &self.kind)
            .field("len", &self.len)
            .field("checksum", &self.checksum)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Slot {
    /// A slot holding `bytes` (truncated or zero-padded to [`SLOT_SIZE`]): how raw input (fuzzers,
    /// tests) becomes a slot.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut s = Self::zeroed();
        let n = bytes.len().min(SLOT_SIZE);
        bytemuck::bytes_of_mut(&mut s)[..n].copy_from_slice(&bytes[..n]);
        s
    }

    /// The slot's raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

impl Default for Slot {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

/// [`Command::Create`]; body [`WireSessionSpec`].
pub const KIND_CREATE: u32 = 0x0001;
/// [`Command::Update`]; body [`WireSessionSpec`].
pub const KIND_UPDATE: u32 = 0x0002;
/// [`Command::Delete`]; body [`WireId`].
pub const KIND_DELETE: u32 = 0x0003;
/// [`Command::Dump`]; body [`WireToken`].
pub const KIND_DUMP: u32 = 0x0004;
/// [`Event::Created`]; body [`WireId`].
pub const KIND_CREATED: u32 = 0x0101;
/// [`Event::Updated`]; body [`WireId`].
pub const KIND_UPDATED: u32 = 0x0102;
/// [`Event::Deleted`]; body [`WireDeleted`].
pub const KIND_DELETED: u32 = 0x0103;
/// [`Event::Error`]; body [`WireError`].
pub const KIND_ERROR: u32 = 0x0104;
/// [`Event::MediaTimeout`]; body [`WireMediaTimeout`].
pub const KIND_MEDIA_TIMEOUT: u32 = 0x0105;
/// [`Event::Session`]; body [`WireSessionSpec`].
pub const KIND_SESSION: u32 = 0x0106;
/// [`Event::DumpDone`]; body [`WireDumpDone`].
pub const KIND_DUMP_DONE: u32 = 0x0107;
/// [`Event::Dtmf`]; body [`WireDtmf`].
pub const KIND_DTMF: u32 = 0x0108;

/// A socket address. `family` 0 = none, 4 = IPv4 (`ip[..4]`), 6 = IPv6.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireAddr {
    /// 0, 4 or 6.
    pub family: u8,
    /// Zero.
    pub reserved: u8,
    /// Port, host byte order.
    pub port: u16,
    /// IPv6 flow info; zero for IPv4.
    pub flowinfo: u32,
    /// IPv6 scope id; zero for IPv4.
    pub scope_id: u32,
    /// Address octets, network order; IPv4 uses the first 4, the rest zero.
    pub ip: [u8; 16],
}

/// One payload-type entry.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WirePt {
    /// Payload type, 0..=127.
    pub pt: u8,
    /// [`Codec`] discriminant (see [`codec_to_wire`]).
    pub codec: u8,
}

/// SRTP keys of one direction.
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireKeys {
    /// 0 = no SRTP (all other fields zero), 1 = present.
    pub present: u8,
    /// [`SrtpSuite`] discriminant (see [`suite_to_wire`]).
    pub suite: u8,
    /// Zero.
    pub reserved: [u8; 2],
    /// Master key; bytes past the suite's key length are zero.
    pub key: [u8; 32],
    /// Master salt; bytes past the suite's salt length are zero.
    pub salt: [u8; 14],
    /// Zero.
    pub reserved2: [u8; 2],
}

/// One leg of a session.
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireLeg {
    /// Relay's local address; never family 0.
    pub local: WireAddr,
    /// Peer address; family 0 = unknown.
    pub remote: WireAddr,
    /// Peer RTCP port or 0.
    pub remote_rtcp_port: u16,
    /// 0 or 1.
    pub rtcp_mux: u8,
    /// [`LatchPolicy`] discriminant: 0 Once, 1 Follow, 2 Strict.
    pub latch: u8,
    /// Number of valid entries in `pts` (≤ [`MAX_PT`]).
    pub pt_len: u8,
    /// [`LegSpec::ptime_ms`]: 0, or a multiple of 10 up to 120.
    pub ptime_ms: u8,
    /// Zero.
    pub reserved: [u8; 2],
    /// Payload types; entries past `pt_len` are zero.
    pub pts: [WirePt; MAX_PT],
    /// Receive-direction keys.
    pub rx: WireKeys,
    /// Send-direction keys.
    pub tx: WireKeys,
    /// [`LegSpec::signal_ip`]: an address with port, flow info and scope id zero; family 0 =
    /// unknown.
    pub signal_ip: WireAddr,
}

/// A [`SessionSpec`].
#[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireSessionSpec {
    /// Session id, non-zero.
    pub id: u64,
    /// Media timeout in ms.
    pub media_timeout_ms: u32,
    /// 0 or 1.
    pub allow_fast_path: u8,
    /// Zero.
    pub reserved: [u8; 3],
    /// Per-leg media timeouts in ms.
    pub leg_timeout_ms: [u32; 2],
    /// The two legs.
    pub legs: [WireLeg; 2],
}

/// A bare session id (Delete, Created, Updated).
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireId {
    /// Session id, non-zero.
    pub id: u64,
}

/// A dump token.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireToken {
    /// Opaque token.
    pub token: u64,
}

/// A [`StreamStats`].
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireStats {
    /// See [`StreamStats::packets`].
    pub packets: u64,
    /// See [`StreamStats::bytes`].
    pub bytes: u64,
    /// See [`StreamStats::lost`].
    pub lost: u64,
    /// See [`StreamStats::reordered`].
    pub reordered: u64,
    /// See [`StreamStats::duplicates`].
    pub duplicates: u64,
    /// See [`StreamStats::rtcp_packets`].
    pub rtcp_packets: u64,
    /// See [`StreamStats::dropped`].
    pub dropped: u64,
    /// See [`StreamStats::last_rx_ms`].
    pub last_rx_ms: u64,
    /// See [`StreamStats::jitter`].
    pub jitter: u32,
    /// See [`StreamStats::r_x10`]; at most [`MAX_R_X10`](crate::msg::MAX_R_X10).
    pub r_x10: u16,
    /// See [`StreamStats::mos_x100`]; at most [`MAX_MOS_X100`](crate::msg::MAX_MOS_X100).
    pub mos_x100: u16,
    /// See [`StreamStats::rejected_sources`].
    pub rejected_sources: u64,
}

/// [`Event::Deleted`].
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireDeleted {
    /// Session id, non-zero.
    pub id: u64,
    /// [`DeleteReason`] discriminant: 0 Requested.
    pub reason: u32,
    /// Zero.
    pub reserved: u32,
    /// Per-leg stats.
    pub stats: [WireStats; 2],
}

/// [`Event::Error`].
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireError {
    /// Session id (may be zero only if the offending command carried no valid id: never, today).
    pub id: u64,
    /// [`ErrorCode`] discriminant (see [`error_code_to_wire`]).
    pub code: u32,
    /// Offending port or 0.
    pub port: u16,
    /// Zero.
    pub reserved: u16,
}

/// [`Event::MediaTimeout`].
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireMediaTimeout {
    /// Session id, non-zero.
    pub id: u64,
    /// Idle milliseconds.
    pub idle_ms: u64,
    /// 0 = both legs silent, 1 = leg 0, 2 = leg 1.
    pub leg: u32,
    /// Zero.
    pub reserved: u32,
}

/// [`Event::Dtmf`].
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireDtmf {
    /// Session id, non-zero.
    pub id: u64,
    /// Duration in ms (0 at the start).
    pub duration_ms: u32,
    /// 0 or 1.
    pub leg: u8,
    /// 0..=15.
    pub event: u8,
    /// 0 = start, 1 = end.
    pub end: u8,
    /// Zero.
    pub reserved: u8,
}

/// [`Event::DumpDone`].
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C)]
pub struct WireDumpDone {
    /// The dump's token.
    pub token: u64,
    /// Number of sessions reported.
    pub count: u32,
    /// Zero.
    pub reserved: u32,
}

// Layout is part of the ABI: pin it, so a change is a conscious ABI version bump.
const _: () = {
    assert!(std::mem::size_of::<Slot>() == SLOT_SIZE);
    assert!(std::mem::size_of::<WireAddr>() == 28);
    assert!(std::mem::size_of::<WireKeys>() == 52);
    assert!(std::mem::size_of::<WireLeg>() == 212);
    assert!(std::mem::size_of::<WireSessionSpec>() == 448);
    assert!(std::mem::size_of::<WireMediaTimeout>() == 24);
    assert!(std::mem::size_of::<WireDtmf>() == 16);
    assert!(std::mem::size_of::<WireStats>() == 80);
    assert!(std::mem::size_of::<WireDeleted>() == 176);
    assert!(std::mem::size_of::<WireError>() == 16);
    assert!(std::mem::size_of::<WireSessionSpec>() <= BODY_SIZE);
};

/// Why a slot was rejected. The consumer counts it and moves on; nothing in it is trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The `kind` field names no message of this direction.
    #[error("unknown message kind {0:#x}")]
    UnknownKind(u32),
    /// The `len` field is not the size of the kind's wire struct.
    #[error("kind {kind:#x}: body length {got}, expected {expected}")]
    BadLength {
        /// The slot's kind.
        kind: u32,
        /// Length the kind requires.
        expected: u32,
        /// Length found.
        got: u32,
    },
    /// The checksum does not match the content.
    #[error("checksum mismatch: slot says {stored:#010x}, content hashes to {computed:#010x}")]
    Checksum {
        /// Checksum in the slot.
        stored: u32,
        /// Checksum of the content.
        computed: u32,
    },
    /// The slot's sequence number is not the ring position it was read from.
    #[error("sequence {got}, expected {expected}")]
    Sequence {
        /// Low 32 bits of the ring position.
        expected: u32,
        /// Sequence in the slot.
        got: u32,
    },
    /// A session id of zero.
    #[error("session id 0")]
    ZeroSessionId,
    /// An address family other than 4 or 6 (or 0 where "none" is not allowed).
    #[error("{field}: bad address family {family}")]
    AddressFamily {
        /// Which address.
        field: &'static str,
        /// The family byte.
        family: u8,
    },
    /// An enum discriminant out of range.
    #[error("{field}: discriminant {value} out of range")]
    Discriminant {
        /// Which enum.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A bool field neither 0 nor 1.
    #[error("{field}: boolean byte {value} is neither 0 nor 1")]
    Bool {
        /// Which field.
        field: &'static str,
        /// The value found.
        value: u8,
    },
    /// A payload type above 127.
    #[error("payload type {0} > 127")]
    PayloadType(u8),
    /// More payload-type entries than [`MAX_PT`].
    #[error("payload-type map length {0} > {MAX_PT}")]
    PtMapLength(u8),
    /// The same payload type listed twice.
    #[error("payload type {0} listed twice")]
    DuplicatePt(u8),
    /// An SRTP suite number that names no suite.
    #[error("unknown SRTP suite {0}")]
    SrtpSuite(u8),
    /// Reserved or unused bytes (padding, past a length, past a key length) not zero.
    #[error("{0}: reserved bytes not zero")]
    Reserved(&'static str),
    /// A leg's ptime is not 0 or a multiple of 10 up to 120 ms.
    #[error("leg.ptime_ms: {0} is not 0 or a multiple of 10 up to 120")]
    Ptime(u8),
    /// A quality figure above its maximum.
    #[error("{field}: {value} out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u16,
    },
}

// ----------------------------------------------------------------------------------------------
// Discriminant tables. Explicit, so reordering the domain enums cannot silently change the ABI.

/// Wire number of a codec.
pub const fn codec_to_wire(c: Codec) -> u8 {
    match c {
        Codec::Pcmu => 0,
        Codec::Pcma => 1,
        Codec::TelephoneEvent => 2,
        Codec::G722 => 3,
        Codec::G729 => 4,
        Codec::Opus => 5,
        Codec::Cn => 6,
        Codec::T38 => 7,
    }
}

fn codec_from_wire(v: u8) -> Result<Codec, DecodeError> {
    Ok(match v {
        0 => Codec::Pcmu,
        1 => Codec::Pcma,
        2 => Codec::TelephoneEvent,
        3 => Codec::G722,
        4 => Codec::G729,
        5 => Codec::Opus,
        6 => Codec::Cn,
        7 => Codec::T38,
        _ => return Err(DecodeError::Discriminant { field: "codec", value: v.into() }),
    })
}

/// Wire number of an SRTP suite.
pub const fn suite_to_wire(s: SrtpSuite) -> u8 {
    match s {
        SrtpSuite::AesCm128HmacSha1_80 => 1,
        SrtpSuite::AesCm128HmacSha1_32 => 2,
        SrtpSuite::AeadAes128Gcm => 3,
        SrtpSuite::AeadAes256Gcm => 4,
    }
}

fn suite_from_wire(v: u8) -> Result<SrtpSuite, DecodeError> {
    Ok(match v {
        1 => SrtpSuite::AesCm128HmacSha1_80,
        2 => SrtpSuite::AesCm128HmacSha1_32,
        3 => SrtpSuite::AeadAes128Gcm,
        4 => SrtpSuite::AeadAes256Gcm,
        _ => return Err(DecodeError::SrtpSuite(v)),
    })
}

const fn latch_to_wire(l: LatchPolicy) -> u8 {
    match l {
        LatchPolicy::Once => 0,
        LatchPolicy::Follow => 1,
        LatchPolicy::Strict => 2,
    }
}

fn latch_from_wire(v: u8) -> Result<LatchPolicy, DecodeError> {
    Ok(match v {
        0 => LatchPolicy::Once,
        1 => LatchPolicy::Follow,
        2 => LatchPolicy::Strict,
        _ => return Err(DecodeError::Discriminant { field: "latch", value: v.into() }),
    })
}

/// Wire number of an error code.
pub const fn error_code_to_wire(c: ErrorCode) -> u32 {
    match c {
        ErrorCode::PortOutOfRange => 0,
        ErrorCode::PortInUse => 1,
        ErrorCode::UnknownSession => 2,
        ErrorCode::DuplicateSession => 3,
        ErrorCode::InvalidSpec => 4,
        ErrorCode::CapacityExhausted => 5,
        ErrorCode::BindFailed => 6,
    }
}

fn error_code_from_wire(v: u32) -> Result<ErrorCode, DecodeError> {
    Ok(match v {
        0 => ErrorCode::PortOutOfRange,
        1 => ErrorCode::PortInUse,
        2 => ErrorCode::UnknownSession,
        3 => ErrorCode::DuplicateSession,
        4 => ErrorCode::InvalidSpec,
        5 => ErrorCode::CapacityExhausted,
        6 => ErrorCode::BindFailed,
        _ => return Err(DecodeError::Discriminant { field: "error code", value: v }),
    })
}

const fn reason_to_wire(r: DeleteReason) -> u32 {
    match r {
        DeleteReason::Requested => 0,
    }
}

fn reason_from_wire(v: u32) -> Result<DeleteReason, DecodeError> {
    match v {
        0 => Ok(DeleteReason::Requested),
        _ => Err(DecodeError::Discriminant { field: "delete reason", value: v }),
    }
}

#[inline(always)]
fn bool_from_wire(field: &'static str, v: u8) -> Result<bool, DecodeError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Bool { field, value: v }),
    }
}

#[inline(always)]
fn id_from_wire(v: u64) -> Result<SessionId, DecodeError> {
    if v == 0 {
        Err(DecodeError::ZeroSessionId)
    } else {
        Ok(SessionId(v))
    }
}

/// True if every byte of `a` is zero. Chunk-wise (the length is a constant, so this unrolls into
/// a few wide loads and ORs instead of a byte loop).
#[inline(always)]
fn all_zero<const N: usize>(a: &[u8; N]) -> bool {
    let mut acc = 0u128;
    for c in a.chunks(16) {
        let mut b = [0u8; 16];
        b[..c.len()].copy_from_slice(c);
        acc |= u128::from_ne_bytes(b);
    }
    acc == 0
}

#[inline(always)]
fn zero<const N: usize>(field: &'static str, v: &[u8; N]) -> Result<(), DecodeError> {
    if all_zero(v) {
        Ok(())
    } else {
        Err(DecodeError::Reserved(field))
    }
}

/// A valid [`SessionSpec`] whose content does not matter: the starting value a spec is decoded
/// over in place (every field is overwritten by a successful decode).
const PLACEHOLDER_LEG: LegSpec = LegSpec {
    local: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
    remote: None,
    remote_rtcp_port: 0,
    rtcp_mux: false,
    latch: LatchPolicy::Once,
    signal_ip: None,
    pt_map: PtMap::new(),
    crypto: LegCrypto { rx: None, tx: None },
    ptime_ms: 0,
};
const PLACEHOLDER_SPEC: SessionSpec = SessionSpec {
    id: SessionId(1),
    legs: [PLACEHOLDER_LEG; 2],
    media_timeout_ms: 0,
    leg_timeout_ms: [0; 2],
    allow_fast_path: false,
};

// ----------------------------------------------------------------------------------------------
// Domain -> wire (infallible) and wire -> domain (validating).
//
// Encoders build each wire struct with a struct literal (so every byte, reserved ones included,
// is written: the slot they land in holds a previous lap's bytes) directly in the ring slot.
// Decoders read each field of the (private copy of the) slot once and write the domain value in
// place, in the order the checks have always run, so the first error reported is unchanged.

#[inline(always)]
fn addr_to_wire(a: Option<SocketAddr>) -> WireAddr {
    match a {
        None => WireAddr::zeroed(),
        Some(SocketAddr::V4(a)) => {
            let o = a.ip().octets();
            WireAddr {
                family: 4,
                reserved: 0,
                port: a.port(),
                flowinfo: 0,
                scope_id: 0,
                ip: [o[0], o[1], o[2], o[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            }
        }
        Some(SocketAddr::V6(a)) => WireAddr {
            family: 6,
            reserved: 0,
            port: a.port(),
            flowinfo: a.flowinfo(),
            scope_id: a.scope_id(),
            ip: a.ip().octets(),
        },
    }
}

#[inline(always)]
fn addr_from_wire(field: &'static str, w: &WireAddr) -> Result<Option<SocketAddr>, DecodeError> {
    if w.reserved != 0 {
        return Err(DecodeError::Reserved(field));
    }
    match w.family {
        0 => {
            if w.port == 0 && (w.flowinfo | w.scope_id) == 0 && all_zero(&w.ip) {
                Ok(None)
            } else {
                Err(DecodeError::Reserved(field))
            }
        }
        4 => {
            let [a, b, c, d, rest @ ..] = w.ip;
            if (w.flowinfo | w.scope_id) != 0 || !all_zero(&rest) {
                return Err(DecodeError::Reserved(field));
            }
            let ip = Ipv4Addr::new(a, b, c, d);
            Ok(Some(SocketAddr::V4(SocketAddrV4::new(ip, w.port))))
        }
        6 => Ok(Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(w.ip), w.port, w.flowinfo, w.scope_id)))),
        f => Err(DecodeError::AddressFamily { field, family: f }),
    }
}

#[inline(always)]
fn keys_to_wire(k: &Option<SrtpKeys>) -> WireKeys {
    match k {
        None => WireKeys::zeroed(),
        Some(k) => WireKeys {
            present: 1,
            suite: suite_to_wire(k.suite),
            reserved: [0; 2],
            key: k.key,
            salt: k.salt,
            reserved2: [0; 2],
        },
    }
}

#[inline(always)]
fn keys_from_wire(field: &'static str, w: &WireKeys) -> Result<Option<SrtpKeys>, DecodeError> {
    zero(field, &w.reserved)?;
    zero(field, &w.reserved2)?;
    match bool_from_wire(field, w.present)? {
        false => {
            if w.suite == 0 && all_zero(&w.key) && all_zero(&w.salt) {
                Ok(None)
            } else {
                Err(DecodeError::Reserved(field))
            }
        }
        true => {
            let suite = suite_from_wire(w.suite)?;
            // Key lengths are 16 or 32, salt lengths 14 or 12 (checked by the tests below).
            let [_, key_hi] = bytemuck::cast_ref::<[u8; 32], [[u8; 16]; 2]>(&w.key);
            let key_tail_zero = suite.key_len() == 32 || all_zero(key_hi);
            let salt_tail_zero = suite.salt_len() == 14 || (w.salt[12] | w.salt[13]) == 0;
            if !key_tail_zero || !salt_tail_zero {
                return Err(DecodeError::Reserved(field));
            }
            Ok(Some(SrtpKeys { suite, key: w.key, salt: w.salt }))
        }
    }
}

#[inline(always)]
fn pts_to_wire(m: &PtMap) -> [WirePt; MAX_PT] {
    let mut out = [WirePt { pt: 0, codec: 0 }; MAX_PT];
    for (o, e) in out.iter_mut().zip(m.raw_entries()) {
        if let Some(e) = e {
            *o = WirePt { pt: e.pt, codec: codec_to_wire(e.codec) };
        }
    }
    out
}

/// Writes a leg's wire form straight into `w` (in the ring slot). The exhaustive destructuring
/// makes the compiler check that every field, reserved ones included, is written.
#[inline(always)]
fn leg_to_wire_into(l: &LegSpec, w: &mut WireLeg) {
    let WireLeg {
        local,
        remote,
        remote_rtcp_port,
        rtcp_mux,
        latch,
        pt_len,
        ptime_ms,
        reserved,
        pts,
        rx,
        tx,
        signal_ip,
    } = w;
    *local = addr_to_wire(Some(l.local));
    *remote = addr_to_wire(l.remote);
    *remote_rtcp_port = l.remote_rtcp_port;
    *rtcp_mux = u8::from(l.rtcp_mux);
    *latch = latch_to_wire(l.latch);
    // PtMap::len() ≤ MAX_PT by construction.
    *pt_len = l.pt_map.len() as u8;
    *ptime_ms = l.ptime_ms;
    *reserved = [0; 2];
    *pts = pts_to_wire(&l.pt_map);
    *rx = keys_to_wire(&l.crypto.rx);
    *tx = keys_to_wire(&l.crypto.tx);
    *signal_ip = addr_to_wire(l.signal_ip.map(|ip| SocketAddr::new(ip, 0)));
}

/// Decodes the payload-type table: `pt_len` entries, each pt ≤ 127 with a known codec and no
/// duplicate (a 128-bit "seen" set instead of a search), the entries past `pt_len` zero.
#[inline(always)]
fn pts_from_wire(pt_len: u8, pts: &[WirePt; MAX_PT]) -> Result<PtMap, DecodeError> {
    let n = usize::from(pt_len);
    if n > MAX_PT {
        return Err(DecodeError::PtMapLength(pt_len));
    }
    let mut entries = [None; MAX_PT];
    let mut seen = [0u64; 2];
    for (e, out) in pts[..n].iter().zip(&mut entries) {
        if e.pt > 127 {
            return Err(DecodeError::PayloadType(e.pt));
        }
        let codec = codec_from_wire(e.codec)?;
        let (word, bit) = (usize::from(e.pt >> 6), 1u64 << (e.pt & 63));
        if seen[word] & bit != 0 {
            return Err(DecodeError::DuplicatePt(e.pt));
        }
        seen[word] |= bit;
        *out = Some(PtEntry { pt: e.pt, codec });
    }
    // Entries past n must be zero: drop the first 2n bytes (little-endian view, so byte 0 is the
    // low end whatever the host order) and compare the rest with zero.
    let raw: [u8; 2 * MAX_PT] = bytemuck::cast(*pts);
    if n < MAX_PT && u128::from_le_bytes(raw) >> (16 * n) != 0 {
        return Err(DecodeError::Reserved("leg.pts"));
    }
    Ok(PtMap::from_checked_parts(pt_len, entries))
}

#[inline(always)]
fn leg_from_wire_into(w: &WireLeg, l: &mut LegSpec) -> Result<(), DecodeError> {
    l.local =
        addr_from_wire("leg.local", &w.local)?.ok_or(DecodeError::AddressFamily { field: "leg.local", family: 0 })?;
    l.remote = addr_from_wire("leg.remote", &w.remote)?;
    zero("leg.reserved", &w.reserved)?;
    if !crate::msg::valid_ptime(w.ptime_ms) {
        return Err(DecodeError::Ptime(w.ptime_ms));
    }
    l.ptime_ms = w.ptime_ms;
    l.pt_map = pts_from_wire(w.pt_len, &w.pts)?;
    l.remote_rtcp_port = w.remote_rtcp_port;
    l.rtcp_mux = bool_from_wire("leg.rtcp_mux", w.rtcp_mux)?;
    l.latch = latch_from_wire(w.latch)?;
    l.crypto.rx = keys_from_wire("leg.crypto.rx", &w.rx)?;
    l.crypto.tx = keys_from_wire("leg.crypto.tx", &w.tx)?;
    l.signal_ip = ip_from_wire("leg.signal_ip", &w.signal_ip)?;
    Ok(())
}

/// An IP carried as a [`WireAddr`]: port, flow info and scope id must be zero.
#[inline(always)]
fn ip_from_wire(field: &'static str, w: &WireAddr) -> Result<Option<IpAddr>, DecodeError> {
    if w.port != 0 || (w.flowinfo | w.scope_id) != 0 {
        return Err(DecodeError::Reserved(field));
    }
    Ok(addr_from_wire(field, w)?.map(|a| a.ip()))
}

/// Writes a spec's wire form straight into `w` (see [`leg_to_wire_into`]).
#[inline(always)]
fn spec_to_wire_into(s: &SessionSpec, w: &mut WireSessionSpec) {
    let WireSessionSpec { id, media_timeout_ms, allow_fast_path, reserved, leg_timeout_ms, legs: [leg0, leg1] } = w;
    *id = s.id.0;
    *media_timeout_ms = s.media_timeout_ms;
    *leg_timeout_ms = s.leg_timeout_ms;
    *allow_fast_path = u8::from(s.allow_fast_path);
    *reserved = [0; 3];
    leg_to_wire_into(&s.legs[0], leg0);
    leg_to_wire_into(&s.legs[1], leg1);
}

#[cfg(test)]
fn spec_to_wire(s: &SessionSpec) -> WireSessionSpec {
    let mut w = WireSessionSpec::zeroed();
    spec_to_wire_into(s, &mut w);
    w
}

/// Decodes a spec over `s` in place. On error `s` is left partly overwritten (still a valid
/// value, but meaningless).
#[inline(always)]
fn spec_from_wire_into(w: &WireSessionSpec, s: &mut SessionSpec) -> Result<(), DecodeError> {
    zero("session.reserved", &w.reserved)?;
    s.id = id_from_wire(w.id)?;
    leg_from_wire_into(&w.legs[0], &mut s.legs[0])?;
    leg_from_wire_into(&w.legs[1], &mut s.legs[1])?;
    s.media_timeout_ms = w.media_timeout_ms;
    s.leg_timeout_ms = w.leg_timeout_ms;
    s.allow_fast_path = bool_from_wire("session.allow_fast_path", w.allow_fast_path)?;
    Ok(())
}

fn spec_from_wire(w: &WireSessionSpec) -> Result<SessionSpec, DecodeError> {
    let mut s = PLACEHOLDER_SPEC;
    spec_from_wire_into(w, &mut s)?;
    Ok(s)
}

#[inline(always)]
fn stats_to_wire(s: &StreamStats) -> WireStats {
    WireStats {
        packets: s.packets,
        bytes: s.bytes,
        lost: s.lost,
        reordered: s.reordered,
        duplicates: s.duplicates,
        rtcp_packets: s.rtcp_packets,
        dropped: s.dropped,
        last_rx_ms: s.last_rx_ms,
        jitter: s.jitter,
        r_x10: s.r_x10,
        mos_x100: s.mos_x100,
        rejected_sources: s.rejected_sources,
    }
}

#[inline(always)]
fn stats_from_wire(w: &WireStats) -> Result<StreamStats, DecodeError> {
    if w.r_x10 > crate::msg::MAX_R_X10 {
        return Err(DecodeError::OutOfRange { field: "stats.r_x10", value: w.r_x10 });
    }
    if w.mos_x100 > crate::msg::MAX_MOS_X100 {
        return Err(DecodeError::OutOfRange { field: "stats.mos_x100", value: w.mos_x100 });
    }
    Ok(StreamStats {
        packets: w.packets,
        bytes: w.bytes,
        lost: w.lost,
        reordered: w.reordered,
        duplicates: w.duplicates,
        jitter: w.jitter,
        rtcp_packets: w.rtcp_packets,
        dropped: w.dropped,
        rejected_sources: w.rejected_sources,
        last_rx_ms: w.last_rx_ms,
        r_x10: w.r_x10,
        mos_x100: w.mos_x100,
    })
}

// ----------------------------------------------------------------------------------------------
// Slot framing.

/// Bitwise CRC-32 (ISO-HDLC), for compile-time constants only.
const fn crc32_const(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < bytes.len() {
        crc ^= bytes[i] as u32;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            b += 1;
        }
        i += 1;
    }
    !crc
}

/// CRC-32 of the first 8 checksummed bytes (`kind`, `len`), a constant per message kind: the
/// hot path starts the CRC from it and hashes only `seq` + body (contiguous in the slot).
const fn head_crc(kind: u32, len: usize) -> u32 {
    let k = kind.to_ne_bytes();
    let l = (len as u32).to_ne_bytes();
    crc32_const(&[k[0], k[1], k[2], k[3], l[0], l[1], l[2], l[3]])
}

/// Byte offset of `seq` in a slot; `seq` and the body are contiguous from here.
const SEQ_OFFSET: usize = 12;

/// The checksum of a slot whose `kind`/`len` are known to hash to `head` and whose body is `len`
/// bytes: continues the CRC over `seq` and `body[..len]` in one call (crc32fast's PCLMULQDQ
/// path for bodies of 128 bytes and more).
#[inline(always)]
fn checksum_from(head: u32, slot: &Slot, len: usize) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(head);
    h.update(&bytemuck::bytes_of(slot)[SEQ_OFFSET..SLOT_HEADER_SIZE + len]);
    h.finalize()
}

fn checksum(kind: u32, len: u32, seq: u32, body: &[u8]) -> u32 {
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&kind.to_ne_bytes());
    head[4..8].copy_from_slice(&len.to_ne_bytes());
    head[8..].copy_from_slice(&seq.to_ne_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&head);
    h.update(body);
    h.finalize()
}

/// Writes header and body into `slot`. Body bytes past `len` are left as they were (ignored by
/// the decoder and not covered by the checksum).
#[cfg(test)]
fn frame_into<T: Pod>(slot: &mut Slot, kind: u32, seq: u32, body: &T) {
    let bytes = bytemuck::bytes_of(body);
    slot.kind = kind;
    // Every wire struct is ≤ BODY_SIZE (checked at compile time above).
    slot.len = bytes.len() as u32;
    slot.seq = seq;
    slot.body[..bytes.len()].copy_from_slice(bytes);
    slot.checksum = checksum(kind, slot.len, seq, bytes);
}

#[cfg(test)]
fn frame<T: Pod>(kind: u32, seq: u32, body: &T) -> Slot {
    let mut slot = Slot::zeroed();
    frame_into(&mut slot, kind, seq, body);
    slot
}

/// Frames a message of kind `KIND` with body type `T` in place: header, then `fill` writes the
/// body straight into the slot (no intermediate struct copy), then the checksum over the `len`
/// bytes written. Body bytes past `len` keep their old content.
#[inline(always)]
fn frame_with<const KIND: u32, T: Pod>(slot: &mut Slot, seq: u32, fill: impl FnOnce(&mut T)) {
    const { assert!(std::mem::size_of::<T>() <= BODY_SIZE && std::mem::align_of::<T>() <= 16) };
    let len = std::mem::size_of::<T>();
    slot.kind = KIND;
    slot.len = len as u32;
    slot.seq = seq;
    // The body starts 16 bytes into a 64-byte-aligned slot and T needs at most 16-byte
    // alignment (asserted above), so the cast cannot fail.
    fill(bytemuck::from_bytes_mut(&mut slot.body[..len]));
    slot.checksum = checksum_from(const { head_crc(KIND, std::mem::size_of::<T>()) }, slot, len);
}

/// Checks length and checksum of a slot of kind `KIND` (the caller matched it), then views the
/// body as a `T` in place.
#[inline(always)]
fn body_ref<const KIND: u32, T: Pod>(slot: &Slot) -> Result<&T, DecodeError> {
    const { assert!(std::mem::size_of::<T>() <= BODY_SIZE && std::mem::align_of::<T>() <= 16) };
    let len = std::mem::size_of::<T>();
    if slot.len != len as u32 {
        return Err(DecodeError::BadLength { kind: slot.kind, expected: len as u32, got: slot.len });
    }
    let computed = checksum_from(const { head_crc(KIND, std::mem::size_of::<T>()) }, slot, len);
    if computed != slot.checksum {
        return Err(DecodeError::Checksum { stored: slot.checksum, computed });
    }
    // Aligned (see `frame_with`), exact length: cannot fail.
    Ok(bytemuck::from_bytes(&slot.body[..len]))
}

/// Recomputes a slot's checksum over its current content (a `len` past the body counts as the
/// whole body). For tests and fuzzing: lets arbitrary bodies reach the field validators.
pub fn seal(slot: &mut Slot) {
    let n = (slot.len as usize).min(BODY_SIZE);
    slot.checksum = checksum(slot.kind, slot.len, slot.seq, &slot.body[..n]);
}

/// Encodes a command into a slot stamped with sequence number `seq`.
pub fn encode_command(cmd: &Command, seq: u32) -> Slot {
    let mut slot = Slot::zeroed();
    encode_command_into(cmd, seq, &mut slot);
    slot
}

/// Encodes a command into an existing slot (e.g. in place in the ring). Body bytes past the
/// message's length keep their old content; they are not part of the message.
#[inline]
pub fn encode_command_into(cmd: &Command, seq: u32, slot: &mut Slot) {
    match cmd {
        Command::Create(s) => frame_with::<KIND_CREATE, WireSessionSpec>(slot, seq, |w| spec_to_wire_into(s, w)),
        Command::Update(s) => frame_with::<KIND_UPDATE, WireSessionSpec>(slot, seq, |w| spec_to_wire_into(s, w)),
        Command::Delete(id) => frame_with::<KIND_DELETE, WireId>(slot, seq, |w| *w = WireId { id: id.0 }),
        Command::Dump { token } => frame_with::<KIND_DUMP, WireToken>(slot, seq, |w| *w = WireToken { token: *token }),
    }
}

/// Decodes and validates a command slot. Does not check `seq` (see [`check_seq`]).
pub fn decode_command(slot: &Slot) -> Result<Command, DecodeError> {
    Ok(match slot.kind {
        KIND_CREATE => Command::Create(spec_from_wire(body_ref::<KIND_CREATE, _>(slot)?)?),
        KIND_UPDATE => Command::Update(spec_from_wire(body_ref::<KIND_UPDATE, _>(slot)?)?),
        KIND_DELETE => Command::Delete(id_from_wire(body_ref::<KIND_DELETE, WireId>(slot)?.id)?),
        KIND_DUMP => Command::Dump { token: body_ref::<KIND_DUMP, WireToken>(slot)?.token },
        k => return Err(DecodeError::UnknownKind(k)),
    })
}

/// `out` as a `Create` (or `Update`) spec to decode over; replaces `out` with a placeholder of
/// that variant first if it holds another one (in a stream of one kind, this happens once).
#[inline(always)]
fn command_spec(out: &mut Command, update: bool) -> &mut SessionSpec {
    match (update, &*out) {
        (false, Command::Create(_)) | (true, Command::Update(_)) => {}
        (false, _) => *out = Command::Create(PLACEHOLDER_SPEC),
        (true, _) => *out = Command::Update(PLACEHOLDER_SPEC),
    }
    match out {
        Command::Create(s) | Command::Update(s) => s,
        // Set just above.
        Command::Delete(_) | Command::Dump { .. } => unreachable!("command_spec"),
    }
}

/// Decodes and validates a command slot into `out`, writing a large `SessionSpec` in place
/// instead of returning it by value. Same checks and errors as [`decode_command`]; on error
/// `out` holds some valid but meaningless command. Does not check `seq`.
#[inline]
pub fn decode_command_into(slot: &Slot, out: &mut Command) -> Result<(), DecodeError> {
    match slot.kind {
        KIND_CREATE => {
            let w = body_ref::<KIND_CREATE, WireSessionSpec>(slot)?;
            spec_from_wire_into(w, command_spec(out, false))
        }
        KIND_UPDATE => {
            let w = body_ref::<KIND_UPDATE, WireSessionSpec>(slot)?;
            spec_from_wire_into(w, command_spec(out, true))
        }
        KIND_DELETE => {
            *out = Command::Delete(id_from_wire(body_ref::<KIND_DELETE, WireId>(slot)?.id)?);
            Ok(())
        }
        KIND_DUMP => {
            let token = body_ref::<KIND_DUMP, WireToken>(slot)?.token;
            *out = Command::Dump { token };
            Ok(())
        }
        k => Err(DecodeError::UnknownKind(k)),
    }
}

/// Encodes an event into a slot stamped with sequence number `seq`.
pub fn encode_event(ev: &Event, seq: u32) -> Slot {
    let mut slot = Slot::zeroed();
    encode_event_into(ev, seq, &mut slot);
    slot
}

/// Encodes an event into an existing slot (see [`encode_command_into`]).
#[inline]
pub fn encode_event_into(ev: &Event, seq: u32, slot: &mut Slot) {
    match ev {
        Event::Created(id) => frame_with::<KIND_CREATED, WireId>(slot, seq, |w| *w = WireId { id: id.0 }),
        Event::Updated(id) => frame_with::<KIND_UPDATED, WireId>(slot, seq, |w| *w = WireId { id: id.0 }),
        Event::Deleted { id, reason, stats } => frame_with::<KIND_DELETED, WireDeleted>(slot, seq, |w| {
            *w = WireDeleted {
                id: id.0,
                reason: reason_to_wire(*reason),
                reserved: 0,
                stats: [stats_to_wire(&stats[0]), stats_to_wire(&stats[1])],
            }
        }),
        Event::Error { id, code, port } => frame_with::<KIND_ERROR, WireError>(slot, seq, |w| {
            *w = WireError { id: id.0, code: error_code_to_wire(*code), port: *port, reserved: 0 }
        }),
        Event::MediaTimeout { id, idle_ms, leg } => {
            frame_with::<KIND_MEDIA_TIMEOUT, WireMediaTimeout>(slot, seq, |w| {
                *w = WireMediaTimeout {
                    id: id.0,
                    idle_ms: *idle_ms,
                    leg: leg.map_or(0, |l| u32::from(l) + 1),
                    reserved: 0,
                }
            })
        }
        Event::Dtmf { id, leg, event, end, duration_ms } => frame_with::<KIND_DTMF, WireDtmf>(slot, seq, |w| {
            *w = WireDtmf {
                id: id.0,
                duration_ms: *duration_ms,
                leg: *leg,
                event: *event,
                end: u8::from(*end),
                reserved: 0,
            }
        }),
        Event::Session(s) => frame_with::<KIND_SESSION, WireSessionSpec>(slot, seq, |w| spec_to_wire_into(s, w)),
        Event::DumpDone { token, count } => frame_with::<KIND_DUMP_DONE, WireDumpDone>(slot, seq, |w| {
            *w = WireDumpDone { token: *token, count: *count, reserved: 0 }
        }),
    }
}

/// Decodes and validates an event slot. Does not check `seq` (see [`check_seq`]).
pub fn decode_event(slot: &Slot) -> Result<Event, DecodeError> {
    let mut ev = <Event as Message>::PLACEHOLDER;
    decode_event_into(slot, &mut ev)?;
    Ok(ev)
}

/// Decodes and validates an event slot into `out` (see [`decode_command_into`]).
#[inline]
pub fn decode_event_into(slot: &Slot, out: &mut Event) -> Result<(), DecodeError> {
    *out = match slot.kind {
        KIND_CREATED => Event::Created(id_from_wire(body_ref::<KIND_CREATED, WireId>(slot)?.id)?),
        KIND_UPDATED => Event::Updated(id_from_wire(body_ref::<KIND_UPDATED, WireId>(slot)?.id)?),
        KIND_DELETED => {
            let w = body_ref::<KIND_DELETED, WireDeleted>(slot)?;
            if w.reserved != 0 {
                return Err(DecodeError::Reserved("deleted.reserved"));
            }
            Event::Deleted {
                id: id_from_wire(w.id)?,
                reason: reason_from_wire(w.reason)?,
                stats: [stats_from_wire(&w.stats[0])?, stats_from_wire(&w.stats[1])?],
            }
        }
        KIND_ERROR => {
            let w = body_ref::<KIND_ERROR, WireError>(slot)?;
            if w.reserved != 0 {
                return Err(DecodeError::Reserved("error.reserved"));
            }
            Event::Error { id: id_from_wire(w.id)?, code: error_code_from_wire(w.code)?, port: w.port }
        }
        KIND_MEDIA_TIMEOUT => {
            let w = body_ref::<KIND_MEDIA_TIMEOUT, WireMediaTimeout>(slot)?;
            if w.reserved != 0 {
                return Err(DecodeError::Reserved("media_timeout.reserved"));
            }
            let leg = match w.leg {
                0 => None,
                1 | 2 => Some(w.leg as u8 - 1),
                value => return Err(DecodeError::Discriminant { field: "media_timeout.leg", value }),
            };
            Event::MediaTimeout { id: id_from_wire(w.id)?, idle_ms: w.idle_ms, leg }
        }
        KIND_DTMF => {
            let w = body_ref::<KIND_DTMF, WireDtmf>(slot)?;
            if w.reserved != 0 {
                return Err(DecodeError::Reserved("dtmf.reserved"));
            }
            if w.leg > 1 {
                return Err(DecodeError::Discriminant { field: "dtmf.leg", value: w.leg.into() });
            }
            if w.event > 15 {
                return Err(DecodeError::Discriminant { field: "dtmf.event", value: w.event.into() });
            }
            Event::Dtmf {
                id: id_from_wire(w.id)?,
                leg: w.leg,
                event: w.event,
                end: bool_from_wire("dtmf.end", w.end)?,
                duration_ms: w.duration_ms,
            }
        }
        KIND_SESSION => {
            let w = body_ref::<KIND_SESSION, WireSessionSpec>(slot)?;
            if !matches!(out, Event::Session(_)) {
                *out = Event::Session(PLACEHOLDER_SPEC);
            }
            return match out {
                Event::Session(s) => spec_from_wire_into(w, s),
                // Set just above.
                _ => unreachable!("decode_event_into"),
            };
        }
        KIND_DUMP_DONE => {
            let w = body_ref::<KIND_DUMP_DONE, WireDumpDone>(slot)?;
            if w.reserved != 0 {
                return Err(DecodeError::Reserved("dump_done.reserved"));
            }
            Event::DumpDone { token: w.token, count: w.count }
        }
        k => return Err(DecodeError::UnknownKind(k)),
    };
    Ok(())
}

/// Checks that a slot read at ring position `pos` carries `seq == pos as u32`: catches stale
/// slots (from an earlier lap) and producers that published before writing.
#[inline]
pub fn check_seq(slot: &Slot, pos: u64) -> Result<(), DecodeError> {
    let expected = pos as u32;
    if slot.seq == expected {
        Ok(())
    } else {
        Err(DecodeError::Sequence { expected, got: slot.seq })
    }
}

/// A message type that travels over the ring: [`Command`] or [`Event`].
pub trait Message: Sized + Copy {
    /// Human name for errors and docs ("command" / "event").
    const NAME: &'static str;
    /// A cheap valid value (no meaning): the initial content of a receiver's decode buffer.
    const PLACEHOLDER: Self;
    /// Encodes into a slot stamped with `seq`.
    fn encode(&self, seq: u32) -> Slot;
    /// Encodes into an existing slot stamped with `seq` (see [`encode_command_into`]).
    fn encode_into(&self, seq: u32, slot: &mut Slot);
    /// Decodes and validates a slot (everything but `seq`).
    fn decode(slot: &Slot) -> Result<Self, DecodeError>;
    /// Decodes and validates a slot into `out` in place (see [`decode_command_into`]).
    fn decode_into(slot: &Slot, out: &mut Self) -> Result<(), DecodeError>;
}

impl Message for Command {
    const NAME: &'static str = "command";
    const PLACEHOLDER: Self = Command::Dump { token: 0 };
    fn encode(&self, seq: u32) -> Slot {
        encode_command(self, seq)
    }
    #[inline]
    fn encode_into(&self, seq: u32, slot: &mut Slot) {
        encode_command_into(self, seq, slot)
    }
    fn decode(slot: &Slot) -> Result<Self, DecodeError> {
        decode_command(slot)
    }
    #[inline]
    fn decode_into(slot: &Slot, out: &mut Self) -> Result<(), DecodeError> {
        decode_command_into(slot, out)
    }
}

impl Message for Event {
    const NAME: &'static str = "event";
    const PLACEHOLDER: Self = Event::DumpDone { token: 0, count: 0 };
    fn encode(&self, seq: u32) -> Slot {
        encode_event(self, seq)
    }
    #[inline]
    fn encode_into(&self, seq: u32, slot: &mut Slot) {
        encode_event_into(self, seq, slot)
    }
    fn decode(slot: &Slot) -> Result<Self, DecodeError> {
        decode_event(slot)
    }
    #[inline]
    fn decode_into(slot: &Slot, out: &mut Self) -> Result<(), DecodeError> {
        decode_event_into(slot, out)
    }
}

/// Sizes of every wire struct, for the shared-memory size table.
pub(crate) const WIRE_SIZES: [(&str, usize); 11] = [
    ("Slot", std::mem::size_of::<Slot>()),
    ("WireAddr", std::mem::size_of::<WireAddr>()),
    ("WireKeys", std::mem::size_of::<WireKeys>()),
    ("WireLeg", std::mem::size_of::<WireLeg>()),
    ("WireSessionSpec", std::mem::size_of::<WireSessionSpec>()),
    ("WireStats", std::mem::size_of::<WireStats>()),
    ("WireDeleted", std::mem::size_of::<WireDeleted>()),
    ("WireError", std::mem::size_of::<WireError>()),
    ("WireMediaTimeout", std::mem::size_of::<WireMediaTimeout>()),
    ("WireDumpDone", std::mem::size_of::<WireDumpDone>()),
    ("WireDtmf", std::mem::size_of::<WireDtmf>()),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn leg() -> LegSpec {
        LegSpec {
            local: "192.0.2.1:30000".parse().unwrap(),
            remote: Some("[2001:db8::1]:4000".parse().unwrap()),
            remote_rtcp_port: 0,
            rtcp_mux: true,
            latch: LatchPolicy::Follow,
            signal_ip: Some("2001:db8::2".parse().unwrap()),
            pt_map: PtMap::new(),
            crypto: LegCrypto::default(),
            ptime_ms: 0,
        }
    }

    fn spec() -> SessionSpec {
        SessionSpec {
            id: SessionId(7),
            legs: [leg(), leg()],
            media_timeout_ms: 0,
            leg_timeout_ms: [30_000, 0],
            allow_fast_path: true,
        }
    }

    #[test]
    fn create_round_trip() {
        let c = Command::Create(spec());
        assert_eq!(decode_command(&encode_command(&c, 3)), Ok(c));
    }

    #[test]
    fn ptime_round_trips_and_an_odd_one_is_refused() {
        let mut sp = spec();
        sp.legs[1].ptime_ms = 30;
        let c = Command::Create(sp);
        assert_eq!(decode_command(&encode_command(&c, 3)), Ok(c));
        sp.legs[1].ptime_ms = 25;
        assert_eq!(decode_command(&encode_command(&Command::Create(sp), 4)), Err(DecodeError::Ptime(25)));
    }

    #[test]
    fn command_is_not_an_event() {
        let s = encode_command(&Command::Delete(SessionId(1)), 0);
        assert_eq!(decode_event(&s), Err(DecodeError::UnknownKind(KIND_DELETE)));
    }

    #[test]
    fn flipped_bit_fails_checksum() {
        let mut s = encode_command(&Command::Create(spec()), 0);
        s.body[100] ^= 1;
        assert!(matches!(decode_command(&s), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn zero_id_rejected() {
        let s = encode_command(&Command::Delete(SessionId(0)), 0);
        assert_eq!(decode_command(&s), Err(DecodeError::ZeroSessionId));
    }

    #[test]
    fn media_timeout_names_its_leg() {
        for leg in [None, Some(0), Some(1)] {
            let e = Event::MediaTimeout { id: SessionId(3), idle_ms: 30_000, leg };
            assert_eq!(decode_event(&encode_event(&e, 0)), Ok(e));
        }
        let w = WireMediaTimeout { id: 3, idle_ms: 1, leg: 3, reserved: 0 };
        let s = frame(KIND_MEDIA_TIMEOUT, 0, &w);
        assert_eq!(decode_event(&s), Err(DecodeError::Discriminant { field: "media_timeout.leg", value: 3 }));
    }

    #[test]
    fn bad_family_rejected() {
        let mut w = spec_to_wire(&spec());
        w.legs[1].remote.family = 5;
        let s = frame(KIND_CREATE, 0, &w);
        assert_eq!(decode_command(&s), Err(DecodeError::AddressFamily { field: "leg.remote", family: 5 }));
    }

    #[test]
    fn signal_ip_with_port_rejected() {
        let mut w = spec_to_wire(&spec());
        w.legs[0].signal_ip.port = 5060;
        let s = frame(KIND_CREATE, 0, &w);
        assert_eq!(decode_command(&s), Err(DecodeError::Reserved("leg.signal_ip")));
        let mut w = spec_to_wire(&spec());
        w.legs[1].signal_ip.family = 9;
        let s = frame(KIND_CREATE, 0, &w);
        assert_eq!(decode_command(&s), Err(DecodeError::AddressFamily { field: "leg.signal_ip", family: 9 }));
    }

    #[test]
    fn duplicate_pt_rejected() {
        let mut w = spec_to_wire(&spec());
        w.legs[0].pt_len = 2;
        w.legs[0].pts[0] = WirePt { pt: 8, codec: 1 };
        w.legs[0].pts[1] = WirePt { pt: 8, codec: 0 };
        assert_eq!(decode_command(&frame(KIND_CREATE, 0, &w)), Err(DecodeError::DuplicatePt(8)));
        w.legs[0].pts[1] = WirePt { pt: 200, codec: 0 };
        assert_eq!(decode_command(&frame(KIND_CREATE, 0, &w)), Err(DecodeError::PayloadType(200)));
        w.legs[0].pt_len = 9;
        assert_eq!(decode_command(&frame(KIND_CREATE, 0, &w)), Err(DecodeError::PtMapLength(9)));
    }

    #[test]
    fn unknown_suite_rejected() {
        let mut w = spec_to_wire(&spec());
        w.legs[0].tx.present = 1;
        w.legs[0].tx.suite = 9;
        assert_eq!(decode_command(&frame(KIND_CREATE, 0, &w)), Err(DecodeError::SrtpSuite(9)));
    }

    #[test]
    fn head_crc_matches_the_generic_checksum() {
        let mut s = encode_command(&Command::Create(spec()), 0xdead_beef);
        let stored = s.checksum;
        seal(&mut s);
        assert_eq!(s.checksum, stored);
        assert_eq!(head_crc(KIND_CREATE, 440), {
            let mut h = crc32fast::Hasher::new();
            h.update(&KIND_CREATE.to_ne_bytes());
            h.update(&440u32.to_ne_bytes());
            h.finalize()
        });
    }

    #[test]
    fn key_and_salt_lengths_are_what_the_decoder_assumes() {
        for s in [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
            SrtpSuite::AeadAes128Gcm,
            SrtpSuite::AeadAes256Gcm,
        ] {
            assert!(matches!(s.key_len(), 16 | 32), "{s:?}");
            assert!(matches!(s.salt_len(), 12 | 14), "{s:?}");
        }
    }

    /// Encoding in place over a previous lap's bytes writes every byte up to `len` (reserved
    /// ones included), and decoding in place over any previous message gives the same result.
    #[test]
    fn in_place_encode_and_decode_ignore_old_content() {
        let mut sp = spec();
        sp.legs[0].pt_map.push(PtEntry { pt: 96, codec: Codec::Opus });
        sp.legs[1].crypto.tx = Some(SrtpKeys {
            suite: SrtpSuite::AeadAes128Gcm,
            key: [3; 16].iter().chain(&[0; 16]).copied().collect::<Vec<_>>().try_into().unwrap(),
            salt: [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0],
        });
        let cmds =
            [Command::Create(sp), Command::Update(sp), Command::Delete(SessionId(9)), Command::Dump { token: 4 }];
        for c in cmds {
            let clean = encode_command(&c, 11);
            let mut dirty = Slot::from_bytes(&[0xa5; SLOT_SIZE]);
            encode_command_into(&c, 11, &mut dirty);
            let n = SLOT_HEADER_SIZE + clean.len as usize;
            assert_eq!(clean.as_bytes()[..n], dirty.as_bytes()[..n]);
            for prev in cmds {
                let mut out = prev;
                assert_eq!(decode_command_into(&dirty, &mut out), Ok(()));
                assert_eq!(out, c);
            }
        }
        let ev = Event::Session(sp);
        for prev in [Event::Created(SessionId(1)), ev] {
            let mut out = prev;
            assert_eq!(decode_event_into(&encode_event(&ev, 0), &mut out), Ok(()));
            assert_eq!(out, ev);
        }
    }

    #[test]
    fn seq_checked() {
        let s = encode_event(&Event::Created(SessionId(1)), 5);
        assert_eq!(check_seq(&s, 5), Ok(()));
        assert_eq!(check_seq(&s, 6), Err(DecodeError::Sequence { expected: 6, got: 5 }));
    }
}
