import {
  type ConnectionFilter,
  type ConnectionInfo,
  ControlError,
  type ExplainResult,
  type ExportsRecord,
  type MemberRecord,
  type Protocol,
  type SpliceOffsets,
  type SwitchBackend,
  type SwitchEntryInfo,
} from '@onehost/control';
import { type EntryPath, type FastPath, packetsOf, stateOfTimeout } from '@onehost/fastpath';
import type { FlowElement } from '@onehost/kernel';
import {
  formatIssue,
  type MessageSwitch,
  type NodeStateName,
  type SwitchConfig,
  validateConfig,
} from '@onehost/switch';
import { ipv4ToString } from '@onehost/wire';
import { buildSwitchDoc, type SwitchDoc } from './cluster-doc.js';
import type { GatewayConfig } from './config.js';
import { exportsWithoutUnhealthy, type Skipped, type Unhealthy, withoutUnhealthy } from './health.js';

/**
 * GatewaySwitch owns the switch table's inputs — the configured entries (changed by operators over
 * gRPC), membership and exports — and rebuilds the snapshot from them on every change. It is also the
 * Switch service's backend. A rebuild that the switch refuses keeps the previous snapshot and throws
 * (or, for membership changes, reports through `onRejected`), so the packet loop never sees a bad table.
 */
export class GatewaySwitch implements SwitchBackend {
  private entries: Record<string, unknown>[];
  private members: readonly MemberRecord[] = [];
  private exports: readonly ExportsRecord[] = [];
  private unhealthy: Unhealthy = new Map();
  /** per entry ("tcp/80"), the nodes its candidates left out for their health, in words */
  private skipped: Skipped = new Map();
  /** entries whose every candidate failed a check, so that health was ignored for them */
  failOpen: string[] = [];
  /** listeners told after each swap (the data path refreshes its node destinations) */
  private readonly swapped: Array<() => void> = [];
  private pathOf: ((packet: Uint8Array) => string) | null = null;
  /** the last document validated, without node states, and the table it gave */
  private last: { shape: string; config: SwitchConfig } | null = null;
  private kernel: FastPath | null = null;

  constructor(
    readonly sw: MessageSwitch,
    private cfg: GatewayConfig,
  ) {
    this.entries = cfg.switch.entries.map((e) => ({ ...(e as Record<string, unknown>) }));
  }

  onSwap(fn: () => void): void {
    this.swapped.push(fn);
  }

  /** setPathExplainer adds to explain who decides such packets (the kernel data path's view). */
  setPathExplainer(fn: (packet: Uint8Array) => string): void {
    this.pathOf = fn;
  }

  /**
   * setSplicedInKernel makes listConnections show a spliced flow whose client segments the gateway's tc
   * program shifts (docs/splice.md, "In the kernel") as path kernel with the entry's packets: `packets`
   * answers -1 for a flow the kernel does not shift.
   */
  setSplicedInKernel(packets: (clientAddr: string, clientPort: number, clusterPort: number) => number): void {
    this.splicedPackets = packets;
  }
  private splicedPackets: ((clientAddr: string, clientPort: number, clusterPort: number) => number) | null =
    null;

  /**
   * setSpliceShifts lets listConnections and explain show a spliced flow's offsets: `shift` answers
   * them for an IPv4 client's connection to a cluster port, once the node's agent told them.
   */
  setSpliceShifts(
    shift: (clientAddr: string, clientPort: number, clusterPort: number) => SpliceOffsets | undefined,
  ): void {
    this.spliceShift = shift;
  }
  private spliceShift:
    | ((clientAddr: string, clientPort: number, clusterPort: number) => SpliceOffsets | undefined)
    | null = null;

  /** splicedPath is explain's path line for a TCP segment of a flow the gateway's tc program shifts. */
  private splicedPath(p: ExplainResult['packet']): string | null {
    if (
      this.splicedPackets === null ||
      p?.protocol !== 'tcp' ||
      p.srcPort === undefined ||
      p.dstPort === undefined
    )
      return null;
    const n = this.splicedPackets(p.src, p.srcPort, p.dstPort);
    if (n < 0) return null;
    const control = p.flags !== undefined && /SYN|FIN|RST/i.test(p.flags);
    return control
      ? 'user space: spliced flow, its SYN, FIN and RST go to the agent (the kernel shifts the rest)'
      : `kernel: spliced flow shifted by tc and routed to its node, ${n} packets`;
  }

  /** setKernelFlows makes listConnections list the flows the kernel keeps too. */
  setKernelFlows(fp: FastPath): void {
    this.kernel = fp;
  }

  /** setMembership rebuilds for new members/exports; throws ControlError when the switch refuses. */
  setMembership(
    members: readonly MemberRecord[],
    exports: readonly ExportsRecord[],
    unhealthy: Unhealthy = this.unhealthy,
  ): number {
    const before = this.unhealthy;
    this.unhealthy = unhealthy;
    try {
      const v = this.rebuild(this.entries, members, exports);
      this.members = members;
      this.exports = exports;
      return v;
    } catch (e) {
      this.unhealthy = before;
      throw e;
    }
  }

  /** skippedFor lists the nodes entry `key` ("tcp/80") leaves out for their health, in words. */
  skippedFor(key: string): string[] {
    return this.skipped.get(key) ?? [];
  }

  /** switchConfig is the switch part in force: the entries with operators' gRPC edits, and fragments. */
  switchConfig(): { entries: readonly Record<string, unknown>[]; fragments?: unknown } {
    return { entries: this.entries, fragments: this.cfg.switch.fragments };
  }

  /**
   * reload makes `next` the switch part of the configuration: its entries replace the ones in force
   * (gRPC edits included), validated and swapped like any change, so connections and kernel flows stay.
   * With dryRun it validates only. Throws ControlError INVALID_ARGUMENT naming the fields.
   */
  reload(next: GatewayConfig['switch'], dryRun: boolean): number {
    const cfg: GatewayConfig = { ...this.cfg, switch: next };
    const entries = next.entries.map((e) => ({ ...(e as Record<string, unknown>) }));
    const h = this.healthy(buildSwitchDoc(cfg, entries, this.members, this.exports));
    const config = this.validated(h.doc);
    // building would create state for new entries: a dry run stops at validation (build refuses nothing more)
    if (dryRun) return this.sw.snapshot?.version ?? 0;
    const snap = this.sw.build(config);
    this.cfg = cfg;
    this.entries = entries;
    this.skipped = h.skipped;
    this.failOpen = h.failOpen;
    this.sw.swap(snap);
    for (const fn of this.swapped) fn();
    return snap.version;
  }

  listEntries(): { entries: SwitchEntryInfo[]; version: number } {
    return {
      entries: this.entries.map((e) => {
        const { protocol, port, function: fn, ...options } = e;
        return { protocol: protocol as Protocol, port: port as number, function: fn as string, options };
      }),
      version: this.sw.snapshot?.version ?? 0,
    };
  }

  setEntry(e: SwitchEntryInfo): number {
    const entries = this.entries.filter((x) => !(x.protocol === e.protocol && x.port === e.port));
    entries.push({ protocol: e.protocol, port: e.port, function: e.function, ...e.options });
    const v = this.rebuild(entries, this.members, this.exports);
    this.entries = entries;
    return v;
  }

  deleteEntry(protocol: Protocol, port: number): number {
    const entries = this.entries.filter((x) => !(x.protocol === protocol && x.port === port));
    if (entries.length === this.entries.length)
      throw new ControlError('NOT_FOUND', `no entry for ${protocol}/${port}`);
    const v = this.rebuild(entries, this.members, this.exports);
    this.entries = entries;
    return v;
  }

  /**
   * explain decides like the switch; a flow the kernel keeps and forwards goes where its kernel entry
   * says, whatever the switch's own table holds (the kernel's round robin counts on its own), and the
   * trace says so.
   */
  explain(packet: Uint8Array, opts: { updateTables: boolean }): ExplainResult {
    const r0 = this.sw.explain(packet, { dryRun: !opts.updateTables });
    const p = r0.packet;
    const skipped = p?.dstPort === undefined ? [] : this.skippedFor(`${p.protocol}/${p.dstPort}`);
    const sh =
      p?.protocol === 'tcp' && p.srcPort !== undefined && p.dstPort !== undefined
        ? this.spliceShift?.(p.src, p.srcPort, p.dstPort)
        : undefined;
    const extra = [
      ...skipped.map((x) => `health: ${x}`),
      ...(sh === undefined
        ? []
        : [
            `splice: the client's segments are shifted into the node's view: ack and SACK ${signed(sh.seqOffset)}, timestamp echo ${signed(-sh.tsOffset)}, port ${p?.dstPort} → ${sh.nodePort}`,
          ]),
    ];
    const r = extra.length === 0 ? r0 : { ...r0, trace: [...r0.trace, ...extra] };
    if (this.pathOf === null) return r;
    const spliced = this.splicedPath(p);
    if (spliced !== null) return { ...r, path: spliced };
    const path = this.pathOf(packet);
    const k = this.kernel?.flowOf(packet) ?? null;
    const snap = this.sw.snapshot;
    if (k === null || !k.forwards || snap === null) return { ...r, path };
    const name = snap.nodes.nameOf(k.node);
    const decision =
      k.node === snap.nodes.gatewayId
        ? ({ kind: 'local' } as const)
        : ({ kind: 'forward', node: k.node, nodeName: name } as const);
    return { ...r, decision, trace: [...r.trace, `kernel: the flow's entry → ${name}`], path };
  }

  async listConnections(
    filter: ConnectionFilter,
  ): Promise<{ connections: ConnectionInfo[]; total: number; more?: boolean }> {
    const f: { protocol?: Protocol; port?: number; nodeName?: string; limit: number } = {
      limit: filter.limit,
    };
    if (filter.protocol !== undefined) f.protocol = filter.protocol;
    if (filter.port !== undefined) f.port = filter.port;
    if (filter.nodeName !== undefined) f.nodeName = filter.nodeName;
    const { flows, total } = this.sw.listFlows(f);
    const user: ConnectionInfo[] = flows.map((r) => ({
      protocol: r.protocol,
      port: r.port,
      srcAddress: r.clientAddress,
      srcPort: r.clientPort,
      nodeId: r.node,
      nodeName: r.nodeName ?? '',
      state: String(r.state),
      expiresInMs: r.expiresInMs,
      path: 'user' as const,
    }));
    const shift = this.spliceShift;
    if (shift !== null)
      for (const c of user) {
        if (c.protocol !== 'tcp') continue;
        const sh = shift(c.srcAddress, c.srcPort, c.port);
        if (sh !== undefined) c.splice = sh;
      }
    const spliced = this.splicedPackets;
    if (spliced !== null) {
      for (const c of user) {
        if (c.protocol !== 'tcp') continue;
        const n = spliced(c.srcAddress, c.srcPort, c.port);
        if (n < 0) continue;
        c.path = 'kernel';
        c.packets = n;
      }
    }
    if (this.kernel === null) return { total, connections: user };
    return this.withKernelFlows(f, user, total);
  }

  /**
   * withKernelFlows lists the kernel's flows of the entries that keep them, then the switch's own that
   * the kernel does not have (least-connections' first packets, flows waiting for their kernel entry).
   */
  private async withKernelFlows(
    f: { protocol?: Protocol; port?: number; nodeName?: string; limit: number },
    user: ConnectionInfo[],
    userTotal: number,
  ): Promise<{ connections: ConnectionInfo[]; total: number; more: boolean }> {
    const fp = this.kernel!;
    const snap = this.sw.snapshot;
    const out: ConnectionInfo[] = [];
    const seen = new Set<string>();
    let total = 0;
    let more = false;
    /** lists one family's kernel flows; `addressOf` names a flow's client */
    const collect = async (
      entries: Iterable<EntryPath>,
      read: (protocol: number, port: number, limit: number) => Promise<FlowElement[]>,
      addressOf: (x: FlowElement, protocol: Protocol, port: number) => string,
    ): Promise<void> => {
      for (const e of entries) {
        const protocol: Protocol = e.protocol === 6 ? 'tcp' : 'udp';
        if (e.flowMap === undefined || (f.protocol !== undefined && f.protocol !== protocol)) continue;
        if (f.port !== undefined && f.port !== e.port) continue;
        // read as far as the rows still wanted (and one more, to know whether there are more)
        const want = Math.max(0, f.limit - out.length);
        const rows = await read(e.protocol, e.port, want + 1);
        if (rows.length > want) more = true;
        for (const x of rows.slice(0, want)) {
          const node = fp.nodeOfMark(x.mark);
          const nodeName = snap?.nodes.nameOf(node) ?? `#${node}`;
          if (f.nodeName !== undefined && f.nodeName !== nodeName) continue;
          const srcAddress = addressOf(x, protocol, e.port);
          seen.add(`${protocol}/${e.port}/${srcAddress}/${x.port}`);
          total++;
          if (out.length >= f.limit) continue;
          out.push({
            protocol,
            port: e.port,
            srcAddress,
            srcPort: x.port,
            nodeId: node,
            nodeName,
            state: stateOfTimeout(e, x.timeoutMs),
            expiresInMs: x.expiresMs,
            path: 'kernel',
            packets: packetsOf(x.packets),
          });
        }
      }
    };
    await collect(
      fp.applied?.entries.values() ?? [],
      (p, port, n) => fp.flowsOf(p, port, n),
      (x) => ipv4ToString(x.client),
    );
    // IPv6: the kernel's keys are hashes (fastpath compile.ts), so a flow's client address is known only
    // when the switch has the flow too (least-connections, re-derived flows); otherwise it shows as `?`
    const known6 = new Map<string, string>();
    for (const u of user)
      if (u.srcAddress.includes(':'))
        for (const k of fp.flowKeys6(u.srcAddress, u.srcPort))
          known6.set(`${u.protocol}/${u.port}/${k}`, u.srcAddress);
    await collect(
      fp.applied6?.entries.values() ?? [],
      (p, port, n) => fp.flowsOf6(p, port, n),
      (x, protocol, port) => known6.get(`${protocol}/${port}/${x.vip}/${x.client}/${x.port}`) ?? '?',
    );
    for (const u of user) {
      if (seen.has(`${u.protocol}/${u.port}/${u.srcAddress}/${u.srcPort}`)) continue;
      total++;
      if (out.length < f.limit) out.push(u);
    }
    // the switch's rows past its own limit were not seen: count them as they were counted
    return { connections: out, total: total + Math.max(0, userTotal - user.length), more };
  }

  /**
   * validated validates a switch document, except when it differs from the last one only in node states
   * (a node down, up or drained: most membership changes), which cannot make a valid table invalid; then
   * the last validated table gets the new states. Throws ControlError INVALID_ARGUMENT naming the fields.
   */
  private validated(doc: SwitchDoc): SwitchConfig {
    const states = new Map(doc.nodes.map((n) => [n.name as string, n.state]));
    const shape = JSON.stringify({ ...doc, nodes: doc.nodes.map(({ state: _s, ...rest }) => rest) });
    const last = this.last;
    if (last !== null && last.shape === shape) {
      return {
        ...last.config,
        nodes: last.config.nodes.map((n) => ({
          ...n,
          state: (states.get(n.name) ?? 'active') as NodeStateName,
        })),
      };
    }
    const r = validateConfig(doc, this.sw.registry);
    if (!r.ok) throw new ControlError('INVALID_ARGUMENT', r.issues.map((i) => formatIssue(i)).join('; '));
    this.last = { shape, config: r.config };
    return r.config;
  }

  /** healthy takes nodes out of the candidates of entries their failing checks cover (see health.ts). */
  private healthy(doc: SwitchDoc): { doc: SwitchDoc; skipped: Skipped; failOpen: string[] } {
    const h = withoutUnhealthy(
      doc.entries,
      doc.nodes.map((n) => String(n.name)),
      this.unhealthy,
    );
    const x = exportsWithoutUnhealthy(doc.entries, doc.exports, this.unhealthy);
    for (const [key, notes] of x.skipped) h.skipped.set(key, [...(h.skipped.get(key) ?? []), ...notes]);
    return {
      doc: { ...doc, entries: h.entries, exports: x.exports },
      skipped: h.skipped,
      failOpen: h.failOpen,
    };
  }

  private rebuild(
    entries: readonly Record<string, unknown>[],
    members: readonly MemberRecord[],
    exports: readonly ExportsRecord[],
  ): number {
    const h = this.healthy(buildSwitchDoc(this.cfg, entries, members, exports));
    const snap = this.sw.build(this.validated(h.doc));
    this.skipped = h.skipped;
    this.failOpen = h.failOpen;
    this.sw.swap(snap);
    for (const fn of this.swapped) fn();
    return snap.version;
  }
}

/** signed writes n with its sign ("+5", "-3", "0"). */
function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}
