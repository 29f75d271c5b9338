import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, type Lab } from '@onehost/lab';
import { requireRoot } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeConfig } from './config.js';
import { agent, applyIn, snapshotWith } from './testing/harness.js';

requireRoot();

const VIP = '203.0.113.80';
const VIP6 = '2001:db8:113::80';
const N1 = '198.18.0.11';

/** v6 reads what IPv6 state the agent touches in n1: addresses, main routes, the IPv6 sysctls of its devices. */
async function v6(lab: Lab): Promise<unknown> {
  const j = async (args: string[]) =>
    JSON.parse((await lab.exec('n1', 'ip', ['-j', ...args])).stdout || '[]');
  const sys = (
    await lab.exec('n1', 'sysctl', [
      '-a',
      '--pattern',
      '^net\\.ipv6\\.conf\\.(lo|eth0)\\.(disable_ipv6|addr_gen_mode)$',
    ])
  ).stdout;
  return {
    addrs: await j(['-6', 'addr', 'show']),
    routes: await j(['-6', 'route', 'show', 'table', 'main']),
    sys,
  };
}

describe('node agent with an IPv6 cluster address (lab node, IPv6 off as the lab leaves it)', () => {
  let lab: Lab;
  let configFile: string;
  let baseline: unknown;
  let baseline4: unknown;

  beforeAll(async () => {
    lab = await createLab({ nodes: 1, clients: 1, services: false });
    const config: NodeConfig = {
      nodeName: 'n1',
      internal: { address: N1, interface: 'eth0' },
      gateways: [lab.addresses.gateway.inside],
      networks: [
        { name: 'outside', address: VIP, default: true },
        { name: 'outside', address: '2001:DB8:113:0::80' },
      ],
      portBlock: { lo: 40000, hi: 40999 },
      vxlan: { vni: 42, device: 'vx0' },
      stateFile: join(lab.runDir, 'n1-agent.json'),
    };
    configFile = join(lab.runDir, 'n1-config.json');
    await writeFile(configFile, JSON.stringify(config));
    baseline = await v6(lab);
    baseline4 = await snapshotWith((file, args) => lab.exec('n1', file, args));
  });
  afterAll(async () => {
    await lab?.cleanup();
  });

  it('accepts the IPv6 address on lo, sends IPv6 out as it via the gateway link-local, and restores all', async () => {
    const applied = await applyIn(lab, 'n1', configFile);
    expect(applied.addresses).toEqual([VIP, VIP6]);
    const lo = (await lab.exec('n1', 'ip', ['-o', '-6', 'addr', 'show', 'dev', 'lo'])).stdout;
    expect(lo).toContain(`${VIP6}/128`);
    // the internal interface: IPv6 on, no generated link-local, the one derived from 198.18.0.11
    const eth0 = (await lab.exec('n1', 'ip', ['-o', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout;
    expect(
      eth0
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[3]),
    ).toEqual(['fe80::c612:b/64']);
    const route = JSON.parse((await lab.exec('n1', 'ip', ['-j', '-6', 'route', 'show', 'default'])).stdout);
    expect(route).toEqual([
      expect.objectContaining({ dst: 'default', gateway: 'fe80::c612:1', dev: 'eth0', prefsrc: VIP6 }),
    ]);
    // no outside MTU from the gateway: the routes carry none
    expect(route[0]).not.toHaveProperty('metrics');
    // the VXLAN device takes IPv6 but has no address of its own, so it never talks (no DAD, RS, MLD)
    expect((await lab.exec('n1', 'sysctl', ['-n', 'net.ipv6.conf.vx0.disable_ipv6'])).stdout.trim()).toBe(
      '0',
    );
    expect((await lab.exec('n1', 'sysctl', ['-n', 'net.ipv6.conf.vx0.addr_gen_mode'])).stdout.trim()).toBe(
      '1',
    );
    expect((await lab.exec('n1', 'ip', ['-o', '-6', 'addr', 'show', 'dev', 'vx0'])).stdout.trim()).toBe('');
    // the ip6 table: IPv6 ping identifiers from the block
    const six = (await lab.exec('n1', 'nft', ['list', 'table', 'ip6', 'onehost_agent'])).stdout;
    expect(six).toContain('icmpv6 type echo-request snat to [2001:db8:113::80]:');

    await agent(lab, 'n1', 'restore', '--config', configFile);
    expect(await v6(lab)).toEqual(baseline);
    expect(await snapshotWith((file, args) => lab.exec('n1', file, args))).toEqual(baseline4);
  });

  it('with two gateways: both families’ default routes over both, and rerouteVia leaves one out of both, restored exactly', async () => {
    const twoFile = join(lab.runDir, 'n1-two6.json');
    const config = JSON.parse(await readFile(configFile, 'utf8')) as NodeConfig;
    await writeFile(twoFile, JSON.stringify({ ...config, gateways: ['198.18.0.1', '198.18.0.2'] }));
    const hops = async () => {
      const four = JSON.parse((await lab.exec('n1', 'ip', ['-j', 'route', 'show', 'default'])).stdout);
      const six = JSON.parse((await lab.exec('n1', 'ip', ['-j', '-6', 'route', 'show', 'default'])).stdout);
      const of = (r: { gateway?: string; nexthops?: { gateway: string }[] }) =>
        r.nexthops?.map((h) => h.gateway) ?? [r.gateway];
      return { four: of(four[0]), six: of(six[0]), src6: six[0].prefsrc };
    };
    // applied and rerouted in one process in the node's namespace, as the daemon does
    const lib = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `import { applyNodeConfig, rerouteVia } from ${JSON.stringify(lib)};
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
const applied = await applyNodeConfig(JSON.parse(readFileSync(${JSON.stringify(twoFile)}, 'utf8')));
const show = () => execFileSync('ip', ['-j', '-6', 'route', 'show', 'default'], { encoding: 'utf8' });
const before = show();
await rerouteVia(applied, ['198.18.0.1']);
console.log(JSON.stringify({ before: JSON.parse(before), families: applied.routesVia.map((r) => r.family) }));`;
    const out = JSON.parse((await lab.exec('n1', 'node', ['--input-type=module', '-e', script])).stdout);
    expect(out.before[0].nexthops.map((h: { gateway: string }) => h.gateway)).toEqual([
      'fe80::c612:1',
      'fe80::c612:2',
    ]);
    // IPv4's routes (the default, the cluster prefixes), then IPv6's default
    expect(out.families.at(-1)).toBe(6);
    expect(out.families.filter((f: number) => f === 6)).toHaveLength(1);
    expect(await hops()).toEqual({ four: ['198.18.0.1'], six: ['fe80::c612:1'], src6: VIP6 });
    await agent(lab, 'n1', 'restore', '--config', twoFile);
    expect(await v6(lab)).toEqual(baseline);
    expect(await snapshotWith((file, args) => lab.exec('n1', file, args))).toEqual(baseline4);
  });

  it('puts the outside MTU on the routes to the outside when it is below the internal interface’s', async () => {
    // the lab's interconnect carries 1600
    const routes = async () => ({
      v4: JSON.parse((await lab.exec('n1', 'ip', ['-j', 'route', 'show', 'default'])).stdout)[0]?.metrics,
      v6: JSON.parse((await lab.exec('n1', 'ip', ['-j', '-6', 'route', 'show', 'default'])).stdout)[0]
        ?.metrics,
      internal: JSON.parse((await lab.exec('n1', 'ip', ['-j', 'route', 'show', '198.18.0.0/24'])).stdout)[0]
        ?.metrics,
    });
    const withMtu = async (mtu: number) => {
      const c = JSON.parse(await readFile(configFile, 'utf8')) as NodeConfig;
      const file = join(lab.runDir, `n1-config-${mtu}.json`);
      await writeFile(file, JSON.stringify({ ...c, outsideMtu: mtu }));
      await applyIn(lab, 'n1', file);
      try {
        return await routes();
      } finally {
        await agent(lab, 'n1', 'restore', '--config', file);
      }
    };
    expect(await withMtu(1500)).toEqual({ v4: [{ mtu: 1500 }], v6: [{ mtu: 1500 }], internal: undefined });
    // not below the interface's: nothing; below IPv6's minimum (RFC 8200 §5): IPv4 only
    expect(await withMtu(1600)).toEqual({ v4: undefined, v6: undefined, internal: undefined });
    expect(await withMtu(1200)).toEqual({ v4: [{ mtu: 1200 }], v6: undefined, internal: undefined });
    expect(await v6(lab)).toEqual(baseline);
  });
});
