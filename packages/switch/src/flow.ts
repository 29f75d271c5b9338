import { ADDR6, IPPROTO, IPPROTO_ICMPV6, ipv4ToString, ipv6WordsText } from '@onehost/wire';
import { EVENT, FUNCTION_SLOT, type SwitchCounters } from './counters.js';
import { type DecisionOut, KIND, NO_PORT } from './decision.js';
import { DROP } from './drop-reason.js';
import { routeByPortBlock } from './functions/port-block.js';
import type { PacketContext } from './packet-context.js';
import type { TableSnapshot } from './snapshot.js';
import type { FragmentTable } from './tables/fragment-table.js';

/*
 * The inbound flow of Fig. 5 (alternative embodiment: no box 575, the destination address stays), one
 * function per group of boxes, each named after what it decides. Each writes the decision into `out`.
 * The trace strings start with the box number they stand for.
 */

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };
/** ICMP type 0, echo reply (RFC 792) */
const ICMP_ECHO_REPLY = 0;
/** ICMPv6 type 129, echo reply (RFC 4443 §4.2) */
const ICMP6_ECHO_REPLY = 129;

/** addressText formats one of the packet's addresses for a trace (allocates: traces only). */
function addressText(ctx: PacketContext, which: 'dst' | 'src' | 'innerSrc' | 'innerDst'): string {
  const p = ctx.p;
  if (p.family === 4)
    return ipv4ToString(
      which === 'dst' ? p.dst : which === 'src' ? p.src : which === 'innerSrc' ? p.innerSrc : p.innerDst,
    );
  const at =
    which === 'dst'
      ? ADDR6.DST
      : which === 'src'
        ? ADDR6.SRC
        : which === 'innerSrc'
          ? ADDR6.INNER_SRC
          : ADDR6.INNER_DST;
  return ipv6WordsText(p.addr6, at);
}

function protoName(p: number): string {
  return PROTO_NAMES[p] ?? `protocol ${p}`;
}

/**
 * routeInbound runs Fig. 5 from box 510 on a packet already summarised in ctx.p.
 */
export function routeInbound(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
  fragments: FragmentTable,
): void {
  const p = ctx.p;
  if (p.family === 6) {
    routeInbound6(ctx, snap, out, counters, fragments);
    return;
  }
  const vip = snap.vipIndex(p.dst | 0);
  if (vip < 0) {
    decideForNonClusterAddress(ctx, snap, out, counters);
    return;
  }
  ctx.vip = vip;
  if (ctx.trace !== null) {
    const c = snap.clusterAddresses[vip]!;
    ctx.trace.add(
      `515 ${ipv4ToString(p.dst)} is the cluster address of ${c.network}${c.default ? ' (default)' : ''}`,
    );
  }
  if (p.isFragment && !p.firstFragment) {
    decideLaterFragment(ctx, snap, out, counters, fragments);
    return;
  }
  const proto = p.protocol;
  if (proto !== IPPROTO.TCP && proto !== IPPROTO.UDP) decideNonPortProtocol(ctx, snap, out, counters);
  else decideByDestinationPort(ctx, snap, out, counters);
  decideDelivery(ctx, snap, out);
  if (p.firstFragment && !ctx.dryRun) rememberFirstFragment(ctx, snap, out, counters, fragments);
}

/**
 * rememberFirstFragment keeps the decision of a first fragment (the one with the ports) for the rest of
 * its datagram, keyed as RFC 791 §3.2 (IPv4) or RFC 8200 §4.5 (IPv6) reassembles it.
 */
function rememberFirstFragment(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
  fragments: FragmentTable,
): void {
  const p = ctx.p;
  const ttl = snap.fragmentTimeoutMs;
  const evicted =
    p.family === 4
      ? fragments.remember(p.src, p.dst, p.protocol, p.fragmentId, out, ctx.now, ttl)
      : fragments.remember6(ctx.fillKey6(ADDR6.SRC, p.fragmentId, ctx.vip), out, ctx.now, ttl);
  if (evicted) counters.event(EVENT.FRAGMENT_EVICTED);
  counters.event(EVENT.FRAGMENT_REMEMBERED);
  if (ctx.trace !== null)
    ctx.trace.add(`first fragment of datagram id ${p.fragmentId >>> 0}: decision remembered for the rest`);
}

/**
 * routeInbound6 is Fig. 5 for an IPv6 packet: the same boxes, with IPv6 cluster addresses. Nodes have no
 * IPv6 internal addresses (the interconnect is IPv4), so there is no management bypass. Fragments follow
 * their first fragment as IPv4's do.
 */
function routeInbound6(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
  fragments: FragmentTable,
): void {
  const p = ctx.p;
  const vip = snap.vipIndex6(p.addr6, ADDR6.DST);
  if (vip < 0) {
    if (ctx.trace === null) counters.functionPackets[FUNCTION_SLOT.MANAGEMENT]!++;
    else ctx.trace.add(`515 ${addressText(ctx, 'dst')} is not a cluster address`);
    out.drop(DROP.NOT_CLUSTER_ADDRESS);
    return;
  }
  ctx.vip = vip;
  if (ctx.trace !== null) {
    const c = snap.clusterAddresses[vip]!;
    ctx.trace.add(
      `515 ${addressText(ctx, 'dst')} is the IPv6 cluster address of ${c.network}${c.default ? ' (default)' : ''}`,
    );
  }
  // RFC 8200 §4.5: only the first fragment holds the upper-layer header (RFC 7112 §5: all of it)
  if (p.isFragment && !p.firstFragment) {
    decideLaterFragment(ctx, snap, out, counters, fragments);
    return;
  }
  const proto = p.protocol;
  if (proto !== IPPROTO.TCP && proto !== IPPROTO.UDP) decideNonPortProtocol(ctx, snap, out, counters);
  else decideByDestinationPort(ctx, snap, out, counters);
  decideDelivery(ctx, snap, out);
  if (p.firstFragment && !ctx.dryRun) rememberFirstFragment(ctx, snap, out, counters, fragments);
}

/**
 * decideForNonClusterAddress is box 515's NO path for inbound traffic: a node's internal address is
 * reachable only from management sources (the embodiment's bypass: the switch table is not consulted);
 * anything else is not ours.
 */
export function decideForNonClusterAddress(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
): void {
  const p = ctx.p;
  if (ctx.trace === null) counters.functionPackets[FUNCTION_SLOT.MANAGEMENT]!++;
  const node = snap.nodes.atAddress(p.dst);
  if (node === undefined) {
    if (ctx.trace !== null) ctx.trace.add(`515 ${ipv4ToString(p.dst)} is not a cluster address`);
    out.drop(DROP.NOT_CLUSTER_ADDRESS);
    return;
  }
  if (!snap.isManagementSource(p.src)) {
    if (ctx.trace !== null) {
      ctx.trace.add(
        `515 ${ipv4ToString(p.dst)} is ${node.name}'s internal address; ${ipv4ToString(p.src)} is not a management source`,
      );
    }
    out.drop(DROP.MANAGEMENT_DENIED);
    return;
  }
  if (ctx.trace !== null)
    ctx.trace.add(
      `515 ${ipv4ToString(p.dst)} is ${node.name}'s internal address, management source → bypass to ${node.name}`,
    );
  counters.event(EVENT.MANAGEMENT_BYPASS);
  out.forward(node.id, NO_PORT);
  decideDelivery(ctx, snap, out);
}

/**
 * decideLaterFragment: a fragment without ports follows the decision remembered for its first fragment
 * (either family; `ctx.vip` is its cluster address).
 */
export function decideLaterFragment(
  ctx: PacketContext,
  _snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
  fragments: FragmentTable,
): void {
  const p = ctx.p;
  if (ctx.trace === null) counters.functionPackets[FUNCTION_SLOT.FRAGMENT]!++;
  const found =
    p.family === 4
      ? fragments.recall(p.src, p.dst, p.protocol, p.fragmentId, ctx.now, out)
      : fragments.recall6(ctx.fillKey6(ADDR6.SRC, p.fragmentId, ctx.vip), ctx.now, out);
  if (found) {
    counters.event(EVENT.FRAGMENT_FOLLOWED);
    if (ctx.trace !== null)
      ctx.trace.add(`later fragment of datagram id ${p.fragmentId >>> 0} follows its first fragment`);
    return;
  }
  if (ctx.trace !== null)
    ctx.trace.add(`later fragment of datagram id ${p.fragmentId >>> 0}: first fragment not seen`);
  out.drop(DROP.FRAGMENT_UNKNOWN);
}

/**
 * decideNonPortProtocol is box 525's NO path: an ICMP error that quotes one of our flows goes where that
 * flow goes (found through the quoted header); other messages are the gateway's.
 */
export function decideNonPortProtocol(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
): void {
  const p = ctx.p;
  if (ctx.trace === null) counters.functionPackets[FUNCTION_SLOT.NON_PORT]!++;
  const inner = p.innerProtocol;
  // An echo reply to a node's own ping: the node's agent maps its echo identifiers into its port block
  // (conntrack NAT, like its ports), so the identifier names the node as a port would (RFC 792: the
  // identifier is echoed back unchanged).
  // ICMPv6 echo replies likewise (RFC 4443 §4.2).
  const echoReply =
    p.family === 4
      ? p.protocol === IPPROTO.ICMP && p.icmpType === ICMP_ECHO_REPLY
      : p.protocol === IPPROTO_ICMPV6 && p.icmpType === ICMP6_ECHO_REPLY;
  if (echoReply && !p.isFragment) {
    const id = (ctx.buf[p.l4Offset + 4]! << 8) | ctx.buf[p.l4Offset + 5]!;
    if (routeByPortBlock(ctx, out, id, snap.portBlocks, counters)) {
      counters.event(EVENT.ECHO_REPLY_BY_BLOCK);
      if (ctx.trace !== null) ctx.trace.add(`525 echo reply, identifier ${id}: routed by the port blocks`);
      return;
    }
  }
  if (!p.isIcmpError || !p.hasInner || (inner !== IPPROTO.TCP && inner !== IPPROTO.UDP)) {
    if (ctx.trace !== null)
      ctx.trace.add(`525 ${protoName(p.protocol)} is not a port-type protocol → the gateway`);
    counters.event(EVENT.NOT_PORT_TYPE);
    out.forward(snap.nodes.gatewayId, NO_PORT);
    return;
  }
  const vip = p.family === 4 ? snap.vipIndex(p.innerSrc | 0) : snap.vipIndex6(p.addr6, ADDR6.INNER_SRC);
  if (vip < 0) {
    if (ctx.trace !== null)
      ctx.trace.add(`525 ICMP error quoting a packet not sent from a cluster address → the gateway`);
    counters.event(EVENT.NOT_PORT_TYPE);
    out.forward(snap.nodes.gatewayId, NO_PORT);
    return;
  }
  ctx.vip = vip;
  counters.event(EVENT.ICMP_QUOTED);
  const port = p.innerSrcPort;
  if (ctx.trace !== null) {
    ctx.trace.add(
      `525 ${p.family === 4 ? 'ICMP' : 'ICMPv6'} error (type ${p.icmpType} code ${p.icmpCode}) quoting ${protoName(inner)} ${addressText(ctx, 'innerSrc')}:${port} → ${addressText(ctx, 'innerDst')}:${p.innerDstPort}`,
    );
  }
  const entry = snap.lookup(inner, port);
  if (entry !== null) {
    if (ctx.trace !== null) ctx.trace.add(`535 ${protoName(inner)}/${port} hit → ${entry.kind}`);
    if (p.family === 6 && entry.fn.ipv6 !== true) {
      if (ctx.trace !== null) ctx.trace.add(`${entry.kind} over ${protoName(inner)} routes IPv4 only → drop`);
      out.drop(DROP.IPV6_UNSUPPORTED);
      return;
    }
    entry.fn.routeQuoted(ctx, out);
    return;
  }
  if (routeByPortBlock(ctx, out, port, snap.portBlocks, counters)) return;
  if (ctx.trace !== null) ctx.trace.add(`545 ${protoName(inner)}/${port} is the gateway's own flow`);
  out.forward(snap.nodes.gatewayId, NO_PORT);
}

/**
 * decideByDestinationPort is boxes 530-565: the switch table entry for (protocol, port) runs its function
 * (or, for the null function, names its node); without an entry, the port block owner (545/550) or the
 * gateway.
 */
export function decideByDestinationPort(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
): void {
  const p = ctx.p;
  const entry = snap.lookup(p.protocol, p.dstPort);
  if (entry !== null) {
    if (ctx.trace === null) counters.functionPackets[entry.kindIndex]!++;
    if (ctx.trace !== null) {
      const box = entry.fn.nullFunction ? '560 null function' : `565 ${entry.kind}`;
      ctx.trace.add(`535 ${protoName(p.protocol)}/${p.dstPort} hit → ${box}`);
    }
    if (p.family === 6 && entry.fn.ipv6 !== true) {
      if (ctx.trace !== null)
        ctx.trace.add(`${entry.kind} over ${protoName(p.protocol)} routes IPv4 only → drop`);
      out.drop(DROP.IPV6_UNSUPPORTED);
      return;
    }
    entry.fn.route(ctx, out);
    return;
  }
  if (ctx.trace === null) counters.functionPackets[FUNCTION_SLOT.UNMATCHED]!++;
  if (ctx.trace !== null) ctx.trace.add(`540 no entry for ${protoName(p.protocol)}/${p.dstPort}`);
  decideUnmatchedPort(ctx, snap, out, counters);
}

/** decideUnmatchedPort is boxes 545/550: a non-specific port → its block's node; else the gateway. */
export function decideUnmatchedPort(
  ctx: PacketContext,
  snap: TableSnapshot,
  out: DecisionOut,
  counters: SwitchCounters,
): void {
  if (routeByPortBlock(ctx, out, ctx.p.dstPort, snap.portBlocks, counters)) return;
  if (ctx.trace !== null) ctx.trace.add(`545 port ${ctx.p.dstPort} is not a non-specific port → the gateway`);
  counters.event(EVENT.UNKNOWN_PORT);
  out.forward(snap.nodes.gatewayId, NO_PORT);
}

/**
 * decideDelivery is box 580: a node that is this gateway means the local stack (with the new port, if
 * any); any other node is reached over the interconnect with the destination address untouched.
 */
export function decideDelivery(ctx: PacketContext, snap: TableSnapshot, out: DecisionOut): void {
  if (out.kind !== KIND.FORWARD) return;
  if (out.node === snap.nodes.gatewayId) {
    out.kind = KIND.LOCAL;
    out.node = -1;
    if (ctx.trace !== null) ctx.trace.add('580 the gateway itself → local');
    return;
  }
  if (ctx.trace !== null) {
    ctx.trace.add(
      `580 → ${snap.nodes.nameOf(out.node)}${out.port !== NO_PORT ? ` (570 destination port → ${out.port})` : ''}`,
    );
  }
}
