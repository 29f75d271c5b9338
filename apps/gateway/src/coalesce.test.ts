import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Coalesced } from './coalesce.js';

describe('Coalesced', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs a change after a quiet spell at once, and a burst once more after the spacing', () => {
    let runs = 0;
    const c = new Coalesced(
      () => runs++,
      50,
      () => Date.now(),
    );
    c.soon();
    expect(runs).toBe(1);
    for (let i = 0; i < 1000; i++) c.soon();
    expect(runs).toBe(1);
    expect(c.pending).toBe(true);
    vi.advanceTimersByTime(49);
    expect(runs).toBe(1);
    vi.advanceTimersByTime(1);
    expect(runs).toBe(2);
    expect(c.counts).toEqual({ runs: 2, deferred: 1000 });
    // quiet again: at once
    vi.advanceTimersByTime(50);
    c.soon();
    expect(runs).toBe(3);
  });

  it('spaces runs by twice what the last one took when that is longer', () => {
    let runs = 0;
    // each run takes 100 ms of the clock
    const c = new Coalesced(
      () => {
        runs++;
        vi.advanceTimersByTime(100);
      },
      50,
      () => Date.now(),
    );
    c.soon();
    c.soon();
    vi.advanceTimersByTime(199);
    expect(runs).toBe(1);
    vi.advanceTimersByTime(1);
    expect(runs).toBe(2);
  });

  it('flush runs a waiting change now, and nothing when none waits; cancel drops it', () => {
    let runs = 0;
    const c = new Coalesced(
      () => runs++,
      50,
      () => Date.now(),
    );
    c.flush();
    expect(runs).toBe(0);
    c.soon();
    c.soon();
    c.flush();
    expect(runs).toBe(2);
    expect(c.pending).toBe(false);
    c.soon();
    c.cancel();
    vi.advanceTimersByTime(1000);
    expect(runs).toBe(2);
  });
});
