import { parseIpv4 } from '@onehost/wire';
import { describe, expect, it } from 'vitest';
import { type GatewayHostConfig, HOST_DROPS, nftRuleset, nftRuleset6, sysctlPlan } from './gateway-host.js';

const config: GatewayHostConfig = {
  name: 'gw',
  tun: 'onehost0',
  vips: [parseIpv4('203.0.113.80')],
  outside: ['eth0'],
  interconnect: 'eth1',
  interconnectPrefix: '198.18.0.0/15',
  management: ['203.0.113.11/32'],
  vxlanPort: 4789,
  hostPorts: [7443, 9400],
  txQueueLen: 10_000,
  table: 4789,
  rulePref: 100,
  localPref: 200,
  statePath: 'gateway-host.json',
};

/** rulesOf lists the rules of chain `name` in `ruleset`, in order. */
function rulesOf(ruleset: string, name: string): string[] {
  const m = new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(ruleset);
  return (m?.[1] ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('type '));
}

describe('the host filter (docs/gateway.md, exposure)', () => {
  const rules = nftRuleset(config);

  it('leaves nothing to a cluster address to conntrack, unless flowSync marks it (the fast path’s track mark)', () => {
    expect(rulesOf(rules, 'raw_pre')[0]).toBe('ip daddr { 203.0.113.80 } notrack');
    const shared = { ...config, trackMark: 0x6f48fffe };
    expect(rulesOf(nftRuleset(shared), 'raw_pre')[0]).toBe(
      'ip daddr { 203.0.113.80 } meta mark != 0x6f48fffe notrack',
    );
    // the nodes' replies stay untracked either way: the gateway sees one direction of a connection
    expect(rulesOf(nftRuleset(shared), 'raw_pre')[1]).toBe('ip saddr { 203.0.113.80 } notrack');
    const keys = sysctlPlan(shared).map(([k, v]) => `${k}=${v}`);
    expect(keys).toContain('net/netfilter/nf_conntrack_tcp_loose=1');
    expect(keys).toContain('net/netfilter/nf_conntrack_tcp_be_liberal=1');
    expect(sysctlPlan(config).some(([k]) => k.includes('conntrack'))).toBe(false);
  });

  it('sends what arrives on the outside interfaces and the TUN through one chain', () => {
    expect(rulesOf(rules, 'input')).toEqual(['iifname { "eth0", "onehost0" } jump from_outside']);
  });

  it('drops VXLAN before it accepts management, and counts what it refuses by name', () => {
    const r = rulesOf(rules, 'from_outside');
    expect(r[0]).toMatch(/^udp dport 4789 counter name "outside_vxlan" drop/);
    expect(r[1]).toMatch(/^ip saddr \{ 203\.0\.113\.11\/32 \} accept/);
    expect(r[2]).toMatch(
      /^ip daddr \{ 203\.0\.113\.80 \} tcp dport \{ 7443, 9400 \} counter name "outside_to_host" drop/,
    );
    expect(r[3]).toMatch(/^ip daddr \{ 203\.0\.113\.80 \} accept/);
    expect(r[4]).toMatch(/^ct state established,related accept/);
    expect(r[5]).toMatch(/^counter name "outside_to_host" drop/);
    expect(r).toHaveLength(6);
    for (const n of HOST_DROPS) expect(rules).toContain(`counter ${n} {`);
  });

  it('drops VXLAN from outside to the nodes, management sources included, before the management rule', () => {
    const r = rulesOf(rules, 'forward');
    expect(r[0]).toMatch(
      /^iifname \{ "eth0" \} ip daddr 198\.18\.0\.0\/15 udp dport 4789 counter name "outside_vxlan" drop/,
    );
    expect(r[1]).toMatch(/ip saddr != \{ 203\.0\.113\.11\/32 \} counter name "outside_to_nodes" drop/);
  });

  it('without a management list accepts no outside source for the host itself', () => {
    const r = rulesOf(nftRuleset({ ...config, management: [] }), 'from_outside');
    expect(r.some((l) => l.includes('saddr'))).toBe(false);
    expect(r.at(-1)).toMatch(/^counter name "outside_to_host" drop/);
  });

  it('takes BGP and BFD from the routers of announce.peers, and only theirs', () => {
    const r = rulesOf(
      nftRuleset({ ...config, management: [], routingPeers: ['203.0.113.2'] }),
      'from_outside',
    );
    expect(r).toContain(
      'ip saddr { 203.0.113.2 } tcp dport 179 accept comment "BGP from the routers (announce.peers)"',
    );
    expect(r).toContain(
      'ip saddr { 203.0.113.2 } udp dport { 3784, 3785, 4784 } accept comment "BFD from the routers"',
    );
    expect(rulesOf(nftRuleset(config), 'from_outside').some((l) => l.includes('179'))).toBe(false);
  });
});

describe('the host filter for IPv6 (its ip6 twin)', () => {
  const dual: GatewayHostConfig = {
    ...config,
    vips6: ['2001:db8:113::80'],
    management: ['203.0.113.11/32', '2001:db8:113::11/128'],
  };
  const rules = nftRuleset6(dual);

  it('replaces any earlier version of its own table, and keeps IPv6 sources out of the IPv4 table', () => {
    expect(rules.split('\n').slice(0, 3)).toEqual([
      'table ip6 onehost_gateway',
      'delete table ip6 onehost_gateway',
      'table ip6 onehost_gateway {',
    ]);
    expect(nftRuleset(dual)).toBe(nftRuleset(config));
    for (const n of HOST_DROPS) expect(rules).toContain(`counter ${n} {`);
  });

  it('does not track the IPv6 cluster addresses’ traffic', () => {
    expect(rulesOf(rules, 'raw_pre')).toEqual([
      'ip6 daddr { 2001:db8:113::80 } notrack',
      'ip6 saddr { 2001:db8:113::80 } notrack',
    ]);
    expect(rulesOf(rules, 'raw_out')).toEqual(['ip6 saddr { 2001:db8:113::80 } notrack']);
  });

  it('takes from outside VXLAN never, neighbour discovery, management, the cluster data path', () => {
    expect(rulesOf(rules, 'input')).toEqual(['iifname { "eth0", "onehost0" } jump from_outside']);
    expect(rulesOf(rules, 'from_outside')).toEqual([
      'udp dport 4789 counter name "outside_vxlan" drop comment "VXLAN only on the interconnect: the gateway\'s VXLAN device listens on IPv6 too"',
      'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept comment "neighbour discovery, on the link only"',
      'ip6 saddr fe80::/10 icmpv6 type mld-listener-query accept comment "multicast listener queries: keep the solicited-node groups"',
      'ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept comment "DHCPv6 answers"',
      'ip6 saddr { 2001:db8:113::11/128 } accept comment "management"',
      'ip6 daddr { 2001:db8:113::80 } tcp dport { 7443, 9400 } counter name "outside_to_host" drop comment "control, metrics: not on a cluster address"',
      'ip6 daddr { 2001:db8:113::80 } accept comment "the cluster data path (local decisions, ICMPv6 errors to a cluster address)"',
      'ct state established,related accept comment "the host\'s own connections: replies, their ICMPv6 errors (PMTU)"',
      'counter name "outside_to_host" drop comment "the host itself: management sources only"',
    ]);
  });

  it('keeps outside sources off the nodes’ link but management, and lets only cluster addresses out of it', () => {
    expect(rulesOf(rules, 'forward')).toEqual([
      'iifname { "eth0" } oifname "eth1" udp dport 4789 counter name "outside_vxlan" drop comment "VXLAN to nodes: the gateway\'s only"',
      'iifname { "eth0" } oifname "eth1" ip6 saddr != { 2001:db8:113::11/128 } counter name "outside_to_nodes" drop comment "the nodes\' link: management sources only"',
      'iifname "eth1" ip6 saddr != { 2001:db8:113::80 } ip6 saddr != @nodes6 counter name "unregistered_node" drop comment "cluster addresses and registered nodes only"',
    ]);
  });

  it('without IPv6 cluster addresses or management still closes the host to IPv6 from outside', () => {
    const r = nftRuleset6({ ...config, management: ['203.0.113.11/32'] });
    expect(rulesOf(r, 'raw_pre')).toEqual([]);
    expect(rulesOf(r, 'raw_out')).toEqual([]);
    const from = rulesOf(r, 'from_outside');
    expect(from.some((l) => l.includes('saddr {') || l.includes('daddr'))).toBe(false);
    expect(from[0]).toMatch(/^udp dport 4789 counter name "outside_vxlan" drop/);
    expect(from.slice(-2).map((l) => l.replace(/ comment .*/, ''))).toEqual([
      'ct state established,related accept',
      'counter name "outside_to_host" drop',
    ]);
    expect(
      rulesOf(r, 'forward')
        .slice(1)
        .map((l) => l.replace(/ comment .*/, '')),
    ).toEqual([
      'iifname { "eth0" } oifname "eth1" counter name "outside_to_nodes" drop',
      'iifname "eth1" ip6 saddr != @nodes6 counter name "unregistered_node" drop',
    ]);
  });
});
