import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventLog } from './events.js';
import { RateHistory } from './history.js';

describe('RateHistory', () => {
  it('gives rates between consecutive samples, per node', () => {
    const h = new RateHistory(10);
    h.sample(1000, [[1, 100, 1000]]);
    h.sample(3000, [
      [1, 300, 5000],
      [2, 50, 500],
    ]);
    expect(h.series(1)).toEqual([{ t: 3000, pps: 100, bps: 2000 }]);
    expect(h.series(2)).toEqual([{ t: 3000, pps: 25, bps: 250 }]);
    expect(h.nodes()).toEqual([1, 2]);
  });

  it('adds a node’s totals from both paths, and treats a counter that went back as a restart', () => {
    const h = new RateHistory(10);
    h.sample(0, [
      [1, 100, 0],
      [1, 900, 0],
    ]);
    h.sample(1000, [[1, 40, 0]]);
    expect(h.series(1)).toEqual([{ t: 1000, pps: 40, bps: 0 }]);
  });

  it('keeps at most capacity samples, never negative rates, and ignores samples out of order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.nat(1e9), fc.nat(1e12)), { maxLength: 60 }),
        (xs) => {
          const h = new RateHistory(8);
          for (const [t, p, b] of xs) h.sample(t, [[3, p, b]]);
          const s = h.series(3);
          expect(s.length).toBeLessThanOrEqual(7);
          for (const r of s) {
            expect(r.pps).toBeGreaterThanOrEqual(0);
            expect(r.bps).toBeGreaterThanOrEqual(0);
          }
          for (let i = 1; i < s.length; i++) expect(s[i]!.t).toBeGreaterThan(s[i - 1]!.t);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('EventLog', () => {
  it('keeps the newest events, newest first, in the operator’s words', () => {
    const log = new EventLog(3);
    const member = { name: 'n2', id: 2, block: { lo: 33792, hi: 34815 }, downReason: 'heartbeat timeout' };
    log.member({ kind: 'joined', member: member as never }, 1);
    log.member({ kind: 'down', member: member as never }, 2);
    log.member({ kind: 'draining', member: member as never }, 3);
    log.add('reload', 'reloaded (SIGHUP): no changes', 4);
    expect(log.recent().map((e) => [e.seq, e.kind, e.text])).toEqual([
      [4, 'reload', 'reloaded (SIGHUP): no changes'],
      [3, 'drain', 'n2 draining'],
      [2, 'down', 'n2 down: heartbeat timeout'],
    ]);
  });
});
