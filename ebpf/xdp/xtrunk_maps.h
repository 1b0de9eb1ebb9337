/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ABI between the XDP program (xtrunk.bpf.c) and user space (ebpf/src/maps.rs).
 *
 * Every struct here has a #[repr(C)] twin in ebpf/src/maps.rs with a compile-time size check;
 * XT_ABI_VERSION changes whenever a layout or a meaning changes. The program acts only while the
 * `config` map carries XT_ABI_MAGIC and XT_ABI_VERSION (user space writes it after loading); until
 * then, or on a mismatch, every packet is XDP_PASS and counted in XT_CNT_PASS_DISABLED.
 *
 * All addresses and ports stored in maps are in network byte order, exactly as on the wire,
 * except the config port range and the session key (host order, for range compares).
 */
#ifndef XTRUNK_MAPS_H
#define XTRUNK_MAPS_H

#define XT_ABI_MAGIC 0x58544b31u /* "XTK1" */
#define XT_ABI_VERSION 3u

/* Interfaces one program instance serves (the XSKMAP key is slot * XT_MAX_QUEUES + rx queue). */
#define XT_MAX_IFACES 8
/* RX queues per interface that can have an XSK. */
#define XT_MAX_QUEUES 64
/* Session map capacity (local ports with a session). */
#define XT_MAX_SESSION_PORTS 65536

/* config map value (ARRAY, 1 entry, key 0). 16 bytes. */
struct xt_config {
	__u32 magic;        /* XT_ABI_MAGIC */
	__u32 abi_version;  /* XT_ABI_VERSION */
	__u16 port_min;     /* media port range, inclusive, host order */
	__u16 port_max;
	__u32 flags;        /* reserved, 0 */
};

/* sessions map key (HASH): the relay's local UDP port, host order. 4 bytes. */
struct xt_session_key {
	__u16 port;
	__u16 pad;          /* 0 */
};

/* xt_session.action */
#define XT_ACT_XSK  1u      /* steer to the AF_XDP socket of the RX queue */
#define XT_ACT_FAST 2u      /* rewrite and forward in the XDP program */

/* xt_fast_rule.family */
#define XT_FAMILY_V4 4
#define XT_FAMILY_V6 6

/* How the XDP program rewrites a fast-path packet. 56 bytes. */
struct xt_fast_rule {
	__u32 ifindex;      /* egress interface; == ingress => XDP_TX, else bpf_redirect */
	__u8 family;        /* XT_FAMILY_V4 or XT_FAMILY_V6: of ingress and egress (no translation) */
	__u8 pad[3];
	__u8 src_mac[6];    /* egress interface MAC */
	__u8 dst_mac[6];    /* next hop MAC */
	__u8 src_addr[16];  /* relay's address on the egress leg (IPv4: first 4 bytes) */
	__u8 dst_addr[16];  /* peer's address */
	__u16 src_port;     /* network order */
	__u16 dst_port;     /* network order */
};

/* sessions map value. 84 bytes. */
struct xt_session {
	__u32 action;       /* XT_ACT_* */
	__u32 pad;
	struct xt_fast_rule fast; /* meaningful when action == XT_ACT_FAST */
	/* XT_ACT_FAST: the only source the fast path forwards from (the arriving leg's latched or
	 * SDP peer; family as fast.family). Any other source goes to the XSK, where the relay core
	 * drops and counts it. */
	__u8 peer_addr[16]; /* IPv4: first 4 bytes */
	__u16 peer_port;    /* network order */
	__u16 pad2;
};

/* fast_stats map value (PERCPU_ARRAY indexed by local port): what the fast path forwarded. */
struct xt_fast_stats {
	__u64 packets;
	__u64 bytes;        /* UDP payload bytes */
};

/* fast_groups map value (PERCPU_ARRAY, 1 entry, key 0). 8192 bytes. Packets the fast path
 * forwarded per group of 2^XT_FAST_GROUP_SHIFT consecutive local ports (group = port >>
 * XT_FAST_GROUP_SHIFT), bumped after the port's fast_stats. User space reads this one value per
 * control tick and reads fast_stats only for the groups whose count moved: control work follows
 * traffic, not sessions. */
#define XT_FAST_GROUP_SHIFT 6
#define XT_FAST_GROUPS 1024
struct xt_fast_groups {
	__u64 packets[XT_FAST_GROUPS];
};

/* queue_stats map value (PERCPU_ARRAY indexed by slot * XT_MAX_QUEUES + rx queue). */
struct xt_queue_stats {
	__u64 xsk;          /* redirected to the XSK of this queue */
	__u64 fast;         /* forwarded by the fast path */
	__u64 pass;         /* passed to the kernel stack */
	__u64 pad;
};

/* counters map index (PERCPU_ARRAY of __u64): one per verdict reason. */
enum xt_counter {
	XT_CNT_PASS_DISABLED = 0,   /* no or mismatched config: program inert */
	XT_CNT_PASS_NOT_IP = 1,     /* ARP, LLDP, ... */
	XT_CNT_PASS_NOT_UDP = 2,    /* TCP (SSH), ICMP, ... */
	XT_CNT_PASS_MALFORMED = 3,  /* truncated headers */
	XT_CNT_PASS_FRAGMENT = 4,   /* IPv4 fragment or IPv6 extension header */
	XT_CNT_PASS_OUT_OF_RANGE = 5, /* UDP port outside the media range (SIP, DNS, ...) */
	XT_CNT_PASS_NO_SESSION = 6, /* media-range port without a session */
	XT_CNT_PASS_UNKNOWN_IF = 7, /* interface not registered in ifslots */
	XT_CNT_XSK_REDIRECT = 8,    /* steered to AF_XDP */
	XT_CNT_XSK_MISS = 9,        /* no XSK on this queue: passed */
	XT_CNT_FAST_TX = 10,        /* fast path, same interface */
	XT_CNT_FAST_REDIRECT = 11,  /* fast path, other interface */
	XT_CNT_FAST_FALLBACK = 12,  /* fast-path session but packet unsuitable (TTL, options, family, VLAN): to XSK */
	XT_CNT_FAST_REDIRECT_ERR = 13, /* bpf_redirect refused */
	XT_CNT_FAST_FOREIGN = 14,   /* fast-path session, source is not the peer: to XSK (dropped there) */
	XT_CNT_MAX = 16,
};

#endif
