import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { sendVxlan, tcpProbe } from './outside-probes.js';

// Exposure (issue 15, item 7), tried from the outside namespaces: c1 is an ordinary client, c2
// (203.0.113.11) is on the lab's management list. The gateway's control, metrics and status ports and
// the nodes' own addresses are the management network's; VXLAN from outside is dropped for everyone.

let c: Cluster;

const GW_INSIDE = '198.18.0.1';
const GW_OUTSIDE = '203.0.113.1';

beforeAll(async () => {
  c = await startCluster({ nodes: 1 });
}, 120_000);
afterAll(async () => {
  await c?.stop();
});

const probe = (host: string, address: string, port: number) => tcpProbe(c.lab, host, address, port);

const hostDrops = (reason: string) => c.metric('onehost_host_drops_total', { reason });

describe(`the gateway seen from outside (${DATAPATH})`, () => {
  it('the cluster address still works: HTTP to a node, ping answered', async () => {
    expect((await c.curl('c1', `http://${c.vip}/`)).trim()).toBe('n1');
    await c.lab.exec('c1', 'ping', ['-c', '1', '-W', '3', c.vip]);
  });

  it('an ordinary client reaches neither the control, metrics nor status port, and each try is counted', {
    timeout: 60_000,
  }, async () => {
    const before = await hostDrops('outside_to_host');
    const tries = [GW_INSIDE, GW_OUTSIDE, c.vip].flatMap((a) => [7443, 9400].map((p) => `${a}:${p}`));
    const seen = await Promise.all(
      tries.map(async (t) => `${t} ${await probe('c1', t.split(':')[0]!, Number(t.split(':')[1]))}`),
    );
    expect(seen).toEqual(tries.map((t) => `${t} timeout`));
    const status = await c.lab
      .exec('c1', 'curl', ['-sS', '--connect-timeout', '2', '-m', '3', `http://${GW_INSIDE}:9400/status`])
      .then(
        () => 'answered',
        () => 'no answer',
      );
    expect(status).toBe('no answer');
    // one SYN per try at least (7 tries); the ones to the cluster address are the host-port rule's
    expect((await hostDrops('outside_to_host')) - before).toBeGreaterThanOrEqual(7);
  });

  it('a management source reaches them', async () => {
    expect(await probe('c2', GW_INSIDE, 7443)).toBe('open');
    expect(await c.curl('c2', `http://${GW_INSIDE}:9400/metrics`)).toContain('onehost_host_drops_total');
    expect(await c.curl('c2', `http://${GW_INSIDE}:9400/status/state`)).toContain('"members"');
  });

  it('VXLAN from outside is dropped and counted, from a management source too', async () => {
    const before = await hostDrops('outside_vxlan');
    for (const address of [GW_INSIDE, GW_OUTSIDE, c.vip]) await sendVxlan(c.lab, 'c1', address, 3);
    await sendVxlan(c.lab, 'c2', GW_INSIDE, 3);
    // a management source may reach a node's own address, but not its VXLAN port
    await sendVxlan(c.lab, 'c2', c.lab.addresses.nodes[0]!, 3);
    expect((await hostDrops('outside_vxlan')) - before).toBe(15);
  });

  it("a node's own address is the management network's", async () => {
    const node = c.lab.addresses.nodes[0]!;
    const before = await hostDrops('outside_to_nodes');
    expect(await probe('c1', node, 80)).toBe('timeout');
    expect((await hostDrops('outside_to_nodes')) - before).toBeGreaterThanOrEqual(1);
    expect((await c.curl('c2', `http://${node}/`)).trim()).toBe('n1');
  });
});
