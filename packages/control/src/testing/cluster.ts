import type { ClusterConfig } from '../cluster-config.js';

/** TEST_CLUSTER: one cluster address outside, the gateway at 198.18.0.1 on the interconnect. */
export const TEST_CLUSTER: ClusterConfig = {
  addresses: [
    { network: 'outside', address: '203.0.113.10', isDefault: true },
    { network: 'second', address: '203.0.113.11', isDefault: false },
  ],
  vxlan: { vni: 4242, udpPort: 4789, gatewayAddresses: ['198.18.0.1'] },
  interconnectPrefixes: ['198.18.0.0/15'],
  outsideMtu: 1500,
};
