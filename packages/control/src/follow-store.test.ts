import { performance } from 'node:perf_hooks';
import type { EtcdCluster } from '@onehost/lab';
import { MemberState } from '@onehost/proto';
import { waitFor } from '@onehost/testkit';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMembership } from './client.js';
import { type ExportsChange, ExportsRegistry } from './exports-registry.js';
import { followStore } from './follow-store.js';
import { type MemberChange, Membership } from './membership.js';
import { EtcdStore } from './store/etcd-store.js';
import { startTestEtcd } from './testing/etcd.js';
import { joinRequest, startTestServer, tlsOf } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';

// Two gateways' control planes (store, membership, exports) on one real 3-member etcd cluster with
// mutual TLS: what one does, the other applies.

let pki: TestPki;
let etcd: EtcdCluster;
let prefixes = 0;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  pki = await makeTestPki();
  etcd = await startTestEtcd(pki);
}, 60_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await etcd?.stop();
}, 30_000);

const tls = () => ({ caPem: pki.ca.certPem, certPem: pki.gateway.certPem, keyPem: pki.gateway.keyPem });
const newPrefix = () => `/onehost/follow${++prefixes}/`;

interface Gateway {
  store: EtcdStore;
  membership: Membership;
  exports: ExportsRegistry;
  changes: MemberChange[];
  exportChanges: ExportsChange[];
}

/** gateway loads the store and follows it, as the control server does; `watch` false: load only. */
async function gateway(prefix: string, endpoints = etcd.endpoints, watch = true) {
  const store = new EtcdStore({ endpoints, tls: tls(), prefix, resyncIntervalMs: 100 });
  const contents = await store.load();
  // heartbeats are not the subject here: a node stays up for the test's length
  const membership = new Membership({ store, contents, heartbeatTimeoutMs: 600_000 });
  const exports = new ExportsRegistry({ store, contents, membership });
  closers.push(async () => {
    membership.close();
    await store.close();
  });
  const g: Gateway = { store, membership, exports, changes: [], exportChanges: [] };
  membership.onChange((c) => g.changes.push(c));
  exports.onChange((c) => g.exportChanges.push(c));
  if (watch) await followStore(store, membership, exports);
  return g;
}

const join = (g: Gateway, name: string, last: number) =>
  g.membership.join({
    name,
    internalAddress: `198.18.0.${last}`,
    vxlanMac: `02:00:5e:10:00:${last.toString(16).padStart(2, '0')}`,
    capabilities: ['vxlan'],
  });

const register = (g: Gateway, nodeName: string, path: string, exportId: number) =>
  g.exports.register({
    nodeName,
    mountPorts: { tcp: 20048 },
    exports: [{ path, exportId }],
    handleLayout: { offset: 2, length: 2, endian: 'big' },
  });

const view = (g: Gateway) =>
  g.membership.members().map((m) => [m.name, m.id, m.block.lo, m.state, m.drained]);

describe('gateways on one etcd follow each other', () => {
  it('a join through A appears on B with the same id and block; drain, exports, leave and forget through either reach the other', async () => {
    const prefix = newPrefix();
    const a = await gateway(prefix);
    const b = await gateway(prefix);
    const n1 = await join(a, 'n1', 11);
    const n2 = await join(b, 'n2', 12);
    await waitFor(() => b.membership.member('n1'), { what: 'n1 on B' });
    await waitFor(() => a.membership.member('n2'), { what: 'n2 on A' });
    expect(b.membership.member('n1')).toMatchObject({ id: n1.id, block: n1.block, state: 'active' });
    expect(a.membership.member('n2')).toMatchObject({ id: n2.id, block: n2.block, state: 'active' });
    expect(n1.block).not.toEqual(n2.block);
    // B's listeners (its switch table) saw the join, marked as another gateway's
    expect(b.changes.find((c) => c.member.name === 'n1')).toMatchObject({ kind: 'joined', remote: true });

    // an operator's drain through B of a node heartbeating to A: A takes the drain, keeps the node up
    await b.membership.drain('n1');
    await waitFor(() => a.membership.member('n1')?.drained, { what: 'drain on A' });
    expect(a.membership.member('n1')?.state).toBe('draining');
    expect(a.changes.filter((c) => c.kind === 'draining')).toHaveLength(1);

    // exports registered through B reach A's Cluster Export Table
    await register(b, 'n2', '/srv/b', 7);
    await waitFor(() => a.exports.get('n2'), { what: 'n2 exports on A' });
    expect(a.exports.get('n2')?.exports).toEqual([{ path: '/srv/b', exportId: 7 }]);
    // and A refuses the same path for its own node, as if registered here
    await expect(register(a, 'n1', '/srv/b', 8)).rejects.toThrow(/already exported by n2/);

    // n2 leaves through B: A sees it down and drops its exports, without writing anything itself
    const echoesBefore = a.store.watched.echoes;
    await b.membership.leave('n2');
    await waitFor(() => a.membership.member('n2')?.state === 'down', { what: 'n2 down on A' });
    await waitFor(() => a.exports.get('n2') === undefined, { what: 'n2 exports gone on A' });
    expect(a.changes.find((c) => c.kind === 'left')).toMatchObject({ member: { name: 'n2' }, remote: true });
    expect(a.exportChanges.at(-1)).toEqual({ kind: 'removed', nodeName: 'n2' });
    expect(a.store.watched.echoes).toBe(echoesBefore);

    // forgotten through A: gone on B; its id is not handed out again by B
    await a.membership.forget('n2');
    await waitFor(() => b.membership.member('n2') === undefined, { what: 'n2 forgotten on B' });
    expect(b.changes.at(-1)).toMatchObject({ kind: 'forgotten', remote: true });
    const n3 = await join(b, 'n3', 13);
    expect(n3.id).toBe(Math.max(n1.id, n2.id) + 1);
    await waitFor(() => a.membership.member('n3'), { what: 'n3 on A' });

    // both hold the same members; each heard its own changes once (echoes dropped, not applied)
    expect(view(a)).toEqual(view(b));
    expect(a.changes.filter((c) => c.member.name === 'n1' && c.kind === 'joined')).toHaveLength(1);
    expect(a.changes.filter((c) => c.member.name === 'n1' && c.remote)).toHaveLength(1); // B's drain
    expect(a.store.watched.echoes).toBeGreaterThan(0);
  }, 30_000);

  it('two control servers on one etcd: a node that joins one over gRPC is listed by the other, and its leave too', async () => {
    const prefix = newPrefix();
    const server = async () => {
      const store = new EtcdStore({ endpoints: etcd.endpoints, tls: tls(), prefix });
      const s = await startTestServer(pki, { store, host: '127.0.0.1', port: 0 });
      closers.push(() => s.close());
      return s;
    };
    const [a, b] = [await server(), await server()];
    const connect = (s: { port: number }, tlsOpts = tlsOf(pki.operator)) => {
      const c = connectMembership(`127.0.0.1:${s.port}`, tlsOpts);
      closers.push(() => c.close());
      return c;
    };
    const node = connect(a, tlsOf(pki.nodes.n1));
    const operatorB = connect(b);
    const joined = await node.join(joinRequest('n1', 61));
    const onB = await waitFor(async () => (await operatorB.listMembers()).find((m) => m.nodeName === 'n1'), {
      what: 'n1 listed by B',
    });
    expect([onB.nodeId, onB.portBlock]).toEqual([joined.nodeId, joined.portBlock]);
    await node.leave('n1');
    await waitFor(
      async () =>
        (await operatorB.listMembers()).find((m) => m.nodeName === 'n1')?.state ===
        MemberState.MEMBER_STATE_DOWN,
      { what: 'n1 down on B' },
    );
  }, 30_000);

  it('a gateway that starts later takes the stored state as it stands (no "gateway restart" downs)', async () => {
    const prefix = newPrefix();
    const a = await gateway(prefix);
    await join(a, 'n1', 21);
    const b = await gateway(prefix);
    expect(b.membership.member('n1')?.state).toBe('active');
    // and A, which holds n1's heartbeats, was not told otherwise
    expect(
      (await new EtcdStore({ endpoints: etcd.endpoints, tls: tls(), prefix }).load()).members[0]?.state,
    ).toBe('active');
    expect(a.membership.member('n1')?.state).toBe('active');
  }, 30_000);

  it('liveness is per gateway: a down written elsewhere for a node heartbeating here is written back up', async () => {
    const prefix = newPrefix();
    const a = await gateway(prefix);
    const b = await gateway(prefix);
    const n1 = await join(a, 'n1', 51);
    await waitFor(() => b.membership.member('n1'), { what: 'n1 on B' });
    // a gateway the node left times it out (here: a plain write of that record)
    const other = new EtcdStore({ endpoints: etcd.endpoints, tls: tls(), prefix });
    closers.push(() => other.close());
    await other.putMember({ ...n1, state: 'down', downReason: 'heartbeat timeout' });
    // B applies it (briefly: A answers at once)
    await waitFor(() => b.changes.some((c) => c.kind === 'down' && c.member.name === 'n1'), {
      what: 'n1 down on B',
    });
    // A holds n1's heartbeats: it stays up there, and B hears so again
    await waitFor(() => b.membership.member('n1')?.state === 'active', { what: 'n1 up again on B' });
    expect(a.membership.member('n1')?.state).toBe('active');
    expect(a.changes.filter((c) => c.kind === 'down')).toEqual([]);
    expect((await other.load()).members[0]?.state).toBe('active');
  }, 30_000);

  it('a node that joins another gateway moves there: the first ends its session without taking it down', async () => {
    const prefix = newPrefix();
    const a = await gateway(prefix);
    const b = await gateway(prefix);
    const n1 = await join(a, 'n1', 71);
    expect(a.membership.attachHeartbeat('n1', n1.id, () => undefined).name).toBe('n1');
    await waitFor(() => b.membership.member('n1'), { what: 'n1 on B' });
    // a join is told apart by its time: the second one's must differ (the same millisecond would not)
    await waitFor(() => Date.now() > n1.lastSeenUnixMs, { what: 'the clock to move' });
    const again = await join(b, 'n1', 71);
    expect([again.id, again.block]).toEqual([n1.id, n1.block]);
    await waitFor(
      () => {
        try {
          a.membership.attachHeartbeat('n1', n1.id, () => undefined);
          return false;
        } catch (e) {
          return /joined through another gateway/.test((e as Error).message);
        }
      },
      { what: 'A to hand n1 over' },
    );
    expect(a.membership.member('n1')?.state).toBe('active');
    expect(a.changes.filter((c) => c.kind === 'down' || c.kind === 'left')).toEqual([]);
  }, 30_000);

  it('a watch broken by its etcd member stopping resumes and misses no change made meanwhile', async () => {
    const prefix = newPrefix();
    // B talks to member 0 only, A to the others: A's writes go on while B's member is away
    const a = await gateway(prefix, etcd.endpoints.slice(1));
    const b = await gateway(prefix, etcd.endpoints.slice(0, 1));
    await join(a, 'n1', 31);
    await waitFor(() => b.membership.member('n1'), { what: 'n1 on B' });
    await etcd.stopMember(0);
    try {
      const n2 = await join(a, 'n2', 32);
      await register(a, 'n2', '/srv/n2', 3);
      await a.membership.leave('n1');
      expect(b.membership.member('n2')).toBeUndefined();
      await etcd.startMember(0);
      await waitFor(() => b.exports.get('n2'), { what: 'n2 exports on B', timeoutMs: 15_000 });
      expect(b.membership.member('n2')).toMatchObject({ id: n2.id, block: n2.block });
      expect(b.membership.member('n1')?.state).toBe('down');
      expect(b.store.reloads).toBe(0);
    } finally {
      await etcd.startMember(0);
    }
  }, 60_000);

  it('a watch from a compacted revision reads everything again: puts and deletes made meanwhile apply', async () => {
    const prefix = newPrefix();
    const a = await gateway(prefix);
    await join(a, 'gone', 41);
    await join(a, 'kept', 42);
    // B loads now and watches only after the history since its load was compacted away
    const b = await gateway(prefix, etcd.endpoints, false);
    await a.membership.leave('gone');
    await a.membership.forget('gone');
    await a.membership.drain('kept');
    const n3 = await join(a, 'n3', 43);
    await register(a, 'n3', '/srv/n3', 4);
    const raw = new Etcd3({
      hosts: etcd.endpoints,
      credentials: {
        rootCertificate: Buffer.from(pki.ca.certPem),
        certChain: Buffer.from(pki.gateway.certPem),
        privateKey: Buffer.from(pki.gateway.keyPem),
      },
    });
    try {
      const rev = (await raw.get(`${prefix}none`).exec()).header.revision;
      await raw.kv.compact({ revision: rev, physical: true });
    } finally {
      raw.close();
    }
    expect(b.membership.member('gone')).toBeDefined();
    await followStore(b.store, b.membership, b.exports);
    await waitFor(() => b.store.reloads === 1, { what: 'a reload' });
    expect(b.membership.member('gone')).toBeUndefined();
    expect(b.membership.member('kept')?.drained).toBe(true);
    expect(b.membership.member('n3')).toMatchObject({ id: n3.id, block: n3.block });
    expect(b.exports.get('n3')?.exports).toEqual([{ path: '/srv/n3', exportId: 4 }]);
    expect(b.changes.map((c) => `${c.kind} ${c.member.name}`).sort()).toEqual([
      'draining kept',
      'forgotten gone',
      'joined n3',
    ]);
    // and it watches again from there
    await a.membership.drain('kept', true);
    await waitFor(() => b.membership.member('kept')?.drained === false, { what: 'undrain on B' });
  }, 30_000);

  it('prints how long a change through A takes to be applied on B (p50/p99 over 200 changes)', async () => {
    const prefix = newPrefix();
    const a = await gateway(prefix);
    const b = await gateway(prefix);
    // each change, and what B holds once it has applied it
    let until: (() => boolean) | null = null;
    let seen: (() => void) | null = null;
    const check = () => {
      if (until?.()) seen?.();
    };
    b.membership.onChange(check);
    b.exports.onChange(check);
    const changes: [(i: number) => Promise<unknown>, (i: number) => boolean][] = [
      [(i) => join(a, `n${i}`, 100 + (i % 100)), (i) => b.membership.member(`n${i}`) !== undefined],
      [(i) => a.membership.drain(`n${i - 1}`), (i) => b.membership.member(`n${i - 1}`)?.drained === true],
      [(i) => register(a, `n${i - 2}`, `/srv/${i}`, i), (i) => b.exports.get(`n${i - 2}`) !== undefined],
      [
        (i) => a.membership.leave(`n${i - 3}`),
        (i) => b.membership.member(`n${i - 3}`)?.state === 'down' && b.exports.get(`n${i - 3}`) === undefined,
      ],
      [(i) => a.membership.forget(`n${i - 4}`), (i) => b.membership.member(`n${i - 4}`) === undefined],
    ];
    const ms: number[] = [];
    for (let i = 0; i < 200; i++) {
      const [change, applied] = changes[i % changes.length]!;
      const done = new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`change ${i} not applied on B within 5 s`)), 5000);
        seen = () => {
          clearTimeout(t);
          seen = null;
          resolve();
        };
      });
      until = () => applied(i);
      const t0 = performance.now();
      await change(i);
      check();
      await done;
      ms.push(performance.now() - t0);
    }
    ms.sort((x, y) => x - y);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(1);
    console.log(
      `etcd watch apply latency, change through A until applied on B, ${ms.length} changes: p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms (target p99 < 100 ms)`,
    );
    expect(ms).toHaveLength(200);
    expect(view(a)).toEqual(view(b));
  }, 60_000);
});
