import { Ipv4View, ipv4ToString, OK, PacketSummary, UdpView, VxlanView } from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture } from './capture.js';
import { type Cluster, startCluster } from './cluster.js';

let c: Cluster;
beforeAll(async () => {
  c = await startCluster();
});
afterAll(async () => {
  await c?.stop();
});

/** the gateway's default `probe.port` */
const PROBE_PORT = 7473;

describe('the cluster as one host', () => {
  it('round-robins HTTP across the three nodes through one address', async () => {
    const pages: string[] = [];
    for (let i = 0; i < 9; i++) pages.push((await c.curl('c1', `http://${c.vip}/`)).trim());
    expect(new Set(pages)).toEqual(new Set(['n1', 'n2', 'n3']));
    // round robin (Fig. 10): every window of three is the three nodes, in a fixed rotation
    for (let i = 3; i < pages.length; i++) expect(pages[i]).toBe(pages[i - 3]);
  });

  it('the client only ever sees the cluster address, and the gateway never rewrites the destination', async () => {
    const outside = await capture(c.lab, 'c1', 'eth0', 'tcp port 80', 'outside');
    const inside = await capture(c.lab, 'gw', 'eth1', 'udp port 4789', 'inside');
    const remote = await c.curl('c1', `http://${c.vip}/`, ['-o', '/dev/null', '-w', '%{remote_ip}']);
    expect(remote).toBe(c.vip);
    const seen = await outside.packets();
    const encapsulated = await inside.packets();
    expect(seen.length).toBeGreaterThanOrEqual(6);
    const s = new PacketSummary();
    for (const p of seen) {
      expect(s.read(p, 0, p.length)).toBe(OK);
      const peers = [ipv4ToString(s.src), ipv4ToString(s.dst)].sort();
      expect(peers).toEqual([c.lab.addresses.clients[0], c.vip].sort());
    }
    // Inside, each client packet travels in VXLAN to a node's internal address with its destination intact.
    const ip = new Ipv4View();
    const udp = new UdpView();
    const vx = new VxlanView();
    let inner = 0;
    for (const p of encapsulated) {
      expect(ip.bind(p)).toBe(OK);
      expect(c.lab.addresses.nodes).toContain(ipv4ToString(ip.dst));
      expect(ipv4ToString(ip.src)).toBe(c.lab.addresses.gateway.inside);
      expect(udp.bind(p, ip.payloadOffset, ip.payloadLength)).toBe(OK);
      expect(vx.bind(p, udp.payloadOffset, udp.payloadLength)).toBe(OK);
      expect(s.read(p, vx.innerOffset, vx.innerLength)).toBe(OK);
      expect(ipv4ToString(s.dst)).toBe(c.vip);
      // the gateway's data-path probes (docs/gateway.md) travel the same way, from its own address
      if (ipv4ToString(s.src) === c.lab.addresses.gateway.inside && s.dstPort === PROBE_PORT) continue;
      expect(s.dstPort).toBe(80);
      inner++;
    }
    expect(inner).toBeGreaterThanOrEqual(3);
  });

  it('a port bound to one node by a fixed entry always reaches that node', async () => {
    // tcp/2222 is fixed to n1 in the lab config; nothing listens there, so n1 itself answers with RST:
    // the client sees "connection refused" from the cluster address rather than a timeout.
    for (let i = 0; i < 3; i++) {
      const r = await c.lab.exec('c1', 'curl', ['-sS', '--max-time', '3', `http://${c.vip}:2222/`]).then(
        () => 'connected',
        (e: Error) => e.message,
      );
      expect(r).toMatch(/Connection refused|Failed to connect/);
    }
  });

  it('a port with no entry and in no block reaches the gateway host’s own service', async () => {
    expect((await c.curl('c1', `http://${c.vip}:8080/`)).trim()).toBe('gw');
  });

  it('a node’s own address is reachable from outside only from the management list', async () => {
    expect((await c.curl('c2', `http://${c.lab.addresses.nodes[0]}/`)).trim()).toBe('n1');
    await expect(c.curl('c1', `http://${c.lab.addresses.nodes[0]}/`, ['--max-time', '2'])).rejects.toThrow();
  });
});
