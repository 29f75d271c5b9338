import { describe, expect, it } from 'vitest';
import { AckPolicy } from './membership-service.js';

describe('AckPolicy: which heartbeats the gateway acknowledges', () => {
  it('at 100/350 ms, every other beat (the agent hears one each 200 ms, its timeout is 350)', () => {
    const p = new AckPolicy(100, 350);
    const acked = [0, 100, 200, 300, 400, 500, 600].filter((t) => p.due(t, 'active', false));
    expect(acked).toEqual([0, 200, 400, 600]);
  });

  it('at 250/800 ms, every other beat too; at 100/1000, one beat in nine', () => {
    const p = new AckPolicy(250, 800);
    expect([0, 250, 500, 750, 1000].filter((t) => p.due(t, 'active', false))).toEqual([0, 500, 1000]);
    const q = new AckPolicy(100, 1000);
    const times = Array.from({ length: 20 }, (_, i) => i * 100);
    expect(times.filter((t) => q.due(t, 'active', false))).toEqual([0, 900, 1800]);
  });

  it('a changed state or a health update is acknowledged at once', () => {
    const p = new AckPolicy(100, 350);
    expect(p.due(0, 'active', false)).toBe(true);
    expect(p.due(100, 'draining', false)).toBe(true);
    expect(p.due(200, 'draining', true)).toBe(true);
    expect(p.due(300, 'draining', false)).toBe(false);
  });

  it('a timeout under two intervals: every beat', () => {
    const p = new AckPolicy(100, 150);
    expect([0, 100, 200, 300].every((t) => p.due(t, 'active', false))).toBe(true);
  });
});
