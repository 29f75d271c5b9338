/**
 * Coalesced runs `run` for a burst of changes once instead of once per change: a change after a quiet
 * spell runs it at once; changes that come sooner than `spacingMs` after the last run (or twice as long
 * as that run took, when it is slower) wait and run it together. A join storm (a thousand agents
 * starting) would otherwise rebuild the switch and the kernel table once per agent.
 */
export class Coalesced {
  private timer: NodeJS.Timeout | null = null;
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastMs = 0;
  /** runs so far, and changes that waited for a later run */
  readonly counts = { runs: 0, deferred: 0 };

  constructor(
    private readonly run: () => void,
    private readonly spacingMs: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** soon asks for a run: now after a quiet spell, else when the spacing has passed. */
  soon(): void {
    if (this.timer !== null) {
      this.counts.deferred++;
      return;
    }
    const wait = this.lastAt + Math.max(this.spacingMs, 2 * this.lastMs) - this.clock();
    if (wait <= 0) this.now();
    else {
      this.counts.deferred++;
      this.timer = setTimeout(() => this.now(), wait);
    }
  }

  /** now runs at once (a waiting run included). */
  now(): void {
    this.cancel();
    const t0 = this.clock();
    this.counts.runs++;
    try {
      this.run();
    } finally {
      this.lastAt = this.clock();
      this.lastMs = this.lastAt - t0;
    }
  }

  /** flush runs a waiting run now; nothing when none waits. */
  flush(): void {
    if (this.timer !== null) this.now();
  }

  /** pending says whether a run waits. */
  get pending(): boolean {
    return this.timer !== null;
  }

  /** cancel drops a waiting run. */
  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
