import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { KernelPlan } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import type { PortBlocks } from '../tables/port-blocks.js';
import type { RoutingDeps, RoutingFunction, RoutingFunctionSpec } from './types.js';

/**
 * routeByPortBlock is boxes 545/550 (claims 4-5): a non-specific port belongs to the node whose block
 * holds it. Returns false when no block holds the port (the caller falls back to the gateway). The
 * owner's flows are its own, so a draining owner still gets them; a down owner cannot answer: drop.
 */
export function routeByPortBlock(
  ctx: PacketContext,
  out: DecisionOut,
  port: number,
  blocks: PortBlocks,
  counters: RoutingDeps['counters'],
): boolean {
  const owner = blocks.ownerOf(port);
  if (owner < 0) return false;
  counters.event(EVENT.PORT_BLOCK_HIT);
  if (!ctx.nodes.isUp(owner)) {
    if (ctx.trace !== null)
      ctx.trace.add(`550 port ${port} in ${ctx.nodes.nameOf(owner)}'s block, which is down`);
    out.drop(DROP.PORT_BLOCK_OWNER_DOWN);
    return true;
  }
  if (ctx.trace !== null)
    ctx.trace.add(`550 port ${port} in ${ctx.nodes.nameOf(owner)}'s block → ${ctx.nodes.nameOf(owner)}`);
  out.forward(owner, NO_PORT);
  return true;
}

class PortBlockFunction implements RoutingFunction {
  readonly kind = 'port-block';
  readonly nullFunction = false;
  readonly ipv6 = true;
  constructor(private readonly deps: RoutingDeps) {}

  route(ctx: PacketContext, out: DecisionOut): void {
    if (!routeByPortBlock(ctx, out, ctx.p.dstPort, this.deps.portBlocks, this.deps.counters)) {
      if (ctx.trace !== null) ctx.trace.add(`port ${ctx.p.dstPort} is in no block → the gateway`);
      out.forward(ctx.nodes.gatewayId, NO_PORT);
    }
  }

  routeQuoted(ctx: PacketContext, out: DecisionOut): void {
    if (!routeByPortBlock(ctx, out, ctx.p.innerSrcPort, this.deps.portBlocks, this.deps.counters)) {
      out.forward(ctx.nodes.gatewayId, NO_PORT);
    }
  }

  describe(): Record<string, unknown> {
    return { blocks: this.deps.portBlocks.blocks.length };
  }

  kernel(): KernelPlan {
    return { path: 'kernel', kind: 'port-block' };
  }
}

/**
 * portBlockSpec: `function: port-block` routes an entry's port by the port blocks, as unmatched ports are
 * routed anyway (box 550); useful to keep a port inside a block from being shadowed by another kind.
 */
export const portBlockSpec: RoutingFunctionSpec<Record<string, never>> = {
  kind: 'port-block',
  protocols: ['tcp', 'udp'],
  summary: 'the node owning the port in the port blocks (boxes 545/550, claims 4-5); the gateway when none',
  validate() {
    return {};
  },
  create(_config, deps) {
    return new PortBlockFunction(deps);
  },
};
