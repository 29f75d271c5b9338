import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJournal } from '@onehost/kernel';
import { createLab, type Lab } from '@onehost/lab';
import { requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppliedNode } from './apply.js';
import { type NodeConfig, stableMac } from './config.js';
import {
  agent,
  applyIn,
  ask,
  kernelGateway,
  NET_CLI,
  type NetState,
  nftCounter,
  rxPackets,
  serve,
  snapshot,
  splitHostPort,
} from './testing/harness.js';

requireRoot();

const VIP = '203.0.113.80';
// A second cluster network whose address is the better source towards c2.
const VIP2 = '198.19.0.80';
const OUTSIDE = '203.0.113.10';
const OUTSIDE2 = '203.0.113.11';
const N1 = '198.18.0.11';
const N2 = '198.18.0.12';
const VNI = 42;

describe('node agent in a lab node', () => {
  let lab: Lab;
  let config: NodeConfig;
  let configFile: string;
  let baseline: NetState;
  let applied: AppliedNode;

  beforeAll(async () => {
    lab = await createLab({ nodes: 2, clients: 2 });
    config = {
      nodeName: 'n1',
      internal: { address: N1, interface: 'eth0' },
      gateways: [lab.addresses.gateway.inside],
      networks: [
        { name: 'outside', address: VIP, default: true },
        { name: 'second', address: VIP2, prefixes: [`${OUTSIDE2}/32`] },
      ],
      portBlock: { lo: 40000, hi: 40999 },
      vxlan: { vni: VNI, device: 'vx0' },
      mountPorts: [
        { proto: 'tcp', nodePort: 8081, clusterPort: 81 },
        { proto: 'udp', nodePort: 8081, clusterPort: 81 },
      ],
      stateFile: join(lab.runDir, 'n1-agent.json'),
    };
    configFile = join(lab.runDir, 'n1-config.json');
    await writeFile(configFile, JSON.stringify(config));
    // Checksums are finished in software when n1 sends, and checked in software where they are received,
    // so a rewrite that broke a checksum would lose the packet.
    await lab.exec('n1', 'ethtool', ['-K', 'eth0', 'tx', 'off']);
    await lab.exec('gw', 'ethtool', ['-K', 'eth1', 'rx', 'off']);
    await lab.exec('c1', 'ethtool', ['-K', 'eth0', 'rx', 'off']);
    await Promise.all([serve(lab, 'c1', 7000), serve(lab, 'c2', 7000), serve(lab, 'n2', 7000)]);
    baseline = await snapshot(lab, 'n1');
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  describe('applied', () => {
    it('creates the VXLAN device and reports its MAC, splits the port block', async () => {
      applied = await applyIn(lab, 'n1', configFile);
      const { stdout } = await lab.exec('n1', 'ip', ['-j', '-d', 'link', 'show', 'dev', 'vx0']);
      const [link] = JSON.parse(stdout);
      expect(applied.vxlan.mac).toBe(link.address);
      expect(link.linkinfo.info_data).toMatchObject({ id: VNI, port: 4789, local: N1, learning: false });
      expect(applied.ports).toEqual({ ephemeral: { lo: 40000, hi: 40749 }, snat: { lo: 40750, hi: 40999 } });
      const range = await lab.exec('n1', 'sysctl', ['-n', 'net.ipv4.ip_local_port_range']);
      expect(range.stdout.trim().split(/\s+/)).toEqual(['40000', '40749']);
      expect(applied.restoredPrevious).toBe(false);
      // The gateway stand-in: kernel VXLAN towards n1 with the reported MAC as inner destination, and a
      // stateless rewrite of the cluster's MOUNT port 81 to n1's 8081, as the onehost gateway would do.
      await kernelGateway(lab, 'gw', {
        dev: 'vxg',
        vni: VNI,
        local: lab.addresses.gateway.inside,
        nodeAddress: N1,
        underlay: 'eth1',
        vip: VIP,
        mac: applied.vxlan.mac,
      });
      await lab.exec('gw', 'ip', ['-batch', '-'], {
        input: `neigh replace ${VIP2} lladdr ${applied.vxlan.mac} dev vxg nud permanent\nroute replace ${VIP2}/32 dev vxg\n`,
      });
      await lab.exec('gw', 'nft', ['-f', '-'], {
        input: `table ip mountgw {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    ip daddr ${VIP} tcp dport 81 tcp dport set 8081
    ip daddr ${VIP} udp dport 81 udp dport set 8081
  }
}
`,
      });
    });

    it('delivers decapsulated packets for the cluster address to a server on the node; replies leave as the VIP', async () => {
      const before = await rxPackets(lab, 'n1', 'vx0');
      const { stdout } = await lab.exec('c1', 'curl', [
        '-sS',
        '--max-time',
        '5',
        '-w',
        '\n%{remote_ip}',
        `http://${VIP}/`,
      ]);
      expect(stdout).toBe(`n1\n\n${VIP}`);
      expect(await rxPackets(lab, 'n1', 'vx0')).toBeGreaterThan(before);
      // UDP: a server bound to the VIP itself; the answer comes from the VIP.
      const server = await serve(lab, 'n1', 7001, VIP);
      const answer = await ask(lab, 'c1', 'udp', VIP, 7001);
      expect(splitHostPort(answer.seen).address).toBe(OUTSIDE);
      expect(answer.from).toBe(`${VIP}:7001`);
      await server.stop();
    });

    it('unbound sockets reach the outside as the VIP with a port from the ephemeral part of the block', async () => {
      for (const proto of ['tcp', 'udp'] as const) {
        const answer = await ask(lab, 'n1', proto, OUTSIDE, 7000);
        const seen = splitHostPort(answer.seen);
        expect(seen.address, proto).toBe(VIP);
        expect(seen.port, proto).toBeGreaterThanOrEqual(40000);
        expect(seen.port, proto).toBeLessThanOrEqual(40749);
      }
    });

    it('sockets bound to the internal address are SNATed to the VIP with a port from the SNAT range', async () => {
      for (const proto of ['tcp', 'udp'] as const) {
        const answer = await ask(lab, 'n1', proto, OUTSIDE, 7000, N1);
        const seen = splitHostPort(answer.seen);
        expect(seen.address, proto).toBe(VIP);
        expect(seen.port, proto).toBeGreaterThanOrEqual(40750);
        expect(seen.port, proto).toBeLessThanOrEqual(40999);
        // The socket itself still sees its own address, and the reply was mapped back to it.
        expect(splitHostPort(answer.local).address, proto).toBe(N1);
        expect(answer.from, proto).toBe(`${OUTSIDE}:7000`);
      }
    });

    it("traffic to another network's destinations leaves as that network's address", async () => {
      const unbound = splitHostPort((await ask(lab, 'n1', 'tcp', OUTSIDE2, 7000)).seen);
      expect(unbound.address).toBe(VIP2);
      expect(unbound.port).toBeLessThanOrEqual(40749);
      const bound = await ask(lab, 'n1', 'udp', OUTSIDE2, 7000, N1);
      const seen = splitHostPort(bound.seen);
      expect(seen.address).toBe(VIP2);
      expect(seen.port).toBeGreaterThanOrEqual(40750);
      expect(bound.from).toBe(`${OUTSIDE2}:7000`);
    });

    it('cluster-internal traffic keeps the internal address', async () => {
      for (const bind of [undefined, N1]) {
        const answer = await ask(lab, 'n1', 'tcp', N2, 7000, bind);
        expect(answer.seen).toBe(answer.local);
        expect(splitHostPort(answer.seen).address).toBe(N1);
      }
      const { stdout } = await lab.exec('n1', 'ip', ['-j', 'route', 'get', '198.19.0.5']);
      expect(JSON.parse(stdout)[0]).toMatchObject({ gateway: lab.addresses.gateway.inside, prefsrc: N1 });
    });

    it('replies from a rewritten MOUNT port leave from the cluster port, checksums intact', async () => {
      const server = await serve(lab, 'n1', 8081);
      const tcp = await ask(lab, 'c1', 'tcp', VIP, 81);
      expect(tcp.from).toBe(`${VIP}:81`);
      expect(tcp.seen).toBe(tcp.local);
      const udp = await ask(lab, 'c1', 'udp', VIP, 81);
      expect(udp.from).toBe(`${VIP}:81`);
      await server.stop();
    });

    it('drops VXLAN from a source that is not a gateway', async () => {
      await kernelGateway(lab, 'n2', {
        dev: 'vxr',
        vni: VNI,
        local: N2,
        nodeAddress: N1,
        underlay: 'eth0',
        vip: VIP,
        mac: applied.vxlan.mac,
      });
      const rx = await rxPackets(lab, 'n1', 'vx0');
      const dropped = await nftCounter(lab, 'n1', 'vxlan_in');
      await lab.exec('n2', 'bash', ['-c', `echo rogue > /dev/udp/${VIP}/7001`]);
      await waitFor(async () => (await nftCounter(lab, 'n1', 'vxlan_in')) > dropped, {
        what: 'the rogue VXLAN datagram to be dropped',
      });
      expect(await rxPackets(lab, 'n1', 'vx0')).toBe(rx);
    });

    it('restore leaves the namespace exactly as it was', async () => {
      const { stdout } = await agent(lab, 'n1', 'restore', '--config', configFile);
      expect(JSON.parse(stdout)).toMatchObject({ found: true });
      expect(await snapshot(lab, 'n1')).toEqual(baseline);
      expect(existsSync(config.stateFile!)).toBe(false);
      // Restoring again finds nothing to do.
      expect(JSON.parse((await agent(lab, 'n1', 'restore', '--config', configFile)).stdout)).toEqual({
        found: false,
        undone: 0,
      });
    });
  });

  describe('idempotent and crash-safe', () => {
    let fixedFile: string;
    let applied1: NetState;

    beforeAll(async () => {
      fixedFile = join(lab.runDir, 'n1-fixed.json');
      const fixed = { ...config, vxlan: { ...config.vxlan, mac: stableMac('n1', VNI) } };
      await writeFile(fixedFile, JSON.stringify(fixed));
    });

    it('applying twice gives the same state as applying once', async () => {
      const first = await applyIn(lab, 'n1', fixedFile);
      expect(first.vxlan.mac).toBe(stableMac('n1', VNI));
      applied1 = await snapshot(lab, 'n1');
      const second = await applyIn(lab, 'n1', fixedFile);
      expect(second.restoredPrevious).toBe(true);
      expect(await snapshot(lab, 'n1')).toEqual(applied1);
      const { stdout } = await lab.exec('n1', 'ip', ['-o', 'addr', 'show', 'dev', 'lo']);
      expect(stdout.split('\n').filter((l) => l.includes(`${VIP}/32`))).toHaveLength(1);
      await agent(lab, 'n1', 'restore', '--config', fixedFile);
      expect(await snapshot(lab, 'n1')).toEqual(baseline);
    });

    it('after kill -9 half-way through apply, the next start restores and re-applies cleanly', async () => {
      const crashing = lab.spawn('n1', 'node', [
        NET_CLI,
        'apply',
        '--config',
        fixedFile,
        '--pause-at',
        'routes',
      ]);
      await crashing.waitForOutput('paused at routes', 10_000);
      crashing.child.kill('SIGKILL');
      await crashing.whenExited();
      const journal = await readJournal(config.stateFile!);
      expect(journal?.complete).toBe(false);
      expect(journal?.changes.map((c) => c.kind)).toContain('link');
      expect(await snapshot(lab, 'n1')).not.toEqual(baseline);

      const again = await applyIn(lab, 'n1', fixedFile);
      expect(again.restoredPrevious).toBe(true);
      expect(await snapshot(lab, 'n1')).toEqual(applied1);

      // Killed after a complete apply while holding: same story.
      const holding = lab.spawn('n1', 'node', [NET_CLI, 'apply', '--config', fixedFile, '--hold']);
      await holding.waitForOutput('holding', 10_000);
      holding.child.kill('SIGKILL');
      await holding.whenExited();
      expect((await readJournal(config.stateFile!))?.complete).toBe(true);
      expect((await applyIn(lab, 'n1', fixedFile)).restoredPrevious).toBe(true);
      expect(await snapshot(lab, 'n1')).toEqual(applied1);
      await agent(lab, 'n1', 'restore', '--config', fixedFile);
      expect(await snapshot(lab, 'n1')).toEqual(baseline);
    });

    it('with two gateways: multipath default route, both in the VXLAN filter, restored exactly', async () => {
      const twoFile = join(lab.runDir, 'n1-two.json');
      await writeFile(twoFile, JSON.stringify({ ...config, gateways: ['198.18.0.1', '198.18.0.2'] }));
      await applyIn(lab, 'n1', twoFile);
      const { stdout } = await lab.exec('n1', 'ip', ['-j', 'route', 'show', 'default']);
      const [route] = JSON.parse(stdout);
      expect(route.prefsrc).toBe(VIP);
      expect(route.nexthops.map((h: { gateway: string }) => h.gateway)).toEqual(['198.18.0.1', '198.18.0.2']);
      const rules = (await lab.exec('n1', 'nft', ['list', 'chain', 'ip', 'onehost_agent', 'vxlan_in']))
        .stdout;
      expect(rules).toContain('ip saddr != { 198.18.0.1, 198.18.0.2 }');
      await agent(lab, 'n1', 'restore', '--config', twoFile);
      expect(await snapshot(lab, 'n1')).toEqual(baseline);
    });

    it('a failing step undoes what apply had done before it', async () => {
      const lib = fileURLToPath(new URL('../dist/index.js', import.meta.url));
      const script = `import { applyNodeConfig } from ${JSON.stringify(lib)};
import { readFileSync } from 'node:fs';
const config = JSON.parse(readFileSync(${JSON.stringify(fixedFile)}, 'utf8'));
await applyNodeConfig(config, { onStep: (s) => { if (s === 'routes') throw new Error('injected at ' + s); } })
  .then(() => console.log('applied'), (err) => console.log('failed: ' + err.message));`;
      const { stdout } = await lab.exec('n1', 'node', ['--input-type=module', '-e', script]);
      expect(stdout.trim()).toBe('failed: injected at routes');
      expect(existsSync(config.stateFile!)).toBe(false);
      expect(await snapshot(lab, 'n1')).toEqual(baseline);
    });

    it('restores on SIGTERM', async () => {
      const proc = lab.spawn('n1', 'node', [NET_CLI, 'apply', '--config', fixedFile, '--hold']);
      await proc.waitForOutput('holding', 10_000);
      expect(await snapshot(lab, 'n1')).toEqual(applied1);
      proc.child.kill('SIGTERM');
      await proc.whenExited();
      expect(proc.exitStatus()).toEqual({ code: 0, signal: null });
      expect(await snapshot(lab, 'n1')).toEqual(baseline);
    });
  });
});
