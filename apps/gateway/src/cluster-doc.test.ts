import type { MemberRecord } from '@onehost/control';
import { MessageSwitch, validateConfig } from '@onehost/switch';
import { describe, expect, it } from 'vitest';
import { GatewaySwitch } from './backend.js';
import { buildSwitchDoc, namesInEntries } from './cluster-doc.js';
import { parseGatewayConfig } from './config.js';

const cfg = parseGatewayConfig(`
name: gw
outside: { interfaces: [eth0] }
interconnect: { interface: eth1, address: 198.18.0.1 }
control: { listen: 198.18.0.1:7443, tls: { ca: a, cert: b, key: c }, store: s }
clusterAddresses: [{ network: outside, address: 203.0.113.80, default: true }]
entries:
  - { protocol: tcp, port: 80, function: connection, policy: round-robin, nodes: [n1, n2] }
  - { protocol: tcp, port: 22, function: fixed, node: n2, backup: n1 }
`);

const member = (name: string, id: number, state: MemberRecord['state'] = 'active'): MemberRecord => ({
  name,
  id,
  block: { lo: 32768 + id * 1024, hi: 32768 + id * 1024 + 1023 },
  internalAddress: `198.18.0.${10 + id}`,
  vxlanMac: `02:00:00:00:00:0${id}`,
  capabilities: [],
  drained: false,
  state,
  lastSeenUnixMs: 0,
  downReason: '',
});

describe('switch document from membership', () => {
  it('lists names the entries refer to', () => {
    expect(namesInEntries(cfg.switch.entries as Record<string, unknown>[]).sort()).toEqual(['n1', 'n2']);
  });

  it('includes the gateway, members with blocks, and not-yet-joined nodes as down placeholders', () => {
    const doc = buildSwitchDoc(cfg, cfg.switch.entries as Record<string, unknown>[], [member('n1', 1)], []);
    expect(doc.nodes).toEqual([
      { id: 0, name: 'gw', address: '198.18.0.1' },
      { id: 1, name: 'n1', address: '198.18.0.11', state: 'active' },
      { id: 65000, name: 'n2', address: '0.0.0.1', state: 'down' },
    ]);
    expect(doc.portBlocks).toEqual([{ node: 'n1', from: 33792, to: 34815 }]);
    expect(validateConfig(doc, new MessageSwitch().registry).ok).toBe(true);
  });

  it('carries MOUNT ports, handle layout and exports of registered members only', () => {
    const doc = buildSwitchDoc(
      cfg,
      [],
      [member('n1', 1)],
      [
        {
          nodeName: 'n1',
          mountPorts: { tcp: 20048, udp: 20049 },
          exports: [{ path: '/srv/projects', exportId: 7 }],
          handleLayout: { offset: 2, length: 2, endian: 'big' },
          registeredUnixMs: 0,
        },
        {
          nodeName: 'gone',
          mountPorts: {},
          exports: [{ path: '/x', exportId: 1 }],
          handleLayout: { offset: 2, length: 2, endian: 'big' },
          registeredUnixMs: 0,
        },
      ],
    );
    expect(doc.nodes[1]).toMatchObject({
      mountd: { tcp: 20048, udp: 20049 },
      nfsHandle: { offset: 2, length: 2, endian: 'big' },
    });
    expect(doc.exports).toEqual([{ path: '/srv/projects', node: 'n1', exportId: 7 }]);
  });
});

describe('GatewaySwitch', () => {
  it('rebuilds on membership, keeps the last good table when refused, and edits entries', () => {
    const sw = new MessageSwitch();
    const g = new GatewaySwitch(sw, cfg);
    let swaps = 0;
    g.onSwap(() => swaps++);
    const v1 = g.setMembership([member('n1', 1), member('n2', 2)], []);
    expect(sw.snapshot?.nodes.named('n2')?.state).toBeDefined();
    // two members with one address: the switch refuses, the previous table stays
    const dup = { ...member('n3', 3), internalAddress: '198.18.0.11' };
    expect(() => g.setMembership([member('n1', 1), dup], [])).toThrow(
      /duplicates node address 198\.18\.0\.11/,
    );
    expect(sw.snapshot?.version).toBe(v1);
    const v2 = g.setEntry({ protocol: 'udp', port: 53, function: 'udp-flow', options: { idleTimeout: 30 } });
    expect(v2).toBeGreaterThan(v1);
    expect(g.listEntries().entries.map((e) => `${e.protocol}/${e.port}`)).toContain('udp/53');
    expect(() =>
      g.setEntry({ protocol: 'tcp', port: 81, function: 'fixed', options: { node: 'n9' } }),
    ).toThrow(/n9/);
    g.deleteEntry('udp', 53);
    expect(() => g.deleteEntry('udp', 53)).toThrow(/no entry for udp\/53/);
    expect(swaps).toBe(3);
  });
});
