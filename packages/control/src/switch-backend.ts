/**
 * The Switch service's view of the gateway's message switch. The gateway implements SwitchBackend over
 * its MessageSwitch and configuration; the control plane validates requests, checks the caller, and
 * turns results into protobuf. Methods may return values or promises, and throw ControlError (e.g.
 * INVALID_ARGUMENT "entry.options.nodes[0]: no node named n9", NOT_FOUND) to refuse.
 */

export type Protocol = 'tcp' | 'udp';

/** SwitchEntryInfo is one switch table entry as configured: (protocol, port) → function(options). */
export interface SwitchEntryInfo {
  protocol: Protocol;
  port: number;
  function: string;
  /** the function's options as in the YAML configuration (JSON values). */
  options: Record<string, unknown>;
}

/** ExplainedDecision is a decision in readable form (the switch's `Decision`). */
export type ExplainedDecision =
  | { kind: 'forward'; node: number; nodeName: string; port?: number }
  | { kind: 'local'; port?: number }
  | { kind: 'drop'; reason: string };

/** ExplainedPacket is the packet as the switch read it (the switch's `PacketDescription`). */
export interface ExplainedPacket {
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

/** ExplainResult is what explain returns (the switch's `Explanation`). */
export interface ExplainResult {
  decision: ExplainedDecision;
  trace: string[];
  packet?: ExplainedPacket;
  /** who decides such packets, live: "kernel: …" or "user space: …" (absent without a kernel data path) */
  path?: string;
}

/** ConnectionFilter selects connection-table rows; absent fields match all. */
export interface ConnectionFilter {
  protocol?: Protocol;
  port?: number;
  nodeName?: string;
  /** at most this many rows. */
  limit: number;
}

/** ConnectionInfo is one row of a connection table (Cluster Connection Table, Fig. 10). */
export interface ConnectionInfo {
  protocol: Protocol;
  /** the entry's port. */
  port: number;
  srcAddress: string;
  srcPort: number;
  nodeId: number;
  nodeName: string;
  state: string;
  /** until the entry expires unless more packets of the flow come. */
  expiresInMs: number;
  /** where the flow lives: a kernel flow map, or the switch's table (default user) */
  path?: 'kernel' | 'user';
  /** packets the kernel counted for it (kernel flows) */
  packets?: number;
  /** a spliced connection's offsets, once its node's agent told them (docs/splice.md) */
  splice?: SpliceOffsets;
}

/** SpliceOffsets: how a spliced connection's client segments are shifted into the node's view. */
export interface SpliceOffsets {
  /** added to acknowledgement numbers and SACK edges */
  seqOffset: number;
  /** subtracted from timestamp echo replies */
  tsOffset: number;
  /** the destination port on the node */
  nodePort: number;
}

/** GatewayStatus is what the Gateway service's Status reports (see gateway.proto). */
export interface GatewayStatus {
  name: string;
  datapath: 'kernel' | 'tun';
  appliedVersion: number;
  switchVersion: number;
  lastError: string;
  functions: { function: string; kernel: number; user: number }[];
  userClasses: { class: string; packets: number; guardDrops: number }[];
  flowWrites: number;
  flowWriteFailures: number;
  lastApplyMs: number;
}

/** GatewayBackend is the gateway process behind the Gateway service. */
export interface GatewayBackend {
  status(): Promise<GatewayStatus>;
  /** stop ends the process after the answer went out; `keepDatapath` leaves its kernel state in place. */
  stop(keepDatapath: boolean): void;
  /**
   * reload validates `configYaml` as the gateway's configuration file and (unless dryRun) swaps in its
   * switch part; throws ControlError INVALID_ARGUMENT naming the field of a refused file.
   */
  reload(configYaml: string, dryRun: boolean): Promise<GatewayReload>;
}

/** GatewayReload is what Gateway/Reload reports. */
export interface GatewayReload {
  changes: string[];
  version: number;
  applied: boolean;
}

type MaybePromise<T> = T | Promise<T>;

export interface SwitchBackend {
  /** listEntries returns the table's entries and the snapshot version. */
  listEntries(): MaybePromise<{ entries: SwitchEntryInfo[]; version: number }>;
  /** setEntry adds or replaces the entry for (protocol, port), swaps in a new snapshot, returns its version. */
  setEntry(entry: SwitchEntryInfo): MaybePromise<number>;
  /** deleteEntry removes the entry, returns the new version; throws ControlError NOT_FOUND when absent. */
  deleteEntry(protocol: Protocol, port: number): MaybePromise<number>;
  /** explain decides one IPv4 packet; with updateTables false it must not change any table. */
  explain(packet: Uint8Array, opts: { updateTables: boolean }): MaybePromise<ExplainResult>;
  /**
   * listConnections returns up to `filter.limit` matching rows and how many matched in all; `more` when
   * there were more than it counted (the kernel's flow maps are read only as far as the limit).
   */
  listConnections(
    filter: ConnectionFilter,
  ): MaybePromise<{ connections: ConnectionInfo[]; total: number; more?: boolean }>;
}
