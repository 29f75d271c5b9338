import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { KernelPlan } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import type { RoutingDeps, RoutingFunction, RoutingFunctionSpec } from './types.js';

export interface FixedConfig {
  node: string;
  backup: string | undefined;
}

/**
 * FixedNode is the patent's null function (box 560, claim 6): one node serves the port. When that node
 * is down, its backup takes the packets (claim 16). A draining node keeps its port: it has no other home.
 */
class FixedNode implements RoutingFunction {
  readonly kind = 'fixed';
  readonly nullFunction = true;
  readonly ipv6 = true;
  constructor(
    private readonly primary: number,
    private readonly backup: number,
    private readonly deps: RoutingDeps,
  ) {}

  route(ctx: PacketContext, out: DecisionOut): void {
    const nodes = ctx.nodes;
    if (nodes.isUp(this.primary)) {
      if (ctx.trace !== null) ctx.trace.add(`fixed node ${nodes.nameOf(this.primary)}`);
      out.forward(this.primary, NO_PORT);
      return;
    }
    if (this.backup >= 0 && nodes.isUp(this.backup)) {
      if (ctx.trace !== null) {
        ctx.trace.add(
          `fixed node ${nodes.nameOf(this.primary)} is down → backup ${nodes.nameOf(this.backup)} (claim 16)`,
        );
      }
      this.deps.counters.event(EVENT.BACKUP_USED);
      out.forward(this.backup, NO_PORT);
      return;
    }
    if (ctx.trace !== null) {
      ctx.trace.add(
        `fixed node ${nodes.nameOf(this.primary)} is down${this.backup >= 0 ? ', and so is its backup' : ', no backup'}`,
      );
    }
    out.drop(DROP.NODE_DOWN);
  }

  routeQuoted(ctx: PacketContext, out: DecisionOut): void {
    this.route(ctx, out);
  }

  kernel(): KernelPlan {
    const nodes = this.deps.nodes;
    const node = nodes.isUp(this.primary)
      ? this.primary
      : this.backup >= 0 && nodes.isUp(this.backup)
        ? this.backup
        : -1;
    return { path: 'kernel', kind: 'fixed', node };
  }

  describe(): Record<string, unknown> {
    const n = this.deps.nodes;
    return { node: n.nameOf(this.primary), ...(this.backup >= 0 ? { backup: n.nameOf(this.backup) } : {}) };
  }
}

/** fixedSpec: `function: fixed`, `node: <name>`, optional `backup: <name>`. */
export const fixedSpec: RoutingFunctionSpec<FixedConfig> = {
  kind: 'fixed',
  protocols: ['tcp', 'udp'],
  summary:
    'one node serves the port (null function, box 560); an optional backup takes over when it is down (claim 16)',
  validate(f, ctx) {
    const node = f.str('node', true);
    const backup = f.str('backup');
    if (node !== undefined && !ctx.nodeNames.has(node))
      f.error('node', `must name a node, got ${JSON.stringify(node)}`);
    if (backup !== undefined && !ctx.nodeNames.has(backup))
      f.error('backup', `must name a node, got ${JSON.stringify(backup)}`);
    if (backup !== undefined && backup === node) f.error('backup', 'must differ from node');
    return { node: node ?? '', backup };
  },
  create(config, deps) {
    const primary = deps.nodes.named(config.node);
    if (primary === undefined) throw new Error(`fixed: unknown node ${config.node}`);
    const backup = config.backup === undefined ? undefined : deps.nodes.named(config.backup);
    if (config.backup !== undefined && backup === undefined)
      throw new Error(`fixed: unknown backup ${config.backup}`);
    return new FixedNode(primary.id, backup?.id ?? -1, deps);
  },
};
