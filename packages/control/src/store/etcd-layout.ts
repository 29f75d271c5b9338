import { allocatePortBlock } from '../port-blocks.js';
import type { Allocation, AllocationRules, NewMember } from './control-store.js';
import { readExportsRecord, readMemberRecord, StoreFileError } from './file-format.js';
import type { ExportsRecord, MemberRecord, StoreContents } from './records.js';

/*
 * How EtcdStore lays the control plane's state out under its prefix P (e.g. /onehost/lab/):
 *   P members/<name>   a MemberRecord, JSON
 *   P exports/<name>   an ExportsRecord, JSON
 *   P next-node-id     the id counter, decimal: every new member's transaction moves it, so a
 *                      transaction that compares its revision sees any allocation made since it read
 *   P gateways/<name>  a GatewayRecord, JSON, under that gateway's lease (gateway-registry.ts)
 *   P gateways-drain/<name>  present while an operator drains that gateway (no lease: it outlives it)
 */

/** PREFIX is what an etcd key prefix must look like: absolute, ending in '/', no spaces. */
export const ETCD_PREFIX = /^\/([A-Za-z0-9._-]+\/)*$/;

/** EtcdKeys are one prefix's keys. */
export interface EtcdKeys {
  prefix: string;
  members: string;
  exports: string;
  counter: string;
  gateways: string;
  gatewayDrains: string;
  member(name: string): string;
  exportsOf(nodeName: string): string;
  gateway(name: string): string;
  gatewayDrain(name: string): string;
}

/** etcdKeys names the keys under `prefix`. Throws RangeError for a prefix ETCD_PREFIX refuses. */
export function etcdKeys(prefix: string): EtcdKeys {
  if (!ETCD_PREFIX.test(prefix))
    throw new RangeError(
      `etcd prefix ${JSON.stringify(prefix)}: must start and end with / (e.g. /onehost/lab/)`,
    );
  return {
    prefix,
    members: `${prefix}members/`,
    exports: `${prefix}exports/`,
    counter: `${prefix}next-node-id`,
    gateways: `${prefix}gateways/`,
    gatewayDrains: `${prefix}gateways-drain/`,
    member: (name) => `${prefix}members/${name}`,
    exportsOf: (nodeName) => `${prefix}exports/${nodeName}`,
    gateway: (name) => `${prefix}gateways/${name}`,
    gatewayDrain: (name) => `${prefix}gateways-drain/${name}`,
  };
}

/** KeyValue is one key as read, with the revision it was last changed at (0: absent). */
export interface KeyValue {
  key: string;
  value: string;
  modRevision: string;
}

/** Snapshot is the prefix read at one revision: the contents and the counter's revision. */
export interface Snapshot extends StoreContents {
  /** the counter's mod revision, '0' when it was never written */
  counterRevision: string;
  /** each member's key's mod revision, by name */
  memberRevisions: Map<string, string>;
}

/**
 * decodeSnapshot reads the prefix's keys into the store's contents. Keys it does not know are left
 * alone (a newer gateway's). Throws StoreFileError naming the key and field of a malformed value, or
 * a member stored under another name's key: a store we cannot read must not hand out ids twice.
 */
export function decodeSnapshot(source: string, keys: EtcdKeys, kvs: readonly KeyValue[]): Snapshot {
  const members: MemberRecord[] = [];
  const exports: ExportsRecord[] = [];
  let counter = 1;
  let counterRevision = '0';
  const memberRevisions = new Map<string, string>();
  const json = (kv: KeyValue): unknown => {
    try {
      return JSON.parse(kv.value);
    } catch (err) {
      throw new StoreFileError(source, kv.key, `not JSON: ${(err as Error).message}`);
    }
  };
  for (const kv of kvs) {
    if (kv.key === keys.counter) {
      counter = Number(kv.value);
      if (!/^[1-9][0-9]{0,5}$/.test(kv.value) || counter > 0x10000)
        throw new StoreFileError(source, kv.key, `not an integer in 1-${0x10000}`);
      counterRevision = kv.modRevision;
    } else if (kv.key.startsWith(keys.members)) {
      const m = readMemberRecord(source, kv.key, json(kv));
      if (kv.key !== keys.member(m.name))
        throw new StoreFileError(source, kv.key, `holds the record of ${JSON.stringify(m.name)}`);
      members.push(m);
      memberRevisions.set(m.name, kv.modRevision);
    } else if (kv.key.startsWith(keys.exports)) {
      const e = readExportsRecord(source, kv.key, json(kv));
      if (kv.key !== keys.exportsOf(e.nodeName))
        throw new StoreFileError(source, kv.key, `holds the exports of ${JSON.stringify(e.nodeName)}`);
      exports.push(e);
    }
  }
  members.sort((a, b) => a.id - b.id);
  const ids = new Set<number>();
  for (const m of members) {
    if (ids.has(m.id)) throw new StoreFileError(source, keys.member(m.name), `duplicate id ${m.id}`);
    ids.add(m.id);
    counter = Math.max(counter, m.id + 1);
  }
  return { members, exports, nextNodeId: counter, counterRevision, memberRevisions };
}

/**
 * planAllocation chooses a new member's id (the counter) and block (the lowest free one) from a
 * snapshot; a name the snapshot already holds keeps its record.
 */
export function planAllocation(snap: StoreContents, m: NewMember, rules: AllocationRules): Allocation {
  const known = snap.members.find((x) => x.name === m.name);
  if (known !== undefined) return { kind: 'existing', member: known };
  if (snap.nextNodeId > rules.maxNodeId)
    return { kind: 'exhausted', what: 'ids', holders: snap.members.length };
  const block = allocatePortBlock(
    rules.portRange,
    rules.blockSize,
    snap.members.map((x) => x.block),
  );
  if (block === null) return { kind: 'exhausted', what: 'blocks', holders: snap.members.length };
  return { kind: 'created', member: { ...m, id: snap.nextNodeId, block } };
}

/**
 * clashOf names another member that holds `m`'s id or a port of its block, or returns null: a record
 * written without allocateMember must not take what another gateway handed out.
 */
export function clashOf(members: readonly MemberRecord[], m: MemberRecord): string | null {
  for (const o of members) {
    if (o.name === m.name) continue;
    if (o.id === m.id) return `node id ${m.id} belongs to ${o.name}`;
    if (o.block.lo <= m.block.hi && m.block.lo <= o.block.hi)
      return `ports ${m.block.lo}-${m.block.hi} overlap ${o.name}'s block ${o.block.lo}-${o.block.hi}`;
  }
  return null;
}
