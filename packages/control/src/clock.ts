/** Timer is a one-shot timer that can be pushed back (`refresh`) or cancelled. */
export interface Timer {
  /** refresh restarts the timer with its original delay from now. */
  refresh(): void;
  cancel(): void;
}

/**
 * Clock is where membership reads the time and sets heartbeat deadlines; tests inject a manual one.
 */
export interface Clock {
  /** now is Unix time in milliseconds. */
  now(): number;
  /** setTimer calls `fn` once after `ms` milliseconds unless refreshed or cancelled. */
  setTimer(ms: number, fn: () => void): Timer;
  /**
   * afterPendingIo calls `fn` once the input already waiting has been read: a timer that fires after
   * the process was busy runs before the heartbeats that arrived meanwhile, and must not judge first.
   */
  afterPendingIo(fn: () => void): void;
}

/** systemClock is the real clock; its timers do not keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return {
      refresh: () => {
        t.refresh();
      },
      cancel: () => clearTimeout(t),
    };
  },
  // setImmediate callbacks run after the event loop's poll phase, where waiting sockets are read
  afterPendingIo: (fn) => {
    setImmediate(fn);
  },
};
