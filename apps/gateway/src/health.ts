import type { HealthRecord } from '@onehost/control';

/** Unhealthy is, per node name, the entries ("tcp/80") a failing check covers, with that check. */
export type Unhealthy = ReadonlyMap<string, ReadonlyMap<string, HealthRecord>>;

/** Skipped says which nodes an entry left out for their health, in words, for explain. */
export type Skipped = Map<string, string[]>;

type Entry = Record<string, unknown>;

/**
 * withoutUnhealthy takes each node whose health check covering an entry fails out of that entry's
 * candidates, leaving the rest of the node alone: `nodes` lists lose it (an absent list means every
 * node: it becomes the list of the others), a fixed entry's node gives way to a healthy backup, and a
 * backup that fails is dropped. When no candidate would be left the entry keeps them all (a failing
 * check must not take a service down that the heartbeat says is there; counted in `failOpen`).
 * Established flows are untouched: only new flows follow the candidates. Returns new entry objects.
 */
export function withoutUnhealthy(
  entries: readonly Entry[],
  allNodes: readonly string[],
  unhealthy: Unhealthy,
): { entries: Entry[]; skipped: Skipped; failOpen: string[] } {
  const skipped: Skipped = new Map();
  const failOpen: string[] = [];
  if (unhealthy.size === 0) return { entries: entries.map((e) => ({ ...e })), skipped, failOpen };
  const sick = (node: string, key: string): HealthRecord | undefined => unhealthy.get(node)?.get(key);
  const note = (key: string, node: string, h: HealthRecord): void => {
    const list = skipped.get(key) ?? [];
    list.push(`${node} skipped: ${describeFailure(h)}`);
    skipped.set(key, list);
  };
  const out = entries.map((e0) => {
    const e = { ...e0 };
    const key = `${String(e.protocol)}/${String(e.port)}`;
    if (typeof e.node === 'string') {
      const h = sick(e.node, key);
      const backup = typeof e.backup === 'string' ? e.backup : undefined;
      const hb = backup === undefined ? undefined : sick(backup, key);
      if (h !== undefined && backup !== undefined && hb === undefined) {
        note(key, e.node, h);
        e.node = backup;
        delete e.backup;
      } else if (h !== undefined) {
        failOpen.push(key);
      } else if (backup !== undefined && hb !== undefined) {
        note(key, backup, hb);
        delete e.backup;
      }
      return e;
    }
    // only the connection manager and udp-flow choose among candidates; the others route by payload
    if (e.function !== 'connection' && e.function !== 'udp-flow') return e;
    const listed = Array.isArray(e.nodes) ? (e.nodes as unknown[]).map(String) : undefined;
    if (listed === undefined && e.nodes !== undefined) return e;
    const names = listed ?? [...allNodes];
    const keep = names.filter((n) => sick(n, key) === undefined);
    if (keep.length === names.length) return e;
    if (keep.length === 0) {
      failOpen.push(key);
      return e;
    }
    for (const n of names) {
      const h = sick(n, key);
      if (h !== undefined) note(key, n, h);
    }
    e.nodes = keep;
    return e;
  });
  return { entries: out, skipped, failOpen };
}

/** describeFailure renders a failing check for people: "http /healthz 503 since 12:01:03". */
export function describeFailure(h: HealthRecord): string {
  const since = new Date(h.sinceUnixMs).toISOString().slice(11, 19);
  return `${h.description} ${h.detail} since ${since}`;
}

/**
 * exportsWithoutUnhealthy drops the exports of each node whose failing check covers a MOUNT or NFS entry:
 * those route by export, not among candidates, so the gateway answers calls for them itself at once
 * (MOUNT: no such path; NFS: a stale handle) instead of sending them to a server that does not answer.
 * They come back with the check.
 */
export function exportsWithoutUnhealthy(
  entries: readonly Entry[],
  exports: readonly Entry[],
  unhealthy: Unhealthy,
): { exports: Entry[]; skipped: Skipped } {
  const skipped: Skipped = new Map();
  if (unhealthy.size === 0) return { exports: [...exports], skipped };
  const rpc = entries
    .filter((e) => e.function === 'mount' || e.function === 'nfs')
    .map((e) => `${String(e.protocol)}/${String(e.port)}`);
  const gone = new Set<string>();
  for (const [node, covers] of unhealthy)
    for (const key of rpc) {
      const h = covers.get(key);
      if (h === undefined) continue;
      gone.add(node);
      const list = skipped.get(key) ?? [];
      list.push(`${node}'s exports withdrawn: ${describeFailure(h)}`);
      skipped.set(key, list);
    }
  return { exports: exports.filter((x) => !gone.has(String(x.node))), skipped };
}
