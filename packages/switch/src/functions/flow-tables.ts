import { ADDR6 } from '@onehost/wire';
import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { FlowLog } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import { FlowTable } from '../tables/flow-table.js';
import type { RoutingDeps } from './types.js';

/** FlowTables are a function's flow tables: IPv4, and IPv6 (wide keys) when the switch has an IPv6 address. */
export interface FlowTables {
  readonly v4: FlowTable;
  readonly v6: FlowTable | null;
}

/**
 * keptFlowTables returns the function's flow tables, kept in the switch's state so that a table swap
 * that keeps the entry's size keeps its flows; `evicted` is the event counted when a full table evicts.
 */
export function keptFlowTables(deps: RoutingDeps, maxEntries: number, evicted: number): FlowTables {
  const events = { evicted, expired: EVENT.CONN_EXPIRED };
  return {
    v4: deps.state(`flows:${maxEntries}`, () => new FlowTable(maxEntries, deps.counters, events)),
    v6: deps.ipv6
      ? deps.state(`flows6:${maxEntries}`, () => new FlowTable(maxEntries, deps.counters, events, true))
      : null,
  };
}

/**
 * routeQuotedFlow sends an ICMP error to the node of the flow it quotes, or drops it. The quoted packet
 * went out from the cluster, so its destination is the client. `who` and `what` word the trace.
 */
export function routeQuotedFlow(
  ctx: PacketContext,
  out: DecisionOut,
  tables: FlowTables,
  who: string,
  what: string,
): void {
  const p = ctx.p;
  const b = (p.innerDstPort << 16) | p.innerSrcPort;
  const v6 = p.family === 6;
  const flows = v6 ? tables.v6 : tables.v4;
  const s =
    flows === null
      ? -1
      : v6
        ? flows.peekWide(ctx.fillKey6(ADDR6.INNER_DST, b, ctx.vip), 0, ctx.now)
        : flows.peek(p.innerDst | 0, b, ctx.vip, ctx.now);
  if (flows === null || s < 0 || !ctx.nodes.isUp(flows.node(s))) {
    if (ctx.trace !== null) ctx.trace.add(`${who}: no ${what}`);
    out.drop(DROP.ICMP_UNKNOWN_FLOW);
    return;
  }
  if (ctx.trace !== null) ctx.trace.add(`${who}: quoted flow → ${ctx.nodes.nameOf(flows.node(s))}`);
  out.forward(flows.node(s), NO_PORT);
}

/** logUpsert records the packet's flow (either family) in the flow log, for the kernel's flow map. */
export function logUpsert(log: FlowLog, ctx: PacketContext, node: number, ttl: number): void {
  const p = ctx.p;
  if (p.family === 6) log.upsert6(p.protocol, p.dstPort, ctx.buf, p.ipHeaderOffset, p.srcPort, node, ttl);
  else log.upsertPacket(p, node, ttl);
}
