import { describe, expect, it } from 'vitest';
import { runExplainFuzz } from './testing/explain-fuzz.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000_000);

describe('fuzz: explain and decide', () => {
  it(`never throw on ${RUNS} random and mutated packets`, () => {
    const seed = Number(process.env.FUZZ_SEED ?? 0xf00d);
    const r = runExplainFuzz(RUNS, seed);
    console.log(
      `fuzz: ${r.runs} packets through explain + decide (seed ${seed}): forward ${r.kinds[1]}, local ${r.kinds[2]}, drop ${r.kinds[3]}`,
    );
    expect(r.runs).toBe(RUNS);
  }, 1_800_000);
});
