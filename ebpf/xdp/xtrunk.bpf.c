/* SPDX-License-Identifier: Apache-2.0 */
/*
 * xtrunk XDP program: steers media packets to AF_XDP sockets, forwards fast-path sessions in the
 * kernel, and passes everything else (SIP, SSH, ARP, ICMP, ports without a session) to the stack.
 *
 *   Ethernet [+ one 802.1Q/802.1ad tag] -> IPv4 (no fragments) | IPv6 (UDP as first next header)
 *   -> UDP dst port in [port_min, port_max] -> sessions[port]:
 *        XT_ACT_XSK  -> bpf_redirect_map(xsks, slot(ingress) * XT_MAX_QUEUES + rx_queue, XDP_PASS)
 *        XT_ACT_FAST -> rewrite MACs, addresses, ports, TTL, checksums (RFC 1624 incremental for
 *                       UDP, full recompute of the 20-byte IPv4 header) -> XDP_TX | bpf_redirect
 *   anything else -> XDP_PASS
 *
 * Every verdict is counted in the per-CPU `counters` map (enum xt_counter); every fast-path packet
 * in its port's `fast_stats` and its port group's `fast_groups`. Map layouts: xtrunk_maps.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xtrunk_maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xt_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_MAX_SESSION_PORTS);
	__type(key, struct xt_session_key);
	__type(value, struct xt_session);
} sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XT_MAX_IFACES);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* slot, < XT_MAX_IFACES */
} ifslots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XT_MAX_IFACES * XT_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct xt_fast_stats);
} fast_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xt_fast_groups);
} fast_groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XT_MAX_IFACES * XT_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct xt_queue_stats);
} queue_stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline struct xt_queue_stats *qstats(__u32 slot, __u32 rxq)
{
	if (slot >= XT_MAX_IFACES || rxq >= XT_MAX_QUEUES)
		return 0;
	__u32 key = slot * XT_MAX_QUEUES + rxq;
	return bpf_map_lookup_elem(&queue_stats, &key);
}

static __always_inline int pass(__u32 reason, struct xt_queue_stats *qs)
{
	count(reason);
	if (qs)
		qs->pass += 1;
	return XDP_PASS;
}

/* Folds a 32-bit one's-complement accumulator and returns its complement (the checksum field). */
static __always_inline __u16 csum_fold(__u32 acc)
{
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)~acc;
}

/* RFC 1624 eqn. 3 step for one 16-bit word: acc += ~m + m'. */
static __always_inline __u32 csum_replace16(__u32 acc, __u16 old, __u16 new)
{
	return acc + (__u16)~old + new;
}

/* Replaces `nwords` 16-bit words at `dst` by `src`, folding the change into `acc`. */
static __always_inline __u32 replace_words(__u32 acc, __u16 *dst, const __u16 *src, int nwords)
{
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= nwords)
			break;
		acc = csum_replace16(acc, dst[i], src[i]);
		dst[i] = src[i];
	}
	return acc;
}

/* Are the `nwords` 16-bit words at `a` and `b` equal? (16-bit loads, as for the rewrite.) */
static __always_inline int words_eq(const __u16 *a, const __u16 *b, int nwords)
{
	__u16 diff = 0;
#pragma unroll
	for (int i = 0; i < nwords; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static __always_inline int fast_forward(struct xdp_md *ctx, struct ethhdr *eth, void *l3,
					 struct udphdr *udp, void *data_end, int is_v6,
					 const struct xt_session *s, __u32 port,
					 struct xt_queue_stats *qs)
{
	const struct xt_fast_rule *r = &s->fast;
	__u16 *csum_field = &udp->check;
	__u32 acc;
	int udp_csum = 1;

	/* Only the peer's packets are forwarded here; anything else is the relay core's to drop. */
	if (udp->source != s->peer_port)
		return -2;
	if (!is_v6) {
		struct iphdr *ip = l3;
		if (r->family != XT_FAMILY_V4)
			return -1;
		if (!words_eq((const __u16 *)&ip->saddr, (const __u16 *)s->peer_addr, 2))
			return -2;
		if (ip->ihl != 5 || ip->ttl <= 1)
			return -1;
		if (udp->check == 0)
			udp_csum = 0;
		acc = (__u16)~udp->check;
		acc = replace_words(acc, (__u16 *)&ip->saddr, (const __u16 *)r->src_addr, 2);
		acc = replace_words(acc, (__u16 *)&ip->daddr, (const __u16 *)r->dst_addr, 2);
		acc = csum_replace16(acc, udp->source, r->src_port);
		acc = csum_replace16(acc, udp->dest, r->dst_port);
		ip->ttl -= 1;
		/* Full recompute of the fixed 20-byte header (ihl == 5 checked above). */
		ip->check = 0;
		__u32 h = 0;
		__u16 *w = (__u16 *)ip;
#pragma unroll
		for (int i = 0; i < 10; i++)
			h += w[i];
		ip->check = csum_fold(h);
	} else {
		struct ipv6hdr *ip6 = l3;
		if (r->family != XT_FAMILY_V6)
			return -1;
		if (!words_eq((const __u16 *)&ip6->saddr, (const __u16 *)s->peer_addr, 8))
			return -2;
		if (ip6->hop_limit <= 1)
			return -1;
		acc = (__u16)~udp->check;
		acc = replace_words(acc, (__u16 *)&ip6->saddr, (const __u16 *)r->src_addr, 8);
		acc = replace_words(acc, (__u16 *)&ip6->daddr, (const __u16 *)r->dst_addr, 8);
		acc = csum_replace16(acc, udp->source, r->src_port);
		acc = csum_replace16(acc, udp->dest, r->dst_port);
		ip6->hop_limit -= 1;
	}
	udp->source = r->src_port;
	udp->dest = r->dst_port;
	if (udp_csum) {
		__u16 c = csum_fold(acc);
		*csum_field = c ? c : 0xffff;
	}
	__builtin_memcpy(eth->h_dest, r->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->src_mac, ETH_ALEN);

	struct xt_fast_stats *fs = bpf_map_lookup_elem(&fast_stats, &port);
	if (fs) {
		fs->packets += 1;
		fs->bytes += (__u16)(bpf_ntohs(udp->len) - sizeof(struct udphdr));
	}
	/* The group count moves after the port's own counters (user space reads the group first,
	 * then the ports of a group that moved; a packet it misses now moves the group again). */
	asm volatile("" ::: "memory");
	__u32 zero = 0;
	struct xt_fast_groups *fg = bpf_map_lookup_elem(&fast_groups, &zero);
	if (fg)
		fg->packets[(port >> XT_FAST_GROUP_SHIFT) & (XT_FAST_GROUPS - 1)] += 1;
	if (qs)
		qs->fast += 1;
	if (r->ifindex == ctx->ingress_ifindex) {
		count(XT_CNT_FAST_TX);
		return XDP_TX;
	}
	count(XT_CNT_FAST_REDIRECT);
	return bpf_redirect(r->ifindex, 0);
}

SEC("xdp")
int xtrunk_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	const struct xt_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->magic != XT_ABI_MAGIC || cfg->abi_version != XT_ABI_VERSION)
		return pass(XT_CNT_PASS_DISABLED, 0);

	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *slotp = bpf_map_lookup_elem(&ifslots, &ifindex);
	if (!slotp)
		return pass(XT_CNT_PASS_UNKNOWN_IF, 0);
	__u32 slot = *slotp;
	__u32 rxq = ctx->rx_queue_index;
	struct xt_queue_stats *qs = qstats(slot, rxq);

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return pass(XT_CNT_PASS_MALFORMED, qs);
	void *l3 = eth + 1;
	__u16 proto = eth->h_proto;
	int vlan = 0;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;
		if ((void *)(vh + 1) > data_end)
			return pass(XT_CNT_PASS_MALFORMED, qs);
		proto = vh->encap_proto;
		l3 = vh + 1;
		vlan = 1;
	}

	struct udphdr *udp;
	int is_v6;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			return pass(XT_CNT_PASS_MALFORMED, qs);
		if (ip->protocol != IPPROTO_UDP)
			return pass(XT_CNT_PASS_NOT_UDP, qs);
		if (ip->frag_off & bpf_htons(0x3fff)) /* MF or offset */
			return pass(XT_CNT_PASS_FRAGMENT, qs);
		__u32 ihl = ip->ihl;
		if (ihl < 5)
			return pass(XT_CNT_PASS_MALFORMED, qs);
		udp = (void *)ip + ihl * 4;
		is_v6 = 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return pass(XT_CNT_PASS_MALFORMED, qs);
		if (ip6->nexthdr != IPPROTO_UDP) {
			/* Extension headers (incl. fragments) are left to the stack. */
			return pass(ip6->nexthdr == IPPROTO_TCP || ip6->nexthdr == IPPROTO_ICMPV6
					? XT_CNT_PASS_NOT_UDP : XT_CNT_PASS_FRAGMENT, qs);
		}
		udp = (void *)(ip6 + 1);
		is_v6 = 1;
	} else {
		return pass(XT_CNT_PASS_NOT_IP, qs);
	}
	if ((void *)(udp + 1) > data_end)
		return pass(XT_CNT_PASS_MALFORMED, qs);

	__u16 dport = bpf_ntohs(udp->dest);
	if (dport < cfg->port_min || dport > cfg->port_max)
		return pass(XT_CNT_PASS_OUT_OF_RANGE, qs);

	struct xt_session_key key = { .port = dport, .pad = 0 };
	const struct xt_session *s = bpf_map_lookup_elem(&sessions, &key);
	if (!s)
		return pass(XT_CNT_PASS_NO_SESSION, qs);

	if (s->action == XT_ACT_FAST) {
		if (!vlan) {
			int rc = fast_forward(ctx, eth, l3, udp, data_end, is_v6, s, dport, qs);
			if (rc >= 0)
				return rc;
			if (rc == -2) {
				count(XT_CNT_FAST_FOREIGN);
				goto xsk;
			}
		}
		count(XT_CNT_FAST_FALLBACK);
	}

xsk:
	if (slot >= XT_MAX_IFACES || rxq >= XT_MAX_QUEUES)
		return pass(XT_CNT_XSK_MISS, qs);
	int rc = bpf_redirect_map(&xsks, slot * XT_MAX_QUEUES + rxq, XDP_PASS);
	if (rc == XDP_REDIRECT) {
		count(XT_CNT_XSK_REDIRECT);
		if (qs)
			qs->xsk += 1;
		return rc;
	}
	return pass(XT_CNT_XSK_MISS, qs);
}

/* Lab/benchmark helper, not attached by the relay: counts and drops every frame (a receiver
 * that costs the benchmark's CPUs next to nothing). Frames of xtrunk-bench's measured phase
 * (IPv4/UDP, payload: RTP header, magic "XTB1", stream, seq, intended send time, phase = 1) are
 * also put in a latency histogram: now (CLOCK_MONOTONIC) - (sink_epoch + intended). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

/* CLOCK_MONOTONIC ns of the bench's epoch (its intended times are relative to it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_epoch SEC(".maps");

/* Latency buckets, log-linear over v = latency >> 10 (~µs): v < 64 -> bucket v; else with
 * m = floor(log2 v) (6..40): 64 + (m - 6) * 8 + the 3 bits of v below its top bit. */
#define XT_SINK_BUCKETS 512
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XT_SINK_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} sink_lat SEC(".maps");

#define XT_BENCH_MAGIC 0x58544231 /* "XTB1" */

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 m = 0;
	if (v >> 32) { v >>= 32; m += 32; }
	if (v >> 16) { v >>= 16; m += 16; }
	if (v >> 8) { v >>= 8; m += 8; }
	if (v >> 4) { v >>= 4; m += 4; }
	if (v >> 2) { v >>= 2; m += 2; }
	if (v >> 1) { m += 1; }
	return m;
}

static __always_inline void sink_record(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP)
		return;
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return;
	struct udphdr *udp = (void *)ip + ihl;
	if ((void *)(udp + 1) > end)
		return;
	__u8 *p = (void *)(udp + 1);
	if ((void *)(p + 37) > end)
		return;
	__u32 magic = (__u32)p[12] << 24 | (__u32)p[13] << 16 | (__u32)p[14] << 8 | p[15];
	if (magic != XT_BENCH_MAGIC || p[36] != 1)
		return;
	__u64 intended = 0;
#pragma unroll
	for (int i = 0; i < 8; i++)
		intended = intended << 8 | p[28 + i];
	__u32 zero = 0;
	__u64 *epoch = bpf_map_lookup_elem(&sink_epoch, &zero);
	if (!epoch)
		return;
	__u64 sent = *epoch + intended;
	__u64 now = bpf_ktime_get_ns();
	__u64 v = now > sent ? (now - sent) >> 10 : 0;
	__u32 b;
	if (v < 64) {
		b = (__u32)v;
	} else {
		__u32 m = log2_u64(v);
		if (m > 40)
			m = 40;
		b = 64 + (m - 6) * 8 + (__u32)((v >> (m - 3)) & 7);
	}
	if (b >= XT_SINK_BUCKETS)
		b = XT_SINK_BUCKETS - 1;
	__u64 *c = bpf_map_lookup_elem(&sink_lat, &b);
	if (c)
		*c += 1;
}

SEC("xdp")
int xtrunk_sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&sink_count, &zero);
	if (c)
		*c += 1;
	sink_record(ctx);
	return XDP_DROP;
}
