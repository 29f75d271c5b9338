import { IPPROTO } from '@onehost/wire';
import type { ClusterAddressConfig, SwitchConfig } from './config/types.js';
import type { SwitchCounters } from './counters.js';
import type { FunctionRegistry } from './functions/registry.js';
import type { RoutingDeps, RoutingFunction } from './functions/types.js';
import type { FlowLog } from './kernel-plan.js';
import { NodeDirectory } from './node-directory.js';
import type { StateStore } from './state-store.js';
import { ExportTable } from './tables/export-table.js';
import { PortBlocks } from './tables/port-blocks.js';

/** entryKey packs (protocol, port) into one number: protocol << 16 | port. */
export function entryKey(protocol: number, port: number): number {
  return ((protocol & 0xff) << 16) | (port & 0xffff);
}

/** One switch table row (Fig. 4: port 412, protocol 414, function 418). */
export interface TableEntry {
  readonly key: number;
  readonly protocol: number;
  readonly port: number;
  readonly kind: string;
  /** the kind's position in the registry (per-function counters) */
  readonly kindIndex: number;
  readonly fn: RoutingFunction;
}

const EMPTY_ROWS: (TableEntry | null)[] = [];

/**
 * TableSnapshot is one immutable version of the switch table: cluster addresses, nodes, entries, port
 * blocks, exports, management sources. The control plane builds a new one and swaps it in with one
 * assignment; the packet loop reads whichever it holds.
 */
export class TableSnapshot {
  readonly version: number;
  readonly config: SwitchConfig;
  readonly nodes: NodeDirectory;
  readonly clusterAddresses: readonly ClusterAddressConfig[];
  /** entries keyed by entryKey(protocol, port). */
  readonly entries: ReadonlyMap<number, TableEntry>;
  readonly portBlocks: PortBlocks;
  readonly exports: ExportTable;
  readonly fragmentTimeoutMs: number;
  readonly fragmentCapacity: number;
  /** state keys the functions asked for (the switch keeps only these on swap). */
  readonly stateKeys: ReadonlySet<string>;
  /** the table has an IPv6 cluster address */
  readonly ipv6: boolean;
  /** IPv4 cluster addresses as int32 (compared with `address | 0`, never boxed), and their index in `clusterAddresses`. */
  private readonly vips: Int32Array;
  private readonly vip4Index: Int32Array;
  /** IPv6 cluster addresses: four int32 words each, and their index in `clusterAddresses`. */
  private readonly vips6: Int32Array;
  private readonly vip6Index: Int32Array;
  private readonly mgmt: Uint32Array;
  /** dense per-port rows for the packet loop (one indexed load instead of a hash lookup). */
  private readonly tcpRows: (TableEntry | null)[];
  private readonly udpRows: (TableEntry | null)[];

  /**
   * constructor builds every routing function instance. Throws Error only on a config that
   * validateConfig would refuse (unknown kinds or names, overlapping blocks).
   */
  constructor(
    config: SwitchConfig,
    registry: FunctionRegistry,
    counters: SwitchCounters,
    store: StateStore,
    version: number,
    flowLog: FlowLog,
  ) {
    this.version = version;
    this.config = config;
    this.nodes = new NodeDirectory(config.nodes, config.gateway);
    const nodes = this.nodes;
    this.clusterAddresses = Object.freeze(config.clusterAddresses.map((c) => Object.freeze({ ...c })));
    const indexed = config.clusterAddresses.map((c, i) => ({ c, i }));
    const v4 = indexed.filter(({ c }) => c.address6 === undefined);
    const v6 = indexed.filter(({ c }) => c.address6 !== undefined);
    this.vips = Int32Array.from(v4.map(({ c }) => c.address | 0));
    this.vip4Index = Int32Array.from(v4.map(({ i }) => i));
    this.ipv6 = v6.length > 0;
    this.vips6 = new Int32Array(v6.length * 4);
    this.vip6Index = Int32Array.from(v6.map(({ i }) => i));
    v6.forEach(({ c }, j) => {
      const a = c.address6!;
      for (let w = 0; w < 4; w++)
        this.vips6[4 * j + w] =
          (a[4 * w]! << 24) | (a[4 * w + 1]! << 16) | (a[4 * w + 2]! << 8) | a[4 * w + 3]!;
    });
    this.mgmt = new Uint32Array(config.management.length * 2);
    config.management.forEach((m, i) => {
      this.mgmt[2 * i] = m.network;
      this.mgmt[2 * i + 1] = m.mask;
    });
    const idOf = (name: string): number => {
      const n = nodes.named(name);
      if (n === undefined) throw new Error(`unknown node ${name}`);
      return n.id;
    };
    this.portBlocks = new PortBlocks(
      config.portBlocks.map((b) => ({ node: idOf(b.node), from: b.from, to: b.to })),
    );
    this.exports = new ExportTable(
      config.exports.map((e) => ({ path: e.path, node: idOf(e.node), exportId: e.exportId })),
      (id) => nodes.get(id)?.nfsHandle,
    );
    this.fragmentTimeoutMs = Math.round(config.fragments.timeout * 1000);
    this.fragmentCapacity = config.fragments.maxEntries;

    const used = new Set<string>();
    const memo = new Map<string, unknown>();
    const entries = new Map<number, TableEntry>();
    this.tcpRows = EMPTY_ROWS;
    this.udpRows = EMPTY_ROWS;
    for (const e of config.entries) {
      const spec = registry.get(e.function);
      if (spec === undefined) throw new Error(`unknown routing function ${e.function}`);
      const protocol = e.protocol === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP;
      const prefix = `${e.protocol}/${e.port}:${e.function}:`;
      const deps: RoutingDeps = {
        nodes,
        exports: this.exports,
        portBlocks: this.portBlocks,
        counters,
        protocol: e.protocol,
        port: e.port,
        flowLog,
        ipv6: this.ipv6,
        state: (key, make) => store.get(prefix + key, make, used),
        memo: <T>(key: string, make: () => T): T => {
          if (!memo.has(key)) memo.set(key, make());
          return memo.get(key) as T;
        },
      };
      const key = entryKey(protocol, e.port);
      entries.set(
        key,
        Object.freeze({
          key,
          protocol,
          port: e.port,
          kind: e.function,
          kindIndex: registry.indexOf(e.function),
          fn: spec.create(e.options, deps),
        }),
      );
    }
    this.entries = entries;
    if (entries.size > 0) {
      this.tcpRows = new Array<TableEntry | null>(0x10000).fill(null);
      this.udpRows = new Array<TableEntry | null>(0x10000).fill(null);
      for (const e of entries.values())
        (e.protocol === IPPROTO.TCP ? this.tcpRows : this.udpRows)[e.port] = e;
    }
    this.stateKeys = used;
  }

  /** vipIndex returns the index of an IPv4 cluster address, or -1 (box 515). */
  vipIndex(address: number): number {
    const v = this.vips;
    const a = address | 0;
    for (let i = 0; i < v.length; i++) if (v[i] === a) return this.vip4Index[i]!;
    return -1;
  }

  /** vipIndex6 returns the index of the IPv6 cluster address in words w[at..at+4), or -1 (box 515). */
  vipIndex6(w: Int32Array, at: number): number {
    const v = this.vips6;
    for (let i = 0; i < v.length; i += 4) {
      if (v[i] === w[at] && v[i + 1] === w[at + 1] && v[i + 2] === w[at + 2] && v[i + 3] === w[at + 3])
        return this.vip6Index[i >>> 2]!;
    }
    return -1;
  }

  /** isManagementSource: the source may reach nodes' internal addresses. */
  isManagementSource(address: number): boolean {
    const m = this.mgmt;
    for (let i = 0; i < m.length; i += 2) if ((address & m[i + 1]!) >>> 0 === m[i]) return true;
    return false;
  }

  /** lookup returns the entry for (protocol, port), or null (boxes 535/540). */
  lookup(protocol: number, port: number): TableEntry | null {
    if (protocol === IPPROTO.TCP) return this.tcpRows[port] ?? null;
    if (protocol === IPPROTO.UDP) return this.udpRows[port] ?? null;
    return null;
  }
}
