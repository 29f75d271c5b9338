import { describe, expect, it } from 'vitest';
import { etcdKeys } from './etcd-layout.js';
import { StoreFileError } from './file-format.js';
import { MemberMirror } from './member-mirror.js';
import type { MemberRecord } from './records.js';

const keys = etcdKeys('/onehost/t/');
const rec = (name: string, id: number): MemberRecord => ({
  name,
  id,
  block: { lo: 32768 + id * 64, hi: 32768 + id * 64 + 63 },
  internalAddress: `198.18.0.${id}`,
  vxlanMac: '02:00:5e:10:00:01',
  capabilities: [],
  drained: false,
  state: 'active',
  lastSeenUnixMs: 1,
  downReason: '',
});
const put = (m: MemberMirror, r: MemberRecord, rev: number) =>
  m.apply(keys.member(r.name), JSON.stringify(r), rev);

describe('MemberMirror', () => {
  it('keeps members and the counter, newest revision per key winning', () => {
    const m = new MemberMirror('test', keys);
    expect(m.counterRevision).toBe('0');
    put(m, rec('n1', 1), 5);
    m.apply(keys.counter, '2', 5);
    // a late commit of an older value does not undo the watch's newer one
    put(m, { ...rec('n1', 1), drained: true }, 7);
    put(m, rec('n1', 1), 6);
    expect(m.snapshot()).toMatchObject({ nextNodeId: 2, counterRevision: '5' });
    expect(m.snapshot().members[0]?.drained).toBe(true);
    // and the member's revision is the one that wrote what it holds
    expect(m.snapshot().memberRevisions).toEqual(new Map([['n1', '7']]));
  });

  it('remembers deletes: an older put does not bring a member back', () => {
    const m = new MemberMirror('test', keys);
    put(m, rec('n1', 1), 5);
    put(m, rec('n2', 2), 6);
    m.apply(keys.member('n2'), null, 8);
    put(m, rec('n2', 2), 7);
    expect(m.snapshot().members.map((x) => x.name)).toEqual(['n1']);
    // the counter never goes below a member's id + 1, written or not
    expect(m.snapshot().nextNodeId).toBe(2);
  });

  it('ignores keys it does not keep, and refuses a malformed member like a read would', () => {
    const m = new MemberMirror('test', keys);
    m.apply(keys.exportsOf('n1'), '{}', 3);
    m.apply(keys.gateway('g1'), '{}', 3);
    expect(m.snapshot().members).toEqual([]);
    m.apply(keys.member('n9'), '{not json', 4);
    expect(() => m.snapshot()).toThrow(StoreFileError);
    m.apply(keys.member('n9'), JSON.stringify(rec('n8', 8)), 5);
    expect(() => m.snapshot()).toThrow(/holds the record of "n8"/);
    m.apply(keys.member('n9'), null, 6);
    expect(m.snapshot().members).toEqual([]);
  });
});
