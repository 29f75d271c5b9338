import { ADDR6, ipv4ToString, ipv6ToString } from '@onehost/wire';
import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { KernelPlan } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import { FLOW, type FlowTable } from '../tables/flow-table.js';
import { DEFAULT_MAGLEV_SIZE, isPrime, MAX_MAGLEV_SIZE } from '../tables/maglev.js';
import { candidateIds, readNodeNames } from './candidates.js';
import { type FlowTables, keptFlowTables, logUpsert, routeQuotedFlow } from './flow-tables.js';
import { MaglevPicker } from './maglev-picker.js';
import type { RoutingDeps, RoutingFunction, RoutingFunctionSpec } from './types.js';

export interface UdpFlowConfig {
  nodes: string[] | undefined;
  idleTimeout: number;
  maxEntries: number;
  maglevSize: number;
}

export const DEFAULT_UDP_IDLE_TIMEOUT = 60;
export const DEFAULT_MAX_UDP_FLOWS = 262_144;

/**
 * UdpFlow balances UDP by a hash of (source address, source port) through Maglev, and keeps each flow on
 * its node while it is busy (sticky until `idleTimeout` seconds without a datagram), so a membership
 * change does not move live flows. Flows whose node is down are re-hashed.
 */
class UdpFlow implements RoutingFunction {
  readonly kind = 'udp-flow';
  readonly nullFunction = false;
  readonly ipv6 = true;
  private readonly ids: Int32Array;
  private readonly maglev: MaglevPicker;
  private readonly flows: FlowTable;
  /** IPv6 flows (a wide table), only when the switch has an IPv6 cluster address */
  private readonly flows6: FlowTable | null;
  private readonly tables: FlowTables;
  private readonly ttl: number;

  constructor(
    private readonly config: UdpFlowConfig,
    private readonly deps: RoutingDeps,
  ) {
    this.ids = candidateIds(config.nodes, deps.nodes);
    this.maglev = new MaglevPicker(this.ids, config.maglevSize, deps);
    const tables = keptFlowTables(deps, config.maxEntries, EVENT.UDP_FLOW_EVICTED);
    this.tables = tables;
    this.flows = tables.v4;
    this.flows6 = tables.v6;
    this.ttl = Math.round(config.idleTimeout * 1000);
  }

  get flowTable6(): FlowTable | null {
    return this.flows6;
  }

  get table(): FlowTable {
    return this.flows;
  }

  get flowTable(): FlowTable {
    return this.flows;
  }

  route(ctx: PacketContext, out: DecisionOut): void {
    const p = ctx.p;
    const a = p.src | 0;
    const b = (p.srcPort << 16) | p.dstPort;
    const c = ctx.vip;
    const v6 = p.family === 6;
    const flows = v6 ? this.flows6 : this.flows;
    if (flows === null) {
      out.drop(DROP.IPV6_UNSUPPORTED);
      return;
    }
    const logged = this.deps.flowLog.enabled;
    const k = v6 ? ctx.fillKey6(ADDR6.SRC, b, c) : ctx.key6;
    const s = v6
      ? ctx.dryRun
        ? flows.peekWide(k, 0, ctx.now)
        : flows.findWide(k, 0, ctx.now)
      : ctx.dryRun
        ? flows.peek(a, b, c, ctx.now)
        : flows.find(a, b, c, ctx.now);
    if (s >= 0) {
      const node = flows.node(s);
      if (ctx.nodes.isUp(node)) {
        if (!ctx.dryRun) {
          flows.refresh(s, FLOW.ESTABLISHED, ctx.now, this.ttl);
          // a datagram of a flow the kernel keeps reached user space: the kernel lacks it
          if (logged) logUpsert(this.deps.flowLog, ctx, node, this.ttl);
        }
        if (ctx.trace !== null) {
          const who = v6 ? `[${ipv6ToString(ctx.buf, p.ipHeaderOffset + 8)}]` : ipv4ToString(a);
          ctx.trace.add(`udp-flow: sticky flow ${who}:${p.srcPort} → ${ctx.nodes.nameOf(node)}`);
        }
        out.forward(node, NO_PORT);
        return;
      }
      if (!ctx.dryRun) {
        flows.removeSlot(s);
        this.deps.counters.event(EVENT.CONN_NODE_LOST);
      }
    }
    const node = v6
      ? this.maglev.pick6(ctx.buf, p.ipHeaderOffset + 8, p.srcPort)
      : this.maglev.pick(a, p.srcPort);
    if (ctx.trace !== null) {
      ctx.trace.add(
        `udp-flow: new flow → maglev slot ${this.maglev.lastSlot} → ${node < 0 ? 'no active node' : ctx.nodes.nameOf(node)}`,
      );
    }
    if (node < 0) {
      out.drop(DROP.NO_ACTIVE_NODE);
      return;
    }
    if (!ctx.dryRun) {
      if (v6) flows.setWide(k, 0, node, FLOW.ESTABLISHED, 0, this.ttl, ctx.now);
      else flows.set(a, b, c, node, FLOW.ESTABLISHED, 0, this.ttl, ctx.now);
      this.deps.counters.event(EVENT.UDP_FLOW_CREATED);
      if (logged) logUpsert(this.deps.flowLog, ctx, node, this.ttl);
    }
    out.forward(node, NO_PORT);
  }

  routeQuoted(ctx: PacketContext, out: DecisionOut): void {
    routeQuotedFlow(ctx, out, this.tables, 'udp-flow', 'flow for the quoted datagram');
  }

  sweep(now: number, budget: number): void {
    this.flows.sweep(now, budget);
    this.flows6?.sweep(now, budget);
  }

  kernel(): KernelPlan {
    const c = this.config;
    return {
      path: 'kernel',
      kind: 'udp-flow',
      maglev: { table: this.maglev.table, size: this.maglev.size },
      maxEntries: c.maxEntries,
      idleMs: this.ttl,
    };
  }

  describe(): Record<string, unknown> {
    const c = this.config;
    return {
      nodes: Array.from(this.ids, (id) => this.deps.nodes.nameOf(id)),
      idleTimeout: c.idleTimeout,
      maglevSize: c.maglevSize,
      entries: this.flows.size + (this.flows6?.size ?? 0),
      maxEntries: c.maxEntries,
    };
  }
}

/** udpFlowSpec: `function: udp-flow`, optional `nodes`, `idleTimeout` (s), `maxEntries`, `maglevSize`. */
export const udpFlowSpec: RoutingFunctionSpec<UdpFlowConfig> = {
  kind: 'udp-flow',
  protocols: ['udp'],
  summary: 'UDP flows by a hash of (source address, source port), sticky while not idle',
  validate(f, ctx) {
    const nodes = readNodeNames(f, ctx);
    const idleTimeout = f.seconds('idleTimeout', DEFAULT_UDP_IDLE_TIMEOUT);
    const maxEntries = f.int('maxEntries', { min: 1, max: 1 << 26, default: DEFAULT_MAX_UDP_FLOWS });
    const maglevSize = f.int('maglevSize', { min: 2, max: MAX_MAGLEV_SIZE, default: DEFAULT_MAGLEV_SIZE });
    if (f.has('maglevSize') && !isPrime(maglevSize))
      f.error('maglevSize', `must be a prime, got ${maglevSize}`);
    return { nodes, idleTimeout, maxEntries, maglevSize };
  },
  create(config, deps) {
    return new UdpFlow(config, deps);
  },
};

export type { UdpFlow };
