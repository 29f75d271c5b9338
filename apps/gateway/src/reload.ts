import { ConfigError, type GatewayConfig } from './config.js';

/**
 * A reload swaps the switch's entries and fragment settings; every other key is wired into the host,
 * the kernel layout, the control listener or the TUN when the gateway starts, and takes a restart.
 */
export const RELOADABLE = ['entries', 'fragments'] as const;

type Entry = Record<string, unknown>;

/** ReloadResult is what a reload (or its dry run) did: the changes, in `+`/`-`/`~` lines. */
export interface ReloadResult {
  changes: string[];
  /** the switch table version in force afterwards */
  version: number;
  applied: boolean;
}

/**
 * checkRestartOnly throws ConfigError naming the first field of `next` that differs from the running
 * configuration outside the reloadable keys (those need a restart); `file` prefixes the message.
 */
export function checkRestartOnly(running: GatewayConfig, next: GatewayConfig, file: string): void {
  const { switch: rs, ...rest } = running;
  const { switch: ns, ...nextRest } = next;
  const diff =
    firstDifference(rest, nextRest, []) ??
    firstDifference(rs.clusterAddresses, ns.clusterAddresses, ['clusterAddresses']) ??
    firstDifference(rs.management, ns.management, ['management']);
  if (diff !== null)
    throw new ConfigError([
      `${file}: ${asWritten(diff)}: changes only with a restart (a reload swaps ${RELOADABLE.join(' and ')})`,
    ]);
}

/** asWritten names a field of GatewayConfig as the file spells it (a few are parsed into other shapes). */
function asWritten(path: string): string {
  const [a, b] = path.split('.');
  if (a === 'control' && b === 'listen') return 'control.listen';
  if (a === 'metrics') return 'metrics';
  if (a === 'control' && b === 'heartbeatIntervalMs') return 'control.heartbeat.intervalMs';
  if (a === 'control' && b === 'heartbeatTimeoutMs') return 'control.heartbeat.timeoutMs';
  return path;
}

/**
 * diffSwitch lists what a reload changes: entries added (`+`), removed (`-`) and changed (`~`) by
 * protocol/port, in port order, and the fragment settings. `current` are the entries in force (with
 * any an operator set over gRPC since: the file replaces them).
 */
export function diffSwitch(
  current: { entries: readonly Entry[]; fragments?: unknown },
  next: GatewayConfig['switch'],
): string[] {
  const key = (e: Entry): string => `${String(e.protocol)}/${String(e.port)}`;
  const before = new Map(current.entries.map((e) => [key(e), e]));
  const after = new Map((next.entries as Entry[]).map((e) => [key(e), e]));
  const keys = [...new Set([...before.keys(), ...after.keys()])].sort(byProtocolPort);
  const out: string[] = [];
  for (const k of keys) {
    const a = before.get(k);
    const b = after.get(k);
    if (a === undefined && b !== undefined) out.push(`+ ${k} ${describe(b)}`);
    else if (a !== undefined && b === undefined) out.push(`- ${k} ${describe(a)}`);
    else if (a !== undefined && b !== undefined && describe(a) !== describe(b))
      out.push(`~ ${k} ${describe(a)} → ${describe(b)}`);
  }
  if (firstDifference(current.fragments, next.fragments, []) !== null)
    out.push(
      `~ fragments ${JSON.stringify(current.fragments ?? {})} → ${JSON.stringify(next.fragments ?? {})}`,
    );
  return out;
}

/** describe renders an entry without its key: `connection policy=round-robin nodes=[n1,n2]`. */
function describe(e: Entry): string {
  const { protocol: _p, port: _q, function: fn, ...options } = e;
  const parts = Object.keys(options)
    .sort()
    .map((k) => {
      const v = options[k];
      return `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : typeof v === 'object' ? JSON.stringify(v) : String(v)}`;
    });
  return [String(fn), ...parts].join(' ');
}

function byProtocolPort(a: string, b: string): number {
  const [pa, na] = a.split('/');
  const [pb, nb] = b.split('/');
  return pa === pb ? Number(na) - Number(nb) : (pa ?? '') < (pb ?? '') ? -1 : 1;
}

/** firstDifference names the first path where two plain values differ ("control.listen.port"), or null. */
export function firstDifference(a: unknown, b: unknown, path: string[]): string | null {
  const name = (): string => (path.length === 0 ? '(whole)' : path.join('.'));
  if (a === b) return null;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return name();
  if (Array.isArray(a) !== Array.isArray(b)) return name();
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) return name();
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const k of keys) {
    const d = firstDifference((a as Entry)[k], (b as Entry)[k], [...path, k]);
    if (d !== null) return d;
  }
  return null;
}
