import type { JoinResponse } from '@onehost/proto';
import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff.js';
import { resolveConfig } from './config.js';
import { nodeConfigFromJoin, sameConfig, vxlanMacOf, withSpliceCapture } from './join-config.js';

const join: JoinResponse = {
  nodeId: 3,
  clusterAddresses: [
    { network: 'outside', address: '203.0.113.80', isDefault: true },
    { network: 'second', address: '203.0.113.81', isDefault: false },
  ],
  portBlock: { lo: 34816, hi: 35839 },
  vxlan: {
    vni: 4242,
    udpPort: 4789,
    gatewayAddresses: ['198.18.0.1', '198.18.0.2'],
    probeUdpPort: 0,
    probeIntervalMs: 0,
  },
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 350,
  interconnectPrefixes: ['198.18.0.0/15'],
  outsideMtu: 1500,
};
const local = { nodeName: 'n3', internalAddress: '198.18.0.13', interface: 'eth0', stateFile: 'n3.json' };

describe('nodeConfigFromJoin', () => {
  it('maps the Join answer onto a config the plumbing accepts, with the MAC registered at Join', () => {
    const c = nodeConfigFromJoin(join, { ...local, vxlanDevice: 'vx0' });
    expect(c).toEqual({
      nodeName: 'n3',
      internal: { address: '198.18.0.13', interface: 'eth0' },
      gateways: ['198.18.0.1', '198.18.0.2'],
      networks: [
        { name: 'outside', address: '203.0.113.80', default: true },
        { name: 'second', address: '203.0.113.81', default: false },
      ],
      portBlock: { lo: 34816, hi: 35839 },
      vxlan: { vni: 4242, port: 4789, device: 'vx0', mac: vxlanMacOf('n3') },
      clusterPrefixes: ['198.18.0.0/15'],
      stateFile: 'n3.json',
      outsideMtu: 1500,
    });
    expect(resolveConfig(c).vxlan.mac).toBe(vxlanMacOf('n3'));
    // a gateway from before outside_mtu says 0: nothing on the routes
    expect(nodeConfigFromJoin({ ...join, outsideMtu: 0 }, local)).not.toHaveProperty('outsideMtu');
  });

  it('the MAC depends on the node name only, and is a locally administered unicast one', () => {
    expect(vxlanMacOf('n3')).toBe(vxlanMacOf('n3'));
    expect(vxlanMacOf('n3')).not.toBe(vxlanMacOf('n4'));
    expect(vxlanMacOf('n3')).toMatch(/^02(:[0-9a-f]{2}){5}$/);
  });

  it('refuses an answer the node cannot work with, naming what is missing', () => {
    expect(() => nodeConfigFromJoin({ ...join, portBlock: undefined }, local)).toThrow(/port_block/);
    expect(() => nodeConfigFromJoin({ ...join, vxlan: undefined }, local)).toThrow(/vxlan/);
    expect(() => nodeConfigFromJoin({ ...join, clusterAddresses: [] }, local)).toThrow(/cluster address/);
    const noGateway = { ...join, vxlan: { ...join.vxlan!, gatewayAddresses: [] } };
    expect(() => nodeConfigFromJoin(noGateway, local)).toThrow(/gateway address/);
    expect(() => nodeConfigFromJoin({ ...join, heartbeatIntervalMs: 0 }, local)).toThrow(/interval 0 ms/);
    expect(() => nodeConfigFromJoin({ ...join, heartbeatTimeoutMs: 100 }, local)).toThrow(/timeout 100 ms/);
  });

  it('sameConfig tells an unchanged answer from a changed one', () => {
    const a = nodeConfigFromJoin(join, local);
    expect(sameConfig(a, nodeConfigFromJoin({ ...join, nodeId: 3 }, local))).toBe(true);
    const moved = {
      ...join,
      clusterAddresses: [{ network: 'outside', address: '203.0.113.90', isDefault: true }],
    };
    expect(sameConfig(a, nodeConfigFromJoin(moved, local))).toBe(false);
    expect(sameConfig(a, nodeConfigFromJoin({ ...join, outsideMtu: 1400 }, local))).toBe(false);
  });
});

describe('withSpliceCapture', () => {
  it('turns delayed binding on with capture ports, and off again without a trace', () => {
    const c = nodeConfigFromJoin(join, local);
    const on = withSpliceCapture(c, [2049, 20048]);
    expect(on.splice).toEqual({ capturePorts: [2049, 20048] });
    expect(resolveConfig(on).splice).toEqual({ capturePorts: [2049, 20048], kernel: false });
    expect(resolveConfig(withSpliceCapture(c, [2049], true)).splice).toEqual({
      capturePorts: [2049],
      kernel: true,
    });
    expect(sameConfig(withSpliceCapture(on, [2049, 20048]), on)).toBe(true);
    expect(sameConfig(withSpliceCapture(on, null), c)).toBe(true);
    expect(resolveConfig(withSpliceCapture(on, null)).splice).toBeNull();
  });
});

describe('Backoff', () => {
  it('doubles from 50 ms to at most 1 s, with up to a fifth of jitter, and starts over on reset', () => {
    const b = new Backoff(50, 1000, () => 0);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => b.delay())).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.delay()).toBe(50);
    const jittered = new Backoff(50, 1000, () => 0.999);
    expect(jittered.delay()).toBe(60);
    for (let i = 0; i < 10; i++) expect(jittered.delay()).toBeLessThanOrEqual(1000);
  });
});
