import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, DATAPATH, startCluster } from './cluster.js';
import { withVip6 } from './lab-yaml.js';
import { sendVxlan, tcpProbe } from './outside-probes.js';

// Exposure over IPv6 (issue 16 with issue 15, item 7): the host filter's ip6 twin, tried from the
// outside namespaces. c1 (2001:db8:113::10) is an ordinary client, c2 (2001:db8:113::11) is on the
// management list by its IPv6 address only. Addresses are the documentation prefix (RFC 3849), inside
// the lab's namespaces.

let c: Cluster;

const VIP6 = '2001:db8:113::80';
const GW6 = '2001:db8:113::1';
/** n1's own IPv6 address on the interconnect (the lab's interconnect is IPv4: the test adds it) */
const NODE6 = { prefix: '2001:db8:18::/64', gateway: '2001:db8:18::1', n1: '2001:db8:18::11' };
/** the gateway's control and metrics (status) ports in the lab's gateway.yaml */
const PORTS = [7443, 9400];

/**
 * LISTENER6 stands in for a service of the gateway host on `::` (the gateway's own listeners take IPv4
 * addresses only): IPv6-only sockets on the given ports, so that only the filter keeps a client out.
 */
const LISTENER6 = `
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('::', port)); s.listen(64)
    while True: s.accept()[0].close()
ts = [threading.Thread(target=serve, args=(int(p),), daemon=True) for p in sys.argv[1:]]
for t in ts: t.start()
print('listening', flush=True)
threading.Event().wait()
`;

const probe = (host: string, address: string, port: number) => tcpProbe(c.lab, host, address, port);

const hostDrops = (reason: string) => c.metric('onehost_host_drops_total', { reason });
/** full writes an IPv6 address with every group's four digits, as the conntrack table does */
function full(a: string): string {
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  return [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t]
    .map((g) => g.padStart(4, '0'))
    .join(':');
}

/** the gateway host's conntrack table (this kernel's procfs view; no conntrack tool here) */
const conntrack = async () => (await c.lab.exec('gw', 'cat', ['/proc/net/nf_conntrack'])).stdout;

beforeAll(async () => {
  c = await startCluster({
    nodes: 1,
    ipv6: true,
    gatewayYaml: (y) =>
      withVip6(y, VIP6).replace(
        /^(\s*allow: \[)[^\]]*\]/m,
        (_m, head: string) => `${head}2001:db8:113::11/128]`,
      ),
  });
  // n1's own IPv6 address, reachable through the gateway host's kernel (as the bench's baseline)
  await c.lab.exec('gw', 'ip', ['-6', 'addr', 'add', `${NODE6.gateway}/64`, 'dev', 'eth1', 'nodad']);
  await c.lab.exec('n1', 'ip', ['-6', 'addr', 'add', `${NODE6.n1}/64`, 'dev', 'eth0', 'nodad']);
  for (const client of ['c1', 'c2'])
    await c.lab.exec(client, 'ip', ['-6', 'route', 'add', NODE6.prefix, 'via', GW6]);
  const listener = c.lab.spawn('gw', 'python3', ['-c', LISTENER6, ...PORTS.map(String)]);
  await listener.waitForOutput('listening');
}, 180_000);
afterAll(async () => {
  await c?.stop();
});

describe(`the gateway seen from outside over IPv6 (${DATAPATH})`, () => {
  it('the filter has an ip6 twin of the IPv4 table', async () => {
    const tables = (await c.lab.exec('gw', 'nft', ['list', 'tables'])).stdout;
    expect(tables).toContain('table ip onehost_gateway');
    expect(tables).toContain('table ip6 onehost_gateway');
  });

  it('IPv6 cluster traffic works and is not tracked, while the host’s own IPv6 connections are', {
    timeout: 60_000,
  }, async () => {
    for (let i = 0; i < 3; i++) expect((await c.curl('c1', `http://[${VIP6}]/`, ['-6'])).trim()).toBe('n1');
    await c.lab.exec('c1', 'ping', ['-6', '-c', '1', '-W', '3', VIP6]);
    // a management connection to the host is tracked: IPv6 conntrack runs in the gateway's namespace
    expect(await probe('c2', GW6, PORTS[0]!)).toBe('open');
    const table = await conntrack();
    expect(
      table.split('\n').some((l) => l.includes(`src=${full('2001:db8:113::11')} dst=${full(GW6)} `)),
    ).toBe(true);
    expect(table.split('\n').filter((l) => l.includes(full(VIP6)))).toEqual([]);
  });

  it('an ordinary client reaches neither the control nor the metrics (status) port, each try counted', {
    timeout: 60_000,
  }, async () => {
    const before = await hostDrops('outside_to_host');
    const tries = [GW6, VIP6].flatMap((a) => PORTS.map((p) => ({ a, p })));
    const seen = await Promise.all(tries.map(async ({ a, p }) => `[${a}]:${p} ${await probe('c1', a, p)}`));
    expect(seen).toEqual(tries.map(({ a, p }) => `[${a}]:${p} timeout`));
    // an echo request to the host's own address is the host's too (to the cluster address it is answered)
    const ping = await c.lab.exec('c1', 'ping', ['-6', '-c', '1', '-W', '1', GW6]).then(
      () => 'answered',
      () => 'no answer',
    );
    expect(ping).toBe('no answer');
    expect((await hostDrops('outside_to_host')) - before).toBeGreaterThanOrEqual(5);
  });

  it('a management source allowed by its IPv6 address reaches them; its IPv4 address is not listed', async () => {
    expect(await probe('c2', GW6, 7443)).toBe('open');
    expect(await probe('c2', GW6, 9400)).toBe('open');
    // the management list holds c2's IPv6 address only: the IPv4 table keeps it out
    expect(await probe('c2', '198.18.0.1', 9400)).toBe('timeout');
  });

  it('VXLAN over IPv6 from outside is dropped and counted, from a management source too', async () => {
    if (DATAPATH === 'kernel') {
      // the collect-metadata VXLAN device listens on IPv6 as well: without the filter it would decapsulate
      const sockets = (await c.lab.exec('gw', 'ss', ['-uan', 'sport = :4789'])).stdout;
      expect(sockets).toMatch(/\[::\]:4789|\*:4789/);
    }
    const before = await hostDrops('outside_vxlan');
    for (const address of [GW6, VIP6]) await sendVxlan(c.lab, 'c1', address, 3);
    await sendVxlan(c.lab, 'c2', GW6, 3);
    // forwarded toward a node's own IPv6 address: dropped too, management included
    await sendVxlan(c.lab, 'c2', NODE6.n1, 3);
    expect((await hostDrops('outside_vxlan')) - before).toBe(12);
  });

  it("a node's own IPv6 address is the management network's, and only a registered node answers from it", {
    timeout: 60_000,
  }, async () => {
    const [toNodes, unregistered] = [
      await hostDrops('outside_to_nodes'),
      await hostDrops('unregistered_node'),
    ];
    expect(await probe('c1', NODE6.n1, 80)).toBe('timeout');
    expect((await hostDrops('outside_to_nodes')) - toNodes).toBeGreaterThanOrEqual(1);
    // c2 passes, but n1's answer from an address onehost does not know is not forwarded out
    expect(await probe('c2', NODE6.n1, 80)).toBe('timeout');
    expect((await hostDrops('unregistered_node')) - unregistered).toBeGreaterThanOrEqual(1);
    // registered (agents register IPv4 addresses only: by hand, as the bench does), it answers
    await c.lab.exec('gw', 'nft', ['add', 'element', 'ip6', 'onehost_gateway', 'nodes6', `{ ${NODE6.n1} }`]);
    // (the gateway solicits c2 for n1's forwarded answer from its outside link-local: the lab's
    // interface had none, so the gateway gave it its MAC's)
    expect(await probe('c2', NODE6.n1, 80)).toBe('open');
    expect((await c.curl('c2', `http://[${NODE6.n1}]/`, ['-6'])).trim()).toBe('n1');
  });
});
