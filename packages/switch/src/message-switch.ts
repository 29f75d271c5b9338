import { ADDR6, errorInfo, ipv4ToString, ipv6WordsText, OK, TCP_FLAGS } from '@onehost/wire';
import { clusterAddressText } from './config/address-text.js';
import type { SwitchConfig } from './config/types.js';
import { SwitchCounters } from './counters.js';
import { type Decision, DecisionOut, KIND, NO_PORT } from './decision.js';
import { DROP, dropReasonName } from './drop-reason.js';
import { routeInbound } from './flow.js';
import { type FlowQuestion, flowPacket } from './flow-packet.js';
import { defaultRegistry, type FunctionRegistry } from './functions/registry.js';
import { FlowLog } from './kernel-plan.js';
import { PacketContext } from './packet-context.js';
import { TableSnapshot } from './snapshot.js';
import { StateStore } from './state-store.js';
import type { FlowTable } from './tables/flow-table.js';
import { FragmentTable } from './tables/fragment-table.js';
import { Trace } from './trace.js';

export interface MessageSwitchOptions {
  registry?: FunctionRegistry;
  /** clock in milliseconds for explain when no `now` is given (default Date.now). */
  clock?: () => number;
}

/** The packet as explain read it (text, for people). */
export interface PacketDescription {
  protocol: string;
  src: string;
  dst: string;
  srcPort?: number;
  dstPort?: number;
  flags?: string;
  length: number;
  fragment?: string;
  icmp?: string;
}

/** Explanation is what `explain` returns: the decision, the boxes that made it, and the packet. */
export interface Explanation {
  decision: Decision;
  trace: string[];
  packet?: PacketDescription;
}

/** A live flow of the switch's tables, for listings (ListConnections). */
export interface FlowRow {
  protocol: 'tcp' | 'udp';
  /** the entry's port and function. */
  port: number;
  function: string;
  clientAddress: string;
  clientPort: number;
  clusterAddress: string;
  node: number;
  nodeName: string;
  state: string;
  expiresInMs: number;
}

export interface FlowFilter {
  protocol?: 'tcp' | 'udp';
  port?: number;
  nodeName?: string;
  /** at most this many rows (default all); `total` still counts every match. */
  limit?: number;
}

export interface ExplainOptions {
  /** milliseconds on the switch's clock; default the clock option. */
  now?: number;
  /** decide without touching any table (ask a live switch); default false. */
  dryRun?: boolean;
}

/**
 * MessageSwitch is the gateway's message switch (Fig. 4): it holds the current table snapshot and the
 * state that outlives snapshots, and decides per packet. Pure: bytes in, decisions out, no I/O.
 *
 * The packet loop calls `decide` or `decideBatch` (no allocation for established flows, never throws
 * on any bytes); the control plane calls `load`/`swap`; tools call `explain`.
 */
export class MessageSwitch {
  readonly counters = new SwitchCounters();
  readonly registry: FunctionRegistry;
  /** flow decisions for the kernel fast path to learn (disabled unless it runs) */
  readonly flowLog = new FlowLog();
  private readonly store = new StateStore();
  private readonly ctx = new PacketContext();
  private readonly out = new DecisionOut();
  private readonly clock: () => number;
  private current: TableSnapshot | null = null;
  /**
   * Tables keep time in whole milliseconds since the first packet this switch saw, small integers the
   * engine passes around without boxing (for about 24 days; after that they still work, boxed).
   */
  private epoch = 0;
  private hasEpoch = false;
  private fragments = new FragmentTable(1);
  private version = 0;

  constructor(opts: MessageSwitchOptions = {}) {
    this.registry = opts.registry ?? defaultRegistry();
    this.clock = opts.clock ?? Date.now;
  }

  /** snapshot is the table in use (null before the first load). */
  get snapshot(): TableSnapshot | null {
    return this.current;
  }

  /**
   * build makes a snapshot for a validated config, reusing this switch's kept state (connection tables
   * of entries that stay), without swapping it in. Throws Error only for a config validateConfig
   * refuses.
   */
  build(config: SwitchConfig): TableSnapshot {
    return new TableSnapshot(config, this.registry, this.counters, this.store, ++this.version, this.flowLog);
  }

  /** swap makes `snap` the table in use (one assignment) and drops state no entry of it uses. */
  swap(snap: TableSnapshot): void {
    const f = this.fragments;
    if (f.slots.capacity !== snap.fragmentCapacity || (f.slots6 !== null) !== snap.ipv6)
      this.fragments = new FragmentTable(snap.fragmentCapacity, snap.ipv6);
    this.current = snap;
    this.store.retainOnly(snap.stateKeys);
  }

  /** load builds and swaps in a snapshot for `config`; throws as `build` does. */
  load(config: SwitchConfig): TableSnapshot {
    const s = this.build(config);
    this.swap(s);
    return s;
  }

  /**
   * decide routes the IPv4 packet at buf[off, off+len) at time `now` (ms) into `out` and returns its
   * KIND. Never throws on any bytes; with no table loaded every packet is dropped as not ours.
   */
  decide(buf: Uint8Array, off: number, len: number, now: number, out: DecisionOut): number {
    const ctx = this.ctx;
    ctx.trace = null;
    ctx.dryRun = false;
    this.run(buf, off, len, now, out);
    return out.kind;
  }

  /**
   * decideBatch decides `count` packets of one buffer (packet i at offsets[i], lengths[i]) against one
   * snapshot, writing kinds[i] (KIND), nodes[i] (node id, -1 unless FORWARD), ports[i] (new destination
   * port or -1) and reasons[i] (DROP code or 0).
   */
  decideBatch(
    buf: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    count: number,
    now: number,
    kinds: Uint8Array,
    nodes: Int32Array,
    ports: Int32Array,
    reasons: Uint8Array,
  ): void {
    const ctx = this.ctx;
    const out = this.out;
    ctx.trace = null;
    ctx.dryRun = false;
    for (let i = 0; i < count; i++) {
      this.run(buf, offsets[i]!, lengths[i]!, now, out);
      kinds[i] = out.kind;
      nodes[i] = out.node;
      ports[i] = out.port;
      reasons[i] = out.reason;
    }
  }

  /**
   * explain decides one packet like `decide` (updating the tables unless dryRun) and returns the
   * decision, the trace of boxes that made it and the packet as read. Never throws on any bytes.
   */
  explain(buf: Uint8Array, opts: ExplainOptions = {}): Explanation {
    const ctx = this.ctx;
    const out = new DecisionOut();
    const trace = new Trace();
    ctx.trace = trace;
    ctx.dryRun = opts.dryRun ?? false;
    try {
      this.run(buf, 0, buf.length, opts.now ?? this.clock(), out);
    } finally {
      ctx.trace = null;
      ctx.dryRun = false;
    }
    const snap = this.current;
    let decision: Decision;
    if (out.kind === KIND.FORWARD) {
      decision = {
        kind: 'forward',
        node: out.node,
        nodeName: snap?.nodes.nameOf(out.node) ?? `#${out.node}`,
        ...(out.port !== NO_PORT ? { port: out.port } : {}),
        ...(out.spliced ? { spliced: true } : {}),
      };
    } else if (out.kind === KIND.LOCAL)
      decision = { kind: 'local', ...(out.port !== NO_PORT ? { port: out.port } : {}) };
    else decision = { kind: 'drop', reason: dropReasonName(out.reason) };
    const packet =
      trace.steps.length > 0 && !trace.steps[0]!.startsWith('wire:') ? this.describePacket() : undefined;
    return { decision, trace: trace.steps, ...(packet ? { packet } : {}) };
  }

  /**
   * decideDry decides the IPv4 or IPv6 packet at buf[off, off+len) into `out` without touching any table
   * and without a trace: what `explain` with `dryRun` decides, at a packet's cost, for the control
   * plane's own questions (which node a held connection's record routes to). Returns out's KIND.
   */
  decideDry(buf: Uint8Array, off: number, len: number, out: DecisionOut, now = this.clock()): number {
    const ctx = this.ctx;
    ctx.dryRun = true;
    try {
      this.run(buf, off, len, now, out);
    } finally {
      ctx.dryRun = false;
    }
    return out.kind;
  }

  /**
   * explainFlow answers "which node would this flow reach, and why" from a description instead of
   * bytes; a dry run unless `dryRun: false` is given. Throws RangeError for ports outside 0-65535.
   */
  explainFlow(q: FlowQuestion, opts: ExplainOptions = {}): Explanation {
    return this.explain(flowPacket(q), { ...opts, dryRun: opts.dryRun ?? true });
  }

  /**
   * listFlows lists the live flows of every routing function that keeps some (connection, udp-flow,
   * mount/nfs over TCP), filtered; allocates, so call it from the control plane, not the packet loop.
   */
  listFlows(filter: FlowFilter = {}, now = this.clock()): { flows: FlowRow[]; total: number } {
    const snap = this.current;
    const at = this.tableTime(now);
    const flows: FlowRow[] = [];
    let total = 0;
    if (snap === null) return { flows, total };
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    for (const e of snap.entries.values()) {
      const protocol = e.protocol === 6 ? 'tcp' : 'udp';
      if (filter.protocol !== undefined && filter.protocol !== protocol) continue;
      if (filter.port !== undefined && filter.port !== e.port) continue;
      const tables = [e.fn.flowTable, e.fn.flowTable6].filter((t) => !!t) as FlowTable[];
      for (const f of tables.flatMap((t) => t.entries(at))) {
        const nodeName = snap.nodes.nameOf(f.node);
        if (filter.nodeName !== undefined && filter.nodeName !== nodeName) continue;
        total++;
        if (flows.length >= limit) continue;
        const vip = snap.clusterAddresses[f.clusterAddressIndex];
        flows.push({
          protocol,
          port: e.port,
          function: e.kind,
          clientAddress: f.clientAddress6 ?? ipv4ToString(f.clientAddress),
          clientPort: f.clientPort,
          clusterAddress: vip ? clusterAddressText(vip) : `#${f.clusterAddressIndex}`,
          node: f.node,
          nodeName,
          state: f.state,
          expiresInMs: f.expiresInMs,
        });
      }
    }
    return { flows, total };
  }

  /**
   * bindSplicedFlow records that the TCP flow client:clientPort → clusterAddress:port was handed over to
   * node `node` (delayed binding): its later segments are forwarded spliced. False when no TCP entry with
   * a binding function serves that port, or the address is not a cluster address.
   */
  bindSplicedFlow(
    client: number,
    clientPort: number,
    clusterAddress: number,
    port: number,
    node: number,
    now = this.clock(),
  ): boolean {
    const snap = this.current;
    if (snap === null) return false;
    const vip = snap.vipIndex(clusterAddress | 0);
    const e = snap.lookup(6, port);
    if (vip < 0 || e === null || e.fn.bind === undefined) return false;
    return e.fn.bind(client, clientPort, port, vip, node, this.bindTime(now));
  }

  /**
   * bindSplicedFlow6 is bindSplicedFlow for an IPv6 connection: the client's and the cluster address's
   * 16 bytes. False as there, or when the table has no IPv6 binding for the port.
   */
  bindSplicedFlow6(
    client: Uint8Array,
    clientPort: number,
    clusterAddress: Uint8Array,
    port: number,
    node: number,
    now = this.clock(),
  ): boolean {
    const snap = this.current;
    if (snap === null || client.length !== 16 || clusterAddress.length !== 16) return false;
    // big-endian int32 words, as PacketSummary reads addresses into addr6: client, then cluster address
    const w = new Int32Array(8);
    for (let i = 0; i < 16; i += 4) {
      w[i >> 2] = (client[i]! << 24) | (client[i + 1]! << 16) | (client[i + 2]! << 8) | client[i + 3]!;
      w[4 + (i >> 2)] =
        (clusterAddress[i]! << 24) |
        (clusterAddress[i + 1]! << 16) |
        (clusterAddress[i + 2]! << 8) |
        clusterAddress[i + 3]!;
    }
    const vip = snap.vipIndex6(w, 4);
    const e = snap.lookup(6, port);
    if (vip < 0 || e === null || e.fn.bind6 === undefined) return false;
    return e.fn.bind6(w, clientPort, port, vip, node, this.bindTime(now));
  }

  /** bindTime is the tables' time for a binding made from outside the packet path (starts the epoch). */
  private bindTime(now: number): number {
    if (!this.hasEpoch) {
      this.epoch = Math.floor(now);
      this.hasEpoch = true;
    }
    return this.tableTime(now);
  }

  /** sweep lets every routing function examine up to `budget` flow slots each and release the expired ones. */
  sweep(now: number, budget = 1024): void {
    const snap = this.current;
    if (snap === null) return;
    const at = this.tableTime(now);
    for (const e of snap.entries.values()) e.fn.sweep?.(at, budget);
  }

  /** tableTime converts a clock reading to the tables' time (see `epoch`). */
  private tableTime(now: number): number {
    return this.hasEpoch ? Math.floor(now - this.epoch) : 0;
  }

  private run(buf: Uint8Array, off: number, len: number, now: number, out: DecisionOut): void {
    const ctx = this.ctx;
    const snap = this.current;
    const p = ctx.p;
    // the version nibble picks the reader (RFC 8200 §3); anything else fails IPv4's version check
    const code =
      off >= 0 && len >= 0 && off + len <= buf.length
        ? len > 0 && buf[off]! >>> 4 === 6
          ? p.read6(buf, off, len)
          : p.read(buf, off, len)
        : -1;
    if (code !== OK) {
      const info = code < 0 ? undefined : errorInfo(code);
      if (code >= 0) this.counters.wireError(code);
      out.drop(info !== undefined && info.kind === 'malformed' ? DROP.MALFORMED : DROP.TRUNCATED);
      if (ctx.trace !== null) ctx.trace.add(`wire: ${info?.name ?? 'range outside the buffer'} → drop`);
    } else if (snap === null) {
      out.drop(DROP.NOT_CLUSTER_ADDRESS);
      if (ctx.trace !== null) ctx.trace.add('no switch table loaded');
    } else {
      if (!this.hasEpoch) {
        this.epoch = Math.floor(now);
        this.hasEpoch = true;
      }
      ctx.buf = buf;
      ctx.now = Math.floor(now - this.epoch);
      ctx.nodes = snap.nodes;
      routeInbound(ctx, snap, out, this.counters, this.fragments);
    }
    this.counters.decisions[out.kind]!++;
    if (out.kind === KIND.DROP) this.counters.drops[out.reason]!++;
  }

  private describePacket(): PacketDescription {
    const p = this.ctx.p;
    const v6 = p.family === 6;
    const d: PacketDescription = {
      protocol:
        p.protocol === 6
          ? 'tcp'
          : p.protocol === 17
            ? 'udp'
            : p.protocol === 1 && !v6
              ? 'icmp'
              : p.protocol === 58 && v6
                ? 'icmpv6'
                : String(p.protocol),
      src: v6 ? ipv6WordsText(p.addr6, ADDR6.SRC) : ipv4ToString(p.src),
      dst: v6 ? ipv6WordsText(p.addr6, ADDR6.DST) : ipv4ToString(p.dst),
      length: p.totalLength,
    };
    if (p.protocol === 6 || p.protocol === 17) {
      if (!p.isFragment || p.firstFragment) {
        d.srcPort = p.srcPort;
        d.dstPort = p.dstPort;
      }
    }
    if (p.protocol === 6 && (!p.isFragment || p.firstFragment)) d.flags = flagText(p.tcpFlags);
    if (p.isFragment)
      d.fragment = `id ${p.fragmentId}${p.firstFragment ? ', first' : ''}${p.moreFragments ? ', more' : ', last'}`;
    if (p.protocol === (v6 ? 58 : 1)) d.icmp = `type ${p.icmpType} code ${p.icmpCode}`;
    return d;
  }
}

const FLAG_NAMES: [number, string][] = [
  [TCP_FLAGS.SYN, 'SYN'],
  [TCP_FLAGS.ACK, 'ACK'],
  [TCP_FLAGS.FIN, 'FIN'],
  [TCP_FLAGS.RST, 'RST'],
  [TCP_FLAGS.PSH, 'PSH'],
  [TCP_FLAGS.URG, 'URG'],
];

function flagText(flags: number): string {
  const names = FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n);
  return names.length > 0 ? names.join('|') : 'none';
}
