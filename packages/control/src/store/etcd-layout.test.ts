import { describe, expect, it } from 'vitest';
import { clashOf, decodeSnapshot, etcdKeys, type KeyValue, planAllocation } from './etcd-layout.js';
import type { MemberRecord } from './records.js';

const member = (name: string, id: number, lo: number, hi = lo + 1023): MemberRecord => ({
  name,
  id,
  block: { lo, hi },
  internalAddress: `198.18.0.${10 + id}`,
  vxlanMac: `02:00:5e:10:00:0${id}`,
  capabilities: ['vxlan'],
  drained: false,
  state: 'active',
  lastSeenUnixMs: 0,
  downReason: '',
});
const keys = etcdKeys('/onehost/lab/');
const kv = (key: string, value: unknown, modRevision = '7'): KeyValue => ({
  key,
  value: typeof value === 'string' ? value : JSON.stringify(value),
  modRevision,
});
const rules = { portRange: { lo: 32768, hi: 36863 }, blockSize: 1024, maxNodeId: 0xffff };
const draft = (name: string) => {
  const { id: _id, block: _block, ...rest } = member(name, 9, 1);
  return rest;
};

describe('etcd layout', () => {
  it('names keys under the prefix and refuses a prefix that is not /…/', () => {
    expect(keys.member('n1')).toBe('/onehost/lab/members/n1');
    expect(keys.exportsOf('n1')).toBe('/onehost/lab/exports/n1');
    expect(keys.counter).toBe('/onehost/lab/next-node-id');
    expect(etcdKeys('/').counter).toBe('/next-node-id');
    for (const bad of ['onehost/', '/onehost', '/a b/', '/a//b/', ''])
      expect(() => etcdKeys(bad)).toThrow(/must start and end with \//);
  });

  it('decodes members, exports and the counter; the counter moves past the highest id', () => {
    const s = decodeSnapshot('etcd', keys, [
      kv(keys.member('n2'), member('n2', 5, 33792)),
      kv(keys.member('n1'), member('n1', 1, 32768)),
      kv(keys.counter, '3', '42'),
      kv(keys.exportsOf('n1'), {
        nodeName: 'n1',
        mountPorts: { tcp: 20048 },
        exports: [{ path: '/srv', exportId: 1 }],
        handleLayout: { offset: 0, length: 2, endian: 'big' },
        registeredUnixMs: 1,
      }),
      kv('/onehost/lab/later/thing', 'x'),
    ]);
    expect(s.members.map((m) => m.name)).toEqual(['n1', 'n2']);
    expect(s.exports).toHaveLength(1);
    expect(s.nextNodeId).toBe(6);
    expect(s.counterRevision).toBe('42');
    // each member's key's revision (a write that keeps its id and block is guarded by it)
    expect(s.memberRevisions).toEqual(
      new Map([
        ['n2', '7'],
        ['n1', '7'],
      ]),
    );
    expect(decodeSnapshot('etcd', keys, [])).toEqual({
      members: [],
      exports: [],
      nextNodeId: 1,
      counterRevision: '0',
      memberRevisions: new Map(),
    });
  });

  it('refuses malformed values naming the key and field', () => {
    const bad = (kvs: KeyValue[]) => () => decodeSnapshot('etcd store x', keys, kvs);
    expect(bad([kv(keys.counter, 'ten')])).toThrow(
      /etcd store x: \/onehost\/lab\/next-node-id: not an integer/,
    );
    expect(bad([kv(keys.member('n1'), '{')])).toThrow(/members\/n1: not JSON/);
    expect(bad([kv(keys.member('n1'), { ...member('n1', 1, 32768), id: 0 })])).toThrow(/members\/n1\.id/);
    expect(bad([kv(keys.member('n1'), member('n2', 1, 32768))])).toThrow(
      /members\/n1: holds the record of "n2"/,
    );
    expect(
      bad([kv(keys.member('a'), member('a', 1, 32768)), kv(keys.member('b'), member('b', 1, 33792))]),
    ).toThrow(/duplicate id 1/);
  });

  it('plans the counter id and the lowest free block; a known name keeps its record', () => {
    const snap = { members: [member('n1', 1, 32768), member('n3', 3, 34816)], exports: [], nextNodeId: 4 };
    expect(planAllocation(snap, draft('n4'), rules)).toMatchObject({
      kind: 'created',
      member: { name: 'n4', id: 4, block: { lo: 33792, hi: 34815 } },
    });
    expect(planAllocation(snap, draft('n3'), rules)).toEqual({ kind: 'existing', member: snap.members[1] });
    const full = {
      members: [0, 1, 2, 3].map((i) => member(`m${i}`, i + 1, 32768 + i * 1024)),
      exports: [],
      nextNodeId: 5,
    };
    expect(planAllocation(full, draft('n9'), rules)).toEqual({
      kind: 'exhausted',
      what: 'blocks',
      holders: 4,
    });
    expect(planAllocation({ ...snap, nextNodeId: 0x10000 }, draft('n9'), rules)).toMatchObject({
      kind: 'exhausted',
      what: 'ids',
    });
  });

  it('finds a clash of ids or blocks with another name', () => {
    const ms = [member('n1', 1, 32768), member('n2', 2, 33792)];
    expect(clashOf(ms, member('n1', 1, 32768))).toBeNull();
    expect(clashOf(ms, member('n3', 3, 34816))).toBeNull();
    expect(clashOf(ms, member('n3', 2, 34816))).toBe('node id 2 belongs to n2');
    expect(clashOf(ms, member('n3', 3, 33000, 33100))).toMatch(/overlap n1's block 32768-33791/);
  });
});
