import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgpAnnouncer } from '@onehost/gateway';
import { type FrrInstance, gatewayHostConfig, routerConfig, startFrr } from '@onehost/lab';
import { Lab, type Netns, requireRoot, waitFor } from '@onehost/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

requireRoot();

// The gateway's BGP announcement of both families against real FRR (bgpd, zebra, bfdd in two scratch
// namespaces): a gateway host and the router in front of it, one eBGP session over IPv4 carrying IPv4 and
// IPv6 unicast (RFC 4760), the lab's configs (packages/lab frr.ts). What the router's kernel routes is
// the check: the IPv6 cluster address by the gateway host's address on the link (FRR installs its
// link-local when the link has one by then, else its global address).

const VIP = '203.0.113.80';
const VIP6 = '2001:db8:113::80';
const LINK = { router: '203.0.113.129', gateway: '203.0.113.130' };
const LINK6 = { router: '2001:db8:113:f0::1', gateway: '2001:db8:113:f0::2' };

describe('the announcement of IPv4 and IPv6 cluster addresses to a router (real FRR)', () => {
  const lab = new Lab();
  const frrs: FrrInstance[] = [];
  let gw: Netns;
  let r: Netns;
  let gwFrr: FrrInstance;
  let announcer: BgpAnnouncer;
  /** the router's end of its link to the gateway host */
  let routerEnd: string;

  /** route: the router's kernel route to `address` (`ip route show` text, '' when none). */
  const route = async (address: string) =>
    (await r.exec('ip', [address.includes(':') ? '-6' : '-4', 'route', 'show', address])).stdout.trim();

  beforeAll(async () => {
    gw = await lab.netns();
    r = await lab.netns();
    const link = await lab.veth(gw, r, { aAddress: `${LINK.gateway}/30`, bAddress: `${LINK.router}/30` });
    routerEnd = link.b;
    for (const [ns, dev, a] of [
      [gw, link.a, LINK6.gateway],
      [r, link.b, LINK6.router],
    ] as const) {
      await ns.sysctl('net.ipv6.conf.all.disable_ipv6', 0);
      await ns.ip('addr', 'add', `${a}/64`, 'dev', dev, 'nodad');
    }
    await r.sysctl('net.ipv6.conf.all.forwarding', 1);
    // FRR's files go where its user can reach them (it drops to `frr`)
    const dir = (name: string) => join(tmpdir(), `onehost-announce6-${process.pid}-${name}`);
    frrs.push(
      await startFrr(
        r.name,
        dir('r'),
        routerConfig({
          asn: 64600,
          routerId: LINK.router,
          peers: [{ address: LINK.gateway, asn: 64601 }],
          accept: ['203.0.113.0/24', '2001:db8:113::/64'],
        }),
      ),
    );
    gwFrr = await startFrr(
      gw.name,
      dir('gw'),
      gatewayHostConfig({
        asn: 64601,
        routerId: LINK.gateway,
        router: { address: LINK.router, asn: 64600 },
        announce: [`${VIP}/32`, `${VIP6}/128`],
      }),
    );
    frrs.push(gwFrr);
    await gwFrr.established();
    announcer = new BgpAnnouncer(
      { asn: 64601, vtySocket: gwFrr.vtySocket, vtysh: 'vtysh', withdrawGraceMs: 0, peers: [LINK.router] },
      [VIP, VIP6],
      { info: () => undefined, warn: () => undefined },
    );
  }, 60_000);

  afterAll(async () => {
    await announcer?.withdraw().catch(() => undefined);
    for (const f of frrs) await f.stop();
    await lab.cleanup();
  });

  it('announced: the router routes both cluster addresses to the gateway host, the IPv6 one by its IPv6 addresses', async () => {
    expect(await route(VIP6)).toBe('');
    await announcer.announce();
    expect(announcer.state()).toBe('announced');
    const v6 = await waitFor(async () => ((await route(VIP6)).includes('proto bgp') ? route(VIP6) : null), {
      what: `the router's BGP route to ${VIP6}`,
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    expect(v6).toMatch(new RegExp(`via (${LINK6.gateway}|fe80::[0-9a-f:]+) dev ${routerEnd} `));
    expect(await route(VIP)).toContain(`via ${LINK.gateway}`);
    // and nothing beyond the cluster addresses' /128: the router's filter took the announcement as sent
    const bgp = await frrs[0]!.json<{ routes?: Record<string, unknown> }>('show bgp ipv6 unicast json');
    expect(Object.keys(bgp.routes ?? {})).toEqual([`${VIP6}/128`]);
  });

  it('withdrawn: both routes leave the router', async () => {
    await announcer.withdraw();
    expect(announcer.state()).toBe('withdrawn');
    await waitFor(async () => (await route(VIP6)) === '' && (await route(VIP)) === '', {
      what: 'both routes withdrawn',
      timeoutMs: 10_000,
      intervalMs: 100,
    });
  });
});
