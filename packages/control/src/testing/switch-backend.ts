// Exported as `@onehost/control/testing` (built, unlike the rest of src/testing) for other packages'
// tests; it needs `@onehost/switch`, which this package has only as a dev dependency.
import { formatIssue, MessageSwitch, validateConfig } from '@onehost/switch';
import { ControlError } from '../control-error.js';
import type {
  ConnectionFilter,
  ConnectionInfo,
  ExplainResult,
  Protocol,
  SwitchBackend,
  SwitchEntryInfo,
} from '../switch-backend.js';

type Doc = Record<string, unknown> & { entries: Record<string, unknown>[] };

const PROTO: Record<Protocol, number> = { tcp: 6, udp: 17 };
const STATES = ['', 'syn', 'established', 'fin', 'rst'];

/**
 * SwitchDocBackend is a SwitchBackend over the real MessageSwitch and a configuration document (the
 * YAML shape as an object): what the gateway does, minus membership. Changes are validated by the
 * switch and refused with its field-precise issues.
 */
export class SwitchDocBackend implements SwitchBackend {
  readonly sw: MessageSwitch;
  private doc: Doc;

  /** constructor loads `doc`; throws Error listing the issues when the switch refuses it. */
  constructor(doc: Doc, clock: () => number = Date.now) {
    this.sw = new MessageSwitch({ clock });
    this.doc = doc;
    this.apply(doc);
  }

  listEntries() {
    return {
      entries: this.doc.entries.map((e) => {
        const { protocol, port, function: fn, ...options } = e;
        return { protocol: protocol as Protocol, port: port as number, function: fn as string, options };
      }),
      version: this.sw.snapshot!.version,
    };
  }

  setEntry(e: SwitchEntryInfo): number {
    const entries = this.doc.entries.filter((x) => !(x.protocol === e.protocol && x.port === e.port));
    entries.push({ protocol: e.protocol, port: e.port, function: e.function, ...e.options });
    return this.apply({ ...this.doc, entries });
  }

  deleteEntry(protocol: Protocol, port: number): number {
    const entries = this.doc.entries.filter((x) => !(x.protocol === protocol && x.port === port));
    if (entries.length === this.doc.entries.length)
      throw new ControlError('NOT_FOUND', `no entry for ${protocol}/${port}`);
    return this.apply({ ...this.doc, entries });
  }

  explain(packet: Uint8Array, opts: { updateTables: boolean }): ExplainResult {
    return this.sw.explain(packet, { dryRun: !opts.updateTables });
  }

  listConnections(filter: ConnectionFilter) {
    const snap = this.sw.snapshot!;
    const rows: ConnectionInfo[] = [];
    const now = Date.now();
    for (const entry of snap.entries.values()) {
      const protocol: Protocol = entry.protocol === PROTO.tcp ? 'tcp' : 'udp';
      if (filter.protocol !== undefined && filter.protocol !== protocol) continue;
      if (filter.port !== undefined && filter.port !== entry.port) continue;
      const table = (entry.fn as { table?: unknown }).table as
        | {
            slots: {
              slotCount: number;
              isUsed(s: number): boolean;
              key(s: number, w: 0 | 1 | 2): number;
              expires(s: number): number;
            };
            node(s: number): number;
            state(s: number): number;
          }
        | undefined;
      if (table === undefined) continue;
      for (let s = 0; s < table.slots.slotCount; s++) {
        if (!table.slots.isUsed(s)) continue;
        const nodeName = snap.nodes.nameOf(table.node(s)) ?? '';
        if (filter.nodeName !== undefined && filter.nodeName !== nodeName) continue;
        const a = table.slots.key(s, 0) >>> 0;
        rows.push({
          protocol,
          port: entry.port,
          srcAddress: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`,
          srcPort: table.slots.key(s, 1) >>> 16,
          nodeId: table.node(s),
          nodeName,
          state: STATES[table.state(s)] ?? String(table.state(s)),
          expiresInMs: Math.max(0, table.slots.expires(s) - now),
        });
      }
    }
    return { connections: rows.slice(0, filter.limit), total: rows.length };
  }

  private apply(doc: Doc): number {
    const r = validateConfig(doc, this.sw.registry);
    if (!r.ok) throw new ControlError('INVALID_ARGUMENT', r.issues.map((i) => formatIssue(i)).join('; '));
    this.sw.load(r.config);
    this.doc = doc;
    return this.sw.snapshot!.version;
  }
}
