import {
  type ConnectionFilter,
  type ConnectionInfo,
  ControlError,
  type ExplainResult,
  type ExportsRecord,
  type MemberRecord,
  type Protocol,
  type SwitchBackend,
  type SwitchEntryInfo,
} from '@onehost/control';
import { formatIssue, type MessageSwitch, validateConfig } from '@onehost/switch';
import { buildSwitchDoc } from './cluster-doc.js';
import type { GatewayConfig } from './config.js';

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
  /** listeners told after each swap (the data path refreshes its node destinations) */
  private readonly swapped: Array<() => void> = [];

  constructor(
    readonly sw: MessageSwitch,
    private readonly cfg: GatewayConfig,
  ) {
    this.entries = cfg.switch.entries.map((e) => ({ ...(e as Record<string, unknown>) }));
  }

  onSwap(fn: () => void): void {
    this.swapped.push(fn);
  }

  /** setMembership rebuilds for new members/exports; throws ControlError when the switch refuses. */
  setMembership(members: readonly MemberRecord[], exports: readonly ExportsRecord[]): number {
    const v = this.rebuild(this.entries, members, exports);
    this.members = members;
    this.exports = exports;
    return v;
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

  explain(packet: Uint8Array, opts: { updateTables: boolean }): ExplainResult {
    return this.sw.explain(packet, { dryRun: !opts.updateTables });
  }

  listConnections(filter: ConnectionFilter): { connections: ConnectionInfo[]; total: number } {
    const f: { protocol?: Protocol; port?: number; nodeName?: string; limit: number } = {
      limit: filter.limit,
    };
    if (filter.protocol !== undefined) f.protocol = filter.protocol;
    if (filter.port !== undefined) f.port = filter.port;
    if (filter.nodeName !== undefined) f.nodeName = filter.nodeName;
    const { flows, total } = this.sw.listFlows(f);
    return {
      total,
      connections: flows.map((r) => ({
        protocol: r.protocol,
        port: r.port,
        srcAddress: r.clientAddress,
        srcPort: r.clientPort,
        nodeId: r.node,
        nodeName: r.nodeName ?? '',
        state: String(r.state),
        expiresInMs: r.expiresInMs,
      })),
    };
  }

  private rebuild(
    entries: readonly Record<string, unknown>[],
    members: readonly MemberRecord[],
    exports: readonly ExportsRecord[],
  ): number {
    const doc = buildSwitchDoc(this.cfg, entries, members, exports);
    const r = validateConfig(doc, this.sw.registry);
    if (!r.ok) throw new ControlError('INVALID_ARGUMENT', r.issues.map((i) => formatIssue(i)).join('; '));
    const snap = this.sw.build(r.config);
    this.sw.swap(snap);
    for (const fn of this.swapped) fn();
    return snap.version;
  }
}
