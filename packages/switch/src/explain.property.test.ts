import { describe, expect, it } from 'vitest';
import { runExplainFuzz } from './testing/explain-fuzz.js';

// CI runs 100k random/mutated packets; `npm run fuzz` runs the million (explain.fuzz.ts).
const RUNS = Number(process.env.FUZZ_RUNS ?? 100_000);

describe('explain and decide never throw', () => {
  it(`on ${RUNS} random and mutated packets`, () => {
    const r = runExplainFuzz(RUNS, 0x5eed);
    expect(r.runs).toBe(RUNS);
    // the mutations reach every kind of decision, not just parse errors
    expect(r.kinds[1]).toBeGreaterThan(RUNS / 50);
    expect(r.kinds[2]).toBeGreaterThan(RUNS / 50);
    expect(r.kinds[3]).toBeGreaterThan(RUNS / 50);
  }, 120_000);
});
