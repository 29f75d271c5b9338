import { ADDR6, ipv4ToString, ipv6ToString, TCP_FLAGS, u32 } from '@onehost/wire';
import { EVENT } from '../counters.js';
import { type DecisionOut, NO_PORT } from '../decision.js';
import { DROP } from '../drop-reason.js';
import type { KernelPlan } from '../kernel-plan.js';
import type { PacketContext } from '../packet-context.js';
import { FLOW, type FlowTable, flowStateName } from '../tables/flow-table.js';
import { DEFAULT_MAGLEV_SIZE, isPrime, MAX_MAGLEV_SIZE } from '../tables/maglev.js';
import { candidateIds, readNodeNames } from './candidates.js';
import { type FlowTables, keptFlowTables, logUpsert, routeQuotedFlow } from './flow-tables.js';
import { MaglevPicker, pickLeastConn, RoundRobinCursor } from './maglev-picker.js';
import type { RoutingDeps, RoutingFunction, RoutingFunctionSpec } from './types.js';

export const POLICIES = ['round-robin', 'maglev', 'least-conn'] as const;
export type Policy = (typeof POLICIES)[number];

/** Timeouts in seconds (IPVS-like defaults). */
export interface ConnectionTimeouts {
  syn: number;
  established: number;
  fin: number;
  rst: number;
}

export interface ConnectionConfig {
  policy: Policy;
  nodes: string[] | undefined;
  maglevSize: number;
  rederive: boolean;
  maxEntries: number;
  timeouts: ConnectionTimeouts;
}

export const DEFAULT_CONNECTION_TIMEOUTS: ConnectionTimeouts = {
  syn: 60,
  established: 900,
  fin: 120,
  rst: 10,
};
export const DEFAULT_MAX_CONNECTIONS = 1_000_000;

const SYN = TCP_FLAGS.SYN;
const ACK = TCP_FLAGS.ACK;
const FIN = TCP_FLAGS.FIN;
const RST = TCP_FLAGS.RST;
const TCP_SEQ = 4;

/**
 * ConnectionManager is Fig. 10's f_inconn (claims 12-14): TCP flows keyed by (source address, source
 * port, cluster port, cluster address) in a bounded Cluster Connection Table. A SYN always (re)creates
 * its entry by the balancing policy, except a retransmitted SYN (same ISN, no ACK seen yet) which keeps
 * its node; later segments follow the table; a non-SYN without an entry is dropped, or re-derived by
 * Maglev when configured. FIN and RST shorten the entry's timer instead of removing it at once, so the
 * last ACKs still reach the node. Draining nodes keep their flows and get no new ones; a flow whose node
 * is down or gone loses its entry.
 */
class ConnectionManager implements RoutingFunction {
  readonly kind = 'connection';
  readonly nullFunction = false;
  readonly ipv6 = true;
  private readonly ids: Int32Array;
  private readonly maglev: MaglevPicker | null;
  private readonly rr: RoundRobinCursor;
  private readonly flows: FlowTable;
  /** IPv6 flows (a wide table), only when the switch has an IPv6 cluster address */
  private readonly flows6: FlowTable | null;
  private readonly tables: FlowTables;
  /** ms per flow state; whole numbers in a plain array stay small integers (a Float64Array's would be boxed when passed) */
  private readonly ttl: number[];
  /** live flows per node as the kernel counts them (least-conn with the fast path), kept across swaps */
  private readonly live: { perNode: Int32Array | null };

  constructor(
    private readonly config: ConnectionConfig,
    private readonly deps: RoutingDeps,
  ) {
    this.ids = candidateIds(config.nodes, deps.nodes);
    this.maglev =
      config.policy === 'maglev' || config.rederive
        ? new MaglevPicker(this.ids, config.maglevSize, deps)
        : null;
    this.rr = deps.state('rr', () => new RoundRobinCursor());
    this.live = deps.state('live', () => ({ perNode: null }));
    const tables = keptFlowTables(deps, config.maxEntries, EVENT.CONN_EVICTED);
    this.tables = tables;
    this.flows = tables.v4;
    this.flows6 = tables.v6;
    const t = config.timeouts;
    this.ttl = [0, 0, 0, 0, 0];
    this.ttl[FLOW.SYN] = Math.round(t.syn * 1000);
    this.ttl[FLOW.ESTABLISHED] = Math.round(t.established * 1000);
    this.ttl[FLOW.FIN] = Math.round(t.fin * 1000);
    this.ttl[FLOW.RST] = Math.round(t.rst * 1000);
  }

  /** table exposes the Cluster Connection Table (listings, tests, the benchmark). */
  get table(): FlowTable {
    return this.flows;
  }

  get flowTable(): FlowTable {
    return this.flows;
  }

  get flowTable6(): FlowTable | null {
    return this.flows6;
  }

  /**
   * route: an IPv4 flow is keyed by (a, b, c); an IPv6 flow by ctx.key6 in the wide table, and `a` (the
   * source's 32-bit fold) only feeds the Maglev hash.
   */
  route(ctx: PacketContext, out: DecisionOut): void {
    const p = ctx.p;
    const flags = p.tcpFlags;
    const a = p.src | 0;
    const b = (p.srcPort << 16) | p.dstPort;
    const c = ctx.vip;
    const now = ctx.now;
    const v6 = p.family === 6;
    const flows = v6 ? this.flows6 : this.flows;
    if (flows === null) {
      out.drop(DROP.IPV6_UNSUPPORTED);
      return;
    }
    if (v6) ctx.fillKey6(ADDR6.SRC, b, c);
    const logged = this.deps.flowLog.enabled;
    if ((flags & (SYN | ACK | RST)) === SYN) {
      this.routeSyn(ctx, out, flows, a, b, c, now);
      return;
    }
    let s = lookup(ctx, flows, a, b, c, now);
    if (s >= 0 && !ctx.nodes.isUp(flows.node(s))) {
      if (ctx.trace !== null)
        ctx.trace.add(`entry's node ${ctx.nodes.nameOf(flows.node(s))} is down or gone`);
      if (!ctx.dryRun) {
        flows.removeSlot(s);
        this.deps.counters.event(EVENT.CONN_NODE_LOST);
      }
      s = -1;
    }
    if (s < 0) {
      if (!this.config.rederive || this.maglev === null) {
        if (ctx.trace !== null)
          ctx.trace.add(`connection: no entry for ${flowText(ctx)} and not a SYN → discard (Fig. 10)`);
        // the kernel may still hold the flow on a node that is gone: it must forget it too
        if (!ctx.dryRun && logged) {
          if (v6) this.deps.flowLog.remove6(6, p.dstPort, ctx.buf, p.ipHeaderOffset, p.srcPort);
          else this.deps.flowLog.remove(6, p.dstPort, p.dst, a, p.srcPort);
        }
        out.drop(DROP.NO_CONNECTION);
        return;
      }
      const node =
        p.family === 6
          ? this.maglev.pick6(ctx.buf, p.ipHeaderOffset + 8, p.srcPort)
          : this.maglev.pick(a, p.srcPort);
      if (ctx.trace !== null) {
        ctx.trace.add(
          `connection: no entry for ${flowText(ctx)} → re-derived by maglev slot ${this.maglev.lastSlot}`,
        );
      }
      if (node < 0) {
        out.drop(DROP.NO_ACTIVE_NODE);
        return;
      }
      const state = nextState(FLOW.ESTABLISHED, flags);
      if (!ctx.dryRun) {
        save(ctx, flows, a, b, c, node, state, 0, this.ttl[state]!, now);
        this.deps.counters.event(EVENT.CONN_REDERIVED);
        if (logged) logUpsert(this.deps.flowLog, ctx, node, this.ttl[state]!);
      }
      out.forward(node, NO_PORT);
      return;
    }
    const node = flows.node(s);
    const before = flows.state(s);
    const state = nextState(before, flags);
    if (!ctx.dryRun) {
      flows.refresh(s, state, now, this.ttl[state]!);
      // A segment of a flow the kernel keeps reached user space: the kernel lacks it (or its state changed).
      if (logged) logUpsert(this.deps.flowLog, ctx, node, this.ttl[state]!);
    }
    if (ctx.trace !== null) {
      const moved =
        state === before ? flowStateName(state) : `${flowStateName(before)} → ${flowStateName(state)}`;
      ctx.trace.add(`connection: entry ${flowText(ctx)} (${moved}, ${this.ttl[state]! / 1000} s)`);
    }
    out.forward(node, NO_PORT);
  }

  private routeSyn(
    ctx: PacketContext,
    out: DecisionOut,
    flows: FlowTable,
    a: number,
    b: number,
    c: number,
    now: number,
  ): void {
    const p = ctx.p;
    const isn = u32(ctx.buf, p.l4Offset + TCP_SEQ) | 0;
    const s = lookup(ctx, flows, a, b, c, now);
    if (s >= 0 && flows.state(s) === FLOW.SYN && flows.aux(s) === isn && ctx.nodes.isUp(flows.node(s))) {
      const node = flows.node(s);
      if (ctx.trace !== null)
        ctx.trace.add(`connection: SYN retransmit (same ISN) → ${ctx.nodes.nameOf(node)}`);
      if (!ctx.dryRun) {
        flows.refresh(s, FLOW.SYN, now, this.ttl[FLOW.SYN]!);
        this.deps.counters.event(EVENT.CONN_SYN_RETRANSMIT);
      }
      out.forward(node, NO_PORT);
      return;
    }
    const node = this.pick(ctx, a, p.srcPort);
    if (node < 0) {
      out.drop(DROP.NO_ACTIVE_NODE);
      return;
    }
    if (!ctx.dryRun) {
      save(ctx, flows, a, b, c, node, FLOW.SYN, isn, this.ttl[FLOW.SYN]!, now);
      this.deps.counters.event(s >= 0 ? EVENT.CONN_REPLACED : EVENT.CONN_CREATED);
      if (this.deps.flowLog.enabled) logUpsert(this.deps.flowLog, ctx, node, this.ttl[FLOW.SYN]!);
    }
    out.forward(node, NO_PORT);
  }

  private pick(ctx: PacketContext, srcAddr: number, srcPort: number): number {
    const policy = this.config.policy;
    const nodes = ctx.nodes;
    let node: number;
    let how: string;
    if (policy === 'maglev') {
      const p = ctx.p;
      node =
        p.family === 6
          ? this.maglev!.pick6(ctx.buf, p.ipHeaderOffset + 8, srcPort)
          : this.maglev!.pick(srcAddr, srcPort);
      how = `maglev slot ${this.maglev!.lastSlot}`;
    } else if (policy === 'least-conn') {
      const live = this.live.perNode ?? this.flows.perNode;
      node = pickLeastConn(this.ids, nodes, live, this.flows6?.perNode ?? null);
      // until the next count, this pick is one more live flow on its node
      if (node >= 0 && !ctx.dryRun && this.live.perNode !== null) this.live.perNode[node]!++;
      how = 'least-conn';
    } else {
      node = this.rr.pick(this.ids, nodes, ctx.dryRun);
      how = 'round-robin';
    }
    if (ctx.trace !== null) {
      const to = node < 0 ? 'no active node' : nodes.nameOf(node);
      ctx.trace.add(
        `connection: SYN → ${how}${policy === 'least-conn' && node >= 0 ? ` (${(this.live.perNode ?? this.flows.perNode)[node]! + (this.flows6?.perNode[node] ?? 0)} live)` : ''} → ${to}`,
      );
    }
    return node;
  }

  routeQuoted(ctx: PacketContext, out: DecisionOut): void {
    routeQuotedFlow(ctx, out, this.tables, 'connection', 'entry for the quoted flow');
  }

  sweep(now: number, budget: number): void {
    this.flows.sweep(now, budget);
    this.flows6?.sweep(now, budget);
  }

  kernel(): KernelPlan {
    const c = this.config;
    const nodes = this.deps.nodes;
    return {
      path: 'kernel',
      kind: 'connection',
      policy: c.policy,
      active: Array.from(this.ids).filter((id) => nodes.isActive(id)),
      maglev: this.maglev === null ? null : { table: this.maglev.table, size: this.maglev.size },
      rederive: c.rederive,
      maxEntries: c.maxEntries,
      timeouts: {
        syn: this.ttl[FLOW.SYN]!,
        established: this.ttl[FLOW.ESTABLISHED]!,
        fin: this.ttl[FLOW.FIN]!,
        rst: this.ttl[FLOW.RST]!,
      },
    };
  }

  setLiveFlows(perNode: Int32Array | null): void {
    this.live.perNode = perNode === null ? null : Int32Array.from(perNode);
  }

  describe(): Record<string, unknown> {
    const c = this.config;
    return {
      policy: c.policy,
      nodes: Array.from(this.ids, (id) => this.deps.nodes.nameOf(id)),
      ...(this.maglev ? { maglevSize: c.maglevSize } : {}),
      rederive: c.rederive,
      entries: this.flows.size + (this.flows6?.size ?? 0),
      maxEntries: c.maxEntries,
      timeouts: { ...c.timeouts },
    };
  }
}

function nextState(state: number, flags: number): number {
  if (flags & RST) return FLOW.RST;
  if (state === FLOW.RST) return FLOW.RST;
  if (flags & FIN || state === FLOW.FIN) return FLOW.FIN;
  return FLOW.ESTABLISHED;
}

/** lookup finds the packet's flow (a wide table reads ctx.key6); dry runs leave expired entries be. */
function lookup(ctx: PacketContext, flows: FlowTable, a: number, b: number, c: number, now: number): number {
  if (flows.wide) return ctx.dryRun ? flows.peekWide(ctx.key6, 0, now) : flows.findWide(ctx.key6, 0, now);
  return ctx.dryRun ? flows.peek(a, b, c, now) : flows.find(a, b, c, now);
}

/** save stores the packet's flow (a wide table reads ctx.key6). */
function save(
  ctx: PacketContext,
  flows: FlowTable,
  a: number,
  b: number,
  c: number,
  node: number,
  state: number,
  aux: number,
  ttl: number,
  now: number,
): void {
  if (flows.wide) flows.setWide(ctx.key6, 0, node, state, aux, ttl, now);
  else flows.set(a, b, c, node, state, aux, ttl, now);
}

function flowText(ctx: PacketContext): string {
  const p = ctx.p;
  if (p.family === 6) return `[${ipv6ToString(ctx.buf, p.ipHeaderOffset + 8)}]:${p.srcPort}`;
  return `${ipv4ToString(p.src)}:${p.srcPort}`;
}

/**
 * connectionSpec: `function: connection`, `policy: round-robin | maglev | least-conn`, optional
 * `nodes`, `maglevSize` (prime), `rederive` (maglev only), `maxEntries`, `timeouts: {syn, established,
 * fin, rst}` in seconds.
 */
export const connectionSpec: RoutingFunctionSpec<ConnectionConfig> = {
  kind: 'connection',
  protocols: ['tcp'],
  summary:
    'TCP connection manager (Fig. 10, claims 12-14): SYN picks a node by policy, later segments follow the table',
  validate(f, ctx) {
    const policy = f.oneOf('policy', POLICIES, 'round-robin') ?? 'round-robin';
    const nodes = readNodeNames(f, ctx);
    const maglevSize = f.int('maglevSize', { min: 2, max: MAX_MAGLEV_SIZE, default: DEFAULT_MAGLEV_SIZE });
    if (f.has('maglevSize') && !isPrime(maglevSize))
      f.error('maglevSize', `must be a prime, got ${maglevSize}`);
    const rederive = f.bool('rederive', false);
    if (rederive && policy !== 'maglev') {
      f.error('rederive', `needs policy maglev (a ${policy} choice cannot be derived again from the packet)`);
    }
    const maxEntries = f.int('maxEntries', { min: 1, max: 1 << 26, default: DEFAULT_MAX_CONNECTIONS });
    const t = f.sub('timeouts');
    const d = DEFAULT_CONNECTION_TIMEOUTS;
    const timeouts = {
      syn: t.seconds('syn', d.syn),
      established: t.seconds('established', d.established),
      fin: t.seconds('fin', d.fin),
      rst: t.seconds('rst', d.rst),
    };
    t.done();
    return { policy, nodes, maglevSize, rederive, maxEntries, timeouts };
  },
  create(config, deps) {
    return new ConnectionManager(config, deps);
  },
};

export type { ConnectionManager };
