import { describe, expect, it } from 'vitest';
import { DecisionOut, KIND } from '../decision.js';
import { DROP } from '../drop-reason.js';
import { MessageSwitch } from '../message-switch.js';
import { configFrom } from '../testing/example-config.js';
import { udpPacket } from '../testing/packet-builder.js';

function yaml(states: Record<string, string> = {}, extra = ''): string {
  const node = (id: number, name: string) =>
    `  - { id: ${id}, name: ${name}, address: 198.18.0.${10 + id}, state: ${states[name] ?? 'active'} }`;
  return [
    'gateway: gw',
    'clusterAddresses: [{ network: outside, address: 203.0.113.10 }]',
    'nodes:',
    node(1, 'gw'),
    node(2, 'n1'),
    node(3, 'n2'),
    node(4, 'n3'),
    'entries:',
    `  - { protocol: udp, port: 53, function: udp-flow, nodes: [n1, n2, n3], idleTimeout: 30, maglevSize: 251${extra} }`,
  ].join('\n');
}

describe('udp-flow', () => {
  const out = new DecisionOut();
  const send = (sw: MessageSwitch, port: number, now: number) => {
    const p = udpPacket({ src: '203.0.113.5', dst: '203.0.113.10', srcPort: port, dstPort: 53 });
    sw.decide(p, 0, p.length, now, out);
    return out.kind === KIND.FORWARD ? out.node : -out.reason;
  };

  it('spreads flows over the nodes by hash of (source address, source port)', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml()));
    const seen = new Map<number, number>();
    for (let p = 1000; p < 1600; p++) seen.set(send(sw, p, 0), (seen.get(send(sw, p, 0)) ?? 0) + 1);
    expect([...seen.keys()].sort()).toEqual([2, 3, 4]);
    for (const c of seen.values()) expect(c).toBeGreaterThan(120);
  });

  it('a flow stays on its node across a membership change while busy, and is re-hashed after idling', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml()));
    // find a flow on n3 (id 4)
    let port = 2000;
    while (send(sw, port, 0) !== 4) port++;
    sw.load(configFrom(yaml({ n3: 'draining' })));
    expect(send(sw, port, 29_000)).toBe(4); // sticky while not idle
    expect(send(sw, port, 58_999)).toBe(4);
    const after = send(sw, port, 58_999 + 30_000); // idle 30 s: a new flow
    expect(after).not.toBe(4);
    expect(after).toBeGreaterThan(0);
  });

  it('a flow whose node is down is re-hashed at once; no active node drops', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml()));
    let port = 3000;
    while (send(sw, port, 0) !== 2) port++;
    sw.load(configFrom(yaml({ n1: 'down' })));
    expect([3, 4]).toContain(send(sw, port, 1));
    sw.load(configFrom(yaml({ n1: 'down', n2: 'down', n3: 'down' })));
    expect(send(sw, port + 1, 2)).toBe(-DROP.NO_ACTIVE_NODE);
  });

  it('is bounded', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(yaml({}, ', maxEntries: 10')));
    for (let p = 1; p <= 100; p++) send(sw, p, 0);
    expect(sw.counters.toJSON().events.udp_flow_evicted).toBe(90);
  });
});
