import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { MemberState, MembershipClient } from '@onehost/proto';
import { waitFor } from '@onehost/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth, connectMembership, type MembershipConnection } from './client.js';
import type { ControlServer } from './server.js';
import { Beats, codeOf, joinRequest, startTestServer, tlsOf, Watch } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';

let pki: TestPki;
let dir: string;
const open: { close(): unknown }[] = [];
const track = <T extends { close(): unknown }>(x: T): T => {
  open.push(x);
  return x;
};

beforeAll(async () => {
  pki = await makeTestPki();
  dir = await mkdtemp(join(tmpdir(), 'onehost-control-'));
});
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const target = (s: ControlServer) => `127.0.0.1:${s.port}`;
const node = (s: ControlServer, name: 'n1' | 'n2' | 'n3') =>
  track(connectMembership(target(s), tlsOf(pki.nodes[name])));
const operator = (s: ControlServer) => track(connectMembership(target(s), tlsOf(pki.operator)));

describe('join and the store', () => {
  it('answers a join with id, block, cluster addresses, VXLAN parameters and heartbeat timing', async () => {
    const s = track(await startTestServer(pki));
    const r = await node(s, 'n1').join(joinRequest('n1', 11));
    expect(r).toEqual({
      nodeId: 1,
      clusterAddresses: [
        { network: 'outside', address: '203.0.113.10', isDefault: true },
        { network: 'second', address: '203.0.113.11', isDefault: false },
      ],
      portBlock: { lo: 32768, hi: 33791 },
      vxlan: {
        vni: 4242,
        udpPort: 4789,
        gatewayAddresses: ['198.18.0.1'],
        probeUdpPort: 0,
        probeIntervalMs: 0,
      },
      // the defaults
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 1000,
      interconnectPrefixes: ['198.18.0.0/15'],
      outsideMtu: 1500,
    });
    const r2 = await node(s, 'n2').join(joinRequest('n2', 12));
    expect([r2.nodeId, r2.portBlock]).toEqual([2, { lo: 33792, hi: 34815 }]);
    expect(s.counters.get('Membership/Join', 'OK')).toBe(2);
  });

  it('keeps node ids and port blocks across a restart on the same store file', async () => {
    const storePath = join(dir, 'restart.json');
    const first = await startTestServer(pki, { storePath, blockSize: 512 });
    const a = await node(first, 'n1').join(joinRequest('n1', 11));
    const b = await node(first, 'n2').join(joinRequest('n2', 12));
    for (const x of open.splice(0)) x.close();
    await first.close();
    expect(JSON.parse(await readFile(storePath, 'utf8')).members).toHaveLength(2);

    const second = track(await startTestServer(pki, { storePath, blockSize: 512 }));
    const members = await operator(second).listMembers();
    expect(members.map((m) => [m.nodeName, m.state, m.downReason])).toEqual([
      ['n1', MemberState.MEMBER_STATE_DOWN, 'gateway restart'],
      ['n2', MemberState.MEMBER_STATE_DOWN, 'gateway restart'],
    ]);
    // n2 comes back first: it still gets its own id and block, not n1's.
    const b2 = await node(second, 'n2').join(joinRequest('n2', 12));
    const a2 = await node(second, 'n1').join(joinRequest('n1', 11));
    const c = await node(second, 'n3').join(joinRequest('n3', 13));
    expect([b2.nodeId, b2.portBlock, a2.nodeId, a2.portBlock]).toEqual([
      b.nodeId,
      b.portBlock,
      a.nodeId,
      a.portBlock,
    ]);
    expect([c.nodeId, c.portBlock]).toEqual([3, { lo: 33792, hi: 34303 }]);
  });
});

describe('liveness', () => {
  it('marks a node down within the heartbeat timeout when beats stop, and a rejoin restores it', async () => {
    const s = track(await startTestServer(pki, { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 200 }));
    const watch = new Watch(operator(s).watchMembers(true));
    const n1 = node(s, 'n1');
    const joined = await n1.join(joinRequest('n1', 11));
    const beats = new Beats(n1.heartbeat(), 'n1', joined.nodeId);
    let lastSent = 0;
    let lastAck = 0;
    for (let i = 0; i < 4; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50)); // the agent's beat interval
      lastSent = Date.now();
      beats.beat(true); // with a health update: acknowledged at once, so the test knows when it was taken
      await waitFor(() => beats.acks.length === i + 1, { what: `ack ${i + 1}`, timeoutMs: 2000 });
      lastAck = Date.now();
    }
    expect(beats.acks.map((a) => [a.sequence, a.state])).toEqual(
      [1, 2, 3, 4].map((q) => [q, MemberState.MEMBER_STATE_ACTIVE]),
    );
    await waitFor(() => watch.find('down n1') >= 0, { what: 'down n1', timeoutMs: 3000 });
    // The server took the last beat between lastSent and lastAck: not down before the timeout after
    // it, and down soon after (slack for scheduling on a shared machine).
    const downAt = watch.at[watch.find('down n1')]!;
    expect(downAt - lastSent).toBeGreaterThanOrEqual(199);
    expect(downAt - lastAck).toBeLessThan(200 + 250);
    await waitFor(() => beats.status !== null, { what: 'stream status', timeoutMs: 2000 });
    expect(beats.status).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'n1 is down (heartbeat timeout): join again',
    });

    const back = await n1.join(joinRequest('n1', 11));
    expect([back.nodeId, back.portBlock]).toEqual([joined.nodeId, joined.portBlock]);
    await waitFor(() => watch.find('joined n1', watch.find('down n1')) >= 0, { what: 'rejoin event' });
    const m = (await operator(s).listMembers())[0]!;
    expect([m.state, m.downReason]).toEqual([MemberState.MEMBER_STATE_ACTIVE, '']);
    expect(watch.events.slice(0, 4)).toEqual(['synced', 'joined n1', 'down n1', 'joined n1']);
  });

  it('acknowledges the first beat, any with a health update, and otherwise one whenever more than timeout − 2 × interval passed', async () => {
    const s = track(await startTestServer(pki, { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 200 }));
    const n1 = node(s, 'n1');
    const joined = await n1.join(joinRequest('n1', 11));
    const beats = new Beats(n1.heartbeat(), 'n1', joined.nodeId);
    for (let i = 0; i < 12; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50)); // the agent's beat interval
      beats.beat();
    }
    beats.beat(true);
    await waitFor(() => beats.acks.at(-1)?.sequence === 13, {
      what: 'the health update’s ack',
      timeoutMs: 2000,
    });
    const acked = beats.acks.map((a) => Number(a.sequence));
    expect(acked[0]).toBe(1);
    // a beat (50 ms) apart, an ack needs more than 100 ms since the last one: about every other beat
    // (the exact choice, by the server's clock, is AckPolicy's unit test)
    expect(acked.length).toBeLessThan(13);
    expect(beats.status).toBeNull();
  });

  it('marks a node down a heartbeat timeout after its stream closes or is cancelled', async () => {
    const s = track(await startTestServer(pki, { heartbeatTimeoutMs: 300 }));
    const watch = new Watch(operator(s).watchMembers(false));
    for (const [name, how] of [
      ['n1', 'end'],
      ['n2', 'cancel'],
    ] as const) {
      const c = node(s, name);
      const j = await c.join(joinRequest(name, name === 'n1' ? 11 : 12));
      const beats = new Beats(c.heartbeat(), name, j.nodeId);
      beats.beat();
      await waitFor(() => beats.acks.length === 1, { what: `${name} ack` });
      const t0 = Date.now();
      if (how === 'end') beats.stream.end();
      else beats.stream.cancel();
      await waitFor(() => watch.find(`down ${name}`) >= 0, { what: `down ${name}`, timeoutMs: 3000 });
      // down after the timeout since the last beat (an agent may reconnect meanwhile), not at once
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    }
    const members = await operator(s).listMembers();
    expect(members.map((m) => m.downReason)).toEqual(['heartbeat stream closed', 'heartbeat stream closed']);
    // a cancel reaches the server as the end of the stream, or as a cancellation
    const ended =
      s.counters.get('Membership/Heartbeat', 'OK') + s.counters.get('Membership/Heartbeat', 'CANCELLED');
    expect(ended).toBe(2);
  });

  it('refuses a heartbeat stream with a wrong id or from a node that has not joined', async () => {
    const s = track(await startTestServer(pki));
    const n1 = node(s, 'n1');
    const early = new Beats(n1.heartbeat(), 'n1', 1);
    early.beat();
    await waitFor(() => early.status, { what: 'status' });
    expect(early.status).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'node_name: n1 has not joined',
    });
    await n1.join(joinRequest('n1', 11));
    const wrong = new Beats(n1.heartbeat(), 'n1', 5);
    wrong.beat();
    await waitFor(() => wrong.status, { what: 'status' });
    expect(wrong.status).toEqual({ code: status.INVALID_ARGUMENT, details: 'node_id: n1 is node 1, not 5' });
  });

  it('streams leave and drain to watchers, after a snapshot of the members', async () => {
    const s = track(await startTestServer(pki));
    await node(s, 'n1').join(joinRequest('n1', 11));
    const watch = new Watch(operator(s).watchMembers(true));
    await waitFor(() => watch.find('synced') >= 0, { what: 'snapshot' });
    await node(s, 'n2').join(joinRequest('n2', 12));
    await s.membership.drain('n2');
    await node(s, 'n2').leave('n2');
    await waitFor(() => watch.events.length >= 5, { what: 'five events' });
    expect(watch.events).toEqual(['snapshot n1', 'synced', 'joined n2', 'draining n2', 'left n2']);
    watch.cancel();
    await waitFor(() => s.counters.get('Membership/WatchMembers', 'OK') === 1, { what: 'watch counted' });
  });
});

describe('authentication', () => {
  it('refuses a join without a client certificate or with one from another CA at the TLS handshake', async () => {
    const s = track(await startTestServer(pki));
    const bare = track(new MembershipClient(target(s), credentials.createSsl(Buffer.from(pki.ca.certPem))));
    const noCert = await codeOf(
      new Promise((resolve, reject) =>
        bare.join(joinRequest('n1', 11), new Metadata(), { deadline: Date.now() + 5000 }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      ),
    );
    expect(noCert.code).toBe(status.UNAVAILABLE);
    const rogue = track(connectMembership(target(s), { ...tlsOf(pki.rogueN1), caPem: pki.ca.certPem }));
    expect((await codeOf(rogue.join(joinRequest('n1', 11)))).code).toBe(status.UNAVAILABLE);
    expect(s.membership.members()).toEqual([]);
  });

  it('lets a node join only as itself and keeps operator calls for operators', async () => {
    const s = track(await startTestServer(pki));
    expect(await codeOf(node(s, 'n2').join(joinRequest('n1', 11)))).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'node_name: the certificate is for node n2, not n1',
    });
    expect(await codeOf(operator(s).join(joinRequest('n1', 11)))).toEqual({
      code: status.PERMISSION_DENIED,
      details: 'needs a node certificate, not operator alice',
    });
    expect((await codeOf(node(s, 'n1').listMembers())).code).toBe(status.PERMISSION_DENIED);
    expect((await codeOf(node(s, 'n1').forgetMember('n1'))).code).toBe(status.PERMISSION_DENIED);
    await node(s, 'n1').join(joinRequest('n1', 11));
    expect((await codeOf(node(s, 'n2').leave('n1'))).code).toBe(status.PERMISSION_DENIED);
    const hb = new Beats(node(s, 'n2').heartbeat(), 'n1', 1);
    hb.beat();
    await waitFor(() => hb.status, { what: 'status' });
    expect(hb.status?.code).toBe(status.PERMISSION_DENIED);
    expect(s.counters.get('Membership/Join', 'PERMISSION_DENIED')).toBe(2);
    expect(s.membership.members().map((m) => m.name)).toEqual(['n1']);
  });

  it('checks the gateway certificate against the cluster CA', async () => {
    const s = track(await startTestServer(pki));
    const c = track(connectMembership(target(s), { ...tlsOf(pki.nodes.n1), caPem: pki.rogueN1.caPem }));
    expect((await codeOf(c.join(joinRequest('n1', 11)))).code).toBe(status.UNAVAILABLE);
  });
});

describe('validation', () => {
  const cases: [string, Partial<ReturnType<typeof joinRequest>>, string][] = [
    ['address', { internalAddress: '198.18.0.300' }, 'internal_address: not an IPv4 address: "198.18.0.300"'],
    ['empty address', { internalAddress: '' }, 'internal_address: required'],
    [
      'outside the interconnect',
      { internalAddress: '203.0.113.5' },
      'internal_address: 203.0.113.5 is outside the interconnect (198.18.0.0/15)',
    ],
    [
      'mac',
      { vxlanMac: '02:00:5e:10:00' },
      'vxlan_mac: not a MAC address (aa:bb:cc:dd:ee:ff): "02:00:5e:10:00"',
    ],
    ['multicast mac', { vxlanMac: '01:00:5e:10:00:01' }, 'vxlan_mac: multicast: 01:00:5e:10:00:01'],
    ['capability', { capabilities: ['has space'] }, 'capabilities[0]: not a capability tag: "has space"'],
    ['name', { nodeName: 'N1!' }, 'node_name: not a node name (DNS label, lowercase): "N1!"'],
  ];
  it.each(cases)('refuses a join with a bad %s naming the field', async (_what, change, details) => {
    const s = track(await startTestServer(pki));
    expect(await codeOf(node(s, 'n1').join({ ...joinRequest('n1', 11), ...change }))).toEqual({
      code: status.INVALID_ARGUMENT,
      details,
    });
    expect(s.counters.get('Membership/Join', 'INVALID_ARGUMENT')).toBe(1);
  });
});

describe('health and operator calls', () => {
  it('reports SERVING for the server and each service, NOT_SERVING when told', async () => {
    const s = track(await startTestServer(pki));
    const tls = tlsOf(pki.operator);
    expect(await checkHealth(target(s), tls)).toBe('SERVING');
    expect(await checkHealth(target(s), tls, 'onehost.v1.Membership')).toBe('SERVING');
    expect((await codeOf(checkHealth(target(s), tls, 'no.such.Service'))).code).toBe(status.NOT_FOUND);
    s.setServing(false);
    expect(await checkHealth(target(s), tls, 'onehost.v1.Switch')).toBe('NOT_SERVING');
  });

  it('forgets a down node for good when an operator asks', async () => {
    const s = track(await startTestServer(pki));
    await node(s, 'n1').join(joinRequest('n1', 11));
    const op: MembershipConnection = operator(s);
    expect((await codeOf(op.forgetMember('n1'))).details).toBe(
      'n1 is active: only a down node can be forgotten',
    );
    await node(s, 'n1').leave('n1');
    await op.forgetMember('n1');
    expect(await op.listMembers()).toEqual([]);
    expect((await node(s, 'n1').join(joinRequest('n1', 11))).nodeId).toBe(2);
  });
});
