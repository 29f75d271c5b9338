import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate } from '@onehost/control';
import { type EtcdCluster, startEtcdCluster } from '@onehost/lab';
import { waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';

// The gateway with `control.store: { etcd }`: a 3-member etcd with mutual TLS (certificates from the
// cluster CA) on the gateway host's loopback. The nodes join, the gateway restarts, and the new gateway
// knows them from etcd alone (no store file): each keeps its id and port block. The store has nothing
// to do with the data path: this runs in kernel mode only.

const NET = '127.0.79';
let c: Cluster | undefined;
let etcd: EtcdCluster | undefined;

const withEtcdStore = (yaml: string): string =>
  yaml.replace(
    /^ {2}store: .*$/m,
    [
      '  store:',
      '    etcd:',
      `      endpoints: [https://${NET}.1:2379, https://${NET}.2:2379, https://${NET}.3:2379]`,
      '      tls: { ca: pki/ca.pem, cert: pki/gw.pem, key: pki/gw-key.pem }',
      '      prefix: /onehost/lab/',
    ].join('\n'),
  );

beforeAll(async () => {
  if (DATAPATH !== 'kernel') return;
  c = await startCluster({
    gatewayYaml: withEtcdStore,
    beforeGateway: async (lab, ca) => {
      etcd = await startEtcdCluster({
        caPem: ca.certPem,
        issue: (name, hosts) => issueCertificate(ca, { role: 'gateway', name, hosts }),
        netns: lab.names.gateway,
        net: NET,
        dir: join(lab.runDir, 'etcd'),
      });
    },
  });
}, 120_000);

afterAll(async () => {
  await etcd?.stop();
  await c?.stop();
});

type Held = Map<string, { id: number; block: { lo: number; hi: number }; state: string }>;
const held = async (cl: Cluster): Promise<Held> =>
  new Map((await cl.members()).map((m) => [m.name, { id: m.id, block: m.block, state: m.state }]));

describe.skipIf(DATAPATH !== 'kernel')('the gateway on an etcd store', () => {
  it('the nodes keep their ids and blocks across a gateway restart', { timeout: 60_000 }, async () => {
    const cl = c!;
    const before = await held(cl);
    expect([...before.keys()].sort()).toEqual(['n1', 'n2', 'n3']);
    for (const m of before.values()) expect(m.state).toBe('active');
    expect(existsSync(join(cl.dir, 'gateway-store.json'))).toBe(false);

    await cl.gateway.stop(5000);
    await cl.startGateway();
    // what the new gateway knows before any node is back came from etcd
    const loaded = await held(cl);
    for (const [name, m] of before) expect(loaded.get(name)).toMatchObject({ id: m.id, block: m.block });

    await waitFor(async () => [...(await held(cl)).values()].every((m) => m.state === 'active'), {
      what: 'every node active again',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    const after = await held(cl);
    for (const [name, m] of before) expect(after.get(name)).toMatchObject({ id: m.id, block: m.block });
    expect(existsSync(join(cl.dir, 'gateway-store.json'))).toBe(false);
    await cl.inStep();
    // the cluster still serves through the restarted gateway
    expect(await cl.curl('c1', `http://${cl.vip}/`)).toMatch(/^n[123]\n$/);
  });

  it('with etcd down a drain fails UNAVAILABLE naming the store; once etcd is back it works', {
    timeout: 60_000,
  }, async () => {
    const cl = c!;
    const e = etcd!;
    // a member without quorum waits for a leader: its SIGKILL comes after a second
    await Promise.all([0, 1, 2].map((i) => e.stopMember(i, 1000)));
    try {
      const err = await cl.ctl(['drain', 'n1']).then(
        () => null,
        (x: Error) => x.message,
      );
      expect(err).toMatch(/UNAVAILABLE/);
      expect(err).toMatch(
        /etcd store https:\/\/127\.0\.79\.1:2379.*prefix \/onehost\/lab\/.*writing member n1: etcd unreachable/,
      );
      // the members the gateway knows are still there to read, and traffic still flows
      expect((await held(cl)).size).toBe(3);
      expect(await cl.curl('c1', `http://${cl.vip}/`)).toMatch(/^n[123]\n$/);
    } finally {
      await e.startMembers([0, 1, 2]);
    }
    // the same gateway, no restart
    await waitFor(async () => cl.ctl(['undrain', 'n1']).then(() => true), {
      what: 'an undrain through the etcd store',
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    expect((await held(cl)).get('n1')?.state).toBe('active');
  });
});
