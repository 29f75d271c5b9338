import type { ExportsRecord, MemberRecord } from '@onehost/control';
import type { GatewayConfig } from './config.js';

/** The switch configuration document the gateway builds (the switch's YAML shape as objects). */
export interface SwitchDoc {
  gateway: string;
  clusterAddresses: unknown[];
  nodes: Record<string, unknown>[];
  management?: unknown;
  portBlocks: Record<string, unknown>[];
  exports: Record<string, unknown>[];
  entries: Record<string, unknown>[];
  fragments?: unknown;
}

/** The gateway is node 0 in its own switch; the control plane numbers members from 1. */
export const GATEWAY_NODE_ID = 0;
/** Ids for nodes that entries name but that never joined (shown as down). */
const PLACEHOLDER_BASE = 65000;

/** namesInEntries lists node names the entries refer to (fixed `node`/`backup`, `nodes` lists). */
export function namesInEntries(entries: readonly Record<string, unknown>[]): string[] {
  const names = new Set<string>();
  for (const e of entries) {
    for (const k of ['node', 'backup']) if (typeof e[k] === 'string') names.add(e[k] as string);
    if (Array.isArray(e.nodes)) for (const n of e.nodes) if (typeof n === 'string') names.add(n);
  }
  return [...names];
}

/**
 * buildSwitchDoc joins the static table (config) with membership and exports into one switch document.
 * A `declared` node (named by the configuration file's entries) that has not joined yet is listed as
 * down (id ≥ 65000, address 0.0.0.x), so the table loads and its entries fail over or drop until it
 * joins; any other unknown name is left for the switch to refuse.
 */
export function buildSwitchDoc(
  cfg: GatewayConfig,
  entries: readonly Record<string, unknown>[],
  members: readonly MemberRecord[],
  exports: readonly ExportsRecord[],
  declared: readonly string[] = namesInEntries(cfg.switch.entries as Record<string, unknown>[]),
): SwitchDoc {
  const byName = new Map(exports.map((x) => [x.nodeName, x]));
  const nodes: Record<string, unknown>[] = [
    { id: GATEWAY_NODE_ID, name: cfg.name, address: cfg.interconnect.address },
  ];
  const known = new Set([cfg.name]);
  for (const m of members) {
    if (known.has(m.name)) continue;
    known.add(m.name);
    const x = byName.get(m.name);
    const node: Record<string, unknown> = {
      id: m.id,
      name: m.name,
      address: m.internalAddress,
      // the switch knows no "unreachable": such a node gets no new flows, like a down one
      state: m.state === 'unreachable' ? 'down' : m.state,
    };
    if (x !== undefined) {
      const mountd: Record<string, number> = {};
      if (x.mountPorts.tcp) mountd.tcp = x.mountPorts.tcp;
      if (x.mountPorts.udp) mountd.udp = x.mountPorts.udp;
      if (Object.keys(mountd).length > 0) node.mountd = mountd;
      node.nfsHandle = { ...x.handleLayout };
    }
    nodes.push(node);
  }
  let k = 0;
  for (const name of declared) {
    if (known.has(name)) continue;
    known.add(name);
    nodes.push({ id: PLACEHOLDER_BASE + k, name, address: `0.0.0.${k + 1}`, state: 'down' });
    k++;
  }
  const doc: SwitchDoc = {
    gateway: cfg.name,
    clusterAddresses: cfg.switch.clusterAddresses,
    nodes,
    portBlocks: members.map((m) => ({ node: m.name, from: m.block.lo, to: m.block.hi })),
    exports: exports
      .filter((x) => members.some((m) => m.name === x.nodeName))
      .flatMap((x) => x.exports.map((e) => ({ path: e.path, node: x.nodeName, exportId: e.exportId }))),
    entries: entries.map((e) => ({ ...e })),
  };
  if (cfg.switch.management !== undefined) doc.management = cfg.switch.management;
  if (cfg.switch.fragments !== undefined) doc.fragments = cfg.switch.fragments;
  return doc;
}
