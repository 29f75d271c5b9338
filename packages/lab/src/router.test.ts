import { describe, expect, it } from 'vitest';
import { makePlan } from './plan.js';
import { frrConfigs, routerLayout } from './router.js';

describe('the router layout', () => {
  const plan = makePlan({ id: 'x' });

  it('a /30 per gateway host, the router at the clients’ next hop, ASNs in turn', () => {
    const l = routerLayout(plan, 3);
    expect(l.router).toEqual({ netns: 'ohl-x-r', address: '203.0.113.1', asn: 64600 });
    expect(l.gateways.map((g) => [g.name, g.netns, g.router, g.outside, g.inside, g.asn])).toEqual([
      ['gw', 'ohl-x-gw', '203.0.113.129', '203.0.113.130', '198.18.0.1', 64601],
      ['gw2', 'ohl-x-gw2', '203.0.113.133', '203.0.113.134', '198.18.0.2', 64602],
      ['gw3', 'ohl-x-gw3', '203.0.113.137', '203.0.113.138', '198.18.0.3', 64603],
    ]);
    expect(() => routerLayout(plan, 0)).toThrow(/gateways: 0 is not between 1 and 8/);
  });

  it('FRR: ECMP with BFD on the router, announcements only of the cluster address', () => {
    const c = frrConfigs(plan, routerLayout(plan, 2));
    const r = c.get('r')!;
    expect(r.bgpd).toContain('maximum-paths 16');
    expect(r.bgpd).toContain('bgp bestpath as-path multipath-relax');
    expect(r.bgpd).toContain('neighbor 203.0.113.134 remote-as 64602');
    expect(r.bgpd).toContain('neighbor 203.0.113.134 bfd profile fast');
    expect(r.bfdd).toMatch(/receive-interval 100\n {2}transmit-interval 100/);
    expect(r.bfdd).toContain('detect-multiplier 3');
    const g = c.get('gw2')!;
    expect(g.bgpd).toContain('ip prefix-list CLUSTER seq 5 permit 203.0.113.80/32 le 32');
    expect(g.bgpd).toContain('no bgp network import-check');
    expect(g.bgpd).toContain('neighbor 203.0.113.133 route-map FROM-ROUTER in');
    expect(g.bgpd).not.toMatch(/^ *network /m);
  });

  it('FRR with IPv6: the IPv6 cluster address in the IPv6 unicast family of the same sessions, links with /64s', () => {
    const l = routerLayout(plan, 2);
    expect(l.gateways.map((g) => [g.router6, g.outside6])).toEqual([
      ['2001:db8:113:f0::1', '2001:db8:113:f0::2'],
      ['2001:db8:113:f1::1', '2001:db8:113:f1::2'],
    ]);
    const c = frrConfigs(plan, l, true);
    const r = c.get('r')!.bgpd;
    expect(r).toContain('ipv6 prefix-list CLUSTER6 seq 5 permit 2001:db8:113::/64 le 128');
    expect(r).toMatch(/route-map FROM-GATEWAY permit 20\n match ipv6 address prefix-list CLUSTER6/);
    expect(r).toMatch(
      / address-family ipv6 unicast\n {2}maximum-paths 16\n {2}neighbor 203\.0\.113\.130 activate/,
    );
    const g = c.get('gw2')!.bgpd;
    expect(g).toContain('ipv6 prefix-list CLUSTER6 seq 5 permit 2001:db8:113::80/128 le 128');
    expect(g).toContain('  neighbor 203.0.113.133 activate');
    // without it, IPv4 alone, as before
    expect(frrConfigs(plan, l).get('r')!.bgpd).not.toContain('ipv6');
  });
});
