import { ipv4LinkLocal, ipv4ToString, parseIpv4 } from '@onehost/wire';
import {
  type FastPathLayout,
  type KernelState,
  localMark,
  markOf,
  type NodeEndpoint,
  nftFamily,
} from './compile.js';

/** What of the fast path's table exists in the kernel (read back when adopting a table left behind). */
export interface ExistingObjects {
  chains: Set<string>;
  /** sets and maps, static and flow maps alike: name → whether it is a map, its declared size (0: none) */
  sets: Map<string, { map: boolean; size: number }>;
  counters: Set<string>;
  /** `ct timeout` objects */
  ctTimeouts?: Set<string>;
}

const isMap = (decl: string): boolean => decl.includes(':');

function elementsText(elements: Iterable<[string, string]>): string[] {
  const out: string[] = [];
  for (const [k, v] of elements) out.push(v === '' ? k : `${k} : ${v}`);
  return out;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** slotElements lists a bucket map's slots as elements (slots with no node left out). */
function slotElements(slots: Uint32Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < slots.length; i++) if (slots[i] !== 0) out.push(`${i} : ${hex(slots[i]!)}`);
  return out;
}

/** slotDiff lists what changes from one bucket map to the next: slots to delete, and slots to add. */
function slotDiff(a: Uint32Array, b: Uint32Array): { removed: string[]; added: string[] } {
  const removed: string[] = [];
  const added: string[] = [];
  for (let i = 0; i < b.length; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] !== 0) removed.push(String(i));
    if (b[i] !== 0) added.push(`${i} : ${hex(b[i]!)}`);
  }
  return { removed, added };
}

/** chunked splits element lists so no statement gets huge (nft parses long lines slowly). */
function addElements(t: string, name: string, items: string[], verb: 'add' | 'delete'): string[] {
  const out: string[] = [];
  for (let i = 0; i < items.length; i += 4096)
    out.push(`${verb} element ${t} ${name} { ${items.slice(i, i + 4096).join(', ')} }`);
  return out;
}

function sizeOf(decl: string): number {
  const m = /\bsize (\d+);/.exec(decl);
  return m ? Number(m[1]) : 0;
}

/**
 * renderTransaction writes one nftables transaction (an `nft -f` script) that takes the fast path's
 * table from `prev` (what this process applied last; null when unknown) to `next`. With `existing` (the
 * objects found in the kernel when `prev` is null) it adopts a table a previous process left: every chain
 * and static set is rewritten, flow maps of the same name and size are kept with their flows. Without
 * either, it creates the table. The kernel applies all of it or nothing.
 */
export function renderTransaction(
  prev: KernelState | null,
  next: KernelState,
  layout: FastPathLayout,
  existing?: ExistingObjects,
): string {
  const t = `${nftFamily(next.family)} ${layout.table}`;
  const lines: string[] = [`add table ${t}`];
  const full = prev === null;
  const have = {
    chains: full ? (existing?.chains ?? new Set<string>()) : new Set(prev.chains.keys()),
    sets: full
      ? new Set(existing?.sets.keys() ?? [])
      : new Set([...prev.sets.keys(), ...prev.flowMaps.keys()]),
    counters: full ? (existing?.counters ?? new Set<string>()) : prev.counters,
    ctTimeouts: full ? (existing?.ctTimeouts ?? new Set<string>()) : new Set(prev.ctTimeouts.keys()),
  };
  // flow maps whose declaration changed (their size) are made again: their flows are lost
  const remade = new Set<string>();
  for (const [name, decl] of next.flowMaps) {
    if (!have.sets.has(name)) continue;
    const before = full ? (existing?.sets.get(name)?.size ?? 0) : sizeOf(prev.flowMaps.get(name) ?? '');
    if (before !== sizeOf(decl)) remade.add(name);
  }
  const changedChain = (name: string): boolean => {
    if (full || !prev.chains.has(name)) return true;
    const a = prev.chains.get(name)!;
    const b = next.chains.get(name)!;
    if (a.base !== b.base || a.rules.length !== b.rules.length) return true;
    if (b.rules.some((r) => [...remade].some((m) => r.includes(`@${m} `)))) return true;
    return a.rules.some((r, i) => r !== b.rules[i]);
  };

  // 1. new objects
  for (const c of next.counters) if (!have.counters.has(c)) lines.push(`add counter ${t} ${c}`);
  // (an object's policy never changes under its name: `add` of one that exists is a no-op)
  for (const [name, decl] of next.ctTimeouts)
    if (!have.ctTimeouts.has(name)) lines.push(`add ct timeout ${t} ${name} { ${decl} }`);
  for (const [name, chain] of next.chains)
    if (!have.chains.has(name))
      lines.push(chain.base ? `add chain ${t} ${name} { ${chain.base} }` : `add chain ${t} ${name}`);
  // 2. chains to rewrite, and those that go, lose their rules first (nothing may refer to what is deleted)
  const rewrite = [...next.chains.keys()].filter(changedChain);
  const goneChains = [...have.chains].filter((c) => !next.chains.has(c));
  for (const c of [...rewrite, ...goneChains]) if (have.chains.has(c)) lines.push(`flush chain ${t} ${c}`);
  // 3. static sets: rewritten whole when adopting or new, element by element otherwise
  const fills: string[] = [];
  for (const [name, s] of next.sets) {
    const kind = isMap(s.decl) ? 'map' : 'set';
    const old = full ? undefined : prev.sets.get(name);
    const sizeChanged = s.slots !== undefined && old?.slots?.length !== s.slots.length;
    if (old === undefined || old.decl !== s.decl || sizeChanged) {
      if (have.sets.has(name)) {
        const wasMap = full ? (existing?.sets.get(name)?.map ?? isMap(s.decl)) : isMap(old?.decl ?? s.decl);
        lines.push(`delete ${wasMap ? 'map' : 'set'} ${t} ${name}`);
      }
      lines.push(`add ${kind} ${t} ${name} { ${s.decl} }`);
      const all = s.slots !== undefined ? slotElements(s.slots) : elementsText(s.elements);
      fills.push(...addElements(t, name, all, 'add'));
      continue;
    }
    if (s.slots !== undefined && old.slots !== undefined) {
      const d = slotDiff(old.slots, s.slots);
      lines.push(...addElements(t, name, d.removed, 'delete'));
      fills.push(...addElements(t, name, d.added, 'add'));
      continue;
    }
    const removed: string[] = [];
    const added: [string, string][] = [];
    for (const [k, v] of old.elements) {
      const nv = s.elements.get(k);
      if (nv === undefined || nv !== v) removed.push(k);
    }
    for (const [k, v] of s.elements) if (old.elements.get(k) !== v) added.push([k, v]);
    lines.push(...addElements(t, name, removed, 'delete'));
    fills.push(...addElements(t, name, elementsText(added), 'add'));
  }
  // 4. what goes: chains, sets and maps, then counters (rules and objref maps referred to them)
  for (const c of goneChains) lines.push(`delete chain ${t} ${c}`);
  for (const s of have.sets) {
    if (next.sets.has(s)) continue;
    if (!next.flowMaps.has(s) || remade.has(s)) {
      const wasMap = full
        ? (existing?.sets.get(s)?.map ?? true)
        : isMap(prev.sets.get(s)?.decl ?? prev.flowMaps.get(s) ?? ':');
      lines.push(`delete ${wasMap ? 'map' : 'set'} ${t} ${s}`);
    }
  }
  for (const [name, decl] of next.flowMaps)
    if (!have.sets.has(name) || remade.has(name)) lines.push(`add map ${t} ${name} { ${decl} }`);
  for (const c of have.counters) if (!next.counters.has(c)) lines.push(`delete counter ${t} ${c}`);
  for (const c of have.ctTimeouts) if (!next.ctTimeouts.has(c)) lines.push(`delete ct timeout ${t} ${c}`);
  // 5. elements, then 6. rules
  lines.push(...fills);
  for (const name of rewrite)
    for (const r of next.chains.get(name)!.rules) lines.push(`add rule ${t} ${name} ${r}`);
  return `${lines.join('\n')}\n`;
}

/** The `ip` commands (for `ip -batch`) around a transaction: routes, neighbours and mark rules per node. */
export interface IpChanges {
  /** before the nftables transaction: what new marks need in place */
  before: string[];
  /** after it: what no mark refers to any more */
  after: string[];
  /** the same for `ip -6 -batch` (IPv6 mark rules, flushes of IPv6 routes); empty without IPv6 */
  before6: string[];
  after6: string[];
}

function nodeLines(n: NodeEndpoint, layout: FastPathLayout): string[] {
  const table = layout.tableBase + n.id;
  const lines = layout.vips.map(
    (v) =>
      `route replace ${ipv4ToString(v)}/32 via ${n.address} dev ${layout.device} onlink encap ip id ${layout.vni} src ${layout.source} dst ${n.address} table ${table}`,
  );
  lines.push(`neigh replace ${n.address} lladdr ${n.mac} dev ${layout.device} nud permanent`);
  // IPv6 cluster addresses go the same way, inner packet IPv6: the next hop is the node's link-local
  // derived from its interconnect address, as for the TUN path (an IPv6 route takes no IPv4 next hop),
  // and its neighbour entry holds the node's VXLAN MAC (no neighbour discovery over this device)
  const six = layout.vips6 ?? [];
  if (six.length > 0) {
    const ll = ipv4LinkLocal(parseIpv4(n.address));
    for (const v of six)
      lines.push(
        `route replace ${v}/128 via ${ll} dev ${layout.device} encap ip id ${layout.vni} src ${layout.source} dst ${n.address} table ${table}`,
      );
    lines.push(`neigh replace ${ll} lladdr ${n.mac} dev ${layout.device} nud permanent`);
  }
  return lines;
}

/**
 * ipChanges lists the per-node kernel routing to add before and remove after a transaction: each node's
 * table (the cluster addresses through the VXLAN device to its address), its neighbour entry (its VXLAN
 * MAC: ARP never resolves over a collect-metadata device) and the rule that sends its mark to its
 * table. `prevRules` are the node ids whose rule exists (`prevRules6`: whose IPv6 rule does; the IPv6
 * lines come only with IPv6 cluster addresses).
 */
export function ipChanges(
  prev: ReadonlyMap<number, NodeEndpoint>,
  prevRules: ReadonlySet<number>,
  next: KernelState,
  layout: FastPathLayout,
  prevRules6: ReadonlySet<number> = new Set(),
): IpChanges {
  const before: string[] = [];
  const after: string[] = [];
  const before6: string[] = [];
  const after6: string[] = [];
  const six = (layout.vips6 ?? []).length > 0;
  const ll = (a: string) => ipv4LinkLocal(parseIpv4(a));
  for (const [id, n] of next.nodes) {
    const old = prev.get(id);
    if (old === undefined || old.address !== n.address || old.mac !== n.mac) {
      if (old !== undefined && old.address !== n.address) {
        before.push(`neigh del ${old.address} dev ${layout.device}`);
        if (six) before.push(`neigh del ${ll(old.address)} dev ${layout.device}`);
      }
      before.push(...nodeLines(n, layout));
    }
    const rule = `rule add priority ${layout.rulePref} fwmark ${markOf(layout, id, next.gatewayId)} lookup ${layout.tableBase + id}`;
    if (!prevRules.has(id)) before.push(rule);
    if (six && !prevRules6.has(id)) before6.push(rule);
  }
  for (const id of new Set([...prev.keys(), ...prevRules, ...prevRules6])) {
    if (next.nodes.has(id)) continue;
    const rule = `rule del priority ${layout.rulePref} fwmark ${markOf(layout, id, next.gatewayId)} lookup ${layout.tableBase + id}`;
    if (prevRules.has(id)) after.push(rule);
    if (prevRules6.has(id)) after6.push(rule);
    after.push(`route flush table ${layout.tableBase + id}`);
    if (six) after6.push(`route flush table ${layout.tableBase + id}`);
    const old = prev.get(id);
    if (old !== undefined) {
      after.push(`neigh del ${old.address} dev ${layout.device}`);
      if (six) after.push(`neigh del ${ll(old.address)} dev ${layout.device}`);
    }
  }
  return { before, after, before6, after6 };
}

/** localRule is the rule that sends the gateway's own mark to the host's local table. */
export function localRuleArgs(layout: FastPathLayout): string[] {
  return ['priority', String(layout.rulePref), 'fwmark', String(localMark(layout)), 'lookup', 'local'];
}
