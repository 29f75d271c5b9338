import { decodeResyncDone, encodeResyncDone, isResync, MSG, RESYNC_DONE_LENGTH } from '@onehost/splice';
import { describe, expect, it } from 'vitest';
import { Resync } from './resync.js';

describe('resync messages (types 4 and 5)', () => {
  it('round-trip; anything else is not one', () => {
    const done = new Uint8Array(RESYNC_DONE_LENGTH);
    expect(encodeResyncDone(70_000, done)).toBe(RESYNC_DONE_LENGTH);
    expect(decodeResyncDone(done, 0, done.length)).toBe(70_000);
    expect(decodeResyncDone(done, 0, done.length - 1)).toBe(-1);
    expect(decodeResyncDone(Uint8Array.of(MSG.SHIFT, 1, 0, 0, 0, 1), 0, 6)).toBe(-1);
    expect(isResync(Uint8Array.of(MSG.RESYNC, 1), 0, 2)).toBe(true);
    expect(isResync(Uint8Array.of(MSG.RESYNC, 2), 0, 2)).toBe(false);
    expect(isResync(Uint8Array.of(MSG.RESYNC, 1, 0), 0, 3)).toBe(false);
    expect(isResync(Uint8Array.of(MSG.RESYNC, 1), 1, 2)).toBe(false);
  });
});

describe('Resync: a starting gateway asks every agent for its spliced flows', () => {
  it('ends when every agent answered, with their flow counts; a late or unknown answer counts nothing', async () => {
    const sent: string[] = [];
    const r = new Resync({
      agents: ['198.18.0.11', '198.18.0.12'],
      send: (m, a) => {
        expect(isResync(m, 0, m.length)).toBe(true);
        sent.push(a);
        if (a === '198.18.0.11') queueMicrotask(() => r.done(a, 3));
        else setTimeout(() => r.done(a, 4), 20);
      },
      deadlineMs: 5000,
    });
    r.done('198.18.0.11', 100); // before it asked: ignored
    const got = await r.run();
    expect(got).toMatchObject({ asked: 2, answered: 2, flows: 7 });
    expect(got.ms).toBeLessThan(5000);
    expect(sent.sort()).toEqual(['198.18.0.11', '198.18.0.12']);
    r.done('198.18.0.99', 5);
    r.done('198.18.0.12', 5);
  });

  it('asks again those that did not answer, and gives up at the deadline', async () => {
    const sent: string[] = [];
    const r = new Resync({
      agents: ['198.18.0.11', '198.18.0.12'],
      send: (_m, a) => {
        sent.push(a);
        // n1 answers only the second request (the first was lost)
        if (a === '198.18.0.11' && sent.filter((x) => x === a).length === 2) r.done(a, 1);
      },
      deadlineMs: 200,
      retryMs: 30,
    });
    const got = await r.run();
    expect(got).toMatchObject({ asked: 2, answered: 1, flows: 1 });
    expect(got.ms).toBeGreaterThanOrEqual(190);
    expect(sent.filter((a) => a === '198.18.0.11')).toHaveLength(2);
    expect(sent.filter((a) => a === '198.18.0.12').length).toBeGreaterThan(2);
  });

  it('counts the shifts that did not arrive before an agent’s type 5', async () => {
    const r = new Resync({
      agents: ['198.18.0.11'],
      send: (_m, a) =>
        queueMicrotask(() => {
          r.heard(a);
          r.heard(a);
          r.heard('198.18.0.99');
          r.done(a, 5);
        }),
    });
    expect(await r.run()).toMatchObject({ asked: 1, answered: 1, flows: 5, missing: 3 });
  });

  it('with no agent, does not wait', async () => {
    const r = new Resync({ agents: [], send: () => expect.unreachable() });
    expect(await r.run()).toMatchObject({ asked: 0, answered: 0, flows: 0 });
  });
});
