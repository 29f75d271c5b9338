import type { EtcdCluster } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import type { Lease } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectGateway, connectMembership, type GatewayConnection } from './client.js';
import { ControlError } from './control-error.js';
import {
  type Announcer,
  EtcdGatewayRegistry,
  type GatewayRecord,
  type GatewaySelf,
  LocalGatewayRegistry,
  readGatewayRecord,
  STALE_AFTER_MS,
  staleness,
} from './gateway-registry.js';
import { EtcdStore } from './store/etcd-store.js';
import { startTestEtcd } from './testing/etcd.js';
import { joinRequest, startTestServer, tlsOf } from './testing/harness.js';
import { makeTestPki, type TestPki } from './testing/pki.js';

const record = (o: Partial<GatewayRecord> = {}): GatewayRecord => ({
  name: 'gw1',
  address: '198.18.0.1:7443',
  datapath: 'kernel',
  announcement: 'off',
  health: 'ready',
  appliedRevision: 10,
  switchVersion: 3,
  startedUnixMs: 1000,
  updatedUnixMs: 2000,
  ...o,
});

describe('gateway records', () => {
  it('reads a record back and names the field at fault', () => {
    const r = record();
    expect(readGatewayRecord('/p/gateways/gw1', JSON.stringify({ ...r, newer: 1 }))).toEqual(r);
    expect(() => readGatewayRecord('/p/gateways/gw1', '{')).toThrow(/^\/p\/gateways\/gw1: not JSON/);
    expect(() => readGatewayRecord('k', JSON.stringify({ ...r, health: 'ok' }))).toThrow(
      'k: health: must be one of starting, ready, draining',
    );
    expect(() => readGatewayRecord('k', JSON.stringify({ ...r, appliedRevision: -1 }))).toThrow(
      'k: appliedRevision: must be a whole number ≥ 0',
    );
    expect(() => readGatewayRecord('k', JSON.stringify({ ...r, address: 7 }))).toThrow(
      'k: address: must be a string',
    );
  });

  it('is stale only when behind the store and unchanged for a while', () => {
    const r = record({ appliedRevision: 10, updatedUnixMs: 0 });
    expect(staleness(r, 10, 60_000)).toBe('');
    expect(staleness(r, 12, STALE_AFTER_MS)).toBe(''); // a live gateway rewrites it within a second
    expect(staleness(r, 12, 60_000)).toBe("applied revision 10 behind the store's 12 for 60 s");
  });
});

/** FakeAnnouncer records the drains it was asked for. */
class FakeAnnouncer implements Announcer {
  state = 'announced';
  drains: boolean[] = [];
  announcementState(): string {
    return this.state;
  }
  drain(drained: boolean): void {
    this.drains.push(drained);
    this.state = drained ? 'withdrawn' : 'announced';
  }
}

describe('LocalGatewayRegistry (embedded store)', () => {
  it('lists this gateway alone and drains it by name', async () => {
    const self: GatewaySelf = { ready: false, appliedRevision: 0, switchVersion: 1 };
    const a = new FakeAnnouncer();
    const reg = new LocalGatewayRegistry({
      name: 'gw1',
      address: '127.0.0.1:7443',
      datapath: 'tun',
      self: () => self,
      announcer: a,
    });
    await reg.start();
    let list = await reg.list();
    expect(list.storeRevision).toBe(0);
    expect(list.gateways).toMatchObject([
      { name: 'gw1', health: 'starting', announcement: 'announced', drained: false, stale: '' },
    ]);
    self.ready = true;
    expect((await reg.list()).gateways[0]?.health).toBe('ready');
    await expect(reg.setDrained('gw2', true)).rejects.toThrow(
      new ControlError('NOT_FOUND', 'gateway gw2: not registered'),
    );
    await reg.setDrained('gw1', true);
    list = await reg.list();
    expect(list.gateways[0]).toMatchObject({ health: 'draining', announcement: 'withdrawn', drained: true });
    await reg.setDrained('gw1', false);
    expect(a.drains).toEqual([true, false]);
    expect((await reg.list()).gateways[0]?.health).toBe('ready');
    // an announcer that throws is logged, not a crash
    a.announcementState = () => {
      throw new Error('bgp daemon gone');
    };
    reg.changed();
    await reg.close();
  });
});

// Against a real 3-member etcd cluster with mutual TLS, as etcd-store.test.ts.
describe('EtcdGatewayRegistry on a 3-member etcd', () => {
  let pki: TestPki;
  let etcd: EtcdCluster;
  let prefixes = 0;
  const open: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    pki = await makeTestPki();
    etcd = await startTestEtcd(pki);
  }, 60_000);

  afterAll(async () => {
    // registries before the stores whose clients they share
    for (const o of open.reverse()) await o.close();
    await etcd?.stop();
  });

  const newPrefix = () => `/onehost/registry${++prefixes}/`;

  function store(prefix: string): EtcdStore {
    const s = new EtcdStore({
      endpoints: etcd.endpoints,
      tls: { caPem: pki.ca.certPem, certPem: pki.gateway.certPem, keyPem: pki.gateway.keyPem },
      prefix,
    });
    open.push(s);
    return s;
  }

  function registry(s: EtcdStore, name: string, self: GatewaySelf, announcer?: Announcer) {
    const r = new EtcdGatewayRegistry({
      name,
      address: `198.18.0.${name.slice(2)}:7443`,
      datapath: 'kernel',
      self: () => self,
      client: s.etcd,
      keys: s.keys,
      ...(announcer !== undefined ? { announcer } : {}),
      minWriteIntervalMs: 200,
    });
    open.push(r);
    return r;
  }

  it('lists every registered gateway the same from each, and drops one that stops', async () => {
    const prefix = newPrefix();
    const [s1, s2] = [store(prefix), store(prefix)];
    await Promise.all([s1.load(), s2.load()]);
    const self1 = { ready: true, appliedRevision: s1.appliedRevision, switchVersion: 1 };
    const self2 = { ready: false, appliedRevision: s2.appliedRevision, switchVersion: 1 };
    const r1 = registry(s1, 'gw1', self1);
    const r2 = registry(s2, 'gw2', self2);
    await Promise.all([r1.start(), r2.start()]);
    const l1 = await r1.list();
    expect(l1.gateways.map((g) => [g.name, g.health, g.address, g.stale])).toEqual([
      ['gw1', 'ready', '198.18.0.1:7443', ''],
      ['gw2', 'starting', '198.18.0.2:7443', ''],
    ]);
    expect((await r2.list()).gateways.map((g) => g.name)).toEqual(['gw1', 'gw2']);

    // a change is written once (at most once per interval); no change, no write
    const writes = r2.writes;
    self2.ready = true;
    r2.changed();
    await waitFor(async () => (await r1.list()).gateways[1]?.health === 'ready', {
      timeoutMs: 3000,
      what: "gw2's record saying ready",
    });
    const after = r2.writes;
    expect(after).toBe(writes + 1);
    const check = (r2 as unknown as { check(): Promise<void> }).check.bind(r2);
    for (let i = 0; i < 5; i++) await check();
    expect(r2.writes).toBe(after);

    await r2.close();
    expect((await r1.list()).gateways.map((g) => g.name)).toEqual(['gw1']);
  });

  it('every gateway answers ListGateways the same; records follow the other gateway’s changes', async () => {
    const prefix = newPrefix();
    const gws: GatewayConnection[] = [];
    for (const name of ['gw1', 'gw2']) {
      const s = new EtcdStore({
        endpoints: etcd.endpoints,
        tls: { caPem: pki.ca.certPem, certPem: pki.gateway.certPem, keyPem: pki.gateway.keyPem },
        prefix,
      });
      const reg = new EtcdGatewayRegistry({
        name,
        address: name,
        datapath: 'tun',
        self: () => ({ ready: true, appliedRevision: s.appliedRevision, switchVersion: 1 }),
        client: s.etcd,
        keys: s.keys,
        minWriteIntervalMs: 100,
      });
      // the server closes the store (and the client the registry shares): the registry first
      const server = await startTestServer(pki, {
        store: s,
        gatewayRegistry: reg,
        heartbeatTimeoutMs: 600_000,
      });
      open.push(server, reg);
      await reg.start();
      gws.push(connectGateway(`127.0.0.1:${server.port}`, tlsOf(pki.operator)));
      if (name === 'gw1') {
        const m = connectMembership(`127.0.0.1:${server.port}`, tlsOf(pki.nodes.n1!));
        await m.join(joinRequest('n1', 11));
        m.close();
      }
    }
    const inStep = async () => {
      const lists = await Promise.all(gws.map((g) => g.listGateways()));
      const names = lists.map((l) => l.gateways.map((g) => g.name).join(','));
      const behind = lists[0]!.gateways.filter((g) => g.appliedRevision < lists[0]!.storeRevision);
      return names.every((n) => n === 'gw1,gw2') && lists[0]!.storeRevision > 0 && behind.length === 0
        ? lists
        : null;
    };
    const [a, b] = await waitFor(inStep, { timeoutMs: 5000, what: 'both gateways listed, in step' });
    expect(a!.gateways.map((g) => [g.name, g.health, g.stale])).toEqual([
      ['gw1', 'ready', ''],
      ['gw2', 'ready', ''],
    ]);
    expect(b!.storeRevision).toBe(a!.storeRevision);
    for (const g of gws) g.close();
  });

  it('reports the applied revision and marks a gateway that lags as stale', async () => {
    const prefix = newPrefix();
    const s = store(prefix);
    await s.load();
    await s.watch(() => undefined);
    const self = { ready: true, appliedRevision: 0, switchVersion: 1 };
    let now = Date.now();
    const r = new EtcdGatewayRegistry({
      name: 'gw1',
      address: 'a:1',
      datapath: 'tun',
      self: () => self,
      client: s.etcd,
      keys: s.keys,
      now: () => now,
    });
    open.push(r);
    await r.start();
    const other = store(prefix);
    await other.load();
    await other.putExports({
      nodeName: 'n1',
      mountPorts: {},
      exports: [],
      handleLayout: { offset: 0, length: 4, endian: 'big' },
      registeredUnixMs: 1,
    });
    // this gateway's store sees the change; the record (frozen at 0 here) does not follow it
    await waitFor(() => s.appliedRevision > 0, { timeoutMs: 3000, what: 'the watch applying the change' });
    const list = await r.list();
    expect(list.storeRevision).toBe(s.appliedRevision);
    expect(list.gateways[0]?.stale).toBe('');
    now += STALE_AFTER_MS + 1000;
    expect((await r.list()).gateways[0]?.stale).toMatch(
      /^applied revision 0 behind the store's \d+ for 4 s$/,
    );
  });

  it('follows its drain flag, and refuses to drain a gateway not registered', async () => {
    const prefix = newPrefix();
    const s = store(prefix);
    await s.load();
    const a = new FakeAnnouncer();
    const r = registry(s, 'gw1', { ready: true, appliedRevision: 1, switchVersion: 1 }, a);
    await r.start();
    await expect(r.setDrained('gw9', true)).rejects.toThrow('gateway gw9: not registered');
    await r.setDrained('gw1', true);
    await waitFor(
      async () => {
        const g = (await r.list()).gateways[0];
        return g?.health === 'draining' && g.announcement === 'withdrawn' && g.drained;
      },
      { timeoutMs: 3000, what: 'gw1 draining' },
    );
    await r.setDrained('gw1', false);
    await waitFor(async () => (await r.list()).gateways[0]?.health === 'ready', {
      timeoutMs: 3000,
      what: 'gw1 ready again',
    });
    expect(a.drains).toEqual([true, false]);

    // a gateway started with the flag set starts drained
    await r.setDrained('gw1', true);
    await r.close();
    const b = new FakeAnnouncer();
    const again = registry(s, 'gw1', { ready: true, appliedRevision: 1, switchVersion: 1 }, b);
    await again.start();
    expect(b.drains).toEqual([true]);
    expect((await again.list()).gateways[0]?.health).toBe('draining');
  });

  it('registers again under a new lease when etcd drops its lease', async () => {
    const prefix = newPrefix();
    const s = store(prefix);
    await s.load();
    const r = registry(s, 'gw1', { ready: true, appliedRevision: 1, switchVersion: 1 });
    await r.start();
    const lease = (r as unknown as { lease: Lease }).lease;
    // as when etcd was away longer than the TTL: the lease is gone, and the record with it
    await s.etcd.leaseClient.leaseRevoke({ ID: await lease.grant() });
    expect((await r.list()).gateways).toEqual([]);
    await waitFor(async () => (await r.list()).gateways.length === 1, {
      timeoutMs: 5000,
      what: 'gw1 registered again',
    });
    expect(r.leasesLost).toBe(1);
  });

  it('leaves the registry within the TTL when its keep-alives stop (a killed gateway)', async () => {
    const prefix = newPrefix();
    const s = store(prefix);
    await s.load();
    const r = registry(s, 'gw1', { ready: true, appliedRevision: 1, switchVersion: 1 });
    await r.start();
    const watcher = store(prefix);
    await watcher.load();
    const other = registry(watcher, 'gw2', { ready: true, appliedRevision: 1, switchVersion: 1 });
    await other.start();
    // no revoke: the keep-alives stop, as when the process dies
    (r as unknown as { lease: Lease }).lease.release();
    (r as unknown as { closed: boolean }).closed = true;
    const t0 = Date.now();
    await waitFor(async () => (await other.list()).gateways.every((g) => g.name !== 'gw1'), {
      timeoutMs: 5000,
      what: 'gw1 gone from the registry',
    });
    // TTL 2 s, and etcd checks expiry every 500 ms
    expect(Date.now() - t0).toBeLessThan(3500);
  });
});
