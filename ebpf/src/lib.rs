//! The XDP program (C, `xdp/xtrunk.bpf.c`) and the `#[repr(C)]` types of its maps, shared by the
//! kernel and user side.
//!
//! The object file is compiled by `build.rs` with `clang -O2 -g -target bpf` and embedded as
//! [`XDP_OBJECT`]; the loader lives in `xtrunk_datapath::xsk::loader`. The layouts below mirror
//! `xdp/xtrunk_maps.h` field for field; each carries a compile-time size check against the C side,
//! and a unit test checks that the constants agree with the header text.
//!
//! Map names (the ELF symbols user space opens): [`MAP_CONFIG`], [`MAP_SESSIONS`],
//! [`MAP_IFSLOTS`], [`MAP_XSKS`], [`MAP_COUNTERS`], [`MAP_FAST_STATS`], [`MAP_QUEUE_STATS`].

use core::mem::size_of;

/// The compiled XDP program (BPF ELF with BTF), aligned for the ELF parser.
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xtrunk.bpf.o"));

/// Name of the XDP program (section `xdp`) in [`XDP_OBJECT`].
pub const PROGRAM_NAME: &str = "xtrunk_xdp";

/// Lab/benchmark helper program in [`XDP_OBJECT`]: counts every frame in [`MAP_SINK_COUNT`] and
/// drops it. Never attached by the relay.
pub const SINK_PROGRAM_NAME: &str = "xtrunk_sink";
/// `sink_count` map: PERCPU_ARRAY of one u64, the frames [`SINK_PROGRAM_NAME`] dropped.
pub const MAP_SINK_COUNT: &str = "sink_count";
/// `sink_epoch` map: ARRAY of one u64, the CLOCK_MONOTONIC ns that the bench's intended send
/// times are relative to.
pub const MAP_SINK_EPOCH: &str = "sink_epoch";
/// `sink_lat` map: PERCPU_ARRAY of [`SINK_BUCKETS`] u64, the latency histogram of measured
/// bench packets (see [`sink_bucket_floor_ns`]).
pub const MAP_SINK_LAT: &str = "sink_lat";
/// Buckets of [`MAP_SINK_LAT`].
pub const SINK_BUCKETS: u32 = 512;

/// Lowest latency (ns) that falls into sink latency bucket `b`, the inverse of the program's
/// bucketing: over v = latency >> 10, v < 64 -> bucket v; else, with m = floor(log2 v),
/// 64 + (m - 6) * 8 + the 3 bits of v below its top bit.
pub fn sink_bucket_floor_ns(b: u32) -> u64 {
    // The program caps m at 40: bucket 64 + 34 * 8 + 7 = 343 is the last one it fills.
    let b = b.min(343);
    let v = if b < 64 {
        u64::from(b)
    } else {
        let m = (b - 64) / 8 + 6;
        let sub = u64::from((b - 64) % 8);
        (1u64 << m) | (sub << (m - 3))
    };
    v << 10
}

/// `config` map: ARRAY of one [`XtConfig`].
pub const MAP_CONFIG: &str = "config";
/// `sessions` map: HASH [`XtSessionKey`] → [`XtSession`].
pub const MAP_SESSIONS: &str = "sessions";
/// `ifslots` map: HASH ifindex (u32) → slot (u32, `< XT_MAX_IFACES`).
pub const MAP_IFSLOTS: &str = "ifslots";
/// `xsks` map: XSKMAP, key `slot * XT_MAX_QUEUES + rx_queue`.
pub const MAP_XSKS: &str = "xsks";
/// `counters` map: PERCPU_ARRAY of u64 indexed by [`Counter`].
pub const MAP_COUNTERS: &str = "counters";
/// `fast_stats` map: PERCPU_ARRAY of [`XtFastStats`] indexed by local port.
pub const MAP_FAST_STATS: &str = "fast_stats";
/// `fast_groups` map: PERCPU_ARRAY of one [`XtFastGroups`]: fast-path packets per group of
/// `1 << XT_FAST_GROUP_SHIFT` local ports.
pub const MAP_FAST_GROUPS: &str = "fast_groups";
/// `queue_stats` map: PERCPU_ARRAY of [`XtQueueStats`], key `slot * XT_MAX_QUEUES + rx_queue`.
pub const MAP_QUEUE_STATS: &str = "queue_stats";

/// `XT_ABI_MAGIC`: "XTK1".
pub const XT_ABI_MAGIC: u32 = 0x5854_4b31;
/// `XT_ABI_VERSION`: bumped whenever a layout or a meaning in `xtrunk_maps.h` changes.
pub const XT_ABI_VERSION: u32 = 3;
/// `XT_MAX_IFACES`: interfaces one program instance serves.
pub const XT_MAX_IFACES: u32 = 8;
/// `XT_MAX_QUEUES`: RX queues per interface that can have an XSK.
pub const XT_MAX_QUEUES: u32 = 64;
/// `XT_MAX_SESSION_PORTS`: capacity of the sessions map.
pub const XT_MAX_SESSION_PORTS: u32 = 65536;
/// `XT_ACT_XSK`: steer to the AF_XDP socket of the RX queue.
pub const XT_ACT_XSK: u32 = 1;
/// `XT_ACT_FAST`: rewrite and forward in the XDP program.
pub const XT_ACT_FAST: u32 = 2;
/// `XT_FAMILY_V4`.
pub const XT_FAMILY_V4: u8 = 4;
/// `XT_FAMILY_V6`.
pub const XT_FAMILY_V6: u8 = 6;
/// `XT_FAST_GROUP_SHIFT`: a local port's group in [`XtFastGroups`] is `port >> XT_FAST_GROUP_SHIFT`.
pub const XT_FAST_GROUP_SHIFT: u32 = 6;
/// `XT_FAST_GROUPS`: groups in [`XtFastGroups`] (65536 ports / 64).
pub const XT_FAST_GROUPS: usize = 1024;
/// `XT_CNT_MAX`: entries of the `counters` map.
pub const XT_CNT_MAX: u32 = 16;

/// `struct xt_config`: the one entry of the `config` map. The program is inert until user space
/// writes it with the right magic and version.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XtConfig {
    /// [`XT_ABI_MAGIC`].
    pub magic: u32,
    /// [`XT_ABI_VERSION`].
    pub abi_version: u32,
    /// First media port (inclusive, host order).
    pub port_min: u16,
    /// Last media port (inclusive, host order).
    pub port_max: u16,
    /// Reserved, 0.
    pub flags: u32,
}

/// `struct xt_session_key`: a relay-local UDP port (host order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XtSessionKey {
    /// Local port, host order.
    pub port: u16,
    /// Zero.
    pub pad: u16,
}

impl XtSessionKey {
    /// The key of `port`.
    pub const fn new(port: u16) -> Self {
        Self { port, pad: 0 }
    }
}

/// `struct xt_fast_rule`: how the XDP program rewrites a fast-path packet. Addresses and ports
/// in network byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XtFastRule {
    /// Egress interface; equal to the ingress one means `XDP_TX`, else `bpf_redirect`.
    pub ifindex: u32,
    /// [`XT_FAMILY_V4`] or [`XT_FAMILY_V6`]: family of ingress and egress (no translation).
    pub family: u8,
    /// Zero.
    pub pad: [u8; 3],
    /// Egress interface MAC.
    pub src_mac: [u8; 6],
    /// Next-hop MAC.
    pub dst_mac: [u8; 6],
    /// Relay's address on the egress leg (IPv4 in the first 4 bytes).
    pub src_addr: [u8; 16],
    /// Peer's address (IPv4 in the first 4 bytes).
    pub dst_addr: [u8; 16],
    /// Relay's port on the egress leg, network order.
    pub src_port: u16,
    /// Peer's port, network order.
    pub dst_port: u16,
}

/// `struct xt_session`: the value of the `sessions` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XtSession {
    /// [`XT_ACT_XSK`] or [`XT_ACT_FAST`].
    pub action: u32,
    /// Zero.
    pub pad: u32,
    /// Meaningful when `action == XT_ACT_FAST`.
    pub fast: XtFastRule,
    /// `XT_ACT_FAST`: the only source address the fast path forwards from (the arriving leg's
    /// peer; IPv4 in the first 4 bytes). Packets from any other source go to the XSK.
    pub peer_addr: [u8; 16],
    /// Port of `peer_addr`, network order.
    pub peer_port: u16,
    /// Zero.
    pub pad2: u16,
}

/// `struct xt_fast_stats`: what the fast path forwarded for one local port (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XtFastStats {
    /// Packets.
    pub packets: u64,
    /// UDP payload bytes.
    pub bytes: u64,
}

/// `struct xt_fast_groups`: the one value of the `fast_groups` map (per CPU): packets the fast path
/// forwarded per group of local ports, bumped after the port's own [`XtFastStats`]. The control
/// loop reads this value each tick and the `fast_stats` of a group only when its count moved.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtFastGroups {
    /// Packets per group (monotonic).
    pub packets: [u64; XT_FAST_GROUPS],
}

impl Default for XtFastGroups {
    fn default() -> Self {
        Self { packets: [0; XT_FAST_GROUPS] }
    }
}

/// `struct xt_queue_stats`: per interface slot and RX queue (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XtQueueStats {
    /// Redirected to the XSK of this queue.
    pub xsk: u64,
    /// Forwarded by the fast path.
    pub fast: u64,
    /// Passed to the kernel stack.
    pub pass: u64,
    /// Zero.
    pub pad: u64,
}

// Sizes of the C structs (xtrunk_maps.h comments state them; the header test re-checks the text).
const _: () = assert!(size_of::<XtConfig>() == 16);
const _: () = assert!(size_of::<XtSessionKey>() == 4);
const _: () = assert!(size_of::<XtFastRule>() == 56);
const _: () = assert!(size_of::<XtSession>() == 84);
const _: () = assert!(size_of::<XtFastStats>() == 16);
const _: () = assert!(size_of::<XtQueueStats>() == 32);
const _: () = assert!(size_of::<XtFastGroups>() == 8192);

// SAFETY: each type is #[repr(C)], made of integers and byte arrays only, with explicit padding
// fields (sizes asserted above), so every bit pattern is valid and no byte is uninitialised.
unsafe impl aya::Pod for XtConfig {}
// SAFETY: as above.
unsafe impl aya::Pod for XtSessionKey {}
// SAFETY: as above.
unsafe impl aya::Pod for XtFastRule {}
// SAFETY: as above.
unsafe impl aya::Pod for XtSession {}
// SAFETY: as above.
unsafe impl aya::Pod for XtFastStats {}
// SAFETY: as above.
unsafe impl aya::Pod for XtQueueStats {}
// SAFETY: as above.
unsafe impl aya::Pod for XtFastGroups {}

/// Index into the `counters` map: `enum xt_counter`, one per verdict reason.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// No or mismatched config: program inert.
    PassDisabled = 0,
    /// Not IP (ARP, LLDP, ...).
    PassNotIp = 1,
    /// IP but not UDP (TCP/SSH, ICMP, ...).
    PassNotUdp = 2,
    /// Truncated headers.
    PassMalformed = 3,
    /// IPv4 fragment or IPv6 extension header.
    PassFragment = 4,
    /// UDP port outside the media range (SIP, DNS, ...).
    PassOutOfRange = 5,
    /// Media-range port without a session.
    PassNoSession = 6,
    /// Ingress interface not registered.
    PassUnknownIf = 7,
    /// Steered to AF_XDP.
    XskRedirect = 8,
    /// No XSK on this queue: passed.
    XskMiss = 9,
    /// Fast path, same interface (`XDP_TX`).
    FastTx = 10,
    /// Fast path, other interface (`bpf_redirect`).
    FastRedirect = 11,
    /// Fast-path session, packet unsuitable (TTL, IP options, family, VLAN): sent to the XSK.
    FastFallback = 12,
    /// Reserved: `bpf_redirect` refused.
    FastRedirectErr = 13,
    /// Fast-path session, but the source is not the peer: sent to the XSK (dropped there).
    FastForeign = 14,
}

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Counter; 15] = [
        Self::PassDisabled,
        Self::PassNotIp,
        Self::PassNotUdp,
        Self::PassMalformed,
        Self::PassFragment,
        Self::PassOutOfRange,
        Self::PassNoSession,
        Self::PassUnknownIf,
        Self::XskRedirect,
        Self::XskMiss,
        Self::FastTx,
        Self::FastRedirect,
        Self::FastFallback,
        Self::FastRedirectErr,
        Self::FastForeign,
    ];

    /// Short name for logs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PassDisabled => "pass_disabled",
            Self::PassNotIp => "pass_not_ip",
            Self::PassNotUdp => "pass_not_udp",
            Self::PassMalformed => "pass_malformed",
            Self::PassFragment => "pass_fragment",
            Self::PassOutOfRange => "pass_out_of_range",
            Self::PassNoSession => "pass_no_session",
            Self::PassUnknownIf => "pass_unknown_if",
            Self::XskRedirect => "xsk_redirect",
            Self::XskMiss => "xsk_miss",
            Self::FastTx => "fast_tx",
            Self::FastRedirect => "fast_redirect",
            Self::FastFallback => "fast_fallback",
            Self::FastRedirectErr => "fast_redirect_err",
            Self::FastForeign => "fast_foreign",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = include_str!("../xdp/xtrunk_maps.h");

    fn define(name: &str) -> u64 {
        let line = HEADER
            .lines()
            .find(|l| l.starts_with(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} not in header"));
        let v = line.split_whitespace().nth(2).unwrap().trim_end_matches('u');
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            None => v.parse().unwrap(),
        }
    }

    #[test]
    fn constants_match_header() {
        assert_eq!(define("XT_ABI_MAGIC"), u64::from(XT_ABI_MAGIC));
        assert_eq!(define("XT_ABI_VERSION"), u64::from(XT_ABI_VERSION));
        assert_eq!(define("XT_MAX_IFACES"), u64::from(XT_MAX_IFACES));
        assert_eq!(define("XT_MAX_QUEUES"), u64::from(XT_MAX_QUEUES));
        assert_eq!(define("XT_MAX_SESSION_PORTS"), u64::from(XT_MAX_SESSION_PORTS));
        assert_eq!(define("XT_ACT_XSK"), u64::from(XT_ACT_XSK));
        assert_eq!(define("XT_ACT_FAST"), u64::from(XT_ACT_FAST));
        assert_eq!(define("XT_FAMILY_V4"), u64::from(XT_FAMILY_V4));
        assert_eq!(define("XT_FAMILY_V6"), u64::from(XT_FAMILY_V6));
        assert_eq!(define("XT_FAST_GROUP_SHIFT"), u64::from(XT_FAST_GROUP_SHIFT));
        assert_eq!(define("XT_FAST_GROUPS"), XT_FAST_GROUPS as u64);
        assert_eq!(1usize << XT_FAST_GROUP_SHIFT << 10, 65536, "groups cover every port");
    }

    #[test]
    fn sizes_match_header_comments() {
        for (name, size) in [
            ("config map value", size_of::<XtConfig>()),
            ("sessions map key", size_of::<XtSessionKey>()),
            ("How the XDP program rewrites", size_of::<XtFastRule>()),
            ("sessions map value", size_of::<XtSession>()),
            ("fast_groups map value", size_of::<XtFastGroups>()),
        ] {
            let line = HEADER.lines().find(|l| l.contains(name)).unwrap();
            assert!(line.contains(&format!("{size} bytes")), "{name}: {line}");
        }
    }

    #[test]
    fn counters_match_header() {
        for c in Counter::ALL {
            let want = format!("= {},", c as u32);
            let cname = format!("XT_CNT_{} ", c.name().to_uppercase());
            let line = HEADER.lines().find(|l| l.contains(&cname)).unwrap_or_else(|| panic!("{cname}"));
            assert!(line.contains(&want), "{line}");
        }
        assert_eq!(define_enum_max(), u64::from(XT_CNT_MAX));
    }

    fn define_enum_max() -> u64 {
        let line = HEADER.lines().find(|l| l.contains("XT_CNT_MAX =")).unwrap();
        line.split('=').nth(1).unwrap().trim().trim_end_matches(',').parse().unwrap()
    }

    #[test]
    fn object_is_bpf_elf() {
        assert_eq!(&XDP_OBJECT[..4], b"\x7fELF");
        assert_eq!(XDP_OBJECT[18], 247, "e_machine must be EM_BPF");
    }
}

#[cfg(test)]
mod sink_bucket_tests {
    use super::sink_bucket_floor_ns;

    /// The program's bucketing (xtrunk.bpf.c, `sink_record`), written again.
    fn bucket(lat_ns: u64) -> u32 {
        let v = lat_ns >> 10;
        if v < 64 {
            return v as u32;
        }
        let m = (63 - v.leading_zeros()).min(40);
        (64 + (m - 6) * 8 + ((v >> (m - 3)) & 7) as u32).min(511)
    }

    #[test]
    fn floors_invert_the_bucketing() {
        let mut x: u64 = 1;
        while x < 1 << 50 {
            for lat in [x, x + x / 3, x * 2 - 1] {
                let b = bucket(lat);
                assert!(sink_bucket_floor_ns(b) <= lat, "lat {lat} bucket {b}");
                if b < 343 {
                    assert!(lat < sink_bucket_floor_ns(b + 1), "lat {lat} bucket {b}");
                }
            }
            x = x * 3 / 2 + 1;
        }
        // Monotonic floors.
        for b in 0..511 {
            assert!(sink_bucket_floor_ns(b) <= sink_bucket_floor_ns(b + 1));
        }
    }
}
