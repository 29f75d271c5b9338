import { get, request } from 'node:https';
import type { EtcdCluster } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlError } from '../control-error.js';
import { Membership } from '../membership.js';
import { startTestEtcd } from '../testing/etcd.js';
import { makeTestPki, type TestPki } from '../testing/pki.js';
import type { Allocation } from './control-store.js';
import type { Snapshot } from './etcd-layout.js';
import { EtcdStore, type EtcdStoreOptions } from './etcd-store.js';
import type { MemberRecord } from './records.js';

// Against a real 3-member etcd cluster (etcd-server) with mutual TLS, on loopback addresses of its own.

let pki: TestPki;
let etcd: EtcdCluster;
let prefixes = 0;
const open: EtcdStore[] = [];

beforeAll(async () => {
  pki = await makeTestPki();
  etcd = await startTestEtcd(pki);
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((s) => s.close()));
  await etcd?.stop();
});

const options = (prefix: string, cert = pki.gateway): EtcdStoreOptions => ({
  endpoints: etcd.endpoints,
  tls: { caPem: pki.ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem },
  prefix,
  resyncIntervalMs: 100,
});

/** store opens an EtcdStore on `prefix` as the gateway (or with `cert`); afterAll closes it. */
function store(prefix: string, cert = pki.gateway): EtcdStore {
  const s = new EtcdStore(options(prefix, cert));
  open.push(s);
  return s;
}

/** RacingStore runs `afterRead` once, after its next read: another gateway's turn before its commit. */
class RacingStore extends EtcdStore {
  afterRead: (() => Promise<void>) | undefined;

  protected override async read(what: string, lost?: string): Promise<Snapshot> {
    const s = await super.read(what, lost);
    const f = this.afterRead;
    this.afterRead = undefined;
    await f?.();
    return s;
  }
}
const newPrefix = () => `/onehost/test${++prefixes}/`;

const member = (name: string, id: number, lo: number): MemberRecord => ({
  name,
  id,
  block: { lo, hi: lo + 1023 },
  internalAddress: `198.18.0.${10 + id}`,
  vxlanMac: `02:00:5e:10:00:0${id % 10}`,
  capabilities: ['vxlan'],
  drained: false,
  state: 'active',
  lastSeenUnixMs: 1,
  downReason: '',
});

/** leader asks each member (etcd's JSON gateway) which one leads; its index. */
async function leader(): Promise<number> {
  const status = (address: string) =>
    new Promise<{ header: { member_id: string }; leader: string }>((resolve, reject) => {
      const req = request(
        {
          host: address,
          port: 2379,
          method: 'POST',
          path: '/v3/maintenance/status',
          ca: pki.ca.certPem,
          cert: pki.gateway.certPem,
          key: pki.gateway.keyPem,
          timeout: 3000,
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(JSON.parse(body)));
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
  const all = await Promise.all(etcd.members.map((m) => status(m.address)));
  const i = all.findIndex((s) => s.header.member_id === s.leader);
  if (i < 0) throw new Error('no member leads');
  return i;
}

async function gateway(s: EtcdStore): Promise<Membership> {
  // liveness is not under test: no node heartbeats here
  return new Membership({ store: s, contents: await s.load(), heartbeatTimeoutMs: 600_000 });
}

const join = (m: Membership, name: string, i: number) =>
  m.join({ name, internalAddress: `198.18.1.${i}`, vxlanMac: '02:00:00:00:00:01', capabilities: [] });

describe('EtcdStore on a 3-member etcd', () => {
  it('keeps members, exports and the id counter for the next gateway', async () => {
    const prefix = newPrefix();
    const a = store(prefix);
    expect(await a.load()).toEqual({ members: [], exports: [], nextNodeId: 1 });
    await a.putMember(member('n1', 1, 32768));
    await a.putMember(member('n2', 2, 33792));
    await a.putExports({
      nodeName: 'n1',
      mountPorts: { tcp: 20048 },
      exports: [{ path: '/srv/projects', exportId: 1 }],
      handleLayout: { offset: 2, length: 2, endian: 'big' },
      registeredUnixMs: 5,
    });
    await a.deleteMember('n2');
    const c = await store(prefix).load();
    expect(c.members.map((m) => [m.name, m.id, m.block.lo])).toEqual([['n1', 1, 32768]]);
    expect(c.exports[0]?.exports).toEqual([{ path: '/srv/projects', exportId: 1 }]);
    // n2's id is not handed out again
    expect(c.nextNodeId).toBe(3);
    await a.deleteExports('n1');
    expect((await store(prefix).load()).exports).toEqual([]);
    // close lets a write already asked for land, and refuses later ones
    const b = store(prefix);
    const late = b.putMember(member('n5', 5, 36864));
    await b.close();
    await late;
    await expect(b.deleteMember('n5')).rejects.toThrow(/deleting member n5: closed/);
    expect((await store(prefix).load()).members.map((m) => m.name)).toEqual(['n1', 'n5']);
    // a record that takes another member's id or ports is refused, naming the store
    await expect(a.putMember(member('n3', 1, 40000))).rejects.toThrow(
      /etcd store https:\/\/127\..*prefix \/onehost\/test1\/\): member n3: node id 1 belongs to n1/,
    );
  });

  it('a gateway that loses the race for an id reads again and takes the next id and block', async () => {
    const prefix = newPrefix();
    const a = new RacingStore(options(prefix));
    const b = store(prefix);
    open.push(a);
    const draft = (name: string) => {
      const { id: _i, block: _b, ...rest } = member(name, 1, 32768);
      return rest;
    };
    const rules = { portRange: { lo: 32768, hi: 60999 }, blockSize: 1024, maxNodeId: 0xffff };
    let bGot: Allocation | undefined;
    // between a's read and its transaction, b admits another node
    a.afterRead = async () => {
      bGot = await b.allocateMember(draft('b1'), rules);
    };
    const aGot = await a.allocateMember(draft('a1'), rules);
    expect(bGot).toMatchObject({ kind: 'created', member: { id: 1, block: { lo: 32768 } } });
    expect(aGot).toMatchObject({ kind: 'created', member: { id: 2, block: { lo: 33792 } } });
    expect(a.racesLost).toBe(1);
    expect((await store(prefix).load()).nextNodeId).toBe(3);
  });

  it('a member that keeps its id and block is written past another gateway’s admissions; a delete in between is seen', async () => {
    const prefix = newPrefix();
    const a = new RacingStore(options(prefix));
    const b = store(prefix);
    open.push(a);
    const rules = { portRange: { lo: 32768, hi: 60999 }, blockSize: 1024, maxNodeId: 0xffff };
    await a.putMember(member('n1', 1, 32768));
    // between a's read and its transaction, b admits a node (the id counter moves): a's write of n1's
    // new state is not refused for it
    a.afterRead = async () => {
      const { id: _i, block: _b, ...rest } = member('b1', 9, 40000);
      expect(await b.allocateMember(rest, rules)).toMatchObject({ kind: 'created', member: { id: 2 } });
    };
    await a.putMember({ ...member('n1', 1, 32768), state: 'down', downReason: 'timeout' });
    expect(a.racesLost).toBe(0);
    expect((await store(prefix).load()).members.find((m) => m.name === 'n1')).toMatchObject({
      state: 'down',
    });
    // b deletes n1 between a's read and its transaction: a's write is refused, a reads etcd again
    a.afterRead = async () => {
      await b.deleteMember('n1');
    };
    await a.putMember({ ...member('n1', 1, 32768), state: 'active' });
    expect(a.racesLost).toBe(1);
    expect((await store(prefix).load()).members.find((m) => m.name === 'n1')).toMatchObject({
      state: 'active',
    });
    // a member whose block changes is still guarded by the counter: b's admission in between costs a race
    a.afterRead = async () => {
      const { id: _i, block: _b, ...rest } = member('b2', 9, 40000);
      await b.allocateMember(rest, rules);
    };
    await a.putMember(member('n1', 1, 50000));
    expect(a.racesLost).toBe(2);
  });

  it('with their watches running, two gateways admit from their mirrors: 2 × 100 nodes, no id or block twice', async () => {
    const prefix = newPrefix();
    const [sa, sb] = [store(prefix), store(prefix)];
    // blocks of 64 ports: 200 nodes fit the default range
    const small = async (s: EtcdStore) =>
      new Membership({ store: s, contents: await s.load(), heartbeatTimeoutMs: 600_000, blockSize: 64 });
    const [ga, gb] = [await small(sa), await small(sb)];
    await sa.watch(() => undefined);
    await sb.watch(() => undefined);
    await waitFor(() => (sa as unknown as { watching: boolean }).watching, { what: 'a watching' });
    await waitFor(() => (sb as unknown as { watching: boolean }).watching, { what: 'b watching' });
    const joins: Promise<MemberRecord>[] = [];
    for (let i = 1; i <= 100; i++) joins.push(join(ga, `a${i}`, i), join(gb, `b${i}`, 100 + i));
    const got = await Promise.all(joins);
    const stored = (await store(prefix).load()).members;
    expect(stored).toHaveLength(200);
    expect(new Set(stored.map((m) => m.id)).size).toBe(200);
    const blocks = stored.map((m) => m.block).sort((x, y) => x.lo - y.lo);
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.lo).toBeGreaterThan(blocks[i - 1]!.hi);
    for (const m of got)
      expect(stored.find((s) => s.name === m.name)).toMatchObject({ id: m.id, block: m.block });
    // every admission read the mirror; etcd was read only when the watch was slower than a lost race
    expect(sa.reads.mirror + sb.reads.mirror).toBeGreaterThanOrEqual(200);
    expect(sa.reads.etcd + sb.reads.etcd).toBeLessThan(20);
    ga.close();
    gb.close();
  });

  it('two gateways admitting nodes at once never hand out one id or block twice', async () => {
    const prefix = newPrefix();
    const [ga, gb] = [await gateway(store(prefix)), await gateway(store(prefix))];
    const joins: Promise<MemberRecord>[] = [];
    for (let i = 1; i <= 10; i++) {
      joins.push(join(ga, `a${i}`, i));
      joins.push(join(gb, `b${i}`, 100 + i));
    }
    // one node that joins both gateways at the same time gets one id and block
    joins.push(join(ga, 'both', 200), join(gb, 'both', 200));
    const got = await Promise.all(joins);
    const stored = (await store(prefix).load()).members;
    expect(stored).toHaveLength(21);
    const ids = new Set(stored.map((m) => m.id));
    expect(ids.size).toBe(21);
    const blocks = stored.map((m) => m.block).sort((x, y) => x.lo - y.lo);
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.lo).toBeGreaterThan(blocks[i - 1]!.hi);
    const both = got.filter((m) => m.name === 'both');
    expect(both[0]).toMatchObject({ id: both[1]!.id, block: both[1]!.block });
    // what each gateway answered is what the store keeps
    for (const m of got)
      expect(stored.find((s) => s.name === m.name)).toMatchObject({ id: m.id, block: m.block });
    ga.close();
    gb.close();
  });

  it('works on with one member of three stopped: the leader', async () => {
    const prefix = newPrefix();
    const g = await gateway(store(prefix));
    await join(g, 'n1', 1);
    const gone = await leader();
    await etcd.stopMember(gone);
    try {
      const started = Date.now();
      await join(g, 'n2', 2);
      await g.drain('n1');
      expect((await store(prefix).load()).members.map((m) => [m.name, m.state])).toEqual([
        ['n1', 'draining'],
        ['n2', 'active'],
      ]);
      // a lost leader is replaced in about a second; a stall would be the request timeouts piling up
      expect(Date.now() - started).toBeLessThan(8000);
    } finally {
      await etcd.startMember(gone);
      g.close();
    }
  });

  it('with every member stopped, writes fail naming the store, reads go on; after the restart it catches up', async () => {
    const prefix = newPrefix();
    const s = store(prefix);
    const g = await gateway(s);
    await join(g, 'n1', 1);
    await etcd.stopMember(0);
    await etcd.stopMember(1);
    await etcd.stopMember(2);
    try {
      const err = await join(g, 'n2', 2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ControlError);
      expect((err as ControlError).codeName).toBe('UNAVAILABLE');
      expect((err as Error).message).toMatch(
        /^store: etcd store https:\/\/127\.[0-9.]+:2379,.* \(prefix \/onehost\/test\d+\/\): admitting n2: etcd unreachable/,
      );
      const drain = await g.drain('n1').catch((e: unknown) => e);
      expect((drain as Error).message).toMatch(/^store: etcd store .*: writing member n1: etcd unreachable/);
      // what the gateway had loaded is still there to read
      expect(g.members().map((m) => [m.name, m.state])).toEqual([['n1', 'draining']]);
      expect(s.unsyncedKeys()).toEqual([`${prefix}members/n1`]);
    } finally {
      await etcd.startMembers([0, 1, 2]);
    }
    // the drain the store missed reaches etcd without a restart of the gateway
    await waitFor(async () => s.unsyncedKeys().length === 0, {
      what: 'the missed write retried',
      timeoutMs: 10_000,
    });
    expect((await store(prefix).load()).members.map((m) => [m.name, m.state])).toEqual([['n1', 'draining']]);
    await join(g, 'n2', 2);
    expect((await store(prefix).load()).members.map((m) => m.name)).toEqual(['n1', 'n2']);
    g.close();
  });

  it('refuses a client without a certificate from the cluster CA', async () => {
    const [host, port] = [etcd.members[1]!.address, 2379];
    const version = (cert?: { certPem: string; keyPem: string }) =>
      new Promise<string>((resolve, reject) => {
        const req = get(
          {
            host,
            port,
            path: '/version',
            ca: pki.ca.certPem,
            ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
            timeout: 3000,
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
      });
    expect(await version(pki.gateway)).toMatch(/etcdserver/);
    await expect(version()).rejects.toThrow();
    await expect(version(pki.rogueN1)).rejects.toThrow();
    await expect(store(newPrefix(), pki.rogueN1).load()).rejects.toThrow(
      /^etcd store .*: reading the state: etcd/,
    );
  });
});
