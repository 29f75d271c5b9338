// SPDX-License-Identifier: GPL-2.0
// The per-segment shift of spliced TCP flows (docs/splice.md, "Sequence spaces"), done by tc programs so
// that no segment of an established spliced flow reaches user space:
//   ks_node_out (node, tc egress):     node → client: seq -= sOff, TSval += tsOff, window rescaled,
//                                      source port → the cluster port;
//   ks_gw_in    (gateway, tc ingress): client → node: ack += sOff, SACK edges += sOff, TSecr -= tsOff,
//                                      destination port → the node port, mark → the node's route.
// Every field is patched with an incremental checksum update (RFC 1624) through bpf_l4_csum_replace,
// which leaves a partial checksum (CHECKSUM_PARTIAL: none of these fields is in the pseudo header) alone,
// so TSO/GRO super-packets are rewritten once and stay whole. IPv4 flows are in ks_node and ks_gw, IPv6
// flows (a fixed 40-byte header followed by TCP; a segment with extension headers stays on the user-space
// path) in ks_node6 and ks_gw6: the same values, 16-byte addresses in the keys.
// The map layouts are mirrored in src/maps.ts: change both together.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// The agent's nftables table marks what the node sends on an established spliced flow with this
// (apps/node-agent/src/nft.ts KSPLICE_MARK); everything else is passed untouched after one compare.
#define KSPLICE_MARK 0x6f6b

// Both programs run on Ethernet devices only (the loaders attach nothing else).
#define L3 ETH_HLEN
#define TCP_CSUM 16

// The flags that leave a segment to user space: the replayed handshake and the end of a flow, which
// the agent and the gateway track.
#define CTL_FLAGS 0x07 /* FIN | SYN | RST */

struct node_key {
  __be32 client;
  __be32 cluster;
  __be16 client_port;
  __be16 node_port;
};

struct node_val {
  __u32 s_off;
  __u32 ts_off;
  __be16 cluster_port;
  __u8 node_wscale;
  __u8 gw_wscale;
  __u32 reserved;
  __u64 packets;
};

// The agent's shift message names no cluster address (docs/splice.md, type 3): the client's address
// and port and the cluster port tell the flow.
struct gw_key {
  __be32 client;
  __be16 client_port;
  __be16 cluster_port;
};

struct gw_val {
  __u32 s_off;
  __u32 ts_off;
  __be16 node_port;
  __u16 reserved;
  __u32 mark;
  __u64 packets;
};

struct node6_key {
  __u8 client[16];
  __u8 cluster[16];
  __be16 client_port;
  __be16 node_port;
};

struct gw6_key {
  __u8 client[16];
  __be16 client_port;
  __be16 cluster_port;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct node_key);
  __type(value, struct node_val);
} ks_node SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct node6_key);
  __type(value, struct node_val);
} ks_node6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct gw6_key);
  __type(value, struct gw_val);
} ks_gw6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct gw_key);
  __type(value, struct gw_val);
} ks_gw SEC(".maps");

// Per-CPU counters, summed on scrape: see STAT_* in src/maps.ts.
enum { ST_NODE_SHIFTED, ST_NODE_NO_FLOW, ST_GW_SHIFTED, ST_MAX };

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ST_MAX);
  __type(key, __u32);
  __type(value, __u64);
} ks_stats SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64 *c = bpf_map_lookup_elem(&ks_stats, &which);
  if (c) *c += 1;
}

// patch32 adds `add` to the 32-bit big-endian field at `at` bytes into the TCP header. A field at an odd
// offset (an option after a single NOP) straddles checksum words, so the diff then covers the six bytes
// from the word boundary before it (RFC 1624 works on 16-bit words).
static __always_inline int patch32(struct __sk_buff *skb, __u32 tcp, __u32 at, __u32 add) {
  __u32 off = tcp + at;
  if ((at & 1) == 0) {
    __be32 old;
    if (bpf_skb_load_bytes(skb, off, &old, 4)) return -1;
    __be32 nw = bpf_htonl(bpf_ntohl(old) + add);
    if (bpf_skb_store_bytes(skb, off, &nw, 4, 0)) return -1;
    return bpf_l4_csum_replace(skb, tcp + TCP_CSUM, old, nw, 4);
  }
  __u8 o[8] = {0}, n[8] = {0};
  if (bpf_skb_load_bytes(skb, off - 1, o, 6)) return -1;
  __builtin_memcpy(n, o, 8);
  __u32 v = ((__u32)o[1] << 24 | (__u32)o[2] << 16 | (__u32)o[3] << 8 | o[4]) + add;
  n[1] = v >> 24;
  n[2] = v >> 16;
  n[3] = v >> 8;
  n[4] = v;
  if (bpf_skb_store_bytes(skb, off - 1, n, 6, 0)) return -1;
  __s64 d = bpf_csum_diff((__be32 *)o, 8, (__be32 *)n, 8, 0);
  if (d < 0) return -1;
  return bpf_l4_csum_replace(skb, tcp + TCP_CSUM, 0, (__u32)d, 0);
}

static __always_inline int patch16(struct __sk_buff *skb, __u32 tcp, __u32 at, __be16 old, __be16 nw) {
  if (old == nw) return 0;
  if (bpf_skb_store_bytes(skb, tcp + at, &nw, 2, 0)) return -1;
  return bpf_l4_csum_replace(skb, tcp + TCP_CSUM, old, nw, 2);
}

// tcp_at parses IPv4 + TCP (no fragments) and returns the TCP header's offset, or 0.
static __always_inline __u32 tcp_at(struct __sk_buff *skb, struct iphdr *ip, struct tcphdr *th) {
  if (bpf_skb_load_bytes(skb, L3, ip, sizeof(*ip))) return 0;
  if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_TCP) return 0;
  if (ip->frag_off & bpf_htons(0x3fff)) return 0; // MF or an offset: not a whole segment
  __u32 tcp = L3 + ip->ihl * 4;
  if (bpf_skb_load_bytes(skb, tcp, th, sizeof(*th))) return 0;
  if (th->doff < 5) return 0;
  return tcp;
}

// tcp6_at parses IPv6 + TCP, TCP right after the fixed header (RFC 8200 §3: Next Header 6), and returns
// the TCP header's offset, or 0.
static __always_inline __u32 tcp6_at(struct __sk_buff *skb, struct ipv6hdr *ip, struct tcphdr *th) {
  if (bpf_skb_load_bytes(skb, L3, ip, sizeof(*ip))) return 0;
  if (ip->version != 6 || ip->nexthdr != IPPROTO_TCP) return 0;
  __u32 tcp = L3 + sizeof(*ip);
  if (bpf_skb_load_bytes(skb, tcp, th, sizeof(*th))) return 0;
  if (th->doff < 5) return 0;
  return tcp;
}

// Option kinds (RFC 9293 §3.1; SACK RFC 2018 §3; timestamps RFC 7323 §3.2).
#define OPT_END 0
#define OPT_NOP 1
#define OPT_SACK 5
#define OPT_TS 8
#define OPT_MAX 40

// The options, copied once; bpf_loop walks them (a plain loop's paths outgrow the verifier's budget).
struct opt_scan {
  __u8 opts[OPT_MAX];
  __u32 at, end;
  // Offsets from the TCP header (0: absent).
  __u32 ts, sack, sack_len;
};

static long scan_one(__u32 i, void *ctx) {
  struct opt_scan *s = ctx;
  __u32 at = s->at;
  if (at >= s->end || at >= OPT_MAX - 1) return 1;
  __u8 kind = s->opts[at];
  if (kind == OPT_END) return 1;
  if (kind == OPT_NOP) {
    s->at = at + 1;
    return 0;
  }
  __u8 len = s->opts[at + 1];
  if (len < 2 || at + len > s->end) return 1;
  if (kind == OPT_TS && len == 10) s->ts = sizeof(struct tcphdr) + at;
  else if (kind == OPT_SACK && len >= 10) {
    s->sack = sizeof(struct tcphdr) + at;
    s->sack_len = len;
  }
  s->at = at + len;
  return 0;
}

// scan_options fills `s` from the segment's options; false when they cannot be read.
static __always_inline int scan_options(struct __sk_buff *skb, __u32 tcp, __u32 doff, struct opt_scan *s) {
  __u32 n = doff * 4 - sizeof(struct tcphdr);
  if (n == 0 || n > OPT_MAX) return 0;
  if (bpf_skb_load_bytes(skb, tcp + sizeof(struct tcphdr), s->opts, n)) return 0;
  s->end = n;
  bpf_loop(OPT_MAX, scan_one, s, 0);
  return 1;
}

// shift_node rewrites one node → client segment of the flow `v` (the node's program).
static __always_inline int shift_node(struct __sk_buff *skb, __u32 tcp, struct tcphdr *th, struct node_val *v) {
  __u32 s_off = v->s_off, ts_off = v->ts_off;
  __be16 cport = v->cluster_port;
  __u8 nws = v->node_wscale, gws = v->gw_wscale;
  __sync_fetch_and_add(&v->packets, 1);
  if (patch32(skb, tcp, 4, -s_off)) return TC_ACT_SHOT;
  if (patch16(skb, tcp, 0, th->source, cport)) return TC_ACT_SHOT;
  if (nws != gws) {
    // RFC 7323 §2.3: the window field is scaled by the sender's shift; the client expects the gateway's.
    __u32 w = ((__u32)bpf_ntohs(th->window) << (nws & 15)) >> (gws & 15);
    if (w > 0xffff) w = 0xffff;
    if (patch16(skb, tcp, 14, th->window, bpf_htons((__u16)w))) return TC_ACT_SHOT;
  }
  if (ts_off != 0 && th->doff > 5) {
    struct opt_scan s = {};
    if (scan_options(skb, tcp, th->doff, &s) && s.ts != 0 && patch32(skb, tcp, s.ts + 2, ts_off))
      return TC_ACT_SHOT; // TSval
  }
  // Shifted once: a stacked device below this one (a VLAN's parent, a bond's slave) must not shift it again.
  skb->mark = 0;
  count(ST_NODE_SHIFTED);
  return TC_ACT_OK;
}

SEC("tc")
int ks_node_out(struct __sk_buff *skb) {
  if (skb->mark != KSPLICE_MARK) return TC_ACT_OK;
  struct tcphdr th;
  struct node_val *v = 0;
  __u32 tcp = 0;
  if (skb->protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr ip;
    tcp = tcp_at(skb, &ip, &th);
    if (tcp == 0) return TC_ACT_OK;
    struct node_key k = {
        .client = ip.daddr, .cluster = ip.saddr, .client_port = th.dest, .node_port = th.source};
    v = bpf_map_lookup_elem(&ks_node, &k);
  } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr ip;
    tcp = tcp6_at(skb, &ip, &th);
    if (tcp == 0) return TC_ACT_OK;
    struct node6_key k = {.client_port = th.dest, .node_port = th.source};
    __builtin_memcpy(k.client, &ip.daddr, 16);
    __builtin_memcpy(k.cluster, &ip.saddr, 16);
    v = bpf_map_lookup_elem(&ks_node6, &k);
  } else
    return TC_ACT_OK;
  if (!v) {
    count(ST_NODE_NO_FLOW);
    return TC_ACT_OK;
  }
  return shift_node(skb, tcp, &th, v);
}

// shift_gw rewrites one client → node segment of the flow `v` and marks it to its node (the gateway's).
static __always_inline int shift_gw(struct __sk_buff *skb, __u32 tcp, struct tcphdr *th, struct gw_val *v) {
  __u32 s_off = v->s_off, ts_off = v->ts_off, mark = v->mark;
  __be16 nport = v->node_port;
  __sync_fetch_and_add(&v->packets, 1);
  if (th->ack && patch32(skb, tcp, 8, s_off)) return TC_ACT_SHOT;
  if (patch16(skb, tcp, 2, th->dest, nport)) return TC_ACT_SHOT;
  if (th->doff > 5) {
    struct opt_scan s = {};
    if (scan_options(skb, tcp, th->doff, &s)) {
      if (s.ts != 0 && ts_off != 0 && patch32(skb, tcp, s.ts + 6, -ts_off)) return TC_ACT_SHOT; // TSecr
      // RFC 2018 §3: blocks of left and right edges, in the node's numbering after the shift.
      __u32 edges = (s.sack_len - 2) / 4;
      for (__u32 e = 0; s.sack != 0 && e < 8 && e < edges; e++)
        if (patch32(skb, tcp, s.sack + 2 + e * 4, s_off)) return TC_ACT_SHOT;
    }
  }
  skb->mark = mark;
  count(ST_GW_SHIFTED);
  return TC_ACT_OK;
}

SEC("tc")
int ks_gw_in(struct __sk_buff *skb) {
  // Marked already: shifted on the device below this one (stacked devices see a packet twice).
  if (skb->mark != 0) return TC_ACT_OK;
  struct tcphdr th;
  struct gw_val *v = 0;
  __u32 tcp = 0;
  if (skb->protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr ip;
    tcp = tcp_at(skb, &ip, &th);
    if (tcp == 0) return TC_ACT_OK;
    struct gw_key k = {.client = ip.saddr, .client_port = th.source, .cluster_port = th.dest};
    v = bpf_map_lookup_elem(&ks_gw, &k);
  } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr ip;
    tcp = tcp6_at(skb, &ip, &th);
    if (tcp == 0) return TC_ACT_OK;
    struct gw6_key k = {.client_port = th.source, .cluster_port = th.dest};
    __builtin_memcpy(k.client, &ip.saddr, 16);
    v = bpf_map_lookup_elem(&ks_gw6, &k);
  } else
    return TC_ACT_OK;
  if (!v) return TC_ACT_OK;
  // FIN, SYN and RST stay on the user-space path, which tracks the end of the flow.
  if (((__u8 *)&th)[13] & CTL_FLAGS) return TC_ACT_OK;
  return shift_gw(skb, tcp, &th, v);
}

char LICENSE[] SEC("license") = "GPL";
