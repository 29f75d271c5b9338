import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, type NodeConfig, resolveConfig, splitPortBlock, stableMac } from './config.js';
import { nftRuleset, nftRuleset6 } from './nft.js';
import { routeArgs, viaGateways } from './routes.js';

const base: NodeConfig = {
  nodeName: 'n1',
  internal: { address: '198.18.0.11', interface: 'eth0' },
  gateways: ['198.18.0.1'],
  networks: [{ name: 'outside', address: '203.0.113.80', default: true }],
  portBlock: { lo: 40000, hi: 40999 },
  vxlan: { vni: 42 },
};

describe('splitPortBlock', () => {
  it('keeps the ranges disjoint, inside the block, covering it, with ephemeral ends of different parity', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1024, max: 65000 }),
        fc.integer({ min: 8, max: 4096 }),
        fc.double({ min: 0.01, max: 0.99, noNaN: true }),
        (lo, size, share) => {
          const hi = Math.min(65535, lo + size - 1);
          if (hi - lo + 1 < 8) return;
          const { ephemeral, snat } = splitPortBlock({ lo, hi }, share);
          expect(ephemeral.lo).toBe(lo);
          expect(snat.hi).toBe(hi);
          expect(snat.lo).toBe(ephemeral.hi + 1);
          expect(ephemeral.hi).toBeGreaterThan(ephemeral.lo);
          expect(snat.hi).toBeGreaterThan(snat.lo);
          expect((ephemeral.hi - ephemeral.lo) % 2).toBe(1);
        },
      ),
    );
  });

  it('refuses a block that is too small', () => {
    expect(() => splitPortBlock({ lo: 2000, hi: 2006 })).toThrow(/at least 8/);
  });
});

describe('resolveConfig', () => {
  it('fills in defaults', () => {
    const c = resolveConfig(base);
    expect(c.vxlan).toEqual({
      vni: 42,
      port: 4789,
      device: 'onehost0',
      local: '198.18.0.11',
      mac: undefined,
    });
    expect(c.clusterPrefixes).toEqual(['198.18.0.0/15']);
    expect(c.stateFile).toBe('/run/onehost/agent-n1.json');
    expect(c.defaultNetwork.address).toBe('203.0.113.80');
    expect(c.outsideMtu).toBe(0);
  });

  it.each([
    ['internal.address', { internal: { address: '198.18.0.300', interface: 'eth0' } }],
    ['internal.interface', { internal: { address: '198.18.0.11', interface: 'a-name-far-too-long' } }],
    ['gateways', { gateways: [] }],
    ['networks', { networks: [{ name: 'a', address: '203.0.113.80' }] }],
    [
      'networks[0].prefixes[0]',
      { networks: [{ name: 'a', address: '203.0.113.80', default: true, prefixes: ['x'] }] },
    ],
    ['clusterPrefixes[0]', { clusterPrefixes: ['198.18.0.1/15'] }],
    ['portBlock', { portBlock: { lo: 5000, hi: 4000 } }],
    ['portBlock.lo', { portBlock: { lo: 80, hi: 4000 } }],
    ['vxlan.vni', { vxlan: { vni: 1 << 24 } }],
    ['vxlan.mac', { vxlan: { vni: 1, mac: '01:00:5e:00:00:01' } }],
    ['mountPorts[0].clusterPort', { mountPorts: [{ proto: 'tcp', nodePort: 8081, clusterPort: 0 }] }],
    ['splice.capturePorts[1]', { splice: { capturePorts: [2049, 70000] } }],
    ['splice.capturePorts', { splice: { capturePorts: 2049 } }],
    ['outsideMtu', { outsideMtu: 67 }],
    ['outsideMtu', { outsideMtu: 1500.5 }],
  ] as const)('names the bad field %s', (field, patch) => {
    const bad = { ...base, ...patch } as NodeConfig;
    expect(() => resolveConfig(bad)).toThrow(ConfigError);
    try {
      resolveConfig(bad);
    } catch (err) {
      expect((err as ConfigError).field).toBe(field);
    }
  });
});

describe('stableMac', () => {
  it('is a locally administered unicast MAC, stable per node and VNI', () => {
    const mac = stableMac('n1', 42);
    expect(mac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(stableMac('n1', 42)).toBe(mac);
    expect(stableMac('n2', 42)).not.toBe(mac);
    expect(stableMac('n1', 43)).not.toBe(mac);
  });
});

describe('nftRuleset', () => {
  it('SNATs per network, restores mount ports for every VIP and filters VXLAN by gateway', () => {
    const text = nftRuleset(
      resolveConfig({
        ...base,
        gateways: ['198.18.0.1', '198.18.0.2'],
        networks: [
          { name: 'outside', address: '203.0.113.80', default: true },
          { name: 'lab', address: '198.19.0.80', prefixes: ['198.19.1.0/24'] },
        ],
        mountPorts: [{ proto: 'udp', nodePort: 8081, clusterPort: 81 }],
      }),
    );
    // Declare, delete, define: one transaction that replaces any earlier version of the table.
    expect(text.split('\n').slice(0, 3)).toEqual([
      'table ip onehost_agent',
      'delete table ip onehost_agent',
      'table ip onehost_agent {',
    ]);
    expect(text).toContain('udp dport 4789 ip saddr != { 198.18.0.1, 198.18.0.2 } counter drop');
    expect(text).toContain('ip saddr { 203.0.113.80, 198.19.0.80 } udp sport 8081 udp sport set 81');
    // replies pinned to the VXLAN device (IP_PKTINFO) are routed again
    expect(text).toContain('type route hook output priority mangle;');
    expect(text).toContain('oifname "onehost0" meta mark set 0x6f68 counter');
    const lab = text.indexOf(
      'ip daddr 198.19.1.0/24 meta l4proto { tcp, udp, icmp } snat to 198.19.0.80:40750-40999',
    );
    const dflt = text.indexOf('meta l4proto { tcp, udp, icmp } snat to 203.0.113.80:40750-40999');
    expect(lab).toBeGreaterThan(0);
    expect(dflt).toBeGreaterThan(lab);
    expect(text.indexOf('ip daddr 198.18.0.0/15 return')).toBeLessThan(lab);
  });
});

/** a dual-stack outside network: its IPv4 and its IPv6 cluster address */
const DUAL = [
  { name: 'outside', address: '203.0.113.80', default: true },
  { name: 'outside', address: '2001:db8:113::80' },
];

describe('nftRuleset6', () => {
  it('is empty without IPv6 cluster addresses', () => {
    expect(nftRuleset6(resolveConfig(base))).toBe('');
  });

  it('takes IPv6 ping identifiers from the block', () => {
    const text = nftRuleset6(
      resolveConfig({
        ...base,
        networks: DUAL,
      }),
    );
    expect(text.split('\n')).toEqual([
      'table ip6 onehost_agent',
      'delete table ip6 onehost_agent',
      'table ip6 onehost_agent {',
      '  chain stamp_out {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      '    ip6 saddr 2001:db8:113::80 oifname != "lo" icmpv6 type echo-request snat to [2001:db8:113::80]:40750-40999 comment "ping identifiers from the block"',
      '  }',
      '}',
      '',
    ]);
  });
});

describe('nftRuleset6 with MOUNT ports', () => {
  it('restores the mountd source port on IPv6 replies from the IPv6 cluster address', () => {
    const text = nftRuleset6(
      resolveConfig({
        ...base,
        networks: DUAL,
        mountPorts: [{ proto: 'udp', nodePort: 8081, clusterPort: 20048 }],
      }),
    );
    expect(text).toContain(
      '  chain restore_out {\n    type filter hook output priority filter; policy accept;\n    ip6 saddr 2001:db8:113::80 udp sport 8081 udp sport set 20048 counter comment "restore udp 8081->20048"\n  }',
    );
  });
});

describe('nftRuleset6 with splice', () => {
  it('captures the ports from the IPv6 cluster address (the kernel mark first) and keeps them from the restore', () => {
    const text = nftRuleset6(
      resolveConfig({
        ...base,
        networks: DUAL,
        mountPorts: [{ proto: 'tcp', nodePort: 8081, clusterPort: 20048 }],
        splice: { capturePorts: [8081, 2049], kernel: true },
      }),
    );
    expect(text).toContain(
      'ip6 saddr 2001:db8:113::80 tcp sport { 2049, 8081 } oifname != "lo" meta mark set 0x6f69 counter comment',
    );
    expect(text).toContain('ip6 saddr 2001:db8:113::80 iifname != "lo" notrack');
    // established segments marked for the kernel's program first (ks_node6)
    const kernel = text.indexOf(
      'ip6 saddr 2001:db8:113::80 tcp sport { 2049, 8081 } oifname != "lo" tcp flags & (fin | syn | rst) == 0 meta mark set 0x6f6b counter accept',
    );
    expect(kernel).toBeGreaterThan(0);
    expect(kernel).toBeLessThan(text.indexOf('meta mark set 0x6f69'));
    const ret = text.indexOf('meta mark { 0x6f69, 0x6f6b } return');
    expect(ret).toBeGreaterThan(text.indexOf('chain restore_out'));
    expect(ret).toBeLessThan(text.indexOf('tcp sport 8081 tcp sport set 20048'));
  });

  it('renders no splice chain without capture ports', () => {
    const text = nftRuleset6(
      resolveConfig({
        ...base,
        networks: DUAL,
        splice: { capturePorts: [] },
      }),
    );
    expect(text).not.toMatch(/splice|0x6f69|restore_out/);
  });
});

describe('nftRuleset with splice', () => {
  const vips = [
    { name: 'outside', address: '203.0.113.80', default: true },
    { name: 'lab', address: '198.19.0.80', prefixes: ['198.19.1.0/24'] },
  ];

  it('changes nothing without splice', () => {
    const text = nftRuleset(resolveConfig({ ...base, networks: vips }));
    expect(text).not.toMatch(/splice|0x6f69|0x6f6a/);
  });

  it('captures the ports from every cluster address, skips its own packets, keeps them from conntrack and the restore', () => {
    const c = resolveConfig({
      ...base,
      networks: vips,
      mountPorts: [{ proto: 'tcp', nodePort: 8081, clusterPort: 81 }],
      splice: { capturePorts: [8081, 2049, 8081] },
    });
    expect(c.splice).toEqual({ capturePorts: [2049, 8081], kernel: false });
    const text = nftRuleset(c);
    expect(text).toContain('type route hook output priority mangle - 1;');
    expect(text).toContain(
      'ip saddr { 203.0.113.80, 198.19.0.80 } tcp sport { 2049, 8081 } oifname != "lo" meta mark != 0x6f6a meta mark set 0x6f69 counter',
    );
    expect(text).toContain('type filter hook output priority raw;');
    expect(text).toContain('meta mark 0x6f6a notrack');
    // In restore_out, the early return comes before the restore rules.
    const ret = text.indexOf('meta mark { 0x6f69, 0x6f6a } return');
    expect(ret).toBeGreaterThan(text.indexOf('chain restore_out'));
    expect(ret).toBeLessThan(text.indexOf('tcp sport 8081 tcp sport set 81'));
  });

  it('with the kernel program, marks established segments for it first, and the restore leaves them alone', () => {
    const c = resolveConfig({
      ...base,
      networks: vips,
      mountPorts: [{ proto: 'tcp', nodePort: 8081, clusterPort: 81 }],
      splice: { capturePorts: [2049, 8081], kernel: true },
    });
    const text = nftRuleset(c);
    const kernel = text.indexOf(
      'ip saddr { 203.0.113.80, 198.19.0.80 } tcp sport { 2049, 8081 } oifname != "lo" meta mark != 0x6f6a tcp flags & (fin | syn | rst) == 0 meta mark set 0x6f6b counter accept',
    );
    expect(kernel).toBeGreaterThan(text.indexOf('chain splice_out'));
    expect(kernel).toBeLessThan(text.indexOf('meta mark set 0x6f69'));
    const ret = text.indexOf('meta mark { 0x6f69, 0x6f6a, 0x6f6b } return');
    expect(ret).toBeGreaterThan(text.indexOf('chain restore_out'));
    expect(ret).toBeLessThan(text.indexOf('tcp sport 8081 tcp sport set 81'));
    // without it, nothing is marked for a program that is not there
    expect(nftRuleset({ ...c, splice: { ...c.splice!, kernel: false } })).not.toContain('0x6f6b');
  });

  it('with no capture port, captures nothing but still keeps its own packets from conntrack', () => {
    const text = nftRuleset(resolveConfig({ ...base, splice: {} }));
    expect(text).toContain('chain splice_out {');
    expect(text).not.toContain('meta mark set 0x6f69');
    expect(text).toContain('meta mark 0x6f6a notrack');
  });
});

describe('routes', () => {
  it('turns ip -j output back into arguments', () => {
    expect(
      routeArgs({
        dst: 'default',
        gateway: '198.18.0.1',
        dev: 'eth0',
        protocol: 'dhcp',
        metric: 0,
        flags: ['onlink'],
      }),
    ).toEqual(['default', 'via', '198.18.0.1', 'dev', 'eth0', 'proto', 'dhcp', 'metric', '0', 'onlink']);
    expect(
      routeArgs({
        dst: '198.19.0.0/16',
        protocol: 'static',
        nexthops: [
          { gateway: '198.18.0.1', dev: 'eth0', weight: 1 },
          { gateway: '198.18.0.2', dev: 'eth0', weight: 2 },
        ],
      }),
    ).toEqual([
      '198.19.0.0/16',
      'proto',
      'static',
      'nexthop',
      'via',
      '198.18.0.1',
      'dev',
      'eth0',
      'weight',
      '1',
      'nexthop',
      'via',
      '198.18.0.2',
      'dev',
      'eth0',
      'weight',
      '2',
    ]);
    expect(routeArgs({ type: 'blackhole', dst: '198.19.9.0/24' })).toEqual(['blackhole', '198.19.9.0/24']);
    expect(viaGateways(['198.18.0.1'], 'eth0')).toEqual(['via', '198.18.0.1', 'dev', 'eth0']);
  });
});
