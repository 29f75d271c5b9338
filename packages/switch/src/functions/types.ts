import type { Fields } from '../config/fields.js';
import type { ProtocolName } from '../config/types.js';
import type { SwitchCounters } from '../counters.js';
import type { DecisionOut } from '../decision.js';
import type { FlowLog, KernelPlan } from '../kernel-plan.js';
import type { NodeDirectory } from '../node-directory.js';
import type { PacketContext } from '../packet-context.js';
import type { ExportTable } from '../tables/export-table.js';
import type { FlowTable } from '../tables/flow-table.js';
import type { PortBlocks } from '../tables/port-blocks.js';

/**
 * RoutingFunction is the per-entry instance a factory returns: `route` is the closure run per packet
 * (box 565; box 560 for the null function), `routeQuoted` routes an ICMP error by the flow it quotes.
 * Both write into `out` and never throw.
 */
export interface RoutingFunction {
  readonly kind: string;
  /** true for the patent's null function (fixed node): box 560 instead of 565. */
  readonly nullFunction: boolean;
  /** ipv6: the function routes IPv6 packets too; absent or false, the switch drops them (`ipv6_unsupported`). */
  readonly ipv6?: boolean;
  route(ctx: PacketContext, out: DecisionOut): void;
  /**
   * routeQuoted decides for an ICMP error whose quoted packet left the cluster from this entry's port:
   * ctx.p.innerSrc/innerSrcPort are the cluster side, innerDst/innerDstPort the outside peer.
   */
  routeQuoted(ctx: PacketContext, out: DecisionOut): void;
  /** flowTable is the table of flows this function keeps, if any (listings). */
  readonly flowTable?: FlowTable | null;
  /** flowTable6 is its table of IPv6 flows, if any. */
  readonly flowTable6?: FlowTable | null;
  /** sweep releases expired state; called now and then by the switch (never per packet). */
  sweep?(now: number, budget: number): void;
  /** bind remembers a TCP flow handed over to `node` (delayed binding; mount and nfs over TCP). */
  bind?(client: number, clientPort: number, dstPort: number, vip: number, node: number, now: number): boolean;
  /** bind6 is `bind` for an IPv6 client (its address as four big-endian int32 words). */
  bind6?(
    client: Int32Array,
    clientPort: number,
    dstPort: number,
    vip: number,
    node: number,
    now: number,
  ): boolean;
  /** describe summarises the instance for explain and listings. */
  describe(): Record<string, unknown>;
  /**
   * kernel tells how the kernel fast path runs this function with this snapshot's nodes; absent, its
   * packets stay in user space.
   */
  kernel?(): KernelPlan;
  /**
   * setLiveFlows tells a function that balances by live flows (least-connections) how many each node has
   * where its own table does not see them all (the kernel keeps the flows): per node id, or null to count
   * its own table again.
   */
  setLiveFlows?(perNode: Int32Array | null): void;
}

/** What validation can check across the config (names that exist). */
export interface ValidationContext {
  readonly nodeNames: ReadonlySet<string>;
  readonly protocol: ProtocolName;
  readonly port: number;
}

/** What a factory gets besides its config. */
export interface RoutingDeps {
  readonly nodes: NodeDirectory;
  readonly exports: ExportTable;
  readonly portBlocks: PortBlocks;
  readonly counters: SwitchCounters;
  readonly protocol: ProtocolName;
  readonly port: number;
  /**
   * state returns the value kept under `key` for this entry across snapshot swaps, making it with
   * `make` the first time (connection tables, round-robin cursors). Keys not used by the newest
   * snapshot are dropped when it is swapped in.
   */
  state<T>(key: string, make: () => T): T;
  /** memo shares an expensive value (a Maglev table) between entries of one snapshot build. */
  memo<T>(key: string, make: () => T): T;
  /** flowLog takes the flow decisions the kernel must learn (kernel fast path; disabled otherwise). */
  readonly flowLog: FlowLog;
  /** ipv6: the table has an IPv6 cluster address (functions keep IPv6 flow tables only then). */
  readonly ipv6: boolean;
}

/**
 * RoutingFunctionSpec is a registered kind: `validate` reads the entry's own fields (issues recorded on
 * the Fields, never thrown) and returns the typed config, `create` builds the instance.
 */
export interface RoutingFunctionSpec<C = unknown> {
  readonly kind: string;
  /** protocols the kind can serve; validation refuses others. */
  readonly protocols: readonly ProtocolName[];
  readonly summary: string;
  validate(fields: Fields, ctx: ValidationContext): C;
  /** create throws only on a config that `validate` would refuse (a programming error). */
  create(config: C, deps: RoutingDeps): RoutingFunction;
}
