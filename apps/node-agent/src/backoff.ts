/**
 * Backoff hands out retry delays that double from `initialMs` up to `maxMs`, with up to a fifth added
 * at random so that nodes cut off together (a gateway restart) do not all come back in the same
 * millisecond. `reset` starts over after a success.
 */
export class Backoff {
  private next: number;

  /** Throws RangeError unless 0 < initialMs ≤ maxMs. */
  constructor(
    readonly initialMs = 50,
    readonly maxMs = 1000,
    private readonly random: () => number = Math.random,
  ) {
    if (!(initialMs > 0 && initialMs <= maxMs)) throw new RangeError(`backoff ${initialMs}-${maxMs} ms`);
    this.next = initialMs;
  }

  /** delay returns the next delay in milliseconds (never above maxMs). */
  delay(): number {
    const base = this.next;
    this.next = Math.min(this.maxMs, base * 2);
    return Math.min(this.maxMs, Math.round(base * (1 + this.random() / 5)));
  }

  reset(): void {
    this.next = this.initialMs;
  }
}
