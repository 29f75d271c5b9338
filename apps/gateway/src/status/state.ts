import {
  buildFlowPacket,
  type ConnectionInfo,
  type ExplainResult,
  type ExportsRecord,
  type HealthRecord,
  type MemberRecord,
  type SwitchEntryInfo,
  tcpFlagBits,
} from '@onehost/control';
import { tryParseIpv4 } from '@onehost/wire';
import type { EventLog, StatusEvent } from './events.js';
import type { RateHistory, RatePoint } from './history.js';

/** What the status page reads; the gateway wires it to its control plane, switch and counters. */
export interface StatusSources {
  name: string;
  datapath: 'kernel' | 'tun';
  clusterAddresses: string[];
  members(): MemberRecord[];
  healthOf(node: string): HealthRecord[];
  /** the nodes an entry leaves out for their health, in words */
  skippedFor(key: string): string[];
  exports(): ExportsRecord[];
  entries(): { entries: SwitchEntryInfo[]; version: number };
  connections(limit: number): Promise<{ connections: ConnectionInfo[]; total: number; more?: boolean }>;
  explain(packet: Uint8Array): ExplainResult | Promise<ExplainResult>;
  rates: RateHistory;
  events: EventLog;
}

export interface StatusState {
  gateway: { name: string; datapath: string; clusterAddresses: string[]; version: number; now: number };
  members: {
    name: string;
    id: number;
    state: string;
    downReason: string;
    address: string;
    block: string;
    lastSeenUnixMs: number;
    rate: { pps: number; bps: number };
    series: RatePoint[];
    health: HealthRecord[];
  }[];
  entries: {
    key: string;
    function: string;
    options: string;
    /** connections by node name */
    nodes: Record<string, number>;
    total: number;
    skipped: string[];
  }[];
  /** connections counted (at most CONNECTION_LIMIT; `more` when there were more) */
  connections: { counted: number; more: boolean };
  exports: { node: string; path: string; exportId: number; mountd: string }[];
  events: StatusEvent[];
}

/** The page counts at most this many connections per refresh (kernel maps are read as far as that). */
export const CONNECTION_LIMIT = 20_000;
const EVENTS_SHOWN = 50;

/** buildState gathers one refresh of the page. */
export async function buildState(s: StatusSources, now = Date.now()): Promise<StatusState> {
  const { entries, version } = s.entries();
  const conns = await s.connections(CONNECTION_LIMIT);
  const byEntry = new Map<string, Record<string, number>>();
  for (const c of conns.connections) {
    const key = `${c.protocol}/${c.port}`;
    const m = byEntry.get(key) ?? {};
    m[c.nodeName] = (m[c.nodeName] ?? 0) + 1;
    byEntry.set(key, m);
  }
  return {
    gateway: { name: s.name, datapath: s.datapath, clusterAddresses: s.clusterAddresses, version, now },
    members: s.members().map((m) => {
      const series = s.rates.series(m.id);
      const last = series[series.length - 1];
      return {
        name: m.name,
        id: m.id,
        state: m.state,
        downReason: m.downReason,
        address: m.internalAddress,
        block: `${m.block.lo}-${m.block.hi}`,
        lastSeenUnixMs: m.lastSeenUnixMs,
        rate: { pps: last?.pps ?? 0, bps: last?.bps ?? 0 },
        series,
        health: s.healthOf(m.name),
      };
    }),
    entries: entries.map((e) => {
      const key = `${e.protocol}/${e.port}`;
      const nodes = byEntry.get(key) ?? {};
      return {
        key,
        function: e.function,
        options: Object.entries(e.options)
          .map(
            ([k, v]) =>
              `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`,
          )
          .join(' '),
        nodes,
        total: Object.values(nodes).reduce((a, b) => a + b, 0),
        skipped: s.skippedFor(key),
      };
    }),
    connections: {
      counted: conns.connections.length,
      more: conns.more === true || conns.total > conns.connections.length,
    },
    exports: s.exports().flatMap((x) =>
      x.exports.map((e) => ({
        node: x.nodeName,
        path: e.path,
        exportId: e.exportId,
        mountd: Object.entries(x.mountPorts)
          .map(([t, p]) => `${t} ${p}`)
          .join(', '),
      })),
    ),
    events: s.events.recent().slice(0, EVENTS_SHOWN),
  };
}

/** ExplainQuery is the explain form: a flow, as query parameters. */
export type ExplainAnswer = { ok: true; result: ExplainResult } | { ok: false; error: string };

/**
 * explainQuery validates the explain form's fields (protocol, src, sport, dst, dport, flags) and asks the
 * switch, dry run. A bad field is answered with its name; never throws.
 */
export async function explainQuery(s: StatusSources, q: URLSearchParams): Promise<ExplainAnswer> {
  const protocol = q.get('protocol') ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') return { ok: false, error: 'protocol: must be tcp or udp' };
  const addr = (k: string): string | null => {
    const v = q.get(k) ?? '';
    return tryParseIpv4(v) < 0 ? null : v;
  };
  const port = (k: string): number | null => {
    const v = Number(q.get(k) ?? '');
    return Number.isInteger(v) && v >= 0 && v <= 65535 && q.get(k) !== '' ? v : null;
  };
  const src = addr('src');
  const dst = addr('dst');
  const sport = port('sport');
  const dport = port('dport');
  const flags = (q.get('flags') ?? 'S').toUpperCase();
  const bad =
    src === null
      ? 'src: must be an IPv4 address'
      : dst === null
        ? 'dst: must be an IPv4 address'
        : sport === null
          ? 'sport: must be a port 0-65535'
          : dport === null
            ? 'dport: must be a port 0-65535'
            : protocol === 'tcp' && tcpFlagBits(flags) < 0
              ? 'flags: letters from FSRPAU, each once'
              : null;
  if (bad !== null) return { ok: false, error: bad };
  const packet = buildFlowPacket({
    protocol,
    srcAddress: src!,
    srcPort: sport!,
    dstAddress: dst!,
    dstPort: dport!,
    tcpFlags: protocol === 'tcp' ? flags : '',
    payload: new Uint8Array(0),
  });
  try {
    return { ok: true, result: await s.explain(packet) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}
