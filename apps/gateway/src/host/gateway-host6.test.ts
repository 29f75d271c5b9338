import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '@onehost/kernel';
import { Lab, type Netns, requireRoot } from '@onehost/testkit';
import { macLinkLocal, parseIpv4, parseMac } from '@onehost/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyGatewayHost,
  type GatewayHostConfig,
  outsideMtu,
  restoreGatewayHost,
  sysctlPlan,
} from './gateway-host.js';

requireRoot();

const VIP6 = '2001:db8:113::80';

describe('the gateway host with an IPv6 cluster address (a scratch namespace)', () => {
  const lab = new Lab();
  let ns: Netns;
  let host: Host;
  let dir: string;
  let config: GatewayHostConfig;

  beforeAll(async () => {
    ns = await lab.netns();
    host = new Host(ns.name);
    dir = await mkdtemp(join(tmpdir(), 'gw6-'));
    // veths (this kernel has no dummy devices) stand in for the outside, the interconnect and the TUN;
    // IPv6 on, without link-locals
    for (const dev of ['eth0', 'eth1', 'tun6']) {
      await ns.ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
      for (const d of [dev, `${dev}p`]) {
        await ns.sysctl(`net.ipv6.conf.${d}.addr_gen_mode`, 1);
        await ns.ip('link', 'set', d, 'up');
      }
      // the outside and the TUN: as a host brings them; the gateway turns on lo and the interconnect
      if (dev !== 'eth1') await ns.sysctl(`net.ipv6.conf.${dev}.disable_ipv6`, 0);
    }
    await ns.sysctl('net.ipv6.conf.lo.disable_ipv6', 1);
    await ns.sysctl('net.ipv6.conf.eth1.disable_ipv6', 1);
    await ns.addAddress('eth1', '198.18.0.1/24');
    config = {
      name: 'gw',
      tun: 'tun6',
      vips: [parseIpv4('203.0.113.80')],
      vips6: [VIP6],
      interconnectAddress: '198.18.0.1',
      outside: ['eth0'],
      interconnect: 'eth1',
      interconnectPrefix: '198.18.0.0/15',
      management: [],
      vxlanPort: 4789,
      hostPorts: [7443],
      txQueueLen: 1000,
      table: 4789,
      rulePref: 100,
      localPref: 200,
      statePath: join(dir, 'gateway-host.json'),
    };
  });
  afterAll(async () => {
    await lab.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const rules6 = async () =>
    (await host.rules6()).map((r) =>
      `${r.priority} ${r.iif ?? ''} ${r.dst ?? ''} ${r.table}`.replace(/ +/g, ' '),
    );

  it('adds nothing IPv6 without IPv6 cluster addresses', () => {
    const keys = sysctlPlan({ ...config, vips6: [] }).map(([k]) => k);
    expect(keys.some((k) => k.includes('ipv6'))).toBe(false);
  });

  it('routes the IPv6 cluster address into the TUN, answers NDP for it, and restores everything', async () => {
    const before = await rules6();
    await applyGatewayHost(config, host);
    expect([...(await host.addresses6('lo'))]).toContain(`${VIP6}/128`);
    expect([...(await host.addresses6('eth1'))]).toEqual(['fe80::c612:1/64']);
    // the outside had no link-local: it gets the one its MAC makes, the source of its solicitations
    const [eth0] = await host.ipJson<{ address: string }>('link', 'show', 'dev', 'eth0');
    const ll = `${macLinkLocal(parseMac(eth0!.address))}/64`;
    expect([...(await host.addresses6('eth0'))]).toEqual([ll]);
    expect(await rules6()).toEqual(expect.arrayContaining([`100 eth0 ${VIP6} 4789`, '200 local']));
    expect((await rules6()).some((r) => r.startsWith('0 '))).toBe(false);
    const t = await host.routes6(4789);
    expect(t.map((r) => `${r.type ?? 'unicast'} ${r.dst} ${r.dev ?? ''}`.trim())).toEqual(
      expect.arrayContaining([`unicast ${VIP6} tun6`, `unreachable ${VIP6} lo`]),
    );
    expect(await host.ip('-6', 'neigh', 'show', 'proxy', 'dev', 'eth0')).toContain(VIP6);
    expect(await host.readSysctl('net/ipv6/conf/eth0/proxy_ndp')).toBe('1');
    expect(await host.readSysctl('net/ipv6/conf/all/forwarding')).toBe('1');
    // a second start adopts and changes nothing
    await applyGatewayHost(config, host);
    expect(await host.routes6(4789)).toHaveLength(2);

    await restoreGatewayHost(config.statePath, host);
    expect([...(await host.addresses6('lo'))]).not.toContain(`${VIP6}/128`);
    expect([...(await host.addresses6('eth1'))]).toEqual([]);
    expect([...(await host.addresses6('eth0'))]).toEqual([]);
    expect(await rules6()).toEqual(before);
    expect(await host.routes6(4789)).toEqual([]);
    expect(await host.ip('-6', 'neigh', 'show', 'proxy', 'dev', 'eth0')).not.toContain(VIP6);
    expect(await host.readSysctl('net/ipv6/conf/all/forwarding')).toBe('0');
    expect(await host.readSysctl('net/ipv6/conf/lo/disable_ipv6')).toBe('1');
    expect(await host.readSysctl('net/ipv6/conf/eth1/disable_ipv6')).toBe('1');
  }, 60_000);

  it('leaves an outside interface that has a link-local address as it is', async () => {
    await ns.ip('addr', 'add', 'fe80::1/64', 'dev', 'eth0', 'nodad');
    try {
      await applyGatewayHost(config, host);
      expect([...(await host.addresses6('eth0'))]).toEqual(['fe80::1/64']);
      await restoreGatewayHost(config.statePath, host);
      expect([...(await host.addresses6('eth0'))]).toEqual(['fe80::1/64']);
    } finally {
      await ns.ip('addr', 'del', 'fe80::1/64', 'dev', 'eth0');
    }
  }, 60_000);

  it('reads the least MTU of the outside interfaces, for the nodes’ routes to the outside', async () => {
    expect(await outsideMtu(['eth0'], host)).toBe(1500);
    await ns.ip('link', 'set', 'tun6', 'mtu', '1400');
    try {
      expect(await outsideMtu(['eth0', 'tun6'], host)).toBe(1400);
      expect(await outsideMtu(['eth0', 'no-such-device'], host)).toBe(1500);
      expect(await outsideMtu([], host)).toBe(0);
    } finally {
      await ns.ip('link', 'set', 'tun6', 'mtu', '1500');
    }
  });

  const tables = async () =>
    (await host.run('nft', ['list', 'tables']))
      .split('\n')
      .filter((l) => l.includes('onehost_gateway'))
      .sort();

  it('filters IPv6 with a twin table, adopts a state file that has only the IPv4 one, removes both', async () => {
    await applyGatewayHost(config, host);
    expect(await tables()).toEqual(['table ip onehost_gateway', 'table ip6 onehost_gateway']);
    const ruleset = await host.run('nft', ['list', 'table', 'ip6', 'onehost_gateway']);
    expect(ruleset).toContain(`ip6 daddr ${VIP6} notrack`);
    // as a gateway from before the IPv6 filter leaves its host after a crash: the IPv4 table, recorded
    const state = JSON.parse(await readFile(config.statePath, 'utf8'));
    state.changes = state.changes.filter(
      (x: { kind: string; family?: string }) => !(x.kind === 'nft-table' && x.family === 'ip6'),
    );
    await writeFile(config.statePath, JSON.stringify(state));
    await host.run('nft', ['delete', 'table', 'ip6', 'onehost_gateway']);
    await host.run('nft', ['add', 'table', 'ip', 'onehost_gateway']); // stands for an older ruleset
    await applyGatewayHost(config, host);
    expect(await tables()).toEqual(['table ip onehost_gateway', 'table ip6 onehost_gateway']);
    expect(await host.run('nft', ['list', 'chain', 'ip', 'onehost_gateway', 'from_outside'])).toContain(
      'outside_to_host',
    );
    await restoreGatewayHost(config.statePath, host);
    expect(await tables()).toEqual([]);
  }, 60_000);
});
