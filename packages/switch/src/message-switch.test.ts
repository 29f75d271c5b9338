import { describe, expect, it } from 'vitest';
import { DecisionOut, KIND } from './decision.js';
import { MessageSwitch } from './message-switch.js';
import { configFrom, EXAMPLE_YAML } from './testing/example-config.js';
import { tcpPacket } from './testing/packet-builder.js';

describe('smoke', () => {
  it('routes a SYN', () => {
    const sw = new MessageSwitch();
    sw.load(configFrom(EXAMPLE_YAML));
    const pkt = tcpPacket({ src: '203.0.113.5', dst: '203.0.113.10', srcPort: 5555, dstPort: 80, flags: 2 });
    const e = sw.explain(pkt, { now: 0 });
    console.log(JSON.stringify(e));
    const out = new DecisionOut();
    expect(sw.decide(pkt, 0, pkt.length, 0, out)).toBe(KIND.FORWARD);
  });
});
