import {
  FlowBatch,
  type FlowElement,
  type Host,
  type JournalFile,
  NftContext,
  NftFlows,
} from '@onehost/kernel';
import { FLOW_OP, type FlowLog, type KernelPlan, type TableSnapshot } from '@onehost/switch';
import { parseIpv6 } from '@onehost/wire';
import type { Logger } from 'pino';
import {
  compileState,
  type EntryPath,
  entryName,
  type FastPathLayout,
  type KernelState,
  LOCAL_SLOT,
  localMark,
  markOf,
  type NodeEndpoint,
} from './compile.js';
import { explainPath, flowKeyWords6, kernelFlow } from './explain.js';
import { type ExistingObjects, ipChanges, localRuleArgs, renderTransaction } from './render.js';

/** A named counter of the fast path's table. */
export interface KernelCounter {
  packets: number;
  bytes: number;
}

/** What the fast path counts about itself (metrics). */
export interface FastPathStats {
  /** transactions applied, and refused by the kernel */
  applied: number;
  failures: number;
  /** flow-map operations written from the flow log, refused, and lost because the log was full */
  flowWrites: number;
  flowWriteFailures: number;
  flowLogDropped: number;
  /** the snapshot version in the kernel, and the one the switch has */
  appliedVersion: number;
  wantedVersion: number;
  /** milliseconds the last apply took (compile, ip commands, nft transaction), and its nft part */
  lastApplyMs: number;
  lastNftMs: number;
}

/** Options of {@link FastPath.start}. */
export interface FastPathOptions {
  layout: FastPathLayout;
  host: Host;
  /** the host's restore journal: the device, table, rules and routes are recorded in it */
  journal: JournalFile;
  log: Logger;
}

/** LIVE_COUNT_MAX: least-connections entries with more flows than this count their own table instead. */
export const LIVE_COUNT_MAX = 50_000;

/** nftFailure picks the rule nft names in its error output (the line after "Error: …"). */
export function nftFailure(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim());
  const at = lines.findIndex((l) => /Error:/.test(l));
  if (at < 0) return lines.find((l) => l !== '') ?? 'nft failed';
  const why = lines[at]!.replace(/^.*?Error:\s*/, '');
  const rule = lines[at + 1] ?? '';
  return rule !== '' && !/^\^/.test(rule) ? `${why}: ${rule}` : why;
}

/**
 * FastPath keeps the switch compiled into the kernel: per node a routing table that encapsulates the
 * cluster addresses in VXLAN to it, a mark rule that selects that table, and an nftables table whose
 * chains give each packet for a cluster address the mark of its node (docs/fastpath.md). What the kernel
 * cannot decide gets no mark and reaches the TUN, where the switch decides as before. Applies are
 * serialized and coalesced (the newest snapshot wins); a transaction the kernel refuses leaves the
 * previous table in force, logged once and counted. The kernel state outlives the process: `start`
 * adopts a table a previous gateway left, `teardown` removes it.
 */
export class FastPath {
  readonly stats: FastPathStats = {
    applied: 0,
    failures: 0,
    flowWrites: 0,
    flowWriteFailures: 0,
    flowLogDropped: 0,
    appliedVersion: 0,
    wantedVersion: 0,
    lastApplyMs: 0,
    lastNftMs: 0,
  };
  /** the last refusal (explain shows it while the kernel lags the switch) */
  lastError = '';
  private state: KernelState | null = null;
  /** the IPv6 table in force (null without IPv6 cluster addresses, or before the first apply) */
  private state6: KernelState | null = null;
  private existing: ExistingObjects | undefined;
  private existing6: ExistingObjects | undefined;
  /** node ids whose mark rule exists (IPv4, and IPv6) */
  private rules = new Set<number>();
  private rules6 = new Set<number>();
  private queued: { snap: TableSnapshot; endpoints: readonly NodeEndpoint[] } | null = null;
  private running: Promise<void> | null = null;
  private readonly batch = new FlowBatch(8192);
  private mapNames: string[] = [];
  private mapIndex = new Map<number, number>();
  /** the IPv6 table's flow maps, written through `flows6` */
  private readonly batch6 = new FlowBatch(8192);
  private mapNames6: string[] = [];
  private mapIndex6 = new Map<number, number>();
  /** an IPv6 flow's hashed tuple: cluster address, client address, client port padded to 4 (compile.ts) */
  private readonly tuple6 = new Uint8Array(36);
  private readonly words6 = new Uint32Array(2);
  private loggedError = '';
  private loggedFlowError = '';
  private flows: NftFlows | null = null;
  /** the IPv6 table's maps and counters (user space writes IPv6 flows from the flow log) */
  private flows6: NftFlows | null = null;
  /** nftables in this process: transactions, and listings as JSON */
  private nft: NftContext | null = null;
  private nftJson: NftContext | null = null;

  private constructor(private readonly o: FastPathOptions) {}

  get layout(): FastPathLayout {
    return this.o.layout;
  }

  /** adopting: the kernel holds a table a previous gateway left, and nothing was applied over it yet. */
  get adopting(): boolean {
    return this.existing !== undefined;
  }

  /** applied is the kernel state in force (null before the first apply). */
  get applied(): KernelState | null {
    return this.state;
  }

  /** applied6 is the IPv6 table in force (null without IPv6 cluster addresses or before the first apply). */
  get applied6(): KernelState | null {
    return this.state6;
  }

  /** six: the configuration has IPv6 cluster addresses, so the kernel keeps an `ip6` table too. */
  private get six(): boolean {
    return (this.o.layout.vips6 ?? []).length > 0;
  }

  /**
   * start creates (or adopts) the VXLAN device, the rule for the gateway's own mark and the table, and
   * records them in the journal. What a previous gateway left (its table with the flows in it, its node
   * rules and routes) is adopted: the first apply rewrites the rules and keeps the flows. Throws a
   * CommandError when the kernel refuses.
   */
  static async start(o: FastPathOptions): Promise<FastPath> {
    const f = new FastPath(o);
    const { host, journal, layout: l } = o;
    await journal.recordOnce({ kind: 'link', name: l.device });
    if (!(await host.linkExists(l.device)))
      await host.ip('link', 'add', l.device, 'type', 'vxlan', 'external', 'dstport', String(l.vxlanPort));
    // no link-local address: the kernel's own IPv6 chatter has no tunnel to leave by (and would only
    // count as transmit errors); IPv6 stays on for routes into the device
    await host.noIpv6Autoconf(l.device);
    // IPv6 cluster addresses route through the device: the kernel refuses an IPv6 route (and forwards
    // nothing) through a device with IPv6 off, the lab's and many hosts' default (the setting goes with it)
    if ((l.vips6 ?? []).length > 0) await host.writeSysctl(`net/ipv6/conf/${l.device}/disable_ipv6`, '0');
    // outer packets must not fragment: the device's MTU is the interconnect's less the VXLAN overhead
    await host.ip('link', 'set', l.device, 'mtu', String(l.innerMtu), 'up');
    await journal.recordOnce({ kind: 'rules-at', priority: l.rulePref });
    await journal.recordOnce({ kind: 'tables', from: l.tableBase, to: l.tableBase + LOCAL_SLOT });
    await journal.recordOnce({ kind: 'nft-table', family: 'ip', name: l.table });
    const local = localMark(l);
    const six = (l.vips6 ?? []).length > 0;
    if (six) await journal.recordOnce({ kind: 'nft-table', family: 'ip6', name: l.table });
    for (const family of six ? ([4, 6] as const) : ([4] as const)) {
      const rules = family === 6 ? await host.rules6() : await host.rules();
      if (!rules.some((r) => r.priority === l.rulePref && Number(r.fwmark) === local))
        await (family === 6
          ? host.ip('-6', 'rule', 'add', ...localRuleArgs(l))
          : host.ip('rule', 'add', ...localRuleArgs(l)));
      for (const r of rules) {
        if (r.priority !== l.rulePref || r.fwmark === undefined) continue;
        const id = Number(r.fwmark) - l.markBase;
        if (id >= 0 && id < LOCAL_SLOT) (family === 6 ? f.rules6 : f.rules).add(id);
      }
    }
    if (await host.nftTableExists('ip', l.table)) {
      f.existing = await readExisting(host, 'ip', l.table);
      o.log.info(
        { chains: f.existing.chains.size, maps: f.existing.sets.size, nodeRules: f.rules.size },
        'adopting the kernel fast path a previous gateway left',
      );
    }
    if (await host.nftTableExists('ip6', l.table)) {
      // a previous gateway's IPv6 table: adopted like the IPv4 one, or removed when IPv6 is gone
      if (six) f.existing6 = await readExisting(host, 'ip6', l.table);
      else await host.run('nft', ['delete', 'table', 'ip6', l.table]);
    }
    f.flows = NftFlows.open(l.table, host.netns);
    if (six) f.flows6 = NftFlows.open(l.table, host.netns, 6);
    f.nft = NftContext.open(host.netns);
    f.nftJson = NftContext.open(host.netns, true);
    return f;
  }

  /**
   * apply compiles `snap` for the reachable `endpoints` and brings the kernel to it. Resolves when this
   * snapshot (or a newer one asked for meanwhile) is in force or was refused; never rejects.
   */
  apply(snap: TableSnapshot, endpoints: readonly NodeEndpoint[]): Promise<void> {
    this.stats.wantedVersion = snap.version;
    this.queued = { snap, endpoints };
    if (this.running === null) {
      this.running = (async () => {
        while (this.queued !== null) {
          const q = this.queued;
          this.queued = null;
          await this.applyOne(q.snap, q.endpoints);
        }
        this.running = null;
      })();
    }
    return this.running;
  }

  /** settled resolves once no apply is running or queued. */
  async settled(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** explain says who decides packets like `packet` (see explainPath), live from the kernel. */
  explain(snap: TableSnapshot, packet: Uint8Array): string {
    return explainPath(this, snap, packet);
  }

  /** flowOf finds the kernel's flow for `packet` (see kernelFlow). */
  flowOf(packet: Uint8Array): { node: number; forwards: boolean } | null {
    return kernelFlow(this, packet);
  }

  private async applyOne(snap: TableSnapshot, endpoints: readonly NodeEndpoint[]): Promise<void> {
    const t0 = performance.now();
    const { host, layout, log } = this.o;
    let next: KernelState;
    let script = '';
    try {
      next = compileState(snap, endpoints, layout, this.state);
      const next6 = this.six ? compileState(snap, endpoints, layout, this.state6, 6) : null;
      const prevNodes = this.state?.nodes ?? new Map<number, NodeEndpoint>();
      // adopting: routes and neighbours of the nodes with rules are rewritten (replace is idempotent)
      const ip = ipChanges(prevNodes, this.rules, next, layout, this.rules6);
      await host.ipBatch(ip.before);
      await host.ipBatch(ip.before6, false, 6);
      for (const id of next.nodes.keys()) this.rules.add(id);
      if (next6 !== null) for (const id of next6.nodes.keys()) this.rules6.add(id);
      script = renderTransaction(this.state, next, layout, this.state === null ? this.existing : undefined);
      // both families' tables in one transaction: the kernel takes both or neither
      if (next6 !== null)
        script += renderTransaction(
          this.state6,
          next6,
          layout,
          this.state6 === null ? this.existing6 : undefined,
        );
      const tn = performance.now();
      await (this.nft === null ? host.nft(script) : this.nft.run(script));
      this.stats.lastNftMs = performance.now() - tn;
      this.state = next;
      this.state6 = next6;
      this.existing = undefined;
      this.existing6 = undefined;
      await host
        .ipBatch(ip.after, true)
        .catch((e: Error) => log.warn({ problem: e.message }, 'removing node routes'));
      await host
        .ipBatch(ip.after6, true, 6)
        .catch((e: Error) => log.warn({ problem: e.message }, 'removing node IPv6 routes'));
      for (const id of [...this.rules]) if (!next.nodes.has(id)) this.rules.delete(id);
      for (const id of [...this.rules6]) if (!next.nodes.has(id)) this.rules6.delete(id);
      this.indexMaps(next);
      this.indexMaps6(next6);
      this.stats.applied++;
      this.stats.appliedVersion = next.version;
      this.lastError = '';
      this.loggedError = '';
    } catch (e) {
      const err = e as Error & { stderr?: string };
      const problem = err.stderr !== undefined ? nftFailure(err.stderr) : err.message;
      this.stats.failures++;
      this.lastError = problem;
      if (problem !== this.loggedError)
        log.error(
          { problem, version: snap.version, inForce: this.stats.appliedVersion },
          'the kernel refused the fast path transaction; the previous table stays in force',
        );
      this.loggedError = problem;
      void script;
    }
    this.stats.lastApplyMs = performance.now() - t0;
  }

  private indexMaps(s: KernelState): void {
    this.mapNames = [];
    this.mapIndex = new Map();
    for (const e of s.entries.values()) {
      if (e.flowMap === undefined) continue;
      this.mapIndex.set((e.protocol << 16) | e.port, this.mapNames.length);
      this.mapNames.push(e.flowMap);
    }
  }

  private indexMaps6(s: KernelState | null): void {
    this.mapNames6 = [];
    this.mapIndex6 = new Map();
    if (s === null) return;
    for (const e of s.entries.values()) {
      if (e.flowMap === undefined) continue;
      this.mapIndex6.set((e.protocol << 16) | e.port, this.mapNames6.length);
      this.mapNames6.push(e.flowMap);
    }
  }

  /**
   * drainFlowLog writes what user space decided about flows the kernel keeps into their flow maps (one
   * netlink transaction), emptying the log. Called after each packet batch; cheap when the log is empty.
   * Before the first apply it leaves the log as it is.
   */
  drainFlowLog(log: FlowLog): void {
    // before the first apply (a restarted gateway's adopted table is being rewritten) the decisions wait
    // in the log, bounded, for the maps to be known: dropped, an idle connection placed meanwhile would
    // never reach the kernel's map (nor, with flowSync, its conntrack entry its node)
    if (log.size === 0 || this.state === null || this.flows === null) {
      this.stats.flowLogDropped = log.dropped;
      return;
    }
    const b = this.batch;
    const layout = this.o.layout;
    const gw = this.state.gatewayId;
    const b6 = this.batch6;
    const t = this.tuple6;
    const w = this.words6;
    log.drain((op, protocol, port, vip, client, clientPort, node, timeoutMs, family) => {
      if (family === 6) {
        const set = this.mapIndex6.get((protocol << 16) | port);
        if (set === undefined || this.flows6 === null) return;
        if (b6.full) this.flushBatch6();
        // the key the kernel's rules build (compile.ts): two jhashes of the tuple, then the port
        t.set(log.addr6, 0);
        t[32] = clientPort >>> 8;
        t[33] = clientPort & 0xff;
        flowKeyWords6(t, w);
        if (op === FLOW_OP.UPSERT)
          b6.upsert(set, w[0]!, w[1]!, clientPort, markOf(layout, node, gw), timeoutMs);
        else b6.remove(set, w[0]!, w[1]!, clientPort);
        return;
      }
      const set = this.mapIndex.get((protocol << 16) | port);
      if (set === undefined) return;
      if (b.full) this.flushBatch();
      if (op === FLOW_OP.UPSERT) b.upsert(set, vip, client, clientPort, markOf(layout, node, gw), timeoutMs);
      else b.remove(set, vip, client, clientPort);
    });
    this.stats.flowLogDropped = log.dropped;
    this.flushBatch();
    this.flushBatch6();
  }

  private flushBatch6(): void {
    const b = this.batch6;
    if (b.count === 0 || this.flows6 === null) {
      b.clear();
      return;
    }
    const r = this.flows6.apply(this.mapNames6, b);
    b.clear();
    this.stats.flowWrites += r.applied;
    this.stats.flowWriteFailures += r.failed;
    if (r.failed > 0 && r.error !== this.loggedFlowError) {
      this.o.log.warn(
        { failed: r.failed, problem: r.error, family: 6 },
        'flow map writes refused (logged once per reason)',
      );
      this.loggedFlowError = r.error ?? '';
    }
  }

  private flushBatch(): void {
    const b = this.batch;
    if (b.count === 0 || this.flows === null) return;
    const r = this.flows.apply(this.mapNames, b);
    b.clear();
    this.stats.flowWrites += r.applied;
    this.stats.flowWriteFailures += r.failed;
    if (r.failed > 0 && r.error !== this.loggedFlowError) {
      this.o.log.warn(
        { failed: r.failed, problem: r.error },
        'flow map writes refused (logged once per reason)',
      );
      this.loggedFlowError = r.error ?? '';
    }
  }

  /** flowEntry reads one flow of an entry from the kernel: null when the kernel has none. */
  flowEntry(
    protocol: number,
    port: number,
    vip: number,
    client: number,
    clientPort: number,
  ): FlowElement | null {
    const e = this.state?.entries.get(entryName(protocol, port));
    return this.readFlow(e?.flowMap, vip, client, clientPort);
  }

  /** halfOpenEntry reads a connection that waits for its handshake's ACK: null when the kernel has none. */
  halfOpenEntry(
    protocol: number,
    port: number,
    vip: number,
    client: number,
    clientPort: number,
  ): FlowElement | null {
    const e = this.state?.entries.get(entryName(protocol, port));
    return this.readFlow(e?.synMap, vip, client, clientPort);
  }

  /**
   * flowEntry6 and halfOpenEntry6 read an IPv6 flow (`key`: the map's 36 bytes, see NftFlows.get6) of
   * an entry from the kernel's `ip6` table: null when the kernel has none.
   */
  flowEntry6(protocol: number, port: number, key: Uint8Array): FlowElement | null {
    return this.readFlow6(this.state6?.entries.get(entryName(protocol, port))?.flowMap, key);
  }

  halfOpenEntry6(protocol: number, port: number, key: Uint8Array): FlowElement | null {
    return this.readFlow6(this.state6?.entries.get(entryName(protocol, port))?.synMap, key);
  }

  private readFlow6(map: string | undefined, key: Uint8Array): FlowElement | null {
    if (map === undefined || this.flows6 === null) return null;
    try {
      return this.flows6.get6(map, key);
    } catch {
      return null;
    }
  }

  private readFlow(
    map: string | undefined,
    vip: number,
    client: number,
    clientPort: number,
  ): FlowElement | null {
    if (map === undefined || this.flows === null) return null;
    try {
      return this.flows.get(map, vip, client, clientPort);
    } catch {
      return null;
    }
  }

  /** flowsOf lists an entry's flows in the kernel (the first `limit`; off the event loop); empty when it keeps none. */
  async flowsOf(protocol: number, port: number, limit?: number): Promise<FlowElement[]> {
    const e = this.state?.entries.get(entryName(protocol, port));
    if (e?.flowMap === undefined || this.flows === null) return [];
    return this.flows.dump(e.flowMap, limit).catch(() => []);
  }

  /**
   * flowsOf6 reads an entry's flows from the kernel's IPv6 table: their keys are hashes (compile.ts), so
   * an element's `vip` and `client` hold its two key words (flowKeyWords6), not addresses.
   */
  async flowsOf6(protocol: number, port: number, limit?: number): Promise<FlowElement[]> {
    const e = this.state6?.entries.get(entryName(protocol, port));
    if (e?.flowMap === undefined || this.flows6 === null) return [];
    return this.flows6.dump(e.flowMap, limit).catch(() => []);
  }

  /**
   * flowKeys6 names the kernel's IPv6 flow of client:port to each IPv6 cluster address as flowsOf6
   * returns it, `vip/client/port` of its key words: the only way back from a hashed key to an address.
   */
  flowKeys6(client: string, port: number): string[] {
    const t = new Uint8Array(36);
    const w = new Uint32Array(2);
    t.set(parseIpv6(client), 16);
    t[32] = port >>> 8;
    t[33] = port & 0xff;
    return (this.o.layout.vips6 ?? []).map((v) => {
      t.set(parseIpv6(v), 0);
      flowKeyWords6(t, w);
      return `${w[0]}/${w[1]}/${port}`;
    });
  }

  /** nodeOfMark turns a mark back into a node id (the gateway's own mark into its id); -1 if none. */
  nodeOfMark(mark: number): number {
    const l = this.o.layout;
    const slot = mark - l.markBase;
    if (slot < 0 || slot > LOCAL_SLOT) return -1;
    return slot === LOCAL_SLOT ? (this.state?.gatewayId ?? -1) : slot;
  }

  /**
   * countLiveFlows tells least-connections entries how many flows each node has in the kernel (their
   * flow maps hold them all), so their next user-space pick balances by what the kernel keeps.
   */
  async countLiveFlows(snap: TableSnapshot, max = LIVE_COUNT_MAX): Promise<void> {
    const s = this.state;
    if (s === null) return;
    for (const e of snap.entries.values()) {
      const path = s.entries.get(entryName(e.protocol, e.port));
      const plan = path?.plan as Extract<KernelPlan, { kind: 'connection' }> | undefined;
      if (plan?.kind !== 'connection' || plan.policy !== 'least-conn' || e.fn.setLiveFlows === undefined)
        continue;
      // Reading a map costs about n² (see NftFlows.dump): past `max` flows the entry counts its own table
      const read = await this.flowsOf(e.protocol, e.port, max + 1);
      if (read.length > max) {
        e.fn.setLiveFlows(null);
        continue;
      }
      const counts = new Int32Array(0x10000);
      for (const f of read) {
        const id = this.nodeOfMark(f.mark);
        if (id >= 0) counts[id]!++;
      }
      e.fn.setLiveFlows(counts);
    }
  }

  /** entryPath is what the kernel does with an entry (null when it has none, or nothing is applied). */
  entryPath(protocol: number, port: number): EntryPath | null {
    return this.state?.entries.get(entryName(protocol, port)) ?? null;
  }

  /** counters reads every named counter of the table (cheaply, off the event loop). Rejects when it cannot. */
  async counters(): Promise<Map<string, KernelCounter>> {
    if (this.flows === null) throw new Error('the fast path is closed');
    const c = await this.flows.counters();
    if (this.flows6 === null) return c;
    // the IPv6 table's counters have the same names: a function's or node's packets of both families
    for (const [name, v] of await this.flows6.counters()) {
      const sum = c.get(name);
      c.set(name, sum === undefined ? v : { packets: sum.packets + v.packets, bytes: sum.bytes + v.bytes });
    }
    return c;
  }

  /**
   * teardown removes the fast path from the kernel: the table (with its flows), the node rules and
   * routes, the device. Throws an AggregateError naming what could not be removed.
   */
  async teardown(): Promise<void> {
    const { host, layout: l } = this.o;
    await this.close();
    const errors: Error[] = [];
    const step = async (p: Promise<unknown>) => p.catch((e: Error) => errors.push(e));
    for (const family of ['ip', 'ip6'])
      if (await host.nftTableExists(family, l.table))
        await step(host.run('nft', ['delete', 'table', family, l.table]));
    const rules = (await host.rules()).filter((r) => r.priority === l.rulePref);
    await step(
      host.ipBatch(
        rules.map(() => `rule del priority ${l.rulePref}`),
        true,
      ),
    );
    // a host without IPv6 has no IPv6 rules or routes to list
    const rules6 = (await host.rules6().catch(() => [])).filter((r) => r.priority === l.rulePref);
    await step(
      host.ipBatch(
        rules6.map(() => `rule del priority ${l.rulePref}`),
        true,
        6,
      ),
    );
    const tables6 = new Set<number>();
    for (const r of await host.routes6('all').catch(() => [])) {
      const t = Number(r.table);
      if (t >= l.tableBase && t <= l.tableBase + LOCAL_SLOT) tables6.add(t);
    }
    await step(
      host.ipBatch(
        [...tables6].map((t) => `route flush table ${t}`),
        true,
        6,
      ),
    );
    const tables = new Set<number>();
    for (const r of await host.routes('all')) {
      const t = Number(r.table);
      if (t >= l.tableBase && t <= l.tableBase + LOCAL_SLOT) tables.add(t);
    }
    await step(
      host.ipBatch(
        [...tables].map((t) => `route flush table ${t}`),
        true,
      ),
    );
    if (await host.linkExists(l.device)) await step(host.ip('link', 'del', l.device));
    this.state = null;
    this.state6 = null;
    this.rules.clear();
    this.rules6.clear();
    if (errors.length > 0)
      throw new AggregateError(errors, `fast path teardown: ${errors.map((e) => e.message).join('; ')}`);
  }

  /** close lets go of the netlink sockets and leaves the kernel state as it is (a restart adopts it). */
  async close(): Promise<void> {
    this.flows?.close();
    this.flows = null;
    this.flows6?.close();
    this.flows6 = null;
    await Promise.all([this.nft?.close(), this.nftJson?.close()]);
    this.nft = null;
    this.nftJson = null;
  }
}

async function readExisting(host: Host, family: string, table: string): Promise<ExistingObjects> {
  const out: ExistingObjects = {
    chains: new Set(),
    sets: new Map(),
    counters: new Set(),
    ctTimeouts: new Set(),
  };
  for (const o of await host.nftJson('-t', 'list', 'table', family, table)) {
    const chain = (o as { chain?: { name: string } }).chain;
    if (chain) out.chains.add(chain.name);
    const set = (o as { set?: { name: string; size?: number } }).set;
    if (set) out.sets.set(set.name, { map: false, size: set.size ?? 0 });
    const map = (o as { map?: { name: string; size?: number } }).map;
    if (map) out.sets.set(map.name, { map: true, size: map.size ?? 0 });
    const counter = (o as { counter?: { name: string } }).counter;
    if (counter) out.counters.add(counter.name);
    const timeout = (o as { 'ct timeout'?: { name: string } })['ct timeout'];
    if (timeout) out.ctTimeouts!.add(timeout.name);
  }
  return out;
}
