import type { Clock, Timer } from '../clock.js';

/** ManualClock is a Clock whose time moves only when a test calls `advance`. */
export class ManualClock implements Clock {
  private t: number;
  private readonly timers = new Set<{ due: number; ms: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const entry = { due: this.t + ms, ms, fn };
    this.timers.add(entry);
    return {
      refresh: () => {
        entry.due = this.t + entry.ms;
        this.timers.add(entry);
      },
      cancel: () => {
        this.timers.delete(entry);
      },
    };
  }

  /** afterPendingIo runs `fn` at once: a manual clock has no input waiting behind its timers. */
  afterPendingIo(fn: () => void): void {
    fn();
  }

  /** stall moves time forward without firing timers: a process busy for `ms`; `advance(0)` fires them late. */
  stall(ms: number): void {
    this.t += ms;
  }

  /** advance moves time forward, firing due timers in order of their deadline. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: { due: number; ms: number; fn: () => void } | undefined;
      for (const e of this.timers) if (e.due <= end && (next === undefined || e.due < next.due)) next = e;
      if (next === undefined) break;
      this.t = Math.max(this.t, next.due);
      this.timers.delete(next);
      next.fn();
    }
    this.t = end;
  }
}
