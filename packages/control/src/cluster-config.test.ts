import { describe, expect, it } from 'vitest';
import { type ClusterConfig, checkClusterConfig, inPrefixes } from './cluster-config.js';
import { TEST_CLUSTER } from './testing/cluster.js';

const with_ = (change: (c: ClusterConfig) => void): ClusterConfig => {
  const c = structuredClone(TEST_CLUSTER);
  change(c);
  return c;
};

describe('cluster configuration', () => {
  it('accepts the test cluster and names the field of a bad one', () => {
    expect(() => checkClusterConfig(TEST_CLUSTER)).not.toThrow();
    expect(() => checkClusterConfig(with_((c) => delete c.outsideMtu))).not.toThrow();
    // dual stack: an IPv6 address beside the IPv4 ones, its default optional
    expect(() =>
      checkClusterConfig(
        with_((c) => c.addresses.push({ network: 'outside', address: '2001:db8::80', isDefault: false })),
      ),
    ).not.toThrow();
    const cases: [(c: ClusterConfig) => void, string][] = [
      [(c) => (c.addresses = []), 'cluster.addresses: at least one cluster address'],
      [(c) => (c.addresses[1]!.isDefault = true), 'cluster.addresses: exactly one default, not 2'],
      [
        (c) => (c.addresses[0]!.address = '203.0.113'),
        'cluster.addresses[0].address: not an IPv4 or IPv6 address',
      ],
      [
        (c) =>
          c.addresses.push(
            { network: 'a', address: '2001:db8::1', isDefault: true },
            { network: 'b', address: '2001:db8::2', isDefault: true },
          ),
        'cluster.addresses: at most one IPv6 default, not 2',
      ],
      [(c) => (c.vxlan.vni = 0), 'cluster.vxlan.vni: 1 to 16777215'],
      [(c) => (c.vxlan.udpPort = 65536), 'cluster.vxlan.udpPort: 1 to 65535'],
      [(c) => (c.vxlan.gatewayAddresses = ['x']), 'cluster.vxlan.gatewayAddresses[0]: not an IPv4 address'],
      [
        (c) => (c.interconnectPrefixes = ['198.18.0.0/33']),
        'cluster.interconnectPrefixes[0]: not a prefix a.b.c.d/n',
      ],
      [(c) => (c.outsideMtu = 67), 'cluster.outsideMtu: 68 to 65535, or 0'],
      [(c) => (c.outsideMtu = 1500.5), 'cluster.outsideMtu: 68 to 65535, or 0'],
    ];
    for (const [change, message] of cases) expect(() => checkClusterConfig(with_(change))).toThrow(message);
  });

  it('tells whether an address lies in the interconnect', () => {
    expect(inPrefixes('198.19.255.254', ['198.18.0.0/15'])).toBe(true);
    expect(inPrefixes('198.20.0.1', ['198.18.0.0/15'])).toBe(false);
    expect(inPrefixes('203.0.113.5', [])).toBe(true);
  });
});
