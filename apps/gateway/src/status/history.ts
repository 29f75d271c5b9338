/** One node's rate over one interval between two samples. */
export interface RatePoint {
  /** Unix ms at the end of the interval */
  t: number;
  pps: number;
  /** bytes per second */
  bps: number;
}

interface Sample {
  t: number;
  totals: Map<number, { packets: number; bytes: number }>;
}

/**
 * RateHistory keeps the last `capacity` samples of per-node packet and byte totals (monotonic counters
 * that may restart from 0) and gives each node's rates between consecutive samples. Memory is bounded by
 * capacity × nodes; nothing grows with traffic.
 */
export class RateHistory {
  private readonly samples: Sample[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError('capacity must be at least 2');
  }

  /** sample records the totals at `now` (ms); samples not later than the last are ignored. */
  sample(now: number, totals: Iterable<readonly [id: number, packets: number, bytes: number]>): void {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && now <= last.t) return;
    const m = new Map<number, { packets: number; bytes: number }>();
    for (const [id, packets, bytes] of totals) {
      const had = m.get(id);
      m.set(id, { packets: (had?.packets ?? 0) + packets, bytes: (had?.bytes ?? 0) + bytes });
    }
    this.samples.push({ t: now, totals: m });
    if (this.samples.length > this.capacity) this.samples.shift();
  }

  /** series is node `id`'s rates, oldest first (a counter that went back counts as a restart from 0). */
  series(id: number): RatePoint[] {
    const out: RatePoint[] = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1]!;
      const b = this.samples[i]!;
      const secs = (b.t - a.t) / 1000;
      const x = a.totals.get(id) ?? { packets: 0, bytes: 0 };
      const y = b.totals.get(id) ?? { packets: 0, bytes: 0 };
      const dp = y.packets >= x.packets ? y.packets - x.packets : y.packets;
      const db = y.bytes >= x.bytes ? y.bytes - x.bytes : y.bytes;
      out.push({ t: b.t, pps: dp / secs, bps: db / secs });
    }
    return out;
  }

  /** nodes lists every node id seen in the kept samples. */
  nodes(): number[] {
    const ids = new Set<number>();
    for (const s of this.samples) for (const id of s.totals.keys()) ids.add(id);
    return [...ids].sort((a, b) => a - b);
  }
}
