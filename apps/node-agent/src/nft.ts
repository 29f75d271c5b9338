import type { ResolvedConfig } from './config.js';

/** The agent's nftables table; it owns the whole table and replaces it in one transaction. */
export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'onehost_agent';
/** The agent's IPv6 table (only with IPv6 cluster addresses): the IPv6 twin of the ping rule. */
export const NFT_FAMILY6 = 'ip6';
/** The packet mark that makes the kernel route a reply again (see `reroute_out`). */
export const REROUTE_MARK = 0x6f68;
/**
 * The packet mark that sends what the node's kernel sends on a spliced connection to the agent's TUN:
 * set in `splice_out`, matched by the agent's `ip rule fwmark` (see `splice-io.ts`). No rule matches
 * REROUTE_MARK, so the two never select each other's route.
 */
export const SPLICE_MARK = 0x6f69;
/**
 * The mark on what the agent itself sends for spliced connections (its raw socket, SO_MARK): never
 * captured again, not tracked by conntrack, left alone by the MOUNT source-port restore.
 */
export const BYPASS_MARK = 0x6f6a;
/**
 * The mark on what the node sends on an established spliced connection when the kernel shifts it (the
 * agent's tc program, `@onehost/ksplice`, looks at nothing else): routed normally, left alone by the
 * MOUNT source-port restore (the program keys the flow by the node's own port and restores it).
 * Mirrored in packages/ksplice/bpf/splice.bpf.c.
 */
export const KSPLICE_MARK = 0x6f6b;

const hex = (mark: number) => `0x${mark.toString(16)}`;

function set(items: readonly string[]): string {
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

/**
 * nftRuleset renders the agent's table for a config. Loading it replaces any earlier version of the table
 * atomically (declare, delete, define in one `nft -f` transaction), so applying twice never duplicates rules.
 *
 * - prerouting raw: the outer VXLAN datagrams skip conntrack (the gateway varies their source port per
 *   flow, so each inner flow would otherwise cost a conntrack entry on the node).
 * - input, before the default filter: VXLAN (UDP to the VXLAN port) from anything but a gateway is dropped
 *   and counted, before the kernel's VXLAN socket sees it.
 * - output route chain: a packet about to leave through the VXLAN device is routed again by the table.
 *   Servers that answer UDP through the interface a request came in on (IP_PKTINFO with the arrival
 *   ifindex: ntirpc, hence nfs-ganesha's MOUNT and NFS over UDP) would send their replies into the
 *   VXLAN device, which only decapsulates and has nowhere to send them (the kernel takes the client
 *   for a neighbour there). Changing the mark in a `route` chain makes the kernel route the packet
 *   again, without the pinned interface (ip_route_me_harder): out by the default route via a gateway.
 * - output at priority filter (after conntrack, which must keep seeing the node's own port): stateless
 *   source-port restore for ports the gateway rewrote inbound (MOUNT); the kernel fixes the L4 checksum.
 * - postrouting SNAT (conntrack maps the replies back): a socket bound to the internal address talking
 *   outside the cluster leaves as the cluster address of the network that reaches the destination, with a
 *   port from the SNAT part of the block, which does not overlap the ephemeral range. The node's pings
 *   (from a cluster address too) take their echo identifier from that part of the block, so the gateway
 *   routes echo replies to the node by identifier as it routes ports by block.
 * - with `splice` (delayed binding, docs/splice.md), two more chains and a first rule in `restore_out`:
 *   - `splice_out`, a route chain one step before `reroute_out`: TCP from a cluster address and a
 *     capture port (the node's own port: the MOUNT restore has not run yet), not leaving by `lo` and not
 *     the agent's own, gets SPLICE_MARK; the kernel routes it again, the agent's `ip rule` sends it to the
 *     agent's TUN. `reroute_out` then sees the TUN as the output device and leaves it alone.
 *   - `splice_raw`, output at priority raw: what the agent sends (BYPASS_MARK) skips conntrack. Its
 *     sequence numbers are the client's view, so the connection's conntrack entry (made by the replayed
 *     SYN, in the node's numbering) would find them out of window and call them INVALID, which common
 *     firewall rules (`ct state invalid drop`) drop.
 *   - `restore_out` returns early for both marks: the agent sees the node's port on captured packets and
 *     sends its own packets exactly as built (with the cluster port already in place).
 *   - with `splice.kernel` (the agent's tc program is attached), a rule before the capture: segments
 *     without SYN, FIN or RST get KSPLICE_MARK instead and leave by the normal routes; the tc program on
 *     the way out shifts them. The replayed handshake and the end of each flow still reach the agent.
 */
export function nftRuleset(c: ResolvedConfig): string {
  const t = `table ${NFT_FAMILY} ${NFT_TABLE}`;
  const vips = c.networks.map((n) => n.address);
  const snatRange = `${c.ports.snat.lo}-${c.ports.snat.hi}`;
  const splice = c.splice;
  const spliceMarks = `meta mark { ${[SPLICE_MARK, BYPASS_MARK, ...(splice?.kernel ? [KSPLICE_MARK] : [])].map(hex).join(', ')} }`;
  const restore = c.mountPorts.map(
    (m) =>
      `    ip saddr ${set(vips)} ${m.proto} sport ${m.nodePort} ${m.proto} sport set ${m.clusterPort} counter comment "restore ${m.proto} ${m.nodePort}->${m.clusterPort}"`,
  );
  const snat = [
    ...c.networks
      .filter((n) => !n.default && (n.prefixes ?? []).length > 0)
      .map(
        (n) =>
          `    ip daddr ${set(n.prefixes ?? [])} meta l4proto { tcp, udp, icmp } snat to ${n.address}:${snatRange} comment "${n.name}"`,
      ),
    `    meta l4proto { tcp, udp, icmp } snat to ${c.defaultNetwork.address}:${snatRange} comment "${c.defaultNetwork.name}"`,
  ];
  const spliceChains =
    splice === null
      ? []
      : [
          '  chain splice_raw {',
          '    type filter hook output priority raw; policy accept;',
          `    meta mark ${hex(BYPASS_MARK)} notrack comment "the agent's spliced packets: no conntrack entry"`,
          '  }',
          '  chain splice_fwd_raw {',
          '    type filter hook prerouting priority raw; policy accept;',
          `    ip saddr ${set(vips)} iifname != "lo" notrack comment "the agent's spliced packets, forwarded from its TUN: no conntrack entry"`,
          '  }',
          '  chain splice_out {',
          '    type route hook output priority mangle - 1; policy accept;',
          ...(splice.capturePorts.length === 0
            ? []
            : [
                ...(splice.kernel
                  ? [
                      `    ip saddr ${set(vips)} tcp sport ${set(splice.capturePorts.map(String))} oifname != "lo" meta mark != ${hex(BYPASS_MARK)} tcp flags & (fin | syn | rst) == 0 meta mark set ${hex(KSPLICE_MARK)} counter accept comment "spliced, established: shifted by the kernel on the way out"`,
                    ]
                  : []),
                `    ip saddr ${set(vips)} tcp sport ${set(splice.capturePorts.map(String))} oifname != "lo" meta mark != ${hex(BYPASS_MARK)} meta mark set ${hex(SPLICE_MARK)} counter comment "spliced connections: to the agent's TUN"`,
              ]),
          '  }',
        ];
  return [
    `${t}`,
    `delete ${t}`,
    `${t} {`,
    '  chain vxlan_raw {',
    '    type filter hook prerouting priority raw; policy accept;',
    `    ip daddr ${c.vxlan.local} udp dport ${c.vxlan.port} notrack comment "outer VXLAN needs no conntrack entry"`,
    '  }',
    '  chain vxlan_in {',
    '    type filter hook input priority filter - 10; policy accept;',
    `    udp dport ${c.vxlan.port} ip saddr != ${set(c.gateways)} counter drop comment "VXLAN only from gateways"`,
    '  }',
    '  chain reroute_out {',
    '    type route hook output priority mangle; policy accept;',
    `    oifname "${c.vxlan.device}" meta mark set 0x${REROUTE_MARK.toString(16)} counter comment "route replies pinned to the VXLAN device again"`,
    '  }',
    ...spliceChains,
    '  chain restore_out {',
    '    type filter hook output priority filter; policy accept;',
    ...(splice === null ? [] : [`    ${spliceMarks} return comment "spliced: the agent's business"`]),
    ...restore,
    '  }',
    '  chain stamp_out {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    // The node's own pings from a cluster address: the echo identifier (NATed like a port, RFC 792's
    // identifier comes back unchanged) from the node's block, so the gateway routes the reply here.
    ...vips.map(
      (v) =>
        `    ip saddr ${v} ip daddr != ${set(c.clusterPrefixes)} oifname != "lo" icmp type echo-request snat to ${v}:${snatRange} comment "ping identifiers from the block"`,
    ),
    `    ip saddr != ${c.internal.address} return`,
    '    oifname "lo" return',
    `    ip daddr ${set(c.clusterPrefixes)} return`,
    ...snat,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * nftRuleset6 renders the agent's `ip6` table for a config with IPv6 cluster addresses ('' without):
 * `stamp_out` gives the node's own IPv6 pings an echo identifier from the block's SNAT part (RFC 4443
 * §4.2: the reply echoes it), so the gateway routes the replies here, as for IPv4. Nothing else needs a
 * rule: unbound IPv6 sockets already take ports from the block (one ip_local_port_range serves both
 * families) and leave as the IPv6 cluster address (the route's `src`); and an IPv6 reply a server pins
 * to the VXLAN device (IPV6_PKTINFO, RFC 3542 §6) is routed by the default route anyway: IPv6 honours
 * the interface only for link-local and multicast destinations, so IPv4's `reroute_out` has no twin.
 * `restore_out` is IPv4's: the node's mountd answers a MOUNT call over IPv6 (routed with its port
 * rewritten, claim 3) from its own port, which the client would not take for the cluster's.
 */
export function nftRuleset6(c: ResolvedConfig): string {
  if (c.networks6.length === 0) return '';
  const t = `table ${NFT_FAMILY6} ${NFT_TABLE}`;
  const snatRange = `${c.ports.snat.lo}-${c.ports.snat.hi}`;
  const vips6 = c.networks6.map((n) => n.address);
  const splice = c.splice;
  const restore = c.mountPorts.map(
    (m) =>
      `    ip6 saddr ${set(vips6)} ${m.proto} sport ${m.nodePort} ${m.proto} sport set ${m.clusterPort} counter comment "restore ${m.proto} ${m.nodePort}->${m.clusterPort}"`,
  );
  // Delayed binding over IPv6 (docs/splice.md): IPv4's capture and kernel mark, without the raw socket
  // (the agent's own packets to clients go back through the TUN, forwarded like the node's rewritten
  // ones, so there is no bypass mark to skip).
  const ports = splice === null ? '' : set(splice.capturePorts.map(String));
  const spliceChains =
    splice === null || splice.capturePorts.length === 0
      ? []
      : [
          '  chain splice_fwd_raw {',
          '    type filter hook prerouting priority raw; policy accept;',
          `    ip6 saddr ${set(vips6)} iifname != "lo" notrack comment "the agent's spliced packets, forwarded from its TUN: no conntrack entry"`,
          '  }',
          '  chain splice_out {',
          '    type route hook output priority mangle - 1; policy accept;',
          ...(splice.kernel
            ? [
                `    ip6 saddr ${set(vips6)} tcp sport ${ports} oifname != "lo" tcp flags & (fin | syn | rst) == 0 meta mark set ${hex(KSPLICE_MARK)} counter accept comment "spliced, established: shifted by the kernel on the way out"`,
              ]
            : []),
          `    ip6 saddr ${set(vips6)} tcp sport ${ports} oifname != "lo" meta mark set ${hex(SPLICE_MARK)} counter comment "spliced connections: to the agent's TUN"`,
          '  }',
        ];
  const marks = [SPLICE_MARK, ...(splice?.kernel ? [KSPLICE_MARK] : [])].map(hex).join(', ');
  const restoreRules = [
    ...(spliceChains.length === 0
      ? []
      : [`    meta mark { ${marks} } return comment "spliced: the agent's business"`]),
    ...restore,
  ];
  return [
    `${t}`,
    `delete ${t}`,
    `${t} {`,
    ...spliceChains,
    ...(restoreRules.length === 0
      ? []
      : [
          '  chain restore_out {',
          '    type filter hook output priority filter; policy accept;',
          ...restoreRules,
          '  }',
        ]),
    '  chain stamp_out {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...c.networks6.map(
      (n) =>
        `    ip6 saddr ${n.address} oifname != "lo" icmpv6 type echo-request snat to [${n.address}]:${snatRange} comment "ping identifiers from the block"`,
    ),
    '  }',
    '}',
    '',
  ].join('\n');
}
